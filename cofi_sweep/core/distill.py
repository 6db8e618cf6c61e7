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


def real_tokens(states: list[torch.Tensor], token_mask: torch.Tensor) -> list[torch.Tensor]:
    """Each (B, T, d) state's non-padding tokens, as (n, d): only these are projected and
    compared (padding is often half of a batch)."""
    real = token_mask.bool()
    if bool(real.all()):  # no padding: a reshape, not a gather
        return [h.reshape(-1, h.shape[-1]) for h in states]
    return [h[real] for h in states]


def layer_loss_matrix(projected: list[torch.Tensor], targets: list[torch.Tensor]
                      ) -> torch.Tensor:
    """MSE(W h_s^j, h_t^i) for every pair, as a (len(targets), len(projected)) matrix, without
    gradient: it only chooses the mapping (``layer_loss`` differentiates the chosen pairs).

    Args:
        projected: the student's projected block outputs W h_s^j, each (n, d_t) (real tokens).
        targets: the chosen teacher block outputs h_t^i, each (n, d_t).

    ||p - t||^2 = ||p||^2 + ||t||^2 - 2 p.t, every term a dot product of flattened states:
    a pruning step computes this for 4 x L pairs, and the squared differences written out (or
    the states stacked into one matrix) allocate tens of MB per step, which costs more than
    the arithmetic.
    """
    with torch.no_grad():
        flat_p = [h.reshape(-1) for h in projected]
        p_sq = torch.stack([p @ p for p in flat_p])  # (S,)
        rows = []
        for t in targets:
            t = t.reshape(-1)
            rows.append((t @ t) + p_sq - 2 * torch.stack([p @ t for p in flat_p]))
        return torch.stack(rows).clamp(min=0) / flat_p[0].numel()


def layer_loss(projected: list[torch.Tensor], targets: list[torch.Tensor],
               mapping: list[int | None]) -> torch.Tensor:
    """Sum over teacher layers i of MSE(W h_s^mapping[i], h_t^i); unmatched layers drop out."""
    terms = [F.mse_loss(projected[j], targets[i]) for i, j in enumerate(mapping)
             if j is not None]
    return torch.stack(terms).sum() if terms else projected[0].sum() * 0.0


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


def identity_projection(d_student: int, d_teacher: int) -> nn.Linear:
    """The shared layer map W, initialised to the identity (zero bias)."""
    proj = nn.Linear(d_student, d_teacher)
    with torch.no_grad():
        proj.weight.copy_(torch.eye(d_teacher, d_student))
        proj.bias.zero_()
    return proj
