"""Preflight: every user mistake that can be found offline, found before anything starts.

After the config is validated and before Ray starts or a teacher trains, checks that the model
(and every pretrained student) resolves -- an alias whose package is installed, a local folder
holding a model, or a hub name available here -- that the task's data loads and parses, and
that a local storage location is writable, and that every speedup target is reachable (which
calibrates the latency model here, once, before any trial trains). Each problem names the
setting and the fix; the CLIs print them and exit 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cofi_sweep.core.config import JobConfig
from cofi_sweep.core.errors import CofiSweepError


def model_problem(key: str, name: str) -> str | None:
    """Why ``name`` cannot be loaded here, or None."""
    from cofi_sweep.core import pretrained

    try:
        resolved = pretrained.resolve(name)
    except CofiSweepError as e:
        return f"{key}: {e}"
    if Path(resolved).is_dir():
        return None
    try:  # a hub name: its config is a small file, cached after the first download
        from transformers import AutoConfig

        AutoConfig.from_pretrained(resolved)
    except Exception as e:  # offline, unknown name, no access: all end the same way
        return (f"{key}: {name!r} is neither an alias ({', '.join(pretrained.ALIASES)}), a local "
                f"model folder, nor a hub model available here ({type(e).__name__}). Download "
                "it once where there is internet (`hf download <name>` fills the cache), or "
                "point the setting at a local folder")
    return None


def load_checked(job: JobConfig, key: str = "data") -> tuple[Any, str | None]:
    """The task's data (a :class:`~cofi_sweep.core.data.TaskData`) and None, or None and why it
    does not load (seconds for GLUE: loads and parses every file)."""
    from cofi_sweep.core.data import load_task

    try:
        return load_task(job.task, job.data), None
    except CofiSweepError as e:
        return None, f"{key}: {e}"
    except Exception as e:  # the datasets hub offline, a malformed file
        hint = ("; with no internet use data.source: local and data.dir: <a GLUE folder>"
                if job.data.source == "hub" and not job.data.dataset else "")
        return None, (f"{key}: task {job.task!r} from source {job.data.source!r} does not load "
                      f"({type(e).__name__}: {e}){hint}")


def data_problem(job: JobConfig, key: str = "data") -> str | None:
    """Why the task's data does not load, or None."""
    return load_checked(job, key)[1]


def speedup_problem(job: JobConfig, where: str = "", say: bool = True,
                    num_labels: int = 2) -> str | None:
    """Whether the job's speedup target (if any) is reachable in its deployment setting; the
    latency model is calibrated here on a first use (seconds; cached). ``num_labels`` sizes
    the classifier, whose cost is negligible beside the encoder's."""
    if job.cofi.target_speedup is None or job.method != "cofi":
        return None
    from cofi_sweep.core.model import EncoderShape
    from cofi_sweep.latency.targets import deployment_table, reach_problem

    dense = EncoderShape.from_pretrained(job.teacher.path or job.model, num_labels)
    if say:
        print(f"[preflight] latency model for batch {job.deploy.batch_size} x seq "
              f"{job.deploy.seq_len} in {job.deploy.dtype} on this {job.deploy.device} "
              "(calibrated once, then cached)", flush=True)
    problem = reach_problem(job, dense, deployment_table(job.deploy, dense))
    return f"{where}{problem}" if problem else None


def check_job(job: JobConfig, where: str = "") -> list[str]:
    """The problems of one job: its model, its student checkpoint, its data, its target."""
    problems = [model_problem(f"{where}model", job.model)]
    if job.teacher.path:
        problems.append(model_problem(f"{where}teacher.path", job.teacher.path))
    if job.method == "distill" and job.baseline.pretrained:
        problems.append(model_problem(f"{where}baseline.pretrained", job.baseline.pretrained))
    data, problem = load_checked(job, f"{where}data")
    problems.append(problem)
    if not any(problems):  # the model loads: a speedup target can be checked against it
        problems.append(speedup_problem(job, where, num_labels=data.task.num_labels))
    return [p for p in problems if p]
