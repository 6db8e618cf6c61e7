"""The plan a sweep prints before it starts (and all ``--dry-run`` prints): the cells, trials,
resources, searcher, scheduler, selection split, latency setting and a disk estimate."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import yaml

from cofi_sweep.core.config import BaselineConfig
from cofi_sweep.sweep.space import SweepSpace


def as_written(settings: dict[str, Any], defaults: Any) -> str:
    """``settings`` as a YAML flow mapping of the keys that differ from ``defaults`` -- how the
    user wrote them, without the unset ones."""
    default = dataclasses.asdict(defaults)
    given = {k: v for k, v in settings.items() if v != default.get(k)}
    if not given:  # all defaults: name the first setting, not an empty mapping
        key = next(iter(settings))
        given = {key: settings[key]}
    return yaml.safe_dump(given, default_flow_style=True, sort_keys=False).strip()


def describe_plan(space: SweepSpace, data: Any = None) -> str:
    """The resolved plan, for ``--dry-run``; ``data``: the task's loaded
    :class:`~cofi_sweep.core.data.TaskData` (else loaded here)."""
    cells = space.cells()
    r = space.resources
    lines = [f"experiment {space.name!r} -> {space.storage_uri()}/{space.name}",
             f"model {space.job.model} | data {space.job.data.source}: "
             f"{data.describe() if data else describe_data(space)}",
             f"{len(cells)} cells x {space.trials_per_cell} trial(s) = "
             f"{len(cells) * space.trials_per_cell} trials",
             f"resources per trial: {r.cpus_per_trial:g} CPU, {r.gpus_per_trial:g} GPU; "
             f"at most {r.max_concurrent_trials} at once",
             f"searcher: optuna {space.searcher.sampler}, one study per cell (seed "
             f"{space.searcher.seed}, learns after {space.searcher.startup_trials} trials of a "
             f"cell); trial i of a cell runs with seed cofi.seed + i",
             f"scheduler: {space.scheduler.type}"
             + (f" (per cell, on selection-split scores during pruning, at the target's "
                f"current value; grace {space.scheduler.grace_period}, reduction factor "
                f"{space.scheduler.reduction_factor}"
                + ("; trials pause at each rung until the cell's others reach it)"
                   if space.scheduler.type == "halving" else ")")
                if space.scheduler.type != "none" else ""),
             "selection: " + (f"{space.job.data.selection_size} training examples held out "
                              "choose checkpoints, stop trials and steer the search; dev is "
                              "only reported" if space.job.data.selection_size else
                              "none: dev chooses checkpoints and is reported (optimistic)")]
    for key, dist in space.search.items():
        spec = dist.values if dist.type == "choice" else f"[{dist.low}, {dist.high}]"
        lines.append(f"  search {key}: {dist.type} {spec}")
    for cell in cells:
        if cell["method"] == "distill":
            lines.append(f"  cell {cell['id']}: distillation baseline "
                         f"{as_written(cell['baseline'], BaselineConfig())}")
        else:
            ladder = cell.get("ladder")
            target = (f"ladder of {ladder['kind']} targets {ladder['targets']} (one pruning "
                      f"run, a compact model forked at each)" if ladder else
                      f"speedup {cell['target_speedup']:g}x" if cell.get("target_speedup")
                      else f"sparsity {cell['target_sparsity']}")
            lines.append(f"  cell {cell['id']}: target {target}, "
                         f"ablation {cell['ablation']} {cell['overrides'] or ''}".rstrip())
            if space.shares_pruning(cell):
                lines.append(f"    its {space.trials_per_cell} trial(s) share "
                             f"{space.pruning_runs(cell)} pruning run(s): the searched values "
                             "act only after compaction, so each run is pruned once and "
                             "fine-tuned per trial (shared_pruning_runs)")
                per_run = -(-space.trials_per_cell // space.pruning_runs(cell))
                choices = math.prod(len(d.values) if d.type == "choice" else per_run
                                    for d in space.search.values())
                if choices < per_run:
                    lines.append(f"    note: up to {per_run} trials fine-tune one pruning run "
                                 f"but the search has {choices} combination(s): some trials "
                                 "would repeat another exactly")
    lines.append(f"precision: {space.job.cofi.precision} for the teacher, CoFi and the "
                 "baselines" + (" (bf16 on a GPU that supports it, else fp32)"
                                if space.job.cofi.precision == "auto" else ""))
    lines.append(f"latency: batch {space.latency.batch_size} x seq {space.latency.seq_len} in "
                 f"{space.latency.dtype}, {space.latency.repeats} repeats, measured after "
                 "training, each model interleaved with the teacher")
    params = parameter_count(space.job.model)
    lines.append(disk_estimate(space, params))
    shared = sum(space.pruning_runs(c) for c in cells if space.shares_pruning(c))
    if shared and params is not None:
        lines.append(f"shared pruning: {shared} pruning state(s) of "
                     f"{4 * params / 1024 ** 3:.2f} GiB "
                     "each, kept with the experiment until every trial has ended")
    return "\n".join(lines)


def describe_data(space: SweepSpace) -> str:
    """The task as its data defines it -- labels, metrics, rows per split -- and what was
    done to the data (rows dropped, validation carved, problem type inferred)."""
    from cofi_sweep.core.data import load_task
    from cofi_sweep.core.errors import CofiSweepError

    try:
        return load_task(space.job.task, space.job.data).describe()
    except CofiSweepError as e:  # preflight says so before any plan is acted on
        return f"task {space.job.task}: the data does not load ({e})"


def disk_estimate(space: SweepSpace, params: int | None) -> str:
    """Peak and final disk of the sweep's checkpoints and models, from the dense model's
    parameter count (None: unknown)."""
    if params is None:
        return "disk: unknown (the model's config is not available offline)"
    c = space.checkpoint
    # a checkpoint: the weights and (unless left out) AdamW's two moments; each running trial
    # also keeps one best snapshot beside its checkpoints, and writes a new checkpoint before
    # Tune deletes the oldest
    checkpoint = 4 * params * (1 + (2 if c.keep_optimizer else 0))
    trials = len(space.cells()) * space.trials_per_cell
    holders, held = space.resources.max_concurrent_trials, "running"
    if space.scheduler.type == "halving":  # paused trials keep theirs, with AdamW's moments
        holders, held, checkpoint = trials, "running or paused", 4 * params * 3
    running = holders * ((c.num_to_keep + 1) * checkpoint + 4 * params)
    # compact models: at most dense each, one per trial (a ladder's: one per rung)
    models = space.trials_per_cell * 4 * params * sum(
        len(cell["ladder"]["targets"]) if cell.get("ladder") else 1 for cell in space.cells())
    gib = 1024 ** 3
    return (f"disk: checkpoints of {checkpoint / gib:.2f} GiB each; peak about "
            f"{(running + models) / gib:.1f} GiB ({holders} {held} "
            f"trial(s) x {c.num_to_keep}+1 checkpoints and a best snapshot, plus "
            f"compact models); a "
            f"finished trial's checkpoints are removed, leaving at most {models / gib:.1f} GiB of "
            f"compact models" + ("" if c.keep_optimizer else
                                 " (checkpoint.keep_optimizer: false)"))


def parameter_count(model: str) -> int | None:
    """The dense model's parameters, from its config when it can be read offline."""
    try:
        from transformers import AutoConfig

        from cofi_sweep.core.pretrained import resolve

        hf = AutoConfig.from_pretrained(resolve(model))
    except Exception:  # an offline hub name, a missing package: the estimate is optional
        return None
    d, f, layers = hf.hidden_size, hf.intermediate_size, hf.num_hidden_layers
    embeddings = (hf.vocab_size + hf.max_position_embeddings + hf.type_vocab_size) * d
    return embeddings + layers * (4 * d * d + 2 * d * f + 9 * d + f) + d * d + d
