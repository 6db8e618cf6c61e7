"""The per-cell Optuna searcher and the per-cell ASHA, driven directly (no Ray session)."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from ray.tune.schedulers import TrialScheduler

from analysis.layout import HALVING_FILE, RUNGS_FILE
from cofi_sweep.core.config import from_dict
from cofi_sweep.sweep.scheduler import ASHA_CLOCK, ASHA_METRIC, PerCellASHA, PerCellHalving
from cofi_sweep.sweep.search import PerCellOptunaSearch
from cofi_sweep.sweep.space import SweepSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)


def space(**changes: object) -> SweepSpace:
    raw = {"name": "s", "job": {"model": "tiny-bert", "task": "synthetic",
                                "data": {"source": "synthetic"}},
           "grid": {"target_sparsity": [0.5, 0.9], "ablations": {"full": {}}},
           "search": {"cofi.learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
                      "cofi.alpha_layer,alpha_pred": {"type": "choice",
                                                      "values": [[0.9, 0.1], [0.5, 0.5]]}},
           "searcher": {"startup_trials": 2}, "trials_per_cell": 6, **changes}
    return from_dict(SweepSpace, raw)


def finish(searcher: PerCellOptunaSearch, trial_id: str, score: float, on_target: bool = True,
           realized: float | None = None) -> None:
    config = searcher_configs[trial_id]
    target = config["target_sparsity"]
    realized = realized if realized is not None else target
    searcher.on_trial_complete(trial_id, {  # as the trainable reports it (CofiResult)
        "final_score": score, "on_target": on_target, "target_sparsity": target,
        "realized_sparsity": realized, "target_miss": 0.0 if on_target else abs(realized - target),
        "latency_model_speedup": 2.0})


searcher_configs: dict[str, dict] = {}


def test_round_robin_cells_distinct_seeds_and_one_study_per_cell(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = PerCellOptunaSearch(space(trials_per_cell=3), storage=db)
    configs = [searcher.suggest(f"t{i}") for i in range(6)]
    assert searcher.suggest("t6") == "FINISHED"
    assert [c["cell_id"] for c in configs] == ["t0.5-full", "t0.9-full"] * 3
    for cell in ("t0.5-full", "t0.9-full"):
        seeds = [c["cofi.seed"] for c in configs if c["cell_id"] == cell]
        assert seeds == [0, 1, 2]  # no two trials of a cell run the same pruning
    assert all(c["cofi.alpha_layer,alpha_pred"] in ([0.9, 0.1], [0.5, 0.5]) for c in configs)
    searcher.on_trial_complete("t0", {"final_score": 0.8, "on_target": True,
                                      "target_sparsity": 0.5, "realized_sparsity": 0.503,
                                      "latency_model_speedup": 1.7})
    searcher.on_trial_complete("t1", {"realized_sparsity": 0.4})  # stopped early
    searcher.on_trial_complete("t2", error=True)
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(db))
    assert names == ["s/t0.5-full", "s/t0.9-full"]
    low = optuna.load_study(study_name="s/t0.5-full", storage=db)
    done = low.trials[0]
    assert done.state.name == "COMPLETE" and done.value == 0.8
    assert done.user_attrs["tune_trial_id"] == "t0" and done.user_attrs["seed"] == 0
    assert done.user_attrs["realized_sparsity"] == 0.503 and done.user_attrs["on_target"]
    assert done.user_attrs["latency_model_speedup"] == 1.7
    assert low.trials[1].state.name == "FAIL"  # t2 was the cell's second trial
    high = optuna.load_study(study_name="s/t0.9-full", storage=db)
    assert high.trials[0].state.name == "PRUNED"


def test_each_cell_learns_from_its_own_trials_after_startup() -> None:
    searcher = PerCellOptunaSearch(space())  # in memory
    searcher_configs.clear()
    # the low cell's finished trials: a high learning rate wins there
    for i in range(12):
        trial_id = f"t{i}"
        searcher_configs[trial_id] = searcher.suggest(trial_id)
        config = searcher_configs[trial_id]
        if config["cell_id"] == "t0.5-full":
            finish(searcher, trial_id, config["cofi.learning_rate"] * 1000)
    low = searcher.study("t0.5-full")
    high = searcher.study("t0.9-full")
    assert len(low.trials) == 6 and len(high.trials) == 6
    assert all(t.state.name == "COMPLETE" for t in low.trials)
    assert all(t.state.name == "RUNNING" for t in high.trials)  # the other cell taught nothing
    # past its 2 startup trials, the low cell's TPE proposes above its random start's median
    rates = [t.params["cofi.learning_rate"] for t in low.trials]
    assert sorted(rates[2:])[1] > sorted(rates[:2])[0]


def test_off_target_finished_trials_are_infeasible_for_tpe() -> None:
    searcher = PerCellOptunaSearch(space(grid={"target_sparsity": [0.5],
                                               "ablations": {"full": {}}}))
    searcher_configs.clear()
    for i in range(2):
        searcher_configs[f"t{i}"] = searcher.suggest(f"t{i}")
    finish(searcher, "t0", 0.99, on_target=False, realized=0.41)  # best score, missed the band
    finish(searcher, "t1", 0.70)
    study = searcher.study("t0.5-full")
    assert study.trials[0].constraints == {"band_miss": pytest.approx(0.09)}
    feasible = [t for t in study.trials if all(v <= 0 for v in t.constraints.values())]
    assert [t.number for t in feasible] == [1]  # TPE treats the off-target one as infeasible


def test_searcher_state_survives_save_and_restore(tmp_path: Path) -> None:
    searcher = PerCellOptunaSearch(space(trials_per_cell=2))
    first = [searcher.suggest(f"t{i}") for i in range(3)]
    searcher.on_trial_complete("t0", {"final_score": 0.5, "on_target": True,
                                      "target_sparsity": 0.5, "realized_sparsity": 0.5})
    searcher.save(str(tmp_path / "state.pkl"))
    restored = PerCellOptunaSearch(space(trials_per_cell=2))
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("t3")["cofi.seed"] == 1 and restored.suggest("t4") == "FINISHED"
    restored.on_trial_complete("t1", {"final_score": 0.6, "on_target": True,
                                      "target_sparsity": 0.9, "realized_sparsity": 0.9})
    assert [t.state.name for t in restored.study("t0.9-full").trials] == ["COMPLETE", "RUNNING"]
    assert len(first) == 3 and len(restored.study("t0.5-full").trials) == 2


def test_a_retried_trial_is_learned_from_after_a_restore(tmp_path: Path) -> None:
    """--retry-errored: the trial was told FAIL; its retry reaches the searcher only through
    its final result (Tune's concurrency limiter forgets errored trials) and becomes a
    completed Optuna trial with the same values, marked as the retry."""
    searcher = PerCellOptunaSearch(space(trials_per_cell=1))
    config = searcher.suggest("t0")
    searcher.on_trial_complete("t0", None, error=True)
    searcher.save(str(tmp_path / "state.pkl"))
    restored = PerCellOptunaSearch(space(trials_per_cell=1))
    restored.restore(str(tmp_path / "state.pkl"))
    restored.on_trial_result("t0", {"selection_score": 0.7})  # an evaluation: nothing yet
    final = {"final_score": 0.8, "on_target": True, "target_miss": 0.0,
             "realized_sparsity": 0.5}
    restored.on_trial_result("t0", final)
    restored.on_trial_complete("t0", final)  # if Tune does pass it on: counted once
    trials = restored.study("t0.5-full").trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].value == 0.8 and trials[1].user_attrs["retry_of"] == 0
    assert trials[1].user_attrs["tune_trial_id"] == "t0"
    assert trials[1].params["cofi.learning_rate"] == config["cofi.learning_rate"]
    assert not restored.failed


def trial(trial_id: str, cell: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"cell_id": cell}, status="RUNNING")


def result(clock: int, score: float) -> dict:
    return {ASHA_CLOCK: clock, ASHA_METRIC: score}


def test_asha_compares_trials_of_one_cell_only_and_ignores_unranked_results(
        tmp_path: Path) -> None:
    asha = PerCellASHA(grace_period=1, reduction_factor=2, experiment=str(tmp_path))
    a, b, c = trial("a", "t0.5"), trial("b", "t0.5"), trial("c", "t0.9")
    for t in (a, b, c):
        asha.on_trial_add(None, t)
    assert asha.on_trial_result(None, a, result(1, 0.9)) == TrialScheduler.CONTINUE
    # a fine-tuning or warm-up result carries no rung score: never ranked, whatever its score
    assert asha.on_trial_result(None, b, {"selection_score": 0.1}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, c, result(1, 0.5)) == TrialScheduler.CONTINUE  # own cell
    assert asha.on_trial_result(None, b, result(1, 0.6)) == TrialScheduler.STOP
    assert asha.rungs("t0.5")[-1] == (1, {"a": 0.9, "b": 0.6})


def test_asha_rung_records_survive_a_resume(tmp_path: Path) -> None:
    asha = PerCellASHA(grace_period=1, reduction_factor=2, experiment=str(tmp_path))
    a = trial("a", "t0.5")
    asha.on_trial_add(None, a)
    asha.on_trial_result(None, a, result(1, 0.9))
    asha.on_trial_result(None, a, result(2, 0.92))
    assert (tmp_path / RUNGS_FILE).is_file()
    # Tune restores the scheduler from the pickle it took when the sweep started
    restored = pickle.loads(pickle.dumps(PerCellASHA(grace_period=1, reduction_factor=2,
                                                     experiment=str(tmp_path))))
    b = trial("b", "t0.5")
    restored.on_trial_add(None, b)
    assert restored.on_trial_result(None, b, result(1, 0.5)) == TrialScheduler.STOP
    assert restored.rungs("t0.5")[-1][1] == {"a": 0.9, "b": 0.5}


class Controller:
    """What the halving scheduler asks of Tune's controller: the trials, and stopping one."""

    def __init__(self, *trials: SimpleNamespace) -> None:
        self.trials, self.stopped = list(trials), []

    def get_trials(self) -> list[SimpleNamespace]:
        return self.trials

    def stop_trial(self, t: SimpleNamespace) -> None:
        t.status = "TERMINATED"
        self.stopped.append(t.trial_id)


def halving(tmp_path: Path, sizes: dict[str, int], concurrent: int = 2) -> PerCellHalving:
    return PerCellHalving(grace_period=1, reduction_factor=2, cell_sizes=sizes,
                          max_concurrent=concurrent, experiment=str(tmp_path))


def test_halving_waits_for_the_whole_cell_then_keeps_the_top_half(tmp_path: Path) -> None:
    h = halving(tmp_path, {"t0.5": 4, "t0.9": 1})
    ts = [trial(i, "t0.5") for i in "abcd"]
    other = trial("x", "t0.9")
    ctl = Controller(*ts, other)
    for t in [*ts, other]:
        h.on_trial_add(ctl, t)
    # the first trials at the rung wait, whatever their score: no start order decides
    for t, score in zip(ts[:3], (0.6, 0.9, 0.7)):
        assert h.on_trial_result(ctl, t, result(1, score)) == TrialScheduler.PAUSE
        t.status = "PAUSED"
    assert h.on_trial_result(ctl, other, result(1, 0.1)) == TrialScheduler.CONTINUE  # alone
    other.status = "TERMINATED"
    assert h.choose_trial_to_run(ctl) is None  # nobody kept yet
    # the last of the cell decides the rung: b (0.9) and d (0.8) go on, a and c stop
    assert h.on_trial_result(ctl, ts[3], result(1, 0.8)) == TrialScheduler.CONTINUE
    assert sorted(ctl.stopped) == ["a", "c"]
    assert h.choose_trial_to_run(ctl) is ts[1]  # one running (d), one slot: b resumes
    ts[1].status = "RUNNING"
    assert h.choose_trial_to_run(ctl) is None  # two running: the limit
    # unranked results (fine-tuning) never count; the next rung (2) has b and d only
    assert h.on_trial_result(ctl, ts[1], {"selection_score": 0.1}) == TrialScheduler.CONTINUE
    assert h.on_trial_result(ctl, ts[1], result(2, 0.5)) == TrialScheduler.PAUSE
    assert h.on_trial_result(ctl, ts[3], result(2, 0.7)) == TrialScheduler.CONTINUE
    assert ctl.stopped[-1] == "b"
    assert h.cell_state("t0.5")["kept"] == {"1": ["b", "d"], "2": ["d"]}


def test_halving_does_not_wait_for_a_trial_that_ended(tmp_path: Path) -> None:
    h = halving(tmp_path, {"t0.5": 3})
    a, b, c = (trial(i, "t0.5") for i in "abc")
    ctl = Controller(a, b, c)
    assert h.on_trial_result(ctl, a, result(1, 0.9)) == TrialScheduler.PAUSE
    a.status = "PAUSED"
    assert h.on_trial_result(ctl, b, result(1, 0.5)) == TrialScheduler.PAUSE
    b.status = "PAUSED"
    h.on_trial_error(ctl, c)  # c failed before the rung: the rung decides without it
    assert ctl.stopped == ["b"] and h.choose_trial_to_run(ctl) is a


def test_halving_records_survive_a_resume_and_judge_late_trials(tmp_path: Path) -> None:
    h = halving(tmp_path, {"t0.5": 2})
    a, b = trial("a", "t0.5"), trial("b", "t0.5")
    ctl = Controller(a, b)
    h.on_trial_result(ctl, a, result(1, 0.9))
    h.on_trial_result(ctl, b, result(1, 0.5))
    assert (tmp_path / HALVING_FILE).is_file()
    restored = pickle.loads(pickle.dumps(halving(tmp_path, {"t0.5": 1})))
    # a trial a resume added reaches the decided rung: ranked against every score there
    late, later = trial("c", "t0.5"), trial("d", "t0.5")
    assert restored.on_trial_result(ctl, late, result(1, 0.95)) == TrialScheduler.CONTINUE
    assert restored.on_trial_result(ctl, later, result(1, 0.1)) == TrialScheduler.STOP
    # a kept trial restored from a checkpoint before the rung reports it again: still kept
    assert restored.on_trial_result(ctl, a, result(1, 0.9)) == TrialScheduler.CONTINUE
    assert restored.on_trial_result(ctl, b, result(1, 0.5)) == TrialScheduler.STOP
