"""Run a CoFi sweep with Ray Tune: targets x ablations, Optuna search, ASHA, checkpoints, resume.

    python -m cofi_sweep.run --space search_spaces/quickstart.yaml
    python -m cofi_sweep.run --space search_spaces/pareto.yaml --dry-run
    python -m cofi_sweep.run --space search_spaces/pareto.yaml --resume
    python -m cofi_sweep.run --space search_spaces/pareto.yaml --retry-errored
    python -m cofi_sweep.run --space search_spaces/pareto.yaml --address auto   # a Ray cluster

Design. The space is validated before anything starts. The driver trains (or loads) the teacher
once; trials load it by path. The whole grid is one Tune experiment in ``<storage>/<name>``, so
``max_concurrent_trials`` holds across cells. A ``--resume`` with a space that only adds (grid
targets, ablations, baselines, a larger ``trials_per_cell``) runs the added trials after the
stored ones as a second Tune experiment inside it (``additions-<k>``: a restored Tune experiment
keeps its trial count), with the same Optuna studies and ASHA rung records; any other change
is refused with the changed keys. The searcher (:mod:`cofi_sweep.sweep.search`) hands
out every cell's ``trials_per_cell`` trials round-robin, each with its own seed, and keeps one
Optuna study per cell that learns from finished, on-target trials' selection-split scores.
ASHA (:mod:`cofi_sweep.sweep.scheduler`) keeps one bracket per cell and ranks only pruning-stage
scores of masks at the target's current value. When all trials are done, each compact model is
timed interleaved with the teacher, as one Ray task on a node of the kind ``latency.device``
names, with nothing else running (:mod:`cofi_sweep.retime`, which also re-times an experiment
under another deployment setting). Then the results table and report are written.

Storage is a folder or a URI (s3://, gs://, file://...): Tune and the trials write through
pyarrow.fs either way. For a URI, the timing task and the driver work on local mirrors of the
experiment (checkpoints left out) and upload their outputs back.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import cofi_sweep.sweep.ray_settings  # noqa: F401  (before anything imports ray)
from analysis import storage
from analysis.layout import ADDITIONS_FILE, ADDITIONS_PREFIX, LATENCY_FILE, SWEEP_DONE, TABLE_FILE
from cofi_sweep.core.config import CofiSweepError, ConfigError, from_dict
from cofi_sweep.sweep.space import (SweepSpace, describe_plan, job_for_trial, load_space,
                                    resolve_local_paths)
from analysis.layout import EXPORT_DIR, OPTUNA_DB, PARETO_FILE, PLOTS_DIR, SPACE_FILE, compact_dir

log = logging.getLogger("cofi_sweep.run")


def _searcher(space: SweepSpace, experiment: str, queue: list[tuple[str, int]]) -> Any:
    import optuna

    from cofi_sweep.sweep.search import PerCellOptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # An Optuna DB beside the results, for optuna-dashboard / optuna.visualization. SQLite
    # cannot live in a bucket: there the studies stay in memory, inside the searcher's state,
    # which Tune saves with the experiment (so --resume restores them all the same).
    db = None if storage.is_uri(experiment) else \
        f"sqlite:///{storage.join(experiment, OPTUNA_DB)}"
    return PerCellOptunaSearch(space, storage=db, queue=queue)


def read_additions(experiment: str) -> list[dict[str, Any]]:
    """The trials resumes added to the sweep: ``[{"name": "additions-1", "queue": [[cell,
    seed], ...]}, ...]``, each run as a Tune experiment of its own inside the experiment."""
    path = storage.join(experiment, ADDITIONS_FILE)
    return json.loads(storage.read_text(path)) if storage.exists(path) else []


def run_trials(space: SweepSpace, experiment: str, teacher_dir: str, resume: bool,
               retry_errored: bool = False) -> bool:
    """Runs (or resumes) every trial of the sweep; True when all ended. The trials the sweep
    started with are one Tune experiment (Tune fixes a restored experiment's trial count);
    each resume that added trials gave them another, ``<experiment>/additions-<k>``, run after
    it, with the same searcher studies and ASHA rung records. ``retry_errored``: a resume also
    re-runs errored trials, from their last checkpoint."""
    additions = [(a["name"], [tuple(t) for t in a["queue"]]) for a in read_additions(experiment)]
    added = {t for _, queue in additions for t in queue}
    phases = [(space.name, space.storage_uri(),
               [t for t in space.trial_queue() if t not in added])]
    phases += [(name, experiment, queue) for name, queue in additions]
    trials = errors = 0
    for name, storage_path, queue in phases:
        grid = _run_phase(space, experiment, teacher_dir, name, storage_path, queue,
                          resume, retry_errored)
        if grid is None:
            return False  # interrupted (Ctrl-C returns normally from fit): resume later
        trials, errors = trials + len(grid), errors + grid.num_errors
    storage.write_text(storage.join(experiment, SWEEP_DONE),
                       json.dumps({"trials": trials, "errors": errors}))
    return True


def _run_phase(space: SweepSpace, experiment: str, teacher_dir: str, name: str,
               storage_path: str, queue: list[tuple[str, int]], resume: bool,
               retry_errored: bool) -> Any:
    """One Tune experiment of ``queue``'s trials, started or restored; its ResultGrid, or None
    when interrupted."""
    from ray import tune

    from cofi_sweep.sweep.scheduler import PerCellASHA, PerCellHalving, RunningLimiter
    from cofi_sweep.sweep.trainable import SpentCheckpoints, SweepProgress, train_cofi

    r = space.resources
    trainable = tune.with_resources(
        tune.with_parameters(train_cofi, space=dataclasses.asdict(resolve_local_paths(space)),
                             teacher_dir=teacher_dir, experiment_dir=experiment),
        {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial})
    path = storage.join(storage_path, name)
    if resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=retry_errored)
    else:
        s, scheduler = space.scheduler, None
        searcher, limit = _searcher(space, experiment, queue), r.max_concurrent_trials
        if s.type == "asha":
            scheduler = PerCellASHA(grace_period=s.grace_period,
                                    reduction_factor=s.reduction_factor, experiment=experiment)
        elif s.type == "halving":  # paused trials must not count against the limit
            scheduler = PerCellHalving(grace_period=s.grace_period,
                                       reduction_factor=s.reduction_factor,
                                       cell_sizes=collections.Counter(c for c, _ in queue),
                                       max_concurrent=limit, experiment=experiment)
            searcher, limit = RunningLimiter(searcher, limit, scheduler), None
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=scheduler, num_samples=len(queue),
                max_concurrent_trials=limit, reuse_actors=True),
            run_config=tune.RunConfig(
                name=name, storage_path=storage_path, verbose=0,
                callbacks=[SweepProgress(len(queue)), SpentCheckpoints(path, experiment),
                           *tracker_callbacks(space, experiment)],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=space.checkpoint.num_to_keep),
                failure_config=tune.FailureConfig(max_failures=space.max_failures)))
    grid = tuner.fit()
    return grid if grid.num_terminated + grid.num_errors >= len(queue) else None


def tracker_callbacks(space: SweepSpace, experiment: str) -> list[Any]:
    """Ray Tune's own MLflow / W&B logger callbacks for ``space.callbacks`` (validated: each
    package is installed). One MLflow experiment / W&B project per sweep, one run per trial."""
    out: list[Any] = []
    if "mlflow" in space.callbacks:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        # MLflow's own default (SQLite; its file store is retired); a bucket cannot hold
        # SQLite, so a URI experiment logs to ./mlflow.db here
        db = Path("mlflow.db").resolve() if storage.is_uri(experiment) else \
            Path(experiment, "mlflow.db")
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{db}"
        out.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=space.name,
                                        tags={"sweep": space.name}))
    if "wandb" in space.callbacks:
        from ray.air.integrations.wandb import WandbLoggerCallback

        out.append(WandbLoggerCallback(project=space.name, group=space.name,
                                       excludes=["structure", "layer_alignment"]))
    return out


def timing_device(space: SweepSpace) -> str:
    """``latency.device``; ``auto`` is the kind of device the trials trained on (a GPU when
    ``gpus_per_trial`` > 0), never simply whatever the driver's machine happens to have."""
    lat = space.latency
    if lat.device != "auto":
        return lat.device
    return "cuda" if space.resources.gpus_per_trial > 0 else "cpu"


def measure_latencies(space: SweepSpace, experiment: str, teacher_dir: str
                      ) -> dict[str, Any]:
    """Times every finished trial's compact model, interleaved with the teacher, with the
    space's ``latency`` protocol (:mod:`cofi_sweep.retime`), as one Ray task on a node of the
    kind ``latency.device`` names (a GPU for cuda): on a cluster the driver's own node decides
    nothing. The trials are over, so the task has its node to itself. Returns where it ran."""
    import ray

    device = timing_device(space)
    if device.startswith("cuda") and not ray.cluster_resources().get("GPU"):
        raise ConfigError([f"latency.device: {space.latency.device} times on a GPU, but no "
                           "node of this Ray cluster has one; set latency.device: cpu, or add "
                           "a GPU node"], "space")
    task = ray.remote(_time_on_node).options(
        num_cpus=space.latency.num_threads or 1,
        num_gpus=1 if device.startswith("cuda") else 0)
    return ray.get(task.remote(space, experiment, teacher_dir, device))


def _time_on_node(space: SweepSpace, experiment: str, teacher_dir: str, device: str
                  ) -> dict[str, Any]:
    """The timing task: on the experiment where this node sees it (the shared folder, or its
    own mirror of a URI, whose latency table it then uploads)."""
    import socket

    import ray

    from cofi_sweep.latency.timing import available_cpus
    from cofi_sweep.sweep.retime import Protocol, time_trials
    from cofi_sweep.sweep.trainable import local_teacher

    lat = space.latency
    local = storage.local_copy(experiment)
    protocol = Protocol(lat.batch_size, lat.seq_len, lat.num_threads or available_cpus(),
                        device, warmup=lat.warmup, repeats=lat.repeats)
    path = time_trials(local, local_teacher(teacher_dir, experiment), protocol)
    node = {"node_id": ray.get_runtime_context().get_node_id()[:8],
            "host": socket.gethostname(), "device": device}
    table = json.loads(path.read_text())
    path.write_text(json.dumps({**table, "node": node}, indent=1))
    if storage.is_uri(experiment):
        storage.upload(path, storage.join(experiment, LATENCY_FILE))
    return node


def remove_spent_checkpoints(experiment: Path) -> int:
    """Deletes what ended trials' resumable checkpoints and best snapshots are left (each is
    removed as its trial ends, :class:`~cofi_sweep.sweep.trainable.SpentCheckpoints`; this catches a
    trial that ended before a resume, or a removal that failed); returns the bytes freed."""
    from analysis.results import collect
    from cofi_sweep.sweep.trainable import remove_trial_checkpoints

    table = collect(experiment)
    ended = table[table["status"].isin(["finished", "stopped early"])]
    return sum(remove_trial_checkpoints(trial_dir, job_dir)
               for trial_dir, job_dir in zip(ended["trial_dir"], ended["job_dir"]))


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


def _attach(address: str, space: SweepSpace, experiment: str) -> None:
    """Attaches to a cluster (``--address`` / RAY_ADDRESS, resolved by cluster_address; auth as
    :func:`connect` says) with the runtime_env that ships the code and pins the dependencies,
    and checks that every node sees a folder ``storage_path`` (:mod:`cofi_sweep.sweep.cluster`).
    Done before anything is written or trained, so a cluster this driver cannot use stops the
    sweep first."""
    from cofi_sweep.sweep.cluster import check_storage, runtime_env

    env = runtime_env(space.cluster)
    print(f"[sweep] attaching to the Ray cluster at {address}; runtime_env: "
          + (", ".join(f"{k} ({len(v) if k == 'py_modules' else len(v['packages'])})"
                       for k, v in env.items()) or "none (cluster.* turned it off)"),
          flush=True)
    connect(address, env)  # the first import of ray: connect may set its auth mode
    import ray

    if space.cluster.check_storage and not storage.is_uri(experiment):
        try:  # the storage root: the experiment folder is made only once the sweep starts
            check_storage(Path(experiment).parent)
        except Exception:
            ray.shutdown()
            raise


def _start_local() -> None:
    """A quiet local Ray with this machine's CPUs -- "local": a fresh one, even when an earlier
    `ray start` left its address file."""
    import ray

    from cofi_sweep.latency.timing import available_cpus

    ray.init(address="local", num_cpus=available_cpus(), include_dashboard=False,
             log_to_driver=False, logging_level="warning", configure_logging=True)


def space_changes(stored: dict[str, Any], given: dict[str, Any], prefix: str = ""
                  ) -> list[str]:
    """The settings that differ between two spaces, as ``key: old -> new`` lines."""
    out = []
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key, "<absent>"), given.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += space_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return out


GROWABLE = ("grid", "baselines", "trials_per_cell")  # what a resume may add to


def added_trials(stored: dict[str, Any], space: SweepSpace) -> list[tuple[str, int]]:
    """The (cell id, seed) trials ``space`` adds to the ``stored`` one when it only adds: new
    grid targets, ablations or baselines, or more trials per cell (so more seeds); [] when
    anything else changed (a cell changed or removed, fewer trials, any other setting)."""
    given = json.loads(json.dumps(dataclasses.asdict(space)))
    if space_changes({k: v for k, v in stored.items() if k not in GROWABLE},
                     {k: v for k, v in given.items() if k not in GROWABLE}):
        return []
    try:
        old = from_dict(SweepSpace, stored)
    except ConfigError:  # stored by another version of this tool
        return []
    cells = {c["id"]: c for c in space.cells()}
    if any(cells.get(c["id"]) != c for c in old.cells()) or (
            space.trials_per_cell < old.trials_per_cell):
        return []
    before = set(old.trial_queue())
    return [t for t in space.trial_queue() if t not in before]


def check_resume(space: SweepSpace, experiment: str, force: bool) -> list[tuple[str, int]]:
    """A resumed sweep must be the one that was started, or that one with trials added: its
    trials keep their cells and searcher, so a changed space would silently mix settings.
    Returns the added (cell id, seed) trials; refuses any other change with the differences."""
    stored_file = storage.join(experiment, SPACE_FILE)
    if not storage.exists(stored_file):
        return []
    stored = json.loads(storage.read_text(stored_file))
    changes = space_changes(stored, json.loads(json.dumps(dataclasses.asdict(space))))
    if not changes:
        return []
    added = added_trials(stored, space)
    if added:
        cells = sorted({cell for cell, _ in added})
        print(f"[sweep] resuming with {len(added)} added trial(s) (cells {', '.join(cells)}): "
              f"they run after the sweep's own trials, which keep their settings", flush=True)
        return added
    if force:
        print("[sweep] --force: resuming although the space changed; unfinished trials run "
              "with the new job settings, the grid and search stay as first stored:\n  "
              + "\n  ".join(changes), flush=True)
        return []
    raise ConfigError(["the space differs from the one this experiment was started with:",
                       *(f"  {c}" for c in changes),
                       "a resume may only add: grid targets, ablations, baselines, or a larger "
                       "trials_per_cell (those trials then run after the stored ones). "
                       "Otherwise either give the sweep a new `name` (a fresh experiment), or "
                       "resume with --resume --force (unfinished trials take the new job "
                       "settings; the grid, search and trials_per_cell stay as first stored)"],
                      "--resume")


def record_additions(experiment: str, added: list[tuple[str, int]]) -> str:
    """Stores ``added`` as the experiment's next additions (a Tune experiment of their own,
    see :func:`run_trials`); the sweep is unfinished again. Returns its name."""
    additions = read_additions(experiment)
    name = f"{ADDITIONS_PREFIX}{len(additions) + 1}"
    additions.append({"name": name, "queue": [list(t) for t in added]})
    storage.write_text(storage.join(experiment, ADDITIONS_FILE), json.dumps(additions, indent=1))
    done = storage.join(experiment, SWEEP_DONE)
    if storage.exists(done):
        storage.remove(done)
    return name


def run_sweep(space: SweepSpace, *, resume: bool = False, address: str | None = None,
              force: bool = False, retry_errored: bool = False) -> Path:
    """Runs the whole sweep; returns the local folder with its results (the experiment folder,
    or for a URI its mirror). See the module docstring. ``retry_errored`` (implies ``resume``)
    re-runs the errored trials from their last checkpoint, e.g. after fixing a full disk."""
    resume = resume or retry_errored
    address = cluster_address(address)  # before anything starts
    from cofi_sweep.core.teacher import get_teacher, teacher_folder

    experiment = storage.join(space.storage_uri(), space.name)
    try:
        taken = storage.exists(experiment)
    except (OSError, ValueError) as e:  # no credentials, no network, a URI pyarrow refuses
        raise ConfigError([f"storage_path: cannot open {space.storage_path!r}: {e}"], "space")
    if taken and not resume:
        raise ConfigError([f"experiment {experiment} exists: pass --resume to continue it, or "
                           "set another name"], "command line")
    if address:
        _attach(address, space, experiment)
    if resume:
        added = check_resume(space, experiment, force)
        if added:
            record_additions(experiment, added)
    storage.write_text(storage.join(experiment, SPACE_FILE),
                       json.dumps(dataclasses.asdict(space), indent=1))
    print(describe_plan(space), flush=True)
    if resume:  # on another machine, take the stored teacher rather than train it again
        from cofi_sweep.sweep.trainable import fetch_teacher

        fetch_teacher(experiment, teacher_folder(space.job))
    teacher = get_teacher(space.job)
    print(f"teacher: {teacher.path} ({'cached' if teacher.cached else 'trained'}) dev "
          f"{teacher.metrics}", flush=True)
    speedup_cells = [c for c in space.cells() if c.get("target_speedup")]
    if speedup_cells:  # calibrated here, alone on the machine; trials read the cached table
        from cofi_sweep.latency.targets import make_target

        dense = teacher.load().shape
        for cell in speedup_cells:
            target = make_target(job_for_trial(space, cell, {}, "unused"), dense)
            print(f"[sweep] {cell['id']}: aims at {target.nominal:g}x, predicted by the "
                  f"latency model (dense: {target.dense_latency * 1e3:.2f} ms per batch)",
                  flush=True)

    import ray

    if not address:  # started after the calibration above, which wants the machine to itself
        _start_local()
    if address or storage.is_uri(experiment):  # other machines may need the teacher
        from cofi_sweep.sweep.trainable import store_teacher

        store_teacher(experiment, teacher.path)
    try:
        if not run_trials(space, experiment, str(teacher.path), resume, retry_errored):
            print(f"[sweep] interrupted; continue with --resume (experiment: {experiment})")
            return experiment
        if not storage.is_uri(experiment):
            freed = remove_spent_checkpoints(Path(experiment))
            if freed:
                print(f"[sweep] removed the resumable checkpoints of ended trials: "
                      f"{freed / 1024 ** 3:.2f} GiB freed (errored trials keep theirs)",
                      flush=True)
        print(f"[sweep] timing each compact model interleaved with the teacher, on a "
              f"{timing_device(space)} node", flush=True)
        node = measure_latencies(space, experiment, str(teacher.path))
        print(f"[sweep] timed on node {node['node_id']} ({node['host']}, {node['device']})",
              flush=True)
    finally:
        ray.shutdown()
    local = storage.local_copy(experiment)
    from analysis.report import OUTPUTS, write_report

    report = write_report(local)  # also (re)writes results.parquet
    from cofi_sweep.sweep.exports import export_frontier

    exported = export_frontier(local)
    if storage.is_uri(experiment):
        for name in (LATENCY_FILE, EXPORT_DIR, *OUTPUTS):
            if (local / name).exists():
                storage.upload(local / name, storage.join(experiment, name))
        print(f"[sweep] results uploaded to {experiment}; local copy: {local}")
    _print_summary(experiment, local, space.scheduler.name)
    if exported:
        print("frontier models, exported to load with transformers alone "
              "(AutoModelForSequenceClassification.from_pretrained):")
        for e in exported:
            print(f"  {e['frontier']:<24} {e['speedup']:5.2f}x  score {e['score']:.4f}  "
                  f"{e['out']}  ({'trust_remote_code=True' if e['remote_code'] else e['class']})")
    print(f"report: {report}\nplot: {local / PLOTS_DIR / 'metric_vs_speedup.png'}\n"
          f"frontier (with compact model paths): {local / PARETO_FILE}")
    return local


def _print_summary(experiment: str, local: Path, stopper: str) -> None:
    """What ``stopper`` (the scheduler's name) stopped, how many trials landed on target, the
    best trial per cell (by the selection score, which chose it; dev beside it), and where the
    table and models are."""
    import pandas as pd

    table_path = local / TABLE_FILE
    table = pd.read_parquet(table_path)
    print(f"[sweep] {len(table)} trials: " + ", ".join(
        f"{n} {s}" for s, n in table["status"].value_counts().items()))
    stopped = table[table["status"] == "stopped early"]
    if len(stopped):
        per_cell = ", ".join(f"{c}: {n}" for c, n in stopped["cell_id"].value_counts()
                             .sort_index().items())
        print(f"[sweep] {stopper} stopped {len(stopped)} trial(s) early, each against its own "
              f"cell's selection scores while pruning ({per_cell})")
    done = table[table["status"] == "finished"]
    cofi = done[done["method"] == "cofi"]
    if len(cofi) and "on_target" in cofi:
        hits = int((cofi["on_target"] == True).sum())  # noqa: E712
        print(f"[sweep] on target: {hits} of {len(cofi)} finished CoFi trials are within "
              f"their target's band (realized sparsity in [target - eps, target + "
              f"max_overshoot], or predicted speedup within speedup_tolerance)")
    if len(done):
        cols = ["cell_id", "selection_score", "score", "realized_sparsity",
                "latency_model_speedup", "speedup", "compact_dir"]
        best = done.sort_values("selection_score").groupby("cell_id").tail(1)
        print("best trial per cell (chosen on selection_score; score = dev, reported):")
        print(best.sort_values("cell_id")[[c for c in cols if c in best]].to_string(index=False))
    print(f"results table: {table_path}")
    models = compact_dir("<trial_id>")
    print(f"compact models: {storage.join(experiment, models)}"
          + (f" (local copies: {local / models})" if storage.is_uri(experiment) else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True, help="sweep YAML (see search_spaces/)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted experiment from its storage path")
    parser.add_argument("--address", help="Ray cluster address ('auto' or host:port) of a "
                        "cluster this machine belongs to; see README, Running on a cluster")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--retry-errored", action="store_true",
                        help="resume, and re-run errored trials from their last checkpoint")
    parser.add_argument("--force", action="store_true",
                        help="with --resume: continue although the space changed (see README)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value settings")
    args = parser.parse_intermixed_args(argv)  # key=value may stand anywhere
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from cofi_sweep.job.preflight import check_space

    try:
        space = load_space(args.space, args.overrides)
        problems = check_space(space)  # before Ray starts or a teacher trains
        if problems:
            raise ConfigError(problems, args.space)
        if args.dry_run:
            print(describe_plan(space))
            return 0
        run_sweep(space, resume=args.resume, address=args.address, force=args.force,
                  retry_errored=args.retry_errored)
    except CofiSweepError as e:  # the user's to fix: the message says how, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
