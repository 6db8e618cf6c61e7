"""The sweep driver: teacher once, one Tune experiment for the whole grid, timing, report.

The command in front of it is :mod:`cofi_sweep.sweep.cli` (``python -m cofi_sweep.run``).

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
names, with nothing else running (:mod:`cofi_sweep.sweep.timing_pass`; ``python -m
cofi_sweep.retime``
re-times an experiment under another deployment setting). Then the results table and report
are written.

Storage is a folder or a URI (s3://, gs://, file://...): Tune and the trials write through
pyarrow.fs either way. For a URI, the timing task and the driver work on local mirrors of the
experiment (checkpoints left out) and upload their outputs back.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import cofi_sweep.sweep.ray_settings  # noqa: F401  (before anything imports ray)
from analysis import storage
from analysis.layout import (
    EXPORT_DIR,
    LATENCY_FILE,
    OPTUNA_DB,
    SHARED_PRUNING_DIR,
    SPACE_FILE,
    SWEEP_DONE,
    TASK_FILE,
)
from analysis.report import OUTPUTS, write_report
from cofi_sweep.core.data import load_task
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.teacher import get_teacher, teacher_folder
from cofi_sweep.latency.targets import make_target
from cofi_sweep.sweep.checkpoints import remove_spent_checkpoints
from cofi_sweep.sweep.cluster import attach, cluster_address, start_local
from cofi_sweep.sweep.exports import export_frontier
from cofi_sweep.sweep.plan import describe_plan
from cofi_sweep.sweep.resume import (
    check_resume,
    queue_minus,
    read_additions,
    record_additions,
)
from cofi_sweep.sweep.space import (
    SweepSpace,
    aims_at_speedup,
    job_for_trial,
    resolve_local_paths,
    timing_device,
)
from cofi_sweep.sweep.summary import print_exports, print_summary
from cofi_sweep.sweep.teacher_store import fetch_teacher, store_teacher
from cofi_sweep.sweep.timing_pass import measure_latencies

# Ray itself (and the searcher, schedulers, trainable and callbacks, which import it) is
# imported inside the functions that use it: on a cluster, connect() must set Ray's auth mode
# before Ray is first imported (cluster.py), and a dry run or a bad space never loads it.

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


def run_trials(space: SweepSpace, experiment: str, teacher_dir: str, resume: bool,
               retry_errored: bool = False) -> bool:
    """Runs (or resumes) every trial of the sweep; True when all ended. The trials the sweep
    started with are one Tune experiment (Tune fixes a restored experiment's trial count);
    each resume that added trials gave them another, ``<experiment>/additions-<k>``, run after
    it, with the same searcher studies and ASHA rung records. ``retry_errored``: a resume also
    re-runs errored trials, from their last checkpoint."""
    additions = [(a["name"], [tuple(t) for t in a["queue"]]) for a in read_additions(experiment)]
    added = [t for _, queue in additions for t in queue]
    phases = [(space.name, space.storage_uri(), queue_minus(space.trial_queue(), added))]
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
    if not errors:  # no trial will fork the shared pruning runs again (a retry might)
        storage.remove_tree(storage.join(experiment, SHARED_PRUNING_DIR))
    return True


def _run_phase(space: SweepSpace, experiment: str, teacher_dir: str, name: str,
               storage_path: str, queue: list[tuple[str, int]], resume: bool,
               retry_errored: bool) -> Any:
    """One Tune experiment of ``queue``'s trials, started or restored; its ResultGrid, or None
    when interrupted."""
    from ray import tune

    from cofi_sweep.sweep.scheduler import PerCellASHA, PerCellHalving, RunningLimiter
    from cofi_sweep.sweep.callbacks import SpentCheckpoints
    from cofi_sweep.sweep.callbacks import SweepProgress
    from cofi_sweep.sweep.trainable import train_cofi

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


def run_sweep(space: SweepSpace, *, resume: bool = False, address: str | None = None,
              force: bool = False, retry_errored: bool = False) -> Path:
    """Runs the whole sweep; returns the local folder with its results (the experiment folder,
    or for a URI its mirror). See the module docstring. ``retry_errored`` (implies ``resume``)
    re-runs the errored trials from their last checkpoint, e.g. after fixing a full disk."""
    resume = resume or retry_errored
    address = cluster_address(address)  # before anything starts
    experiment = storage.join(space.storage_uri(), space.name)
    try:
        taken = storage.exists(experiment)
    except (OSError, ValueError) as e:  # no credentials, no network, a URI pyarrow refuses
        raise ConfigError([f"storage_path: cannot open {space.storage_path!r}: {e}"], "space")
    if taken and not resume:
        raise ConfigError([f"experiment {experiment} exists: pass --resume to continue it, or "
                           "set another name"], "command line")
    if address:
        attach(address, space.cluster, experiment)
    if resume:
        added = check_resume(space, experiment, force)
        if added:
            record_additions(experiment, added)
    storage.write_text(storage.join(experiment, SPACE_FILE),
                       json.dumps(dataclasses.asdict(space), indent=1))
    data = load_task(space.job.task, space.job.data)
    storage.write_text(storage.join(experiment, TASK_FILE),
                       json.dumps(dataclasses.asdict(data.task), indent=1))
    print(describe_plan(space, data), flush=True)
    if resume:  # on another machine, take the stored teacher rather than train it again
        fetch_teacher(experiment, teacher_folder(space.job))
    teacher = get_teacher(space.job)
    print(f"teacher: {teacher.path} ({'cached' if teacher.cached else 'trained'}) dev "
          f"{teacher.metrics}", flush=True)
    speedup_cells = [c for c in space.cells() if aims_at_speedup(c)]
    if speedup_cells:  # calibrated here, alone on the machine; trials read the cached table
        dense = teacher.load().shape
        for cell in speedup_cells:
            target = make_target(job_for_trial(space, cell, {}, "unused"), dense)
            print(f"[sweep] {cell['id']}: aims at {target.nominal:g}x, predicted by the "
                  f"latency model (dense: {target.dense_latency * 1e3:.2f} ms per batch)",
                  flush=True)

    import ray

    if not address:  # started after the calibration above, which wants the machine to itself
        start_local()
    if address or storage.is_uri(experiment):  # other machines may need the teacher
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
    report = write_report(local)  # also (re)writes results.parquet
    exported = export_frontier(local)
    if storage.is_uri(experiment):
        for name in (LATENCY_FILE, EXPORT_DIR, *OUTPUTS):
            if (local / name).exists():
                storage.upload(local / name, storage.join(experiment, name))
        print(f"[sweep] results uploaded to {experiment}; local copy: {local}")
    print_summary(experiment, local, space.scheduler.name)
    print_exports(exported, local, report)
    return local
