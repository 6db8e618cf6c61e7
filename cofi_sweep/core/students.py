"""Distillation baselines: the dense students a practitioner would train instead of pruning.

A student is either cut from the fine-tuned teacher or any pretrained BERT-family checkpoint:

  * **cut**: a subset of layers (every other one, DistilBERT-style; the first k; or an explicit
    list), and optionally fewer heads and FFN units per layer and a narrower hidden width
    (TinyBERT-4L-312- or MiniLM-shaped students, the ones that reach 8-15x). Which heads, units
    and hidden dims stay is decided by their **importance** (``rank: importance``, the default):
    the teacher's mean |dL/dz| over training batches, with every mask z at 1 (Michel et al.,
    2019, for heads; the same first-order score for FFN units and hidden dims), or simply the
    first ones (``rank: first``). The cut is then compacted like a CoFi model, so the student
    starts from the teacher's own weights;
  * **pretrained**: a hub name or local folder, used as is (its own depth and width); the
    layer-distillation map takes its width to the teacher's, and the fixed layer mapping
    follows the depths proportionally.

Either way the student is trained by :class:`cofi_sweep.prune.CofiPruner` through the same
three stages as a CoFi trial, without masks: same losses, steps, schedules, evaluations and
selection split, so the comparison is like for like.
"""

from __future__ import annotations

import itertools
from typing import Iterable

import torch

from cofi_sweep.core.compact import compact, compact_projection
from cofi_sweep.core.config import BaselineConfig
from cofi_sweep.core.distill import identity_projection
from cofi_sweep.core.errors import CofiSweepError
from cofi_sweep.core.evaluation import model_inputs, task_loss, to_device
from cofi_sweep.core.model import CofiBert, EncoderShape, load_model
from cofi_sweep.core.tasks import Task

UNIT_MASKS = {"head": "head_z", "int": "intermediate_z", "hidden": "hidden_z"}


def unit_importance(model: CofiBert, batches: Iterable[dict[str, torch.Tensor]],
                    task: Task, device: torch.device) -> dict[str, torch.Tensor]:
    """Mean |dL/dz| per head (L, H), FFN unit (L, F) and hidden dim (d) of a dense model,
    with every mask at 1, over ``batches`` of labelled training data (eval mode)."""
    s = model.shape
    masks = {"head_z": torch.ones(s.num_layers, s.heads[0]),
             "intermediate_z": torch.ones(s.num_layers, s.ffn[0]),
             "hidden_z": torch.ones(s.hidden_size)}
    masks = {k: v.to(device).requires_grad_(True) for k, v in masks.items()}
    totals = {k: torch.zeros_like(v) for k, v in masks.items()}
    was_training, count = model.training, 0
    model.eval()
    with torch.enable_grad():
        for batch in batches:
            batch = to_device(batch, device)
            logits = model(**model_inputs(batch), masks=masks).logits
            grads = torch.autograd.grad(task_loss(logits, batch["labels"], task),
                                        list(masks.values()))
            for key, grad in zip(masks, grads):
                totals[key] += grad.abs()
            count += 1
    model.train(was_training)
    return {family: totals[name].detach() / max(count, 1) for family, name in UNIT_MASKS.items()}


def kept_layers(num_layers: int, cfg: BaselineConfig) -> list[bool]:
    """Which of the teacher's layers the student keeps (every other keeps the top one)."""
    if cfg.layers == "every_other":
        return [i % 2 == 1 for i in range(num_layers)]
    if cfg.layers == "first_k":
        return [i < (cfg.num_layers or num_layers) for i in range(num_layers)]
    if cfg.layers == "list":
        return [i + 1 in set(cfg.layer_list or []) for i in range(num_layers)]
    return [True] * num_layers


def _top(scores: torch.Tensor, k: int | None, rank: str) -> torch.Tensor:
    """Binary mask over the last dim keeping k units: the highest-scoring or the first."""
    n = scores.shape[-1]
    if k is None or k >= n:
        return torch.ones_like(scores)
    if rank == "first":
        chosen = torch.arange(k).expand(*scores.shape[:-1], k)
    else:
        chosen = torch.topk(scores, k, dim=-1).indices
    return torch.zeros_like(scores).scatter_(-1, chosen, 1.0)


def student_masks(shape: EncoderShape, cfg: BaselineConfig,
                  importance: dict[str, torch.Tensor] | None = None
                  ) -> dict[str, torch.Tensor]:
    """Binary masks that cut ``cfg``'s student out of a dense model of ``shape``.

    ``importance`` (from :func:`unit_importance`) ranks heads, FFN units and hidden dims; it is
    needed only when ``cfg.rank == "importance"`` and something is narrowed.
    """
    L, H, F, d = shape.num_layers, shape.heads[0], shape.ffn[0], shape.hidden_size
    if importance is None:  # rank "first", or nothing to rank
        importance = {"head": torch.zeros(L, H), "int": torch.zeros(L, F),
                      "hidden": torch.zeros(d)}
    layer_z = torch.tensor(kept_layers(L, cfg), dtype=torch.float32)
    masks = {"head_z": _top(importance["head"].cpu(), cfg.heads, cfg.rank),
             "head_layer_z": layer_z,
             "intermediate_z": _top(importance["int"].cpu(), cfg.ffn, cfg.rank),
             "mlp_z": layer_z.clone()}
    if cfg.hidden is not None:
        masks["hidden_z"] = _top(importance["hidden"].cpu(), cfg.hidden, cfg.rank)
    return masks


def needs_importance(cfg: BaselineConfig) -> bool:
    return cfg.rank == "importance" and any(
        v is not None for v in (cfg.heads, cfg.ffn, cfg.hidden))


def make_student(baseline: BaselineConfig, dense: CofiBert, projection: torch.nn.Linear,
                 teacher: CofiBert, task: Task, loader: Iterable, device: torch.device
                 ) -> tuple[CofiBert, torch.nn.Linear]:
    """A baseline's student and its layer map: a pretrained checkpoint (sharing the teacher's
    tokenizer), or ``dense`` cut to the baseline's units -- ranked by the teacher's importance
    on the first ``importance_batches`` of ``loader`` when the baseline asks for it."""
    b = baseline
    if b.pretrained:
        model = load_model(b.pretrained, task.num_labels, task.labels).to(device)
        if model.shape.vocab_size != teacher.shape.vocab_size:
            raise CofiSweepError(
                f"baseline.pretrained: {b.pretrained} has a vocabulary of "
                f"{model.shape.vocab_size}, the teacher {teacher.shape.vocab_size}"
                "; the student must share the teacher's tokenizer")
        return model, identity_projection(model.shape.hidden_size,
                                          teacher.shape.hidden_size).to(device)
    importance = None
    if needs_importance(b):  # the teacher's, on the first training batches
        importance = unit_importance(teacher, itertools.islice(loader, b.importance_batches),
                                     task, device)
    masks = {k: v.to(device) for k, v in student_masks(dense.shape, b, importance).items()}
    return compact(dense, masks), compact_projection(projection, masks)
