"""A target ladder: one pruning run, a compact model at each target; each fork is the
independent job resumed from the same state, and a ladder killed mid-fork resumes without
redoing the forks before it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from helpers import job

from cofi_sweep.core.model import CofiBert
from cofi_sweep.job.fork import run_fork
from cofi_sweep.job.ladder import LADDER_FILE, LadderPruner

LADDER = dict(ladder=[0.3, 0.5], prune_epochs=2, sparsity_warmup_epochs=1,
              ladder_hold_epochs=0.5, finetune_epochs=0.5)


class Killed(Exception):
    pass


def weights(result) -> dict[str, torch.Tensor]:
    return CofiBert.from_pretrained(result.compact_dir).state_dict()


def same_model(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_ladder_forks_each_target_as_the_independent_job_would(tmp_path: Path,
                                                                 teacher_cache: Path) -> None:
    events: list[dict] = []
    ladder = LadderPruner(job(tmp_path / "a", teacher_cache, **LADDER),
                          callback=lambda p, e: events.append(e))
    # the schedule: 20 steps an epoch; rung 1 rises 0 -> 0.3 in 12 of the 20 warm-up steps,
    # rung 2 0.3 -> 0.5 in the other 8, each then holds 10 steps
    assert [(r.start, r.warmup, r.end) for r in ladder.rungs] == [(0, 12, 22), (22, 8, 40)]
    checkpoint = tmp_path / "a" / "ck"
    results = ladder.run(checkpoint_dir=checkpoint)
    assert [r.target_sparsity for r in results] == [0.3, 0.5]
    for value, r in zip((0.3, 0.5), results):
        assert r.on_target and abs(r.realized_sparsity - value) <= 0.01
        assert Path(r.compact_dir).parent.name == f"rung-{[0.3, 0.5].index(value)}"
        assert not (Path(r.compact_dir).parent / "fork").exists()  # removed once done
    # one pruning run: its evaluations rise through both rungs' targets, forks in between
    pruning = [e for e in events if e["stage"] == "prune"]
    assert [e["rung"] for e in pruning] == sorted(e["rung"] for e in pruning)
    assert {e["rung"] for e in events if e.get("fork")} == {0, 1}
    assert max(e["target"] for e in pruning if e["rung"] == 0) == pytest.approx(0.3)
    summary = json.loads((tmp_path / "a" / "out" / LADDER_FILE).read_text())
    assert [r["target"] for r in summary["rungs"]] == [0.3, 0.5]
    assert summary["pruning_steps"] == 40
    # the last fork is the independent 0.5 job resumed from the state it forked from
    independent = run_fork(dataclasses.replace(ladder.jobs[1], output_dir=str(tmp_path / "ind")),
                           checkpoint)
    assert same_model(independent, results[1])
    assert independent.compact_metrics == results[1].compact_metrics

    # killed in the second fork, resumed from the rung's checkpoint: the first fork is not
    # redone, and the second ends exactly as without the kill
    def kill(pruner, event) -> None:
        if event.get("fork") and event["rung"] == 1 and event["stage"] == "finetune":
            raise Killed

    cfg = job(tmp_path / "b", teacher_cache, **LADDER)
    with pytest.raises(Killed):
        LadderPruner(cfg, callback=kill).run(checkpoint_dir=tmp_path / "b" / "ck")
    first = Path(cfg.output_dir) / "rung-0" / "result.json"
    stamp = first.stat().st_mtime_ns
    resumed_events: list[dict] = []
    resumed = LadderPruner(cfg, callback=lambda p, e: resumed_events.append(e))
    resumed.load_checkpoint(tmp_path / "b" / "ck")
    again = resumed.run(checkpoint_dir=tmp_path / "b" / "ck")
    assert first.stat().st_mtime_ns == stamp
    assert {e["rung"] for e in resumed_events} == {1}
    assert same_model(again[0], results[0]) and same_model(again[1], results[1])
    assert [r.compact_metrics for r in again] == [r.compact_metrics for r in results]


def test_a_ladder_is_checked_up_front(tmp_path: Path, teacher_cache: Path) -> None:
    from cofi_sweep.core.errors import ConfigError

    for cofi, message in (
            (dict(ladder=[0.5, 0.3]), "cofi.ladder: targets must rise strictly"),
            (dict(ladder=[0.5, 1.2]), "cofi.ladder: sparsities must be in (0, 1)"),
            (dict(ladder=[0.5, 2.0], target_sparsity=None, target_speedup=3.0),
             "cofi.ladder: speedups must be > 1"),
            (dict(ladder=[0.5], ladder_hold_epochs=0), "cofi.ladder_hold_epochs")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            job(tmp_path, teacher_cache, **cofi)
    assert job(tmp_path, teacher_cache, ladder=[0.5, 0.9]).cofi.ladder == [0.5, 0.9]
