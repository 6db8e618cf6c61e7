"""The teacher on every node: trained once by the driver, read by every trial.

On one machine (or with a shared cache) trials read the driver's cache folder. Otherwise the
driver stores the teacher with the experiment (``<experiment>/teacher/<key>/``), and a node
that cannot see the cache uses that copy -- in place from a shared folder, or downloaded once
per node from a URI.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from analysis import storage
from analysis.layout import TEACHER_COPY
from cofi_sweep.core.teacher import TEACHER_FILE


def stored_teacher(experiment_dir: str, teacher_dir: str | Path) -> str:
    """Where the driver stores the teacher with the experiment: under its cache folder's name,
    which ends in a digest of its settings, so only that very teacher is ever found there."""
    return storage.join(experiment_dir, TEACHER_COPY, Path(teacher_dir).name)


def store_teacher(experiment_dir: str, teacher_dir: Path) -> None:
    """Stores the teacher with the experiment, for trials on nodes that cannot see the
    driver's cache and for a driver that resumes elsewhere. Once: a marker says it is whole."""
    copy = stored_teacher(experiment_dir, teacher_dir)
    if not storage.exists(storage.join(copy, "complete")):
        print(f"[sweep] storing the teacher for other nodes: {copy}", flush=True)
        storage.upload(teacher_dir, copy)
        storage.write_text(storage.join(copy, "complete"), "")


def fetch_teacher(experiment_dir: str, local: Path) -> None:
    """Downloads the stored teacher named like ``local`` into ``local`` unless it is already
    there or no whole copy is stored; once per machine (a file lock)."""
    stored = stored_teacher(experiment_dir, local)
    local.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(local) + ".lock"):
        if (local / TEACHER_FILE).is_file() or not storage.exists(
                storage.join(stored, "complete")):
            return
        print(f"[sweep] teacher: the copy stored with the experiment, {stored}", flush=True)
        shutil.rmtree(local, ignore_errors=True)
        storage.download(stored, local)


def local_teacher(teacher_dir: str, experiment_dir: str) -> str:
    """The teacher's folder on this node: the driver's cache when this node can see it (one
    machine, or a shared cache); otherwise the copy stored with the experiment, used in place
    from a shared folder or downloaded once per node from a URI."""
    if (Path(teacher_dir) / TEACHER_FILE).is_file():
        return teacher_dir
    if not storage.is_uri(experiment_dir):
        return stored_teacher(experiment_dir, teacher_dir)
    local = Path(tempfile.gettempdir()) / "cofi_sweep_teachers" / Path(teacher_dir).name
    fetch_teacher(experiment_dir, local)
    return str(local)
