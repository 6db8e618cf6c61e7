"""Time an experiment's compact models against its teacher, under a deployment setting.

    python -m cofi_sweep.retime runs/sweeps/quickstart --batch-size 1 --seq-len 128
    python -m cofi_sweep.retime runs/sweeps/quickstart --batch-size 1 --threads 1
    python -m cofi_sweep.retime runs/sweeps/quickstart --runtime onnxruntime
    python -m cofi_sweep.retime runs/sweeps/quickstart --device cuda

Speedups depend on the setting -- one SST-2 model runs 12.6x faster than its teacher at batch
32 x 64 but 7.5x at batch 1 x 128 -- so a user deploying at batch 1 needs the frontier measured
at batch 1. This re-times every finished trial without retraining and writes, beside the
sweep's own ``latency.json``:

  latency-<setting>.json      the table (per trial: median and quartiles of the compact model
                              and of the teacher timed with it, the speedup and its spread,
                              and the speedups that FLOPs and the latency model predict)
  retimed/<setting>/          that setting's frontier: pareto.csv, report.md, plots/

How each model is timed: :mod:`cofi_sweep.latency.interleaved`; the pass itself:
:mod:`cofi_sweep.sweep.timing_pass`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from analysis.layout import RETIMED_DIR, SPACE_FILE, TEACHER_COPY, latency_file
from cofi_sweep.core.config import from_dict
from cofi_sweep.core.errors import CofiSweepError
from cofi_sweep.core.teacher import TEACHER_FILE, teacher_folder
from cofi_sweep.latency.interleaved import TimingSetting
from cofi_sweep.sweep.space import SweepSpace
from cofi_sweep.sweep.timing_pass import time_trials


def experiment_teacher(experiment: Path) -> Path:
    """The teacher of an experiment: its cache folder here, else the copy stored with it."""
    space_file = experiment / SPACE_FILE
    if not space_file.is_file():
        raise CofiSweepError(f"{experiment} has no space.json: not an experiment folder")
    space = from_dict(SweepSpace, json.loads(space_file.read_text()))
    cached = teacher_folder(space.job)
    stored = experiment / TEACHER_COPY / cached.name
    for folder in (cached, stored):
        if (folder / TEACHER_FILE).is_file():
            return folder
    raise CofiSweepError(f"the experiment's teacher is neither cached here ({cached}) nor "
                         f"stored with it ({stored}); run the sweep with --resume on this "
                         "machine to rebuild it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.retime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="an experiment folder (storage_path/name)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, help="default: every CPU this process may use")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--runtime", choices=("pytorch", "onnxruntime"), default="pytorch")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32",
                        help="cast the models (the teacher too) to this dtype and time them so "
                             "(PyTorch only)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--passes", type=int,
                        help="time each model this many times, fresh sessions each, and keep the "
                             "median (default: 3 for onnxruntime, whose fresh sessions vary, "
                             "else 1)")
    args = parser.parse_args(argv)
    passes = args.passes if args.passes is not None else (
        3 if args.runtime == "onnxruntime" else 1)
    setting = TimingSetting(args.batch_size, args.seq_len, args.threads, args.device, args.runtime,
                        repeats=args.repeats, passes=passes, dtype=args.dtype)
    counts = ("batch_size", "seq_len", "threads", "repeats", "passes")
    problems = [f"--{k.replace('_', '-')} must be >= 1" for k in counts
                if getattr(args, k) is not None and getattr(args, k) < 1]
    if args.device == "cuda" and not torch.cuda.is_available():
        problems.append("--device cuda: no CUDA device here")
    if args.device == "cuda" and args.runtime == "onnxruntime":
        problems.append("--runtime onnxruntime times on the CPU only; drop --device cuda")
    if args.dtype != "fp32" and args.runtime == "onnxruntime":
        problems.append(f"--dtype {args.dtype}: the onnx graphs are fp32; time fp16 or bf16 "
                        "with --runtime pytorch")
    experiment = Path(args.experiment)
    if problems:
        print("error: " + "; ".join(problems), file=sys.stderr)
        return 2
    try:
        teacher = experiment_teacher(experiment)
    except CofiSweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = time_trials(experiment, teacher, setting, latency_file(setting.name))
    from analysis.report import write_report

    report = write_report(experiment, latency=table.name,
                          out=experiment / RETIMED_DIR / setting.name)
    print(f"latency table: {table}\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
