"""How busy the machine was with *other* work while a model was timed.

A speedup is a ratio of two timings taken in turn; another process that takes the cores in
between (a test suite, a browser, another trial) skews it, in either direction.

- CPU (:class:`LoadMeter`): the machine's busy CPU time (``/proc/stat``) and this process's own
  (``getrusage``) around a timing; the difference is what other processes used, in cores on
  average. Where ``/proc/stat`` is missing (macOS, Windows) the load is unknown (None).
- GPU (:class:`GpuLoadMeter`): the GPU's utilisation (``nvidia-smi``: the share of its last
  sample period in which any kernel ran) read just before and just after the timing, each time
  after a pause in which this process queues nothing, so whatever ran was another process's (a
  trial sharing the GPU, another user). Device-wide rather than per process, because process
  ids inside a container are not those ``nvidia-smi`` reports. It cannot see a burst that starts
  and ends inside the timing; the teacher's spread and drift (:mod:`.interleaved`) can.
  Without ``nvidia-smi`` the load is unknown (None).

Unknown load is no verdict: the timings' own signals still count.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# a timing is contended when other processes keep more than this many cores busy beyond those
# it leaves free (Ray's own daemons, during a sweep's timing pass on 2 cores: up to 0.22)
SPARE_CORES = 0.4


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes spent busy since boot (user, nice, system, irq, softirq,
    steal), or None where /proc/stat is missing."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class LoadMeter:
    """``with LoadMeter() as meter: ...`` then ``meter.other_cores``: the cores other processes
    kept busy on average meanwhile (None when unknown)."""

    def __enter__(self) -> "LoadMeter":
        self.other_cores: float | None = None
        self._start = (time.monotonic(), _machine_busy_seconds(), _own_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        t0, busy0, own0 = self._start
        busy1, elapsed = _machine_busy_seconds(), time.monotonic() - t0
        if busy0 is None or busy1 is None or elapsed <= 0:
            return
        others = (busy1 - busy0) - (_own_seconds() - own0)
        self.other_cores = max(0.0, others / elapsed)

    def contention(self, threads: int) -> str | None:
        """Why this timing on ``threads`` threads was contended (:func:`contention`), or None."""
        return contention(self.other_cores, threads)

    def readings(self) -> dict[str, float | None]:
        """What the meter read, as a timing row's columns."""
        return {"other_cores": self.other_cores}


def contention(other_cores: float | None, threads: int, cpus: int | None = None) -> str | None:
    """Why a CPU timing on ``threads`` threads was contended by other processes, or None."""
    free = (cpus or os.cpu_count() or 1) - threads
    if other_cores is None or other_cores <= free + SPARE_CORES:
        return None
    return (f"other processes kept {other_cores:.2f} cores busy"
            + (f" ({free:g} free beside the timing's {threads} threads)" if free > 0
               else f" of the {threads} the timing uses"))


# a GPU timing is contended when other processes kept the GPU busy more than this share (%) of
# nvidia-smi's sample period; the pause before each reading outlasts that period (1/6 s to 1 s)
SPARE_GPU_PERCENT = 10.0
GPU_IDLE_PAUSE_S = 1.0


def gpu_id(index: int) -> str:
    """How ``nvidia-smi`` names torch's CUDA device ``index``: its UUID, since
    ``CUDA_VISIBLE_DEVICES`` renumbers devices for torch but not for ``nvidia-smi``."""
    import torch

    uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", "") or "")
    if not uuid:
        return str(index)
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def gpu_utilization(gpu: str) -> float | None:
    """Percent of ``nvidia-smi``'s last sample period in which a kernel ran on ``gpu``, or
    None where ``nvidia-smi`` is missing or says nothing (e.g. a MIG slice)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                              "--format=csv,noheader,nounits", "-i", gpu],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        return float(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


class GpuLoadMeter:
    """``with GpuLoadMeter(gpu) as meter: ...`` then ``meter.other_gpu``: the larger of the GPU's
    utilisation (%) just before and just after, read while this process ran nothing on it
    (None when unknown). ``probe`` reads the utilisation (stubbed in tests)."""

    def __init__(self, gpu: str, probe: Callable[[str], float | None] = gpu_utilization,
                 pause_s: float = GPU_IDLE_PAUSE_S) -> None:
        self.gpu, self.probe, self.pause_s = gpu, probe, pause_s

    def _idle_reading(self) -> float | None:
        time.sleep(self.pause_s)  # this process's last kernels leave the sample window
        return self.probe(self.gpu)

    def __enter__(self) -> "GpuLoadMeter":
        self.other_gpu: float | None = None
        self._before = self._idle_reading()
        return self

    def __exit__(self, *exc: object) -> None:
        readings = [r for r in (self._before, self._idle_reading()) if r is not None]
        self.other_gpu = max(readings) if readings else None

    def contention(self, threads: int) -> str | None:
        """Why this timing was contended (:func:`gpu_contention`), or None; the host's cores
        hardly touch a GPU timing, so ``threads`` does not count."""
        return gpu_contention(self.other_gpu)

    def readings(self) -> dict[str, float | None]:
        """What the meter read, as a timing row's columns (no core count for a GPU timing)."""
        return {"other_cores": None, "other_gpu": self.other_gpu}


def load_meter(device: Any) -> LoadMeter | GpuLoadMeter:
    """The meter for a timing on ``device`` (a ``torch.device``): the GPU's utilisation by
    others for a CUDA device, the cores' otherwise."""
    if device.type == "cuda":
        return GpuLoadMeter(gpu_id(device.index or 0))
    return LoadMeter()


def gpu_contention(other_gpu: float | None) -> str | None:
    """Why a GPU timing was contended by other processes, or None."""
    if other_gpu is None or other_gpu <= SPARE_GPU_PERCENT:
        return None
    return f"other processes kept the GPU busy {other_gpu:.0f}% of the time around the timing"
