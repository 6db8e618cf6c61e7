"""Every user mistake is caught before anything starts: one message naming the key and the fix,
exit code 2, no traceback -- through both CLIs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cofi_sweep.job.cli import main as prune_main
from cofi_sweep.sweep.cli import main as run_main

GOOD_JOB = {"model": "tiny-bert", "task": "synthetic", "data": {"source": "synthetic"}}


def broken(tmp_path: Path) -> list[tuple[str, dict, str]]:
    (tmp_path / "not_a_model").mkdir(exist_ok=True)
    (tmp_path / "glue" / "SST-2").mkdir(parents=True, exist_ok=True)
    (tmp_path / "glue" / "SST-2" / "train.tsv").write_text("sentence\tlabel\nfine\t1\n")
    (tmp_path / "read_only").mkdir(exist_ok=True)
    (tmp_path / "read_only" / "storage").write_text("a file where a folder should be")
    return [  # (what, job changes, words the message must contain)
        ("a folder that holds no model", {"model": str(tmp_path / "not_a_model")},
         "model: model folder"),
        ("a hub name not available offline", {"model": "nobody/no-such-model-xyz"},
         "hub model available here"),
        ("a data folder that does not exist",
         {"task": "sst2", "data": {"source": "local", "dir": str(tmp_path / "missing")}},
         "data: data folder not found"),
        ("a data folder without the dev file",
         {"task": "sst2", "data": {"source": "local", "dir": str(tmp_path / "glue")}},
         "dev.tsv"),
        ("a pretrained student that is not there",
         {"method": "distill", "baseline": {"pretrained": str(tmp_path / "not_a_model")}},
         "baseline.pretrained"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_broken_inputs_end_in_one_message_through_both_clis(tmp_path: Path, case: int,
                                                            capsys: pytest.CaptureFixture,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    what, changes, words = broken(tmp_path)[case]
    job = {**GOOD_JOB, **changes}
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({**job, "output_dir": str(tmp_path / "out")}))
    assert prune_main(["--config", str(job_file)]) == 2, what
    err = capsys.readouterr().err
    assert "error: " in err and words in err and "Traceback" not in err, (what, err)
    if job.get("method") == "distill":  # in a sweep a baseline is declared under baselines:
        job = GOOD_JOB
        space = {"baselines": {"student": changes["baseline"]}}
        words = "baselines.student.pretrained"
    else:
        space = {}
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({
        "name": "t", "storage_path": str(tmp_path / "sweeps"), "job": job,
        "grid": {"target_sparsity": [0.5], "ablations": {"full": {}}}, **space}))
    assert run_main(["--space", str(space_file), "--dry-run"]) == 2, what
    err = capsys.readouterr().err
    assert "error: " in err and words in err and "Traceback" not in err, (what, err)
    assert not (tmp_path / "sweeps" / "t").exists()  # nothing started


def test_an_unwritable_storage_path_is_caught_before_ray(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({
        "name": "t", "storage_path": str(blocker / "sweeps"), "job": GOOD_JOB,
        "grid": {"target_sparsity": [0.5], "ablations": {"full": {}}}}))
    assert run_main(["--space", str(space_file), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "storage_path: cannot write to" in err and "Traceback" not in err
