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

Protocol (also the sweep's pass, :func:`time_trials`): each compact model is timed
*interleaved* with the teacher (:func:`cofi_sweep.latency.timing.time_models`), so the teacher is
re-timed for every model and a slow stretch of the machine slows both alike; threads default to
the CPUs this process may use (affinity and cgroup quota). The table is written after every
model, so an interrupted pass keeps what it measured and a second run times only the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from analysis.layout import LATENCY_FILE
from analysis.results import collect
from cofi_sweep.core.model import CofiBert, count_flops, resolve_device
from cofi_sweep.latency.latency_model import latency_table
from cofi_sweep.latency.timing import available_cpus, describe_device, time_models
from analysis.layout import RETIMED_DIR, SPACE_FILE, TEACHER_COPY, latency_file



@dataclass
class Protocol:
    """A deployment setting to time under."""

    batch_size: int = 32
    seq_len: int = 128
    threads: int | None = None  # None: every CPU this process may use
    device: str = "cpu"
    runtime: str = "pytorch"  # or "onnxruntime" (CPU)
    warmup: int = 2
    repeats: int = 10
    # each model timed this many times in turn (fresh sessions each time), the median kept:
    # fresh onnxruntime sessions of a small model intermittently run ~35 % slower for their
    # whole life at batch 32 on a 2-core VM, so one pass moved a speedup by up to 13 %
    # (benchmarks/speedup_fidelity.py)
    passes: int = 1

    @property
    def name(self) -> str:
        return (f"b{self.batch_size}x{self.seq_len}-{self.threads or available_cpus()}t-"
                f"{self.device}-{self.runtime}")


def _runner(model: CofiBert, protocol: Protocol, workdir: Path, name: str) -> Any:
    """The model as the protocol's runtime runs it."""
    if protocol.runtime == "onnxruntime":
        from cofi_sweep.latency.onnx import onnx_runner, onnx_session, to_onnx

        path = workdir / f"{name}.onnx"
        to_onnx(model, path)
        return onnx_runner(onnx_session(path, protocol.threads or available_cpus()))
    return model.to(resolve_device(protocol.device))


def median_pass(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The timing (of several passes of one model) whose speedup is the median."""
    return sorted(passes, key=lambda t: t["speedup"])[len(passes) // 2]


class Timer:
    """Times compact models against one teacher under a protocol (use as a context manager:
    an onnxruntime protocol keeps its exported graphs in a temporary folder)."""

    def __init__(self, teacher: CofiBert, protocol: Protocol, latency_model: bool = True
                 ) -> None:
        torch.set_num_threads(protocol.threads or available_cpus())
        self.dense, self.protocol = teacher.shape, protocol
        self.model = None  # the latency model is calibrated on the CPU
        if latency_model and protocol.device == "cpu":
            self.model = latency_table(teacher.shape, batch_size=protocol.batch_size,
                                       seq_len=protocol.seq_len, runtime=protocol.runtime)
        self.tmp = tempfile.TemporaryDirectory()
        self.teacher = _runner(teacher, protocol, Path(self.tmp.name), "teacher")

    def __enter__(self) -> "Timer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.tmp.cleanup()

    def time(self, compact: CofiBert, name: str = "compact") -> dict[str, Any]:
        """Medians and quartiles of the model and of the teacher timed interleaved with it,
        the measured speedup and its spread, and the FLOP and latency-model predictions; with
        several passes, those of the median pass and every pass's speedup."""
        passes = [self._time_once(compact, name) for _ in range(self.protocol.passes)]
        chosen = median_pass(passes)
        if len(passes) > 1:
            chosen["pass_speedups"] = sorted(t["speedup"] for t in passes)
        return chosen

    def _time_once(self, compact: CofiBert, name: str) -> dict[str, Any]:
        p = self.protocol
        timing = time_models(
            {"teacher": self.teacher, "compact": _runner(compact, p, Path(self.tmp.name), name)},
            batch_size=p.batch_size, seq_len=p.seq_len, vocab_size=compact.shape.vocab_size,
            warmup=p.warmup, repeats=p.repeats)
        t, c = timing["teacher"], timing["compact"]
        return {
            "latency_s": c.median, "latency_q1": c.q1, "latency_q3": c.q3,
            "teacher_latency_s": t.median, "speedup": t.median / c.median,
            # the spread: a slow-quartile teacher over a fast-quartile model, and back
            "speedup_low": t.q1 / c.q3, "speedup_high": t.q3 / c.q1,
            "flop_predicted_speedup": count_flops(self.dense, p.seq_len)
            / max(1.0, count_flops(compact.shape, p.seq_len)),
            "latency_model_speedup": self.model.speedup(self.dense, compact.shape)
            if self.model else None}

    def describe(self) -> dict:
        """The protocol (threads as used), the device, the latency model's grid."""
        info = {"protocol": dataclasses.asdict(self.protocol)
                | {"threads": torch.get_num_threads()},
                "device": describe_device(resolve_device(self.protocol.device))}
        if self.model:
            info["latency_model"] = {"hidden": self.model.hidden, "heads": self.model.heads,
                                     "widths": self.model.widths}
        return info


def time_trials(experiment: Path, teacher_dir: str | Path, protocol: Protocol,
                table: str = LATENCY_FILE) -> Path:
    """Times every finished trial's compact model interleaved with the teacher; writes (and
    returns) ``<experiment>/<table>``, keeping models it timed before under this protocol."""
    path = experiment / table
    known = json.loads(path.read_text()) if path.is_file() else {}
    rows = collect(experiment)
    finished = rows[rows["status"] == "finished"] if len(rows) else rows
    with Timer(CofiBert.from_pretrained(teacher_dir), protocol) as timer:
        info = timer.describe()
        if known.get("protocol") != info["protocol"]:
            known = {}  # measured under another setting: start over
        known.update(info)
        trials = known.setdefault("trials", {})
        todo = [(str(t), d) for t, d in zip(finished.get("trial_id", []),
                                             finished.get("compact_dir", []))
                if str(t) not in trials and d and Path(d).is_dir()]
        for i, (trial_id, directory) in enumerate(todo, 1):
            trials[trial_id] = timer.time(CofiBert.from_pretrained(directory), trial_id)
            print(f"[latency] {i}/{len(todo)} {trial_id}: {trials[trial_id]['speedup']:.2f}x "
                  f"({trials[trial_id]['speedup_low']:.2f}-"
                  f"{trials[trial_id]['speedup_high']:.2f})", flush=True)
            path.write_text(json.dumps(known, indent=1))  # nothing lost if interrupted
    path.write_text(json.dumps(known, indent=1))
    return path


def experiment_teacher(experiment: Path) -> Path:
    """The teacher of an experiment: its cache folder here, else the copy stored with it."""
    from cofi_sweep.core.config import CofiSweepError, from_dict
    from cofi_sweep.core.teacher import TEACHER_FILE, teacher_folder
    from cofi_sweep.sweep.space import SweepSpace

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
    from cofi_sweep.core.config import CofiSweepError

    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.retime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="an experiment folder (storage_path/name)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, help="default: every CPU this process may use")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--runtime", choices=("pytorch", "onnxruntime"), default="pytorch")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--passes", type=int,
                        help="time each model this many times, fresh sessions each, and keep the "
                             "median (default: 3 for onnxruntime, whose fresh sessions vary, "
                             "else 1)")
    args = parser.parse_args(argv)
    passes = args.passes if args.passes is not None else (
        3 if args.runtime == "onnxruntime" else 1)
    protocol = Protocol(args.batch_size, args.seq_len, args.threads, args.device, args.runtime,
                        repeats=args.repeats, passes=passes)
    counts = ("batch_size", "seq_len", "threads", "repeats", "passes")
    problems = [f"--{k.replace('_', '-')} must be >= 1" for k in counts
                if getattr(args, k) is not None and getattr(args, k) < 1]
    if args.device == "cuda" and not torch.cuda.is_available():
        problems.append("--device cuda: no CUDA device here")
    if args.device == "cuda" and args.runtime == "onnxruntime":
        problems.append("--runtime onnxruntime times on the CPU only; drop --device cuda")
    experiment = Path(args.experiment)
    if problems:
        print("error: " + "; ".join(problems), file=sys.stderr)
        return 2
    try:
        teacher = experiment_teacher(experiment)
    except CofiSweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = time_trials(experiment, teacher, protocol, latency_file(protocol.name))
    from analysis.report import write_report

    report = write_report(experiment, latency=table.name,
                          out=experiment / RETIMED_DIR / protocol.name)
    print(f"latency table: {table}\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
