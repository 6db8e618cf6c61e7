"""The report on a hand-made experiment folder: the files, frontiers and hypervolumes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.report import write_report


def fake_trial(experiment: Path, name: str, *, cell: str, ablation: str, method: str,
               score: float, compact: str, done: bool = True, realized: float = 0.5) -> None:
    trial = experiment / name
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps(
        {"cell_id": cell, "target_sparsity": 0.5 if method == "cofi" else None,
         "ablation": ablation, "method": method}))
    final = {"trial_id": name, "training_iteration": 5, "score": score, "main_metric": "accuracy",
             "teacher_score": 0.9, "realized_sparsity": realized, "prunable_params": 1000,
             "on_target": abs(realized - 0.5) <= 0.01 if method == "cofi" else None,
             "predicted_speedup": 2.0, "compact_dir": compact,
             "structure": json.dumps({"hidden": 8, "heads": [2, 0], "ffn": [4, 4]})}
    if done:
        final["done_job"] = True
    (trial / "result.json").write_text(json.dumps(final) + "\n")


def test_report_on_a_hand_made_experiment(tmp_path: Path) -> None:
    experiment = tmp_path / "exp"
    for i, (method, ablation, score, latency) in enumerate([
            ("cofi", "full", 0.88, 0.5), ("cofi", "full", 0.85, 0.25), ("cofi", "full", 0.80, 0.5),
            ("distill", "half", 0.84, 0.5)]):
        fake_trial(experiment, f"t{i}", cell=f"c-{ablation}", ablation=ablation, method=method,
                   score=score, compact=f"/models/{i}", realized=0.42 if i == 2 else 0.5)
    fake_trial(experiment, "t9", cell="c-full", ablation="full", method="cofi", score=0.1,
               compact="", done=False)
    (experiment / "sweep_done.json").write_text("{}")
    timings = {"teacher": 1.0,
               "trials": {f"t{i}": t for i, t in enumerate([0.5, 0.25, 0.5, 0.5])}}
    (experiment / "latency.json").write_text(json.dumps(timings))
    report = write_report(experiment)
    table = pd.read_parquet(experiment / "results.parquet")
    assert table.set_index("trial_id")["status"].to_dict() == {
        "t0": "finished", "t1": "finished", "t2": "finished", "t3": "finished",
        "t9": "stopped early"}
    front = pd.read_csv(experiment / "pareto.csv")
    cofi = front[front["frontier"] == "cofi:full"].sort_values("speedup")
    assert cofi["score"].tolist() == [0.88, 0.85]  # (2x, 0.80) is dominated by (2x, 0.88)
    # hypervolume of {(2, .88), (4, .85)} from (1, 0): 3 * .85 + 1 * .03 = 2.58
    assert abs(cofi["hypervolume"].iloc[0] - 2.58) < 1e-9
    assert set(front["frontier"]) == {"cofi:full", "distill"}
    text = report.read_text()
    assert "Largest hypervolume: **cofi:full**" in text and "`/models/1`" in text
    off = text.split("## Off-target trials")[1].split("##")[0]  # only t2 missed its band
    assert "| t2 | c-full | 0.5 | 0.420 | 0.8000 |" in off
    assert "| t0 " not in off and "| t3 " not in off
    for name in ("metric_vs_speedup", "metric_vs_params", "predicted_vs_measured",
                 "frontier_structure"):
        assert (experiment / "plots" / f"{name}.png").is_file()
        assert (experiment / "plots" / f"{name}.svg").is_file()
