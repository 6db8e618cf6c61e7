"""A sweep's preflight: what can be checked offline before Ray starts or a teacher trains --
the job (:mod:`cofi_sweep.job.preflight`), each speedup cell's reach, every pretrained baseline
student, and that the storage folder is writable."""

from __future__ import annotations

import uuid
from pathlib import Path

from cofi_sweep.job.preflight import check_job, model_problem, speedup_problem
from cofi_sweep.sweep.space import SweepSpace, aims_at_speedup, job_for_trial


def storage_problem(path: str, key: str = "storage_path") -> str | None:
    """Whether a local storage folder can be created and written (URIs are checked by Ray)."""
    if "://" in path:
        return None
    folder = Path(path).expanduser()
    probe = folder / f".cofi_sweep_probe_{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        return f"{key}: cannot write to {folder} ({e.strerror or e}); choose a writable folder"
    return None


def check_space(space: SweepSpace) -> list[str]:
    """The problems of a sweep: its job, every pretrained baseline student, its storage."""
    problems = check_job(space.job, "job.")
    speedup_cells = [c for c in space.cells() if aims_at_speedup(c)]
    for i, cell in enumerate(speedup_cells if not problems else []):
        job = job_for_trial(space, cell, {}, output_dir="unused")
        problem = speedup_problem(job, f"grid cell {cell['id']}: ", say=i == 0)
        if problem:
            problems.append(problem)
    for name, baseline in space.baselines.items():
        if baseline.pretrained:
            problem = model_problem(f"baselines.{name}.pretrained", baseline.pretrained)
            if problem:
                problems.append(problem)
    storage = storage_problem(space.storage_path)
    return problems + ([storage] if storage else [])
