"""From the results table to the report's points and frontiers.

A point is a grid cell with its searched values, averaged over its seeds (mean and sample
standard deviation); only finished trials on target (or baselines) make points, placed at their
*measured* speedup and realized sparsity, never at a nominal target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.pareto import normalized_hypervolume, pareto_front, value_at

CHOSEN_ON = {"speedup": "max", "selection_score": "max"}  # the frontier; dev is reported
SPEEDUPS = (2, 3, 4, 6, 8, 10)  # the "accuracy at kx" table
# speedup predictions beside the measured one: the latency table's (at its sequence length),
# else the trial's own FLOP ratio
PREDICTORS = {"flop_predicted_speedup": "matmul FLOPs", "latency_model_speedup":
              "latency model (calibrated)"}


def mean_sd(value: float, sd: float, fmt: str = ".4f") -> str:
    """``0.8700 ± 0.0141``, or the value alone where there is no spread (one seed); the spread
    in the value's format without its sign."""
    return f"{value:{fmt}}" + (f" ± {sd:{fmt.lstrip('+')}}" if pd.notna(sd) else "")


def frontier_label(row: pd.Series) -> str:
    """``cofi:<ablation>`` or ``distill:<baseline name>``: each baseline is its own series.

    CoFi cells that aimed at a sparsity and those that aimed at a speedup share their
    ablation's frontier: how a target is named does not change the method, and apart a
    0.5-sparsity point at 1.94x and a 5x-target point at 5.17x each missed a baseline at
    1.98x (one did not reach it, the other scored below it). Speedup-target cells are also
    reported on their own (:func:`speedup_target_section`)."""
    return f"{row.get('method', 'cofi') or 'cofi'}:{row.get('ablation')}"


def speedup_targets(table: pd.DataFrame) -> pd.DataFrame:
    """Finished trials that aimed at a speedup (``cofi.target_speedup``)."""
    if "target_speedup" not in table or "status" not in table:
        return table.iloc[:0]
    return table[(table["status"] == "finished") & table["target_speedup"].notna()]


def eligible(table: pd.DataFrame) -> pd.DataFrame:
    """Finished trials that may stand on a frontier: baselines, and CoFi trials on target."""
    if table.empty or "status" not in table:
        return table.iloc[:0]
    done = table[table["status"] == "finished"]
    if "on_target" in done:
        done = done[done["on_target"].map(lambda v: v is not False)]
    return done


def points(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, searched values): the mean over its seeds, with the spread.

    ``selection_score`` is the seeds' mean selection-split score (dev where no split was held
    out), which decides the frontier; the seed whose model ships is the one with the best
    selection score. Dev (``score``) is only reported."""
    done = eligible(table).copy()
    if done.empty or "speedup" not in done:
        return pd.DataFrame()
    chooser = done["selection_score"] if "selection_score" in done else done["score"]
    done["selection_score"] = chooser.fillna(done["score"])  # older trials: dev chose
    searched = sorted(c for c in done if c.startswith("config/cofi.") and c != "config/cofi.seed")
    done["frontier"] = done.apply(frontier_label, axis=1)
    done["point"] = done["cell_id"].astype(str) + done[searched].astype(str).agg(
        " ".join, axis=1) if searched else done["cell_id"].astype(str)
    rows = []
    for _, group in done.sort_values("trial_id").groupby("point", sort=True):
        best = group.loc[group["selection_score"].idxmax()]  # its compact model ships
        row = best.to_dict()
        row.update(score=group["score"].mean(), speedup=group["speedup"].mean(),
                   selection_score=group["selection_score"].mean(),
                   realized_sparsity=group["realized_sparsity"].mean(), seeds=len(group),
                   score_std=group["score"].std(ddof=1) if len(group) > 1 else np.nan,
                   trial_ids=" ".join(sorted(map(str, group["trial_id"]))),
                   # its speedup is a fact only when every seed's timing was reliable
                   timing_reliable=unreliable(group).empty)
        rows.append(row)
    return pd.DataFrame(rows)


def teacher_score(table: pd.DataFrame) -> float:
    done = table[table["status"] == "finished"] if len(table) else table
    return float(done["teacher_score"].iloc[0]) if len(done) else float("nan")


def frontiers(pts: pd.DataFrame, teacher: float) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per method/ablation, the :func:`points` that no other point beats in measured speedup
    and selection score, and the hypervolume of their dev scores (the one reference point of
    :func:`analysis.pareto.normalized_hypervolume`). Choosing on dev would publish the best of
    N draws of the reported number; choosing on the selection split leaves dev unbiased."""
    if pts.empty:
        return pd.DataFrame(), {}
    fronts, volumes = [], {}
    for label, group in pts.groupby("frontier"):
        front = pareto_front(group, objectives=CHOSEN_ON)
        fronts.append(front)
        volumes[label] = normalized_hypervolume(front["speedup"], front["score"], teacher)
    return pd.concat(fronts), volumes


def accuracy_at_speedups(front: pd.DataFrame) -> pd.DataFrame:
    """Each frontier's mean score and spread at every k of ``SPEEDUPS`` it reaches."""
    rows = []
    for label, f in front.groupby("frontier"):
        for k in SPEEDUPS:
            score = value_at(f["speedup"], f["score"], k)
            if score is not None:
                spread = value_at(f["speedup"], f["score_std"], k)
                rows.append({"speedup": k, "frontier": label, "score": score, "std": spread,
                             "seeds": int(f["seeds"].min())})
    return pd.DataFrame(rows)


def unreliable(table: pd.DataFrame) -> pd.DataFrame:
    """Finished trials whose speedup was measured while the timing was unreliable (the machine
    busy with other work, a noisy teacher: ``timing_reliable`` false); a table from before
    timings were judged has none."""
    if "timing_reliable" not in table or not len(table):
        return table.iloc[:0]
    done = table[table["status"] == "finished"]
    return done[done["timing_reliable"] == False]  # noqa: E712  (None/NaN: not judged)


def reliable(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without the rows :func:`unreliable` names."""
    return table[~table.index.isin(unreliable(table).index)]
