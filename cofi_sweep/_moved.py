"""Module paths from before the package was layered, for experiments stored back then.

Ray Tune pickles the searcher, scheduler and callbacks of an experiment by module path
(``cofi_sweep.search.PerCellOptunaSearch``), so a ``--resume`` of an experiment started before
the move imports the old paths. This finder answers them with the modules' new homes; nothing
in the package imports an old path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

MOVED: dict[str, str | tuple[str, ...]] = {
    "cofi_sweep.allocator": "cofi_sweep.core.allocator",
    "cofi_sweep.compact": "cofi_sweep.core.compact",
    "cofi_sweep.config": "cofi_sweep.core.config",
    "cofi_sweep.data": "cofi_sweep.core.data",
    "cofi_sweep.distill": "cofi_sweep.core.distill",
    "cofi_sweep.evaluation": "cofi_sweep.core.evaluation",
    "cofi_sweep.gates": "cofi_sweep.core.gates",
    "cofi_sweep.model": "cofi_sweep.core.model",
    "cofi_sweep.modeling_cofi_bert": "cofi_sweep.core.modeling_cofi_bert",
    "cofi_sweep.pretrained": "cofi_sweep.core.pretrained",
    "cofi_sweep.projection": "cofi_sweep.core.projection",
    "cofi_sweep.sparsity": "cofi_sweep.core.sparsity",
    "cofi_sweep.students": "cofi_sweep.core.students",
    "cofi_sweep.teacher_cache": "cofi_sweep.core.teacher_cache",
    "cofi_sweep.latency_model": "cofi_sweep.latency.latency_model",
    "cofi_sweep.targets": "cofi_sweep.latency.targets",
    "cofi_sweep.preflight": "cofi_sweep.job.preflight",
    "cofi_sweep.cluster": "cofi_sweep.sweep.cluster",
    "cofi_sweep.ray_settings": "cofi_sweep.sweep.ray_settings",
    "cofi_sweep.scheduler": "cofi_sweep.sweep.scheduler",
    "cofi_sweep.search": "cofi_sweep.sweep.search",
    "cofi_sweep.space": "cofi_sweep.sweep.space",
    # the trainable module also held the progress table and the checkpoint clean-up, which
    # Tune pickled as the experiment's callbacks
    "cofi_sweep.trainable": ("cofi_sweep.sweep.trainable", "cofi_sweep.sweep.callbacks",
                             "cofi_sweep.sweep.checkpoints", "cofi_sweep.sweep.teacher_store"),
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module that now lives at its new one."""

    def find_spec(self, name: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        homes = MOVED[spec.name]
        if isinstance(homes, str):
            return importlib.import_module(homes)
        merged = ModuleType(spec.name)  # one old module split in several: their names, merged
        for home in homes:
            module = importlib.import_module(home)
            merged.__dict__.update({k: v for k, v in vars(module).items()
                                    if not k.startswith("__")})
        return merged

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name


def install() -> None:
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
