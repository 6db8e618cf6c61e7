"""Time compact models interleaved with their teacher, under a deployment setting.

Each compact model is timed *interleaved* with the teacher (:func:`cofi_sweep.latency.timing.
time_models`), so the teacher is re-timed for every model and a slow stretch of the machine slows
both alike; threads default to the CPUs this process may use (affinity and cgroup quota). Used by
the sweep's timing pass and by ``python -m cofi_sweep.retime``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cofi_sweep.core.model import CofiBert, count_flops, resolve_device
from cofi_sweep.latency.latency_model import latency_table
from cofi_sweep.latency.onnx import onnx_runner, onnx_session, to_onnx
from cofi_sweep.latency.timing import available_cpus, describe_device, time_models


@dataclass
class TimingSetting:
    """A deployment setting to time under."""

    batch_size: int = 32
    seq_len: int = 128
    threads: int | None = None  # None: every CPU this process may use
    device: str = "cpu"
    runtime: str = "pytorch"  # or "onnxruntime" (CPU)
    warmup: int = 2
    repeats: int = 10
    # each model timed this many times in turn (fresh sessions each time), the median kept:
    # fresh onnxruntime sessions of a small model intermittently run ~35 % slower for their
    # whole life at batch 32 on a 2-core VM, so one pass moved a speedup by up to 13 %
    # (benchmarks/speedup_fidelity.py)
    passes: int = 1

    @property
    def name(self) -> str:
        return (f"b{self.batch_size}x{self.seq_len}-{self.threads or available_cpus()}t-"
                f"{self.device}-{self.runtime}")


def runtime_runner(model: CofiBert, setting: TimingSetting, workdir: Path, name: str) -> Any:
    """The model as the setting's runtime runs it."""
    if setting.runtime == "onnxruntime":
        path = workdir / f"{name}.onnx"
        to_onnx(model, path)
        return onnx_runner(onnx_session(path, setting.threads or available_cpus()))
    return model.to(resolve_device(setting.device))


def median_pass(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The timing (of several passes of one model) whose speedup is the median."""
    return sorted(passes, key=lambda t: t["speedup"])[len(passes) // 2]


class InterleavedTimer:
    """Times compact models against one teacher under a setting (use as a context manager:
    an onnxruntime setting keeps its exported graphs in a temporary folder)."""

    def __init__(self, teacher: CofiBert, setting: TimingSetting, latency_model: bool = True
                 ) -> None:
        torch.set_num_threads(setting.threads or available_cpus())
        self.dense, self.setting = teacher.shape, setting
        self.model = None  # the latency model is calibrated on the CPU
        if latency_model and setting.device == "cpu":
            self.model = latency_table(teacher.shape, batch_size=setting.batch_size,
                                       seq_len=setting.seq_len, runtime=setting.runtime)
        self.tmp = tempfile.TemporaryDirectory()
        self.teacher = runtime_runner(teacher, setting, Path(self.tmp.name), "teacher")

    def __enter__(self) -> "InterleavedTimer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.tmp.cleanup()

    def time(self, compact: CofiBert, name: str = "compact") -> dict[str, Any]:
        """Medians and quartiles of the model and of the teacher timed interleaved with it,
        the measured speedup and its spread, and the FLOP and latency-model predictions; with
        several passes, those of the median pass and every pass's speedup."""
        passes = [self._time_once(compact, name) for _ in range(self.setting.passes)]
        chosen = median_pass(passes)
        if len(passes) > 1:
            chosen["pass_speedups"] = sorted(t["speedup"] for t in passes)
        return chosen

    def _time_once(self, compact: CofiBert, name: str) -> dict[str, Any]:
        p = self.setting
        timing = time_models(
            {"teacher": self.teacher,
             "compact": runtime_runner(compact, p, Path(self.tmp.name), name)},
            batch_size=p.batch_size, seq_len=p.seq_len, vocab_size=compact.shape.vocab_size,
            warmup=p.warmup, repeats=p.repeats)
        t, c = timing["teacher"], timing["compact"]
        return {
            "latency_s": c.median, "latency_q1": c.q1, "latency_q3": c.q3,
            "teacher_latency_s": t.median, "speedup": t.median / c.median,
            # the spread: a slow-quartile teacher over a fast-quartile model, and back
            "speedup_low": t.q1 / c.q3, "speedup_high": t.q3 / c.q1,
            "flop_predicted_speedup": count_flops(self.dense, p.seq_len)
            / max(1.0, count_flops(compact.shape, p.seq_len)),
            "latency_model_speedup": self.model.speedup(self.dense, compact.shape)
            if self.model else None}

    def describe(self) -> dict:
        """The setting (threads as used), the device, the latency model's grid."""
        info = {"protocol": dataclasses.asdict(self.setting)
                | {"threads": torch.get_num_threads()},
                "device": describe_device(resolve_device(self.setting.device))}
        if self.model:
            info["latency_model"] = {"hidden": self.model.hidden, "heads": self.model.heads,
                                     "widths": self.model.widths}
        return info
