"""Compaction: physically remove what binary masks switched off.

Heads with z_head * z_MHA = 0, FFN units with z_int * z_FFN = 0, hidden dims with z_hidn = 0, and
whole sub-layers whose group is empty are sliced out of the weights; the result is a smaller
:class:`~cofi_sweep.core.model.CofiBert` whose logits equal the masked model's (same binary masks).
The sub-layer LayerNorms of removed sub-layers are dropped too (CoFi's reference leaves them).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from cofi_sweep.core.model import CofiBert, EncoderShape


def kept_indices(masks: dict[str, torch.Tensor], shape: EncoderShape
                 ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """(hidden dims, per-layer heads, per-layer FFN units) that survive the binary ``masks``."""
    L = shape.num_layers
    hidden_z = masks.get("hidden_z")
    hidden = (torch.arange(shape.hidden_size) if hidden_z is None
              else torch.nonzero(hidden_z != 0).flatten().cpu())
    heads, units = [], []
    for i in range(L):
        for out, unit_key, layer_key, n in ((heads, "head_z", "head_layer_z", shape.heads[i]),
                                            (units, "intermediate_z", "mlp_z", shape.ffn[i])):
            keep = torch.ones(n, dtype=torch.bool)
            if unit_key in masks:
                keep &= (masks[unit_key][i] != 0).cpu()
            if layer_key in masks and not bool(masks[layer_key][i] != 0):
                keep[:] = False
            out.append(torch.nonzero(keep).flatten())
    return hidden, heads, units


def _copy_linear(dst: nn.Linear, src: nn.Linear, rows: torch.Tensor | None,
                 cols: torch.Tensor | None) -> None:
    w = src.weight.detach()
    if rows is not None:
        w = w[rows]
    if cols is not None:
        w = w[:, cols]
    dst.weight.data.copy_(w)
    b = src.bias.detach()
    dst.bias.data.copy_(b[rows] if rows is not None else b)


def _copy_norm(dst: nn.LayerNorm, src: nn.LayerNorm, dims: torch.Tensor) -> None:
    dst.weight.data.copy_(src.weight.detach()[dims])
    dst.bias.data.copy_(src.bias.detach()[dims])


@torch.no_grad()
def compact(model: CofiBert, masks: dict[str, torch.Tensor]) -> CofiBert:
    """A new, smaller model equal to ``model`` evaluated with the binary ``masks``.

    Args:
        model: a dense (or already compact) model; it is not modified.
        masks: binary masks by mask name (see :mod:`cofi_sweep.core.gates`); absent = all on.
    """
    shape = model.shape
    device = next(model.parameters()).device
    hidden, heads, units = kept_indices(masks, shape)
    hidden = hidden.to(device)
    d_h = shape.head_dim
    dense_dims = shape.kept_hidden_dims or list(range(shape.hidden_size))
    new_shape = dataclasses.replace(
        shape, hidden_size=len(hidden), heads=[len(h) for h in heads],
        ffn=[len(u) for u in units], kept_hidden_dims=[dense_dims[i] for i in hidden.tolist()])
    new = CofiBert(new_shape).to(device)

    emb, new_emb = model.embeddings, new.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        getattr(new_emb, name).weight.data.copy_(getattr(emb, name).weight.detach()[:, hidden])
    _copy_norm(new_emb.LayerNorm, emb.LayerNorm, hidden)

    for i, (old, fresh) in enumerate(zip(model.encoder.layer, new.encoder.layer)):
        if fresh.attention is not None:
            # rows of Q/K/V and columns of O for the kept heads' d_h-sized slices
            inner = (heads[i][:, None] * d_h + torch.arange(d_h)).flatten().to(device)
            for name in ("query", "key", "value"):
                _copy_linear(getattr(fresh.attention.self, name),
                             getattr(old.attention.self, name), inner, hidden)
            _copy_linear(fresh.attention.output.dense, old.attention.output.dense, hidden, inner)
            _copy_norm(fresh.attention.output.LayerNorm, old.attention.output.LayerNorm, hidden)
        if fresh.intermediate is not None:
            keep = units[i].to(device)
            _copy_linear(fresh.intermediate.dense, old.intermediate.dense, keep, hidden)
            _copy_linear(fresh.output.dense, old.output.dense, hidden, keep)
            _copy_norm(fresh.output.LayerNorm, old.output.LayerNorm, hidden)

    _copy_linear(new.pooler, model.pooler, None, hidden)
    new.classifier.load_state_dict(model.classifier.state_dict())
    return new.train(model.training)


@torch.no_grad()
def compact_projection(projection: nn.Linear, masks: dict[str, torch.Tensor]) -> nn.Linear:
    """The layer-distillation map W with its input dims sliced to the kept hidden dims."""
    hidden_z = masks.get("hidden_z")
    if hidden_z is None:
        return projection
    keep = torch.nonzero(hidden_z != 0).flatten()
    new = nn.Linear(len(keep), projection.out_features).to(projection.weight.device)
    _copy_linear(new, projection, None, keep)
    return new
