"""An experiment stored before the package was layered still resumes.

``tests/fixtures/experiment_c23a975.tar.gz`` is a tiny sweep (one cell, two trials) started
with the code of commit c23a975 -- the flat ``cofi_sweep/`` -- and killed once its first trial
had a checkpoint. Tune pickled its searcher, scheduler and callbacks under the old module paths
(``cofi_sweep.search``, ``cofi_sweep.scheduler``, ``cofi_sweep.trainable``, ...).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.sweep
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "experiment_c23a975.tar.gz"
# where the fixture was made: Tune's pickled trials keep their absolute storage path, so the
# experiment resumes there (it passed elsewhere only on the machine that had made it)
MADE_IN = Path("/tmp/fx")


@pytest.fixture
def made_in() -> Path:
    shutil.rmtree(MADE_IN, ignore_errors=True)
    MADE_IN.mkdir()
    yield MADE_IN
    shutil.rmtree(MADE_IN, ignore_errors=True)


def test_an_experiment_stored_before_the_move_resumes_after_it(made_in: Path) -> None:
    tmp_path = made_in
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    experiment = tmp_path / "sweeps" / "premove"
    pickled = (experiment / "tuner.pkl").read_bytes()
    assert b"cofi_sweep.search" in pickled and b"cofi_sweep.trainable" in pickled  # old paths
    # the relative storage_path and teacher cache of the space resolve against this folder
    run = subprocess.run([sys.executable, "-m", "cofi_sweep.run", "--space", "space.yaml",
                          "--resume"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = pd.read_parquet(experiment / "results.parquet")
    assert len(table) == 2 and (table["status"] == "finished").all(), table["status"]
    starts = {t: [json.loads(line)["start"] for line in
                  (experiment / "trials" / t / "starts.log").read_text().splitlines()]
              for t in table["trial_id"]}
    # the trial killed after its checkpoint continued from it; the other one started fresh
    assert sorted(starts.values()) == [["fresh"], ["fresh", "resumed"]], starts
