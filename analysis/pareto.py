"""Pareto frontiers and their hypervolume, as pure functions of a table (tested on hand-made
tables: ties, duplicates, single points, minimise/maximise)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def _as_max(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Objectives flipped so that larger is better in every column."""
    signs = np.where(np.asarray(maximize), 1.0, -1.0)
    return values * signs


def pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """True for each row that no other row dominates.

    A row dominates another when it is at least as good in every objective and strictly better
    in one. Exact duplicates do not dominate each other: both stay on the frontier.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(maximize):
        raise ValueError(f"values must be (n, {len(maximize)}), but got shape {values.shape}")
    v = _as_max(values, maximize)
    at_least = (v[:, None, :] >= v[None, :, :]).all(-1)  # [i, j]: i >= j everywhere
    strictly = (v[:, None, :] > v[None, :, :]).any(-1)
    dominated = (at_least & strictly).any(0)  # some i dominates j
    return ~dominated


def pareto_front(table: pd.DataFrame, *, objectives: dict[str, str]) -> pd.DataFrame:
    """The non-dominated rows of ``table``, sorted by the first objective.

    Args:
        objectives: column -> "max" or "min", e.g. ``{"speedup": "max", "score": "max"}``.
    """
    for column, direction in objectives.items():
        if column not in table.columns:
            raise ValueError(f"column {column!r} not in the table; columns: {list(table)}")
        if direction not in ("max", "min"):
            raise ValueError(f"direction of {column!r} must be 'max' or 'min', got {direction!r}")
    clean = table.dropna(subset=list(objectives))
    if clean.empty:
        return clean
    mask = pareto_mask(clean[list(objectives)].to_numpy(),
                       [d == "max" for d in objectives.values()])
    return clean[mask].sort_values(list(objectives)[0])


def hypervolume_2d(points: np.ndarray, reference: Sequence[float],
                   maximize: Sequence[bool] = (True, True)) -> float:
    """Area dominated by ``points`` (n, 2) and bounded by ``reference`` (worse than all).

    Points that do not improve on the reference in both objectives add nothing.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    p = _as_max(points, maximize)
    ref = _as_max(np.asarray(reference, dtype=float)[None], maximize)[0]
    p = p[(p > ref).all(1)]
    if len(p) == 0:
        return 0.0
    p = p[pareto_mask(p, (True, True))]
    p = p[np.argsort(-p[:, 0])]  # best first objective first; second objective then rises
    area, best_y = 0.0, ref[1]
    for x, y in p:
        if y > best_y:
            area += (x - ref[0]) * (y - best_y)
            best_y = y
    return float(area)


def value_at(speedups: Sequence[float], values: Sequence[float], k: float) -> float | None:
    """A frontier's value at speedup ``k``: linear in log speedup between its points; the value
    of its slowest point for ``k`` below it (a model at least that fast exists); None beyond
    its fastest point (the frontier does not reach ``k``)."""
    s = np.asarray(speedups, dtype=float)
    v = np.asarray(values, dtype=float)
    order = np.argsort(s)
    s, v = s[order], v[order]
    if len(s) == 0 or k > s[-1]:
        return None
    if k <= s[0]:
        return float(v[0])
    return float(np.interp(np.log(k), np.log(s), v))


# One hypervolume reference for every frontier of a report: speedup 1x and the teacher's metric
# minus METRIC_SPAN. Each axis is scaled so that the unit square is a factor of SPEEDUP_SPAN in
# speedup (log scale) by METRIC_SPAN of metric: 10 points of accuracy weigh as much as 16x.
SPEEDUP_SPAN = 16.0
METRIC_SPAN = 0.10


def normalized_hypervolume(speedups: Sequence[float], scores: Sequence[float],
                           teacher: float) -> float:
    """Hypervolume of (speedup, score) points in the scaled space described above: 1.0 is a
    model at 16x with the teacher's score; points below teacher - METRIC_SPAN add nothing."""
    x = np.log2(np.asarray(speedups, dtype=float)) / np.log2(SPEEDUP_SPAN)
    y = (np.asarray(scores, dtype=float) - (teacher - METRIC_SPAN)) / METRIC_SPAN
    return hypervolume_2d(np.stack([x, y], axis=1), (0.0, 0.0))
