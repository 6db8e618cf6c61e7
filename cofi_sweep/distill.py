"""Distillation from the fine-tuned teacher: prediction loss, layer loss, and the layer mapping.

    total = alpha_layer * L_layer + alpha_pred * L_pred      (+ the Lagrangian, elsewhere)

L_pred is tau^2 * KL(teacher || student) on temperature-softened logits (classification), or an
MSE between student and teacher outputs (regression, where a softmax over one logit is constant
and the KL would be identically 0). L_layer sums, over the chosen teacher layers, the MSE between
W h_student and h_teacher, with one shared linear map W (initialised to identity) and a student
layer chosen per step for each teacher layer.

Layer mapping modes (``CofiConfig.distill``):
    dynamic        top-down; each teacher layer takes the lowest-MSE *existing* student layer
                   strictly below the one matched before (CoFi's default);
    unconstrained  each teacher layer takes its lowest-MSE existing student layer;
    fixed          teacher layer k <-> student layer k (k * S / T for a student of S layers
                   under a teacher of T);
    prediction     no layer loss (L_pred only);  none: hard labels, no teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def default_teacher_layers(num_layers: int) -> list[int]:
    """Every quarter of the teacher's depth, 1-based: [3, 6, 9, 12] for 12 layers."""
    return sorted({max(1, -(-num_layers * q // 4)) for q in (1, 2, 3, 4)})


def prediction_loss(student: torch.Tensor, teacher: torch.Tensor, *, temperature: float,
                    regression: bool) -> torch.Tensor:
    """tau^2 * KL(softmax(t/tau) || softmax(s/tau)) (batch mean), or MSE for regression."""
    if regression:
        return F.mse_loss(student, teacher)
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    p_teacher = F.softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * temperature**2


def layer_loss_matrix(student_states: list[torch.Tensor], teacher_states: list[torch.Tensor],
                      projection: nn.Module, token_mask: torch.Tensor) -> torch.Tensor:
    """MSE(W h_s^j, h_t^i) over non-padding tokens, as a (len(teacher), len(student)) matrix.

    Args:
        student_states: the student's block outputs, each (B, T, d_s).
        teacher_states: the chosen teacher block outputs, each (B, T, d_t).
        projection: the shared map W: d_s -> d_t.
        token_mask: (B, T), 1 for real tokens.
    """
    # only the real tokens are projected and compared (padding is often half of a batch)
    real = token_mask.bool()
    every = bool(real.all())  # no padding: a reshape, not a gather

    def tokens(h: torch.Tensor) -> torch.Tensor:
        return h.reshape(-1, h.shape[-1]) if every else h[real]

    projected = torch.stack([projection(tokens(h)) for h in student_states])  # (S, n, d_t)
    denom = projected.shape[1] * projected.shape[2]
    return torch.stack([(projected - tokens(target)).square().sum(dim=(1, 2)) / denom
                        for target in teacher_states])  # (T_layers, S)


def align_layers(losses: torch.Tensor, existing: list[bool], mode: str,
                 teacher_layers: list[int], teacher_depth: int | None = None
                 ) -> list[int | None]:
    """Student layer (0-based) for each teacher layer (rows of ``losses``, bottom to top).

    Args:
        losses: (len(teacher_layers), num_student) layer-loss matrix.
        existing: per student layer, whether it still has an MHA or FFN sub-layer.
        mode: dynamic | unconstrained | fixed (see the module docstring).
        teacher_layers: the teacher layers' 1-based numbers (used by ``fixed``).
        teacher_depth: the teacher's number of layers (``fixed``, for a student of another
            depth: layer k maps to round(k * S / T)); None = the student's.

    Returns ``None`` where no admissible student layer is left (that term is then dropped).
    """
    num_teacher, num_student = losses.shape
    values = losses.detach()
    if mode == "fixed":  # teacher layer k <-> student layer k, scaled by the depths
        depth = teacher_depth or num_student
        return [min(num_student, max(1, round(k * num_student / depth))) - 1
                for k in teacher_layers]
    allowed = torch.tensor(existing, dtype=torch.bool, device=values.device)
    inf = torch.tensor(float("inf"), device=values.device)
    if mode == "unconstrained":
        out: list[int | None] = []
        for row in values:
            row = torch.where(allowed, row, inf)
            out.append(int(row.argmin()) if allowed.any() else None)
        return out
    if mode != "dynamic":
        raise ValueError(f"unknown layer mapping mode {mode!r}")
    mapping: list[int | None] = [None] * num_teacher
    bound = num_student  # the next match must lie strictly below this student layer
    for i in reversed(range(num_teacher)):  # top-down
        candidates = allowed.clone()
        candidates[bound:] = False
        if not candidates.any():
            break
        j = int(torch.where(candidates, values[i], inf).argmin())
        mapping[i], bound = j, j
    return mapping


def layer_loss(losses: torch.Tensor, mapping: list[int | None]) -> torch.Tensor:
    """Sum of the matched entries of the loss matrix."""
    terms = [losses[i, j] for i, j in enumerate(mapping) if j is not None]
    return torch.stack(terms).sum() if terms else losses.sum() * 0.0


def identity_projection(d_student: int, d_teacher: int) -> nn.Linear:
    """The shared layer map W, initialised to the identity (zero bias)."""
    proj = nn.Linear(d_student, d_teacher)
    with torch.no_grad():
        proj.weight.copy_(torch.eye(d_teacher, d_student))
        proj.bias.zero_()
    return proj
