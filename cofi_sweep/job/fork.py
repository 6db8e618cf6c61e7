"""Jobs that start from a saved pruning state: a ladder's forks, and trials sharing one pruning.

A *fork* is an independent job resumed from the state a pruning stage ended in: its masks
projected onto the target's band, compacted, fine-tuned with the fork's own settings. Resuming
is exact (a resumed job equals an uninterrupted one), so a fork equals the job that would have
pruned the same way and then fine-tuned with those settings.

Two users:

* a ladder (:mod:`cofi_sweep.job.ladder`) forks its one pruning run at every rung;
* trials that differ only in values acting after compaction (``POST_COMPACTION``: the
  fine-tune's learning rate and length) would all prune alike. One of them runs the pruning
  (:func:`prune_to_state`), saving the state at its end; each of them, itself included, then
  fine-tunes a fork of it (:func:`make_fork`) -- prune once, fine-tune per value. Which jobs
  prune alike is :func:`pruning_key`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from cofi_sweep.core.config import POST_COMPACTION, JobConfig
from cofi_sweep.core.teacher import Teacher
from cofi_sweep.job.recipe import Callback, CofiPruner
from cofi_sweep.job.result import CofiResult


def pruning_key(job: JobConfig) -> str:
    """A digest of what decides a job's pruning: every setting but ``POST_COMPACTION`` and
    where the job writes. Jobs with equal keys (same seed, data, teacher, schedule) prune to
    the same state."""
    settings = dataclasses.asdict(job)
    settings.pop("output_dir")
    for name in POST_COMPACTION:
        settings["cofi"].pop(name)
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prune_to_state(pruner: CofiPruner, state_dir: str | Path) -> None:
    """Runs ``pruner`` (fresh, or resumed in distillation or pruning) to its pruning stage's
    end, and saves there the state forks start from, into ``state_dir`` (written beside, then
    renamed: a reader never sees half a state). The optimizers' moments are left out: a fork's
    fine-tune starts its own."""
    if pruner.stage not in ("distill", "prune"):
        raise ValueError(f"the job is past pruning (stage {pruner.stage!r}): nothing to share")
    while pruner.stage == "distill":
        pruner._run_stage()
        pruner._finish_stage()
    pruner._run_stage()
    state_dir = Path(state_dir)
    partial = state_dir.with_name(state_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    pruner.save_checkpoint(partial, optimizer=False)
    shutil.rmtree(state_dir, ignore_errors=True)
    partial.rename(state_dir)


def make_fork(job: JobConfig, state_dir: str | Path, *, teacher: Teacher | None = None,
              shared_from: CofiPruner | None = None, callback: Callback | None = None
              ) -> CofiPruner:
    """An independent job at ``job``'s target, resumed from a pruning state saved at its end
    (``state_dir``), projected onto its band and compacted: ``run()`` fine-tunes and saves it.
    ``shared_from`` lends the teacher's cached outputs (read only), so a fork does not compute
    them again."""
    fork = CofiPruner(job, teacher=teacher, callback=callback)
    if shared_from is not None and shared_from.teacher_cache_tried:
        fork.teacher_cache, fork.teacher_cache_tried = shared_from.teacher_cache, True
    fork.load_checkpoint(state_dir)
    fork._finish_stage()  # the pruning stage's end: its best, projected, compacted
    return fork


def run_fork(job: JobConfig, state_dir: str | Path, **kwargs: Any) -> CofiResult:
    """:func:`make_fork`, run to its result."""
    return make_fork(job, state_dir, **kwargs).run()
