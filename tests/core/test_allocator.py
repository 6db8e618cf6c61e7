"""The allocator setting (cofi_sweep/allocator.py): applied on glibc, skipped when asked."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from cofi_sweep.core.allocator import keep_freed_memory

CHILD = ("from cofi_sweep.core.allocator import keep_freed_memory as k;"
         "print(k(), k.cache_info().hits)")


def _run(**env: str) -> str:
    import os

    return subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **env},
                          capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_sets_glibc_thresholds_once() -> None:
    assert _run(COFI_SWEEP_MALLOC="keep") == ["True", "0"]
    assert keep_freed_memory() is True and keep_freed_memory() is True
    assert keep_freed_memory.cache_info().hits >= 1  # applied once per process


def test_system_allocator_is_left_alone_when_asked() -> None:
    assert _run(COFI_SWEEP_MALLOC="system") == ["False", "0"]
