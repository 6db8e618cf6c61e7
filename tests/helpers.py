"""Small builders shared by the tests."""

from __future__ import annotations

import torch

from cofi_sweep.core import pretrained
from cofi_sweep.core.model import CofiBert


def tiny(name: str = "tiny-bert", num_labels: int = 3) -> CofiBert:
    return pretrained.load_model(name, num_labels).eval()


def random_batch(vocab: int, pad_id: int = 0, batch: int = 3, length: int = 11):
    """Random ids with padding on the first row (positions 7+)."""
    ids = torch.randint(5, vocab, (batch, length))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    ids[0, 7:] = pad_id
    return ids, mask


def all_on_masks(model: CofiBert) -> dict[str, torch.Tensor]:
    s = model.shape
    L, H, F, d = s.num_layers, s.heads[0], s.ffn[0], s.hidden_size
    return {"head_z": torch.ones(L, H), "head_layer_z": torch.ones(L),
            "intermediate_z": torch.ones(L, F), "mlp_z": torch.ones(L), "hidden_z": torch.ones(d)}
