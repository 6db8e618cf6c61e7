"""What a task is -- its text fields, label space and metrics -- and the metrics themselves.

The GLUE tasks are presets; ``synthetic`` is the offline task the quickstart and the tests use.
Loading a task's data: :mod:`cofi_sweep.core.data`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cofi_sweep.core.errors import CofiSweepError


class DataError(CofiSweepError):
    """The task's data cannot be found or does not have the expected shape."""


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its fields, label space, metrics, and where its files live."""

    name: str
    num_labels: int  # 1 = regression
    metrics: tuple[str, ...]
    main_metric: str  # the metric model selection and frontiers use
    hub_fields: tuple[str, ...]  # text fields in the hub's "glue" config
    hub_eval_split: str
    glue_folder: str  # folder name in GLUE's local layout
    dev_file: str
    local_fields: tuple[str, ...]  # text columns in the TSV
    local_label: str  # label column in the TSV
    label_names: tuple[str, ...] = ()  # text labels in the TSV, in the hub's id order
    local_columns: tuple[str, ...] | None = None  # for header-less TSVs (CoLA)

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec("sst2", 2, ("accuracy",), "accuracy", ("sentence",), "validation", "SST-2",
                 "dev.tsv", ("sentence",), "label"),
        TaskSpec("mrpc", 2, ("accuracy", "f1"), "accuracy", ("sentence1", "sentence2"),
                 "validation", "MRPC", "dev.tsv", ("#1 String", "#2 String"), "Quality"),
        TaskSpec("rte", 2, ("accuracy",), "accuracy", ("sentence1", "sentence2"), "validation",
                 "RTE", "dev.tsv", ("sentence1", "sentence2"), "label",
                 label_names=("entailment", "not_entailment")),
        TaskSpec("cola", 2, ("matthews", "accuracy"), "matthews", ("sentence",), "validation",
                 "CoLA", "dev.tsv", ("sentence",), "label",
                 local_columns=("source", "label", "author_mark", "sentence")),
        TaskSpec("stsb", 1, ("pearson", "spearman"), "pearson", ("sentence1", "sentence2"),
                 "validation", "STS-B", "dev.tsv", ("sentence1", "sentence2"), "score"),
        TaskSpec("qnli", 2, ("accuracy",), "accuracy", ("question", "sentence"), "validation",
                 "QNLI", "dev.tsv", ("question", "sentence"), "label",
                 label_names=("entailment", "not_entailment")),
        TaskSpec("mnli", 3, ("accuracy",), "accuracy", ("premise", "hypothesis"),
                 "validation_matched", "MNLI", "dev_matched.tsv", ("sentence1", "sentence2"),
                 "gold_label", label_names=("entailment", "neutral", "contradiction")),
        TaskSpec("qqp", 2, ("accuracy", "f1"), "accuracy", ("question1", "question2"),
                 "validation", "QQP", "dev.tsv", ("question1", "question2"), "is_duplicate"),
    ]
}

# The offline task: binary sentiment whose label needs negation scope and clause order.
SYNTHETIC_TASKS: dict[str, TaskSpec] = {
    "synthetic": TaskSpec("synthetic", 2, ("accuracy",), "accuracy", (), "", "", "", (), ""),
}


def get_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` of ``name``; raises :class:`DataError` for an unknown task."""
    spec = TASKS.get(name) or SYNTHETIC_TASKS.get(name)
    if spec is None:
        known = sorted(TASKS) + sorted(SYNTHETIC_TASKS)
        raise DataError(f"unknown task {name!r}; known tasks: {known}")
    return spec


def compute_metrics(task: TaskSpec, predictions: np.ndarray, labels: np.ndarray) -> dict:
    """The task's metrics from raw model outputs (logits, or scores for regression)."""
    out: dict[str, float] = {}
    if task.is_regression:
        scores = predictions.reshape(-1).astype(float)
        labels = labels.astype(float)
        out["pearson"] = _pearson(scores, labels)
        out["spearman"] = _pearson(pd.Series(scores).rank().to_numpy(),
                                   pd.Series(labels).rank().to_numpy())
        return out
    pred = predictions.argmax(-1)
    labels = labels.astype(int)
    out["accuracy"] = float((pred == labels).mean())
    if "f1" in task.metrics:
        tp = float(((pred == 1) & (labels == 1)).sum())
        fp = float(((pred == 1) & (labels == 0)).sum())
        fn = float(((pred == 0) & (labels == 1)).sum())
        out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    if "matthews" in task.metrics:
        out["matthews"] = _matthews(pred, labels)
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _matthews(pred: np.ndarray, labels: np.ndarray) -> float:
    tp = float(((pred == 1) & (labels == 1)).sum())
    tn = float(((pred == 0) & (labels == 0)).sum())
    fp = float(((pred == 1) & (labels == 0)).sum())
    fn = float(((pred == 0) & (labels == 1)).sum())
    denom = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (tp * tn - fp * fn) / denom if denom else 0.0
