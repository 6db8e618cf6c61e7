"""Check on real data: SST-2 as *your* CSV gives the same teacher as the ``sst2`` preset.

SST-2 from a GLUE folder is rewritten as two CSV files with other column names (``review``,
``sentiment``) and text labels (``negative``, ``positive``), then a MiniLM teacher is fine-tuned
twice with the same settings and seed: once through the ``sst2`` preset (``source: local``), once
through ``source: files`` over the CSVs. Same rows, same label ids (text labels sort as the
preset's order), same seed: the dev accuracies must agree within 0.5 points. Each teacher trains
into a fresh cache folder. Writes benchmarks/results/custom_data_sst2.json.

    python benchmarks/custom_data_sst2.py --data-dir ../shared/data/glue
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

from cofi_sweep.core.config import load_job_config
from cofi_sweep.core.data import load_task
from cofi_sweep.core.teacher import get_teacher

GOAL_POINTS = 0.5


def as_csv(glue_dir: Path, out: Path) -> dict[str, str]:
    """SST-2's train and dev TSVs as CSVs with other column names and text labels."""
    files = {}
    for split in ("train", "dev"):
        frame = pd.read_csv(glue_dir / "SST-2" / f"{split}.tsv", sep="\t",
                            quoting=csv.QUOTE_NONE, keep_default_na=False)
        frame = pd.DataFrame({"review": frame["sentence"],
                              "sentiment": frame["label"].map({0: "negative", 1: "positive"})})
        files[split] = str(out / f"sst2_{split}.csv")
        frame.to_csv(files[split], index=False)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data/glue")
    parser.add_argument("--max-train-samples", type=int, default=4000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "custom_data_sst2.json"))
    args = parser.parse_args()
    common = ["model=minilm", f"teacher.max_train_samples={args.max_train_samples}",
              f"teacher.epochs={args.epochs}", f"data.max_seq_length={args.max_seq_length}",
              "teacher.seed=0", "data.seed=0"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = as_csv(Path(args.data_dir), tmp)
        jobs = {
            "preset": load_job_config(None, common + [
                "task=sst2", "data.source=local", f"data.dir={args.data_dir}",
                f"teacher.cache_dir={tmp / 'preset'}"]),
            "csv": load_job_config(None, common + [
                "task=sst2_csv", "data.source=files", f"data.train={files['train']}",
                f"data.validation={files['dev']}", "data.text_fields=[review]",
                "data.label_field=sentiment", f"teacher.cache_dir={tmp / 'csv'}"]),
        }
        data = {name: load_task(job.task, job.data) for name, job in jobs.items()}
        same_rows = all(data["preset"].splits[s].to_dict() == data["csv"].splits[s].to_dict()
                        for s in ("train", "dev"))
        runs = {}
        for name, job in jobs.items():
            start = time.time()
            teacher = get_teacher(job)
            runs[name] = {"accuracy": teacher.metrics["accuracy"],
                          "wall_seconds": round(time.time() - start, 1),
                          "labels": list(data[name].task.labels)}
            print(name, runs[name], flush=True)
    gap = abs(runs["preset"]["accuracy"] - runs["csv"]["accuracy"]) * 100
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"preset": runs["preset"], "csv": runs["csv"], "same_rows": same_rows,
              "gap_points": round(gap, 3), "goal_points": GOAL_POINTS,
              "met": gap <= GOAL_POINTS and same_rows,
              "train_samples": args.max_train_samples, "epochs": args.epochs,
              "max_seq_length": args.max_seq_length, "dev_size": len(data["csv"].splits["dev"]),
              "commit": commit, "command": "python benchmarks/custom_data_sst2.py "
              f"--max-train-samples {args.max_train_samples} --epochs {args.epochs} "
              f"--max-seq-length {args.max_seq_length}"}
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
