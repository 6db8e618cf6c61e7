"""Benchmark: what running a trial through Ray Tune costs over running the same job directly.

One CoFi job of the quickstart space (its cell ``t0.5-full``, its seed and fixed settings, the
distillation pair the search would otherwise pick fixed at (0.9, 0.1)), twice, one after the
other, each with every available core:

  * direct: ``CofiPruner(job).run()`` in this process, no Ray;
  * Tune:   the same job as the only trial of a one-cell sweep (``cofi_sweep.run.run_trials``:
            Ray started, the trainable's reports every evaluation, checkpoints every
            ``checkpoint.every_n_evals`` evaluations as the space says, the compact model
            uploaded to the experiment), measured as the wall time of ``run_trials`` (Ray's
            start and shutdown included) and as the trial's own ``time_total_s``.

The teacher is trained (or read from the cache) before either is timed. Goal: Tune ÷ direct
≤ 1.05. Writes benchmarks/results/tune_overhead.json.

    python benchmarks/tune_overhead.py
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from cofi_sweep.latency import available_cpus
from cofi_sweep.prune import CofiPruner
from cofi_sweep.run import run_trials
from cofi_sweep.space import job_for_trial, load_space
from cofi_sweep.teacher import get_teacher
from sparsity_control import commit

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "tune_overhead.json"
STORAGE = Path("runs/bench/tune_overhead").resolve()


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
    job = job_for_trial(space, cell, {"cofi.seed": space.job.cofi.seed},
                        str(STORAGE / "direct"))
    job = dataclasses.replace(job, num_threads=cpus)
    torch.set_num_threads(cpus)
    start = time.time()
    direct = CofiPruner(job, teacher=teacher).run()
    direct_s = time.time() - start
    print(f"[direct] {direct_s:.1f} s, realized sparsity {direct.realized_sparsity:.4f}",
          flush=True)

    experiment = str(STORAGE / space.name)
    start = time.time()
    assert run_trials(space, experiment, str(teacher.path), resume=False)
    tune_s = time.time() - start
    import ray

    ray.shutdown()
    from analysis.results import collect

    table = collect(Path(experiment))
    trial_s = float(table["time_total_s"].iloc[0])
    row = table.iloc[0]
    result = {
        "direct_seconds": round(direct_s, 1), "tune_run_trials_seconds": round(tune_s, 1),
        "tune_trial_time_total_s": round(trial_s, 1),
        # the job's own run inside the trial (CofiPruner.run); the rest of time_total_s is
        # the trainable's set-up and the compact model's upload
        "tune_job_wall_seconds": round(float(row["job_wall_seconds"]), 1),
        "tune_over_direct": round(tune_s / direct_s, 3),
        "trial_over_direct": round(trial_s / direct_s, 3),
        "same_job": bool(pd.notna(row.get("realized_sparsity"))
                         and abs(row["realized_sparsity"] - direct.realized_sparsity) < 1e-9),
        "steps": int(row["step"]), "threads": cpus,
        "checkpoint": dataclasses.asdict(space.checkpoint),
        "commit": commit(), "command": "python benchmarks/tune_overhead.py"}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
