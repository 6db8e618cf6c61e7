"""How busy the machine was with *other* work while a model was timed.

A speedup is a ratio of two timings taken in turn; another process that takes the cores in
between (a test suite, a browser, another trial) skews it, in either direction. The meter reads
the machine's busy CPU time (``/proc/stat``) and this process's own (``getrusage``) around a
timing: the difference is what other processes used, in cores on average. Where ``/proc/stat``
is missing (macOS, Windows) the load is unknown (None) and only the timings' own signals count.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

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


def contention(other_cores: float | None, threads: int, cpus: int | None = None) -> str | None:
    """Why a CPU timing on ``threads`` threads was contended by other processes, or None."""
    free = (cpus or os.cpu_count() or 1) - threads
    if other_cores is None or other_cores <= free + SPARE_CORES:
        return None
    return (f"other processes kept {other_cores:.2f} cores busy"
            + (f" ({free:g} free beside the timing's {threads} threads)" if free > 0
               else f" of the {threads} the timing uses"))
