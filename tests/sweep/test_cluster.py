"""A real Ray cluster on this machine (`ray start`: a head and a second node), the way a user
attaches to one: the runtime_env ships the code, and a node that cannot see a folder
storage_path (started in its own mount namespace, with an empty tmpfs over the folder) stops
the sweep before any trial starts, with a message that names it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import tiny_space, write

pytestmark = pytest.mark.sweep
PORT = 6391
RAY = str(Path(sys.executable).with_name("ray"))
# Ray 2.60's token auth: `ray start` does not create a token (only a local ray.init() does), so a
# fresh machine has none; the cluster and every process that joins it share this one
TOKEN = secrets.token_hex(32)


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN,
            "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}


def _start(args: list[str], prefix: list[str] = ()) -> subprocess.Popen:
    """``ray start`` in a session of its own, so its daemons can be stopped by session id."""
    proc = subprocess.Popen([*prefix, RAY, "start", *args, "--disable-usage-stats"],
                            env=_env(), start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out[-2000:]
    return proc


def _stop(sessions: list[int]) -> None:
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    for pid, sid in (map(int, line.split()) for line in out.splitlines()):
        if sid in sessions:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare (a node with its own mount namespace)")
    head = _start(["--head", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false"])
    node = _start([f"--address=127.0.0.1:{PORT}", "--num-cpus=1"])
    sessions = [head.pid, node.pid]
    yield {"address": f"127.0.0.1:{PORT}", "sessions": sessions}
    _stop(sessions)
    time.sleep(1)
    # what `ray stop` would remove: a stale address file makes later ray.init() calls look
    # for this cluster
    current = Path("/tmp/ray/ray_current_cluster")
    if current.is_file() and current.read_text().strip().endswith(f":{PORT}"):
        current.unlink()


def test_a_sweep_on_a_two_node_cluster_runs_the_shipped_code(tmp_path: Path,
                                                             teacher_cache: Path,
                                                             cluster: dict) -> None:
    # bucket storage, as a cluster without a shared folder has: file:// takes the same
    # pyarrow.fs path as s3:// or gs://, offline
    raw = tiny_space(tmp_path, teacher_cache, scheduler={"type": "none"}, search={},
                     trials_per_cell=2, cluster={"pin_dependencies": False},
                     storage_path=f"file://{tmp_path}/bucket")
    raw["grid"] = {"target_sparsity": [0.3], "ablations": {"full": {}}}
    raw["job"]["cofi"]["prune_epochs"] = 2
    cmd = [sys.executable, "-m", "cofi_sweep.run", "--space", str(write(tmp_path, raw)),
           "--address", cluster["address"]]
    # run from elsewhere, as on a node without this checkout: Ray puts the driver's working
    # folder on the workers' path, and this one holds the code
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "runtime_env: py_modules (2)" in run.stdout
    experiment = tmp_path / "bucket" / "tiny"
    table = pd.read_parquet(experiment / "results.parquet")
    assert (table["status"] == "finished").all() and len(table) == 2
    # the teacher is stored with the experiment, for nodes that cannot see the driver's cache
    [stored] = (experiment / "teacher").iterdir()  # named by its settings' digest
    assert (stored / "teacher.json").is_file() and (stored / "complete").is_file()
    # the outputs are in the bucket; the driver read and timed them from its local mirror
    for uri, local in zip(table["compact_uri"], table["compact_dir"]):
        assert uri.startswith(f"file://{experiment}/trials/")
        assert (Path(uri.removeprefix("file://")) / "model.safetensors").is_file()
        assert (Path(local) / "model.safetensors").is_file()
    assert f"results uploaded to file://{experiment}" in run.stdout
    for job_dir in table["job_dir"]:
        [start] = [json.loads(line) for line in (Path(job_dir) / "starts.log").read_text()
                   .splitlines()]
        # the trial imported the copy Ray shipped, not this checkout
        assert "runtime_resources" in start["code"], start
        assert not start["code"].startswith(str(Path(__file__).resolve().parents[1]))


def test_a_node_that_cannot_see_the_storage_folder_stops_the_sweep_first(
        tmp_path: Path, teacher_cache: Path, cluster: dict) -> None:
    storage = tmp_path / "sweeps"
    storage.mkdir()
    # a third node that sees an empty tmpfs where the storage folder is
    blind = _start([f"--address=127.0.0.1:{PORT}", "--num-cpus=0"],
                   prefix=["unshare", "-m", "--propagation", "private", "sh", "-c",
                           f'mount -t tmpfs none "{storage}" && exec "$0" "$@"'])
    cluster["sessions"].append(blind.pid)
    try:
        raw = tiny_space(tmp_path, teacher_cache, search={}, trials_per_cell=1,
                         cluster={"pin_dependencies": False})
        raw["grid"] = {"target_sparsity": [0.3], "ablations": {"full": {}}}
        cmd = [sys.executable, "-m", "cofi_sweep.run", "--space", str(write(tmp_path, raw)),
               "--address", cluster["address"]]
        run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
        assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
        assert "is not visible from 1 of 3 node(s)" in run.stderr
        assert "shared folder" in run.stderr and "s3://" in run.stderr
        assert "Traceback" not in run.stderr
        assert not list((storage / "tiny").glob("train_cofi_*"))  # no trial started
        assert not list((storage / "tiny").glob(".visible-*"))  # the probe cleaned up
    finally:
        _stop([blind.pid])
        cluster["sessions"].remove(blind.pid)


def test_a_driver_without_the_clusters_token_is_told_how_to_get_it(
        tmp_path: Path, teacher_cache: Path, cluster: dict) -> None:
    raw = tiny_space(tmp_path, teacher_cache, search={}, trials_per_cell=1,
                     cluster={"pin_dependencies": False})
    cmd = [sys.executable, "-m", "cofi_sweep.run", "--space", str(write(tmp_path, raw)),
           "--address", cluster["address"]]
    # a machine that never got the token: no RAY_AUTH_TOKEN, no ~/.ray/auth_token
    env = {k: v for k, v in _env().items() if k != "RAY_AUTH_TOKEN"} | {"HOME": str(tmp_path)}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    assert "~/.ray/auth_token" in run.stderr and "RAY_AUTH_MODE=disabled" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "sweeps" / "tiny").exists()  # stopped before anything was written


def test_a_driver_without_a_token_attaches_to_a_cluster_started_without_auth(
        tmp_path: Path, teacher_cache: Path) -> None:
    # what the README's plain `ray start --head` makes on a fresh machine: no token anywhere
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")} | {
        "HOME": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen([RAY, "start", "--head", f"--port={PORT + 1}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert head.communicate(timeout=120)[0] is not None and head.returncode == 0
        # the driver's own attach step (code shipped, storage checked), ray not imported before
        raw = tiny_space(tmp_path, teacher_cache, cluster={"pin_dependencies": False})
        attach = ("import os, sys; from cofi_sweep.sweep.cluster import attach; "
                  "from cofi_sweep.sweep.space import load_space; "
                  f"attach('127.0.0.1:{PORT + 1}', load_space(sys.argv[1]).cluster, sys.argv[2]); "
                  "import ray; "
                  "print('CPUS', ray.cluster_resources()['CPU'], os.environ['RAY_AUTH_MODE'])")
        run = subprocess.run([sys.executable, "-c", attach, str(write(tmp_path, raw)),
                              str(tmp_path / "sweeps" / "tiny")], env=env, capture_output=True,
                             text=True, timeout=120)
        assert "CPUS 1.0 disabled" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    finally:
        _stop([head.pid])
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{PORT + 1}"):
            current.unlink()
