"""Mixed precision for training and timing: which dtype the forward passes run in.

``fp32`` runs everything in float32. ``bf16`` and ``fp16`` run the student's and the teacher's
forward passes under ``torch.autocast`` (matrix products in the low precision, reductions and
losses where autocast keeps them in float32); the gates, the Lagrangian's multipliers and every
optimizer state stay float32, as do the weights (autocast casts on the fly). ``fp16``'s narrow
range needs a gradient scaler (:func:`grad_scaler`); ``bf16`` has float32's range and does not.
``auto`` is bf16 on a GPU that supports it, else fp32 (a CPU runs bf16 slower than fp32 unless
it has bf16 matrix units).
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` made concrete for ``device``; the others as they are."""
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The context the forward passes run in: autocast to bf16/fp16, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, active for fp16 only (a pass-through otherwise)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
