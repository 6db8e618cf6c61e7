"""What a task is -- classification or regression, its label names, its metrics -- and the
metrics themselves.

A :class:`Task` is resolved from the data by :func:`cofi_sweep.core.data.load_task`: a user's
dataset names its classes in its training split; the GLUE tasks are presets (:data:`GLUE`) whose
files, columns and label names are known; ``synthetic`` is the offline task of the quickstart
and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from cofi_sweep.core.errors import CofiSweepError


class DataError(CofiSweepError):
    """The task's data cannot be found or does not have the expected shape."""


@dataclass(frozen=True)
class Task:
    """A task as the models see it."""

    name: str  # as the user wrote it (job.task)
    problem: str  # "classification" or "regression"
    labels: tuple[str, ...] = ()  # class names in id order; () for regression
    metrics: tuple[str, ...] = ("accuracy",)  # by name (METRICS); the first one selects

    @property
    def is_regression(self) -> bool:
        return self.problem == "regression"

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def main_metric(self) -> str:
        """The metric that chooses checkpoints, ranks trials and draws frontiers."""
        return self.metrics[0]


# --------------------------------------------------------------------------------------------
# Presets: GLUE and the synthetic task


@dataclass(frozen=True)
class GluePreset:
    """A GLUE task: its label names and metrics, and where its columns are on the hub
    (``datasets.load_dataset("glue", name)``) and in GLUE's own folder layout."""

    name: str
    labels: tuple[str, ...]  # the hub's class names in id order; () = regression
    metrics: tuple[str, ...]
    hub_fields: tuple[str, ...]  # text fields in the hub's "glue" config
    hub_eval_split: str
    glue_folder: str  # folder name in GLUE's local layout
    dev_file: str
    local_fields: tuple[str, ...]  # text columns in the TSV
    local_label: str  # label column in the TSV (ids, or the class names themselves)
    local_columns: tuple[str, ...] | None = None  # for header-less TSVs (CoLA)

    def task(self, metrics: tuple[str, ...] | None = None) -> Task:
        return Task(self.name, "regression" if not self.labels else "classification",
                    self.labels, tuple(metrics or self.metrics))


GLUE: dict[str, GluePreset] = {
    p.name: p
    for p in [
        GluePreset("sst2", ("negative", "positive"), ("accuracy",), ("sentence",),
                   "validation", "SST-2", "dev.tsv", ("sentence",), "label"),
        GluePreset("mrpc", ("not_equivalent", "equivalent"), ("accuracy", "f1"),
                   ("sentence1", "sentence2"), "validation", "MRPC", "dev.tsv",
                   ("#1 String", "#2 String"), "Quality"),
        GluePreset("rte", ("entailment", "not_entailment"), ("accuracy",),
                   ("sentence1", "sentence2"), "validation", "RTE", "dev.tsv",
                   ("sentence1", "sentence2"), "label"),
        GluePreset("cola", ("unacceptable", "acceptable"), ("matthews", "accuracy"),
                   ("sentence",), "validation", "CoLA", "dev.tsv", ("sentence",), "label",
                   local_columns=("source", "label", "author_mark", "sentence")),
        GluePreset("stsb", (), ("pearson", "spearman"), ("sentence1", "sentence2"),
                   "validation", "STS-B", "dev.tsv", ("sentence1", "sentence2"), "score"),
        GluePreset("qnli", ("entailment", "not_entailment"), ("accuracy",),
                   ("question", "sentence"), "validation", "QNLI", "dev.tsv",
                   ("question", "sentence"), "label"),
        GluePreset("mnli", ("entailment", "neutral", "contradiction"), ("accuracy",),
                   ("premise", "hypothesis"), "validation_matched", "MNLI", "dev_matched.tsv",
                   ("sentence1", "sentence2"), "gold_label"),
        GluePreset("qqp", ("not_duplicate", "duplicate"), ("accuracy", "f1"),
                   ("question1", "question2"), "validation", "QQP", "dev.tsv",
                   ("question1", "question2"), "is_duplicate"),
    ]
}

# the offline task: binary sentiment whose label needs negation scope and clause order
SYNTHETIC = Task("synthetic", "classification", ("negative", "positive"), ("accuracy",))


# --------------------------------------------------------------------------------------------
# Metrics, by name: (the problem they apply to, the function of predictions and labels)


def _confusion(pred: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Counts (true class, predicted class)."""
    return np.bincount(labels * k + pred, minlength=k * k).reshape(k, k).astype(float)


def _f1_per_class(c: np.ndarray) -> np.ndarray:
    tp = np.diag(c)
    denom = c.sum(0) + c.sum(1)  # predicted + true = 2tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def _matthews(c: np.ndarray) -> float:
    """Matthews correlation of a k-class confusion matrix (Gorodkin's generalisation; the
    usual binary MCC for k = 2)."""
    s, correct = c.sum(), np.trace(c)
    true, pred = c.sum(1), c.sum(0)
    denom = np.sqrt((s * s - (pred * pred).sum()) * (s * s - (true * true).sum()))
    return float((correct * s - (pred * true).sum()) / denom) if denom else 0.0


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank().to_numpy()


Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (pred, labels, confusion)
METRICS: dict[str, tuple[str, Metric]] = {
    "accuracy": ("classification", lambda p, y, c: float((p == y).mean())),
    "f1": ("classification", lambda p, y, c: float(_f1_per_class(c)[1])),  # class 1 positive
    "f1_macro": ("classification", lambda p, y, c: float(_f1_per_class(c).mean())),
    "f1_micro": ("classification", lambda p, y, c: float(np.trace(c) / c.sum())),
    "matthews": ("classification", lambda p, y, c: _matthews(c)),
    "pearson": ("regression", lambda p, y, c: _pearson(p, y)),
    "spearman": ("regression", lambda p, y, c: _pearson(_ranks(p), _ranks(y))),
}


def default_metrics(problem: str, num_labels: int) -> tuple[str, ...]:
    """accuracy (and f1 of class 1, or macro F1 over more classes); pearson, spearman."""
    if problem == "regression":
        return ("pearson", "spearman")
    return ("accuracy", "f1") if num_labels == 2 else ("accuracy", "f1_macro")


def metric_problems(metrics: tuple[str, ...], problem: str, num_labels: int) -> list[str]:
    """Why ``metrics`` do not fit the task (an unknown name, another problem's metric, binary F1
    over more than two classes)."""
    problems = []
    for name in metrics:
        if name not in METRICS:
            problems.append(f"unknown metric {name!r}; known: {sorted(METRICS)}")
        elif METRICS[name][0] != problem:
            problems.append(f"metric {name!r} is for {METRICS[name][0]}, but the task is "
                            f"{problem}; use {list(default_metrics(problem, num_labels))}")
        elif name == "f1" and num_labels != 2:
            problems.append(f"metric 'f1' is binary F1 of class 1, but the task has {num_labels} "
                            "classes: use f1_macro or f1_micro")
    return problems


def compute_metrics(task: Task, predictions: np.ndarray, labels: np.ndarray) -> dict:
    """The task's metrics from raw model outputs (logits, or scores for regression)."""
    if task.is_regression:
        pred, labels, confusion = predictions.reshape(-1).astype(float), labels.astype(float), None
    else:
        pred, labels = predictions.argmax(-1), labels.astype(int)
        confusion = _confusion(pred, labels, task.num_labels)
    return {name: METRICS[name][1](pred, labels, confusion) for name in task.metrics}
