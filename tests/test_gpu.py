"""The GPU code paths, run where a CUDA device is present (skipped elsewhere; the one-command
check benchmarks/gpu_check.sh runs them): training in bf16 on the GPU, timing by CUDA events in
fp16, the GPU latency model, and the peak memory a trial records."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import job, tiny

from cofi_sweep.core.config import DeployConfig
from cofi_sweep.job.recipe import CofiPruner
from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting
from cofi_sweep.latency.latency_model import latency_table
from cofi_sweep.latency.targets import deployment_table

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_a_bf16_job_on_the_gpu_lands_on_target_with_everything_on_it(
        tmp_path: Path, teacher_cache: Path) -> None:
    cfg = job(tmp_path, teacher_cache)
    cfg.device, cfg.cofi.precision = "cuda", "auto"
    torch.cuda.reset_peak_memory_stats()
    pruner = CofiPruner(cfg)
    assert pruner.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    result = pruner.run()
    assert result.on_target and abs(result.realized_sparsity - 0.5) <= 0.01
    for module in (pruner.model, pruner.teacher, pruner.gates, pruner.lagrangian):
        assert all(p.device.type == "cuda" for p in module.parameters())
    assert torch.cuda.max_memory_allocated() > 0


def test_fp16_timing_by_cuda_events_and_the_gpus_load(tmp_path: Path) -> None:
    teacher, compact = tiny(), tiny()
    setting = TimingSetting(batch_size=8, seq_len=32, device="cuda", dtype="fp16", repeats=10)
    with InterleavedTimer(teacher, setting, latency_model=False) as timer:
        row = timer.time(compact)
    assert row["latency_s"] > 0 and 0.5 < row["speedup"] < 2.0  # twins
    assert "other_gpu" in row and row["other_cores"] is None
    assert next(compact.parameters()).dtype == torch.float16


def test_the_gpu_latency_model_is_cached_per_device_and_dtype(tmp_path: Path) -> None:
    shape = tiny().shape
    fp16 = latency_table(shape, batch_size=8, seq_len=32, device="cuda", dtype="fp16",
                         cache_dir=tmp_path, repeats=3)
    assert fp16.protocol["device"] == "cuda" and fp16.protocol["dtype"] == "fp16"
    assert fp16.protocol["name"] == torch.cuda.get_device_name()
    again = deployment_table(DeployConfig(batch_size=8, seq_len=32, device="cuda",
                                          dtype="fp16"), shape)
    assert again.protocol["dtype"] == "fp16"
    assert len(list(tmp_path.glob("*.json"))) == 1
