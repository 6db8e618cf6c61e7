"""Export a compact model so that it loads without this project: Hugging Face or ONNX.

    python -m cofi_sweep.export <compact dir> --format hf --out exported/
    python -m cofi_sweep.export <compact dir> --format onnx --out exported/
    python -m cofi_sweep.export runs/sweeps/quickstart                  # lists its frontier
    python -m cofi_sweep.export runs/sweeps/quickstart --trial 1a2b3c4d --format hf --out x/

``hf``: ``model.safetensors``, ``config.json``, the tokenizer and -- unless the structure is
uniform -- ``modeling_cofi_bert.py`` (:mod:`cofi_sweep.core.modeling_cofi_bert`), so that
``AutoModelForSequenceClassification.from_pretrained(out, trust_remote_code=True)`` and
``AutoTokenizer.from_pretrained(out)`` load it anywhere. A uniform structure (the same heads and
FFN width in every layer that is left, all heads of the hidden width, full hidden width) is
written as a plain ``BertForSequenceClassification`` / ``RobertaForSequenceClassification``: no
remote code. Layers whose MHA and FFN are both removed are the identity and are left out, so a
layer-subset student (or a CoFi model that removed whole layers) is a shallower stock model.
The export reloads what it wrote and checks its logits against the compact model's.

``onnx``: ``model.onnx`` with dynamic batch and sequence axes (inputs ``input_ids``,
``attention_mask``, ``token_type_ids``; output ``logits``), the tokenizer, and
``export_report.json``: the class names (``labels``: logit i is ``labels[i]``), onnxruntime's
largest logit difference from PyTorch (must be ≤ 1e-4) and both latencies under the
experiment's protocol.

Both carry the task's class names: ``id2label`` in the ``hf`` export's config, so
``pipeline("text-classification", model=out)`` answers with them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from cofi_sweep.core import modeling_cofi_bert
from cofi_sweep.core.errors import CofiSweepError
from cofi_sweep.core.model import CofiBert, EncoderShape
from cofi_sweep.latency.onnx import ONNX_INPUTS, onnx_runner, onnx_session, sample_inputs, to_onnx
from cofi_sweep.latency.timing import available_cpus, time_models

MODELING_FILE = Path(modeling_cofi_bert.__file__)  # shipped as is: it imports no cofi_sweep
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "merges.txt", "special_tokens_map.json")
ONNX_TOLERANCE = 1e-4
HF_TOLERANCE = 1e-5


def kept_layers(shape: EncoderShape) -> list[int]:
    """The layers with anything left: one whose MHA and FFN are both removed returns its input."""
    return [i for i, (h, f) in enumerate(zip(shape.heads, shape.ffn)) if h or f]


def is_uniform(shape: EncoderShape) -> bool:
    """True when stock BERT/RoBERTa can hold the structure (see the module docstring)."""
    kept = kept_layers(shape)
    heads, ffn = {shape.heads[i] for i in kept}, {shape.ffn[i] for i in kept}
    return (bool(kept) and len(heads) == 1 and len(ffn) == 1 and min(ffn) > 0
            and min(heads) * shape.head_dim == shape.hidden_size
            and shape.pooler_size == shape.hidden_size)


def _hf_names(state: dict[str, torch.Tensor], shape: EncoderShape) -> dict[str, torch.Tensor]:
    """CofiBert's weight names -> stock ``*ForSequenceClassification`` names (the inverse of
    :func:`cofi_sweep.core.model.hf_state_dict_to_cofi`), the kept layers numbered 0, 1, …"""
    family, out = shape.family, {}
    renumber = {f"encoder.layer.{i}.": f"encoder.layer.{j}." for j, i in
                enumerate(kept_layers(shape))}
    for key, value in state.items():
        if key.startswith("encoder.layer."):
            old = ".".join(key.split(".")[:3]) + "."
            key = renumber[old] + key[len(old):]
        if key.startswith(("embeddings.", "encoder.")):
            key = f"{family}.{key}"
        elif key.startswith("pooler."):
            key = ("bert.pooler.dense." if family == "bert" else "classifier.dense.") + \
                key.split(".", 1)[1]
        elif key.startswith("classifier.") and family == "roberta":
            key = "classifier.out_proj." + key.split(".", 1)[1]
        out[key] = value
    return out


def stock_model(model: CofiBert) -> Any:
    """A uniform compact model as a transformers ``Bert``/``RobertaForSequenceClassification``."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    s = model.shape
    kept = kept_layers(s)
    config_cls, model_cls = ((BertConfig, BertForSequenceClassification) if s.family == "bert"
                             else (RobertaConfig, RobertaForSequenceClassification))
    config = config_cls(
        vocab_size=s.vocab_size, hidden_size=s.hidden_size, num_hidden_layers=len(kept),
        num_attention_heads=s.heads[kept[0]], intermediate_size=s.ffn[kept[0]],
        hidden_act=s.hidden_act,
        max_position_embeddings=s.max_position_embeddings, type_vocab_size=s.type_vocab_size,
        layer_norm_eps=s.layer_norm_eps, pad_token_id=s.pad_token_id, num_labels=s.num_labels,
        hidden_dropout_prob=s.hidden_dropout, attention_probs_dropout_prob=s.attention_dropout,
        **label_config(s))
    hf = model_cls(config)
    hf.load_state_dict(_hf_names(model.state_dict(), s), strict=True)
    return hf.eval()


def label_config(shape: EncoderShape) -> dict[str, Any]:
    """The task's class names (so a ``pipeline`` answers with them, not LABEL_0) and whether
    the head is a regressor (a pipeline then returns the raw score)."""
    if shape.num_labels == 1:
        return {"problem_type": "regression"}
    names = shape.labels or [f"LABEL_{i}" for i in range(shape.num_labels)]
    return {"problem_type": "single_label_classification",
            "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def remote_code_config(shape: EncoderShape) -> dict[str, Any]:
    """``config.json`` of a ``trust_remote_code`` export."""
    return {
        "model_type": "cofi_bert", "architectures": ["CofiBertForSequenceClassification"],
        "auto_map": {"AutoConfig": "modeling_cofi_bert.CofiBertConfig",
                     "AutoModelForSequenceClassification":
                         "modeling_cofi_bert.CofiBertForSequenceClassification"},
        "family": shape.family, "vocab_size": shape.vocab_size,
        "max_position_embeddings": shape.max_position_embeddings,
        "type_vocab_size": shape.type_vocab_size, "pad_token_id": shape.pad_token_id,
        "hidden_size": shape.hidden_size, "head_dim": shape.head_dim,
        "heads": list(shape.heads), "ffn": list(shape.ffn), "pooler_size": shape.pooler_size,
        "hidden_act": shape.hidden_act, "layer_norm_eps": shape.layer_norm_eps,
        "hidden_dropout_prob": shape.hidden_dropout,
        "attention_probs_dropout_prob": shape.attention_dropout,
        "num_labels": shape.num_labels, **label_config(shape),
        # what CoFi removed, for a reader of the config (the model needs heads/ffn only)
        "removed_mha_layers": [i for i, h in enumerate(shape.heads) if h == 0],
        "removed_ffn_layers": [i for i, f in enumerate(shape.ffn) if f == 0],
        "kept_hidden_dims": shape.kept_hidden_dims,
    }


def _copy_tokenizer(compact_dir: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (compact_dir / name).is_file():
            shutil.copy2(compact_dir / name, out / name)


def export_hf(compact_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Writes the ``hf`` export (module docstring); returns what it wrote and the parity."""
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification

    compact_dir, out = Path(compact_dir), Path(out)
    model = CofiBert.from_pretrained(compact_dir)
    out.mkdir(parents=True, exist_ok=True)
    uniform = is_uniform(model.shape)
    if uniform:
        stock_model(model).save_pretrained(out)
    else:
        tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        (out / "config.json").write_text(json.dumps(remote_code_config(model.shape), indent=1))
        shutil.copy2(MODELING_FILE, out / MODELING_FILE.name)
    _copy_tokenizer(compact_dir, out)
    loaded = AutoModelForSequenceClassification.from_pretrained(
        out, trust_remote_code=not uniform).eval()
    inputs = sample_inputs(model.shape)
    with torch.no_grad():
        diff = (loaded(**inputs).logits - model(**inputs).logits).abs().max().item()
    if diff > HF_TOLERANCE:
        raise CofiSweepError(f"the hf export's logits differ from the compact model's by {diff:.2e}"
                             f" (> {HF_TOLERANCE}); please report this as a bug")
    return {"format": "hf", "out": str(out), "class": type(loaded).__name__,
            "remote_code": not uniform, "max_abs_logit_diff": diff}


def export_onnx(compact_dir: str | Path, out: str | Path, *, batch_size: int = 32,
                seq_len: int = 128, repeats: int = 10) -> dict[str, Any]:
    """Writes the ``onnx`` export and its report (module docstring); returns the report."""
    compact_dir, out = Path(compact_dir), Path(out)
    model = CofiBert.from_pretrained(compact_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.onnx"
    to_onnx(model, path)
    _copy_tokenizer(compact_dir, out)
    session = onnx_session(path)
    names = ONNX_INPUTS
    diffs = []
    for batch, seq in ((3, 16), (1, 7), (5, 33)):  # the axes really are dynamic
        sample = sample_inputs(model.shape, batch, seq)
        got = session.run(None, {n: sample[n].numpy() for n in names})[0]
        with torch.no_grad():
            diffs.append(float(abs(got - model(**sample).logits.numpy()).max()))
    diff = max(diffs)
    if diff > ONNX_TOLERANCE:
        raise CofiSweepError(f"onnxruntime's logits differ from PyTorch's by {diff:.2e} (> "
                             f"{ONNX_TOLERANCE}); please report this as a bug")
    torch.set_num_threads(available_cpus())
    timing = time_models({"pytorch": model, "onnxruntime": onnx_runner(session)},
                         batch_size=batch_size, seq_len=seq_len,
                         vocab_size=model.shape.vocab_size, repeats=repeats)
    labels = list(label_config(model.shape).get("id2label", {}).values())  # [] regression
    report = {"format": "onnx", "out": str(out), "labels": labels, "max_abs_logit_diff": diff,
              "tolerance": ONNX_TOLERANCE,
              "latency": {"protocol": {"batch_size": batch_size, "seq_len": seq_len,
                                       "threads": available_cpus(), "repeats": repeats,
                                       "interleaved": True},
                          **{k: t.as_dict() for k, t in timing.items()}}}
    (out / "export_report.json").write_text(json.dumps(report, indent=1))
    return report


