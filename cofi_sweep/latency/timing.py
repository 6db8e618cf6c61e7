"""Latency: how models are timed, on what, and with how many threads.

One protocol everywhere (the sweep's exclusive pass, re-timing, the latency model,
benchmarks): full ``batch_size x seq_len`` batches of random token ids (dense matrix work
depends on shapes, not values), a few warm-up passes, then ``repeats`` timed forward passes.
Several models are timed *interleaved* -- one pass of each in turn, repeated -- so a slow
stretch of the machine (another process, thermal throttling) hits all of them alike rather
than whichever happened to run then; every model's median and spread (quartiles, min, max)
are kept, so a reader can tell a real speedup from noise. On a GPU each pass is timed by CUDA
events (:func:`cuda_pass`), not the host's clock.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cofi_sweep.core.allocator import keep_freed_memory


@dataclass
class Timing:
    """Seconds per forward pass over the repeats of one model."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    repeats: int

    @classmethod
    def of(cls, times: list[float]) -> "Timing":
        q1, median, q3 = np.percentile(times, [25, 50, 75])
        return cls(float(median), float(q1), float(q3), float(min(times)), float(max(times)),
                   len(times))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (a
    container's ``--cpus``), which ``os.cpu_count()`` ignores."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def describe_device(device: torch.device) -> dict[str, str | int]:
    """What the timings were taken on, for the report: the CPU model or GPU name, threads,
    torch version."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {"device": device.type, "name": name, "threads": torch.get_num_threads(),
            "torch": torch.__version__}


Runner = Callable[[torch.Tensor, torch.Tensor], object]  # (input_ids, attention_mask) -> any


def _runner(model: torch.nn.Module | Runner, device: torch.device | None
            ) -> tuple[Runner, torch.device]:
    """A model as a runner on its device (a torch module in eval mode), or a runner as is, its
    inputs on ``device`` (the CPU by default: an onnxruntime session wrapped by
    :func:`cofi_sweep.export.onnx_runner`; a GPU for the latency model's layer runners)."""
    if isinstance(model, torch.nn.Module):
        model.eval()
        return model, device or next(model.parameters()).device
    return model, device or torch.device("cpu")


def _cpu_pass(run: Runner, ids: torch.Tensor, mask: torch.Tensor) -> float:
    start = time.perf_counter()
    run(ids, mask)
    return time.perf_counter() - start


def cuda_pass(run: Runner, ids: torch.Tensor, mask: torch.Tensor, cuda=torch.cuda) -> float:
    """Seconds of one pass on a GPU, by CUDA events around it on the current stream: the host
    returns from ``run`` once the kernels are queued, so a host clock would time the queueing.
    The device is synchronised first, so earlier queued work is not counted. ``cuda``: the
    ``torch.cuda`` module (a fake in tests, where no GPU is present)."""
    cuda.synchronize(ids.device)
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    start.record()
    run(ids, mask)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000  # milliseconds


def _timed_pass(run: Runner, ids: torch.Tensor, mask: torch.Tensor) -> float:
    return (cuda_pass if ids.device.type == "cuda" else _cpu_pass)(run, ids, mask)


@torch.no_grad()
def time_models(models: dict[str, torch.nn.Module | Runner], *, batch_size: int, seq_len: int,
                vocab_size: int, device: torch.device | None = None, warmup: int = 2,
                repeats: int = 10) -> dict[str, Timing]:
    """Times every model interleaved (see the module docstring); a :class:`Timing` each.

    Token ids are drawn below ``vocab_size`` (the smallest vocabulary among the models)."""
    keep_freed_memory()  # else a pass's cost depends on what the process allocated before
    ids = torch.randint(5, vocab_size, (batch_size, seq_len),
                        generator=torch.Generator().manual_seed(0))
    runners = {}
    for name, model in models.items():
        run, dev = _runner(model, device)
        runners[name] = (run, ids.to(dev), torch.ones_like(ids).to(dev))
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(warmup + repeats):
        for name, (run, ids_, mask) in runners.items():
            seconds = _timed_pass(run, ids_, mask)
            if i >= warmup:
                times[name].append(seconds)
    return {name: Timing.of(t) for name, t in times.items()}


def measure_latency(model: torch.nn.Module, *, batch_size: int, seq_len: int,
                    device: torch.device | None = None, warmup: int = 2, repeats: int = 10,
                    vocab_size: int | None = None) -> float:
    """Median seconds per forward pass of one model."""
    return time_models({"model": model}, batch_size=batch_size, seq_len=seq_len, device=device,
                       warmup=warmup, repeats=repeats,
                       vocab_size=vocab_size or model.shape.vocab_size)["model"].median
