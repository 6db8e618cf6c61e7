"""ONNX: write a model as a graph with dynamic batch and sequence axes, and run it in
onnxruntime as a latency runner (deployment exports and the onnxruntime timing protocol both
use it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cofi_sweep.core.model import CofiBert, EncoderShape
from cofi_sweep.latency.timing import available_cpus

ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def sample_inputs(shape: EncoderShape, batch: int = 3, seq: int = 16) -> dict[str, torch.Tensor]:
    """Token ids with padding in one row, so the attention mask is exercised too."""
    ids = torch.randint(5, shape.vocab_size, (batch, seq),
                        generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[-1, seq // 2:] = 0
    ids[-1, seq // 2:] = shape.pad_token_id
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


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
    inputs = sample_inputs(model.shape)
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
