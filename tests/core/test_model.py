from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import all_on_masks, random_batch, tiny
from transformers import AutoModelForSequenceClassification, BertConfig

from cofi_sweep.core import pretrained
from cofi_sweep.core.model import CofiBert, EncoderShape, dropout, load_model


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-roberta", "minilm"])
def test_all_gates_on_equals_hf(name: str) -> None:
    """With every gate at 1, the masked encoder's logits are HF's (eval mode) to 1e-5."""
    hf = AutoModelForSequenceClassification.from_pretrained(
        pretrained.resolve(name), num_labels=3, ignore_mismatched_sizes=True).eval()
    model = CofiBert.from_hf_model(hf).eval()
    assert type(hf).__name__ == ("RobertaForSequenceClassification" if "roberta" in name
                                 else "BertForSequenceClassification")
    ids, mask = random_batch(100, hf.config.pad_token_id)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        assert torch.allclose(model(ids, mask).logits, expected, atol=1e-5)
        masked = model(ids, mask, masks=all_on_masks(model)).logits
        assert torch.allclose(masked, expected, atol=1e-5)
        # an unpadded batch runs without an attention mask: still HF's logits
        full = torch.ones_like(mask)
        expected = hf(input_ids=ids, attention_mask=full).logits
        assert torch.allclose(model(ids, full).logits, expected, atol=1e-5)
        assert torch.allclose(model(ids).logits, expected, atol=1e-5)


def test_prunable_counts() -> None:
    bert_base = CofiBert(EncoderShape.from_hf_config(BertConfig(), 2))  # from config, offline
    assert bert_base.prunable_parameters() == 85_017_600
    assert load_model("minilm", 2).prunable_parameters() == 10_637_568


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = load_model("tiny-roberta", 2).eval()
    model.save_pretrained(tmp_path)
    again = CofiBert.from_pretrained(tmp_path)
    ids, mask = random_batch(100)
    with torch.no_grad():
        assert torch.equal(model(ids, mask).logits, again(ids, mask).logits)


def test_hidden_states_are_block_outputs() -> None:
    model = load_model("tiny-bert", 2).eval()
    ids, mask = random_batch(100)
    out = model(ids, mask, output_hidden_states=True)
    assert len(out.hidden_states) == model.shape.num_layers + 1
    assert out.hidden_states[-1].shape == (3, 11, 64)


def test_inference_fuses_qkv_and_follows_weight_updates() -> None:
    model = tiny().eval()
    ids, mask = random_batch(100)
    separate = model(ids, mask).logits.detach()  # grad enabled: the separate projections
    with torch.no_grad():
        fused = model(ids, mask).logits
        assert torch.allclose(fused, separate, atol=1e-5)
        attention = model.encoder.layer[0].attention
        attention.self.key.weight.mul_(3.0)  # an in-place update, as an optimizer makes
        attention.qkv(torch.zeros(1, 1, 64))  # rebuilds the fused weights
        weight = attention._fused[1]
        assert torch.equal(weight[64:128], attention.self.key.weight)  # rebuilt
        changed = model(ids, mask).logits
    assert torch.allclose(changed, model(ids, mask).logits.detach(), atol=1e-5)


@pytest.mark.parametrize("pruned", [0, 1, 17, 60])
def test_masked_layer_norm_normalizes_over_the_kept_dims_only(pruned: int) -> None:
    """The fused form (pruned dims filled with the kept mean, hidden_z folded into the affine
    part) equals LayerNorm over the kept dims written out, times hidden_z, in value and in
    gradient, for any values at the pruned dims."""
    from cofi_sweep.core.model import layer_norm

    torch.manual_seed(pruned)
    norm = torch.nn.LayerNorm(64, eps=1e-12)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    hidden_z = torch.rand(64) * 0.9 + 0.1  # sampled gates: fractional, a few exactly 0
    hidden_z[torch.randperm(64)[:pruned]] = 0.0
    kept = hidden_z != 0
    x = (torch.randn(3, 5, 64) * 2 + 0.5).requires_grad_()
    out = layer_norm(x, norm, hidden_z)
    xk = x[..., kept]
    ref = torch.nn.functional.layer_norm(xk, (int(kept.sum()),), norm.weight[kept],
                                         norm.bias[kept], norm.eps) * hidden_z[kept]
    assert torch.allclose(out[..., kept], ref, atol=1e-5)
    assert not out[..., ~kept].any()
    grad = torch.randn_like(ref)
    (got,) = torch.autograd.grad((out[..., kept] * grad).sum(), x)
    (want,) = torch.autograd.grad((ref * grad).sum(), x)
    assert torch.allclose(got, want, atol=1e-4)
    assert not got[..., ~kept].any()  # pruned dims are not read


def test_training_attention_and_dropout_match_sdpa_and_keep_rate() -> None:
    """While training on the CPU, attention is written out (faster than SDPA there): without
    dropout it equals SDPA, padding included; dropout zeroes a p share and rescales the rest."""
    model = tiny()
    for module in (model.embeddings, *[m for layer in model.encoder.layer
                                       for m in (layer.attention.output, layer.output)]):
        module.dropout_p = 0.0
    model.shape.hidden_dropout = 0.0
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.attention.self.dropout_p = 0.0
            layer.attention.self.query.weight.mul_(30.0)  # sharp attention: scale and mask matter
    ids, mask = random_batch(100)
    evaluated = model.eval()(ids, mask).logits  # SDPA
    trained = model.train()(ids, mask).logits  # written out
    assert torch.allclose(trained, evaluated, atol=1e-5)
    torch.manual_seed(0)
    x = torch.ones(200_000)
    kept = dropout(x, 0.1, True)
    assert abs(float((kept == 0).float().mean()) - 0.1) < 0.005
    assert torch.allclose(kept[kept != 0], torch.full((1,), 1 / 0.9))
    assert torch.equal(dropout(x, 0.1, False), x)


def test_shape_from_pretrained_reads_the_config_alone() -> None:
    shape = EncoderShape.from_pretrained("minilm", 2)  # the bundled all-MiniLM-L6-v2
    assert (shape.hidden_size, shape.heads, shape.ffn, shape.num_labels) == (
        384, [12] * 6, [1536] * 6, 2)
