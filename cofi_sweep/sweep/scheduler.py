"""The sweep's early stopping per grid cell, on scores of one kind, that survives resume:
async ASHA (:class:`PerCellASHA`) or synchronous halving (:class:`PerCellHalving`, below).

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
import math
from typing import Any

import cofi_sweep.sweep.ray_settings  # noqa: F401  (before ray)
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from analysis import storage
from analysis.layout import HALVING_FILE, RUNGS_FILE

ASHA_CLOCK = "ranked_evals"
ASHA_METRIC = "rung_score"


def cell_of(trial: Any) -> str:
    """The grid cell a trial belongs to: each cell is stopped on its own."""
    return trial.config.get("cell_id", "")


def read_record(experiment: str, name: str) -> dict[str, Any]:
    """A scheduler's record kept beside the experiment ({} before the first), so a resumed
    sweep ranks against every score recorded before the interruption."""
    path = storage.join(experiment, name)
    return json.loads(storage.read_text(path)) if storage.exists(path) else {}


def write_record(experiment: str, name: str, record: dict[str, Any]) -> None:
    storage.write_text(storage.join(experiment, name), json.dumps(record, indent=1))


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
        self._saved: dict[str, dict[str, dict]] = read_record(experiment, RUNGS_FILE)

    def __setstate__(self, state: dict[str, Any]) -> None:  # restored by Tuner.restore
        self.__dict__.update(state)
        self._saved = read_record(self.experiment, RUNGS_FILE)

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
            write_record(self.experiment, RUNGS_FILE, self._saved)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._cell(cell_of(trial)).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        cell = cell_of(trial)
        action = self._cell(cell).on_trial_result(tune_controller, trial, result)
        if ASHA_CLOCK in result:
            self._persist(cell)
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._cell(cell_of(trial)).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._cell(cell_of(trial)).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "ASHA per cell: " + ", ".join(sorted(self._by_cell))


def milestones(grace_period: int, reduction_factor: int, limit: int = 10_000) -> list[int]:
    """The rungs' ranked-evaluation counts: grace_period * reduction_factor**k."""
    out, m = [], grace_period
    while m <= limit:
        out.append(m)
        m *= reduction_factor
    return out


class PerCellHalving(FIFOScheduler):
    """Synchronous successive halving per grid cell (``scheduler.type: halving``).

    Async ASHA decides a trial's fate the moment it reaches a rung, against whoever got there
    before it, so the first trials of a cell pass every rung unopposed and start order decides
    much of what is stopped (``benchmarks/asha_policies.py``). Here a trial that reaches a rung
    is *paused* (from a checkpoint the trainable writes there, optimizer included, so it goes
    on exactly) until every trial of its cell still in the running has reported that rung;
    then the top ceil(n / reduction_factor) go on and the others stop. A rung with one trial
    left decides at once; rungs past a cell's last ranked evaluation are never reached. It
    costs waiting and a restart per promotion, not steps.

    Paused trials hold no resources, so Tune's searcher limiter (which counts them as live)
    would stall the sweep: run.py gives the searcher :class:`RunningLimiter` instead, which
    counts only trials not paused here, and paused trials resume only while fewer than
    ``max_concurrent`` run. Rung records and decisions are written to
    ``<experiment>/halving_rungs.json`` and read back when Tune unpickles the scheduler, so a
    resumed sweep keeps them (a trial restored from before its rung reports it again).

    Args:
        grace_period: ranked evaluations before the first rung.
        reduction_factor: keep the top 1/reduction_factor at each rung.
        cell_sizes: trials per cell (all must reach the first rung before it decides).
        max_concurrent: trials running at once.
        experiment: the experiment's folder or URI.
    """

    def __init__(self, *, grace_period: int, reduction_factor: int, cell_sizes: dict[str, int],
                 max_concurrent: int, experiment: str) -> None:
        super().__init__()
        self._metric = ASHA_METRIC
        self.milestones = milestones(grace_period, reduction_factor)
        self.reduction_factor = reduction_factor
        self.cell_sizes = dict(cell_sizes)
        self.max_concurrent = max_concurrent
        self.experiment = experiment
        self.paused: dict[str, int] = {}  # trial id -> the rung it waits at, until it goes on
        self._trials: dict[str, Any] = {}
        self._state: dict[str, dict] = read_record(experiment, HALVING_FILE)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_trials": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:  # restored by Tuner.restore
        self.__dict__.update(state)
        self._state = read_record(self.experiment, HALVING_FILE)

    def cell_state(self, cell: str) -> dict:
        """``{"scores": {milestone: {trial: score}}, "kept": {milestone: [trial, ...]},
        "stopped": {milestone: [...]}, "ended": [trials that ended unstopped]}``; milestones
        as strings (JSON keys)."""
        return self._state.setdefault(cell, {"scores": {}, "kept": {}, "stopped": {},
                                             "ended": []})

    def _rung(self, state: dict, trial_id: str) -> int | None:
        """The first rung the trial has not passed; None past the last."""
        return next((m for m in self.milestones
                     if trial_id not in state["kept"].get(str(m), [])), None)

    def _expected(self, cell: str, state: dict, m: int) -> set[str] | int:
        """Who must report rung m before it decides: the trials kept at the rung before
        (a set), or, at the first rung, how many trials the cell has."""
        i = self.milestones.index(m)
        if i == 0:
            return self.cell_sizes.get(cell, 0)
        return set(state["kept"].get(str(self.milestones[i - 1]), []))

    def _decide(self, tune_controller: Any, cell: str, m: int) -> None:
        state = self.cell_state(cell)
        key = str(m)
        if key in state["kept"]:
            return
        scores = state["scores"].get(key, {})
        ended = set(state["ended"])
        expected = self._expected(cell, state, m)
        if isinstance(expected, int):
            complete = len(scores) >= expected - len(ended - set(scores))
        else:
            complete = not (expected - ended - set(scores))
        if not scores or not complete:
            return
        kept = self._top(scores)
        state["kept"][key] = kept
        state["stopped"][key] = [t for t in scores if t not in kept]
        write_record(self.experiment, HALVING_FILE, self._state)
        for trial_id in state["stopped"][key]:
            trial = self._trials.get(trial_id)
            if trial_id in self.paused and trial is not None:
                del self.paused[trial_id]
                tune_controller.stop_trial(trial)

    def _top(self, scores: dict[str, float]) -> list[str]:
        """The trials a rung keeps: the top ceil(n / reduction_factor), at least one."""
        ranked = sorted(scores, key=lambda t: -scores[t])
        return ranked[:max(1, math.ceil(len(ranked) / self.reduction_factor))]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._trials[trial.trial_id] = trial

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._trials[trial.trial_id] = trial
        if ASHA_CLOCK not in result:
            return self.CONTINUE
        cell, trial_id = cell_of(trial), trial.trial_id
        state = self.cell_state(cell)
        m = self._rung(state, trial_id)
        if m is None or result[ASHA_CLOCK] < m:
            return self.CONTINUE
        if trial_id in state["stopped"].get(str(m), []):
            return self.STOP
        key = str(m)
        scores = state["scores"].setdefault(key, {})
        if trial_id not in scores:
            scores[trial_id] = float(result[ASHA_METRIC])
            if key in state["kept"]:  # decided before it came (a resume's added trial):
                kept = trial_id in self._top(scores)  # ranked against all there
                state["kept" if kept else "stopped"][key].append(trial_id)
            write_record(self.experiment, HALVING_FILE, self._state)
        self._decide(tune_controller, cell, m)
        if trial_id in state["kept"].get(str(m), []):
            return self.CONTINUE
        if trial_id in state["stopped"].get(str(m), []):
            return self.STOP
        self.paused[trial_id] = m
        return self.PAUSE

    def _ended(self, tune_controller: Any, trial: Any) -> None:
        self.paused.pop(trial.trial_id, None)
        cell = cell_of(trial)
        state = self.cell_state(cell)
        stopped = {t for ts in state["stopped"].values() for t in ts}
        if trial.trial_id not in stopped and trial.trial_id not in state["ended"]:
            state["ended"].append(trial.trial_id)  # finished, errored or removed: not waited for
            write_record(self.experiment, HALVING_FILE, self._state)
        for m in self.milestones:  # others may have been waiting for it
            self._decide(tune_controller, cell, m)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._ended(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._ended(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._ended(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        from ray.tune.experiment import Trial

        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == Trial.PENDING:
                return trial
        busy = sum(t.status in (Trial.RUNNING, Trial.PENDING) for t in trials)
        if busy >= self.max_concurrent:
            return None
        for trial in trials:
            if trial.status != Trial.PAUSED or trial.trial_id not in self.paused:
                continue
            state = self.cell_state(cell_of(trial))
            if trial.trial_id in state["kept"].get(str(self.paused[trial.trial_id]), []):
                del self.paused[trial.trial_id]  # kept at the rung it waited at
                return trial
        return None

    def debug_string(self) -> str:
        return f"synchronous halving per cell; {len(self.paused)} paused"


class RunningLimiter(ConcurrencyLimiter):
    """Tune's searcher limiter, not counting the trials ``halving`` has paused (they hold no
    resources, and the rung they wait at needs the trials not yet started)."""

    def __init__(self, searcher: Any, max_concurrent: int, halving: PerCellHalving) -> None:
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.halving = halving

    def suggest(self, trial_id: str) -> dict | None:
        if len(self.live_trials - self.halving.paused.keys()) >= self.max_concurrent:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion not in (None, Searcher.FINISHED):
            self.live_trials.add(trial_id)
            self.num_unfinished_live_trials += 1
        return suggestion
