"""Speedup targets (cofi_sweep/targets.py): the expected latency under the gates, a tiny job
that lands in its band, and a target out of reach refused with the maximum."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from helpers import tiny

from cofi_sweep.core.compact import compact
from cofi_sweep.core.config import JobConfig, from_dict
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.gates import MASK_NAMES, Gates, masks_as_probs
from cofi_sweep.job.cli import format_report
from cofi_sweep.job.preflight import check_job
from cofi_sweep.job.recipe import run_cofi
from cofi_sweep.latency.latency_model import LatencyTable
from cofi_sweep.latency.targets import expected_latency, max_speedup

FAMILIES = list(MASK_NAMES)


def table() -> LatencyTable:
    """A hand-made table for tiny-bert (64 hidden, 4 heads, 128 FFN units): curved, with noisy
    entries (2-head MHAs timed faster than 1-head ones) that must be flattened."""
    hidden, heads, widths = [16.0, 32.0, 64.0], [1.0, 2.0, 4.0], [8.0, 32.0, 128.0]
    mha = [[d * (1 + h ** 0.8) * 1e-5 for h in heads] for d in hidden]
    for row in mha:
        row[1] = row[0] * 0.8
    ffn = [[d * (2 + f ** 0.9) * 1e-6 for f in widths] for d in hidden]
    return LatencyTable(hidden=hidden, heads=heads, widths=widths, mha=mha, ffn=ffn,
                        fixed=[d * 2e-5 for d in hidden], protocol={}, scale=1.3,
                        per_mha=2e-4, per_ffn=1e-4)


def gates_with(seed: int) -> Gates:
    shape = tiny().shape
    gates = Gates(num_layers=shape.num_layers, num_heads=shape.heads[0],
                  ffn_size=shape.ffn[0], hidden_size=shape.hidden_size, families=FAMILIES)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in gates.log_alpha.values():
            a.copy_(torch.randn(a.shape, generator=g) * 2)
    return gates


@pytest.mark.parametrize("seed", range(6))
def test_expected_latency_at_binary_masks_is_the_prediction_for_the_compact_model(
        seed: int) -> None:
    gates = gates_with(seed)
    masks = gates.deterministic()
    masks["head_layer_z"][seed % 4] = 0.0  # a removed MHA sub-layer whose heads are still on
    compact_model = compact(tiny(), masks)
    expected = expected_latency(table(), masks_as_probs(masks, gates))
    assert float(expected) == pytest.approx(table().predict(compact_model.shape), rel=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_expected_latency_is_monotone_in_every_gate_and_every_family_moves_it(
        seed: int) -> None:
    gates = gates_with(seed)
    latency = expected_latency(table(), gates.probs())
    latency.backward()
    for family, a in gates.log_alpha.items():
        assert (a.grad >= 0).all(), family  # more of any unit never makes it faster
        assert a.grad.abs().sum() > 0, family  # and every enabled family is steered by it
    g = torch.Generator().manual_seed(seed)
    for family, a in gates.log_alpha.items():  # a finite step up on single gates, too
        for _ in range(5):
            i = int(torch.randint(a.numel(), (1,), generator=g))
            with torch.no_grad():
                a.view(-1)[i] += 1.5
            higher = expected_latency(table(), gates.probs()).detach()
            assert float(higher) >= float(latency.detach()) - 1e-12, family
            latency = higher


def test_max_speedup_is_what_the_families_can_remove() -> None:
    dense = tiny().shape
    every = max_speedup(table(), dense, FAMILIES)
    only_heads = max_speedup(table(), dense, ["head"])  # FFNs and the hidden width stay
    smallest = dataclasses.replace(dense, hidden_size=16, kept_hidden_dims=None,
                                   heads=[0] * 4, ffn=[0] * 4)
    assert every == pytest.approx(table().speedup(dense, smallest))
    assert 1 < only_heads < every


def job(tmp_path: Path, teacher_cache: Path, **cofi: object) -> JobConfig:
    settings = {"target_speedup": 1.6, "distill_epochs": 0.25, "prune_epochs": 2,
                "sparsity_warmup_epochs": 1, "finetune_epochs": 0.25, "batch_size": 16,
                "learning_rate": 1e-4, "reg_learning_rate": 0.1, "eval_every": 5, **cofi}
    return from_dict(JobConfig, {
        "model": "tiny-bert", "task": "synthetic", "output_dir": str(tmp_path / "out"),
        "data": {"source": "synthetic", "synthetic_train_size": 320, "synthetic_eval_size": 64,
                 "max_seq_length": 32},
        "teacher": {"epochs": 2, "learning_rate": 1e-3, "cache_dir": str(teacher_cache)},
        "deploy": {"batch_size": 32, "seq_len": 32, "num_threads": 1},
        "cofi": settings})


def test_a_speedup_target_job_ends_within_its_band(tmp_path: Path,
                                                   teacher_cache: Path) -> None:
    from cofi_sweep.latency.latency_model import latency_table

    events: list[dict] = []
    result = run_cofi(job(tmp_path, teacher_cache), callback=lambda p, e: events.append(e))
    assert result.target_speedup == 1.6 and result.target_sparsity is None
    assert result.on_target and abs(result.latency_model_speedup / 1.6 - 1) <= 0.03
    # the prediction is the deployment setting's latency model on the saved compact model
    torch.set_num_threads(1)
    lat = latency_table(tiny(num_labels=2).shape, batch_size=32, seq_len=32)  # cached
    from cofi_sweep.core.model import CofiBert

    saved = CofiBert.from_pretrained(result.compact_dir)
    dense = tiny(num_labels=2).shape
    assert lat.speedup(dense, saved.shape) == pytest.approx(result.latency_model_speedup)
    ranked = [e for e in events if e["stage"] == "prune" and e["at_target"]]
    assert ranked and all(abs(e["latency_model_speedup"] / 1.6 - 1) <= 0.03 for e in ranked)
    warmup = [e["target_speedup"] for e in events if e["stage"] == "prune"]
    assert warmup[0] < warmup[-1] == pytest.approx(1.6)  # warms up, then holds
    assert "target speedup 1.6x" in format_report(result)


def test_an_unreachable_speedup_is_refused_with_the_maximum(tmp_path: Path,
                                                            teacher_cache: Path) -> None:
    far = job(tmp_path, teacher_cache, target_speedup=500.0)
    problems = check_job(far)
    assert len(problems) == 1 and "out of reach" in problems[0]
    assert "at most" in problems[0] and "cofi.target_speedup: 500x" in problems[0]
    with pytest.raises(ConfigError, match=r"predicts at most \d+\.\d\dx"):
        run_cofi(far)


def test_targets_are_one_or_the_other() -> None:
    with pytest.raises(ConfigError, match="not both"):
        from_dict(JobConfig, {"cofi": {"target_sparsity": 0.5, "target_speedup": 2.0}})
    with pytest.raises(ConfigError, match="must be > 1"):
        from_dict(JobConfig, {"cofi": {"target_speedup": 0.5}})
    assert from_dict(JobConfig, {}).cofi.target_sparsity == 0.5  # the default aim
