"""Benchmark: the bundled MiniLM fine-tuned as an SST-2 teacher on this CPU.

Target (issue 2): >= 0.86 accuracy on the full SST-2 dev set (872) from at most 16,000 training
sentences, within 30 minutes on 2 CPU cores. Trains into a fresh cache folder so the figure is
a real training run, prints the result and writes it to benchmarks/results/teacher_sst2.json.

    python benchmarks/teacher_sst2.py --data-dir ../shared/data/glue
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from cofi_sweep.core.config import load_job_config
from cofi_sweep.core.teacher import get_teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="../shared/data/glue")
    parser.add_argument("--max-train-samples", type=int, default=16000)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--out",
                        default=str(Path(__file__).parent / "results" / "teacher_sst2.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        job = load_job_config(None, [
            "model=minilm", "task=sst2", "data.source=local", f"data.dir={args.data_dir}",
            f"teacher.max_train_samples={args.max_train_samples}",
            f"data.max_seq_length={args.max_seq_length}", f"teacher.epochs={args.epochs}",
            f"teacher.learning_rate={args.lr}", f"teacher.cache_dir={cache}"])
        start = time.time()
        teacher = get_teacher(job)
        wall = time.time() - start
    result = {"accuracy": teacher.metrics["accuracy"], "wall_seconds": round(wall, 1),
              "train_samples": args.max_train_samples, "epochs": args.epochs, "lr": args.lr,
              "max_seq_length": args.max_seq_length, "dev_size": 872,
              "torch_threads": torch.get_num_threads(), "machine": platform.processor() or
              platform.machine(), "command": "python benchmarks/teacher_sst2.py "
              f"--max-train-samples {args.max_train_samples} --epochs {args.epochs} "
              f"--lr {args.lr} --max-seq-length {args.max_seq_length}"}
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
