"""Prune once, fine-tune per value: jobs that differ only in settings read after compaction
share one pruning state, and a fork of it with given fine-tune settings is exactly the
independent job with those settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from helpers import job

from cofi_sweep.core.model import CofiBert
from cofi_sweep.job.fork import prune_to_state, pruning_key, run_fork
from cofi_sweep.job.recipe import CofiPruner


def weights(result) -> dict[str, torch.Tensor]:
    return CofiBert.from_pretrained(result.compact_dir).state_dict()


def with_cofi(cfg, out: Path, **cofi):
    return dataclasses.replace(cfg, cofi=dataclasses.replace(cfg.cofi, **cofi),
                               output_dir=str(out))


def test_a_fork_of_the_shared_pruning_is_the_independent_job(tmp_path: Path,
                                                             teacher_cache: Path) -> None:
    base = job(tmp_path, teacher_cache, prune_epochs=2, finetune_epochs=0.5)
    slow = with_cofi(base, tmp_path / "slow", finetune_learning_rate=1e-5)
    fast = with_cofi(base, tmp_path / "fast", finetune_learning_rate=3e-4, finetune_epochs=1)
    # what decides the pruning: equal across fine-tune settings and output folders, not seeds
    assert pruning_key(slow) == pruning_key(fast) == pruning_key(base)
    assert pruning_key(with_cofi(base, tmp_path, seed=base.cofi.seed + 1)) != pruning_key(base)
    assert pruning_key(with_cofi(base, tmp_path, learning_rate=3e-4)) != pruning_key(base)

    pruner = CofiPruner(slow)
    state = tmp_path / "state"
    prune_to_state(pruner, state)
    assert pruner.stage == "prune" and pruner.stage_step == pruner.steps["prune"]
    assert not (tmp_path / "state.partial").exists()
    pruner._finish_stage()  # compacted: there is no pruning left to share
    with pytest.raises(ValueError, match="past pruning"):
        prune_to_state(pruner, tmp_path / "again")

    forks = {name: run_fork(cfg, state) for name, cfg in (("slow", slow), ("fast", fast))}
    independent = CofiPruner(with_cofi(fast, tmp_path / "independent")).run()
    a, b = weights(forks["fast"]), weights(independent)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert forks["fast"].compact_metrics == independent.compact_metrics
    # the same compact structure, fine-tuned two ways
    assert forks["slow"].structure == forks["fast"].structure
    slow_weights = weights(forks["slow"])
    assert not all(torch.equal(slow_weights[k], a[k]) for k in a)

