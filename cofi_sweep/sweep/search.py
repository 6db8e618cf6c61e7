"""The sweep's searcher: one Optuna study per grid cell, behind one Ray Tune searcher.

Why one study per cell: what makes a learning rate good at 50 % sparsity says little about 95 %,
and a single study with the cell as one more dimension lets TPE pool all cells (independent TPE
ignores the cell entirely). Here each cell's TPE learns only from that cell's finished trials,
and starts learning after ``searcher.startup_trials`` of them (Optuna's default of 10 was counted
over the whole study, so TPE never left random sampling).

What each study learns from: the selection-split score of a finished trial (``final_score``).
A finished trial whose realized sparsity missed its band is *infeasible* (its ``band_miss``
constraint is > 0, which TPE reads), so a searched value that makes trials under-prune is
never preferred.
Trials that ASHA stopped are PRUNED, failed ones FAIL. Every Optuna trial carries user
attributes that line it up with ``results.parquet``: ``tune_trial_id``, ``seed``,
``realized_sparsity``, ``on_target`` and the latency model's speedup (the measured one is
timed after the sweep, in ``results.parquet``).

Trials are handed out round-robin over the cells (cell 1, cell 2, ..., cell 1, ...), so a cell's
earlier trials have usually finished, and taught its study, before its later ones are proposed.
Trial i of a cell runs with seed ``cofi.seed + i``: no two trials of a cell run the same pruning.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import cofi_sweep.sweep.ray_settings  # noqa: F401  (before ray)
import optuna
from ray.tune.search import Searcher

from cofi_sweep.sweep.space import Distribution, SweepSpace

FINAL_METRIC = "final_score"


def suggest(trial: optuna.Trial, key: str, d: Distribution) -> Any:
    """Samples one searched value; a joint key's value list is sampled as one choice."""
    if d.type == "choice":
        if "," in key:  # Optuna's choices are scalars: a pair travels as its JSON text
            return json.loads(trial.suggest_categorical(key, [json.dumps(v) for v in d.values]))
        return trial.suggest_categorical(key, d.values)
    if d.type == "int":
        return trial.suggest_int(key, int(d.low), int(d.high))
    return trial.suggest_float(key, d.low, d.high, log=d.type == "loguniform")


class PerCellOptunaSearch(Searcher):
    """Ray Tune searcher over the sweep's grid: one Optuna study per cell (see module doc).

    Args:
        space: the validated sweep.
        storage: an Optuna storage URL (``sqlite:///.../optuna.db``), or None to keep the studies
            in memory, inside this searcher's saved state (a bucket cannot hold SQLite).
        queue: the (cell id, seed) trials to hand out; default every trial of ``space``
            (a resume that adds trials runs just the added ones, see ``cofi_sweep/run.py``).
    """

    def __init__(self, space: SweepSpace, storage: str | None = None,
                 queue: list[tuple[str, int]] | None = None) -> None:
        super().__init__(metric=FINAL_METRIC, mode="max")
        self.name, self.search = space.name, dict(space.search)
        self.sampler, self.seed = space.searcher.sampler, space.searcher.seed
        self.startup = space.searcher.startup_trials
        self.cells = {c["id"]: c for c in space.cells()}
        self.queue = [tuple(t) for t in queue] if queue is not None else space.trial_queue()
        self.next = 0
        self.storage = storage
        self.trials: dict[str, tuple[str, int]] = {}  # Tune trial id -> (cell, Optuna number)
        self.failed: dict[str, tuple[str, int]] = {}  # errored ones, which --retry-errored reruns
        self._studies: dict[str, optuna.Study] = {}

    def study(self, cell_id: str) -> optuna.Study:
        """The cell's study, named ``<sweep>/<cell>`` (created on first use)."""
        if cell_id not in self._studies:
            index = list(self.cells).index(cell_id)
            sampler = (optuna.samplers.TPESampler(seed=self.seed + index,
                                                  n_startup_trials=self.startup)
                       if self.sampler == "tpe"
                       else optuna.samplers.RandomSampler(seed=self.seed + index))
            self._studies[cell_id] = optuna.create_study(
                study_name=f"{self.name}/{cell_id}", storage=self.storage, sampler=sampler,
                direction="maximize", load_if_exists=True)
        return self._studies[cell_id]

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        return True  # metric and mode are fixed: the selection score, maximised

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.next >= len(self.queue):
            return Searcher.FINISHED
        cell_id, seed = self.queue[self.next]
        self.next += 1
        cell = self.cells[cell_id]
        trial = self.study(cell_id).ask()
        config: dict[str, Any] = {"cell_id": cell_id, "target_sparsity": cell["target_sparsity"],
                                  "target_speedup": cell.get("target_speedup"),
                                  "ablation": cell["ablation"], "method": cell["method"],
                                  "cofi.seed": seed}
        for key, d in self.search.items():
            config[key] = suggest(trial, key, d)
        trial.set_user_attr("tune_trial_id", trial_id)
        trial.set_user_attr("seed", seed)
        self.trials[trial_id] = (cell_id, trial.number)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if trial_id in self.trials:
            cell_id, number = self.trials.pop(trial_id)
            study = self.study(cell_id)
        elif trial_id in self.failed:  # told FAIL; the retry's outcome is a trial of its own
            cell_id, number = self.failed.pop(trial_id)
            study = self.study(cell_id)
            number = self._copy_failed(study, number)
        else:
            return
        state = optuna.trial.TrialState
        if error or not result:
            study.tell(number, state=state.FAIL)
            self.failed[trial_id] = (cell_id, number)
        elif FINAL_METRIC not in result:  # stopped by ASHA before it finished
            study.tell(number, state=state.PRUNED)
        else:
            trial = optuna.trial.Trial(study, study.trials[number]._trial_id)
            for key in ("realized_sparsity", "on_target", "target_speedup",
                        "latency_model_speedup"):
                if result.get(key) is not None:
                    trial.set_user_attr(key, result[key])
            # <= 0 is feasible: on target; off target, as infeasible as it is far
            trial.set_constraint("band_miss", float(result.get("target_miss") or 0.0))
            study.tell(number, result[FINAL_METRIC])

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # Tune's concurrency limiter forgets errored trials, so it withholds a retried one's
        # completion (--retry-errored): its final result, reported just before, counts instead
        if trial_id in self.failed and result.get(FINAL_METRIC) is not None:
            self.on_trial_complete(trial_id, result)

    @staticmethod
    def _copy_failed(study: optuna.Study, number: int) -> int:
        """A running trial with the failed one's values and attributes (a retried Tune trial
        keeps its config); returns its number."""
        failed = study.trials[number]
        study.enqueue_trial(failed.params, user_attrs={**failed.user_attrs, "retry_of": number})
        return study.ask(fixed_distributions=failed.distributions).number

    def save(self, checkpoint_path: str) -> None:
        state = {k: v for k, v in self.__dict__.items() if k != "_studies"}
        if self.storage is None:  # in memory: the studies travel in this state
            state["_studies"] = self._studies
        with open(checkpoint_path, "wb") as f:
            pickle.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.__dict__.update(state)
        self.failed = state.get("failed", {})  # a searcher saved before retries existed
        self._studies = state.get("_studies", {})  # from the database on first use otherwise
