"""``--resume``: a resumed sweep must be the one that was started, or that one with trials added.

Its trials keep their cells and searcher, so a changed space would silently mix settings. A
space that only adds (grid targets, ablations, baselines, a larger ``trials_per_cell``) gets
its added trials as a Tune experiment of their own inside the experiment (``additions-<k>``: a
restored Tune experiment keeps its trial count); any other change is refused with the changed
keys, unless ``--force``.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import Any

from analysis import storage
from analysis.layout import ADDITIONS_FILE, ADDITIONS_PREFIX, SPACE_FILE, SWEEP_DONE
from cofi_sweep.core.config import from_dict
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.sweep.space import SweepSpace


def read_additions(experiment: str) -> list[dict[str, Any]]:
    """The trials resumes added to the sweep: ``[{"name": "additions-1", "queue": [[cell,
    seed], ...]}, ...]``, each run as a Tune experiment of its own inside the experiment."""
    path = storage.join(experiment, ADDITIONS_FILE)
    return json.loads(storage.read_text(path)) if storage.exists(path) else []


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
    return queue_minus(space.trial_queue(), old.trial_queue())


def queue_minus(queue: list[tuple[str, int]], taken: list[tuple[str, int]]
                ) -> list[tuple[str, int]]:
    """``queue`` without ``taken``'s trials, counted (trials sharing a pruning run repeat a
    (cell, seed) pair: each occurrence is a trial)."""
    left = collections.Counter(map(tuple, taken))
    out = []
    for trial in queue:
        if left[trial]:
            left[trial] -= 1
        else:
            out.append(trial)
    return out


def with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored space with the settings its version did not have, at their defaults: a setting
    is added with the default that keeps what the tool did before, so an experiment started by
    an earlier version resumes as the same sweep. As stored if it no longer validates."""
    try:
        return json.loads(json.dumps(dataclasses.asdict(from_dict(SweepSpace, stored))))
    except ConfigError:
        return stored


def check_resume(space: SweepSpace, experiment: str, force: bool) -> list[tuple[str, int]]:
    """A resumed sweep must be the one that was started, or that one with trials added: its
    trials keep their cells and searcher, so a changed space would silently mix settings.
    Returns the added (cell id, seed) trials; refuses any other change with the differences."""
    stored_file = storage.join(experiment, SPACE_FILE)
    if not storage.exists(stored_file):
        return []
    stored = with_defaults(json.loads(storage.read_text(stored_file)))
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
