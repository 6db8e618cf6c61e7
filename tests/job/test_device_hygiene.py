"""Every tensor the training loop creates follows the job's device.

On a CPU-only machine a tensor created on the default device is indistinguishable from one
created on the job's, so this test watches the creation itself: a torch function mode records
every factory call (zeros, ones, arange, tensor, ...) made from this project's code without a
``device=`` during a tiny CoFi job's steps and evaluations. Each such call was reviewed as
host-side work (batches collated on the CPU and moved later, index bookkeeping moved with an
explicit ``.to``/``.cpu()``) and is listed below; a new one fails the test until it passes a
device or is reviewed into the list -- the checklist a GPU run would otherwise find the hard
way (a CPU tensor meeting a CUDA one)."""

from __future__ import annotations

import traceback
from pathlib import Path

import torch
from helpers import job
from torch.overrides import TorchFunctionMode

from cofi_sweep.job.recipe import CofiPruner

FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.rand, torch.randn,
             torch.randint, torch.arange, torch.tensor, torch.as_tensor, torch.eye,
             torch.linspace}

# (factory, file, code) reviewed as host-side; see the module docstring
REVIEWED = {
    # the loaders collate batches on the CPU; the loop moves each with to_device
    ("empty", "core/data.py", "for i, batch in enumerate(loader):"),
    ("tensor", "core/data.py", "for i, batch in enumerate(loader):"),
    ("empty", "core/evaluation.py", "for batch in loader:"),
    ("tensor", "core/evaluation.py", "for batch in loader:"),
    ("tensor", "core/teacher_cache.py",
     "batches = (collate([dataset[int(i)] for i in order[b:b + batch_size]])"),
    # a default that is only a device reference when there are no gates at all
    ("zeros", "core/gates.py",
     "ref = next(iter(self.log_alpha.values()), torch.zeros(()))"),
    # the projection ranks units on the CPU (scores taken with .cpu()) and moves its picks
    ("empty", "core/projection.py", "rank = torch.empty(len(score))"),
    ("arange", "core/projection.py",
     "rank[torch.argsort(score, descending=not prune, stable=True)] = torch.arange("),
    ("tensor", "core/projection.py",
     "order = torch.argsort(torch.tensor(keys), stable=True).tolist()"),
    ("tensor", "core/projection.py", "i, j = torch.tensor(picked).T.to(new[unit_key].device)"),
    # compaction's kept indices are computed on the CPU, then moved to the weights' device
    ("ones", "core/compact.py", "keep = torch.ones(n, dtype=torch.bool)"),
    ("arange", "core/compact.py",
     "inner = (heads[i][:, None] * d_h + torch.arange(d_h)).flatten().to(device)"),
}


class FactoryWatch(TorchFunctionMode):
    """Records (factory, file, code) of factory calls from cofi_sweep without a device."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: set[tuple[str, str, str]] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            for frame in reversed(traceback.extract_stack()[:-1]):
                if "/cofi_sweep/" in frame.filename:
                    self.calls.add((func.__name__, frame.filename.split("/cofi_sweep/")[-1],
                                    (frame.line or "").strip()))
                    break
        return func(*args, **kwargs)


def test_the_loop_creates_tensors_on_the_jobs_device_or_reviewed_host_side(
        tmp_path: Path, teacher_cache: Path) -> None:
    pruner = CofiPruner(job(tmp_path, teacher_cache))
    watch = FactoryWatch()
    with watch:
        result = pruner.run()
    assert result.on_target
    assert watch.calls, "the watch saw nothing: it is not hooked in"
    unreviewed = watch.calls - REVIEWED
    assert not unreviewed, (
        "tensors created without device= in the training loop: pass the job's device, or "
        f"review them as host-side work into REVIEWED: {sorted(unreviewed)}")
    # every parameter and buffer of the models and the gates lives on the job's device
    for module in (pruner.model, pruner.teacher, pruner.gates, pruner.lagrangian,
                   pruner.projection):
        for tensor in [*module.parameters(), *module.buffers()]:
            assert tensor.device == pruner.device
