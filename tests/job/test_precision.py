"""Mixed precision on the CPU (bf16 autocast works there): a job in bf16 lands on target and
within a stated tolerance of fp32; fp16's gradient scaler is wired into every optimizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import job

from cofi_sweep.core.precision import autocast, resolve_precision
from cofi_sweep.job.recipe import CofiPruner, run_cofi

# the tiny job's dev set is 64 examples, one answer 0.016: bf16 keeps 8 bits of mantissa, which
# may move the short budget's compact model by a few answers (measured: none, fp16 neither)
TOLERANCE = 0.08


def test_auto_is_fp32_on_the_cpu_and_autocast_casts_the_matmuls() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    a = torch.randn(4, 4)
    with autocast("bf16", cpu):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("fp32", cpu):
        assert (a @ a).dtype == torch.float32


def test_a_bf16_job_lands_on_target_near_fp32(tmp_path: Path, teacher_cache: Path) -> None:
    results = {p: run_cofi(job(tmp_path / p, teacher_cache, precision=p))
               for p in ("fp32", "bf16")}
    for p, result in results.items():
        assert result.on_target and abs(result.realized_sparsity - 0.5) <= 0.01, p
    fp32, bf16 = (results[p].compact_metrics["accuracy"] for p in ("fp32", "bf16"))
    assert abs(bf16 - fp32) <= TOLERANCE, (fp32, bf16)
    # the passes did run in bf16 (its teacher too, cached under its own key): other losses
    losses = {p: [e["loss"] for e in r.history if e["loss"] == e["loss"]]  # not NaN
              for p, r in results.items()}
    assert losses["fp32"] != losses["bf16"]


def test_fp16_steps_every_optimizer_through_the_scaler(tmp_path: Path, teacher_cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pruner = CofiPruner(job(tmp_path, teacher_cache, precision="fp16", distill_epochs=0))
    assert pruner.precision == "fp16" and pruner.scaler.is_enabled()
    stepped = []
    original = pruner.scaler.step
    monkeypatch.setattr(pruner.scaler, "step",
                        lambda opt, *a, **k: (stepped.append(opt), original(opt, *a, **k))[1])
    pruner.stage = "prune"
    pruner._make_optimizers()
    batch = next(iter(pruner.train_loader))
    loss, _ = pruner.train_step({k: v.to(pruner.device) for k, v in batch.items()})
    assert torch.isfinite(torch.tensor(loss))
    assert stepped == [pruner.optimizer, pruner.gate_optimizer, pruner.lambda_optimizer]
    assert all(p.dtype == torch.float32 for p in pruner.gates.parameters())
    assert pruner.scaler.get_scale() > 0 and "scaler" in pruner.state_dict()
