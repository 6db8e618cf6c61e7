"""Benchmark: what running a trial through Ray Tune costs over running the same job directly.

One CoFi job of the quickstart space (its cell ``t0.5-full``, its seed and fixed settings, the
distillation pair the search would otherwise pick fixed at (0.9, 0.1)), four times, in the
order direct, Tune, Tune, direct, each with every available core:

  * direct: ``CofiPruner(job).run()`` in a fresh process (as ``python -m cofi_sweep.prune``
            and a Tune trial start: cold memory, first calls), no Ray; and once more in this
            process after the others, for comparison (measured: within 1 % of the fresh ones);
  * Tune:   the same job as the only trial of a one-cell sweep (``cofi_sweep.run.run_trials``:
            Ray started, the trainable's reports every evaluation, checkpoints every
            ``checkpoint.every_n_evals`` evaluations as the space says, the compact model
            uploaded to the experiment), measured as the wall time of ``run_trials`` (Ray's
            start and shutdown included) and as the trial's own ``time_total_s``.

The teacher is trained (or read from the cache) before any run is timed. This 2-core VM's
speed drifts by several percent over minutes, as much as the overhead measured: run one way
first and the other second, and the drift reads as overhead. The mirrored order cancels a drift
that is linear in time, and the ratios compare the means of each pair. Goal: Tune ÷ direct
≤ 1.05. Writes benchmarks/results/tune_overhead.json.

    python benchmarks/tune_overhead.py
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from sparsity_control import commit

from cofi_sweep.core.teacher import Teacher, get_teacher
from cofi_sweep.job.recipe import CofiPruner
from cofi_sweep.latency.timing import available_cpus
from cofi_sweep.sweep.driver import run_trials
from cofi_sweep.sweep.space import job_for_trial, load_space

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "tune_overhead.json"
STORAGE = Path("runs/bench/tune_overhead").resolve()


def run_job(job: Any, teacher_dir: str) -> tuple[float, float]:
    """The job run directly: its wall time (set-up included, as a trial's time_total_s) and
    its realized sparsity."""
    start = time.time()
    result = CofiPruner(job, teacher=Teacher.from_dir(teacher_dir)).run()
    return time.time() - start, result.realized_sparsity


def main() -> None:
    cpus = available_cpus()
    space = load_space(HERE.parent / "search_spaces" / "quickstart.yaml", [
        "name=tune_overhead", f"storage_path={STORAGE}", "grid.target_sparsity=[0.5]",
        "grid.target_speedup=[]", "baselines={}", "search={}", "trials_per_cell=1",
        "scheduler.type=none", f"resources.cpus_per_trial={cpus}",
        "resources.max_concurrent_trials=1"])
    [cell] = space.cells()
    teacher = get_teacher(space.job)  # trained once, before either run is timed
    shutil.rmtree(STORAGE, ignore_errors=True)
    torch.set_num_threads(cpus)
    from analysis.results import collect

    def direct(i: int, fresh: bool = True) -> dict:
        job = job_for_trial(space, cell, {"cofi.seed": space.job.cofi.seed},
                            str(STORAGE / f"direct-{i}"))
        job = dataclasses.replace(job, num_threads=cpus)
        if fresh:  # a new process, as `python -m cofi_sweep.prune` and a Tune trial start
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                seconds, sparsity = pool.apply(run_job, (job, str(teacher.path)))
        else:
            seconds, sparsity = run_job(job, str(teacher.path))
        print(f"[direct {i}{'' if fresh else ', in this process'}] {seconds:.1f} s, realized "
              f"sparsity {sparsity:.4f}", flush=True)
        return {"seconds": seconds, "realized_sparsity": sparsity}

    def tuned(i: int) -> dict:
        import ray

        experiment = str(STORAGE / space.name)  # Tune names it after the space
        shutil.rmtree(experiment, ignore_errors=True)
        start = time.time()
        assert run_trials(space, experiment, str(teacher.path), resume=False)
        seconds = time.time() - start
        ray.shutdown()
        row = collect(Path(experiment)).iloc[0]
        print(f"[tune {i}] {seconds:.1f} s, the trial {row['time_total_s']:.1f} s", flush=True)
        return {"seconds": seconds, "trial_s": float(row["time_total_s"]),
                "job_s": float(row["job_wall_seconds"]), "step": int(row["step"]),
                "report_s": float(row["tune_report_seconds"]),
                "realized_sparsity": float(row["realized_sparsity"])}

    runs = [direct(1), tuned(1), tuned(2), direct(2)]  # mirrored: a linear drift cancels
    directs, tunes = [runs[0], runs[3]], [runs[1], runs[2]]
    warm = direct(3, fresh=False)  # for comparison: a process that has run the job before

    def mean(rows: list[dict], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    direct_s = mean(directs, "seconds")
    result = {
        "direct_seconds": [round(r["seconds"], 1) for r in directs],
        "direct_in_process_seconds": round(warm["seconds"], 1),
        "tune_run_trials_seconds": [round(r["seconds"], 1) for r in tunes],
        "tune_trial_time_total_s": [round(r["trial_s"], 1) for r in tunes],
        # the job's own run inside the trial (CofiPruner.run); the rest of time_total_s is
        # the trainable's set-up and the compact model's upload
        "tune_job_wall_seconds": [round(r["job_s"], 1) for r in tunes],
        # of the job's time, how long it stood in tune.report (the driver taking each result
        # and asking for the next, checkpoint saves included)
        "tune_report_seconds": [round(r["report_s"], 1) for r in tunes],
        "tune_over_direct": round(mean(tunes, "seconds") / direct_s, 3),
        "trial_over_direct": round(mean(tunes, "trial_s") / direct_s, 3),
        "same_job": len({round(r["realized_sparsity"], 9) for r in runs}) == 1,
        "steps": tunes[0]["step"], "threads": cpus,
        "order": "direct, Tune, Tune, direct (each direct run in a fresh process)",
        "checkpoint": dataclasses.asdict(space.checkpoint),
        "commit": commit(), "command": "python benchmarks/tune_overhead.py"}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
