"""The sweep's results table: one row per trial (a ladder: one per fork), read from the
experiment folder.

Reads Tune's per-trial files (``params.json``, ``result.json``, ``error.txt``) directly, so it
works on a finished, running or interrupted experiment, with no Ray session. The table is written
as ``results.parquet`` next to the experiment, for ``analysis/``. An experiment stored at a URI
is read from (and the table written to) its local mirror (:mod:`analysis.storage`).

    python -m analysis.results runs/sweeps/quickstart
    python -m analysis.results s3://bucket/sweeps/quickstart
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import storage
from analysis.layout import (
    ADDITIONS_PREFIX,
    LATENCY_FILE,
    SWEEP_DONE,
    TABLE_FILE,
    TRIALS_DIR,
    compact_dir,
)


def _last_result(trial_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A trial's final result (else its last), and a ladder's forks' results (``done_rung``),
    one per rung, in rung order."""
    path = trial_dir / "result.json"
    if not path.is_file():
        return {}, []
    last: dict[str, Any] = {}
    final: dict[str, Any] = {}
    rungs: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            last = row
            if row.get("done_job"):
                final = row
            if row.get("done_rung") is not None:  # (a resumed ladder may report one again)
                rungs[int(row["done_rung"])] = row
    return final or last, [rungs[i] for i in sorted(rungs)]


def _tune_trial_id(trial_dir: Path) -> str:
    """Tune's trial id, from its folder name ``<trainable>_<id>_<index>_<config>_<date>``
    (a trial that failed before reporting has no result to read it from)."""
    match = re.match(r".*?_([0-9a-f]{8}(?:_\d{5})?)_\d+_", trial_dir.name)
    return match[1] if match else trial_dir.name


def read_latency(experiment: str | Path, table: str = LATENCY_FILE) -> dict[str, Any]:
    """A latency table (``latency.json``, or a re-timed ``latency-<setting>.json``): its
    protocol, device and per-trial timings; empty when not measured yet."""
    path = Path(experiment) / table
    return json.loads(path.read_text()) if path.is_file() else {}


def collect(experiment: str | Path, latency_table: str = LATENCY_FILE) -> pd.DataFrame:
    """A row per trial of every cell under ``experiment`` (see module docstring), with the
    speedups of ``latency_table``."""
    experiment = Path(experiment)
    latency = read_latency(experiment, latency_table)
    rows = []
    finished_sweep = (experiment / SWEEP_DONE).is_file()
    trial_params = sorted(experiment.glob("*/params.json"))  # Tune's trial folders
    trial_params += sorted(experiment.glob(f"{ADDITIONS_PREFIX}*/*/params.json"))
    for params_file in trial_params:
        trial_dir = params_file.parent
        params = json.loads(params_file.read_text())
        result, forks = _last_result(trial_dir)
        if (trial_dir / "error.txt").is_file() and not result.get("done_job"):
            status = "errored"
        elif result.get("done_job"):
            status = "finished"
        elif finished_sweep:
            status = "stopped early"
        else:
            status = "running or interrupted"
        trial_id = result.get("trial_id") or _tune_trial_id(trial_dir)
        row: dict[str, Any] = {
            "trial_id": trial_id, "trial_dir": str(trial_dir),
            "cell_id": params.get("cell_id"), "method": params.get("method", "cofi"),
            "target_sparsity": params.get("target_sparsity"),
            "target_speedup": params.get("target_speedup"), "ablation": params.get("ablation"),
            "status": status, "iterations": result.get("training_iteration", 0),
        }
        row.update({f"config/{k}": v for k, v in params.items()
                    if k not in ("cell_id", "target_sparsity", "target_speedup", "ablation",
                                 "method")})
        if forks:  # a ladder: a row per fork, as if each were a trial of its target's cell;
            # the ladder's own row only while it has not finished (stopped, errored, running)
            rows += [_finished_row(experiment, {**row, **_rung_cell(row, fork)}, fork, latency,
                                   rung=int(fork["done_rung"])) for fork in forks]
            if status == "finished":
                continue
        rows.append(_finished_row(experiment, row, result, latency))
    return pd.DataFrame(rows)


def _rung_cell(row: dict[str, Any], fork: dict[str, Any]) -> dict[str, Any]:
    """A ladder fork's place in the table: its target's cell (``t0.5-full``), its own id."""
    value, kind = fork["rung_target"], fork["rung_kind"]
    return {"trial_id": f"{row['trial_id']}-r{fork['done_rung']}", "ladder_trial":
            row["trial_id"], "ladder_cell": row["cell_id"], "rung": int(fork["done_rung"]),
            "status": "finished",
            "cell_id": f"t{value:g}-{row['ablation']}" if kind == "sparsity" else
            f"s{value:g}x-{row['ablation']}",
            "target_sparsity": value if kind == "sparsity" else None,
            "target_speedup": value if kind == "speedup" else None}


def _finished_row(experiment: Path, row: dict[str, Any], result: dict[str, Any],
                  latency: dict[str, Any], rung: int | None = None) -> dict[str, Any]:
    """``row`` with the trial's (or a ladder fork's) reported values, its compact model where
    it is here, and its timing."""
    ladder_trial = row.get("ladder_trial", row["trial_id"])
    for key, value in result.items():
        if key in ("config", "trial_id", "date", "hostname", "node_ip", "pid"):
            continue
        row.setdefault(key, value)
    row["job_dir"] = str(experiment / TRIALS_DIR / str(ladder_trial))  # our outputs
    compact = experiment / compact_dir(str(ladder_trial), rung)
    if compact.is_dir():  # where it is here (a URI's mirror, a moved folder)
        if storage.is_uri(row.get("compact_dir") or ""):
            row["compact_uri"] = row["compact_dir"]
        row["compact_dir"] = str(compact)
    measured = latency.get("trials", {}).get(str(row["trial_id"]))
    if isinstance(measured, dict):  # timed interleaved with the teacher
        row.update(measured)
    elif measured:  # an older table: one teacher timing for all
        row["latency_s"] = measured
        row["teacher_latency_s"] = latency.get("teacher")
        row["speedup"] = latency["teacher"] / measured
    if "flop_predicted_speedup" not in row and "predicted_speedup" in row:
        row["flop_predicted_speedup"] = row["predicted_speedup"]  # the trial's own
    return row


def _one_type(value: Any) -> Any:
    """A mixed column's value for parquet: flags stay flags (missing ones None), text stays
    text, and lists or dicts become JSON text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float) and value != value:  # NaN: the trial never reported it
        return None
    return json.dumps(value)


def write_table(experiment: str | Path, latency_table: str = LATENCY_FILE,
                out: str | Path | None = None) -> Path:
    """Collects the table and writes ``results.parquet`` in ``out`` (default: the experiment
    folder); returns its path."""
    frame = collect(experiment, latency_table)
    for column in frame.columns:  # parquet needs one type per column
        if frame[column].dtype == object:
            frame[column] = frame[column].map(_one_type)
    path = Path(out or experiment) / TABLE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def experiment_from_args(argv: list[str] | None, prog: str, doc: str | None) -> Path | None:
    """Parses ``<experiment>`` for an analysis CLI and returns a local folder holding it (for a
    URI, its refreshed mirror); None (after saying why) if there is no experiment there."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="the experiment: storage_path/name, a folder or URI")
    location = parser.parse_args(argv).experiment
    try:
        experiment = storage.local_copy(location)
    except (OSError, ValueError) as e:  # missing, unreachable, or a URI pyarrow refuses
        print(f"error: cannot read an experiment at {location}: {e}", file=sys.stderr)
        return None
    if not experiment.is_dir():
        print(f"error: no experiment folder at {experiment}", file=sys.stderr)
        return None
    if storage.is_uri(location):
        print(f"read {location} into {experiment}")
    return experiment


def main(argv: list[str] | None = None) -> int:
    experiment = experiment_from_args(argv, "python -m analysis.results", __doc__)
    if experiment is None:
        return 2
    path = write_table(experiment)
    frame = pd.read_parquet(path)
    print(frame["status"].value_counts().to_string() if len(frame) else "no trials yet")
    print(f"table: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
