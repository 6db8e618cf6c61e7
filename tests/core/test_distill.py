from __future__ import annotations

import pytest
import torch
from helpers import random_batch, tiny

from cofi_sweep.core.distill import (
    align_layers,
    default_teacher_layers,
    identity_projection,
    layer_loss,
    layer_loss_matrix,
    prediction_loss,
    real_tokens,
)


def test_default_teacher_layers() -> None:
    assert default_teacher_layers(12) == [3, 6, 9, 12]
    assert default_teacher_layers(6) == [2, 3, 5, 6]
    assert default_teacher_layers(4) == [1, 2, 3, 4]


def test_constrained_mapping_is_strictly_decreasing_over_existing_layers() -> None:
    # rows: teacher layers 3, 6, 9, 12 (bottom to top); columns: 12 student layers
    losses = torch.full((4, 12), 5.0)
    losses[3, 10] = 0.1  # teacher 12 -> student 11
    losses[2, 10] = 0.0  # teacher 9 would also like 11: must go strictly lower
    losses[2, 8] = 0.5
    losses[1, 9] = 0.0  # teacher 6 likes 10, which is above 9's match: not admissible
    losses[1, 4] = 0.2  # ... and 5 is removed, so the next best existing one is taken
    losses[1, 3] = 0.3
    losses[0, 0] = 0.1
    existing = [True] * 12
    existing[4] = False
    mapping = align_layers(losses, existing, "dynamic", [3, 6, 9, 12])
    assert mapping == [0, 3, 8, 10]
    assert all(a < b for a, b in zip(mapping, mapping[1:]))
    assert all(existing[j] for j in mapping)


def test_unconstrained_mapping_and_exhaustion() -> None:
    losses = torch.rand(4, 6)
    losses[:, 2] = -1.0
    assert align_layers(losses, [True] * 6, "unconstrained", [1, 2, 3, 4]) == [2, 2, 2, 2]
    # only two layers exist: the two lowest teacher layers get nothing
    only = [False, False, False, True, False, True]
    assert align_layers(torch.rand(4, 6), only, "dynamic", [1, 2, 3, 4])[:2] == [None, None]
    assert align_layers(losses, [True] * 6, "fixed", [2, 4, 5, 6]) == [1, 3, 4, 5]


def test_student_equal_to_teacher_maps_identity_with_zero_loss() -> None:
    model = tiny()
    ids, mask = random_batch(100)
    with torch.no_grad():
        states = model(ids, mask, output_hidden_states=True).hidden_states
    teacher_layers = default_teacher_layers(4)
    projection = identity_projection(64, 64)
    projected = [projection(h) for h in real_tokens(states[1:], mask)]
    targets = real_tokens([states[i] for i in teacher_layers], mask)
    losses = layer_loss_matrix(projected, targets)
    for mode in ("unconstrained", "dynamic"):
        mapping = align_layers(losses, [True] * 4, mode, teacher_layers)
        assert mapping == [k - 1 for k in teacher_layers]
        assert layer_loss(projected, targets, mapping).item() == pytest.approx(0.0, abs=1e-10)


def test_prediction_loss() -> None:
    logits = torch.randn(8, 3)
    assert prediction_loss(logits, logits, temperature=2.0, regression=False).item() \
        == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(8, 3)
    at_1 = prediction_loss(logits, other, temperature=1.0, regression=False)
    assert at_1.item() > 0
    # regression: a non-zero distillation gradient (a softmax over one logit would give 0)
    student = torch.randn(8, 1, requires_grad=True)
    loss = prediction_loss(student, torch.randn(8, 1), temperature=2.0, regression=True)
    loss.backward()
    assert student.grad.abs().sum() > 0


@pytest.mark.parametrize("padded", [False, True])
def test_layer_loss_matrix_is_the_mse_over_real_tokens(padded: bool) -> None:
    """Entry (i, j) is MSE(W h_s^j, h_t^i) over the real tokens only: padding changes nothing."""
    torch.manual_seed(0)
    student = [torch.randn(3, 7, 8) for _ in range(2)]
    teacher = [torch.randn(3, 7, 16) for _ in range(3)]
    projection = torch.nn.Linear(8, 16)
    mask = torch.ones(3, 7, dtype=torch.long)
    if padded:
        mask[0, 4:], mask[2, 1:] = 0, 0
        for h in student + teacher:  # whatever sits at padding must not count
            h[mask == 0] = 1e3
    projected = [projection(h) for h in real_tokens(student, mask)]
    targets = real_tokens(teacher, mask)
    losses = layer_loss_matrix(projected, targets)
    assert not losses.requires_grad
    real = mask.bool()
    for i, t in enumerate(teacher):
        for j, h in enumerate(student):
            want = torch.nn.functional.mse_loss(projection(h[real]), t[real])
            assert losses[i, j].item() == pytest.approx(want.item(), rel=1e-5)


def test_layer_loss_differentiates_the_mapped_pairs_only() -> None:
    """The loss is the sum of the mapped entries of the matrix, and its gradient reaches only
    the student layers that are mapped (the others cost no backward)."""
    torch.manual_seed(1)
    student = [torch.randn(2, 5, 8, requires_grad=True) for _ in range(3)]
    teacher = [torch.randn(2, 5, 16) for _ in range(2)]
    projection = torch.nn.Linear(8, 16)
    mask = torch.ones(2, 5, dtype=torch.long)
    projected = [projection(h) for h in real_tokens(student, mask)]
    targets = real_tokens(teacher, mask)
    mapping = [None, 2]
    loss = layer_loss(projected, targets, mapping)
    assert loss.item() == pytest.approx(layer_loss_matrix(projected, targets)[1, 2].item(),
                                        rel=1e-5)
    loss.backward()
    assert student[2].grad.abs().sum() > 0
    assert student[0].grad is None and student[1].grad is None
