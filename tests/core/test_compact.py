from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import CASES, case_masks, random_batch, tiny

from cofi_sweep.core.compact import compact, compact_projection
from cofi_sweep.core.distill import identity_projection
from cofi_sweep.core.model import CofiBert


@pytest.mark.parametrize("family", ["tiny-bert", "tiny-roberta"])
@pytest.mark.parametrize("case", CASES)
def test_compact_equals_masked(family: str, case: str) -> None:
    model = tiny(family)
    masks = case_masks(model, case)
    small = compact(model, masks)
    ids, mask = random_batch(100)
    with torch.no_grad():
        masked = model(ids, mask, masks=masks, output_hidden_states=True)
        cut = small(ids, mask, output_hidden_states=True)
    assert torch.allclose(masked.logits, cut.logits, atol=1e-4)
    # hidden states for layer distillation agree too, through the sliced map W
    proj = identity_projection(64, 64)
    small_proj = compact_projection(proj, masks)
    for h_masked, h_cut in zip(masked.hidden_states, cut.hidden_states):
        assert torch.allclose(proj(h_masked), small_proj(h_cut), atol=1e-4)


def test_compacted_structure_and_identity_sublayers() -> None:
    model = tiny()
    masks = case_masks(model, "everything")
    small = compact(model, masks)
    s = small.structure()
    assert s["heads"][0] == 0 and s["heads"][1] == 0 and s["ffn"][2] == 0 and s["ffn"][3] == 0
    assert small.encoder.layer[0].attention is None and small.encoder.layer[3].output is None
    assert s["hidden"] == int(masks["hidden_z"].sum())


def test_compact_round_trip(tmp_path: Path) -> None:
    model = tiny("tiny-roberta")
    small = compact(model, case_masks(model, "everything")).eval()
    small.save_pretrained(tmp_path)
    again = CofiBert.from_pretrained(tmp_path)
    ids, mask = random_batch(100)
    with torch.no_grad():
        assert torch.equal(small(ids, mask).logits, again(ids, mask).logits)
    assert again.structure() == small.structure()


def test_a_recorded_structure_rebuilds_the_compact_models_tensor_shapes() -> None:
    """Benchmarks time models rebuilt from a results row's structure (random weights): the
    rebuilt model must have every tensor of the real compact model, at the same size."""
    torch.manual_seed(0)
    model = tiny("tiny-bert")
    small = compact(model, case_masks(model, "everything"))
    rebuilt = CofiBert(model.shape.with_structure(small.structure()))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in small.state_dict().items()}
    assert rebuilt.shape.kept_hidden_dims is None  # random weights: no mapping to the dense dims
