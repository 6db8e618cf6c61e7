"""The teacher alone from the command line: ``python -m cofi_sweep.teacher``.

    python -m cofi_sweep.teacher --model minilm --task sst2 --data-dir ../shared/data/glue \
        --max-train-samples 16000 --epochs 3
    python -m cofi_sweep.teacher --task tickets data.source=files \
        data.train=examples/tickets/train.csv data.validation=examples/tickets/dev.csv

Fine-tunes the teacher once and caches it (:mod:`cofi_sweep.core.teacher`). Preflight first,
as for a job: a model that does not load or data that does not parse ends in one message and
exit code 2, before anything trains.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cofi_sweep.core.config import load_job_config
from cofi_sweep.core.errors import CofiSweepError, ConfigError
from cofi_sweep.core.evaluation import describe
from cofi_sweep.core.teacher import get_teacher
from cofi_sweep.job.preflight import load_checked, model_problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.teacher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a job YAML (its model/task/data/teacher sections)")
    parser.add_argument("--model", help="alias (minilm, tiny-bert), hub name or folder")
    parser.add_argument("--task", help="sst2, mrpc, rte, cola, stsb, qnli, mnli, qqp, synthetic, "
                        "or a name for your data (with data.source=files data.train=...)")
    parser.add_argument("--data-dir", help="GLUE-layout folder (sets data.source=local)")
    parser.add_argument("--max-train-samples", type=int, help="teacher's training subset")
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("overrides", nargs="*", help="key.sub=value settings")
    args = parser.parse_intermixed_args(argv)  # key=value may stand anywhere
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    flags = {"model": args.model, "task": args.task, "data.dir": args.data_dir,
             "teacher.max_train_samples": args.max_train_samples,
             "data.max_seq_length": args.max_seq_length, "teacher.epochs": args.epochs,
             "teacher.learning_rate": args.lr, "teacher.batch_size": args.batch_size,
             "teacher.seed": args.seed}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.data_dir:
        overrides.append("data.source=local")
    if args.task == "synthetic":
        overrides.append("data.source=synthetic")
    try:
        job = load_job_config(args.config, overrides + list(args.overrides))
        data, problem = load_checked(job)
        problems = [model_problem("model", job.model), problem]
        if job.teacher.path:
            problems.append(model_problem("teacher.path", job.teacher.path))
        if any(problems):
            raise ConfigError([p for p in problems if p], args.config or "command line")
        print(f"data {job.data.source}: {data.describe()}", flush=True)
        teacher = get_teacher(job)
    except CofiSweepError as e:  # the user's to fix: the message says how, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    state = "cached" if teacher.cached else f"trained in {teacher.train_seconds:.0f}s"
    print(f"teacher ({state}): {teacher.path}")
    print(f"dev: {describe(teacher.metrics)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
