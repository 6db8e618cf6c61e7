"""Benchmark: a target ladder against independent jobs on real SST-2 -- compute and frontier.

The ``sst2_minilm_cpu`` job (bundled MiniLM teacher, 8k sentences, its budget) at targets
0.5, 0.6, 0.7, 0.8, 0.9, 0.95, two ways, each run alone on the machine, one job at a time:

    ladder@k        one ladder job (cofi.ladder = the six targets), seed + k: a row per fork
    cofi:<t>@k      an independent job at target t, seed + k (frontier.py's own run)

Rows go to ``results/frontier_ladder_sst2.json`` as each finishes (a piece of a session adds
up): ladder rows have ablation ``ladder`` (their own frontier in the report), independent rows
``full``. Compute is CPU-seconds of the process (both threads), ``job_cpu_seconds``; a ladder
row carries an equal share of its run's and the run's total (``ladder_cpu_seconds``). The
compute ratio is per frontier: a ladder's mean CPU-seconds over the sum, across the six
targets, of an independent job's mean at that target.
``--retime`` re-times every row's model together, on a quiet machine; ``--report`` renders the
frontiers (hypervolumes, accuracy at k×) with the sweep report's code, and ``--compare`` prints
the figures the issue asks for: compute ratio, hypervolume ratio, every target on its band, and
the accuracy kept at >= 8x measured speedup.

    python benchmarks/ladder.py --runs ladder@0 ladder@1 ladder@2
    python benchmarks/ladder.py --runs cofi:0.5@0 cofi:0.6@0 cofi:0.7@0 cofi:0.8@0
    python benchmarks/ladder.py --retime --report --compare
"""

from __future__ import annotations

import argparse
import json

import pandas as pd
import torch
from frontier import RESULTS, merge, report, result_row, retime, run_jobs, train

from cofi_sweep.job.ladder import LadderPruner
from cofi_sweep.latency.timing import available_cpus, describe_device
from cofi_sweep.sweep.space import load_space

SPACE, LABEL = "sst2_minilm_cpu", "ladder_sst2"
TARGETS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


def run_ladder(offset: int) -> None:
    space = load_space(SPACE)
    cell = {"id": "ladder-full", "method": "cofi", "target_sparsity": None,
            "target_speedup": None, "ablation": "ladder", "overrides": {},
            "ladder": {"kind": "sparsity", "targets": TARGETS}}
    job, results, wall, cpu = train(space, cell, offset, LABEL, runner=LadderPruner)
    device = describe_device(torch.device("cpu"))
    for rung, (value, result) in enumerate(zip(TARGETS, results)):
        rung_cell = {**cell, "id": f"t{value:g}-ladder", "target_sparsity": value}
        row = result_row(space, job, rung_cell, offset, result)
        row.update(rung=rung, ladder_trial=f"ladder@{offset}",
                   job_wall_seconds=round(wall / len(results), 1),
                   job_cpu_seconds=round(cpu / len(results), 1),
                   ladder_wall_seconds=round(wall, 1), ladder_cpu_seconds=round(cpu, 1),
                   device=device["name"],
                   command=f"python benchmarks/ladder.py --runs ladder@{offset}")
        merge(RESULTS / f"frontier_{LABEL}.json", row)
        print(json.dumps({k: row[k] for k in ("trial_id", "score", "realized_sparsity",
                                              "speedup")}), flush=True)
    print(f"ladder@{offset}: {len(results)} models, {wall:.0f} s wall, {cpu:.0f} CPU-s",
          flush=True)


def compare() -> dict:
    """The issue's figures from the rows: compute, hypervolumes, bands, accuracy at >= 8x."""
    from analysis.points import frontiers, points, teacher_score

    rows = pd.DataFrame(json.loads((RESULTS / f"frontier_{LABEL}.json").read_text()))
    ladder, independent = rows[rows["ablation"] == "ladder"], rows[rows["ablation"] == "full"]
    runs = ladder.drop_duplicates("ladder_trial")
    # compute per frontier: one ladder against one independent job per target, each side's
    # mean over the seeds it ran (the sides need not have run the same number of seeds)
    per_target = independent.groupby("target_sparsity")["job_cpu_seconds"].mean()
    missing = [t for t in TARGETS if t not in per_target.index]
    independent_cpu = None if missing else float(per_target.reindex(TARGETS).sum())
    ladder_cpu = float(runs["ladder_cpu_seconds"].mean()) if len(runs) else None
    by_target = {
        f"{t:g}": {name: {"seeds": int(len(g)), "score": float(g["score"].mean()),
                          "score_sd": float(g["score"].std(ddof=1)) if len(g) > 1 else None,
                          "speedup": float(g["speedup"].mean()),
                          "realized_sparsity": float(g["realized_sparsity"].mean()),
                          "on_band": bool(g["on_target"].all())}
                   for name, side in (("ladder", ladder), ("independent", independent))
                   if len(g := side[side["target_sparsity"] == t])}
        for t in TARGETS}
    pts = points(rows)
    _, volumes = frontiers(pts, teacher_score(rows))
    teacher = float(rows["teacher_score"].iloc[0])
    # accuracy at >= 8x: among a side's points (a target's mean over seeds) measured at 8x or
    # more, the one the selection split prefers; its dev score is reported, not chosen on
    fast = {}
    for name, label in (("ladder", "cofi:ladder"), ("independent", "cofi:full")):
        quick = pts[(pts["frontier"] == label) & (pts["speedup"] >= 8)]
        if len(quick):
            best = quick.loc[quick["selection_score"].idxmax()]
            fast[name] = {"score": float(best["score"]), "speedup": float(best["speedup"]),
                          "cell": best["cell_id"], "seeds": int(best["seeds"])}
    figures = {
        "ladder_runs": sorted(runs["ladder_trial"]), "ladder_cpu_seconds": ladder_cpu,
        "independent_cpu_seconds": independent_cpu, "independent_missing_targets": missing,
        "compute_ratio": ladder_cpu / independent_cpu if ladder_cpu and independent_cpu
        else None,
        "by_target": by_target,
        "hypervolume": volumes,
        "hypervolume_ratio": volumes.get("cofi:ladder", 0) / volumes["cofi:full"]
        if volumes.get("cofi:full") else None,
        "on_band": {"ladder": bool(ladder["on_target"].all()),
                    "independent": bool(independent["on_target"].all())},
        "best_at_8x": fast, "teacher": teacher,
        "kept_at_8x": {k: v["score"] / teacher for k, v in fast.items()},
        "commits": sorted(set(rows["commit"])),
    }
    print(json.dumps(figures, indent=1))
    (RESULTS / f"{LABEL}_figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=[], help="ladder@k or cofi:<target>@k, "
                        "run in this order")
    parser.add_argument("--retime", action="store_true", help="re-time every row's model")
    parser.add_argument("--report", action="store_true", help="render the rows collected")
    parser.add_argument("--compare", action="store_true", help="print and save the figures")
    args = parser.parse_args()
    torch.set_num_threads(available_cpus())
    for run in args.runs:
        if run.startswith("ladder@"):
            print(f"=== {LABEL}: {run}", flush=True)
            run_ladder(int(run.partition("@")[2]))
        else:
            run_jobs(SPACE, [run], LABEL, control=False)
    space = load_space(SPACE)
    if args.retime:
        retime(space, RESULTS / f"frontier_{LABEL}.json")
    if args.report:
        report(space, RESULTS / f"frontier_{LABEL}.json", LABEL,
               describe_device(torch.device("cpu")))
    if args.compare:
        compare()


if __name__ == "__main__":
    main()
