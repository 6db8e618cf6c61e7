"""Benchmark: does keeping freed memory (``cofi_sweep/allocator.py``) make timings repeatable?

glibc hands large freed blocks back to the kernel, so each forward pass may map and fault in
fresh pages, and how often depends on what the process allocated before (glibc's mmap
threshold adapts). If so, the same model timed twice in one pass can cost different amounts,
and a speedup depends on which process measured it.

Each round is a fresh process, alternately with the C library's defaults
(``COFI_SWEEP_MALLOC=system``) and with freed memory kept (the project's default). It builds
the teacher-shaped dense MiniLM and *two identical copies* (twins) of each of the SST-2
speedup-target jobs' structures (``results/frontier_<label>.json``), random weights, and
times them all interleaved (``time_models``: batch x seq_len of the label's latency setting,
every core). Reported per mode:

  * twin gap: |median(twin a) / median(twin b) - 1| (0 if timing only depended on the shape);
  * speedup spread: each structure's speedup over the teacher across rounds (max / min - 1);
  * the latencies themselves (keeping freed memory should not be slower).

Writes benchmarks/results/allocator.json. Run it on a quiet machine.

    python benchmarks/allocator.py --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "allocator.json"


def child(label: str, repeats: int) -> dict:
    """One round: every model timed interleaved in this (fresh) process."""
    import torch

    from cofi_sweep.core.model import CofiBert, EncoderShape
    from cofi_sweep.latency.timing import available_cpus, time_models
    from cofi_sweep.sweep.space import load_space

    lat = load_space(HERE.parent / "search_spaces" / "sst2_minilm_cpu.yaml").latency
    dense = EncoderShape.from_pretrained("minilm", 2)
    torch.set_num_threads(available_cpus())
    torch.manual_seed(0)
    models = {"teacher": CofiBert(dense)}
    for name, s in structures(label).items():
        models[f"{name}/a"] = CofiBert(dense.with_structure(s))
        models[f"{name}/b"] = copy.deepcopy(models[f"{name}/a"])
    timing = time_models(models, batch_size=lat.batch_size, seq_len=lat.seq_len,
                         vocab_size=dense.vocab_size, warmup=3, repeats=repeats)
    return {"ms": {k: round(t.median * 1000, 2) for k, t in timing.items()},
            "protocol": {"batch_size": lat.batch_size, "seq_len": lat.seq_len,
                         "threads": torch.get_num_threads(), "repeats": repeats}}


def structures(label: str) -> dict[str, dict]:
    rows = json.loads((HERE / "results" / f"frontier_{label}.json").read_text())
    return {r["cell_id"]: json.loads(r["structure"]) for r in rows
            if r.get("target_speedup") in (2.0, 4.0, 8.0)}


def summarise(rounds: list[dict]) -> dict:
    names = sorted({k.split("/")[0] for k in rounds[0]["ms"] if "/" in k})
    gaps = [abs(r["ms"][f"{n}/a"] / r["ms"][f"{n}/b"] - 1) for r in rounds for n in names]
    spreads = {}
    for n in names:
        speedups = [r["ms"]["teacher"] / statistics.mean([r["ms"][f"{n}/a"], r["ms"][f"{n}/b"]])
                    for r in rounds]
        spreads[n] = {"speedups": [round(s, 3) for s in speedups],
                      "max_over_min": round(max(speedups) / min(speedups) - 1, 4)}
    return {"twin_gap_median": round(statistics.median(gaps), 4),
            "twin_gap_max": round(max(gaps), 4), "speedup_spread": spreads,
            "teacher_ms": [r["ms"]["teacher"] for r in rounds],
            "model_ms_mean": {n: round(statistics.mean(
                (r["ms"][f"{n}/a"] + r["ms"][f"{n}/b"]) / 2 for r in rounds), 2)
                for n in names}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="sst2_minilm_cpu")
    parser.add_argument("--rounds", type=int, default=3, help="processes per mode")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.label, args.repeats)))
        return
    import torch
    from sparsity_control import commit

    from cofi_sweep.latency.timing import describe_device

    rounds: dict[str, list[dict]] = {"system": [], "keep": []}
    for i in range(args.rounds):
        for mode in ("system", "keep") if i % 2 == 0 else ("keep", "system"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--label", args.label,
                 "--repeats", str(args.repeats)], env={**os.environ, "COFI_SWEEP_MALLOC": mode},
                check=True, capture_output=True, text=True).stdout
            rounds[mode].append(json.loads(out.strip().splitlines()[-1]))
            print(mode, json.dumps(rounds[mode][-1]["ms"]), flush=True)
    result = {"device": describe_device(torch.device("cpu")),
              "protocol": rounds["keep"][0]["protocol"],
              **{mode: summarise(r) for mode, r in rounds.items()},
              "rounds": rounds, "commit": commit(),
              "command": f"python benchmarks/allocator.py --rounds {args.rounds}"}
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({m: {k: v for k, v in result[m].items() if k != "speedup_spread"}
                      for m in rounds}, indent=1))
    print(json.dumps({m: result[m]["speedup_spread"] for m in rounds}, indent=1))


if __name__ == "__main__":
    main()
