"""Trials that share one pruning run (``SweepSpace.shared_pruning_runs``): prune once, fine-tune
per searched value.

The trials of a cell whose searched values all act after compaction prune alike when their
seeds are equal (:func:`cofi_sweep.job.fork.pruning_key`). The first to arrive prunes and stores
the state at its pruning stage's end with the experiment, in
``<experiment>/shared_pruning/<cell>/<key>/``, so every node and a resumed sweep find it; then
each of them, the one that pruned included, fine-tunes a fork of that state with its own values
(:func:`cofi_sweep.job.fork.make_fork`). A file lock beside the state makes a trial that arrives
while another prunes wait for it rather than prune again. For a URI experiment the lock is per
node: trials on two nodes may each prune the run once (both states are right; the later stays).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from filelock import FileLock

from analysis import storage
from analysis.layout import PRUNED_MARKER, SHARED_PRUNING_DIR
from cofi_sweep.core.config import JobConfig
from cofi_sweep.job.fork import make_fork, prune_to_state, pruning_key
from cofi_sweep.job.recipe import Callback, CofiPruner


def _stored(experiment_dir: str, cell_id: str, key: str) -> str:
    """Where a cell's pruning run of that :func:`pruning_key` is stored."""
    return storage.join(experiment_dir, SHARED_PRUNING_DIR, cell_id, key)


def shared_state(experiment_dir: str, cell_id: str, pruner: CofiPruner) -> tuple[str, Path]:
    """Where the pruning run ``pruner`` would share is stored, and its local folder."""
    key = pruning_key(pruner.job)
    stored = _stored(experiment_dir, cell_id, key)
    if storage.is_uri(stored):
        return stored, Path(tempfile.gettempdir()) / "cofi_sweep_shared" / cell_id / key
    return stored, Path(stored)


def branch(pruner: CofiPruner, experiment_dir: str, cell_id: str, trial_id: str,
           callback: Callback) -> CofiPruner:
    """``pruner``'s job as a fork of its cell's shared pruning run, pruned by ``pruner`` itself
    when no trial has yet (the wait is the lock's); returns the fork, ready to fine-tune."""
    stored, local = shared_state(experiment_dir, cell_id, pruner)
    local.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(local) + ".lock"):
        marker = storage.join(stored, PRUNED_MARKER)
        pruned_here = not storage.exists(marker)
        if pruned_here:
            prune_to_state(pruner, local)
            storage.upload(local, stored)  # (nothing to do for a folder experiment)
            storage.write_text(marker, json.dumps({"trial_id": trial_id,
                                                   "step": pruner.global_step}))
        elif not local.is_dir():  # pruned on another node
            storage.download(stored, local)
    fork = make_fork(pruner.job, local, teacher=pruner.teacher_info, shared_from=pruner,
                     callback=callback)
    if pruned_here:  # its wall time is the pruning's too; the others' their fine-tune's
        fork.start_time = pruner.start_time
    return fork


def pruning_run(experiment_dir: str, cell_id: str, job: JobConfig, trial_id: str
                ) -> dict[str, object]:
    """A sharing trial's columns in the results: its pruning run (``<cell>/<key>``) and
    whether it pruned it itself (``pruned_here``: the others only fine-tuned)."""
    key = pruning_key(job)
    marker = storage.join(_stored(experiment_dir, cell_id, key), PRUNED_MARKER)
    pruned_by = (json.loads(storage.read_text(marker))["trial_id"]
                 if storage.exists(marker) else None)
    return {"pruning_run": f"{cell_id}/{key}", "pruned_here": pruned_by == trial_id}
