"""Timing in another dtype (item 2 of the GPU work, tested on the CPU, where bf16 runs): the
teacher and the compact model are cast alike, the setting and the latency model name the dtype,
fp32 keys stay as they were, and an impossible request is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import tiny

from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting
from cofi_sweep.latency.latency_model import latency_table, table_key
from cofi_sweep.sweep.retime import main as retime_main


def test_teacher_and_compact_are_timed_in_the_settings_dtype() -> None:
    teacher, compact = tiny(), tiny()
    setting = TimingSetting(batch_size=2, seq_len=8, threads=1, dtype="bf16", warmup=1,
                            repeats=3)
    assert setting.name.endswith("-cpu-pytorch-bf16")
    assert not TimingSetting(2, 8, 1).name.endswith("fp32")  # fp32 names stay as they were
    with InterleavedTimer(teacher, setting, latency_model=False, retries=0) as timer:
        row = timer.time(compact)
        assert next(timer.teacher.parameters()).dtype == torch.bfloat16
    assert next(compact.parameters()).dtype == torch.bfloat16 and row["speedup"] > 0
    assert timer.describe()["protocol"]["dtype"] == "bf16"


def test_the_latency_model_is_calibrated_and_cached_per_dtype(tmp_path: Path) -> None:
    shape = tiny().shape
    key = table_key(shape, 2, 8, "pytorch")
    assert "dtype" not in key and table_key(shape, 2, 8, "pytorch", dtype="bf16")["dtype"] \
        == "bf16"  # fp32 tables calibrated before keep their cache
    bf16 = latency_table(shape, batch_size=2, seq_len=8, dtype="bf16", cache_dir=tmp_path,
                         repeats=1, warmup=0, hidden_points=2, unit_points=2)
    assert bf16.protocol["dtype"] == "bf16" and bf16.protocol["device"] == "cpu"
    fp32 = latency_table(shape, batch_size=2, seq_len=8, cache_dir=tmp_path, repeats=1,
                         warmup=0, hidden_points=2, unit_points=2)
    assert fp32.protocol["dtype"] == "fp32" and len(list(tmp_path.glob("*.json"))) == 2


def test_retime_refuses_a_dtype_the_onnx_graphs_do_not_have(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    assert retime_main([str(tmp_path), "--runtime", "onnxruntime", "--dtype", "fp16"]) == 2
    assert "the onnx graphs are fp32" in capsys.readouterr().err
