"""Export an experiment's frontier models (after every sweep), and the export command.

    python -m cofi_sweep.export <compact dir> --format hf --out exported/
    python -m cofi_sweep.export <compact dir> --format onnx --out exported/
    python -m cofi_sweep.export runs/sweeps/quickstart                  # lists its frontier
    python -m cofi_sweep.export runs/sweeps/quickstart --trial 1a2b3c4d --format hf --out x/

What the formats hold: :mod:`cofi_sweep.deploy.export`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from analysis.layout import EXPORT_DIR, PARETO_FILE, compact_dir
from cofi_sweep.core.errors import CofiSweepError
from cofi_sweep.core.model import CONFIG_FILE
from cofi_sweep.deploy.export import export_hf, export_onnx


def frontier_model(experiment: Path, trial: str | None) -> Path | None:
    """The compact model of ``trial`` on the experiment's frontier; None after listing the
    frontier when no trial is named."""
    import pandas as pd

    pareto = experiment / PARETO_FILE
    if not pareto.is_file():
        raise CofiSweepError(f"{experiment} has neither {CONFIG_FILE} (a compact model) nor "
                             f"{PARETO_FILE} (a finished experiment)")
    front = pd.read_csv(pareto)
    if trial is None:
        print(front[[c for c in ("frontier", "score", "speedup", "realized_sparsity",
                                 "trial_ids") if c in front]].to_string(index=False))
        print("pick one with --trial <trial id>")
        return None
    hit = front[front["trial_ids"].astype(str).str.split().map(lambda ids: trial in ids)]
    if hit.empty:
        raise CofiSweepError(f"trial {trial} is not on {experiment}'s frontier (see the list "
                             "without --trial); a compact model folder can be exported directly")
    return experiment / compact_dir(trial)


def export_frontier(experiment: Path, folder: str = EXPORT_DIR) -> list[dict[str, Any]]:
    """Exports (``hf``) every model on the experiment's frontiers into
    ``<experiment>/<folder>/<frontier>_<speedup>x`` (e.g. ``cofi_full_5_06x`` for
    ``cofi:full`` at 5.06x; a second point at the same rounded speedup gets its trial id
    appended): the models a user ships."""
    import pandas as pd

    pareto = experiment / PARETO_FILE
    front = pd.read_csv(pareto) if pareto.is_file() else pd.DataFrame()
    done = []
    for _, row in front.iterrows():
        if not isinstance(row.get("compact_dir"), str) or not Path(row["compact_dir"]).is_dir():
            continue
        # a Python identifier: transformers imports remote code under the folder's name
        name = re.sub(r"\W+", "_", f"{row['frontier']}_{row['speedup']:.2f}x")
        if name in {Path(d["out"]).name for d in done}:  # two points at one rounded speedup
            name = re.sub(r"\W+", "_", f"{name}_{row['trial_id']}")
        report = export_hf(row["compact_dir"], experiment / folder / name)
        done.append(report | {"frontier": row["frontier"], "speedup": row["speedup"],
                              "score": row["score"]})
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a compact model folder, or an experiment folder")
    parser.add_argument("--trial", help="with an experiment: the frontier trial to export")
    parser.add_argument("--format", choices=("hf", "onnx"), default="hf")
    parser.add_argument("--out", help="output folder (default: <source>-<format>)")
    parser.add_argument("--batch-size", type=int, default=32, help="onnx latency protocol")
    parser.add_argument("--seq-len", type=int, default=128, help="onnx latency protocol")
    args = parser.parse_args(argv)
    try:
        source = Path(args.source)
        if not (source / CONFIG_FILE).is_file():
            source = frontier_model(source, args.trial)
            if source is None:
                return 0
        out = Path(args.out or f"{source.as_posix().rstrip('/')}-{args.format}")
        if args.format == "hf":
            report = export_hf(source, out)
        else:
            report = export_onnx(source, out, batch_size=args.batch_size, seq_len=args.seq_len)
    except CofiSweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
