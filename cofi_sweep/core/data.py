"""Tasks and their data: the GLUE registry, three sources, tokenization and metrics.

Every source yields the same two ``datasets.Dataset`` splits (``train``, ``dev``) with columns
``text_a``, ``text_b`` (``None`` for single-sentence tasks) and ``label`` (int, or float for
regression), so the rest of the code never sees a source-specific column name.

Sources (``DataConfig.source``):
  * ``hub``   -- ``datasets.load_dataset("glue", task)``, for users with internet;
  * ``local`` -- a folder in GLUE's own layout (``<TASK>/train.tsv``, ``dev.tsv``);
  * ``synthetic`` -- a seeded, generated sentiment task with negation and contrast clauses.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pandas as pd

from cofi_sweep.core.config import DataConfig
from cofi_sweep.core.tasks import SYNTHETIC_TASKS, DataError, TaskSpec, get_task


def load_task(task: str, cfg: DataConfig) -> dict[str, Any]:
    """Loads ``{"train": Dataset, "dev": Dataset}`` for ``task`` from the configured source,
    with the configured seeded subsampling applied.

    With ``cfg.selection_size``, a seeded ``"selection"`` split of that many examples is carved
    out of the training data first (before any subsampling), so neither the teacher nor the
    student ever trains on it: checkpoints, early stopping and the search are decided on it,
    and the dev set is left to report.
    """
    spec = get_task(task)
    if cfg.source == "synthetic" or spec.name in SYNTHETIC_TASKS:
        splits = _synthetic_splits(cfg)
    elif cfg.source == "local":
        splits = _local_splits(spec, cfg.dir)
    else:
        splits = _hub_splits(spec)
    if cfg.selection_size is not None:
        n = len(splits["train"])
        if cfg.selection_size > n // 2:
            raise DataError(f"data.selection_size={cfg.selection_size} would take more than "
                            f"half of the {n} training examples of {task!r}; lower it")
        parts = splits["train"].train_test_split(test_size=cfg.selection_size,
                                                 seed=cfg.seed + 1, shuffle=True)
        splits["train"], splits["selection"] = parts["train"], parts["test"]
    limits = {"train": cfg.max_train_samples, "dev": cfg.max_eval_samples}
    for split, limit in limits.items():
        if limit is not None and limit < len(splits[split]):
            splits[split] = splits[split].shuffle(seed=cfg.seed).select(range(limit))
    return splits


# --------------------------------------------------------------------------------------------
# Sources


def _from_frame(frame: pd.DataFrame) -> Any:
    import datasets

    return datasets.Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)


def _canonical(frame: pd.DataFrame, fields: tuple[str, ...], label: pd.Series,
               spec: TaskSpec) -> pd.DataFrame:
    text_b = frame[fields[1]].astype(str) if len(fields) > 1 else None
    return pd.DataFrame({
        "text_a": frame[fields[0]].astype(str),
        "text_b": text_b if text_b is not None else pd.Series([None] * len(frame), dtype=object),
        "label": label.astype(float if spec.is_regression else int),
    })


def _hub_splits(spec: TaskSpec) -> dict[str, Any]:
    import datasets

    try:
        raw = datasets.load_dataset("glue", spec.name)
    except Exception as e:  # offline, no cache, hub down: say what to do instead
        raise DataError(
            f"could not load GLUE {spec.name!r} from the hub ({type(e).__name__}: {e}). "
            "Offline? Set data.source: local and data.dir: <folder with "
            f"{spec.glue_folder}/train.tsv, {spec.dev_file}>"
        ) from e
    out = {}
    for split, hub_split in (("train", "train"), ("dev", spec.hub_eval_split)):
        frame = raw[hub_split].to_pandas()
        out[split] = _from_frame(_canonical(frame, spec.hub_fields, frame["label"], spec))
    return out


def _read_tsv(path: Path, spec: TaskSpec) -> pd.DataFrame:
    import datasets

    if not path.is_file():
        raise DataError(f"{spec.name}: data file not found: {path}")
    # GLUE TSVs have stray quote characters, so quoting must be off. CoLA has no header line.
    kwargs: dict[str, Any] = dict(delimiter="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
    if spec.local_columns is not None:
        kwargs.update(header=None, column_names=list(spec.local_columns))
    try:
        frame = datasets.load_dataset("csv", data_files=str(path), split="train",
                                      **kwargs).to_pandas()
    except Exception as e:  # DatasetGenerationError wraps pandas' ParserError
        raise DataError(f"{spec.name}: cannot parse {path} as a GLUE TSV: {e}") from e
    frame.columns = [c.lstrip("\ufeff") for c in frame.columns]  # MRPC's header has a BOM
    needed = list(spec.local_fields) + [spec.local_label]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{spec.name}: {path} lacks column(s) {missing}; "
                        f"found {list(frame.columns)}")
    return frame


def _local_label(frame: pd.DataFrame, spec: TaskSpec, path: Path) -> pd.Series:
    raw = frame[spec.local_label].astype(str).str.strip()
    if spec.label_names:
        ids = {name: i for i, name in enumerate(spec.label_names)}
        bad = sorted(set(raw) - set(ids))
        if bad:
            raise DataError(f"{spec.name}: {path} has labels {bad[:5]}; expected {list(ids)}")
        return raw.map(ids)
    values = pd.to_numeric(raw, errors="coerce")
    if values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0])
        raise DataError(f"{spec.name}: {path} row {row + 1}: label {raw.iloc[row]!r} "
                        "is not a number")
    if not spec.is_regression and not values.isin(range(spec.num_labels)).all():
        raise DataError(f"{spec.name}: {path} has labels outside 0..{spec.num_labels - 1}")
    return values


def _local_splits(spec: TaskSpec, data_dir: str | None) -> dict[str, Any]:
    root = Path(data_dir or "").expanduser()
    if not root.is_dir():
        raise DataError(f"data folder not found: {root} (data.dir should hold "
                        f"{spec.glue_folder}/train.tsv and {spec.glue_folder}/{spec.dev_file})")
    out = {}
    for split, filename in (("train", "train.tsv"), ("dev", spec.dev_file)):
        path = root / spec.glue_folder / filename
        frame = _read_tsv(path, spec)
        label = _local_label(frame, spec, path)
        out[split] = _from_frame(_canonical(frame, spec.local_fields, label, spec))
    return out


# The synthetic task. A review is one or two clauses; a clause is a subject, an optional
# negation, an optional intensifier and an adjective. Its polarity is the adjective's, flipped
# by negation. With "but" the *second* clause decides; with "although" the *first* does; a
# leading "it is not true that" flips the whole. Every word appears under both labels, so a
# bag-of-words model cannot solve it: it needs negation scope and word order.
_SUBJECTS = ["the movie", "the film", "the plot", "the acting", "the script", "the ending",
             "the cast", "the story", "the music", "the dialogue", "the pacing", "the direction"]
_POSITIVE = ["good", "great", "wonderful", "brilliant", "charming", "moving", "funny",
             "delightful", "excellent", "superb", "clever", "beautiful"]
_NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak", "bland", "tedious",
             "clumsy", "poor", "silly", "messy"]
_NEGATIONS = ["not", "never", "hardly"]
_INTENSIFIERS = ["very", "really", "quite", "truly", "rather"]
_VERBS = ["was", "is", "seemed", "felt"]


def _clause(rng: random.Random) -> tuple[str, int]:
    positive = rng.random() < 0.5
    adjective = rng.choice(_POSITIVE if positive else _NEGATIVE)
    negated = rng.random() < 0.5
    words = [rng.choice(_SUBJECTS), rng.choice(_VERBS)]
    if negated:
        words.append(rng.choice(_NEGATIONS))
    if rng.random() < 0.4:
        words.append(rng.choice(_INTENSIFIERS))
    words.append(adjective)
    return " ".join(words), int(positive != negated)


def synthetic_example(rng: random.Random) -> tuple[str, int]:
    """One (sentence, label) pair of the synthetic task (1 = positive)."""
    first, label_1 = _clause(rng)
    kind = rng.random()
    if kind < 0.3:
        text, label = first, label_1
    elif kind < 0.6:
        second, label_2 = _clause(rng)
        text, label = f"{first} but {second}", label_2
    else:
        second, label_2 = _clause(rng)
        text, label = f"{first} although {second}", label_1
    if rng.random() < 0.2:
        text, label = f"it is not true that {text}", 1 - label
    return text, label


def _synthetic_splits(cfg: DataConfig) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    out = {}
    for split, size in (("train", cfg.synthetic_train_size), ("dev", cfg.synthetic_eval_size)):
        pairs = [synthetic_example(rng) for _ in range(size)]
        frame = pd.DataFrame({"text_a": [p[0] for p in pairs],
                              "text_b": pd.Series([None] * size, dtype=object),
                              "label": [p[1] for p in pairs]})
        out[split] = _from_frame(frame)
    return out


def synthetic_vocabulary() -> list[str]:
    """Every word the synthetic task uses (for building tiny tokenizers)."""
    words = set("but although it is not true that".split())
    for group in (_SUBJECTS, _POSITIVE, _NEGATIVE, _NEGATIONS, _INTENSIFIERS, _VERBS):
        for phrase in group:
            words.update(phrase.split())
    return sorted(words)


# --------------------------------------------------------------------------------------------
# Tokenization and batching


def tokenize(splits: dict[str, Any], tokenizer: Any, max_seq_length: int) -> dict[str, Any]:
    """Tokenizes each split (truncation to ``max_seq_length``; padding happens per batch)."""

    def encode(batch: dict[str, list]) -> dict[str, list]:
        pairs = batch["text_b"] if any(t is not None for t in batch["text_b"]) else None
        enc = tokenizer(batch["text_a"], pairs, truncation=True, max_length=max_seq_length)
        enc["labels"] = batch["label"]
        return enc

    return {
        split: ds.map(encode, batched=True, remove_columns=ds.column_names,
                      desc=f"tokenizing {split}")
        for split, ds in splits.items()
    }


def make_loader(dataset: Any, tokenizer: Any, *, batch_size: int, shuffle: bool,
                seed: int = 0) -> Any:
    """A DataLoader with dynamic padding (each batch padded to its longest sequence)."""
    import torch
    from transformers import DataCollatorWithPadding

    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
        collate_fn=DataCollatorWithPadding(tokenizer, return_tensors="pt"),
    )


# --------------------------------------------------------------------------------------------
# Metrics


def endless_batches(loader: Any, seed: int, start_epoch: int, skip: int):
    """Endless batches; epoch e is shuffled with seed + e so a resumed job sees the same
    order, and the first ``skip`` batches of the resumed epoch are passed over."""
    epoch = start_epoch
    while True:
        loader.generator.manual_seed(seed + epoch)
        for i, batch in enumerate(loader):
            if i >= skip:
                yield epoch, batch
        skip, epoch = 0, epoch + 1
