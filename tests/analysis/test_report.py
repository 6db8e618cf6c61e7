"""The report on a hand-made experiment folder: the files, frontiers and hypervolumes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import write_report


def fake_trial(experiment: Path, name: str, *, cell: str, ablation: str, method: str,
               score: float, compact: str, done: bool = True, realized: float = 0.5,
               seed: int = 0, lr: float = 1e-4, selection: str = "selection split: 50",
               target_speedup: float | None = None,
               selection_score: float | None = None) -> None:
    """A trial folder as Tune leaves it; a CoFi trial aims at sparsity 0.5 unless it is given
    a speedup target (then it is on target)."""
    trial = experiment / name
    trial.mkdir(parents=True)
    sparsity_target = 0.5 if method == "cofi" and target_speedup is None else None
    (trial / "params.json").write_text(json.dumps(
        {"cell_id": cell, "target_sparsity": sparsity_target, "target_speedup": target_speedup,
         "ablation": ablation, "method": method, "cofi.seed": seed, "cofi.learning_rate": lr}))
    final = {"trial_id": name, "training_iteration": 5, "score": score, "main_metric": "accuracy",
             "selection": selection, "selection_score": selection_score,
             "teacher_score": 0.9, "realized_sparsity": realized, "prunable_params": 1000,
             "on_target": (abs(realized - 0.5) <= 0.01 if sparsity_target else True)
             if method == "cofi" else None,
             "predicted_speedup": 2.0, "compact_dir": compact,
             "structure": json.dumps({"hidden": 8, "heads": [2, 0], "ffn": [4, 4]})}
    if done:
        final["done_job"] = True
    (trial / "result.json").write_text(json.dumps(final) + "\n")


def test_report_on_a_hand_made_experiment(tmp_path: Path) -> None:
    experiment = tmp_path / "exp"
    trials = [  # method, ablation, score, latency, realized, seed, searched learning rate
        ("cofi", "full", 0.88, 0.5, 0.5, 0, 1e-4), ("cofi", "full", 0.86, 0.5, 0.5, 1, 1e-4),
        ("cofi", "full", 0.85, 0.25, 0.5, 0, 3e-4), ("cofi", "full", 0.95, 0.125, 0.42, 0, 2e-4),
        ("distill", "half", 0.84, 0.5, 0.5, 0, 1e-4)]
    for i, (method, ablation, score, _, realized, seed, lr) in enumerate(trials):
        fake_trial(experiment, f"t{i}", cell=f"c-{ablation}", ablation=ablation, method=method,
                   score=score, compact=f"/models/{i}", realized=realized, seed=seed, lr=lr)
    fake_trial(experiment, "t9", cell="c-full", ablation="full", method="cofi", score=0.1,
               compact="", done=False)
    (experiment / "sweep_done.json").write_text("{}")
    timings = {"teacher": 1.0, "trials": {f"t{i}": t[3] for i, t in enumerate(trials)}}
    (experiment / "latency.json").write_text(json.dumps(timings))
    report = write_report(experiment)
    table = pd.read_parquet(experiment / "results.parquet")
    assert table.set_index("trial_id")["status"].to_dict() == {
        "t0": "finished", "t1": "finished", "t2": "finished", "t3": "finished",
        "t4": "finished", "t9": "stopped early"}
    front = pd.read_csv(experiment / "pareto.csv")
    cofi = front[front["frontier"] == "cofi:full"].sort_values("speedup")
    # t0 and t1 are one point (same cell and searched values, two seeds); t3 scored best and
    # ran fastest but missed its band (0.42 for 0.5): it never stands on the frontier
    assert cofi["speedup"].tolist() == [2.0, 4.0]
    assert cofi["score"].tolist() == pytest.approx([0.87, 0.85])
    assert cofi["seeds"].tolist() == [2, 1] and cofi["trial_ids"].iloc[0] == "t0 t1"
    assert cofi["score_std"].iloc[0] == pytest.approx(0.0141421, abs=1e-6)
    assert cofi["compact_dir"].iloc[0] == "/models/0"  # the better seed's model ships
    # normalised hypervolume (teacher 0.9, floor 0.8): x = log2(s)/4, y = (score - 0.8)/0.1
    # {(0.25, 0.7), (0.5, 0.5)} -> 0.5 * 0.5 + 0.25 * 0.2 = 0.3
    assert cofi["hypervolume"].iloc[0] == pytest.approx(0.3)
    assert set(front["frontier"]) == {"cofi:full", "distill:half"}
    text = report.read_text()
    assert "Largest hypervolume: **cofi:full**" in text and "`/models/0`" in text
    assert "selection split: 50" in text and "never used to choose" in text
    at = text.split("## Accuracy at k× measured speedup")[1].split("##")[0]
    # 2x: cofi 0.87 ± 0.014 vs distill 0.84 (one seed: no verdict); 3x: cofi alone, at
    # 0.87 - 0.02 * log2(3 / 2) = 0.8583
    assert "| 2× | 0.8700 ± 0.0141 | 0.8400 | cofi:full | unknown (one seed) |" in at
    assert "| 3× | 0.8583 | – | cofi:full | only one reaches it |" in at
    assert "| 4× |" in at and "| 6× |" not in at  # nothing on target reaches 6x (t3 is off)
    # each baseline against each CoFi frontier at the baseline's own measured speedup
    versus = text.split("## CoFi against each distillation baseline")[1].split("##")[0]
    assert "same steps in the same three stages" in versus
    assert "| distill:half | 2.00x | 0.8400 | +0.0300 |" in versus
    off = text.split("## Off-target trials")[1].split("##")[0]  # only t3 missed its band
    assert "| t3 | c-full | 0.5 | 0.420 | 0.9500 |" in off
    assert "| t0 " not in off and "| t4 " not in off
    for name in ("metric_vs_speedup", "metric_vs_params", "predicted_vs_measured",
                 "frontier_structure"):
        assert (experiment / "plots" / f"{name}.png").is_file()
        assert (experiment / "plots" / f"{name}.svg").is_file()


def test_report_says_when_dev_did_both(tmp_path: Path) -> None:
    experiment = tmp_path / "exp"
    fake_trial(experiment, "t0", cell="c", ablation="full", method="cofi", score=0.9,
               compact="/m", selection="dev")
    (experiment / "latency.json").write_text(json.dumps({"teacher": 1.0, "trials": {"t0": .5}}))
    assert "**dev did both**" in write_report(experiment).read_text()


def test_sparsity_and_speedup_targets_share_their_ablations_frontier(tmp_path: Path) -> None:
    """As the quickstart leaves them: CoFi at sparsity 0.5 (1.94x) and at a 5x speedup target
    (5.17x) are one frontier, so the baseline at 1.98x meets CoFi between them."""
    experiment = tmp_path / "exp"
    fake_trial(experiment, "t0", cell="t0.5-full", ablation="full", method="cofi", score=0.99,
               compact="/m/0")
    fake_trial(experiment, "t1", cell="s5x-full", ablation="full", method="cofi", score=0.90,
               compact="/m/1", realized=0.82, target_speedup=5.0)
    fake_trial(experiment, "t2", cell="distill-d3", ablation="d3", method="distill", score=0.92,
               compact="/m/2")
    (experiment / "sweep_done.json").write_text("{}")
    speedups = {"t0": 1.94, "t1": 5.17, "t2": 1.98}
    (experiment / "latency.json").write_text(json.dumps(
        {"teacher": 1.0, "trials": {t: 1 / s for t, s in speedups.items()}}))
    text = write_report(experiment).read_text()
    front = pd.read_csv(experiment / "pareto.csv")
    assert set(front["frontier"]) == {"cofi:full", "distill:d3"}
    assert sorted(front[front["frontier"] == "cofi:full"]["trial_ids"]) == ["t0", "t1"]
    # CoFi at 1.98x, linear in log speedup between its two points, minus the baseline's 0.92
    share = (math.log(1.98) - math.log(1.94)) / (math.log(5.17) - math.log(1.94))
    lead = 0.99 + (0.90 - 0.99) * share - 0.92
    versus = text.split("## CoFi against each distillation baseline")[1].split("##")[0]
    assert f"| distill:d3 | 1.98x | 0.9200 | {lead:+.4f} |" in versus
    assert "| s5x-full | 5x |" in text.split("## Speedup targets")[1]


def test_frontier_points_and_shipped_models_are_chosen_on_selection_not_dev(
        tmp_path: Path) -> None:
    """Dev is only reported: a point whose dev score is higher but whose selection score is
    dominated stays off the frontier, and within a point the seed with the better selection
    score ships even where another seed scored higher on dev."""
    experiment = tmp_path / "exp"
    trials = {  # name: (cell, seed, dev, selection, speedup)
        "a0": ("c-a", 0, 0.80, 0.90, 2.0), "a1": ("c-a", 1, 0.84, 0.88, 2.0),
        "b0": ("c-b", 0, 0.90, 0.85, 1.9)}  # better on dev, slower and worse on selection
    for name, (cell, seed, dev, chosen, _) in trials.items():
        fake_trial(experiment, name, cell=cell, ablation="full", method="cofi", score=dev,
                   compact=f"/m/{name}", seed=seed, selection_score=chosen)
    (experiment / "sweep_done.json").write_text("{}")
    (experiment / "latency.json").write_text(json.dumps(
        {"teacher": 1.0, "trials": {n: 1 / t[4] for n, t in trials.items()}}))
    text = write_report(experiment).read_text()
    front = pd.read_csv(experiment / "pareto.csv")
    assert front["trial_ids"].tolist() == ["a0 a1"]  # b0 is dominated on selection
    assert front["score"].iloc[0] == pytest.approx(0.82)  # reported: the seeds' dev mean
    assert front["selection_score"].iloc[0] == pytest.approx(0.89)
    assert front["compact_dir"].iloc[0] == "/m/a0"  # best on selection, not on dev
    assert "which seed's model ships were decided on a selection split" in text


def test_an_unreliable_timing_is_marked_and_left_out_of_the_figures(tmp_path: Path) -> None:
    """Two speedup-target trials, one timed while the machine was busy: the report marks it,
    says why, and computes measured ÷ target and the prediction errors without it."""
    experiment = tmp_path / "exp"
    for name, target, score in (("t0", 2.0, 0.9), ("t1", 4.0, 0.95)):  # both on the frontier
        fake_trial(experiment, name, cell=f"s{target:g}x-full", ablation="full", method="cofi",
                   score=score, compact=f"/m/{name}", realized=0.7, target_speedup=target)
    (experiment / "sweep_done.json").write_text("{}")
    row = {"latency_s": 0.5, "teacher_latency_s": 1.0, "speedup": 2.0, "speedup_low": 1.9,
           "speedup_high": 2.1, "flop_predicted_speedup": 2.0, "latency_model_speedup": 2.02,
           "timing_reliable": True, "timing_note": "", "other_cores": 0.0}
    busy = row | {"speedup": 1.83, "latency_model_speedup": 4.0, "timing_reliable": False,
                  "timing_note": "other processes kept 1.10 cores busy", "other_cores": 1.1}
    (experiment / "latency.json").write_text(json.dumps({"trials": {"t0": row, "t1": busy}}))
    text = write_report(experiment).read_text()
    assert "**1 speedup(s) were timed while the measurement was unreliable**" in text
    targets = text.split("## Speedup targets")[1].split("## ")[0]
    assert "| 1.83x † | 0.458 † |" in targets  # shown, marked, never a plain figure
    assert "over the 1 reliable timing(s): median 1.000" in targets  # t0 alone
    assert "t1: other processes kept 1.10 cores busy" in targets
    predicted = text.split("## Predicted speedup")[1].split("## ")[0]
    assert "| latency model (calibrated) | 1 | 1.0% | 1.0% |" in predicted  # t1 left out
    front = pd.read_csv(experiment / "pareto.csv").set_index("trial_ids")
    assert not front.loc["t1", "timing_reliable"] and front.loc["t0", "timing_reliable"]
    assert "| 1.83x † |" in text.split("## Frontier models")[1]
