"""The teacher's outputs on the training set, computed once per job and looked up every step.

The teacher is frozen and in eval mode, so its logits and hidden states for an example never
change; a distilling step that recomputes them pays a teacher forward with hidden states, about
a quarter of a CoFi pruning step (``benchmarks/overhead.py``), once per example per epoch. When
the outputs fit in ``cofi.teacher_cache_mb``, one pass over the training data (long batches,
sorted by length, so little padding) computes them and every later step reads them instead:
the logits and, for layer distillation, the chosen teacher layers' states at real tokens only.

Examples are keyed by their real tokens' ids (and token types), so nothing has to carry an
index through the data loader; duplicates share one entry, as they share the outputs. A cached
output equals a recomputed one up to float rounding (the batch it was computed in is padded to
another length). Building consumes no random numbers and its result depends only on the data
and the teacher, so a resumed job rebuilds exactly what it had.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

import numpy as np
import torch

from cofi_sweep.core.evaluation import model_inputs, to_device

log = logging.getLogger(__name__)


def cache_bytes(lengths: Iterable[int], *, layers: int, hidden_size: int, num_labels: int
                ) -> int:
    """Bytes the cache takes for examples of these lengths (float32)."""
    lengths = list(lengths)
    return 4 * (sum(lengths) * layers * hidden_size + len(lengths) * num_labels)


def _key(ids: torch.Tensor, types: torch.Tensor | None) -> bytes:
    key = ids.to(torch.int32).numpy().tobytes()
    return key if types is None else key + b"|" + types.to(torch.int8).numpy().tobytes()


def _row_keys(batch: dict[str, torch.Tensor]) -> tuple[list[bytes], torch.Tensor]:
    """Each row's key (its real tokens) and its number of real tokens."""
    real = batch["attention_mask"].bool().cpu()
    ids, types = batch["input_ids"].cpu(), batch.get("token_type_ids")
    types = None if types is None else types.cpu()
    keys = [_key(ids[i][real[i]], None if types is None else types[i][real[i]])
            for i in range(len(ids))]
    return keys, real.sum(1)


class TeacherCache:
    """Logits (N, C) and, per chosen teacher layer, the real tokens' states (tokens, d)."""

    def __init__(self, entries: dict[bytes, tuple[int, int, int]], logits: torch.Tensor,
                 states: list[torch.Tensor]) -> None:
        self.entries = entries  # key -> (row in logits, first token in states, tokens)
        self.logits, self.states = logits, states

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in [self.logits, *self.states])

    @classmethod
    @torch.no_grad()
    def build(cls, teacher: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]],
              layers: list[int], device: torch.device) -> TeacherCache:
        """Runs the teacher over ``batches`` and keeps its outputs.

        Args:
            teacher: the frozen teacher (put in eval mode here).
            batches: collated batches covering the examples to cache.
            layers: 1-based teacher layers whose states are kept (empty: logits only).
            device: where the teacher runs and the cache lives.
        """
        teacher.eval()
        entries: dict[bytes, tuple[int, int, int]] = {}
        logits: list[torch.Tensor] = []
        states: list[list[torch.Tensor]] = [[] for _ in layers]
        rows = tokens = 0
        for batch in batches:
            batch = to_device(batch, device)
            out = teacher(**model_inputs(batch), output_hidden_states=bool(layers))
            keys, lengths = _row_keys(batch)
            real = batch["attention_mask"].bool()
            for i in range(len(keys)):
                if keys[i] in entries:  # a duplicate sentence: its outputs are already kept
                    continue
                entries[keys[i]] = (rows, tokens, int(lengths[i]))
                logits.append(out.logits[i])
                for kept, layer in zip(states, layers):
                    kept.append(out.hidden_states[layer][i][real[i]])
                rows, tokens = rows + 1, tokens + int(lengths[i])
        return cls(entries, torch.stack(logits),
                   [torch.cat(kept) for kept in states])

    def lookup(self, batch: dict[str, torch.Tensor]
               ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        """The batch's teacher logits (B, C) and each cached layer's states at the batch's real
        tokens, in ``distill.real_tokens`` order (row by row); None if a row is not cached."""
        keys, _ = _row_keys(batch)
        found = [self.entries.get(k) for k in keys]
        if any(f is None for f in found):
            return None
        rows, starts, lengths = (torch.tensor(c, device=self.logits.device)
                                 for c in zip(*found))
        # token index: each row's [start, start + length), concatenated
        ends = lengths.cumsum(0)
        index = (torch.arange(int(ends[-1]), device=self.logits.device)
                 + (starts - ends + lengths).repeat_interleave(lengths))
        return self.logits[rows], [s[index] for s in self.states]


def build_for_job(teacher: torch.nn.Module, dataset: Any, collate: Any, *, layers: list[int],
                  num_labels: int, device: torch.device, budget_mb: float,
                  batch_size: int = 128) -> TeacherCache | None:
    """The cache over a tokenized training set, or None (with the reason logged) when it would
    not fit in ``budget_mb``."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    hidden = teacher.shape.hidden_size
    need = cache_bytes(lengths, layers=len(layers), hidden_size=hidden, num_labels=num_labels)
    if need > budget_mb * 2**20:
        log.info("teacher outputs not cached: %d examples need %.0f MB, "
                 "cofi.teacher_cache_mb is %s", len(lengths), need / 2**20, budget_mb)
        return None
    start = time.perf_counter()
    order = np.argsort(lengths, kind="stable")  # batches of similar lengths: little padding
    batches = (collate([dataset[int(i)] for i in order[b:b + batch_size]])
               for b in range(0, len(order), batch_size))
    cache = TeacherCache.build(teacher, batches, layers, device)
    log.info("teacher outputs cached: %d examples, %.0f MB, %.1f s", len(cache.entries),
             cache.nbytes / 2**20, time.perf_counter() - start)
    return cache
