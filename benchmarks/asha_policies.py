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

Rung scores replayed, at the n-th evaluation the clock counts:
  current  the selection score of the masked model then (what the sweep ranks),
  best     the best such score so far (what the trial would compact if stopped now),
  mean     their mean so far,
  loss     minus the training loss then (distillation + Lagrangian, smoothed by the optimizer),
  random   a uniform random number: the chance a ranking signal must beat.
Clocks: ``at_target``, pruning evaluations once at the final target (the sweep's rungs before
b9da829); ``pruning``, every pruning evaluation (the sweep's ranked evaluations since: during
the target's warm-up, of masks projected onto its current value -- in sweeps run before
98c9f68, of the gates' raw masks, which do not compare like with like); ``whole``, every
evaluation, pruning then fine-tuning, which the sweep does not offer: a cell's trials share one
schedule, so the n-th evaluation is the same stage for all of them and a rung in fine-tuning
ranks compact models fine-tuned for the same number of steps.

Schedulers: ``async``, Ray's ASHA as the sweep runs it; ``sync``, synchronous successive
halving (trials wait at each rung until the cell's others reach it, then the top 1/rf go on),
which the sweep does not offer: replayed to see what removing the start order would buy.

Which trials start first decides much of what async ASHA stops (the first at a rung always
passes), so each policy is also replayed over ``--orders`` random start orders of the same
trials: the mean steps and hypervolume ratios and the share of orders meeting the goal. Rank
correlations (Spearman) of each evaluation's score with the final dev score say how much an
early rung can know.

Adds the sweep's entry (``--entry``, default its folder name) to
benchmarks/results/asha_policies.json.

    python -m cofi_sweep.run --space search_spaces/quickstart.yaml name=no_asha6 \\
        storage_path=runs/bench/asha_study trials_per_cell=6 'baselines={}' \\
        job.cofi.sparsity_warmup_epochs=1 scheduler.type=none
    python benchmarks/asha_policies.py runs/bench/asha_study/no_asha6
    # two unstopped 6-trial sweeps of one space as one 12-trial cell:
    python benchmarks/asha_policies.py runs/bench/asha_study/asha_lr_sst2/without_asha \
        runs/bench/asha_study/asha_lr_sst2_seed400/without_asha --entry asha_lr_pooled12
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from sparsity_control import commit

from analysis.points import frontiers, points

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "asha_policies.json"
SCORES = ("current", "best", "mean", "loss", "random")
CLOCKS = ("at_target", "pruning", "whole")


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
        pruning = [e for e in history if e.get("stage") == "prune"]
        evaluations = {"at_target": [e for e in pruning if e.get("at_target")],
                       "pruning": pruning,
                       "whole": [e for e in history if e.get("stage") in ("prune", "finetune")]}
        trials.append({"id": row["trial_id"], "cell": row["cell_id"], "score": row["score"],
                       "speedup": row["speedup"], "on_target": bool(row["on_target"]),
                       "steps": int(row["step"]), "start": history[0]["timestamp"],
                       "teacher_score": row["teacher_score"], "row": row.to_dict(),
                       "clocks": {clock: [(e["step"], e["selection_score"], e["loss"])
                                          for e in evaluations[clock]] for clock in CLOCKS}})
    return sorted(trials, key=lambda t: t["start"])


def rank_correlations(trials: list[dict], clock: str) -> list[dict]:
    """Spearman's rho, across the trials, of the n-th rung evaluation's selection score with
    the final dev score: how well a rung there could rank them."""
    out = []
    for n in range(min(len(t["clocks"][clock]) for t in trials)):
        rung = pd.DataFrame({"rung": [t["clocks"][clock][n][1] for t in trials],
                             "final": [t["score"] for t in trials]})
        out.append({"evaluation": n + 1, "step": trials[0]["clocks"][clock][n][0],
                    "spearman": round(float(rung.corr(method="spearman").iloc[0, 1]), 2)})
    return out


def rung_scores(trial: dict, kind: str, clock: str, rng: np.random.Generator
                ) -> list[tuple[int, int, float]]:
    """(step, clock, score) at each evaluation the clock counts, the score as ``kind`` says."""
    out, rungs = [], trial["clocks"][clock]
    for n, (step, score, loss) in enumerate(rungs, 1):
        so_far = [s for _, s, _ in rungs[:n]]
        value = {"current": score, "best": max(so_far), "mean": float(np.mean(so_far)),
                 "loss": -loss, "random": rng.random()}[kind]
        out.append((step, n, value))
    return out


def replay(trials: list[dict], kind: str, clock: str, grace: int, rf: int, concurrency: int,
           rng: np.random.Generator) -> dict:
    """The sweep under per-cell async ASHA, trials started in the list's order: steps spent,
    trials stopped, the hypervolume of those kept."""
    milestones = [grace * rf ** k for k in range(8) if grace * rf ** k <= 64]
    rungs = {t["cell"]: {m: {} for m in milestones} for t in trials}
    waiting, events, started, spent, stopped = list(trials), [], {}, {}, set()

    def start(trial: dict, now: float) -> None:
        started[trial["id"]] = now
        for step, count, score in rung_scores(trial, kind, clock, rng):
            heapq.heappush(events, (now + step, trial["id"], 0, count, score))
        # 1: a trial's last evaluation (at its last step) is handled before its end
        heapq.heappush(events, (now + trial["steps"], trial["id"], 1, None, None))

    for _ in range(min(concurrency, len(waiting))):
        start(waiting.pop(0), 0.0)
    by_id = {t["id"]: t for t in trials}
    while events:
        now, trial_id, _, count, score = heapq.heappop(events)
        if trial_id in spent:
            continue
        ends = count is None
        for milestone in sorted(milestones, reverse=True):  # as Ray's _Bracket.on_result
            recorded = rungs[by_id[trial_id]["cell"]][milestone]
            if ends or (count >= milestone and trial_id in recorded):
                break
            if count < milestone:
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


def replay_sync(trials: list[dict], kind: str, clock: str, grace: int, rf: int,
                concurrency: int, rng: np.random.Generator) -> dict:
    """The sweep under per-cell *synchronous* successive halving: at the grace*rf^k-th
    evaluation every trial of the cell still running waits for the others (paused, resumed
    from a checkpoint), then the top ceil(n/rf) go on. No start order matters; what it costs
    is waiting (wall time, not steps, so ``concurrency`` plays no part)."""
    spent, kept = {}, []
    for cell in sorted({t["cell"] for t in trials}):
        alive = [t for t in trials if t["cell"] == cell]
        scores = {t["id"]: rung_scores(t, kind, clock, rng) for t in alive}
        n = grace
        while len(alive) > 1 and all(len(scores[t["id"]]) >= n for t in alive):
            alive.sort(key=lambda t: -scores[t["id"]][n - 1][2])
            for t in alive[math.ceil(len(alive) / rf):]:
                spent[t["id"]] = scores[t["id"]][n - 1][0]
            alive, n = alive[:math.ceil(len(alive) / rf)], n * rf
        kept += alive
    spent |= {t["id"]: t["steps"] for t in kept}
    return {"steps": sum(spent.values()), "stopped": len(trials) - len(kept),
            "hypervolume": hypervolume(kept)}


REPLAYS = {"async": replay, "sync": replay_sync}

_VOLUMES: dict[tuple[str, ...], float] = {}  # by kept trial ids: replays keep few distinct sets


def hypervolume(trials: list[dict]) -> float:
    """The report's normalised hypervolume of the CoFi frontier of the finished trials (points
    chosen on selection scores, dev reported)."""
    key = tuple(sorted(t["id"] for t in trials))
    if key not in _VOLUMES:
        table = pd.DataFrame([t["row"] for t in trials])
        _VOLUMES[key] = 0.0 if table.empty else max(
            frontiers(points(table), trials[0]["teacher_score"])[1].values(), default=0.0)
    return _VOLUMES[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, nargs="+",
                        help="a sweep run with scheduler.type=none; several of the same space "
                             "are pooled as one sweep with their trials in each cell (their "
                             "recorded start order is then just one after the other)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--orders", type=int, default=200,
                        help="random start orders each policy is also replayed over")
    parser.add_argument("--entry", help="the entry's name (default: the sweep's folder name)")
    args = parser.parse_args()
    if len(args.experiment) > 1 and not args.entry:
        parser.error("pooling several sweeps needs --entry NAME")
    trials = [t for experiment in args.experiment for t in load_trials(experiment)]
    steps, hv = sum(t["steps"] for t in trials), hypervolume(trials)
    rng = np.random.default_rng(0)
    orders = [[trials[i] for i in rng.permutation(len(trials))] for _ in range(args.orders)]
    policies = []
    # the whole-run clock's policies come last, so the others' random draws (and the figures
    # quoted from them) are those of the runs before it was added
    plan = [p for clocks in (CLOCKS[:2], CLOCKS[2:]) for p in itertools.product(
        REPLAYS, clocks, SCORES, (1, 2, 3, 4), (2, 3, 4))]
    for scheduler, clock, kind, grace, rf in plan:
        run = REPLAYS[scheduler]
        r = run(trials, kind, clock, grace, rf, args.concurrency, rng)
        ratios = np.array([(o["steps"] / steps, o["hypervolume"] / hv) for o in (
            run(order, kind, clock, grace, rf, args.concurrency, rng) for order in orders)])
        policies.append({"scheduler": scheduler, "clock": clock, "score": kind,
                         "grace_period": grace,
                         "reduction_factor": rf, "steps_ratio": round(r["steps"] / steps, 3),
                         "stopped": r["stopped"],
                         "hypervolume_ratio": round(r["hypervolume"] / hv, 3) if hv else None,
                         "random_orders": {
                             "steps_ratio": round(float(ratios[:, 0].mean()), 3),
                             "hypervolume_ratio": round(float(ratios[:, 1].mean()), 3),
                             "meets_goal": round(float(np.mean(
                                 (ratios[:, 0] <= 0.5) & (ratios[:, 1] >= 0.98))), 3)}})
    within = [p for p in policies if (p["hypervolume_ratio"] or 0) >= 0.98]
    meets = [p for p in within if p["steps_ratio"] <= 0.5]
    cells = sorted({t["cell"] for t in trials})
    result = {"experiment": " ".join(map(str, args.experiment)), "commit": commit(),
              "trials": len(trials), "training_steps": steps, "hypervolume": hv,
              "trials_detail": [{k: t[k] for k in ("id", "cell", "score", "speedup")}
                                | {f"rung_scores_{c}": [round(s, 3) for _, s, _ in t["clocks"][c]]
                                   for c in CLOCKS} for t in trials],
              "rank_correlations": {c: {cell: rank_correlations(
                  [t for t in trials if t["cell"] == cell], c) for cell in cells}
                  for c in CLOCKS},
              "policies": policies, "meeting_goal": meets,
              "least_steps_within_2pct": min(within, key=lambda p: p["steps_ratio"])
              if within else None}
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    results[args.entry or args.experiment[0].name] = result | {"orders": args.orders}
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{len(trials)} trials, {steps} steps, hypervolume {hv:.4f}")
    for p in policies:
        print(p)
    print("meeting the goal (<= 0.5 of the steps, hypervolume within 2 %):", meets or "none")
    print("fewest steps with the hypervolume within 2 %:", result["least_steps_within_2pct"])


if __name__ == "__main__":
    main()
