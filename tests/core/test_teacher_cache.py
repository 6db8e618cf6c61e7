from __future__ import annotations

import torch
from helpers import tiny

from cofi_sweep.core.distill import real_tokens
from cofi_sweep.core.teacher_cache import TeacherCache, cache_bytes

LAYERS = [2, 4]


def collate(rows: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
    """Right-padded batch of (ids, token types) rows."""
    width = max(len(ids) for ids, _ in rows)
    batch = {k: torch.zeros(len(rows), width, dtype=torch.long)
             for k in ("input_ids", "attention_mask", "token_type_ids")}
    for i, (ids, types) in enumerate(rows):
        batch["input_ids"][i, :len(ids)] = torch.tensor(ids)
        batch["token_type_ids"][i, :len(ids)] = torch.tensor(types)
        batch["attention_mask"][i, :len(ids)] = 1
    return batch


def teacher_outputs(teacher: torch.nn.Module, batch: dict[str, torch.Tensor]):
    with torch.no_grad():
        out = teacher(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                      output_hidden_states=True)
    return out.logits, real_tokens([out.hidden_states[i] for i in LAYERS],
                                   batch["attention_mask"])


def test_cached_outputs_equal_recomputed_ones_in_any_batch() -> None:
    teacher = tiny()
    g = torch.Generator().manual_seed(0)
    rows = [(torch.randint(5, 100, (n,), generator=g).tolist(), [0] * (n // 2) + [1] * (n - n // 2))
            for n in (3, 9, 5, 12, 7, 4)]
    rows.append((rows[1][0], [0] * 9))  # same ids, other token types: another example
    cache = TeacherCache.build(teacher, [collate(rows[:4]), collate(rows[4:] + rows[:1])],
                               LAYERS, torch.device("cpu"))
    assert len(cache.entries) == 7  # the repeated row is kept once
    assert cache.nbytes == cache_bytes([len(ids) for ids, _ in rows], layers=2,
                                       hidden_size=64, num_labels=3)
    batch = collate([rows[i] for i in (6, 2, 0, 3)])  # other rows together, other padding
    logits, states = cache.lookup(batch)
    want_logits, want_states = teacher_outputs(teacher, batch)
    assert torch.allclose(logits, want_logits, atol=1e-5)
    assert [s.shape for s in states] == [s.shape for s in want_states]
    for got, want in zip(states, want_states):
        assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(states[0][:9], cache.lookup(collate([rows[1]]))[1][0])
    assert cache.lookup(collate([rows[0], ([7, 8, 9], [0, 0, 0])])) is None  # not cached
