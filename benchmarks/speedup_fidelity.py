"""Benchmark: how well do FLOPs and the calibrated latency model predict measured speedups?

For compact MiniLM models of real pruning runs at 50-95 % sparsity (benchmarks/frontier.py's
CoFi jobs, and benchmarks/sparsity_control.py's at the SST-2 and quickstart budgets), under
four deployment settings -- PyTorch and onnxruntime, batch 32 x 128 and batch 1 x 128, every
available core -- each model is timed interleaved with the teacher
(:class:`cofi_sweep.retime.Timer`), beside the speedup that matmul FLOPs predict and the one the
latency model predicts (calibrated on this machine for that setting; cached). Goal:
latency-model error ≤ 10 % everywhere. Writes benchmarks/results/speedup_fidelity.json.

A frontier model whose folder is gone (``runs/`` does not outlive a machine) is rebuilt from the
structure its row records -- same heads, FFN widths and hidden width, random weights: a dense
float32 forward's time depends on its shapes only -- and marked ``"rebuilt": true``.

    python benchmarks/speedup_fidelity.py            # on a quiet machine, after frontier.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from sparsity_control import commit

from cofi_sweep.core.model import CofiBert, EncoderShape
from cofi_sweep.core.teacher import get_teacher
from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting, median_pass
from cofi_sweep.latency.timing import available_cpus, describe_device
from cofi_sweep.sweep.space import load_space

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "speedup_fidelity.json"
SETTINGS = [(32, 128, "pytorch"), (1, 128, "pytorch"), (32, 128, "onnxruntime"),
            (1, 128, "onnxruntime")]


def pruned_models() -> list[dict]:
    """Compact MiniLM models from real pruning runs at 50-95 % sparsity, on disk: the SST-2
    frontier's CoFi jobs, and the sparsity-control jobs (SST-2 and quickstart budgets)."""
    rows = json.loads((HERE / "results" / "frontier_sst2_minilm_cpu.json").read_text())
    models = [{"trial_id": f"frontier {r['trial_id']}",
               "compact_dir": str(HERE.parent / r["compact_dir"]),  # relative to the repo
               "structure": json.loads(r["structure"]),
               "realized_sparsity": r["realized_sparsity"]} for r in rows
              if r["method"] == "cofi" and r["trial_id"].endswith("@0")]
    for folder in sorted((HERE.parent / "runs" / "bench").glob("sparsity_*")):
        result = folder / "result.json"
        if result.is_file():
            models.append({"trial_id": folder.name, "compact_dir": str(folder / "compact"),
                           "realized_sparsity": json.loads(result.read_text())[
                               "realized_sparsity"]})
    return sorted((m for m in models if (Path(m["compact_dir"]).is_dir() or "structure" in m)
                   and 0.45 <= m["realized_sparsity"] <= 0.96),
                  key=lambda m: m["realized_sparsity"])


def load(model: dict, dense: EncoderShape) -> tuple[CofiBert, bool]:
    """The compact model, or one of its recorded shape with random weights; and whether it
    was rebuilt."""
    if Path(model["compact_dir"]).is_dir():
        return CofiBert.from_pretrained(model["compact_dir"]), False
    return CofiBert(dense.with_structure(model["structure"])).eval(), True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--passes", type=int, default=1,
                        help="time every model this many times, in turn (fresh sessions each "
                             "pass); rows keep the median pass and list every pass's speedup")
    parser.add_argument("--settings", nargs="*", default=[f"{r} b{b}x{s}" for b, s, r in SETTINGS],
                        help="which of the settings to run (default: all), e.g. 'pytorch b1x128'")
    args = parser.parse_args()
    space = load_space(HERE.parent / "search_spaces" / "sst2_minilm_cpu.yaml")
    models = pruned_models()
    teacher = get_teacher(space.job).load()
    results = []
    for batch, seq, runtime in SETTINGS:
        if f"{runtime} b{batch}x{seq}" not in args.settings:
            continue
        protocol = TimingSetting(batch, seq, available_cpus(), runtime=runtime,
                                 repeats=args.repeats)
        passes: dict[str, list[dict]] = {r["trial_id"]: [] for r in models}
        rebuilt: dict[str, bool] = {}
        for i in range(args.passes):  # every model once per pass, fresh sessions each time
            with InterleavedTimer(teacher, protocol) as timer:
                for r in models:
                    model, rebuilt[r["trial_id"]] = load(r, teacher.shape)
                    passes[r["trial_id"]].append(timer.time(model, r["trial_id"]))
                    print(f"pass {i}: {r['trial_id']} "
                          f"{passes[r['trial_id']][-1]['speedup']:.2f}x", flush=True)
        for r in models:
            t = median_pass(passes[r["trial_id"]])
            row = {"setting": f"{runtime} b{batch}x{seq}", "model": r["trial_id"],
                   "rebuilt": rebuilt[r["trial_id"]], "commit": commit(),
                   "realized_sparsity": round(r["realized_sparsity"], 4),
                   **{k: round(v, 4) for k, v in t.items()},
                   "pass_speedups": [round(p["speedup"], 3) for p in passes[r["trial_id"]]],
                   "flop_error": round(t["flop_predicted_speedup"] / t["speedup"] - 1, 4),
                   "latency_model_error": round(t["latency_model_speedup"] / t["speedup"]
                                                - 1, 4)}
            print(json.dumps(row), flush=True)
            results.append(row)
    # a run of some settings replaces their rows and keeps the others' (each row names its commit)
    kept = [r for r in json.loads(OUT.read_text())["rows"] if r["setting"] not in args.settings
            ] if OUT.is_file() else []
    results = kept + results
    OUT.write_text(json.dumps({"device": describe_device(torch.device("cpu")),
                               "commit": commit(), "repeats": args.repeats,
                               "passes": args.passes,
                               "command": "python benchmarks/speedup_fidelity.py",
                               "rows": results}, indent=1) + "\n")
    print("| setting | models | FLOPs: median / max error | latency model: median / max error |")
    print("|---|---|---|---|")
    for setting in dict.fromkeys(r["setting"] for r in results):
        rs = [r for r in results if r["setting"] == setting]
        flop = sorted(abs(r["flop_error"]) for r in rs)
        lat = sorted(abs(r["latency_model_error"]) for r in rs)
        print(f"| {setting} | {len(rs)} | {flop[len(flop) // 2]:.1%} / {flop[-1]:.1%} | "
              f"{lat[len(lat) // 2]:.1%} / {lat[-1]:.1%} |")


if __name__ == "__main__":
    main()
