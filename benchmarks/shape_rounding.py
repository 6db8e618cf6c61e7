"""Benchmark: does rounding compact widths to multiples of 8 make them faster on this CPU?

Two figures, at the sst2_minilm_cpu latency setting (batch 32 x 64, every core, models of each
pair timed interleaved, random weights: latency depends on the shape alone):

  * widths: a MiniLM-shaped stack (6 heads, 768 FFN units per layer) at hidden widths around
    384, and at FFN widths around 768, one or a few units off a multiple of 8;
  * frontier: every CoFi structure of ``results/frontier_<label>.json`` as the job left it
    before shape rounding existed, against the same structure with its hidden width and each
    FFN's width rounded to the nearest multiple of 8 (what ``cofi.shape_multiple: 8`` keeps).

Reported: rounded / unrounded latency per structure (below 1: rounding is faster) and its
median. It sets the default of ``cofi.shape_multiple`` and is why the latency model is measured
at aligned widths. Writes benchmarks/results/shape_rounding.json. Run it on a quiet machine.

    python benchmarks/shape_rounding.py --label sst2_minilm_cpu
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import torch
from frontier_shapes import frontier_rows, setup
from sparsity_control import commit

from cofi_sweep.core.model import CofiBert, EncoderShape
from cofi_sweep.latency.latency_model import aligned
from cofi_sweep.latency.timing import available_cpus, describe_device, time_models

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "shape_rounding.json"


def main() -> None:
    args, lat, dense = setup(__doc__)
    torch.set_num_threads(available_cpus())
    torch.manual_seed(0)

    def ms(shapes: dict[str, EncoderShape]) -> dict[str, float]:
        models = {k: CofiBert(s).eval() for k, s in shapes.items()}
        with torch.no_grad():
            timing = time_models(models, batch_size=lat.batch_size, seq_len=lat.seq_len,
                                 vocab_size=dense.vocab_size, warmup=3, repeats=args.repeats)
        return {k: round(t.median * 1000, 2) for k, t in timing.items()}

    def stack(hidden: int, ffn: int) -> EncoderShape:
        return dataclasses.replace(dense, hidden_size=hidden, heads=[6] * dense.num_layers,
                                   ffn=[ffn] * dense.num_layers)

    widths = {"hidden_ms": ms({str(h): stack(h, 768) for h in (384, 383, 381, 380, 376, 368)}),
              "ffn_ms": ms({str(f): stack(384, f) for f in (768, 767, 765, 762, 760, 752)})}
    print(json.dumps(widths), flush=True)
    rows = []
    for r in frontier_rows(args.label):
        if r["trial_id"].startswith("distill"):
            continue
        shape = dense.with_structure(json.loads(r["structure"]))
        rounded = dataclasses.replace(shape, hidden_size=aligned(shape.hidden_size),
                                      ffn=[aligned(f) for f in shape.ffn])
        if rounded == shape:
            continue
        t = ms({"unrounded": shape, "rounded": rounded})
        row = {"model": r["trial_id"], "realized_sparsity": round(r["realized_sparsity"], 4),
               "hidden": [shape.hidden_size, rounded.hidden_size],
               "ffn": [shape.ffn, rounded.ffn], **{f"{k}_ms": v for k, v in t.items()},
               "rounded_over_unrounded": round(t["rounded"] / t["unrounded"], 3)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    ratios = [r["rounded_over_unrounded"] for r in rows]
    summary = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    OUT.write_text(json.dumps({
        "device": describe_device(torch.device("cpu")),
        "protocol": {"batch_size": lat.batch_size, "seq_len": lat.seq_len,
                     "threads": torch.get_num_threads(), "repeats": args.repeats},
        "widths": widths, "frontier_summary": summary, "commit": commit(),
        "command": f"python benchmarks/shape_rounding.py --label {args.label}",
        "rows": rows}, indent=1) + "\n")
    print(json.dumps({"frontier_summary": summary}, indent=1))


if __name__ == "__main__":
    main()
