"""The sweep's progress table: what a person watching a long sweep sees."""

from __future__ import annotations

from types import SimpleNamespace

import cofi_sweep.sweep.ray_settings  # noqa: F401  (before ray)
from cofi_sweep.sweep.callbacks import SweepProgress


def trial(trial_id: str, cell: str, last: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"cell_id": cell}, last_result=last)


def test_progress_table_shows_each_running_trial_with_its_time_left(capsys) -> None:
    progress = SweepProgress(total=4)
    a, b = trial("aaaa0001", "t0.5-full"), trial("bbbb0002", "distill-layers3")
    progress.on_trial_result(0, [], a, {"stage": "prune", "step": 300, "total_steps": 900,
                                        "expected_sparsity": 0.41, "realized_sparsity": 0.5,
                                        "target": 0.5, "selection_score": 0.872})
    progress.on_trial_result(0, [], b, {"stage": "finetune", "step": 800, "total_steps": 900,
                                        "realized_sparsity": 0.5, "selection_score": 0.85})
    progress.latest["aaaa0001"]["start"] -= 600  # ten minutes in, a third of the way
    progress.on_trial_complete(0, [], trial("cccc0003", "t0.8-full", {"done_job": True}))
    lines = progress.lines()
    assert lines[0] == "[sweep] 2 running, 1 done, 0 stopped, 0 errored (of 4)"
    row = next(line for line in lines if "aaaa0001" in line)
    assert "t0.5-full" in row and "prune" in row and "300/900" in row
    assert "0.41/0.50/0.50" in row and "0.8720" in row
    assert "10m00s" in row and "20m00s" in row  # elapsed, and twice that left
    other = next(line for line in lines if "bbbb0002" in line)
    assert "finetune" in other and "800/900" in other and "–/0.50/–" in other
    assert not any("cccc0003" in line for line in lines[1:])  # ended trials leave the table
    assert "[sweep] 2 running, 1 done" in capsys.readouterr().out  # printed when one ended


def test_progress_counts_trials_halving_paused_apart_from_running() -> None:
    progress = SweepProgress(total=3)
    a, b = trial("aaaa0001", "t0.8-full"), trial("bbbb0002", "t0.8-full")
    progress.on_trial_result(0, [], a, {"stage": "prune", "step": 81, "total_steps": 781})
    a.status, b.status = "PAUSED", "RUNNING"  # a waits at a rung for the cell's others
    progress.on_trial_result(0, [a, b], b, {"stage": "prune", "step": 56, "total_steps": 781})
    lines = progress.lines()
    assert lines[0] == "[sweep] 1 running, 1 paused, 0 done, 0 stopped, 0 errored (of 3)"
    assert not any("aaaa0001" in line for line in lines[1:])
    a.status = "RUNNING"  # kept at the rung: resumed
    progress.on_trial_result(0, [a, b], a, {"stage": "prune", "step": 106, "total_steps": 781})
    assert progress.lines()[0].startswith("[sweep] 2 running, 0 done")
