"""Put a pruned model exactly on its target sparsity: project binary masks onto the band.

The Lagrangian drives the *expected* sparsity to the target, but with a short budget it lags
(0.67 for a 0.8 target) or oscillates past it, and the deterministic masks then describe a
model that is not at the sparsity its grid cell names. Before compaction (and for every
evaluation at target), CoFi here moves the deterministic masks to the target by the fewest
fine-grained units:

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
model's reduction for a speedup target (:mod:`cofi_sweep.targets`) -- counted exactly for each
candidate: the fewest moves that reach it are found by bisection on their number, so it lands
within one unit of the target, well inside the band. Hidden dims are left as the gates chose
them (so a target below what the kept hidden width allows ends at the closest reachable). The
reference has no such step (``cofi.project_to_band: false`` switches it off, for ablations);
the fine-tune after compaction repairs what it removes.
"""

from __future__ import annotations

from typing import Callable

import torch

# family -> (unit mask name, its layer gate's mask name)
UNITS = {"head": ("head_z", "head_layer_z"), "int": ("intermediate_z", "mlp_z")}


Move = tuple[str, str, int, int]  # (unit mask name, its layer gate's mask name, layer, unit)


def project_to_band(masks: dict[str, torch.Tensor], log_alpha: dict[str, torch.Tensor], *,
                    reduction: Callable[[dict[str, torch.Tensor]], float], target: float,
                    low: float, high: float, _turns: int = 1) -> dict[str, torch.Tensor]:
    """Binary ``masks`` (by mask name) moved to ``target`` if outside [low, high].

    Args:
        masks: binary masks by mask name; not modified.
        log_alpha: the gates' scores by family (``head``, ``int`` are used when present).
        reduction: what the target is in, for a set of binary masks -- sparsity, or the
            latency model's 1 - 1/speedup (:mod:`cofi_sweep.targets`); it must not decrease
            when a unit is switched off.
        target, low, high: the aim and the band, in ``reduction``'s units.

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
        keys.append(key)
        moves += [(unit_key, layer_key, int(i), int(j)) for i, j in index.tolist()]
    order = torch.argsort(torch.cat(keys), stable=True).tolist()
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
                               target=target, low=low, high=high, _turns=0)
    return new


def _apply(masks: dict[str, torch.Tensor], moves: list[Move], prune: bool
           ) -> dict[str, torch.Tensor]:
    """A copy of ``masks`` with ``moves`` switched off (``prune``) or back on; a revived
    sub-layer holds only revived units."""
    new = {name: m.clone() for name, m in masks.items()}
    for unit_key, layer_key in UNITS.values():
        picked = [(i, j) for u, _, i, j in moves if u == unit_key]
        if not picked:
            continue
        i, j = torch.tensor(picked).T.to(new[unit_key].device)
        if not prune and layer_key in new:
            dead = i[new[layer_key][i] == 0].unique()
            new[unit_key][dead] = 0.0
            new[layer_key][dead] = 1.0
        new[unit_key][i, j] = 0.0 if prune else 1.0
    return new
