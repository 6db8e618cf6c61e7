"""Benchmark: which early-stopping policy would have kept the frontier, at what saving?

``asha_savings.py`` runs one policy twice (with and without ASHA); this replays many on the
recorded histories of one sweep run *without* ASHA: every trial's pruning-stage evaluations are
in its Tune ``result.json``, and a trial that ASHA stops is a prefix of the same trial run to
the end (same seed, same searched values), so each policy's stops, the steps they save and the
frontier of the trials it keeps follow without training again. Per-cell ASHA is replayed as
Ray's async ASHA decides (a trial is stopped at a rung when its score is below the
(1 - 1/reduction_factor) quantile of the scores recorded there before it), with the sweep's
concurrency and every trial running at the same speed in steps. What a replay cannot show:
Optuna would have proposed other values after a different set of finished trials.

Rung scores replayed, at the n-th pruning evaluation at target:
  current  the selection score of the masked model then (what the sweep reports today),
  best     the best such score so far (what the trial would compact if stopped now),
  mean     their mean so far,
  loss     minus the training loss then (distillation + Lagrangian, smoothed by the optimizer).

Adds the sweep's entry (by folder name) to benchmarks/results/asha_policies.json.

    python -m cofi_sweep.run --space search_spaces/quickstart.yaml name=no_asha6 \\
        storage_path=runs/bench/asha_study trials_per_cell=6 'baselines={}' \\
        job.cofi.sparsity_warmup_epochs=1 scheduler.type=none
    python benchmarks/asha_policies.py runs/bench/asha_study/no_asha6
"""

from __future__ import annotations

import argparse
import heapq
import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.report import frontiers, points
from sparsity_control import commit

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "asha_policies.json"
SCORES = ("current", "best", "mean", "loss")


def load_trials(experiment: Path) -> list[dict]:
    """The sweep's CoFi trials in start order: final score, speedup, steps, and the rung
    evaluations (step, evaluations at target so far, selection score, training loss)."""
    table = pd.read_parquet(experiment / "results.parquet")
    histories = {}
    for path in experiment.glob("train_cofi_*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        histories[rows[0]["trial_id"]] = rows
    trials = []
    for _, row in table[table["method"] == "cofi"].iterrows():
        history = histories[row["trial_id"]]
        rungs = [e for e in history if e.get("stage") == "prune" and e.get("at_target")]
        trials.append({"id": row["trial_id"], "cell": row["cell_id"], "score": row["score"],
                       "speedup": row["speedup"], "on_target": bool(row["on_target"]),
                       "steps": int(row["step"]), "start": history[0]["timestamp"],
                       "teacher_score": row["teacher_score"], "row": row.to_dict(),
                       "rungs": [(e["step"], e["selection_score"], e["loss"]) for e in rungs]})
    return sorted(trials, key=lambda t: t["start"])


def rung_scores(trial: dict, kind: str) -> list[tuple[int, int, float]]:
    """(step, clock, score) at each evaluation at target, the score as ``kind`` says."""
    out = []
    for n, (step, score, loss) in enumerate(trial["rungs"], 1):
        so_far = [s for _, s, _ in trial["rungs"][:n]]
        value = {"current": score, "best": max(so_far), "mean": float(np.mean(so_far)),
                 "loss": -loss}[kind]
        out.append((step, n, value))
    return out


def replay(trials: list[dict], kind: str, grace: int, rf: int, concurrency: int) -> dict:
    """The sweep under per-cell async ASHA: steps spent, trials stopped, those kept."""
    milestones = [grace * rf ** k for k in range(8) if grace * rf ** k <= 64]
    rungs = {t["cell"]: {m: {} for m in milestones} for t in trials}
    waiting, events, started, spent, stopped = list(trials), [], {}, {}, set()

    def start(trial: dict, now: float) -> None:
        started[trial["id"]] = now
        for step, clock, score in rung_scores(trial, kind):
            heapq.heappush(events, (now + step, trial["id"], clock, score))
        heapq.heappush(events, (now + trial["steps"], trial["id"], None, None))

    for _ in range(min(concurrency, len(waiting))):
        start(waiting.pop(0), 0.0)
    by_id = {t["id"]: t for t in trials}
    while events:
        now, trial_id, clock, score = heapq.heappop(events)
        if trial_id in spent:
            continue
        ends = clock is None
        for milestone in sorted(milestones, reverse=True):  # as Ray's _Bracket.on_result
            recorded = rungs[by_id[trial_id]["cell"]][milestone]
            if ends or (clock >= milestone and trial_id in recorded):
                break
            if clock < milestone:
                continue
            cutoff = (np.nanpercentile(list(recorded.values()), (1 - 1 / rf) * 100)
                      if recorded else None)
            recorded[trial_id] = score
            if cutoff is not None and score < cutoff:
                stopped.add(trial_id)
                ends = True
            break
        if ends:
            spent[trial_id] = now - started[trial_id]
            if waiting:
                start(waiting.pop(0), now)
    kept = [t for t in trials if t["id"] not in stopped]
    return {"steps": sum(spent.values()), "stopped": len(stopped), "hypervolume": hypervolume(kept)}


def hypervolume(trials: list[dict]) -> float:
    """The report's normalised hypervolume of the CoFi frontier of the finished trials (points
    chosen on selection scores, dev reported)."""
    table = pd.DataFrame([t["row"] for t in trials])
    if table.empty:
        return 0.0
    _, volumes = frontiers(points(table), trials[0]["teacher_score"])
    return max(volumes.values(), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, help="a sweep run with scheduler.type=none")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    trials = load_trials(args.experiment)
    steps, hv = sum(t["steps"] for t in trials), hypervolume(trials)
    policies = []
    for kind in SCORES:
        for grace in (1, 2, 3, 4):
            for rf in (2, 3, 4):
                r = replay(trials, kind, grace, rf, args.concurrency)
                policies.append({"score": kind, "grace_period": grace, "reduction_factor": rf,
                                 "steps_ratio": round(r["steps"] / steps, 3),
                                 "stopped": r["stopped"],
                                 "hypervolume_ratio": round(r["hypervolume"] / hv, 3) if hv else None})
    meets = [p for p in policies if p["steps_ratio"] <= 0.5 and (p["hypervolume_ratio"] or 0) >= 0.98]
    within = [p for p in policies if (p["hypervolume_ratio"] or 0) >= 0.98]
    result = {"experiment": str(args.experiment), "commit": commit(), "trials": len(trials),
              "training_steps": steps, "hypervolume": hv,
              "trials_detail": [{k: t[k] for k in ("id", "cell", "score", "speedup")}
                                | {"rung_scores": [round(s, 3) for _, s, _ in t["rungs"]]}
                                for t in trials],
              "policies": policies, "meeting_goal": meets,
              "least_steps_within_2pct": min(within, key=lambda p: p["steps_ratio"])
              if within else None}
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    results[args.experiment.name] = result  # one entry per replayed sweep
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{len(trials)} trials, {steps} steps, hypervolume {hv:.4f}")
    for p in policies:
        print(p)
    print("meeting the goal (<= 0.5 of the steps, hypervolume within 2 %):", meets or "none")
    print("fewest steps with the hypervolume within 2 %:", result["least_steps_within_2pct"])


if __name__ == "__main__":
    main()
