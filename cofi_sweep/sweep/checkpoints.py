"""Bounded disk: an ended trial's resumable checkpoints and best snapshot are removed as it ends
(:class:`~cofi_sweep.sweep.callbacks.SpentCheckpoints`), and whatever is left at the sweep's end."""

from __future__ import annotations

from pathlib import Path

from analysis import storage
from analysis.layout import BEST_FILE
from analysis.results import collect


def remove_trial_checkpoints(trial_dir: str, stored_dir: str) -> int:
    """Deletes an ended trial's Tune checkpoints (in ``trial_dir``) and its best snapshot (in
    its ``stored_dir``); returns the bytes freed."""
    freed = sum(storage.remove_tree(storage.join(trial_dir, name))
                for name in storage.children(trial_dir) if name.startswith("checkpoint_"))
    return freed + storage.remove_tree(storage.join(stored_dir, BEST_FILE))


def remove_spent_checkpoints(experiment: Path) -> int:
    """Deletes what ended trials' resumable checkpoints and best snapshots are left (each is
    removed as its trial ends, :class:`~cofi_sweep.sweep.trainable.SpentCheckpoints`; this catches a
    trial that ended before a resume, or a removal that failed); returns the bytes freed."""
    table = collect(experiment)
    ended = table[table["status"].isin(["finished", "stopped early"])]
    return sum(remove_trial_checkpoints(trial_dir, job_dir)
               for trial_dir, job_dir in zip(ended["trial_dir"], ended["job_dir"]))
