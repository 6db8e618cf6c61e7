"""Benchmark: the real-data frontier -- CoFi against distillation baselines, at measured speedup.

Runs named jobs of a shipped space one at a time (no Ray: nothing else shares the cores), each
exactly as a sweep trial of that cell would run it, but with the job's fixed distillation
weights instead of a search (CoFi and baselines alike: the same care for both):

    cofi:<target>[/<ablation>][@k]     a CoFi job at that target sparsity, seed + k, with
                                       the space's ablation of that name (default: full)
    speedup:<target>[/<ablation>][@k]  a CoFi job aiming at that speedup (the latency model's,
                                       in the space's latency setting), seed + k
    distill:<name>[@k]     the space's baseline <name>, seed + k

After each job, its compact model and the teacher are timed interleaved (the space's batch and
sequence length, every available core), and a row is merged into
benchmarks/results/frontier_<label>.json -- one job at a time, so a long benchmark adds up
across sessions. CoFi jobs also add their row to the sparsity-control figure
(sparsity_control.json). ``--report`` renders the rows with the sweep report's own code
(frontiers, accuracy at k×, CoFi minus each baseline, plots) into
benchmarks/results/frontier_<label>/.

    python benchmarks/frontier.py --space sst2_minilm_cpu --runs cofi:0.5 cofi:0.6 cofi:0.7
    python benchmarks/frontier.py --space sst2_minilm_cpu --runs distill:layers3 cofi:0.5@1
    python benchmarks/frontier.py --space sst2_minilm_cpu --set task=stsb --label stsb \
        --runs cofi:0.5 distill:layers3
    python benchmarks/frontier.py --space speedup_minilm_cpu --label sst2_minilm_cpu \
        --runs speedup:2 speedup:4 speedup:8
    python benchmarks/frontier.py --space sst2_minilm_cpu --report
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import pandas as pd
import torch
from sparsity_control import commit, control_row, merge_rows
from speedup_fidelity import load

from analysis.report import render_report
from cofi_sweep.core.model import CofiBert
from cofi_sweep.core.teacher import get_teacher
from cofi_sweep.job.recipe import CofiPruner
from cofi_sweep.latency.interleaved import InterleavedTimer, TimingSetting
from cofi_sweep.latency.timing import available_cpus, describe_device
from cofi_sweep.sweep.space import SweepSpace, job_for_trial, load_space

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPEATS = 20
# --retime: passes per model; this VM's speed drifts by up to 10-20 % over minutes (the same
# model measured 1.83x right after its job and 2.02-2.12x in five passes later), so the median
# of a few passes, minutes apart from training, is what a row reports
RETIME_PASSES = 3


def parse_run(run: str, space: SweepSpace) -> tuple[dict, int]:
    """``cofi:0.5@1`` -> (the grid cell it names, seed offset 1)."""
    name, _, k = run.partition("@")
    method, _, value = name.partition(":")
    if method in ("cofi", "speedup"):
        value, _, ablation = value.partition("/")
        ablation = ablation or "full"
        if ablation not in space.grid.ablations:
            raise SystemExit(f"error: {run}: the space has no ablation {ablation!r} (it has "
                             f"{', '.join(space.grid.ablations)})")
        kind = "target_sparsity" if method == "cofi" else "target_speedup"
        prefix = f"t{float(value):g}" if method == "cofi" else f"s{float(value):g}x"
        cell = {"id": f"{prefix}-{ablation}", "method": "cofi", "target_sparsity": None,
                "target_speedup": None, "ablation": ablation,
                "overrides": dict(space.grid.ablations[ablation]), kind: float(value)}
    elif method == "distill":
        cell = next((c for c in space.cells() if c["id"] == f"distill-{value}"), None)
        if cell is None:
            raise SystemExit(f"error: {run}: the space has no baseline {value!r} "
                             f"(it has {', '.join(space.baselines) or 'none'})")
    else:
        raise SystemExit(f"error: {run}: runs are cofi:<target>[/<ablation>][@k], "
                         "speedup:<target>[/<ablation>][@k] or distill:<name>[@k]")
    return cell, int(k or 0)


def train(space: SweepSpace, cell: dict, offset: int, label: str, runner=CofiPruner):
    """Runs the cell's job (seed + ``offset``) with every core, as a sweep trial would run it
    (``runner``: a CoFi job, or a ladder); returns the job, its result(s), and the wall and
    CPU seconds (both threads) it took."""
    out = f"runs/bench/frontier_{label}/{cell['id']}_seed{offset}"
    job = job_for_trial(space, cell, {"cofi.seed": space.job.cofi.seed + offset}, out)
    job = dataclasses.replace(job, num_threads=torch.get_num_threads())
    start, cpu = time.time(), time.process_time()
    result = runner(job).run()
    return job, result, time.time() - start, time.process_time() - cpu


def run_job(space: SweepSpace, cell: dict, offset: int, label: str) -> tuple[dict, object]:
    job, result, wall, cpu = train(space, cell, offset, label)
    row = result_row(space, job, cell, offset, result)
    row.update(job_wall_seconds=round(wall, 1), job_cpu_seconds=round(cpu, 1))
    return row, result


def result_row(space: SweepSpace, job, cell: dict, offset: int, result) -> dict:
    """A results row for one finished job (or a ladder's fork): its scores, structure and its
    compact model timed against the teacher."""
    teacher = get_teacher(job).load()  # a cache hit
    # timed right after training; the latency model's prediction is added by --retime, on a
    # quiet machine (its calibration is cached, so it must not be taken beside other work)
    with InterleavedTimer(teacher, protocol(space), latency_model=False) as timer:
        timing = timer.time(CofiBert.from_pretrained(result.compact_dir))
    return {
        "trial_id": f"{cell['id']}@{offset}", "cell_id": cell["id"], "method": cell["method"],
        "ablation": cell["ablation"], "target_sparsity": cell["target_sparsity"],
        "target_speedup": cell.get("target_speedup"),
        "latency_model_speedup": result.latency_model_speedup,
        "config/cofi.seed": job.cofi.seed, "status": "finished", "on_target": result.on_target,
        "score": result.compact_metrics[result.main_metric], "main_metric": result.main_metric,
        **{f"compact_{k}": v for k, v in result.compact_metrics.items()},
        "selection_score": result.selection_metrics[result.main_metric],
        "selection": result.selection,
        "teacher_score": result.teacher_metrics[result.main_metric],
        "realized_sparsity": result.realized_sparsity,
        "prunable_params": result.prunable_params, "total_params": result.total_params,
        # the timer's prediction is None here (see above): keep the job's own
        **{k: v for k, v in timing.items() if v is not None},
        "latency_protocol": timer.describe()["protocol"],
        **result.table_columns(), "compact_dir": result.compact_dir, "commit": commit(),
    }


def protocol(space: SweepSpace) -> TimingSetting:
    lat = space.latency
    return TimingSetting(lat.batch_size, lat.seq_len, available_cpus(), warmup=lat.warmup,
                    repeats=REPEATS)


def retime(space: SweepSpace, path: Path, targets: set[float] | None = None) -> None:
    """Re-times every row's compact model (or only those at ``targets``' sparsities) against
    the teacher and adds the latency model's prediction: run it with nothing else on the
    machine. A model whose folder is gone
    (``runs/`` does not outlive a machine) is rebuilt from its recorded structure with random
    weights (a forward's time depends on its shapes only) and the row marked ``rebuilt``."""
    rows = json.loads(path.read_text())
    teacher = get_teacher(space.job).load()
    setting = dataclasses.replace(protocol(space), passes=RETIME_PASSES)
    with InterleavedTimer(teacher, setting) as timer:
        for row in rows:
            if targets is not None and row.get("target_sparsity") not in targets:
                continue
            model, rebuilt = load({"compact_dir": row["compact_dir"],
                                   "structure": json.loads(row["structure"])}, teacher.shape)
            timed = timer.time(model)  # the median pass
            row.update(timed, speedup_passes=[round(s, 4) for s in timed.pop("pass_speedups")],
                       latency_protocol=timer.describe()["protocol"], retimed=commit(),
                       rebuilt=rebuilt)
            print(f"[retime] {row['trial_id']}: {row['speedup']:.2f}x measured, "
                  f"{row['latency_model_speedup']:.2f}x latency model, "
                  f"{row['flop_predicted_speedup']:.2f}x FLOPs", flush=True)
            path.write_text(json.dumps(rows, indent=1) + "\n")


def merge(path: Path, row: dict) -> list[dict]:
    rows = [r for r in (json.loads(path.read_text()) if path.is_file() else [])
            if r["trial_id"] != row["trial_id"]]
    rows = sorted(rows + [row], key=lambda r: (r["method"], r["trial_id"]))
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def report(space: SweepSpace, path: Path, label: str, device: dict) -> Path:
    rows = json.loads(path.read_text())
    table = pd.DataFrame(rows)
    table.attrs["space"] = dataclasses.asdict(space)
    timed = rows[-1].get("latency_protocol")
    if isinstance(timed, dict):  # the report says how and on what the speedups were timed
        table.attrs["latency"] = {"protocol": timed, "device": device}
    out = RESULTS / f"frontier_{label}"
    out.mkdir(parents=True, exist_ok=True)
    commits = ", ".join(sorted({str(r["commit"]) for r in rows}))
    hours = sum(r["job_wall_seconds"] for r in rows) / 3600
    trained_on = ", ".join(sorted({str(r.get("device", device["name"])) for r in rows}))
    report_path = render_report(table, out, f"Frontier benchmark: {label} ({len(rows)} jobs, "
                                f"{hours:.1f} h of training on {trained_on}; timed on "
                                f"{device['name']}; commits {commits})")
    print(report_path.read_text())
    return report_path


def run_jobs(space_name: str, runs: list[str], label: str | None = None,
             settings: list[str] = (), control: bool = True) -> tuple[SweepSpace, Path, dict]:
    """Runs each of ``runs`` (checked first) and merges its row into the results file
    ``frontier_<label>.json`` (and, with ``control``, a full-CoFi seed-0 job's into the
    sparsity-control figure); returns the space, that file and the device."""
    space = load_space(HERE.parent / "search_spaces" / f"{space_name}.yaml",
                       [f"job.{item}" for item in settings])
    torch.set_num_threads(available_cpus())
    device = describe_device(torch.device("cpu"))
    path = RESULTS / f"frontier_{label or space_name}.json"
    cells = [parse_run(run, space) for run in runs]  # every name checked before running
    for run, (cell, offset) in zip(runs, cells):
        print(f"=== {label or space_name}: {run}", flush=True)
        row, result = run_job(space, cell, offset, label or space_name)
        row.update(device=device["name"], command=f"python benchmarks/frontier.py --space "
                   f"{space_name}" + (f" --set {' '.join(settings)}" if settings else "")
                   + (f" --label {label}" if label else "") + f" --runs {run}")
        merge(path, row)
        print(json.dumps({k: row[k] for k in ("trial_id", "score", "realized_sparsity",
                                              "speedup", "job_wall_seconds")}), flush=True)
        if (control and cell.get("target_sparsity") is not None and cell["ablation"] == "full"
                and not settings and offset == 0):
            merge_rows(control_row(space_name, cell["target_sparsity"], "", result,
                                   row["job_wall_seconds"], row["command"]))
    return space, path, device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="sst2_minilm_cpu", help="a name in search_spaces/")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="job settings changed from the space's, e.g. task=stsb")
    parser.add_argument("--label", help="names the results file (default: the space)")
    parser.add_argument("--runs", nargs="*", default=[], help="cofi:<target>[/<ablation>][@k], "
                        "speedup:<target>[/<ablation>][@k] or distill:<name>[@k], run in "
                        "this order")
    parser.add_argument("--retime", action="store_true", help="re-time every row's model "
                        "and add the latency model's prediction (on a quiet machine)")
    parser.add_argument("--report", action="store_true", help="render the rows collected")
    args = parser.parse_args()
    space, path, device = run_jobs(args.space, args.runs, args.label, args.set)
    if args.retime:
        retime(space, path)
    if args.report:
        report(space, path, args.label or args.space, device)


if __name__ == "__main__":
    main()
