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

Each unit's exact parameter cost is counted (a head costs ~64 FFN units at MiniLM's width), and
the result is checked with the exact size formula, so it lands within one unit of the target --
well inside [target - eps, target + max_overshoot]. Hidden dims are left as the gates chose
them (so a target below what the kept hidden width allows ends at the closest reachable). The reference has no such step (``cofi.project_to_band: false``
switches it off, for ablations); the fine-tune after compaction repairs what it removes.
"""

from __future__ import annotations

from typing import Callable

import torch

# family -> (unit mask name, its layer gate's mask name)
UNITS = {"head": ("head_z", "head_layer_z"), "int": ("intermediate_z", "mlp_z")}


def project_to_band(masks: dict[str, torch.Tensor], log_alpha: dict[str, torch.Tensor], *,
                    size: Callable[[dict[str, torch.Tensor]], float], dense: int,
                    target: float, low: float, high: float, head_cost: float,
                    unit_cost: float, _turns: int = 1) -> dict[str, torch.Tensor]:
    """Binary ``masks`` (by mask name) moved to sparsity ``target`` if outside [low, high].

    Args:
        masks: binary masks by mask name; not modified.
        log_alpha: the gates' scores by family (``head``, ``int`` are used when present).
        size: the exact prunable-parameter count of a set of binary masks.
        dense: the dense model's prunable-parameter count.
        target, low, high: the aim and the band.
        head_cost, unit_cost: approximate parameters per head and per FFN unit, for the first
            guess; the exact ``size`` decides.

    Returns the masks unchanged when already in the band, or when no head/FFN-unit family is
    enabled (nothing fine-grained to move).
    """
    def sparsity_of(m: dict[str, torch.Tensor]) -> float:
        return 1 - size(m) / dense

    sparsity = sparsity_of(masks)
    families = [f for f in UNITS if f in log_alpha and UNITS[f][0] in masks]
    if low <= sparsity <= high or not families:
        return masks
    prune = sparsity < low  # under-pruned: switch units off; over-pruned: back on
    scores, costs, where = [], [], []
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
        order_key = rank / max(1, len(score))
        if not prune:  # reviving: units of live sub-layers before those of removed ones
            order_key += 2.0 * (~layer_on[:, None].expand_as(unit)[movable]).float().cpu()
        scores.append(order_key)
        costs.append(torch.full((len(index),), head_cost if family == "head" else unit_cost))
        where += [(unit_key, layer_key, int(i), int(j)) for i, j in index.tolist()]
    key, cost = torch.cat(scores), torch.cat(costs)
    order = torch.argsort(key, stable=True).tolist()
    new = {name: m.clone() for name, m in masks.items()}

    def apply(idx: int) -> None:
        name, layer_key, i, j = where[idx]
        if not prune and layer_key in new and new[layer_key][i] == 0:
            new[name][i] = 0.0  # a revived sub-layer holds only revived units
            new[layer_key][i] = 1.0
        new[name][i, j] = 0.0 if prune else 1.0

    # bulk: the units that the cost estimate says stay short of the target; then one at a
    # time by the exact count, skipping a unit (a head, say) that would jump past the band
    needed = abs(target - sparsity) * dense
    bulk = int(torch.searchsorted(torch.cumsum(cost[order], 0), torch.tensor(0.9 * needed)))
    for idx in order[:bulk]:
        apply(idx)
    s = sparsity_of(new)
    skipped = []
    for idx in order[bulk:]:
        if (s >= target) if prune else (s <= target):
            break
        before = {name: m.clone() for name, m in new.items()}
        apply(idx)
        after = sparsity_of(new)
        if (after > high) if prune else (after < low):
            new = before  # too coarse for what is left: try the next one
            skipped.append(idx)
        else:
            s = after
    if not low <= s <= high and skipped and _turns > 0:
        # only coarse units were left (heads wider than the band): take the best-ranked one
        # past the band, then come back with fine units the other way
        apply(skipped[0])
        return project_to_band(new, log_alpha, size=size, dense=dense, target=target, low=low,
                               high=high, head_cost=head_cost, unit_cost=unit_cost, _turns=0)
    return new
