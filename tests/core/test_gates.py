from __future__ import annotations

import math

import pytest
import torch

from cofi_sweep.core.gates import (
    LOG_ALPHA_MAX,
    LOG_ALPHA_MIN,
    Gates,
    deterministic_mask,
    init_log_alpha,
    prob_nonzero,
    sample_hard_concrete,
)


@pytest.mark.parametrize("log_alpha, p_nonzero, p_one, mean", [
    (0.0, 0.8318, 0.1682, 0.500),
    (-2.0, 0.4010, 0.0266, 0.143),
    (2.0, 0.9734, 0.5990, 0.857),
    (math.log(100), 0.99798, 0.9529, 0.987),
])
def test_gate_statistics_match_reference(log_alpha: float, p_nonzero: float, p_one: float,
                                         mean: float) -> None:
    assert prob_nonzero(torch.tensor(log_alpha)).item() == pytest.approx(p_nonzero, abs=5e-5)
    z = sample_hard_concrete(torch.full((2_000_000,), log_alpha))
    assert 0.0 <= z.min() and z.max() <= 1.0
    assert (z > 0).float().mean().item() == pytest.approx(p_nonzero, abs=0.002)
    assert (z == 1).float().mean().item() == pytest.approx(p_one, abs=0.002)
    assert z.mean().item() == pytest.approx(mean, abs=0.002)


def test_samples_carry_gradient_inside_the_interval() -> None:
    log_alpha = torch.zeros(1000, requires_grad=True)
    z = sample_hard_concrete(log_alpha)
    z.sum().backward()
    inside = (z > 0) & (z < 1)
    assert (log_alpha.grad[inside] > 0).all() and (log_alpha.grad[~inside] == 0).all()


def test_initial_log_alpha() -> None:
    assert init_log_alpha(0.5) == pytest.approx(0.0)
    assert init_log_alpha(0.0) == pytest.approx(10.0)
    gates = Gates(num_layers=2, num_heads=4, ffn_size=8, hidden_size=16,
                  families=["head", "int"], droprate_init_int=0.5, droprate_init=0.0)
    assert gates.log_alpha["int"].mean().item() == pytest.approx(0.0, abs=0.01)
    assert gates.log_alpha["head"].mean().item() == pytest.approx(10.0, abs=0.01)
    assert sorted(gates.sample()) == ["head_z", "intermediate_z"]
    assert torch.equal(gates.probs()["mha"], torch.ones(2))  # disabled family: always on


def test_deterministic_mask_rule() -> None:
    # at the clamp ceiling, round(3072 * 0.00202) = 6 units and round(768 * 0.00202) = 2 dims
    assert (deterministic_mask(torch.full((12, 3072), LOG_ALPHA_MAX)) == 0).sum(-1).tolist() \
        == [6] * 12
    assert (deterministic_mask(torch.full((768,), LOG_ALPHA_MAX)) == 0).sum() == 2
    # scalar per-layer gate: off iff P(z>0) < 0.5 (log_alpha < -1.5986)
    layer = deterministic_mask(torch.tensor([[-1.60], [-1.59], [0.0], [-4.0]]))[:, 0]
    assert layer.tolist() == [0.0, 1.0, 1.0, 0.0]
    gates = Gates(num_layers=4, num_heads=2, ffn_size=4, hidden_size=768,
                  families=["mha", "hidden"])
    with torch.no_grad():
        gates.log_alpha["mha"].copy_(torch.tensor([-1.60, -1.59, 0.0, -4.0]))
        gates.log_alpha["hidden"].fill_(LOG_ALPHA_MAX)
    masks = gates.deterministic()
    assert masks["head_layer_z"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert (masks["hidden_z"] == 0).sum() == 2  # one group of 768, not 768 groups of one
    # the lowest log_alphas of a group go first; the mask is binary
    heads = deterministic_mask(torch.tensor([[4.0, -4.0, 4.0, -3.0, 4.0, 4.0]]))
    assert heads.tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]]


def test_clamp_holds_after_steps() -> None:
    gates = Gates(num_layers=2, num_heads=4, ffn_size=8, hidden_size=16,
                  families=["head", "mha", "int", "ffn", "hidden"])
    opt = torch.optim.SGD(gates.parameters(), lr=100.0)
    for sign in (1.0, -1.0):
        sum(z.sum() for z in gates.sample().values()).mul(sign).backward()
        opt.step()
        opt.zero_grad()
        gates.clamp_()
        for a in gates.log_alpha.values():
            assert LOG_ALPHA_MIN - 1e-6 <= a.min() and a.max() <= LOG_ALPHA_MAX + 1e-6
