"""Projection of binary masks onto the target band (cofi_sweep/projection.py)."""

from __future__ import annotations

import pytest
import torch

from cofi_sweep.core.gates import Gates, masks_as_probs
from cofi_sweep.core.projection import project_to_band, round_shapes
from cofi_sweep.core.sparsity import dense_size, expected_size

# a head is 0.6 % of the prunable parameters here, finer than the band (as in MiniLM: 0.5 %)
L, H, D_H, F, D = 4, 8, 8, 512, 64
COARSE = dict(L=4, H=4, D_H=16, F=128)  # tiny-bert: a head is 3 %, coarser than the band


def dense(L: int = L, H: int = H, D_H: int = D_H, F: int = F) -> int:
    return dense_size(num_layers=L, hidden_size=D, num_heads=H, head_dim=D_H, ffn_size=F)


def gates_at(seed: int, families: tuple[str, ...] = ("head", "mha", "int", "ffn", "hidden"),
             L: int = L, H: int = H, F: int = F, **_: int) -> Gates:
    gates = Gates(num_layers=L, num_heads=H, ffn_size=F, hidden_size=D, families=families)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in gates.log_alpha.values():
            a.copy_(torch.randn(a.shape, generator=g) * 3)
        if "hidden" in gates.log_alpha:  # hidden dims are rarely pruned (and never restored)
            gates.log_alpha["hidden"].add_(8.0)
    return gates


def sparsity(masks: dict, gates: Gates, **shape: int) -> float:
    d_h = shape.get("D_H", D_H)
    return 1 - float(expected_size(masks_as_probs(masks, gates), d_h)) / dense(**shape)


def project(masks: dict, gates: Gates, target: float, eps: float = 0.01, **shape: int) -> dict:
    return project_to_band(masks, dict(gates.log_alpha.items()),
                           reduction=lambda m: sparsity(m, gates, **shape), target=target,
                           low=target - eps, high=target + eps)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", [0.2, 0.5, 0.8, 0.95])
def test_projection_lands_in_band_by_moving_the_lowest_or_highest_ranked_units(
        seed: int, target: float) -> None:
    gates = gates_at(seed)
    raw = gates.deterministic()
    before = sparsity(raw, gates)
    out = project(raw, gates, target)
    after = sparsity(out, gates)
    assert target - 0.01 <= after <= target + 0.01, (before, after)
    # hidden dims never move; layer gates only come back on, when reviving
    assert torch.equal(out["hidden_z"], raw["hidden_z"])
    for name in ("head_layer_z", "mlp_z"):
        assert torch.equal(out[name], raw[name]) or (before > target and
                                                     bool((out[name] >= raw[name]).all()))
    changed = {n: (out[n] != raw[n]) for n in ("head_z", "intermediate_z")}
    scores = {"head_z": gates.log_alpha["head"].detach(),
              "intermediate_z": gates.log_alpha["int"].detach()}
    moved = torch.cat([scores[n][changed[n]] for n in changed])
    assert abs(before - target) > 0.01  # these gates start off the band (in band: below)
    assert len(moved) > 0
    if before < target:  # both families give their share: neither is emptied first
        assert all(float(out[n].sum()) > 0 for n in changed if float(raw[n].sum()) > 0)
    pruned = before < target
    for n in changed:  # every moved unit of a live sub-layer went the same way
        live_row = raw["head_layer_z" if n == "head_z" else "mlp_z"] != 0
        moved_here = changed[n] & live_row[:, None]
        assert bool((out[n][moved_here] == (0.0 if pruned else 1.0)).all())
    # within each family, the moved units are the extreme-ranked ones among those that could
    # move (pruning: the kept units of live sub-layers; reviving: units of live sub-layers)
    layer_on = {"head_z": raw["head_layer_z"] != 0, "intermediate_z": raw["mlp_z"] != 0}
    for n in changed:
        live = layer_on[n][:, None].expand_as(raw[n])
        moved_here = scores[n][changed[n] & live]
        still = scores[n][(out[n] != 0 if pruned else out[n] == 0) & live]
        if len(moved_here) and len(still):
            if pruned:
                assert moved_here.max() <= still.min()
            else:
                assert moved_here.min() >= still.max()
        if not pruned and len(still):  # live sub-layers still had room: no removed one is back
            assert torch.equal(out[n][~live], raw[n][~live])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("offset", [0.0, -0.009, 0.009])
def test_masks_already_in_band_are_returned_untouched(seed: int, offset: float) -> None:
    gates = gates_at(seed)
    raw = gates.deterministic()
    target = sparsity(raw, gates) + offset  # the masks sit inside [target - eps, target + eps]
    assert project(raw, gates, target) is raw


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target", [0.2, 0.5, 0.8, 0.95])
def test_projection_lands_in_band_when_heads_are_coarser_than_the_band(seed: int,
                                                                       target: float) -> None:
    gates = gates_at(seed, **COARSE)
    out = project(gates.deterministic(), gates, target, **COARSE)
    assert target - 0.01 <= sparsity(out, gates, **COARSE) <= target + 0.01


def test_projection_needs_a_fine_grained_family() -> None:
    gates = gates_at(0, families=("mha", "ffn", "hidden"))
    raw = gates.deterministic()
    assert project(raw, gates, 0.9) is raw  # nothing to move: unchanged, the caller decides


def test_projection_revives_a_removed_layer_only_when_live_ones_are_full() -> None:
    gates = gates_at(3)
    raw = gates.deterministic()
    raw["head_layer_z"][0] = 0.0  # layer 1's MHA gated off: its heads do not count
    near = project(raw, gates, sparsity(raw, gates) - 0.05)  # a little room: live layers do
    assert near["head_layer_z"][0] == 0 and torch.equal(near["head_z"][0], raw["head_z"][0])
    far = project(raw, gates, 0.03)  # nearly all the way back: the removed MHA returns too
    assert far["head_layer_z"][0] == 1 and sparsity(far, gates) <= 0.04


def test_reference_init_does_not_empty_one_family_first() -> None:
    # the reference starts FFN units at log_alpha 0 and heads at ln 100: a global order by
    # log_alpha would remove every FFN unit before the first head
    gates = gates_at(0)
    with torch.no_grad():
        gates.log_alpha["int"].normal_(0.0, 0.01)
        gates.log_alpha["head"].normal_(4.6, 0.01)
        gates.log_alpha["mha"].fill_(4.6)
        gates.log_alpha["ffn"].fill_(4.6)
        gates.log_alpha["hidden"].fill_(4.6)
    raw = gates.deterministic()
    out = project(raw, gates, 0.8)
    assert 0.79 <= sparsity(out, gates) <= 0.81
    heads = out["head_z"].sum() / raw["head_z"].sum()
    units = out["intermediate_z"].sum() / raw["intermediate_z"].sum()
    assert 0.1 < float(heads) < 0.35 and 0.1 < float(units) < 0.35  # each keeps ~a fifth


def _widths(masks: dict) -> tuple[int, list[int]]:
    """Kept hidden width and live FFN widths (0 for a removed FFN sub-layer)."""
    live = masks["mlp_z"] != 0
    ffn = [int((masks["intermediate_z"][i] != 0).sum()) if live[i] else 0 for i in range(L)]
    return int((masks["hidden_z"] != 0).sum()), ffn


@pytest.mark.parametrize("seed", range(4))
def test_round_shapes_keeps_the_nearest_multiple_by_rank(seed: int) -> None:
    gates = gates_at(seed)
    raw = gates.deterministic()
    raw["hidden_z"][:] = 1.0
    raw["hidden_z"][:3] = 0.0  # 61 kept: the nearest multiple of 8 is 64
    out = round_shapes(raw, dict(gates.log_alpha.items()), 8)
    hidden, ffn = _widths(out)
    (hidden_before, ffn_before), scores = _widths(raw), gates.log_alpha["int"].detach()
    assert hidden == 64 and hidden_before == 61
    for i, (now, before) in enumerate(zip(ffn, ffn_before)):
        assert now % 8 == 0 and abs(now - before) <= 4, (now, before)
        if raw["mlp_z"][i] == 0:
            continue
        kept, was = out["intermediate_z"][i] != 0, raw["intermediate_z"][i] != 0
        if now > before:  # the best-ranked removed units came back
            assert scores[i][kept & ~was].min() >= scores[i][~kept].max()
        elif now < before:  # the worst-ranked kept ones went
            assert scores[i][was & ~kept].max() <= scores[i][kept].min()
    assert round_shapes(raw, dict(gates.log_alpha.items()), 1) is raw


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("target", [0.2, 0.5, 0.8, 0.95])
def test_projection_in_groups_keeps_rounded_ffn_widths(seed: int, target: float) -> None:
    gates = gates_at(seed)
    log_alpha = dict(gates.log_alpha.items())
    rounded = round_shapes(gates.deterministic(), log_alpha, 8)
    out = project_to_band(rounded, log_alpha, reduction=lambda m: sparsity(m, gates),
                          target=target, low=target - 0.01, high=target + 0.01, multiple=8)
    assert target - 0.01 <= sparsity(out, gates) <= target + 0.01
    hidden, ffn = _widths(out)
    assert hidden % 8 == 0 and all(f % 8 == 0 for f in ffn), ffn
    assert _widths(out) != _widths(rounded) or out is rounded
