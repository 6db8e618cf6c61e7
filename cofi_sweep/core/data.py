"""A task's data: five sources, one shape, every problem found before training.

Every source yields the same splits (``train``, ``dev``, and a ``selection`` split when asked)
as ``datasets.Dataset`` with columns ``text_a``, ``text_b`` (``None`` for single texts) and
``label`` (a class id, or a float for regression), so the rest of the code never sees a
source-specific column name; with them comes the resolved :class:`~cofi_sweep.core.tasks.Task`
(label names, metrics) and notes on what was done to the data (rows dropped, splits carved,
the problem type inferred), which the plan prints.

Sources (``DataConfig.source``):
  * ``files`` -- your .csv .tsv .json .jsonl .parquet files, read by ``datasets``;
  * ``hub`` -- a dataset on the Hugging Face hub (``data.dataset``), or, without one, a GLUE
    task's (``load_dataset("glue", task)``), for users with internet;
  * ``local`` -- a folder in GLUE's own layout (``<TASK>/train.tsv``, ``dev.tsv``);
  * ``synthetic`` -- a seeded, generated sentiment task with negation and contrast clauses.

Labels of your own data: class names (strings or integers) from the training split, in a
deterministic order -- a hub dataset's own class order, else numeric order for integers, else
sorted -- stored with every model (``id2label``).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from cofi_sweep.core.config import DataConfig
from cofi_sweep.core.tasks import (
    GLUE,
    SYNTHETIC,
    DataError,
    GluePreset,
    Task,
    default_metrics,
    metric_problems,
)


@dataclass
class TaskData:
    """A task's data, resolved: the task, its splits, and what was done to them."""

    task: Task
    splits: dict[str, Any]  # name -> datasets.Dataset
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """What the plan says about the data: the task, the splits' sizes, the notes."""
        t = self.task
        kind = ("regression" if t.is_regression else
                f"classification, {t.num_labels} labels {list(t.labels)}")
        sizes = ", ".join(f"{name} {len(ds)}" for name, ds in self.splits.items())
        lines = [f"task {t.name}: {kind}; metrics {', '.join(t.metrics)} ({t.main_metric} "
                 f"selects); rows: {sizes}"]
        return "\n".join(lines + [f"  {note}" for note in self.notes])


def load_task(task: str, cfg: DataConfig) -> TaskData:
    """Loads ``task`` from the configured source, checked (:class:`DataError` names the file,
    the column and the fix), with the seeded splits and subsampling applied.

    With ``cfg.selection_size``, a seeded ``"selection"`` split of that many examples is carved
    out of the training data first (before any subsampling), so neither the teacher nor the
    student ever trains on it: checkpoints, early stopping and the search are decided on it,
    and the dev set is left to report.
    """
    notes: list[str] = []
    if cfg.source == "synthetic":
        spec, splits = SYNTHETIC, _synthetic_splits(cfg)
    elif cfg.user_data:
        spec, splits, notes = _user_splits(task, cfg)
    else:
        preset = GLUE.get(task)
        if preset is None:
            raise DataError(f"unknown task {task!r}; GLUE tasks: {list(GLUE)} (for your own "
                            "data: data.source files or hub with data.dataset)")
        spec = preset.task()
        splits = _local_splits(preset, cfg.dir) if cfg.source == "local" else _hub_glue(preset)
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
    return TaskData(spec, splits, notes)


def data_fingerprint(cfg: DataConfig) -> dict[str, str]:
    """A digest of each of the user's data files: what a cached teacher was trained on."""
    if cfg.source != "files":
        return {}
    out = {}
    for key in ("train", "validation"):
        path = Path(getattr(cfg, key) or "").expanduser()
        if getattr(cfg, key) and path.is_file():
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return out


# --------------------------------------------------------------------------------------------
# Your own data: files or a hub dataset


# suffix -> the `datasets` builder that reads it, and its options
_READERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {}), ".tsv": ("csv", {"delimiter": "\t"}),
    ".json": ("json", {}), ".jsonl": ("json", {}), ".parquet": ("parquet", {}),
}
# text columns looked for when data.text_fields is unset
_TEXT_GUESSES = (["text"], ["sentence"], ["sentence1", "sentence2"], ["premise", "hypothesis"],
                 ["question", "sentence"])
MOSTLY_EMPTY = 0.5  # a text column empty in more rows than this is the wrong column


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars or logged errors from ``datasets`` while it reads: a failure comes back
    as one DataError, and a good read needs no bar."""
    import datasets

    level, bars = datasets.logging.get_verbosity(), datasets.is_progress_bar_enabled()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)
        if bars:
            datasets.enable_progress_bars()


def _read_file(key: str, name: str) -> pd.DataFrame:
    import datasets

    path = Path(name).expanduser()
    if not path.is_file():
        raise DataError(f"data.{key}: file not found: {path.resolve()}")
    builder, options = _READERS[path.suffix.lower()]
    if builder == "csv":  # an empty cell is missing; "NA" or "null" is text
        options = options | {"keep_default_na": False, "na_values": [""]}
    try:
        with _quiet_datasets():
            frame = datasets.load_dataset(builder, data_files=str(path), split="train",
                                          **options).to_pandas()
    except Exception as e:  # datasets wraps the parser's error: its last line says what
        if "corresponds to no data" in str(e):  # a header and no rows
            raise DataError(f"data.{key}: {path} has no rows") from e
        reason = str(e.__cause__ or e).strip().splitlines()
        raise DataError(f"data.{key}: cannot read {path} as {path.suffix[1:]}: "
                        f"{reason[-1] if reason else type(e).__name__}") from e
    frame.columns = [str(c).lstrip("\ufeff") for c in frame.columns]  # a BOM before the header
    return frame


def _read_hub(cfg: DataConfig) -> tuple[dict, dict, tuple[str, ...] | None]:
    import datasets

    named = f"{cfg.dataset!r}" + (f" (config {cfg.config!r})" if cfg.config else "")
    try:
        with _quiet_datasets():
            raw = datasets.load_dataset(cfg.dataset, cfg.config)
    except Exception as e:  # offline, unknown name, a config needed: all end the same way
        raise DataError(f"data.dataset: {named} does not load ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}); offline? "
                        "load it once where there is internet, or save it as files and use "
                        "data.source: files") from e
    wanted = {"train": "train", "validation": "validation"} | (cfg.splits or {})
    frames, where, names = {}, {}, None
    for split, hub_split in wanted.items():
        if hub_split not in raw:
            if split == "validation" and "validation" not in (cfg.splits or {}):
                frames[split] = None  # none given: carved from train
                continue
            raise DataError(f"data.splits: {named} has no split {hub_split!r}; its splits: "
                            f"{list(raw)}")
        frames[split] = raw[hub_split].to_pandas()
        where[split] = f"{cfg.dataset} split {hub_split!r}"
        feature = raw[hub_split].features.get(cfg.label_field)
        if isinstance(feature, datasets.ClassLabel):  # ids with names: keep the dataset's order
            names = tuple(feature.names)
            frames[split][cfg.label_field] = frames[split][cfg.label_field].map(
                lambda i: names[i] if 0 <= i < len(names) else None)  # -1: unlabelled
    return frames, where, names


def _columns_problem(frame: pd.DataFrame, columns: list[str], key: str, where: str) -> None:
    import difflib

    for column in columns:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, [str(c) for c in frame.columns], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DataError(f"data.{key}: {where} has no column {column!r}{hint} (its columns: "
                            f"{list(frame.columns)})")


def _empty(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype(str).str.strip().eq("")


def _class_names(labels: pd.Series) -> pd.Series:
    """Labels as class names: whole numbers as integers ("3", not "3.0"), others as text."""
    if pd.api.types.is_bool_dtype(labels):
        return labels.astype(str)
    if pd.api.types.is_numeric_dtype(labels) and (labels % 1 == 0).all():
        return labels.astype("int64").astype(str)
    return labels.astype(str).str.strip()


def _class_order(names: pd.Series) -> tuple[str, ...]:
    distinct = names.unique().tolist()
    numeric = pd.to_numeric(pd.Series(distinct), errors="coerce")
    if not numeric.isna().any():  # "1" .. "5": by value, so "10" follows "9"
        return tuple(str(n) for _, n in sorted(zip(numeric, distinct)))
    return tuple(sorted(distinct))


def _user_splits(name: str, cfg: DataConfig) -> tuple[Task, dict[str, Any], list[str]]:
    """Reads, checks and labels your files or hub dataset (the module docstring)."""
    if cfg.source == "files":
        frames = {"train": _read_file("train", cfg.train),
                  "validation": _read_file("validation", cfg.validation)
                  if cfg.validation else None}
        where, names = {"train": cfg.train, "validation": cfg.validation}, None
    else:
        frames, where, names = _read_hub(cfg)
    fields = cfg.text_fields or next(
        (g for g in _TEXT_GUESSES if set(g) <= set(frames["train"].columns)), None)
    if fields is None:
        raise DataError(f"data.text_fields: unset, and {where['train']} has none of the usual "
                        f"text columns (text, sentence, sentence1/sentence2); its columns: "
                        f"{list(frames['train'].columns)}: set data.text_fields")
    notes = _drop_empty_rows(frames, list(fields), cfg.label_field, where)
    problem = cfg.problem
    if problem is None:
        labels = frames["train"][cfg.label_field]
        numeric = (pd.api.types.is_numeric_dtype(labels)
                   and not pd.api.types.is_bool_dtype(labels))
        problem = "regression" if numeric and not (labels % 1 == 0).all() else "classification"
        notes.append(f"problem: {problem}, inferred from the labels (set data.problem to "
                     "change it)")
    labels = (_scores(frames, cfg.label_field, where) if problem == "regression"
              else _class_ids(frames, cfg.label_field, where, names))
    metrics = tuple(cfg.metrics or default_metrics(problem, max(1, len(labels))))
    wrong = metric_problems(metrics, problem, len(labels))
    if wrong:
        raise DataError(f"data.metrics: {wrong[0]}")
    if frames["validation"] is None:
        train = frames["train"]
        order = np.random.RandomState(cfg.seed).permutation(len(train))
        n_dev = max(1, round(cfg.validation_fraction * len(train)))
        frames["validation"] = train.iloc[np.sort(order[:n_dev])].reset_index(drop=True)
        frames["train"] = train.iloc[np.sort(order[n_dev:])].reset_index(drop=True)
        notes.append(f"validation: none given; {n_dev} rows ({cfg.validation_fraction:.0%}) of "
                     f"{where['train']} carved with seed {cfg.seed}, the rest trains")
    splits = {split: _from_frame(_canonical(frames[source], tuple(fields),
                                            frames[source]["label"], problem == "regression"))
              for split, source in (("train", "train"), ("dev", "validation"))}
    return Task(name, problem, labels, metrics), splits, notes


def _drop_empty_rows(frames: dict, fields: list[str], label: str, where: dict) -> list[str]:
    """Checks each split's columns and rows, drops rows with an empty text or label (in
    ``frames``); notes how many."""
    notes = []
    for split, frame in frames.items():
        if frame is None:
            continue
        _columns_problem(frame, fields, "text_fields", where[split])
        _columns_problem(frame, [label], "label_field", where[split])
        if not len(frame):
            raise DataError(f"data.{split}: {where[split]} has no rows")
        for column in fields:
            share = float(_empty(frame[column]).mean())
            if share > MOSTLY_EMPTY:
                raise DataError(f"data.text_fields: column {column!r} of {where[split]} is empty "
                                f"in {share:.0%} of its rows: is it the text column? (columns: "
                                f"{list(frame.columns)})")
        empty = _empty(frame[label])
        for column in fields:
            empty |= _empty(frame[column])
        if empty.any():
            notes.append(f"{where[split]}: {int(empty.sum())} of {len(frame)} rows dropped "
                         f"(an empty text or label)")
            frames[split] = frame[~empty].reset_index(drop=True)
            if not len(frames[split]):
                raise DataError(f"data.{split}: every row of {where[split]} has an empty text "
                                "or label")
    return notes


def _scores(frames: dict, label: str, where: dict) -> tuple[str, ...]:
    """Regression: each split's ``label`` column as floats; no class names."""
    for split, frame in frames.items():
        if frame is None:
            continue
        values = pd.to_numeric(frame[label], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise DataError(f"data.label_field: {where[split]}: label {frame[label].iloc[row]!r} "
                            f"(row {row + 1}) is not a number, but the task is regression")
        frame["label"] = values.astype(float)
    return ()


def _class_ids(frames: dict, label: str, where: dict, names: tuple[str, ...] | None
               ) -> tuple[str, ...]:
    """Classification: each split's ``label`` column as class ids; the class names in id order
    (``names``, a hub dataset's own, else :func:`_class_order` of the training split)."""
    for frame in frames.values():
        if frame is not None:
            frame["label"] = _class_names(frame[label])
    seen = set(frames["train"]["label"])
    if len(seen) < 2:
        raise DataError(f"data.label_field: {where['train']} has one class only "
                        f"({sorted(seen)}): classification needs two or more")
    if frames["validation"] is not None:
        unseen = sorted(set(frames["validation"]["label"]) - seen)
        if unseen:
            raise DataError(f"data.validation: labels {unseen[:5]} of {where['validation']} "
                            f"never occur in {where['train']} (its labels: {sorted(seen)[:10]}); "
                            "fix them or add training rows")
    labels = names or _class_order(frames["train"]["label"])
    ids = {name: i for i, name in enumerate(labels)}
    for frame in frames.values():
        if frame is not None:
            frame["label"] = frame["label"].map(ids)
    return labels


# --------------------------------------------------------------------------------------------
# GLUE: the hub's "glue" dataset or GLUE's folder layout


def _from_frame(frame: pd.DataFrame) -> Any:
    import datasets

    return datasets.Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)


def _canonical(frame: pd.DataFrame, fields: tuple[str, ...], label: pd.Series,
               regression: bool) -> pd.DataFrame:
    text_b = frame[fields[1]].astype(str) if len(fields) > 1 else None
    return pd.DataFrame({
        "text_a": frame[fields[0]].astype(str),
        "text_b": text_b if text_b is not None else pd.Series([None] * len(frame), dtype=object,
                                                              index=frame.index),
        "label": label.astype(float if regression else int),
    })


def _hub_glue(spec: GluePreset) -> dict[str, Any]:
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
        out[split] = _from_frame(_canonical(frame, spec.hub_fields, frame["label"],
                                            not spec.labels))
    return out


def _read_tsv(path: Path, spec: GluePreset) -> pd.DataFrame:
    import datasets

    if not path.is_file():
        raise DataError(f"{spec.name}: data file not found: {path}")
    # GLUE TSVs have stray quote characters, so quoting must be off. CoLA has no header line.
    kwargs: dict[str, Any] = dict(delimiter="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
    if spec.local_columns is not None:
        kwargs.update(header=None, column_names=list(spec.local_columns))
    try:
        with _quiet_datasets():
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


def _local_label(frame: pd.DataFrame, spec: GluePreset, path: Path) -> pd.Series:
    """The label column as ids: RTE, QNLI and MNLI write class names, the others ids."""
    raw = frame[spec.local_label].astype(str).str.strip()
    if spec.labels and set(raw) <= set(spec.labels):
        return raw.map({name: i for i, name in enumerate(spec.labels)})
    values = pd.to_numeric(raw, errors="coerce")
    if values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0])
        raise DataError(f"{spec.name}: {path} row {row + 1}: label {raw.iloc[row]!r} "
                        f"is not a number" + (f" nor one of {list(spec.labels)}"
                                              if spec.labels else ""))
    if spec.labels and not values.isin(range(len(spec.labels))).all():
        raise DataError(f"{spec.name}: {path} has labels outside 0..{len(spec.labels) - 1}")
    return values


def _local_splits(spec: GluePreset, data_dir: str | None) -> dict[str, Any]:
    root = Path(data_dir or "").expanduser()
    if not root.is_dir():
        raise DataError(f"data folder not found: {root} (data.dir should hold "
                        f"{spec.glue_folder}/train.tsv and {spec.glue_folder}/{spec.dev_file})")
    out = {}
    for split, filename in (("train", "train.tsv"), ("dev", spec.dev_file)):
        path = root / spec.glue_folder / filename
        frame = _read_tsv(path, spec)
        label = _local_label(frame, spec, path)
        out[split] = _from_frame(_canonical(frame, spec.local_fields, label, not spec.labels))
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
