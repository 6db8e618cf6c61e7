"""Benchmark: what ASHA saves. The same sweep (same cells, seeds and searched values) run with
ASHA and without it; training steps spent with ASHA / without, and the hypervolume each
reaches (the report's normalised hypervolume of the CoFi frontier).

Default sweep: the quickstart's CoFi cells (targets 0.5 and 0.8, no baseline) with 4 trials per
cell, so ASHA has trials to stop. Each sweep takes roughly 8-12 minutes on 2 CPU cores; the
teacher is trained once and cached. Writes benchmarks/results/asha_savings.json.

    python benchmarks/asha_savings.py
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


def run(space: str, storage: Path, name: str, overrides: list[str]) -> dict:
    shutil.rmtree(storage / name, ignore_errors=True)
    cmd = [sys.executable, "-m", "cofi_sweep.run", "--space", space, f"name={name}",
           f"storage_path={storage}", *overrides]
    start = time.time()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    experiment = storage / name
    table = pd.read_parquet(experiment / "results.parquet")
    front = pd.read_csv(experiment / "pareto.csv")
    cofi = front[front["frontier"] == "cofi:full"]
    return {"command": " ".join(cmd[1:]), "wall_seconds": round(time.time() - start),
            "trials": len(table), "stopped_early": int((table["status"] == "stopped early")
                                                         .sum()),
            "training_steps": int(table["step"].sum()),
            "hypervolume": float(cofi["hypervolume"].iloc[0]) if len(cofi) else 0.0,
            "frontier": cofi[["speedup", "score", "realized_sparsity"]].round(4)
            .to_dict("records")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default=str(HERE.parent / "search_spaces" / "quickstart.yaml"))
    parser.add_argument("--storage", default="runs/bench/asha_savings")
    parser.add_argument("overrides", nargs="*",
                        default=["trials_per_cell=4", "baselines={}"])
    args = parser.parse_args()
    storage = Path(args.storage).resolve()
    with_asha = run(args.space, storage, "with_asha", args.overrides)
    without = run(args.space, storage, "without_asha", [*args.overrides, "scheduler.type=none"])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip() or None
    result = {"with_asha": with_asha, "without_asha": without, "commit": commit,
              "steps_ratio": round(with_asha["training_steps"] / without["training_steps"], 3),
              "hypervolume_ratio": round(with_asha["hypervolume"] / without["hypervolume"], 3)
              if without["hypervolume"] else None}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("with_asha", "without_asha")},
                     indent=1))


if __name__ == "__main__":
    main()
