"""Your own data end to end: bad data stops all three commands before anything trains, and a
multi-class job with string labels gives an export whose pipeline answers with those labels."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import BAD_DATA_CASES, bad_data, write_table
from transformers import BertConfig

from cofi_sweep.core.config import JobConfig, from_dict
from cofi_sweep.core.data import synthetic_example
from cofi_sweep.core.tasks import Task
from cofi_sweep.core.teacher import label_mismatch
from cofi_sweep.job.cli import main as prune_main
from cofi_sweep.job.teacher_cli import main as teacher_main
from cofi_sweep.sweep.cli import main as run_main


@pytest.mark.parametrize("case", range(BAD_DATA_CASES))
def test_bad_data_stops_every_command_with_one_message(tmp_path: Path, case: int,
                                                      capsys: pytest.CaptureFixture) -> None:
    what, data, words = bad_data(tmp_path)[case]
    job = {"model": "tiny-bert", "task": "t", "output_dir": str(tmp_path / "out"),
           "data": {k: v for k, v in dataclasses.asdict(data).items() if v is not None}}
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job))
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({
        "name": "t", "storage_path": str(tmp_path / "sweeps"), "job": job,
        "grid": {"target_sparsity": [0.5], "ablations": {"full": {}}}}))
    for command, argv in ((prune_main, ["--config", str(job_file)]),
                          (teacher_main, ["--config", str(job_file)]),
                          (run_main, ["--space", str(space_file)])):
        assert command(argv) == 2, (what, command.__module__)
        err = capsys.readouterr().err
        assert "error: " in err and words in err and "Traceback" not in err, (what, err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "sweeps" / "t").exists()


def test_a_given_teachers_labels_must_match_the_data() -> None:
    task = Task("t", "classification", ("billing", "bug", "feature"))
    named = BertConfig(num_labels=3, id2label={0: "billing", 1: "bug", 2: "feature"})
    assert label_mismatch(named, task) is None
    assert label_mismatch(BertConfig(num_labels=3), task) is None  # LABEL_i: names unknown
    wrong = BertConfig(num_labels=3, id2label={0: "bug", 1: "billing", 2: "feature"})
    assert "names its labels ['bug', 'billing', 'feature'] (in id order), but the data's are " \
           "['billing', 'bug', 'feature']" in label_mismatch(wrong, task)
    assert "has 2 output label(s), but task 't' needs 3" in label_mismatch(
        BertConfig(num_labels=2), task)


# Run where importing cofi_sweep fails: transformers alone answers with the label names.
PIPELINE = """
import json, sys
sys.modules['cofi_sweep'] = None
from transformers import pipeline
classify = pipeline('text-classification', model=sys.argv[1], trust_remote_code=True)
print('RESULT ' + json.dumps(classify(['the movie was good but the ending was dull',
                                       'the plot was not bad'])))
"""


def clause_kind(rng: random.Random) -> tuple[str, str]:
    """A sentence of the synthetic task's words, labelled by how its clauses join."""
    text, _ = synthetic_example(rng)
    kind = "contrast" if " but " in text else "concession" if " although " in text else "plain"
    return text, kind


def test_string_labels_flow_to_an_export_that_pipeline_names(tmp_path: Path) -> None:
    rng = random.Random(0)
    frame = pd.DataFrame([clause_kind(rng) for _ in range(360)], columns=["review", "joint"])
    train = write_table(frame.iloc[:300], tmp_path / "data" / "train.jsonl")
    dev = write_table(frame.iloc[300:], tmp_path / "data" / "dev.jsonl")
    job = {
        "model": "tiny-bert", "task": "joints", "output_dir": str(tmp_path / "out"),
        "data": {"source": "files", "train": str(train), "validation": str(dev),
                 "text_fields": ["review"], "label_field": "joint", "max_seq_length": 32},
        "teacher": {"epochs": 2, "learning_rate": 1e-3,
                    "cache_dir": str(tmp_path / "teachers")},
        "cofi": {"target_sparsity": 0.5, "distill_epochs": 0.25, "prune_epochs": 3,
                 "sparsity_warmup_epochs": 1, "finetune_epochs": 0.5, "batch_size": 16,
                 "learning_rate": 1e-4, "reg_learning_rate": 0.1, "eval_every": 5}}
    assert from_dict(JobConfig, job).data.user_data  # valid as written
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job))
    assert prune_main(["--config", str(job_file)]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    labels = ["concession", "contrast", "plain"]  # sorted: the deterministic order
    assert result["task"] == {"name": "joints", "problem": "classification", "labels": labels,
                              "metrics": ["accuracy", "f1_macro"]}
    assert set(result["compact_metrics"]) == {"accuracy", "f1_macro"}

    from cofi_sweep.deploy.export import export_hf

    export_hf(result["compact_dir"], tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["id2label"] == {"0": "concession", "1": "contrast", "2": "plain"}
    done = subprocess.run([sys.executable, "-c", PIPELINE, str(tmp_path / "hf")],
                          capture_output=True, text=True, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout.rpartition("RESULT ")[2])
    assert len(answers) == 2 and all(a["label"] in labels for a in answers), answers
