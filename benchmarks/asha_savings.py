"""Benchmark: what ASHA saves. The same sweep (same cells, seeds and searched values) run with
ASHA and without it; training steps spent with ASHA / without, and the hypervolume each
reaches (the report's normalised hypervolume of the CoFi frontier).

Sweeps: the quickstart's CoFi cells by default (4 trials per cell, 1-epoch warm-up; about
10-15 minutes a sweep on 2 CPU cores), or a space of benchmarks/spaces/ (the paper's schedule
shape, on the synthetic task or on SST-2; 15-45 minutes a sweep). Teachers are cached.

Each sweep times its own models at its end, minutes apart, and on this 2-core machine two passes
differ by several percent -- as much as the hypervolumes being compared. So after both sweeps,
every finished on-target CoFi model of both is timed again, each distinct structure once (a
trial that runs in both sweeps compacts to the same structure; a forward's time depends on its
shapes only), interleaved with the teacher, PASSES passes of REPEATS repeats, the median pass;
the hypervolume ratio the goal is judged on comes from those speedups, and the sweeps' own
figures are kept beside it. ``--retime-only`` redoes just that step for recorded sweeps;
``--without PATH`` runs only the sweep with ASHA and takes a recorded sweep without it (same
space, overrides and seeds): its trials train and finish exactly as before when only what ASHA
ranks has changed (check: the same final scores). ``--storage`` names the entry (default: the
space's file name).
Adds the entry to benchmarks/results/asha_savings.json.

    python benchmarks/asha_savings.py                       # the quickstart's CoFi cells
    python benchmarks/asha_savings.py --space benchmarks/spaces/asha_paper_schedule.yaml \
        'baselines={}'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "asha_savings.json"
REPEATS, PASSES = 20, 3  # each structure: 3 passes of 20 repeats, the median pass
FRONTIER = "cofi:full"  # the sweeps' one CoFi frontier
QUICKSTART = HERE.parent / "search_spaces" / "quickstart.yaml"
QUICKSTART_OVERRIDES = ["trials_per_cell=4", "baselines={}", "job.cofi.sparsity_warmup_epochs=1"]


def run(space: str, storage: Path, name: str, overrides: list[str]) -> dict:
    shutil.rmtree(storage / name, ignore_errors=True)
    cmd = [sys.executable, "-m", "cofi_sweep.run", "--space", space, f"name={name}",
           f"storage_path={storage}", *overrides]
    start = time.time()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return summary(storage / name, " ".join(cmd[1:]), round(time.time() - start))


def summary(experiment: Path, command: str, wall_seconds: int | None) -> dict:
    """A finished sweep's trials, stops, steps and CoFi frontier, as its own report has them."""
    table = pd.read_parquet(experiment / "results.parquet")
    if not (table["status"] == "finished").any():
        sys.exit(f"{experiment}: no trial finished ({table['status'].value_counts().to_dict()});"
                 f" see its report.md and the trials' error files")
    front = pd.read_csv(experiment / "pareto.csv")
    cofi = front[front["frontier"] == FRONTIER]
    return {"command": command, "experiment": str(experiment), "wall_seconds": wall_seconds,
            "trials": len(table), "stopped_early": int((table["status"] == "stopped early")
                                                         .sum()),
            "training_steps": int(table["step"].sum()),
            "hypervolume": float(cofi["hypervolume"].iloc[0]) if len(cofi) else 0.0,
            "frontier": cofi[["speedup", "score", "realized_sparsity"]].round(4)
            .to_dict("records")}


def retime_together(experiments: dict[str, Path]) -> dict[str, dict]:
    """Every finished on-target CoFi model of the experiments timed in one pass (the sweeps'
    models alternating), and each sweep's frontier hypervolume from those speedups, as the
    report computes it (points chosen on selection scores, dev reported)."""
    from analysis.points import frontiers, points
    from cofi_sweep.core.model import CofiBert
    from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting
    from cofi_sweep.sweep.retime import experiment_teacher

    first = next(iter(experiments.values()))
    space = json.loads((first / "space.json").read_text())
    protocol = TimingSetting(space["latency"]["batch_size"], space["latency"]["seq_len"],
                        repeats=REPEATS, passes=PASSES)
    rows = {}
    for name, experiment in experiments.items():
        table = pd.read_parquet(experiment / "results.parquet")
        rows[name] = table[(table["status"] == "finished") & (table["method"] == "cofi")
                           & table["on_target"].astype(bool)].copy()
    # A forward's time depends on its shapes only, and a trial that runs in both sweeps (same
    # seed and values) compacts to the same structure: each structure is timed once, so timing
    # noise cannot separate the sweeps where their models are the same.
    structures = pd.concat(rows.values()).drop_duplicates("structure")
    speedup = {}
    with InterleavedTimer(CofiBert.from_pretrained(experiment_teacher(first)), protocol,
               latency_model=False) as timer:
        for _, row in structures.iterrows():
            model = CofiBert.from_pretrained(row["compact_dir"])
            speedup[row["structure"]] = timer.time(model)["speedup"]
    out = {}
    for name, r in rows.items():
        r["speedup"] = r["structure"].map(speedup)
        front, volumes = frontiers(points(r), float(r["teacher_score"].iloc[0]))
        out[name] = {"hypervolume": volumes.get(FRONTIER, 0.0), "frontier": front[
            ["speedup", "score", "selection_score", "realized_sparsity", "seeds"]].round(4)
            .to_dict("records")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default=str(QUICKSTART))
    parser.add_argument("--storage", help="default: runs/bench/asha_savings/<space's file name>")
    parser.add_argument("overrides", nargs="*",
                        help="key=value settings for both sweeps (for the default space, "
                             f"default: {' '.join(QUICKSTART_OVERRIDES)})")
    parser.add_argument("--without", type=Path,
                        help="a recorded sweep without ASHA (same space, overrides and seeds):"
                             " run only the one with ASHA")
    parser.add_argument("--retime-only", action="store_true",
                        help="keep this space's recorded sweeps and figures; time their models "
                             "again and recompute the hypervolumes")
    args = parser.parse_args()
    if not args.overrides and Path(args.space).resolve() == QUICKSTART:
        args.overrides = QUICKSTART_OVERRIDES
    key = Path(args.storage).name if args.storage else Path(args.space).stem  # entry name
    storage = Path(args.storage or f"runs/bench/asha_savings/{key}").resolve()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if args.retime_only:
        result = results[key]
    else:
        with_asha = run(args.space, storage, "with_asha", args.overrides)
        without = (summary(args.without.resolve(), f"recorded sweep {args.without}", None)
                   if args.without else
                   run(args.space, storage, "without_asha", [*args.overrides,
                                                             "scheduler.type=none"]))
        result = {"with_asha": with_asha, "without_asha": without,
                  "steps_ratio": round(with_asha["training_steps"]
                                       / without["training_steps"], 3),
                  "hypervolume_ratio_as_each_sweep_timed": round(
                      with_asha["hypervolume"] / without["hypervolume"], 3)
                  if without["hypervolume"] else None}
    together = retime_together({"with_asha": storage / "with_asha", "without_asha": Path(
        result["without_asha"].get("experiment", storage / "without_asha"))})
    result.update(commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, cwd=HERE).stdout.strip()
                  or None, retimed_together=together | {"repeats": REPEATS, "passes": PASSES},
                  hypervolume_ratio=round(together["with_asha"]["hypervolume"]
                                          / together["without_asha"]["hypervolume"], 3)
                  if together["without_asha"]["hypervolume"] else None)
    results[key] = result
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("with_asha", "without_asha")},
                     indent=1))


if __name__ == "__main__":
    main()
