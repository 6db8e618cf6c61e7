"""Experiment storage through pyarrow.fs: folders and URIs (``file://`` stands in for a bucket:
it goes through the same URI code path as s3:// or gs://, offline)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from analysis import storage
from analysis.results import collect, experiment_from_args


def test_write_upload_and_exists_through_a_uri(tmp_path: Path) -> None:
    bucket = f"file://{tmp_path}/bucket"
    experiment = storage.join(bucket, "sweeps", "exp")
    assert experiment == f"file://{tmp_path}/bucket/sweeps/exp"
    assert not storage.exists(experiment)
    storage.write_text(storage.join(experiment, "space.json"), "{}")
    assert storage.exists(experiment)
    assert storage.read_text(storage.join(experiment, "space.json")) == "{}"
    local = tmp_path / "job"
    (local / "compact").mkdir(parents=True)
    (local / "compact" / "model.safetensors").write_bytes(b"weights")
    (local / "result.json").write_text("{}")
    storage.upload(local, storage.join(experiment, "trials", "t1", "job"))
    stored = tmp_path / "bucket" / "sweeps" / "exp" / "trials" / "t1" / "job"
    assert (stored / "compact" / "model.safetensors").read_bytes() == b"weights"
    storage.upload(local / "result.json", storage.join(experiment, "result_copy.json"))
    assert (stored.parents[2] / "result_copy.json").read_text() == "{}"
    storage.upload(local, str(local))  # onto itself: a no-op, not an error


def test_local_copy_mirrors_a_uri_without_checkpoints_and_refreshes(tmp_path: Path) -> None:
    remote = tmp_path / "bucket" / "exp"
    (remote / "trial_a" / "checkpoint_000001").mkdir(parents=True)
    (remote / "trial_a" / "checkpoint_000001" / "state.pt").write_bytes(b"x" * 1000)
    (remote / "trial_a" / "result.json").write_text('{"score": 1}\n')
    uri = f"file://{remote}"
    mirror = storage.local_copy(uri)
    assert mirror == storage.mirror_dir(uri)
    assert mirror.is_relative_to(Path(os.environ["COFI_SWEEP_CACHE"]))
    assert (mirror / "trial_a" / "result.json").read_text() == '{"score": 1}\n'
    assert not (mirror / "trial_a" / "checkpoint_000001").exists()
    (remote / "trial_a" / "result.json").write_text('{"score": 1}\n{"score": 2}\n')
    storage.local_copy(uri)  # a running experiment grows: the next read sees it
    assert (mirror / "trial_a" / "result.json").read_text().count("score") == 2
    assert storage.local_copy(str(remote)) == remote.resolve()  # a folder is its own copy
    with pytest.raises(FileNotFoundError, match="no experiment"):
        storage.local_copy(f"file://{tmp_path}/nothing")


def test_results_table_reads_a_uri_experiment_from_its_mirror(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture
                                                              ) -> None:
    remote = tmp_path / "bucket" / "exp"
    uri = f"file://{remote}"
    trial = remote / "train_cofi_abc_00000"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"cell_id": "t0.5/full",
                                                   "target_sparsity": 0.5, "ablation": "full"}))
    compact_uri = f"{uri}/trials/abc_00000/job/compact"
    (trial / "result.json").write_text(json.dumps(
        {"trial_id": "abc_00000", "done_job": True, "score": 0.9,
         "compact_dir": compact_uri}) + "\n")
    (remote / "trials" / "abc_00000" / "job" / "compact").mkdir(parents=True)
    (remote / "trials" / "abc_00000" / "job" / "compact" / "cofi_config.json").write_text("{}")
    (remote / "latency.json").write_text(json.dumps({"teacher": 2.0,
                                                     "trials": {"abc_00000": 0.5}}))
    local = experiment_from_args([uri], "test", None)
    assert local == storage.mirror_dir(uri) and "read file://" in capsys.readouterr().out
    row = collect(local).iloc[0]
    assert row["status"] == "finished" and row["speedup"] == 4.0
    assert row["compact_uri"] == compact_uri  # where it is stored ...
    assert Path(row["compact_dir"]).is_relative_to(local)  # ... and where it is readable here
    assert experiment_from_args([f"file://{tmp_path}/missing"], "test", None) is None
    assert "cannot read an experiment" in capsys.readouterr().err


def test_download_is_whole_and_the_mirror_skips_the_teacher_copy(tmp_path: Path) -> None:
    remote = tmp_path / "bucket" / "exp"
    (remote / "teacher").mkdir(parents=True)
    (remote / "teacher" / "model.safetensors").write_bytes(b"w" * 100)
    (remote / "space.json").write_text("{}")
    uri = f"file://{remote}"
    local = storage.download(storage.join(uri, "teacher"), tmp_path / "node" / "teacher")
    assert (local / "model.safetensors").read_bytes() == b"w" * 100
    assert not (tmp_path / "node" / "teacher.partial").exists()
    mirror = storage.local_copy(uri)
    assert (mirror / "space.json").is_file() and not (mirror / "teacher").exists()


def test_a_node_without_the_drivers_cache_gets_the_stored_teacher(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cofi_sweep.core.teacher import TEACHER_FILE
    from cofi_sweep.sweep.teacher_store import local_teacher, store_teacher

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "node_tmp"))  # the node's local disk

    cache = tmp_path / "driver_cache" / "sst2-minilm-abc"
    cache.mkdir(parents=True)
    (cache / TEACHER_FILE).write_text("{}")
    (cache / "model.safetensors").write_bytes(b"teacher")
    folder = tmp_path / "shared" / "exp"
    uri = f"file://{tmp_path}/bucket/exp"
    for experiment in (str(folder), uri):  # as the driver stores it for other nodes
        store_teacher(experiment, cache)
    assert local_teacher(str(cache), uri) == str(cache)  # this node sees the driver's cache
    missing = str(tmp_path / "elsewhere" / "sst2-minilm-abc")
    assert local_teacher(missing, str(folder)) == str(folder / "teacher" / cache.name)
    fetched = Path(local_teacher(missing, uri))  # a URI: downloaded once per node
    assert fetched.is_relative_to(tmp_path / "node_tmp")
    assert (fetched / "model.safetensors").read_bytes() == b"teacher"
    assert local_teacher(missing, uri) == str(fetched)


def test_a_driver_resuming_elsewhere_takes_the_stored_teacher(tmp_path: Path) -> None:
    from cofi_sweep.core.config import JobConfig, from_dict
    from cofi_sweep.core.teacher import TEACHER_FILE, teacher_folder
    from cofi_sweep.sweep.teacher_store import fetch_teacher

    settings = {"model": "tiny-bert", "task": "synthetic", "data": {"source": "synthetic"},
                "teacher": {"cache_dir": str(tmp_path / "new_machine")}}
    job = from_dict(JobConfig, settings)
    uri = f"file://{tmp_path}/bucket/exp"
    stored = tmp_path / "bucket" / "exp" / "teacher" / teacher_folder(job).name
    stored.mkdir(parents=True)
    (stored / TEACHER_FILE).write_text("{}")
    fetch_teacher(uri, teacher_folder(job))
    assert not (teacher_folder(job) / TEACHER_FILE).exists()  # not marked complete: ignored
    (stored / "complete").write_text("")
    fetch_teacher(uri, teacher_folder(job))
    assert (teacher_folder(job) / TEACHER_FILE).is_file()  # get_teacher now hits the cache
    other = from_dict(JobConfig, {**settings, "teacher": {**settings["teacher"], "seed": 1}})
    fetch_teacher(uri, teacher_folder(other))  # other settings: a different teacher, not taken
    assert not (teacher_folder(other) / TEACHER_FILE).exists()
