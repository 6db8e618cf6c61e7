"""Benchmark: are speedups measured on a busy machine caught, or silently wrong?

An experiment's compact models (default: a quickstart's) are timed against its teacher three
times -- quiet, with one core of load beside them (a busy-looping process), and with two --
under the experiment's latency setting, each timing judged as the sweep's timing pass judges it
(:mod:`cofi_sweep.latency.interleaved`, with no retries, so every judgement is seen). Per loaded
condition: the share of rows within 10 % of the quiet speedup, the share flagged unreliable, and
the share wrong (off by more than 10 %) and unflagged -- the goal is 0.
Writes benchmarks/results/timing_under_load.json. Start it on an otherwise quiet machine.

    python benchmarks/timing_under_load.py runs/sweeps/quickstart
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from sparsity_control import commit

from analysis.results import collect, read_latency
from cofi_sweep.core.model import CofiBert
from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting
from cofi_sweep.latency.timing import available_cpus
from cofi_sweep.sweep.retime import experiment_teacher

OUT = Path(__file__).resolve().parent / "results" / "timing_under_load.json"
BUSY = [sys.executable, "-c", "while True: pass"]


def time_all(experiment: Path, setting: TimingSetting, load: int) -> dict[str, dict]:
    """Every finished trial's timing with ``load`` busy processes beside it."""
    rows = collect(experiment)
    done = rows[rows["status"] == "finished"]
    procs = [subprocess.Popen(BUSY) for _ in range(load)]
    try:
        time.sleep(0.5)
        with InterleavedTimer(CofiBert.from_pretrained(experiment_teacher(experiment)), setting,
                              retries=0) as timer:
            return {str(t): timer.time(CofiBert.from_pretrained(d), str(t))
                    for t, d in zip(done["trial_id"], done["compact_dir"])}
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    protocol = read_latency(args.experiment).get("protocol", {})
    setting = TimingSetting(protocol.get("batch_size", 32), protocol.get("seq_len", 64),
                            available_cpus(), repeats=args.repeats)
    quiet = time_all(args.experiment, setting, 0)
    result = {"experiment": str(args.experiment), "commit": commit(),
              "setting": {"batch_size": setting.batch_size, "seq_len": setting.seq_len,
                          "threads": setting.threads, "repeats": setting.repeats},
              "quiet": quiet, "loaded": {}}
    for load in (1, 2):
        rows = time_all(args.experiment, setting, load)
        judged = []
        for trial, row in rows.items():
            off = abs(row["speedup"] / quiet[trial]["speedup"] - 1)
            judged.append({"trial": trial, "quiet": quiet[trial]["speedup"],
                           "loaded": row["speedup"], "off": off,
                           "flagged": not row["timing_reliable"], "note": row["timing_note"],
                           "other_cores": row["other_cores"]})
        n = len(judged)
        summary = {"rows": n,
                   "within_10pct": sum(j["off"] <= 0.10 for j in judged) / n,
                   "flagged": sum(j["flagged"] for j in judged) / n,
                   "wrong_unflagged": sum(j["off"] > 0.10 and not j["flagged"]
                                          for j in judged) / n}
        result["loaded"][f"{load}_core"] = {"summary": summary, "rows": judged}
        print(f"{load}-core load: {summary}")
        for j in judged:
            print(f"  {j['trial']}: quiet {j['quiet']:.2f}x, loaded {j['loaded']:.2f}x "
                  f"({j['off']:.0%} off), {'FLAGGED: ' + j['note'] if j['flagged'] else 'kept'}")
    quiet_flags = sum(not r["timing_reliable"] for r in quiet.values())
    result["quiet_false_alarms"] = quiet_flags
    print(f"quiet pass: {quiet_flags} of {len(quiet)} flagged (false alarms)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
