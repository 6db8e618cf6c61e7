"""The sweep's early stopping: ASHA per grid cell, on scores of one kind, that survives resume.

* **Per cell.** One ASHA per cell, so a 90 %-sparse trial is only ever compared with trials of
  its own target and ablation, never stopped for losing to a 50 %-sparse one.
* **One kind of score.** A trial reports ``rung_score`` and ASHA's clock ``ranked_evals`` only
  at *ranked* pruning-stage evaluations: the selection-split score of the model under masks
  projected onto the target's current value (``cofi.project_to_band``), which at a given
  evaluation is the same for every trial of the cell -- the warm-up's value while the target
  warms up, the final band after. Rungs can therefore come early in the warm-up, where they
  save most. Without projection, only evaluations after the expected sparsity has reached the
  target are ranked. Fine-tuning evaluations carry neither, so ASHA never ranks a fine-tuned
  score against another trial's masked one; values that act only after compaction, and the
  schedule settings that place evaluations and the target, are rejected with ASHA at
  validation (``cofi_sweep/space.py``).
* **Across --resume.** Tune restores the scheduler from the pickle written when the sweep
  started, so ASHA's rung records would be empty after a resume and the first trial to reach a
  rung would pass it unopposed. Each cell's records are therefore written to
  ``<experiment>/asha_rungs.json`` whenever they change, and read back when the scheduler is
  unpickled: a resumed sweep ranks against every score recorded before the interruption. Trials
  a resume adds (a Tune experiment of their own) start a scheduler that reads them too.
"""

from __future__ import annotations

import json
from typing import Any

import cofi_sweep.ray_settings  # noqa: F401  (before ray)
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from analysis import storage

ASHA_CLOCK = "ranked_evals"
ASHA_METRIC = "rung_score"
RUNGS_FILE = "asha_rungs.json"


class PerCellASHA(FIFOScheduler):
    """ASHA with one bracket per grid cell (see the module docstring).

    Args:
        grace_period: ranked evaluations before a trial can first be stopped.
        reduction_factor: at each rung, keep the top 1/reduction_factor of the cell's trials.
        experiment: the experiment's folder or URI, where the rung records are kept.
    """

    def __init__(self, *, grace_period: int, reduction_factor: int, experiment: str) -> None:
        super().__init__()
        self._metric = ASHA_METRIC
        self._settings = dict(time_attr=ASHA_CLOCK, metric=ASHA_METRIC, mode="max",
                              max_t=10_000, grace_period=grace_period,
                              reduction_factor=reduction_factor, brackets=1)
        self.experiment = experiment
        self._by_cell: dict[str, ASHAScheduler] = {}
        # cell -> milestone -> {trial: score}; a resume's added trials rank against them too
        self._saved: dict[str, dict[str, dict]] = self._read()

    def __setstate__(self, state: dict[str, Any]) -> None:  # restored by Tuner.restore
        self.__dict__.update(state)
        self._saved = self._read()

    def _read(self) -> dict[str, dict[str, dict]]:
        path = storage.join(self.experiment, RUNGS_FILE)
        return json.loads(storage.read_text(path)) if storage.exists(path) else {}

    def rungs(self, cell: str) -> list[tuple[int, dict[str, float]]]:
        """The cell's rungs: (milestone, {trial id: score recorded there}); private Ray
        attributes, hence the pinned ray version."""
        return [(m, dict(r)) for m, r in self._cell(cell)._brackets[0]._rungs]

    def _cell(self, cell: str) -> ASHAScheduler:
        if cell not in self._by_cell:
            asha = ASHAScheduler(**self._settings)
            saved = self._saved.get(cell, {})
            for milestone, recorded in asha._brackets[0]._rungs:
                recorded.update(saved.get(str(milestone), {}))  # from before an interruption
            self._by_cell[cell] = asha
        return self._by_cell[cell]

    def _persist(self, cell: str) -> None:
        records = {str(m): r for m, r in self.rungs(cell) if r}
        if records != self._saved.get(cell, {}):
            self._saved[cell] = records
            storage.write_text(storage.join(self.experiment, RUNGS_FILE),
                               json.dumps(self._saved, indent=1))

    @staticmethod
    def _cell_of(trial: Any) -> str:
        return trial.config.get("cell_id", "")

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._cell(self._cell_of(trial)).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        cell = self._cell_of(trial)
        action = self._cell(cell).on_trial_result(tune_controller, trial, result)
        if ASHA_CLOCK in result:
            self._persist(cell)
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._cell(self._cell_of(trial)).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._cell(self._cell_of(trial)).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "ASHA per cell: " + ", ".join(sorted(self._by_cell))
