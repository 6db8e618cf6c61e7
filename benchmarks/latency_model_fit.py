"""Benchmark: the latency model against the real CoFi structures of the frontier benchmark.

Speedup targets aim at the latency model's prediction, so its error *is* their miss. For every
row of ``results/frontier_<label>.json`` (real pruned MiniLMs: CoFi at sparsity and speedup
targets, distillation students), a model of exactly that structure (random weights: latency
depends on the shape alone, or should) is timed interleaved with a random-weight dense MiniLM
at the space's latency setting (batch 32 x 64, every core, 20 repeats). Reported per model: the
speedup the trained model measured when its row was made (``measured_real``), the proxy's
(``measured_proxy``), and the latency model's prediction as calibrated now (cached per device
and protocol) and as the row recorded it (the model of that commit); errors are against the
real measurement (``error_now``, ``error_then``) and, for the new one, the proxy. Goal: error
≤ 10 % for every model at 50-95 % sparsity.
Writes benchmarks/results/latency_model_fit.json. Run it on a quiet machine.

    python benchmarks/latency_model_fit.py --label sst2_minilm_cpu
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from frontier_shapes import frontier_rows, setup
from sparsity_control import commit

from cofi_sweep.core.model import CofiBert
from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting
from cofi_sweep.latency.latency_model import latency_table
from cofi_sweep.latency.timing import available_cpus, describe_device

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "latency_model_fit.json"


def main() -> None:
    args, lat, dense = setup(__doc__)
    torch.manual_seed(0)
    teacher = CofiBert(dense).eval()
    rows = frontier_rows(args.label)
    protocol = TimingSetting(lat.batch_size, lat.seq_len, available_cpus(), repeats=args.repeats)
    table = latency_table(dense, batch_size=lat.batch_size, seq_len=lat.seq_len)
    out = []
    with InterleavedTimer(teacher, protocol, latency_model=False) as timer:
        for r in rows:
            shape = dense.with_structure(json.loads(r["structure"]))
            t = timer.time(CofiBert(shape).eval(), r["trial_id"])
            now = table.speedup(dense, shape)
            then = r.get("latency_model_speedup")
            row = {"model": r["trial_id"], "realized_sparsity": round(r["realized_sparsity"], 4),
                   "measured_real": round(r["speedup"], 3),  # the trained model, when run
                   "measured_proxy": round(t["speedup"], 3),  # random weights, same shape
                   "latency_model_now": round(now, 3), "latency_model_then": then and round(
                       then, 3),
                   "error_now": round(now / r["speedup"] - 1, 4),
                   "error_then": then and round(then / r["speedup"] - 1, 4),
                   "error_now_vs_proxy": round(now / t["speedup"] - 1, 4),
                   "commit_then": r.get("retimed") or r.get("commit")}
            print(json.dumps(row), flush=True)
            out.append(row)
    fit = {"scale": table.scale, "per_mha": table.per_mha, "per_ffn": table.per_ffn}
    in_range = [r for r in out if 0.5 <= r["realized_sparsity"] <= 0.95]
    summary = {k: {"median": sorted(abs(r[k]) for r in in_range)[len(in_range) // 2],
                   "max": max(abs(r[k]) for r in in_range)}
               for k in ("error_now", "error_then", "error_now_vs_proxy")
               if all(r[k] is not None for r in in_range)}
    OUT.write_text(json.dumps({"device": describe_device(torch.device("cpu")),
                               "protocol": dataclasses.asdict(protocol), "fit": fit,
                               "summary_50_95": summary, "commit": commit(),
                               "command": f"python benchmarks/latency_model_fit.py --label "
                                          f"{args.label}", "rows": out}, indent=1) + "\n")
    print(json.dumps({"fit": fit, "summary_50_95": summary}, indent=1))


if __name__ == "__main__":
    main()
