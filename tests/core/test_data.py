from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cofi_sweep.core.config import DataConfig
from cofi_sweep.core.data import load_task
from cofi_sweep.core.tasks import GLUE as PRESETS
from cofi_sweep.core.tasks import DataError, Task, compute_metrics

# rows, label values: the official GLUE sizes (shared/data/glue/README.md)
GLUE = {
    "sst2": (67349, 872, {0, 1}, False),
    "mrpc": (3668, 408, {0, 1}, True),
    "rte": (2490, 277, {0, 1}, True),
    "cola": (8551, 1043, {0, 1}, False),
    "stsb": (5749, 1500, None, True),
}


@pytest.mark.parametrize("task", sorted(GLUE))
def test_local_glue_tasks_load(task: str, glue_dir: Path) -> None:
    n_train, n_dev, labels, pairs = GLUE[task]
    splits = load_task(task, DataConfig(source="local", dir=str(glue_dir))).splits
    assert (len(splits["train"]), len(splits["dev"])) == (n_train, n_dev)
    for split in splits.values():
        assert split.column_names == ["text_a", "text_b", "label"]
        values = split["label"]
        if labels is None:  # STS-B: float scores in [0, 5]
            assert 0.0 <= min(values) and max(values) <= 5.0 and isinstance(values[0], float)
        else:
            assert set(values) == labels
        assert all(isinstance(t, str) and t for t in split["text_a"][:50])
        assert (split["text_b"][0] is not None) == pairs


def test_local_label_counts_match_glue(glue_dir: Path) -> None:
    rte = load_task("rte", DataConfig(source="local", dir=str(glue_dir))).splits
    assert np.bincount(rte["train"]["label"]).tolist() == [1249, 1241]  # entailment first
    cola = load_task("cola", DataConfig(source="local", dir=str(glue_dir))).splits
    assert np.bincount(cola["dev"]["label"]).tolist() == [322, 721]  # header-less, all rows


def test_seeded_subsampling(glue_dir: Path) -> None:
    cfg = DataConfig(source="local", dir=str(glue_dir), max_train_samples=100,
                     max_eval_samples=50, seed=3)
    a, b = load_task("sst2", cfg).splits, load_task("sst2", cfg).splits
    assert len(a["train"]) == 100 and len(a["dev"]) == 50
    assert a["train"]["text_a"] == b["train"]["text_a"]


def test_synthetic_task_is_deterministic_and_balanced() -> None:
    a = load_task("synthetic", DataConfig(source="synthetic", seed=1)).splits
    b = load_task("synthetic", DataConfig(source="synthetic", seed=1)).splits
    c = load_task("synthetic", DataConfig(source="synthetic", seed=2)).splits
    assert a["train"].to_dict() == b["train"].to_dict()
    assert a["train"]["text_a"] != c["train"]["text_a"]
    assert 0.4 < np.mean(a["train"]["label"]) < 0.6


def test_synthetic_labels_follow_negation_and_clause_order() -> None:
    import random

    from cofi_sweep.core.data import synthetic_example

    rng = random.Random(0)
    for _ in range(500):
        text, label = synthetic_example(rng)
        flipped = text.startswith("it is not true that ")
        core = text.removeprefix("it is not true that ")
        if " but " in core:
            clause = core.split(" but ")[1]
        elif " although " in core:
            clause = core.split(" although ")[0]
        else:
            clause = core
        words = clause.split()
        positive = words[-1] in {"good", "great", "wonderful", "brilliant", "charming", "moving",
                                 "funny", "delightful", "excellent", "superb", "clever",
                                 "beautiful"}
        negated = any(w in {"not", "never", "hardly"} for w in words)
        assert label == int((positive != negated) != flipped), text


def test_unknown_task_and_missing_folder_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown task 'sst3'"):
        load_task("sst3", DataConfig(source="local", dir=str(tmp_path)))
    with pytest.raises(DataError, match="data folder not found"):
        load_task("sst2", DataConfig(source="local", dir=str(tmp_path / "nowhere")))
    (tmp_path / "SST-2").mkdir()
    with pytest.raises(DataError, match=r"data file not found: .*SST-2/train.tsv"):
        load_task("sst2", DataConfig(source="local", dir=str(tmp_path)))


def test_wrong_columns_and_bad_labels_name_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "SST-2"
    folder.mkdir()
    (folder / "train.tsv").write_text("text\tlabel\nfine film\t1\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\nfine film\t1\n")
    with pytest.raises(DataError, match=r"train.tsv lacks column\(s\) \['sentence'\]"):
        load_task("sst2", DataConfig(source="local", dir=str(tmp_path)))
    (folder / "train.tsv").write_text("sentence\tlabel\nfine film\tyes\n")
    with pytest.raises(DataError, match=r"train.tsv row 1: label 'yes' is not a number nor"):
        load_task("sst2", DataConfig(source="local", dir=str(tmp_path)))


def test_metrics() -> None:
    logits = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 1])
    m = compute_metrics(PRESETS["mrpc"].task(), logits, labels)
    assert m == {"accuracy": 0.5, "f1": 0.5}
    assert compute_metrics(PRESETS["cola"].task(), logits, labels)["matthews"] == 0.0
    reg = compute_metrics(PRESETS["stsb"].task(), np.array([[1.0], [2.0], [3.0]]),
                          np.array([1.0, 2.5, 2.9]))
    assert reg["spearman"] == pytest.approx(1.0) and 0.9 < reg["pearson"] < 1.0


def test_multiclass_metrics_match_their_definitions() -> None:
    """Macro/micro F1 and Matthews over three classes, against hand counts."""
    task = Task("t", "classification", ("a", "b", "c"),
                ("accuracy", "f1_macro", "f1_micro", "matthews"))
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m = compute_metrics(task, np.eye(3)[pred], labels)
    # per class: a tp1 fp1 fn1 -> 0.5; b tp2 fp1 fn0 -> 0.8; c tp1 fp0 fn1 -> 2/3
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["f1_micro"] == pytest.approx(m["accuracy"]) == pytest.approx(4 / 6)
    # Gorodkin: (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    assert m["matthews"] == pytest.approx((4 * 6 - (2 * 2 + 3 * 2 + 1 * 2))
                                          / np.sqrt((36 - (4 + 9 + 1)) * (36 - 12)))
    perfect = compute_metrics(task, np.eye(3)[labels], labels)
    assert perfect["matthews"] == pytest.approx(1.0) and perfect["f1_macro"] == 1.0
