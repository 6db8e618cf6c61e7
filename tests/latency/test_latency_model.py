"""The latency model: FLOP counts by hand, interpolation on synthetic tables, calibration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from cofi_sweep.core.model import EncoderShape, count_flops
from cofi_sweep.latency.latency_model import ALIGN, LatencyTable, interp, latency_table


def bert_shape(hidden: int, layers: int, heads: int, ffn: int) -> EncoderShape:
    return EncoderShape(family="bert", vocab_size=30522, max_position_embeddings=512,
                        type_vocab_size=2, pad_token_id=0, hidden_size=hidden,
                        head_dim=hidden // heads, heads=[heads] * layers, ffn=[ffn] * layers,
                        num_labels=2, pooler_size=hidden)


def test_flops_of_dense_bert_base_and_minilm_match_a_hand_count() -> None:
    # per layer, multiply-adds at T tokens: Q, K, V, O projections 4·T·d², scores and
    # weighted values 2·T²·d, FFN up and down 2·T·d·F
    # BERT-base, T=128: 4·128·768² = 301,989,888; 2·128²·768 = 25,165,824;
    # 2·128·768·3072 = 603,979,776; per layer 931,135,488; 12 layers:
    assert count_flops(bert_shape(768, 12, 12, 3072), 128) == 11_173_625_856
    # MiniLM-L6 (384 hidden, 1536 FFN), T=64: 4·64·384² = 37,748,736; 2·64²·384 = 3,145,728;
    # 2·64·384·1536 = 75,497,472; per layer 116,391,936; 6 layers:
    assert count_flops(bert_shape(384, 6, 12, 1536), 64) == 698_351_616


def synthetic_table() -> LatencyTable:
    """Linear costs: MHA = d/100 · heads, FFN = d/100 · width/100, fixed = d/1000 (seconds)."""
    hidden, heads, widths = [100.0, 200.0], [1.0, 2.0, 4.0], [100.0, 200.0, 400.0]
    return LatencyTable(
        hidden=hidden, heads=heads, widths=widths,
        mha=[[d / 100 * h for h in heads] for d in hidden],
        ffn=[[d / 100 * f / 100 for f in widths] for d in hidden],
        fixed=[d / 1000 for d in hidden], protocol={})


def shape(hidden: int, heads: list[int], ffn: list[int]) -> EncoderShape:
    return dataclasses.replace(bert_shape(200, len(heads), 4, 400), hidden_size=hidden,
                               head_dim=50, heads=heads, ffn=ffn)


def test_predictions_interpolate_and_skip_removed_sublayers() -> None:
    table = synthetic_table()
    # at measured points: fixed 0.2 + MHA 2·4 + FFN 2·4 (d = 200)
    assert table.predict(shape(200, [4], [400])) == pytest.approx(0.2 + 8 + 8)
    # between points (3 heads, 300 units, d = 150: bilinear on a bilinear table is exact)
    assert table.predict(shape(150, [3], [300])) == pytest.approx(0.15 + 4.5 + 4.5)
    # removed sub-layers cost nothing; layers add up
    assert table.predict(shape(200, [4, 0], [0, 400])) == pytest.approx(0.2 + 8 + 8)
    assert table.predict(shape(200, [0], [0])) == pytest.approx(0.2)
    # speedup of a model with half the heads and units, all layers kept
    assert table.speedup(shape(200, [4], [400]), shape(200, [2], [200])) == pytest.approx(
        16.2 / 8.2)


def test_extrapolation_is_linear_and_sane() -> None:
    table = synthetic_table()
    # past the measured range on every axis: the last segment's slope continues
    assert table.predict(shape(300, [8], [800])) == pytest.approx(0.3 + 24 + 24)
    # below it (fewer units than measured): still positive, still monotone
    small = [table.predict(shape(100, [1], [w])) for w in (10, 50, 100)]
    assert all(p > 0 for p in small) and small == sorted(small)


def test_interp_is_differentiable_for_speedup_targets() -> None:
    xs, ys = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([10.0, 20.0, 30.0])
    x = torch.tensor([1.5, 3.0], requires_grad=True)
    y = interp(x, xs, ys)
    assert torch.allclose(y, torch.tensor([15.0, 25.0]))
    y.sum().backward()
    assert torch.allclose(x.grad, torch.tensor([10.0, 5.0]))  # the slope of each segment
    table = synthetic_table()
    heads = torch.tensor([3.0], requires_grad=True)
    alive = torch.tensor([0.5], requires_grad=True)
    cost = table.expected(torch.tensor(200.0), heads, torch.tensor([0.0]), alive, None)
    cost.backward()
    assert heads.grad.item() == pytest.approx(0.5 * 2) and alive.grad.item() == pytest.approx(6)


def test_calibration_measures_once_and_is_cached(tmp_path: Path) -> None:
    dense = bert_shape(64, 2, 4, 128)
    dense.vocab_size = 100
    table = latency_table(dense, batch_size=2, seq_len=8, cache_dir=tmp_path, repeats=2,
                          warmup=0)
    assert table.hidden[-1] == 64 and table.heads[-1] == 4 and table.widths[-1] == 128
    assert all(v > 0 for row in table.mha + table.ffn for v in row) and min(table.fixed) > 0
    assert len(list(tmp_path.glob("*.json"))) == 1
    again = latency_table(dense, batch_size=2, seq_len=8, cache_dir=tmp_path)
    assert again == table  # read back, not re-measured
    other = latency_table(dense, batch_size=4, seq_len=8, cache_dir=tmp_path, repeats=2,
                          warmup=0)
    assert other.protocol["batch_size"] == 4 and len(list(tmp_path.glob("*.json"))) == 2
    assert table.predict(dense) > table.predict(dataclasses.replace(dense, heads=[0, 1],
                                                                    ffn=[8, 0]))


def test_calibration_in_onnxruntime(tmp_path: Path) -> None:
    dense = bert_shape(32, 1, 2, 64)
    dense.vocab_size = 50
    table = latency_table(dense, batch_size=2, seq_len=8, runtime="onnxruntime",
                          cache_dir=tmp_path, repeats=1, warmup=0, hidden_points=2,
                          unit_points=2)
    assert table.protocol["runtime"] == "onnxruntime"
    assert all(v > 0 for row in table.mha + table.ffn for v in row) and min(table.fixed) > 0


def test_whole_model_fit_recovers_scale_and_per_sublayer_costs() -> None:
    from cofi_sweep.latency.latency_model import fit_whole_models

    table = synthetic_table()
    shapes = [shape(200, [4, 2], [400, 100]), shape(150, [1, 0], [300, 0]),
              shape(100, [2, 2], [0, 200]), shape(200, [0, 1], [100, 400]),
              shape(120, [1, 1], [0, 0])]
    truth = []
    for s in shapes:  # latency = fixed + 2 x blocks + 0.5 per live MHA + 0.3 per live FFN
        fixed = s.hidden_size / 1000
        mha, ffn = sum(h > 0 for h in s.heads), sum(f > 0 for f in s.ffn)
        truth.append((s, fixed + 2 * (table.predict(s) - fixed) + 0.5 * mha + 0.3 * ffn))
    fit_whole_models(table, truth)
    assert table.scale == pytest.approx(2.0)
    assert table.per_mha == pytest.approx(0.5) and table.per_ffn == pytest.approx(0.3)
    for s, seconds in truth:
        assert table.predict(s) == pytest.approx(seconds)
    # a constant the data says is negative is dropped, never used as a negative cost
    cheaper = [(s, seconds - 0.45 * sum(f > 0 for f in s.ffn) - 0.3 * sum(f > 0 for f in s.ffn))
               for s, seconds in truth]
    fit_whole_models(table, cheaper)
    assert table.per_ffn == 0.0 and table.per_mha >= 0 and table.scale > 0


def test_whole_model_fit_drops_a_pass_slowed_throughout() -> None:
    from cofi_sweep.latency.latency_model import fit_whole_models

    table = synthetic_table()
    shapes = [shape(200, [4, 2], [400, 100]), shape(150, [1, 0], [300, 0]),
              shape(100, [2, 2], [0, 200]), shape(200, [0, 1], [100, 400]),
              shape(120, [1, 1], [0, 0]), shape(180, [3, 1], [200, 200]),
              shape(160, [2, 4], [100, 300]), shape(140, [1, 2], [400, 0])]
    truth = [(s, s.hidden_size / 1000 + 2 * (table.predict(s) - s.hidden_size / 1000))
             for s in shapes]  # latency = fixed + 2 x blocks
    slowed = [(s, 5 * seconds if i == 4 else seconds) for i, (s, seconds) in enumerate(truth)]
    fit_whole_models(table, slowed)
    assert table.scale == pytest.approx(2.0)
    assert table.per_mha == pytest.approx(0, abs=1e-6)
    assert table.per_ffn == pytest.approx(0, abs=1e-6)
    assert len(table.fitted_on) == len(shapes)  # kept on record, slowed one included


def test_fitting_shapes_cover_the_high_sparsity_region_with_live_sublayers() -> None:
    from cofi_sweep.core.model import count_flops
    from cofi_sweep.latency.latency_model import _fitting_shapes

    shapes = _fitting_shapes(bert_shape(384, 6, 12, 1536))  # MiniLM-L6's
    work = [count_flops(s, 64) for s in shapes]  # matmul work: proportional to the weights
    sparsity = [1 - w / work[0] for w in work]
    assert len(shapes) == 16 and sum(s >= 0.8 for s in sparsity) >= 8
    high = [s for s, x in zip(shapes, sparsity) if x >= 0.9]
    assert high and all(sum(h > 0 for h in s.heads) + sum(f > 0 for f in s.ffn) >= 2
                        for s in high)  # small live sub-layers, as CoFi leaves them
    # measured where compact models are (cofi.shape_multiple's default): aligned widths
    assert all(s.hidden_size % ALIGN == 0 and all(f % ALIGN == 0 for f in s.ffn)
               for s in shapes)


def test_table_widths_are_aligned_like_rounded_compact_models() -> None:
    from cofi_sweep.latency.latency_model import _grid_points

    widths = _grid_points(1536, 24, 8, ALIGN)
    assert len(widths) >= 6 and all(w % ALIGN == 0 for w in widths), widths
    assert _grid_points(12, 1, 8) == sorted(set(_grid_points(12, 1, 8)))  # heads: exact
    assert 1 in _grid_points(12, 1, 8) and 12 in _grid_points(12, 1, 8)


def test_a_slowed_measurement_does_not_inflate_wider_blocks() -> None:
    # one FFN timing slowed 10x (hidden 16, width 8); timing noise only ever slows a pass
    table = LatencyTable(hidden=[8.0, 16.0], heads=[1.0, 2.0], widths=[8.0, 16.0],
                         mha=[[1.0, 2.0], [2.0, 4.0]], ffn=[[1.0, 2.0], [40.0, 4.0]],
                         fixed=[1.0, 1.0], protocol={})

    def ffn_cost(hidden: float, width: float) -> float:
        return float(table.expected(torch.tensor(hidden), torch.zeros(1),
                                    torch.tensor([width]))) - 1.0  # less the fixed part

    assert ffn_cost(16, 16) == pytest.approx(4.0)  # the wider block keeps its own time
    assert ffn_cost(16, 8) == pytest.approx(4.0)  # the spike is floored, not spread
    assert ffn_cost(8, 8) <= ffn_cost(8, 16) <= ffn_cost(16, 16)  # still monotone
