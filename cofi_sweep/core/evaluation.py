"""Dev-set evaluation, shared by the teacher and every CoFi stage (timing: cofi_sweep.latency)."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch

from cofi_sweep.core.precision import autocast
from cofi_sweep.core.tasks import Task, compute_metrics


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments of ``CofiBert.forward`` found in a collated batch."""
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}


def task_loss(logits: torch.Tensor, labels: torch.Tensor, task: Task) -> torch.Tensor:
    """Cross-entropy, or MSE for regression tasks (hard labels)."""
    if task.is_regression:
        return torch.nn.functional.mse_loss(logits.squeeze(-1), labels.float())
    return torch.nn.functional.cross_entropy(logits, labels.long())


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Iterable, task: Task, *,
             masks: dict[str, torch.Tensor] | None = None,
             device: torch.device | None = None, precision: str = "fp32") -> dict[str, float]:
    """The task's metrics on ``loader`` (eval mode; the model's mode is restored after), the
    forward passes in ``precision`` (:mod:`cofi_sweep.core.precision`)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    outputs, labels = [], []
    for batch in loader:
        batch = to_device(batch, device)
        with autocast(precision, device):
            logits = model(**model_inputs(batch), masks=masks).logits
        outputs.append(logits.float().cpu().numpy())
        labels.append(batch["labels"].cpu().numpy())
    model.train(was_training)
    return compute_metrics(task, np.concatenate(outputs), np.concatenate(labels))


def describe(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items())
