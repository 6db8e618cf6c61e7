"""Your own data: every file format and a hub-style folder load to the same rows, labels map
deterministically, and every bad-data case ends in one message naming the file, the column and
the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import BAD_DATA_CASES, ROWS, bad_data, files, write_table

from cofi_sweep.core.config import DataConfig
from cofi_sweep.core.data import load_task
from cofi_sweep.core.tasks import DataError


def rows(data) -> dict[str, list]:
    return {split: ds.to_dict() for split, ds in data.splits.items()}


def test_every_format_and_a_hub_folder_load_the_same_rows(tmp_path: Path) -> None:
    train, dev = ROWS.iloc[:6], ROWS.iloc[6:]
    loaded = {suffix: load_task("t", files(tmp_path / suffix[1:], train, dev, suffix))
              for suffix in (".csv", ".tsv", ".json", ".jsonl", ".parquet")}
    # a dataset folder as the hub holds one (train/validation files): load_dataset(folder)
    write_table(train, tmp_path / "hub" / "train.csv")
    write_table(dev, tmp_path / "hub" / "validation.csv")
    loaded["hub"] = load_task("t", DataConfig(source="hub", dataset=str(tmp_path / "hub"),
                                              text_fields=["message"], label_field="category"))
    want = rows(loaded[".csv"])
    assert list(want["train"]["text_a"]) == list(train["message"])
    assert len(want["dev"]["label"]) == 2
    for name, data in loaded.items():
        assert rows(data) == want, name
        assert data.task.labels == ("billing", "bug", "feature"), name  # sorted names
        assert data.task.metrics == ("accuracy", "f1_macro") and data.task.num_labels == 3


def test_labels_map_deterministically_whatever_the_row_order(tmp_path: Path) -> None:
    shuffled = ROWS.sample(frac=1.0, random_state=3)
    a = load_task("t", files(tmp_path / "a", ROWS))
    b = load_task("t", files(tmp_path / "b", shuffled))
    assert a.task.labels == b.task.labels == ("billing", "bug", "feature")
    # integer class names keep their numeric order ("10" after "9"), not the text order
    stars = ROWS.assign(category=[9, 10, 1, 9, 10, 1, 9, 10])
    c = load_task("t", files(tmp_path / "c", stars, stars.iloc[:3]))
    assert c.task.labels == ("1", "9", "10") and c.task.problem == "classification"
    assert list(c.splits["dev"]["label"]) == [1, 2, 0]  # 9, 10, 1 as ids in that order


def test_a_hub_datasets_class_order_is_kept(tmp_path: Path) -> None:
    import datasets

    names = ["World", "Sports", "Business"]  # not sorted: the dataset's own order stands
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=names)})
    table = {"text": ["a", "b", "c", "d", "e", "f"], "label": [0, 1, 2, 0, 1, 2]}
    folder = tmp_path / "news"
    folder.mkdir()
    datasets.Dataset.from_dict(table, features=features).to_parquet(folder / "train.parquet")
    datasets.Dataset.from_dict(table, features=features).to_parquet(folder / "test.parquet")
    data = load_task("news", DataConfig(source="hub", dataset=str(folder),
                                        splits={"validation": "test"}))
    assert data.task.labels == tuple(names)
    assert list(data.splits["dev"]["label"]) == table["label"]  # ids unchanged


def test_regression_and_a_carved_validation_split(tmp_path: Path) -> None:
    scores = ROWS.assign(category=[0.5, 1.25, 3.0, 4.5, 2.2, 0.1, 5.0, 3.3])
    data = load_task("t", files(tmp_path, scores, validation_fraction=0.25, seed=1))
    assert data.task.problem == "regression" and data.task.metrics == ("pearson", "spearman")
    assert len(data.splits["dev"]) == 2 and len(data.splits["train"]) == 6
    labels = list(data.splits["train"]["label"]) + list(data.splits["dev"]["label"])
    assert sorted(labels) == sorted(scores["category"])
    assert any("regression, inferred" in n for n in data.notes)
    assert any("2 rows (25%)" in n and "seed 1" in n for n in data.notes)
    again = load_task("t", files(tmp_path, scores, validation_fraction=0.25, seed=1))
    assert rows(again) == rows(data)


def test_rows_with_an_empty_text_or_label_are_dropped_and_counted(tmp_path: Path) -> None:
    holes = ROWS.copy()
    holes.loc[1, "message"] = "   "
    holes.loc[4, "category"] = None
    data = load_task("t", files(tmp_path, holes, ROWS.iloc[:3]))
    assert len(data.splits["train"]) == 6
    assert any("2 of 8 rows dropped (an empty text or label)" in n for n in data.notes)


@pytest.mark.parametrize("case", range(BAD_DATA_CASES))
def test_bad_data_ends_in_one_message(tmp_path: Path, case: int) -> None:
    cases = bad_data(tmp_path)
    assert len(cases) == BAD_DATA_CASES
    what, cfg, words = cases[case]
    with pytest.raises(DataError) as info:
        load_task("t", cfg)
    message = str(info.value)
    assert words in message and "\n" not in message, (what, message)
