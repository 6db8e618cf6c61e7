"""Benchmark: how close CoFi lands to its target sparsity, at a sweep space's training budget.

For each target, runs one CoFi job with the job settings of a shipped space (the quickstart's
~130 pruning steps, or sst2_minilm_cpu's ~1,250) and records:
  * realized    -- the compact model's sparsity (masks projected onto the band: the default);
  * gates_only  -- what the Lagrangian alone left at the same checkpoint, before projection
                   (the reference's behaviour), and the expected sparsity there;
  * |realized - target|, on_target, dev accuracy, wall time, the commit.
Rows are merged into benchmarks/results/sparsity_control.json by (space, target, settings),
so a long budget can be run a few targets at a time.

    python benchmarks/sparsity_control.py --space quickstart --targets 0.5 0.6 0.7 0.8 0.9 0.95
    python benchmarks/sparsity_control.py --space sst2_minilm_cpu --targets 0.5 0.6
(the SST-2 rows also come from benchmarks/frontier.py, whose CoFi jobs are the same jobs)
    python benchmarks/sparsity_control.py --space quickstart --targets 0.8 \
        --set cofi.reg_learning_rate=0.2      # a stronger controller instead
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import time
from pathlib import Path

import torch

from cofi_sweep.job.recipe import run_cofi
from cofi_sweep.job.result import CofiResult
from cofi_sweep.sweep.space import load_space

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "sparsity_control.json"


def commit() -> str | None:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=HERE).stdout.strip() or None


def control_row(space: str, target: float, settings: str, result: CofiResult,
                wall_seconds: float, command: str) -> dict:
    """The figure's row for one finished CoFi job."""
    prune = [e for e in result.history if e["stage"] == "prune"]
    chosen = result.pruned_checkpoint  # the compacted checkpoint, before projection
    return {
        "space": space, "target": target, "settings": settings,
        "realized": round(result.realized_sparsity, 4),
        "abs_error": round(abs(result.realized_sparsity - target), 4),
        "on_target": result.on_target,
        "gates_only": round(chosen["deterministic_sparsity"], 4),
        "gates_only_abs_error": round(abs(chosen["deterministic_sparsity"] - target), 4),
        "expected_at_checkpoint": round(chosen["expected_sparsity"], 4),
        "checkpoint_step": chosen["step"], "pruning_steps": prune[-1]["stage_step"],
        "dev": result.compact_metrics[result.main_metric], "metric": result.main_metric,
        "wall_seconds": round(wall_seconds, 1), "commit": commit(), "command": command}


def merge_rows(row: dict) -> list[dict]:
    """Merges ``row`` into the results file by (space, target, settings); returns all rows."""
    rows = json.loads(OUT.read_text()) if OUT.is_file() else []
    key = (row["space"], row["target"], row["settings"])
    rows = [r for r in rows if (r["space"], r["target"], r.get("settings", "")) != key]
    rows = sorted(rows + [row], key=lambda r: (r["space"], r.get("settings", ""), r["target"]))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="quickstart", help="a name in search_spaces/")
    parser.add_argument("--targets", type=float, nargs="+",
                        default=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    parser.add_argument("--set", nargs="*", default=[], metavar="cofi.KEY=VALUE",
                        help="job settings changed from the space's (recorded in each row)")
    args = parser.parse_args()
    space = load_space(HERE.parent / "search_spaces" / f"{args.space}.yaml",
                       [f"job.{item}" for item in args.set])
    rows = json.loads(OUT.read_text()) if OUT.is_file() else []
    for target in args.targets:
        job = dataclasses.replace(space.job, output_dir=f"runs/bench/sparsity_{args.space}_"
                                  f"{target}", num_threads=torch.get_num_threads())
        job.cofi = dataclasses.replace(job.cofi, target_sparsity=target)
        start = time.time()
        result = run_cofi(job, callback=lambda pruner, event: None)
        command = (f"python benchmarks/sparsity_control.py --space {args.space} --targets "
                   f"{target}" + (f" --set {' '.join(args.set)}" if args.set else ""))
        row = control_row(args.space, target, " ".join(args.set), result, time.time() - start,
                          command)
        print(json.dumps(row), flush=True)
        rows = merge_rows(row)  # after each target: nothing lost
    print("| space | settings | target | realized | abs error | gates only (no projection) "
          "| dev |")
    for r in rows:
        print(f"| {r['space']} | {r.get('settings', '')} | {r['target']} | {r['realized']} | "
              f"{r['abs_error']} | {r['gates_only']} | {r['dev']:.4f} |")


if __name__ == "__main__":
    main()
