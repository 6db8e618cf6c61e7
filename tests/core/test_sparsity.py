from __future__ import annotations

import pytest
import torch
from helpers import tiny

from cofi_sweep.core.compact import compact
from cofi_sweep.core.gates import Gates, masks_as_probs
from cofi_sweep.core.sparsity import Lagrangian, dense_size, expected_size, target_at

FAMILIES = ["head", "mha", "int", "ffn", "hidden"]


def test_dense_sizes() -> None:
    assert dense_size(num_layers=12, hidden_size=768, num_heads=12, head_dim=64,
                      ffn_size=3072) == 85_017_600
    assert dense_size(num_layers=6, hidden_size=384, num_heads=12, head_dim=32,
                      ffn_size=1536) == 10_637_568


def test_all_on_means_zero_sparsity() -> None:
    gates = Gates(num_layers=12, num_heads=12, ffn_size=3072, hidden_size=768, families=[])
    assert expected_size(gates.probs(), 64).item() == 85_017_600


def test_expected_size_is_monotone_in_every_log_alpha() -> None:
    gates = Gates(num_layers=3, num_heads=4, ffn_size=16, hidden_size=32, families=FAMILIES)
    with torch.no_grad():
        for a in gates.log_alpha.values():
            a.uniform_(-4, 4)
    expected_size(gates.probs(), 8).backward()
    for family, a in gates.log_alpha.items():
        assert (a.grad >= 0).all(), family


def test_expected_deterministic_and_compacted_counts_agree_at_binary_masks() -> None:
    model = tiny()
    gates = Gates(num_layers=4, num_heads=4, ffn_size=128, hidden_size=64, families=FAMILIES)
    with torch.no_grad():
        for a in gates.log_alpha.values():
            a.uniform_(-4, 4)
        gates.log_alpha["mha"][1] = -4.0  # one MHA removed by its layer gate
        gates.log_alpha["head"][2] = -4.0  # every head off with z_MHA on
    masks = gates.deterministic()
    deterministic = expected_size(masks_as_probs(masks, gates), model.shape.head_dim).item()
    assert deterministic == compact(model, masks).prunable_parameters()
    # binary log_alphas at the extremes make the expectation itself (almost) binary
    with torch.no_grad():
        for name, a in gates.log_alpha.items():
            a.copy_(torch.where(masks[{"head": "head_z", "mha": "head_layer_z",
                                       "int": "intermediate_z", "ffn": "mlp_z",
                                       "hidden": "hidden_z"}[name]] > 0, 30.0, -30.0))
    assert expected_size(gates.probs(), 16).item() == pytest.approx(deterministic, rel=1e-6)


def test_lagrangian_gradients_and_ascent() -> None:
    lag = Lagrangian()
    opt = torch.optim.AdamW(lag.parameters(), lr=0.01, weight_decay=0.0, maximize=True)
    s, t = torch.tensor(0.3), 0.5
    lag(s, t).backward()
    assert lag.lambda_1.grad.item() == pytest.approx(s.item() - t)
    assert lag.lambda_2.grad.item() == pytest.approx((s.item() - t) ** 2)
    previous = 0.0
    for gap in (-0.2, 0.1, 0.05, -0.3):
        opt.zero_grad()
        lag(torch.tensor(t + gap), t).backward()
        opt.step()
        assert lag.lambda_2.item() >= previous
        previous = lag.lambda_2.item()
    assert lag.lambda_1.item() < 0  # ascent: pushed the way (s - t) mostly pointed


def test_target_schedule() -> None:
    assert target_at(0, target=0.8, warmup_steps=100) == 0.0
    assert target_at(50, target=0.8, warmup_steps=100) == pytest.approx(0.4)
    assert target_at(100, target=0.8, warmup_steps=100) == 0.8
    assert target_at(500, target=0.8, warmup_steps=100) == 0.8
