"""The Ray Tune trainable: one trial = one CoFi job. No training logic lives here.

The trial builds its JobConfig from the sweep space + its grid cell + Optuna's sampled values,
loads the (already trained) teacher by path, resumes from Tune's checkpoint when there is one,
runs :class:`~cofi_sweep.job.recipe.CofiPruner`, and reports:

  * at every evaluation: stage, iteration, target, expected, deterministic and realized
    sparsity, lambdas, and the selection-split metric(s) (``selection_score``); at ranked
    pruning evaluations (masks at the target's current value) also ``rung_score`` and ASHA's
    clock ``ranked_evals`` (:mod:`cofi_sweep.sweep.scheduler`);
  * at the end (``done_job``): ``score`` (dev, for the report), ``final_score`` (selection
    split: what Optuna learns from), realized sparsity and ``on_target``, parameter counts,
    per-layer structure, the compact model's path, the FLOP- and latency-model-predicted
    speedups, and wall time. Nothing is timed in a trial: trials share the cores, so the
    sweep times every compact model afterwards, alone (:mod:`cofi_sweep.sweep.timing_pass`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import cofi_sweep.sweep.ray_settings  # noqa: F401  (before ray)
import ray
import torch
from ray import tune

from analysis import storage
from analysis.layout import (
    BEST_FILE,
    COMPACT_DIR,
    JOB_DIR,
    LADDER_RUNG_PREFIX,
    STARTS_LOG,
    TRIALS_DIR,
)
from cofi_sweep.core.config import from_dict
from cofi_sweep.core.model import count_flops
from cofi_sweep.core.teacher import Teacher
from cofi_sweep.job.ladder import LadderPruner, Rung
from cofi_sweep.job.recipe import CofiPruner
from cofi_sweep.job.result import CofiResult
from cofi_sweep.sweep.scheduler import ASHA_CLOCK, ASHA_METRIC, milestones
from cofi_sweep.sweep.search import FINAL_METRIC
from cofi_sweep.sweep.shared_pruning import branch, pruning_run
from cofi_sweep.sweep.space import SweepSpace, job_for_trial
from cofi_sweep.sweep.teacher_store import local_teacher


def train_cofi(config: dict[str, Any], space: dict[str, Any], teacher_dir: str,
               experiment_dir: str) -> None:
    """Function trainable (wrap with ``tune.with_parameters(train_cofi, space=..., ...)``).

    Args:
        config: the trial's config: cell constants (``cell_id``, ``target_sparsity``,
            ``ablation``) and sampled ``cofi.*`` values.
        space: the sweep space as a plain dict (small; models travel as paths).
        teacher_dir: the driver's cached teacher folder (trained once); a node that cannot
            see it uses the copy stored with the experiment (:func:`local_teacher`).
        experiment_dir: the experiment's storage location (folder or URI); the trial's compact
            model and audit log are uploaded to ``<experiment_dir>/trials/<trial_id>/`` (by us,
            because Ray syncs a reused actor's trial folder only with artifact syncing on).
    """
    sweep = from_dict(SweepSpace, space)
    cell = next(c for c in sweep.cells() if c["id"] == config["cell_id"])
    params = {k: v for k, v in config.items() if k.startswith("cofi.")}
    trial_id = tune.get_context().get_trial_id()
    stored = storage.join(experiment_dir, TRIALS_DIR, trial_id)
    # the job writes its outputs only at its end: staged here, then uploaded to `stored`
    staging = Path(tempfile.gettempdir()) / "cofi_sweep_trials" / trial_id
    job = job_for_trial(sweep, cell, params, output_dir=str(staging / JOB_DIR))
    threads = max(1, int(sweep.resources.cpus_per_trial))
    torch.set_num_threads(threads)
    job.num_threads = threads
    if sweep.resources.gpus_per_trial > 0 and torch.cuda.is_available():
        job.device = "cuda"
    every = sweep.checkpoint.every_n_evals
    rungs = set(milestones(sweep.scheduler.grace_period, sweep.scheduler.reduction_factor)
                if sweep.scheduler.type == "halving" else [])
    # evaluations so far, and the seconds the job stood still in Tune's hands: a function
    # trainable's report blocks until the driver has taken the result and asks for the next
    # (the checkpoint's save and copy included), which is what a trial pays over a direct job
    evals = {"n": 0, "tune_seconds": 0.0}
    # the best snapshot, once per trial beside its checkpoints (which name it by step): in the
    # stored trial folder, through a local copy when that is a URI
    best_stored = storage.join(stored, BEST_FILE)
    copied = storage.is_uri(stored)
    best_local = str(staging / BEST_FILE) if copied else best_stored
    Path(best_local).parent.mkdir(parents=True, exist_ok=True)

    def report(pruner: CofiPruner, event: dict[str, Any]) -> None:
        evals["n"] += 1
        metrics = _flat(event)
        metrics["selection_score"] = event["metric"]
        if event["ranked"]:  # what ASHA may rank
            metrics[ASHA_METRIC] = event["metric"]
            metrics[ASHA_CLOCK] = sum(1 for e in pruner.history if e.get("ranked"))
        start = time.perf_counter()
        # halving pauses a trial at each rung and resumes it from there: exactly, so with the
        # optimizer's state whatever checkpoint.keep_optimizer says
        at_rung = metrics.get(ASHA_CLOCK) in rungs
        if at_rung or (every and evals["n"] % every == 0):
            with tempfile.TemporaryDirectory() as tmp:
                # a ladder saves its pruning run (and which rungs forked), whichever of its
                # pruners reports: a resume mid-fork redoes that fork only
                if runner.save_checkpoint(tmp, optimizer=at_rung or
                                          sweep.checkpoint.keep_optimizer,
                                          best_file=best_local) and copied:
                    storage.upload(best_local, best_stored)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            tune.report(metrics)
        evals["tune_seconds"] += time.perf_counter() - start

    def forked(rung: Rung, result: CofiResult, fork: CofiPruner) -> None:
        """A ladder's fork is done: its model stored, its row reported (``done_rung``)."""
        folder = f"{LADDER_RUNG_PREFIX}{rung.index}"
        final = final_metrics(result, fork, sweep.latency.seq_len,
                              compact_dir=storage.join(stored, JOB_DIR, folder, COMPACT_DIR))
        final.pop("done_job")
        final.update(done_rung=rung.index, rung_target=rung.value, stage="forked",
                     rung_kind="speedup" if job.cofi.target_speedup is not None else "sparsity")
        storage.upload(staging / JOB_DIR / folder, storage.join(stored, JOB_DIR, folder))
        tune.report(final)

    teacher = Teacher.from_dir(local_teacher(teacher_dir, experiment_dir))
    runner: CofiPruner | LadderPruner
    if job.cofi.ladder:  # one pruning run, a compact model forked at every target
        runner = LadderPruner(job, teacher=teacher, callback=report, on_fork=forked)
        pruner = runner.main
    else:
        runner = pruner = CofiPruner(job, teacher=teacher, callback=report)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # restored, resumed or retried: continue where it stopped
        if copied and storage.exists(best_stored) and \
                not Path(best_local).is_file():  # resumed on another node
            storage.download_file(best_stored, best_local)
        with checkpoint.as_directory() as directory:
            runner.load_checkpoint(directory, best_file=best_local)
    # audit: a line per start, appended to the stored log and never rewritten, so a trial that
    # had to start over from scratch shows a second "fresh"
    audit = storage.join(stored, STARTS_LOG)
    line = json.dumps({"start": "resumed" if checkpoint else "fresh", "stage": pruner.stage,
                       "step": pruner.global_step,  # and where, with which copy of the code
                       "node": ray.get_runtime_context().get_node_id()[:8],
                       "code": str(Path(__file__).resolve().parent)})
    storage.write_text(audit, (storage.read_text(audit) if storage.exists(audit) else "")
                       + line + "\n")
    if pruner.device.type == "cuda":  # a reused worker: this trial's peak, not a former one's
        torch.cuda.reset_peak_memory_stats(pruner.device)
    shares = sweep.shares_pruning(cell)
    if shares and pruner.stage in ("distill", "prune"):
        # prune once per cell and seed, fine-tune per searched value: the trial goes on as a
        # fork of its cell's shared pruning run (run by itself if no trial has yet); from
        # here on its checkpoints are the fork's (a resume in fine-tuning is past this)
        runner = pruner = branch(pruner, experiment_dir, cell["id"], trial_id, report)
    if isinstance(runner, LadderPruner):
        final = ladder_metrics(runner.run())
    else:
        final = final_metrics(runner.run(), pruner, sweep.latency.seq_len,
                              compact_dir=storage.join(stored, JOB_DIR, COMPACT_DIR))
    if shares:
        final.update(pruning_run(experiment_dir, cell["id"], job, trial_id))
    final["tune_report_seconds"] = evals["tune_seconds"]  # of job_wall_seconds
    # stored before the final report, so a trial reported done always has its model in storage
    storage.upload(staging / "job", storage.join(stored, JOB_DIR))
    shutil.rmtree(staging, ignore_errors=True)
    tune.report(final)



def final_metrics(result: CofiResult, pruner: CofiPruner, seq_len: int, compact_dir: str
                  ) -> dict[str, Any]:
    """What a trial reports when its job is done (``done_job``): see the module docstring."""
    compact, teacher = pruner.model, pruner.teacher
    return {
        "done_job": True, "stage": "done", "score": result.compact_metrics[result.main_metric],
        FINAL_METRIC: result.selection_metrics[result.main_metric],
        "selection_score": result.selection_metrics[result.main_metric],
        "selection": result.selection, "seed": pruner.cfg.seed, "step": pruner.global_step,
        "realized_sparsity": result.realized_sparsity, "reached_target": result.reached_target,
        "on_target": result.on_target, "target_miss": result.target_miss,
        "target_speedup": result.target_speedup,
        "latency_model_speedup": result.latency_model_speedup,
        "prunable_params": result.prunable_params,
        "dense_prunable_params": result.dense_prunable_params,
        "total_params": result.total_params,
        "teacher_params": sum(p.numel() for p in teacher.parameters()),
        "teacher_score": result.teacher_metrics.get(result.main_metric),
        "pruned_score": result.pruned_metrics.get(result.main_metric),
        "main_metric": result.main_metric,
        "compact_dir": compact_dir,
        **result.table_columns(),
        "predicted_speedup": count_flops(teacher.shape, seq_len)
        / max(1.0, count_flops(compact.shape, seq_len)),
        "job_wall_seconds": result.wall_seconds,
        "precision": pruner.precision,
        # what a trial needs of a GPU (to size gpus_per_trial); None on the CPU
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated(pruner.device) / 2**20
        if pruner.device.type == "cuda" else None,
        **{f"compact_{k}": v for k, v in result.compact_metrics.items()},
    }


def ladder_metrics(results: list[CofiResult]) -> dict[str, Any]:
    """What a ladder reports when its last fork is done: each fork reported its own row
    (``done_rung``); what Optuna learns from is the mean selection score over the rungs (one
    objective per pruning run: the search tunes the run, not one of its targets)."""
    selection = [r.selection_metrics[r.main_metric] for r in results]
    return {"done_job": True, "stage": "done", "ladder_rungs": len(results),
            FINAL_METRIC: sum(selection) / len(selection),
            "on_target": all(r.on_target for r in results),
            "job_wall_seconds": max(r.wall_seconds for r in results)}


def _flat(event: dict[str, Any]) -> dict[str, Any]:
    """Tune-friendly metrics: lists and dicts become JSON strings."""
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in event.items()
            if v is not None}


