"""Export a compact model so that it loads without this project: Hugging Face or ONNX.

    python -m cofi_sweep.export <compact dir> --format hf --out exported/
    python -m cofi_sweep.export <compact dir> --format onnx --out exported/
    python -m cofi_sweep.export runs/sweeps/quickstart                  # lists its frontier
    python -m cofi_sweep.export runs/sweeps/quickstart --trial 1a2b3c4d --format hf --out x/

``hf``: ``model.safetensors``, ``config.json``, the tokenizer and -- unless the structure is
uniform -- ``modeling_cofi_bert.py`` (:mod:`cofi_sweep.modeling_cofi_bert`), so that
``AutoModelForSequenceClassification.from_pretrained(out, trust_remote_code=True)`` and
``AutoTokenizer.from_pretrained(out)`` load it anywhere. A uniform structure (the same heads and
FFN width in every layer that is left, all heads of the hidden width, full hidden width) is
written as a plain ``BertForSequenceClassification`` / ``RobertaForSequenceClassification``: no
remote code. Layers whose MHA and FFN are both removed are the identity and are left out, so a
layer-subset student (or a CoFi model that removed whole layers) is a shallower stock model.
The export reloads what it wrote and checks its logits against the compact model's.

``onnx``: ``model.onnx`` with dynamic batch and sequence axes (inputs ``input_ids``,
``attention_mask``, ``token_type_ids``; output ``logits``), the tokenizer, and
``export_report.json``: onnxruntime's largest logit difference from PyTorch (must be ≤ 1e-4)
and both latencies under the experiment's protocol.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from cofi_sweep.config import CofiSweepError
from cofi_sweep.latency import available_cpus, time_models
from cofi_sweep.model import CONFIG_FILE, CofiBert, EncoderShape

MODELING_FILE = Path(__file__).with_name("modeling_cofi_bert.py")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "merges.txt", "special_tokens_map.json")
ONNX_TOLERANCE = 1e-4
HF_TOLERANCE = 1e-5
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXPORT_DIR = "export"  # <experiment>/export/: the frontier's models, exported after a sweep


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
    :func:`cofi_sweep.model.hf_state_dict_to_cofi`), the kept layers numbered 0, 1, …"""
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
    from transformers import (BertConfig, BertForSequenceClassification, RobertaConfig,
                              RobertaForSequenceClassification)

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
        hidden_dropout_prob=s.hidden_dropout, attention_probs_dropout_prob=s.attention_dropout)
    hf = model_cls(config)
    hf.load_state_dict(_hf_names(model.state_dict(), s), strict=True)
    return hf.eval()


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
        "num_labels": shape.num_labels,
        # what CoFi removed, for a reader of the config (the model needs heads/ffn only)
        "removed_mha_layers": [i for i, h in enumerate(shape.heads) if h == 0],
        "removed_ffn_layers": [i for i, f in enumerate(shape.ffn) if f == 0],
        "kept_hidden_dims": shape.kept_hidden_dims,
    }


def _copy_tokenizer(compact_dir: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (compact_dir / name).is_file():
            shutil.copy2(compact_dir / name, out / name)


def _sample_inputs(shape: EncoderShape, batch: int = 3, seq: int = 16) -> dict[str, torch.Tensor]:
    """Token ids with padding in one row, so the attention mask is exercised too."""
    ids = torch.randint(5, shape.vocab_size, (batch, seq),
                        generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[-1, seq // 2:] = 0
    ids[-1, seq // 2:] = shape.pad_token_id
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


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
    inputs = _sample_inputs(model.shape)
    with torch.no_grad():
        diff = (loaded(**inputs).logits - model(**inputs).logits).abs().max().item()
    if diff > HF_TOLERANCE:
        raise CofiSweepError(f"the hf export's logits differ from the compact model's by {diff:.2e}"
                             f" (> {HF_TOLERANCE}); please report this as a bug")
    return {"format": "hf", "out": str(out), "class": type(loaded).__name__,
            "remote_code": not uniform, "max_abs_logit_diff": diff}


class _LogitsOnly(torch.nn.Module):
    """The compact model with a tensor output, for the ONNX exporter."""

    def __init__(self, model: CofiBert) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask, token_type_ids).logits


def to_onnx(model: CofiBert, path: str | Path) -> None:
    """Writes ``model`` as ONNX with dynamic batch and sequence axes."""
    inputs = _sample_inputs(model.shape)
    axes = {n: {0: "batch", 1: "sequence"} for n in ONNX_INPUTS} | {"logits": {0: "batch"}}
    # the TorchScript-based exporter: it needs no onnxscript, and its graph runs in onnxruntime
    # at any batch and length (tested)
    torch.onnx.export(_LogitsOnly(model).eval(), tuple(inputs[n] for n in ONNX_INPUTS),
                      str(path), input_names=list(ONNX_INPUTS), output_names=["logits"],
                      dynamic_axes=axes, dynamo=False)


def onnx_runner(session: Any) -> Any:
    """An onnxruntime session as a latency runner: ``(input_ids, attention_mask) -> logits``."""
    names = [i.name for i in session.get_inputs()]  # unused inputs are pruned from a graph

    def run(ids: torch.Tensor, mask: torch.Tensor) -> Any:
        arrays = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                  "token_type_ids": (ids * 0).numpy()}
        return session.run(None, {n: arrays[n] for n in names})[0]
    return run


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cpus()
    # each session has its own thread pool, whose threads spin for a while after a run: timed
    # interleaved with another session they steal its cores (measured here: a teacher's pass 2x
    # slower at batch 1, a small model's at batch 32). Spinning stays on *during* a run (as a
    # deployed session has it: a small model's pass takes 40 % less time at batch 1) and stops
    # at its end.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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
        sample = _sample_inputs(model.shape, batch, seq)
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
    report = {"format": "onnx", "out": str(out), "max_abs_logit_diff": diff,
              "tolerance": ONNX_TOLERANCE,
              "latency": {"protocol": {"batch_size": batch_size, "seq_len": seq_len,
                                       "threads": available_cpus(), "repeats": repeats,
                                       "interleaved": True},
                          **{k: t.as_dict() for k, t in timing.items()}}}
    (out / "export_report.json").write_text(json.dumps(report, indent=1))
    return report


def frontier_model(experiment: Path, trial: str | None) -> Path | None:
    """The compact model of ``trial`` on the experiment's frontier; None after listing the
    frontier when no trial is named."""
    import pandas as pd

    pareto = experiment / "pareto.csv"
    if not pareto.is_file():
        raise CofiSweepError(f"{experiment} has neither {CONFIG_FILE} (a compact model) nor "
                             "pareto.csv (a finished experiment)")
    front = pd.read_csv(pareto)
    if trial is None:
        print(front[[c for c in ("frontier", "score", "speedup", "realized_sparsity",
                                 "trial_ids") if c in front]].to_string(index=False))
        print("pick one with --trial <trial id>")
        return None
    hit = front[front["trial_ids"].astype(str).str.split().map(lambda ids: trial in ids)]
    if hit.empty:
        raise CofiSweepError(f"trial {trial} is not on {experiment}'s frontier (see the list "
                             "without --trial); a compact model folder can be exported directly")
    return experiment / "trials" / trial / "job" / "compact"


def export_frontier(experiment: Path, folder: str = EXPORT_DIR) -> list[dict[str, Any]]:
    """Exports (``hf``) every model on the experiment's frontiers into
    ``<experiment>/<folder>/<frontier>_<speedup>x`` (e.g. ``cofi_full_5_06x`` for
    ``cofi:full`` at 5.06x; a second point at the same rounded speedup gets its trial id
    appended): the models a user ships."""
    import pandas as pd

    pareto = experiment / "pareto.csv"
    front = pd.read_csv(pareto) if pareto.is_file() else pd.DataFrame()
    done = []
    for _, row in front.iterrows():
        if not isinstance(row.get("compact_dir"), str) or not Path(row["compact_dir"]).is_dir():
            continue
        # a Python identifier: transformers imports remote code under the folder's name
        name = re.sub(r"\W+", "_", f"{row['frontier']}_{row['speedup']:.2f}x")
        if name in {Path(d["out"]).name for d in done}:  # two points at one rounded speedup
            name = re.sub(r"\W+", "_", f"{name}_{row['trial_id']}")
        report = export_hf(row["compact_dir"], experiment / folder / name)
        done.append(report | {"frontier": row["frontier"], "speedup": row["speedup"],
                              "score": row["score"]})
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a compact model folder, or an experiment folder")
    parser.add_argument("--trial", help="with an experiment: the frontier trial to export")
    parser.add_argument("--format", choices=("hf", "onnx"), default="hf")
    parser.add_argument("--out", help="output folder (default: <source>-<format>)")
    parser.add_argument("--batch-size", type=int, default=32, help="onnx latency protocol")
    parser.add_argument("--seq-len", type=int, default=128, help="onnx latency protocol")
    args = parser.parse_args(argv)
    try:
        source = Path(args.source)
        if not (source / CONFIG_FILE).is_file():
            source = frontier_model(source, args.trial)
            if source is None:
                return 0
        out = Path(args.out or f"{source.as_posix().rstrip('/')}-{args.format}")
        if args.format == "hf":
            report = export_hf(source, out)
        else:
            report = export_onnx(source, out, batch_size=args.batch_size, seq_len=args.seq_len)
    except CofiSweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
