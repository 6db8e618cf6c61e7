"""Benchmark: CoFi on real SST-2 (bundled MiniLM teacher, 8k training sentences, full dev set).

Prunes to each target in turn with configs/sst2_minilm_cpu.yaml, prints a report per target and
writes benchmarks/results/cofi_sst2.json (+ .md): teacher, pruned (masked) and compact dev
accuracy, realized sparsity, per-layer structure, CPU latency of teacher and compact model, and
the commit measured. Rows of targets not re-run are kept.

    python benchmarks/cofi_sst2.py --targets 0.5 0.9
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import torch

from cofi_sweep.core.config import load_job_config
from cofi_sweep.core.model import CofiBert
from cofi_sweep.core.teacher import get_teacher
from cofi_sweep.job.cli import format_report
from cofi_sweep.job.recipe import run_cofi
from cofi_sweep.latency.timing import measure_latency

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--config", default=str(HERE.parent / "configs" / "sst2_minilm_cpu.yaml"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = HERE / "results" / "cofi_sst2.json"
    kept = json.loads(out.read_text()) if out.is_file() else []
    rows = [r for r in kept if r["target"] not in args.targets]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip() or None
    for target in args.targets:
        job = load_job_config(args.config, [f"cofi.target_sparsity={target}",
                                            f"output_dir=runs/bench/cofi_sst2_{target}",
                                            *args.overrides])
        start = time.time()
        result = run_cofi(job)
        print(format_report(result), flush=True)
        compact = CofiBert.from_pretrained(result.compact_dir)
        teacher = get_teacher(job).load()  # a cache hit
        latency = {name: measure_latency(m, batch_size=32, seq_len=64)
                   for name, m in (("teacher", teacher), ("compact", compact))}
        rows.append({
            "target": target, "realized_sparsity": round(result.realized_sparsity, 4),
            "teacher_accuracy": result.teacher_metrics["accuracy"],
            "pruned_accuracy": result.pruned_metrics.get("accuracy"),
            "compact_accuracy": result.compact_metrics["accuracy"],
            "prunable_params": result.prunable_params,
            "dense_prunable_params": result.dense_prunable_params,
            "structure": result.structure, "layer_alignment": result.layer_alignment,
            "teacher_latency_s": round(latency["teacher"], 4),
            "compact_latency_s": round(latency["compact"], 4),
            "cpu_speedup": round(latency["teacher"] / latency["compact"], 2),
            "wall_seconds": round(time.time() - start, 1), "torch_threads":
            torch.get_num_threads(),
            "command": f"python benchmarks/cofi_sst2.py --targets {target}", "commit": commit})
    rows.sort(key=lambda r: r["target"])
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| target | realized | teacher acc | pruned acc | compact acc | CPU speedup "
             "(b32, len 64) | heads per layer | FFN units per layer | hidden |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["structure"]
        lines.append(f"| {r['target']} | {r['realized_sparsity']:.4f} | "
                     f"{r['teacher_accuracy']:.4f} | {r['pruned_accuracy']:.4f} | "
                     f"{r['compact_accuracy']:.4f} | {r['cpu_speedup']}x | {s['heads']} | "
                     f"{s['ffn']} | {s['hidden']} |")
    (HERE / "results" / "cofi_sst2.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
