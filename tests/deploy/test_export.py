"""Exports load without this project and reproduce the compact model's logits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import all_on_masks, case_masks, random_batch, tiny

from cofi_sweep.core.compact import compact
from cofi_sweep.core.model import CofiBert
from cofi_sweep.core.pretrained import build_tiny_model
from cofi_sweep.deploy.export import export_hf, export_onnx, is_uniform
from cofi_sweep.sweep.exports import export_frontier, main

# Run in a fresh interpreter where importing cofi_sweep fails: only transformers loads it.
RELOAD = """
import json, sys
sys.modules['cofi_sweep'] = None
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
out, trust = sys.argv[1], sys.argv[2] == '1'
model = AutoModelForSequenceClassification.from_pretrained(out, trust_remote_code=trust).eval()
tokenizer = AutoTokenizer.from_pretrained(out)
batch = tokenizer(['a short one', 'and a somewhat longer second sentence here'],
                  padding=True, return_tensors='pt')
with torch.no_grad():
    logits = model(**batch).logits
print('RESULT ' + json.dumps({'class': type(model).__name__, 'logits': logits.tolist(),
                  'ids': batch['input_ids'].tolist(), 'mask': batch['attention_mask'].tolist()}))
"""


def saved_compact(tmp_path: Path, family: str, masks_case: str | None) -> Path:
    model = tiny(family)
    masks = case_masks(model, masks_case) if masks_case else all_on_masks(model)
    if masks_case == "layer_subset":  # layers 0 and 2 gone entirely, 1 and 3 whole
        masks = all_on_masks(model)
        masks["head_layer_z"][[0, 2]], masks["mlp_z"][[0, 2]] = 0, 0
    small = compact(model, masks).eval()
    folder = tmp_path / "compact"
    small.save_pretrained(folder)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(build_tiny_model(family)).save_pretrained(folder)
    return folder


def reload_elsewhere(out: Path, trust: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", RELOAD, str(out), "1" if trust else "0"],
                          capture_output=True, text=True, cwd=out, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    # (AutoTokenizer asks whether to trust the remote code of the config it peeks at; with no
    # answer it reads the config without it, which is all a tokenizer needs)
    return json.loads(done.stdout.rpartition("RESULT ")[2])


@pytest.mark.parametrize("family", ["tiny-bert", "tiny-roberta"])
def test_heterogeneous_hf_export_loads_with_remote_code_alone(tmp_path: Path,
                                                             family: str) -> None:
    folder = saved_compact(tmp_path, family, "everything")  # removed MHA/FFN, fewer dims
    model = CofiBert.from_pretrained(folder)
    assert not is_uniform(model.shape) and 0 in model.shape.heads and 0 in model.shape.ffn
    report = export_hf(folder, tmp_path / "hf")
    assert report["remote_code"] and report["max_abs_logit_diff"] <= 1e-5
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["heads"] == model.shape.heads and config["ffn"] == model.shape.ffn
    assert config["hidden_size"] == model.shape.hidden_size < 64
    assert config["removed_mha_layers"] and config["removed_ffn_layers"]
    got = reload_elsewhere(tmp_path / "hf", trust=True)
    assert got["class"] == "CofiBertForSequenceClassification"
    with torch.no_grad():
        want = model(torch.tensor(got["ids"]), torch.tensor(got["mask"])).logits
    assert torch.allclose(torch.tensor(got["logits"]), want, atol=1e-5)


@pytest.mark.parametrize("family,layers", [("tiny-bert", 4), ("tiny-roberta", 4),
                                           ("tiny-bert", 2), ("tiny-roberta", 2)])
def test_uniform_hf_export_is_a_stock_model(tmp_path: Path, family: str, layers: int) -> None:
    # every unit kept, or whole layers removed (a layer-subset student): a shallower stock model
    folder = saved_compact(tmp_path, family, None if layers == 4 else "layer_subset")
    assert is_uniform(CofiBert.from_pretrained(folder).shape)
    report = export_hf(folder, tmp_path / "hf")
    assert not report["remote_code"]
    assert not (tmp_path / "hf" / "modeling_cofi_bert.py").exists()
    got = reload_elsewhere(tmp_path / "hf", trust=False)
    stock = "BertForSequenceClassification" if family == "tiny-bert" else \
        "RobertaForSequenceClassification"
    assert got["class"] == stock
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["num_hidden_layers"] == layers
    model = CofiBert.from_pretrained(folder)
    with torch.no_grad():
        want = model(torch.tensor(got["ids"]), torch.tensor(got["mask"])).logits
    assert torch.allclose(torch.tensor(got["logits"]), want, atol=1e-5)


def test_onnx_export_matches_pytorch_at_any_shape(tmp_path: Path) -> None:
    folder = saved_compact(tmp_path, "tiny-bert", "everything")
    report = export_onnx(folder, tmp_path / "onnx", batch_size=2, seq_len=16, repeats=2)
    assert report["max_abs_logit_diff"] <= 1e-4
    assert report["latency"]["onnxruntime"]["median"] > 0
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    model = CofiBert.from_pretrained(folder)
    ids, mask = random_batch(100, batch=4, length=23)  # a shape the export never saw
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                             "token_type_ids": torch.zeros_like(ids).numpy()})[0]
    with torch.no_grad():
        want = model(ids, mask).logits.numpy()
    assert abs(got - want).max() <= 1e-4
    assert json.loads((tmp_path / "onnx" / "export_report.json").read_text())["format"] == "onnx"


def test_onnx_graph_masks_padding_even_when_traced_without_it(tmp_path: Path,
                                                               monkeypatch) -> None:
    """An unpadded batch skips the attention mask in PyTorch; a trace must not bake that in."""
    import onnxruntime as ort

    from cofi_sweep.latency import onnx

    def unpadded(shape, batch: int = 2, seq: int = 16) -> dict[str, torch.Tensor]:
        ids = torch.randint(5, shape.vocab_size, (batch, seq))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "token_type_ids": torch.zeros_like(ids)}

    monkeypatch.setattr(onnx, "sample_inputs", unpadded)  # traced on an all-ones mask
    model = CofiBert.from_pretrained(saved_compact(tmp_path, "tiny-bert", "everything")).eval()
    onnx.to_onnx(model, tmp_path / "m.onnx")
    ids, mask = random_batch(100, batch=3, length=11)  # row 0 padded
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {
        "input_ids": ids.numpy(), "attention_mask": mask.numpy(),
        "token_type_ids": torch.zeros_like(ids).numpy()})[0]
    with torch.no_grad():
        want = model(ids, mask).logits.numpy()
    assert abs(got - want).max() <= 1e-4


def test_cli_explains_a_folder_that_is_not_a_model(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path), "--format", "hf"]) == 2
    assert "pareto.csv" in capsys.readouterr().err


def test_frontier_points_at_one_rounded_speedup_export_to_two_folders(tmp_path: Path) -> None:
    """Two frontier models at 4.421x and 4.424x once shared the folder ``cofi_full_4_42x``: the
    second overwrote the first, and the summary listed both at that path."""
    import pandas as pd

    torch.manual_seed(0)
    models = [saved_compact(tmp_path / n, "tiny-bert", case) for n, case in
              (("a", "removed_mha"), ("b", "removed_ffn"))]
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    pd.DataFrame({"frontier": ["cofi:full"] * 2, "speedup": [4.421, 4.424],
                  "score": [0.85, 0.83], "trial_id": ["aaaa1111", "bbbb2222"],
                  "compact_dir": [str(m) for m in models]}).to_csv(experiment / "pareto.csv")
    folders = [Path(d["out"]) for d in export_frontier(experiment)]
    assert [f.name for f in folders] == ["cofi_full_4_42x", "cofi_full_4_42x_bbbb2222"]
    for folder, model in zip(folders, models):  # each holds its own model
        config = json.loads((folder / "config.json").read_text())
        shape = CofiBert.from_pretrained(model).shape
        assert (config["heads"], config["ffn"]) == (shape.heads, shape.ffn)
