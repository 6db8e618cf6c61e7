"""Put a pruned model exactly on its target sparsity: project binary masks onto the band.

The Lagrangian drives the *expected* sparsity to the target, but with a short budget it lags
(0.67 for a 0.8 target) or oscillates past it, and the deterministic masks then describe a
model that is not at the sparsity its grid cell names. Before compaction (and for every
pruning evaluation, onto the target's current value while it warms up), CoFi here moves the
deterministic masks to the target by the fewest fine-grained units:

  * under-pruned: switch off kept heads and FFN units, lowest log_alpha first (the ones the
    gates already rank least useful), until sparsity >= target;
  * over-pruned: switch back on removed heads and FFN units, highest log_alpha first, in
    sub-layers whose layer gate is on before (turning the gate back on) removed ones, until
    sparsity <= target.

Units are ranked *within* their family (heads among heads, FFN units among FFN units, across
layers) and the families are interleaved by that rank's percentile, so each gives up (or gets
back) the same share of its units. Raw log_alphas are not comparable across families: the
reference starts FFN units at 0 and heads at ln 100, and a global order would remove every
FFN unit before the first head.

The target is in any quantity that grows as units go -- parameter sparsity, or the latency
model's reduction for a speedup target (:mod:`cofi_sweep.latency.targets`) -- counted exactly for
each
candidate: the fewest moves that reach it are found by bisection on their number, so it lands
within one unit of the target, well inside the band. Hidden dims are left as the gates chose
them (so a target below what the kept hidden width allows ends at the closest reachable). The
reference has no such step (``cofi.project_to_band: false`` switches it off, for ablations);
the fine-tune after compaction repairs what it removes.

Shape rounding (``cofi.shape_multiple``, default 8): matmuls whose widths are not multiples of 8
run 10-18 % slower on this 2-core CPU (``benchmarks/shape_rounding.py``), so a 383-wide residual
stream is slower than a 384-wide one. Before the projection, :func:`round_shapes` rounds the
kept hidden width and each live FFN's width to the nearest multiple (adding the best-ranked
removed units or dropping the worst-ranked kept ones), and the projection then moves FFN units
in groups of that many per layer, so the compact model keeps the aligned widths. Heads are
``head_dim`` wide (32 or 64) already.
"""

from __future__ import annotations

from typing import Callable

import torch

from cofi_sweep.core.gates import MASK_NAMES

# family -> (unit mask name, its layer gate's mask name)
UNITS = {"head": ("head_z", "head_layer_z"), "int": ("intermediate_z", "mlp_z")}


Move = tuple[str, str, int, int]  # (unit mask name, its layer gate's mask name, layer, unit)


def round_shapes(masks: dict[str, torch.Tensor], log_alpha: dict[str, torch.Tensor],
                 multiple: int) -> dict[str, torch.Tensor]:
    """A copy of binary ``masks`` whose kept hidden width and live FFN widths are multiples of
    ``multiple`` (the nearest; a hidden width never below ``multiple``, an FFN may go to 0 =
    removed); ``multiple <= 1`` returns ``masks`` unchanged."""
    if multiple <= 1:
        return masks
    new = {name: m.clone() for name, m in masks.items()}
    if "hidden_z" in new and "hidden" in log_alpha:
        new["hidden_z"] = _round_row(new["hidden_z"], log_alpha["hidden"].detach(), multiple,
                                     least=multiple)
    if "intermediate_z" in new and "int" in log_alpha:
        units = new["intermediate_z"]
        for i in range(units.shape[0]):
            if "mlp_z" not in new or bool(new["mlp_z"][i] != 0):
                units[i] = _round_row(units[i], log_alpha["int"][i].detach(), multiple)
    return new


def mask_changes(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]
                 ) -> dict[str, int]:
    """How many keep/remove decisions differ between two sets of binary masks, per mask
    family (``head``, ``mha``, ``int``, ``ffn``, ``hidden``): what shape rounding and the
    projection moved against the gates' own choice (an ablation report states it)."""
    return {family: int(((before[name] > 0) != (after[name] > 0)).sum())
            for family, name in MASK_NAMES.items() if name in before and name in after}


def nearest_multiple(width: int, multiple: int, least: int = 0) -> int:
    """``width`` rounded (half up) to the nearest multiple of ``multiple``, at least ``least``."""
    return max(least, multiple * int(width / multiple + 0.5))


def _round_row(mask: torch.Tensor, score: torch.Tensor, multiple: int, least: int = 0
               ) -> torch.Tensor:
    """``mask`` (1-D) with the nearest multiple of ``multiple`` units kept (at most all of
    them, at least ``least``): the best-scored removed ones switched on, or the worst-scored
    kept ones off."""
    kept = mask != 0
    count = int(kept.sum())
    want = min(len(mask), nearest_multiple(count, multiple, least))
    mask = mask.clone()
    if want > count:  # switch on the best-scored removed units
        off = torch.nonzero(~kept).flatten()
        mask[off[torch.argsort(score[off], descending=True)[:want - count]]] = 1.0
    elif want < count:
        on = torch.nonzero(kept).flatten()
        mask[on[torch.argsort(score[on])[:count - want]]] = 0.0
    return mask


def project_to_band(masks: dict[str, torch.Tensor], log_alpha: dict[str, torch.Tensor], *,
                    reduction: Callable[[dict[str, torch.Tensor]], float], target: float,
                    low: float, high: float, multiple: int = 1, _turns: int = 1
                    ) -> dict[str, torch.Tensor]:
    """Binary ``masks`` (by mask name) moved to ``target`` if outside [low, high].

    Args:
        masks: binary masks by mask name; not modified.
        log_alpha: the gates' scores by family (``head``, ``int`` are used when present).
        reduction: what the target is in, for a set of binary masks -- sparsity, or the
            latency model's 1 - 1/speedup (:mod:`cofi_sweep.latency.targets`); it must not decrease
            when a unit is switched off.
        target, low, high: the aim and the band, in ``reduction``'s units.
        multiple: FFN units move in groups of this many per layer (see :func:`round_shapes`).

    Returns the masks unchanged when already in the band, or when no head/FFN-unit family is
    enabled (nothing fine-grained to move).
    """
    r = reduction(masks)
    families = [f for f in UNITS if f in log_alpha and UNITS[f][0] in masks]
    if low <= r <= high or not families:
        return masks
    prune = r < low  # under-pruned: switch units off; over-pruned: back on
    keys, moves = [], []
    for family in families:
        unit_key, layer_key = UNITS[family]
        unit = masks[unit_key]
        layer_on = (masks[layer_key] != 0 if layer_key in masks
                    else torch.ones(unit.shape[0], dtype=torch.bool, device=unit.device))
        if prune:  # units of a removed sub-layer are gone already
            movable = (unit != 0) & layer_on[:, None]
        else:  # every unit of a removed sub-layer is off, whatever its own mask says
            movable = (unit == 0) | ~layer_on[:, None]
        index = torch.nonzero(movable)
        score = log_alpha[family].detach()[movable].cpu()
        # percentile of each unit's rank in its family: 0 = the first to move
        rank = torch.empty(len(score))
        rank[torch.argsort(score, descending=not prune, stable=True)] = torch.arange(
            len(score), dtype=torch.float)
        key = rank / max(1, len(score))
        if not prune:  # reviving: units of live sub-layers before those of removed ones
            key += 2.0 * (~layer_on[:, None].expand_as(unit)[movable]).float().cpu()
        units = [(unit_key, layer_key, int(i), int(j)) for i, j in index.tolist()]
        for group_key, group in _groups(units, key, multiple if family == "int" else 1):
            keys.append(group_key)
            moves.append(group)
    order = torch.argsort(torch.tensor(keys), stable=True).tolist()
    moves = [moves[i] for i in order]

    def reached(m: dict[str, torch.Tensor]) -> bool:
        return reduction(m) >= target if prune else reduction(m) <= target

    # the fewest moves that reach the target (reduction is monotone in their number)
    lo, hi = 0, len(moves)
    every = _apply(masks, moves, prune)
    if not reached(every):
        return every  # out of reach: as close as the units allow
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reached(_apply(masks, moves[:mid], prune)) else (mid, hi)
    new = _apply(masks, moves[:hi], prune)
    if low <= reduction(new) <= high:
        return new
    # the last move jumped past the band (a head coarser than the band): without it, go on
    # with the next-ranked units, skipping any that would jump past it too
    new, skipped = _apply(masks, moves[:hi - 1], prune), [moves[hi - 1]]
    r = reduction(new)
    for move in moves[hi:]:
        if (r >= target) if prune else (r <= target):
            break
        after = _apply(new, [move], prune)
        r_after = reduction(after)
        if (r_after > high) if prune else (r_after < low):
            skipped.append(move)
        else:
            new, r = after, r_after
    if not low <= r <= high and _turns > 0:
        # only coarse units were left: take the best-ranked one past the band, then come back
        # with fine units the other way
        return project_to_band(_apply(new, skipped[:1], prune), log_alpha, reduction=reduction,
                               target=target, low=low, high=high, multiple=multiple,
                               _turns=0)
    return new


def _groups(units: list[Move], key: torch.Tensor, size: int
            ) -> list[tuple[float, list[Move]]]:
    """``units`` (ranked by ``key``, lowest first) as moves of ``size`` units of one layer
    each, a move ranked by its last unit's key."""
    if size <= 1:
        return [(float(k), [u]) for u, k in zip(units, key.tolist())]
    by_layer: dict[int, list[tuple[float, Move]]] = {}
    for u, k in sorted(zip(units, key.tolist()), key=lambda pair: pair[1]):
        by_layer.setdefault(u[2], []).append((k, u))
    return [(chunk[-1][0], [u for _, u in chunk]) for ranked in by_layer.values()
            for chunk in (ranked[i:i + size] for i in range(0, len(ranked), size))]


def _apply(masks: dict[str, torch.Tensor], moves: list[list[Move]], prune: bool
           ) -> dict[str, torch.Tensor]:
    """A copy of ``masks`` with ``moves`` (groups of units) switched off (``prune``) or back
    on; a revived sub-layer holds only revived units."""
    new = {name: m.clone() for name, m in masks.items()}
    for unit_key, layer_key in UNITS.values():
        picked = [(i, j) for group in moves for u, _, i, j in group if u == unit_key]
        if not picked:
            continue
        i, j = torch.tensor(picked).T.to(new[unit_key].device)
        if not prune and layer_key in new:
            dead = i[new[layer_key][i] == 0].unique()
            new[unit_key][dead] = 0.0
            new[layer_key][dead] = 1.0
        new[unit_key][i, j] = 0.0 if prune else 1.0
    return new
