"""Model size and sparsity, and the Lagrangian that drives expected sparsity to a target.

One convention everywhere: the *prunable* parameters are the weights and biases of the Linear
layers inside the encoder blocks (no embeddings, LayerNorms, pooler or classifier) -- 85,017,600
for BERT-base, 10,637,568 for MiniLM-L6 -- and sparsity is 1 - prunable(compact) / prunable(dense),
counted exactly, biases included.

The expected size is the exact expectation of that count under independent gates. Per layer, with
P(.) = P(z > 0), h = sum P(z_hidn), n = P(z_MHA) * sum P(z_head), f = P(z_FFN) * sum P(z_int):

    MHA:  4 d_h n h   (Q, K, V, O weights)  + 3 d_h n (Q, K, V biases) + h P(MHA exists)
    FFN:  2 f h       (up, down weights)    + f       (up bias)        + h P(FFN exists)

with P(MHA exists) = P(z_MHA) (1 - prod(1 - P(z_head))), likewise for the FFN. The leading terms
are CoFi's factorised form h * [4 d_h * sum_l n_l + 2 * sum_l f_l]; the bias terms make the
formula exact, so at binary masks expected == deterministic == compacted counts, and all-on gives
sparsity 0. Every term is monotone in every log_alpha.
"""

from __future__ import annotations

import torch
from torch import nn


def expected_size(probs: dict[str, torch.Tensor], head_dim: int) -> torch.Tensor:
    """Expected prunable parameter count (differentiable in the gate probabilities).

    Args:
        probs: per family (head (L,H), mha (L,), int (L,F), ffn (L,), hidden (d,)) P(z > 0);
            binary masks give the exact count of the model they describe.
        head_dim: size of one attention head.
    """
    h = probs["hidden"].sum()
    heads = probs["mha"] * probs["head"].sum(-1)  # (L,) expected kept heads
    units = probs["ffn"] * probs["int"].sum(-1)  # (L,) expected kept FFN units
    mha_exists = probs["mha"] * (1 - torch.prod(1 - probs["head"], dim=-1))
    ffn_exists = probs["ffn"] * (1 - torch.prod(1 - probs["int"], dim=-1))
    mha = 4 * head_dim * heads * h + 3 * head_dim * heads + h * mha_exists
    ffn = 2 * units * h + units + h * ffn_exists
    return (mha + ffn).sum()


def dense_size(*, num_layers: int, hidden_size: int, num_heads: int, head_dim: int,
               ffn_size: int) -> int:
    """Prunable parameter count of the dense model (85,017,600 for BERT-base)."""
    inner = num_heads * head_dim
    mha = 3 * (hidden_size * inner + inner) + inner * hidden_size + hidden_size
    ffn = 2 * hidden_size * ffn_size + ffn_size + hidden_size
    return num_layers * (mha + ffn)


def target_at(step: int, *, target: float, warmup_steps: int, start: float = 0.0) -> float:
    """Target sparsity ``step`` optimizer steps into pruning: ``start`` (0, or a ladder's
    previous rung) -> target linearly, then held."""
    if warmup_steps <= 0:
        return target
    return start + (target - start) * min(1.0, step / warmup_steps)


class Lagrangian(nn.Module):
    """L_c = lambda_1 (s - t) + lambda_2 (s - t)^2.

    The lambdas start at 0 and are *maximised* (their optimizer has ``maximize=True``), while
    the model and log_alphas minimise the same total loss: a min-max game whose equilibrium has
    the expected sparsity s at the target t. dL/dlambda_1 = s - t, dL/dlambda_2 = (s - t)^2 >= 0,
    so lambda_2 never decreases.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lambda_1 = nn.Parameter(torch.zeros(()))
        self.lambda_2 = nn.Parameter(torch.zeros(()))

    def forward(self, expected_sparsity: torch.Tensor, target: float) -> torch.Tensor:
        gap = expected_sparsity - target
        return self.lambda_1 * gap + self.lambda_2 * gap * gap
