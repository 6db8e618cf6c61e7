"""Hard-concrete (L0) gates of CoFi's five mask families (Louizos et al., 2018).

Each gate has a learnable ``log_alpha``. In training a gate is sampled once per optimizer step
(shared by the batch); for evaluation and compaction a deterministic binary mask is derived from
the probabilities that each gate is non-zero.

Families (user name -> mask name fed to the model, shape for L layers, H heads, F FFN units, d
hidden dims):

    head   -> head_z          (L, H)   attention heads
    mha    -> head_layer_z    (L,)     whole MHA sub-layers
    int    -> intermediate_z  (L, F)   FFN intermediate units
    ffn    -> mlp_z           (L,)     whole FFN sub-layers
    hidden -> hidden_z        (d,)     residual-stream dims, shared by all layers
"""

from __future__ import annotations

import math

import torch
from torch import nn

BETA = 2.0 / 3.0  # temperature
LIMIT_L, LIMIT_R = -0.1, 1.1  # stretch interval
EPS = 1e-6  # keeps the uniform noise off 0 and 1
LOG_ALPHA_MIN, LOG_ALPHA_MAX = math.log(0.01), math.log(100.0)  # clamp after every step
_SHIFT = BETA * math.log(-LIMIT_L / LIMIT_R)  # P(z > 0) = sigmoid(log_alpha - _SHIFT)

MASK_NAMES = {"head": "head_z", "mha": "head_layer_z", "int": "intermediate_z",
              "ffn": "mlp_z", "hidden": "hidden_z"}


def prob_nonzero(log_alpha: torch.Tensor) -> torch.Tensor:
    """P(z > 0) of a hard-concrete gate: 0.8318 at log_alpha = 0, 0.99798 at ln 100."""
    return torch.sigmoid(log_alpha - _SHIFT)


def sample_hard_concrete(log_alpha: torch.Tensor) -> torch.Tensor:
    """A reparameterised sample in [0, 1]; exact 0s and 1s occur with positive probability."""
    u = torch.empty_like(log_alpha).uniform_(EPS, 1 - EPS)
    s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + log_alpha) / BETA)
    return (s * (LIMIT_R - LIMIT_L) + LIMIT_L).clamp(0.0, 1.0)


def deterministic_mask(log_alpha: torch.Tensor) -> torch.Tensor:
    """Binary mask per group -- the last dim is the group: zero the round(n - sum P(z>0)) units
    with the lowest log_alpha. Per-layer gates (z_MHA, z_FFN) are groups of one: pass them as
    (L, 1), and a gate is then off iff P(z > 0) < 0.5.

    ``torch.round`` rounds halves to even, as Python's ``round`` in the reference code does.
    Unlike the reference, kept units are exactly 1 (not sigmoid(1.2 log_alpha)), so the
    compacted model equals the masked one.
    """
    groups = log_alpha.detach().reshape(-1, log_alpha.shape[-1])  # (G, n)
    n = groups.shape[-1]
    num_zeros = torch.round(n - prob_nonzero(groups).sum(-1)).long()  # (G,)
    order = torch.argsort(groups, dim=-1, stable=True)  # lowest log_alpha first
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(n, device=groups.device).expand_as(order))
    mask = (rank >= num_zeros[:, None]).to(log_alpha.dtype)
    return mask.reshape(log_alpha.shape)


def init_log_alpha(droprate: float) -> float:
    """log_alpha whose gate is off with probability ``droprate`` (0 -> 10, as the reference)."""
    droprate = min(max(droprate, 1 / (1 + math.exp(10))), 1 - 1 / (1 + math.exp(10)))
    return math.log(1 - droprate) - math.log(droprate)


class Gates(nn.Module):
    """The log_alphas of the enabled mask families for one encoder.

    Args:
        num_layers, num_heads, ffn_size, hidden_size: the dense model's dimensions.
        families: enabled families, a subset of ``MASK_NAMES``; the others are always on.
        droprate_init_int: initial drop rate of FFN units (reference: 0.5, i.e. log_alpha 0).
        droprate_init: initial drop rate of every other family (reference: ~0, log_alpha 10).
    """

    def __init__(self, *, num_layers: int, num_heads: int, ffn_size: int, hidden_size: int,
                 families: list[str] | tuple[str, ...], droprate_init_int: float = 0.5,
                 droprate_init: float = 0.0) -> None:
        super().__init__()
        shapes = {"head": (num_layers, num_heads), "mha": (num_layers,),
                  "int": (num_layers, ffn_size), "ffn": (num_layers,), "hidden": (hidden_size,)}
        self.shapes = shapes
        self.families = [f for f in MASK_NAMES if f in families]
        self.log_alpha = nn.ParameterDict()
        for family in self.families:
            mean = init_log_alpha(droprate_init_int if family == "int" else droprate_init)
            self.log_alpha[family] = nn.Parameter(torch.randn(shapes[family]) * 0.01 + mean)

    def sample(self) -> dict[str, torch.Tensor]:
        """One training sample of every enabled family, keyed by mask name."""
        return {MASK_NAMES[f]: sample_hard_concrete(a) for f, a in self.log_alpha.items()}

    def deterministic(self) -> dict[str, torch.Tensor]:
        """Binary evaluation/compaction masks of every enabled family, keyed by mask name."""
        out = {}
        for family, a in self.log_alpha.items():
            if family in ("mha", "ffn"):  # one gate per layer: L groups of one
                out[MASK_NAMES[family]] = deterministic_mask(a[:, None])[:, 0]
            else:  # per layer for heads and FFN units; one group of d for hidden dims
                out[MASK_NAMES[family]] = deterministic_mask(a)
        return out

    def probs(self) -> dict[str, torch.Tensor]:
        """P(z > 0) per unit for all five families (1 for disabled ones), keyed by family."""
        ref = next(iter(self.log_alpha.values()), torch.zeros(()))
        return {f: prob_nonzero(self.log_alpha[f]) if f in self.log_alpha
                else torch.ones(self.shapes[f], device=ref.device) for f in MASK_NAMES}

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keeps every log_alpha in [ln 0.01, ln 100] (called after each optimizer step)."""
        for a in self.log_alpha.values():
            a.clamp_(LOG_ALPHA_MIN, LOG_ALPHA_MAX)


def masks_as_probs(masks: dict[str, torch.Tensor], gates: Gates) -> dict[str, torch.Tensor]:
    """Binary masks (by mask name) as a per-family probability dict for the size formulas."""
    by_name = {v: k for k, v in MASK_NAMES.items()}
    probs = gates.probs()
    for name, mask in masks.items():
        probs[by_name[name]] = mask.float()
    return probs
