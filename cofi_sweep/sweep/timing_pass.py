"""The sweep's timing pass: every finished trial's compact model timed against the teacher.

It runs after the trials, as one Ray task on a node of the kind ``latency.device`` names, with
nothing else running; ``python -m cofi_sweep.retime`` runs the same pass under another setting.
The table is written after every model, so an interrupted pass keeps what it measured and a
second run times only the rest.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import storage
from analysis.layout import LATENCY_FILE
from analysis.results import collect
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.model import CofiBert
from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting
from cofi_sweep.latency.timing import available_cpus
from cofi_sweep.sweep.space import SweepSpace, timing_device
from cofi_sweep.sweep.teacher_store import local_teacher


def time_trials(experiment: Path, teacher_dir: str | Path, setting: TimingSetting,
                table: str = LATENCY_FILE) -> Path:
    """Times every finished trial's compact model interleaved with the teacher; writes (and
    returns) ``<experiment>/<table>``, keeping models it timed before under this setting."""
    path = experiment / table
    known = json.loads(path.read_text()) if path.is_file() else {}
    rows = collect(experiment)
    finished = rows[rows["status"] == "finished"] if len(rows) else rows
    with InterleavedTimer(CofiBert.from_pretrained(teacher_dir), setting) as timer:
        info = timer.describe()
        if known.get("protocol") != info["protocol"]:
            known = {}  # measured under another setting: start over
        known.update(info)
        trials = known.setdefault("trials", {})
        aimed = finished.get("target_speedup", pd.Series(index=finished.index, dtype=float))
        todo = [(str(t), d, pd.notna(s)) for t, d, s in zip(
                    finished.get("trial_id", []), finished.get("compact_dir", []), aimed)
                if (str(t) not in trials or not trials[str(t)].get("timing_reliable", True))
                and d and Path(d).is_dir()]  # unreliable timings are taken again
        for i, (trial_id, directory, speedup_target) in enumerate(todo, 1):
            trials[trial_id] = timer.time(CofiBert.from_pretrained(directory), trial_id,
                                          speedup_target=speedup_target)
            row = trials[trial_id]
            print(f"[latency] {i}/{len(todo)} {trial_id}: {row['speedup']:.2f}x "
                  f"({row['speedup_low']:.2f}-{row['speedup_high']:.2f})"
                  + ("" if row["timing_reliable"] else f"  UNRELIABLE: {row['timing_note']}"),
                  flush=True)
            path.write_text(json.dumps(known, indent=1))  # nothing lost if interrupted
    path.write_text(json.dumps(known, indent=1))
    return path


def measure_latencies(space: SweepSpace, experiment: str, teacher_dir: str
                      ) -> dict[str, Any]:
    """Times every finished trial's compact model, interleaved with the teacher, with the
    space's ``latency`` protocol (:mod:`cofi_sweep.retime`), as one Ray task on a node of the
    kind ``latency.device`` names (a GPU for cuda): on a cluster the driver's own node decides
    nothing. The trials are over, so the task has its node to itself. Returns where it ran."""
    import ray

    device = timing_device(space)
    if device.startswith("cuda") and not ray.cluster_resources().get("GPU"):
        raise ConfigError([f"latency.device: {space.latency.device} times on a GPU, but no "
                           "node of this Ray cluster has one; set latency.device: cpu, or add "
                           "a GPU node"], "space")
    task = ray.remote(_time_on_node).options(
        num_cpus=space.latency.num_threads or 1,
        num_gpus=1 if device.startswith("cuda") else 0)
    return ray.get(task.remote(space, experiment, teacher_dir, device))


def _time_on_node(space: SweepSpace, experiment: str, teacher_dir: str, device: str
                  ) -> dict[str, Any]:
    """The timing task: on the experiment where this node sees it (the shared folder, or its
    own mirror of a URI, whose latency table it then uploads)."""
    import ray

    lat = space.latency
    local = storage.local_copy(experiment)
    setting = TimingSetting(lat.batch_size, lat.seq_len, lat.num_threads or available_cpus(),
                           device, warmup=lat.warmup, repeats=lat.repeats, dtype=lat.dtype)
    path = time_trials(local, local_teacher(teacher_dir, experiment), setting)
    node = {"node_id": ray.get_runtime_context().get_node_id()[:8],
            "host": socket.gethostname(), "device": device}
    table = json.loads(path.read_text())
    path.write_text(json.dumps({**table, "node": node}, indent=1))
    if storage.is_uri(experiment):
        storage.upload(path, storage.join(experiment, LATENCY_FILE))
    return node
