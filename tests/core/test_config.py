from __future__ import annotations

from pathlib import Path

import pytest

from cofi_sweep.core.config import JobConfig, from_dict, load_job_config
from cofi_sweep.core.errors import ConfigError


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        from_dict(JobConfig, raw)
    return info.value.problems


def test_defaults_are_valid() -> None:
    job = from_dict(JobConfig, {})
    assert job.cofi.target_sparsity == 0.5 and job.data.source == "hub"


def test_your_own_data_is_valid_under_any_task_name() -> None:
    hub = from_dict(JobConfig, {"task": "news", "data": {"source": "hub", "dataset": "ag_news",
                                                         "splits": {"validation": "test"}}})
    assert hub.data.user_data and hub.task == "news"
    files = from_dict(JobConfig, {"task": "tickets", "data": {
        "source": "files", "train": "t.csv", "validation": "d.jsonl", "text_fields": ["message"],
        "label_field": "category", "problem": "classification",
        "metrics": ["accuracy", "f1_macro"]}})
    assert files.data.user_data and files.data.metrics == ["accuracy", "f1_macro"]


def test_unknown_key_names_path_and_suggests() -> None:
    (p,) = problems({"cofi": {"target_sparsty": 0.9}})
    assert p.startswith("cofi.target_sparsty: unknown key") and "'target_sparsity'" in p


def test_every_problem_is_collected() -> None:
    found = problems({"cofi": {"target_sparsity": 1.2, "batch_size": "big"},
                      "data": {"source": "web"}, "extra": 1})
    joined = "\n".join(found)
    assert len(found) == 4
    for key in ("cofi.target_sparsity", "cofi.batch_size", "data.source", "extra"):
        assert key in joined


@pytest.mark.parametrize("raw, key, words", [
    ({"cofi": {"families": ["heads"]}}, "cofi.families", "did you mean 'head'"),
    ({"cofi": {"families": []}}, "cofi.families", "at least one mask family"),
    ({"cofi": {"distill": "dynamc"}}, "cofi.distill", "must be one of"),
    ({"cofi": {"sparsity_warmup_epochs": 20, "prune_epochs": 10}}, "cofi.sparsity_warmup",
     "must be <= prune_epochs"),
    ({"data": {"source": "local"}}, "data.dir", "needs dir"),
    ({"task": "sst3"}, "task", "did you mean 'sst2'"),
    ({"task": "synthetic"}, "data.source", "synthetic task and source: synthetic go together"),
    ({"task": "tickets"}, "task", "for your own data set data.source: files"),
    ({"task": "my tickets", "data": {"source": "files", "train": "t.csv"}}, "task",
     "it names folders"),
    ({"data": {"source": "files"}}, "data.train", "source=files needs train"),
    ({"data": {"source": "files", "train": "t.xlsx"}}, "data.train", "none of .csv"),
    ({"data": {"train": "t.csv"}}, "data.train", "with source: files"),
    ({"data": {"source": "files", "train": "t.csv", "metrics": ["acuracy"]}}, "data.metrics",
     "did you mean 'accuracy'"),
    ({"data": {"source": "files", "train": "t.csv", "text_fields": ["a", "b", "c"]}},
     "data.text_fields", "one column, or two"),
    ({"data": {"source": "hub", "dataset": "x", "splits": {"dev": "test"}}}, "data.splits",
     "keys are train and validation"),
    ({"data": {"text_fields": ["sentence"]}}, "data.text_fields", "describe your own data"),
    ({"cofi": {"freeze_embeddings": "yes"}}, "cofi.freeze_embeddings", "true or false"),
    ({"data": {"max_seq_length": 4}}, "data.max_seq_length", "[8, 512]"),
    ({"cofi": "fast"}, "cofi", "must be a mapping"),
])
def test_specific_errors(raw: dict, key: str, words: str) -> None:
    found = problems(raw)
    assert any(p.startswith(key) and words in p for p in found), found


def test_yaml_scientific_notation_without_dot_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("teacher:\n  learning_rate: 5e-5\n")  # PyYAML reads this as a string
    assert load_job_config(path).teacher.learning_rate == 5e-5


def test_overrides_and_missing_file(tmp_path: Path) -> None:
    job = load_job_config(None, ["cofi.target_sparsity=0.9", "data.max_seq_length=64"])
    assert job.cofi.target_sparsity == 0.9 and job.data.max_seq_length == 64
    with pytest.raises(ConfigError, match="file not found"):
        load_job_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_job_config(None, ["cofi.target_sparsity"])
