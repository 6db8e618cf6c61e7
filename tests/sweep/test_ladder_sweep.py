"""A ladder sweep (``grid.ladder: true``): one pruning run per trial forks a compact model at
every target; the table holds a row per fork in its target's cell, the frontier, the timing
pass, the exports and the summary use them, and synchronous halving stops a ladder between
rungs, keeping the forks it already made (its pause and resume going through the ladder's
checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import tiny_space, write

from cofi_sweep.sweep.space import load_space


def test_a_ladder_sweep_forks_rows_and_stops_between_rungs(tmp_path: Path, teacher_cache: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from cofi_sweep.sweep.driver import run_sweep

    # 16 steps an epoch: rung 1 (0.3) warms up 8 steps and holds 8, forking at step 16 (the
    # 4th ranked evaluation); rung 2 (0.6) forks at step 32. Halving at the 5th ranked
    # evaluation (step 20, inside rung 2) stops one of the two ladders after its first fork.
    raw = tiny_space(tmp_path, teacher_cache, name="ladder", search={}, trials_per_cell=2,
                     scheduler={"type": "halving", "grace_period": 5, "reduction_factor": 2})
    raw["grid"] = {"target_sparsity": [0.3, 0.6], "ablations": {"full": {}}, "ladder": True}
    raw["job"]["cofi"]["ladder_hold_epochs"] = 0.5
    space = load_space(write(tmp_path, raw))
    assert [c["id"] for c in space.cells()] == ["ladder-full"]
    experiment = run_sweep(space)
    out = capsys.readouterr().out
    table = pd.read_parquet(experiment / "results.parquet")
    forks = table[table["ladder_trial"].notna()]  # a stopped ladder's own row is no fork
    ladders = forks.groupby("ladder_trial")["rung"].apply(sorted).to_dict()
    assert sorted(ladders.values()) == [[0.0], [0.0, 1.0]], ladders
    stopped = table[table["status"] == "stopped early"]
    assert len(stopped) == 1 and stopped.iloc[0]["cell_id"] == "ladder-full"
    assert stopped.iloc[0]["trial_id"] == next(t for t, r in ladders.items() if r == [0.0])
    # each fork is a row of its target's cell, on target, timed, its model in storage
    assert (forks["status"] == "finished").all()
    assert sorted(forks["cell_id"]) == ["t0.3-full", "t0.3-full", "t0.6-full"]
    for _, row in forks.iterrows():
        assert row["trial_id"] == f"{row['ladder_trial']}-r{int(row['rung'])}"
        assert row["on_target"] and abs(row["realized_sparsity"] - row["target_sparsity"]) <= 0.01
        assert row["speedup"] > 0 and Path(row["compact_dir"]).is_dir()
        assert f"rung-{int(row['rung'])}" in row["compact_dir"]
    # the frontier stands on forks of both targets, and they are exported
    front = pd.read_csv(experiment / "pareto.csv")
    assert set(front["cell_id"]) <= {"t0.3-full", "t0.6-full"} and len(front)
    assert len(list((experiment / "export").iterdir())) == len(front)
    assert "[sweep] ladders: 3 compact models from 2 pruning run(s)" in out
    # the kept ladder paused at the halving rung and resumed from the ladder's checkpoint,
    # without forking its first rung again
    kept = next(t for t, r in ladders.items() if len(r) == 2)
    lines = [json.loads(line) for line in (Path(table.set_index("trial_id").loc[
        f"{kept}-r0", "trial_dir"]) / "result.json").read_text().splitlines()]
    assert [r["done_rung"] for r in lines if r.get("done_rung") is not None] in ([0, 1],)
