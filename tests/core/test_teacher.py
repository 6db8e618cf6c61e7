from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from cofi_sweep.core.config import JobConfig, from_dict
from cofi_sweep.core.teacher import get_teacher, teacher_folder


def tiny_job(cache: Path, **teacher: object) -> JobConfig:
    return from_dict(JobConfig, {
        "model": "tiny-bert", "task": "synthetic",
        "data": {"source": "synthetic", "synthetic_train_size": 200, "synthetic_eval_size": 50,
                 "max_seq_length": 32},
        "teacher": {"epochs": 1, "learning_rate": 1e-3, "cache_dir": str(cache), **teacher}})


def test_second_request_hits_the_cache(tmp_path: Path) -> None:
    first = get_teacher(tiny_job(tmp_path), progress=False)
    start = time.time()
    second = get_teacher(tiny_job(tmp_path), progress=False)
    assert not first.cached and second.cached and second.path == first.path
    assert second.metrics == first.metrics and time.time() - start < 2.0
    # anything that changes the teacher changes the key
    third = get_teacher(tiny_job(tmp_path, seed=1), progress=False)
    assert not third.cached and third.path != first.path
    assert third.load().structure() == first.load().structure()


def test_one_data_folder_is_one_teacher_however_spelled(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # `--data-dir ../glue` and the absolute path of the same folder must find the same cached
    # teacher; the same relative spelling from another working directory must not
    (tmp_path / "glue").mkdir()
    (tmp_path / "work" / "deeper").mkdir(parents=True)
    job = tiny_job(tmp_path / "cache")
    job.data.source = "local"
    monkeypatch.chdir(tmp_path / "work")
    job.data.dir = "../glue"
    relative = teacher_folder(job)
    job.data.dir = str(tmp_path / "glue")
    assert teacher_folder(job) == relative
    job.data.dir = "../glue"
    monkeypatch.chdir(tmp_path / "work" / "deeper")  # ../glue is work/glue now
    assert teacher_folder(job) != relative


def _ask(cache: str, queue: mp.Queue) -> None:
    import torch

    torch.set_num_threads(1)
    queue.put(get_teacher(tiny_job(Path(cache)), progress=False).cached)


def test_concurrent_requests_train_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ask, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert sorted(queue.get(timeout=5) for _ in procs) == [False, True]
    assert len([d for d in tmp_path.iterdir() if d.is_dir()]) == 1


def test_default_cache_follows_cofi_sweep_cache(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COFI_SWEEP_CACHE", str(tmp_path / "cache"))
    job = tiny_job(tmp_path)
    job.teacher.cache_dir = None  # the default: one setting moves every cache
    teacher = get_teacher(job, progress=False)
    assert Path(teacher.path).is_relative_to(tmp_path / "cache" / "teachers")


def test_a_given_fine_tuned_teacher_is_measured_not_trained(tmp_path: Path) -> None:
    import json
    import shutil

    from cofi_sweep.core.errors import ConfigError
    from cofi_sweep.deploy.export import export_hf

    trained = get_teacher(tiny_job(tmp_path / "a"), progress=False)
    export_hf(trained.path, tmp_path / "hf")  # a stock BertForSequenceClassification folder
    given = get_teacher(tiny_job(tmp_path / "b", path=str(tmp_path / "hf")), progress=False)
    assert not given.cached and given.train_seconds < 30
    assert given.metrics == pytest.approx(trained.metrics)  # the same weights, measured on dev
    assert get_teacher(tiny_job(tmp_path / "b", path=str(tmp_path / "hf"))).cached
    # a checkpoint fine-tuned for another label set is refused, naming the setting
    shutil.copytree(tmp_path / "hf", tmp_path / "three")
    config = json.loads((tmp_path / "three" / "config.json").read_text())
    config["id2label"] = {str(i): f"L{i}" for i in range(3)}
    config["label2id"] = {f"L{i}": i for i in range(3)}
    (tmp_path / "three" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="teacher.path: .* has 3 output label"):
        get_teacher(tiny_job(tmp_path / "c", path=str(tmp_path / "three")), progress=False)
