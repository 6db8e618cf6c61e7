"""One CoFi job from the command line: ``python -m cofi_sweep.prune --config job.yaml``.

    python -m cofi_sweep.prune --config sst2_minilm_cpu.yaml cofi.target_sparsity=0.9
    python -m cofi_sweep.prune --config sst2_minilm_cpu.yaml "cofi.ladder=[0.5,0.7,0.9]"

Preflight first (a user mistake ends in one message, exit code 2), then the job with one line
per evaluation, then a short report of the compact model.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from cofi_sweep.core.config import load_job_config
from cofi_sweep.core.errors import CofiSweepError, ConfigError
from cofi_sweep.job.ladder import LadderPruner
from cofi_sweep.job.preflight import check_job
from cofi_sweep.job.recipe import CofiPruner, run_cofi
from cofi_sweep.job.result import CofiResult


def print_progress(pruner: CofiPruner, event: dict[str, Any]) -> None:
    """The default callback: one line per evaluation."""
    split = "dev" if pruner.select_loader is pruner.dev_loader else "selection"
    rung = f"[rung {event['rung']}: {event['rung_target']:g}] " if "rung" in event else ""
    parts = [f"{rung}[{event['stage']:>8}] step {event['step']:>5}",
             f"{split} {pruner.task.main_metric}={event['metric']:.4f}"]
    if "target_speedup" in event:
        parts.append(f"speedup exp={event['expected_speedup']:.2f}x "
                     f"predicted={event['latency_model_speedup']:.2f}x "
                     f"tgt={event['target_speedup']:.2f}x | sparsity "
                     f"realized={event['realized_sparsity']:.3f} "
                     f"lambda=({event['lambda_1']:+.3f},{event['lambda_2']:+.3f})")
    elif "expected_sparsity" in event:
        parts.append(f"sparsity exp={event['expected_sparsity']:.3f} "
                     f"det={event['deterministic_sparsity']:.3f} "
                     f"realized={event['realized_sparsity']:.3f} tgt={event['target']:.3f} "
                     f"lambda=({event['lambda_1']:+.3f},{event['lambda_2']:+.3f})")
    s = event["structure"]
    parts.append(f"hidden={s['hidden']} heads={s['heads']} ffn={s['ffn']}")
    print(" | ".join(parts), flush=True)


def format_report(result: CofiResult) -> str:
    """A short human-readable report of a finished job."""
    m = result.main_metric
    aim = (f"target speedup {result.target_speedup:g}x -> "
           f"{result.latency_model_speedup:.2f}x predicted by the latency model, sparsity "
           f"{result.realized_sparsity:.4f}"
           if result.target_speedup else f"target sparsity {result.target_sparsity:.3f} -> "
           f"realized {result.realized_sparsity:.4f}")
    lines = [
        f"{aim} ({result.prunable_params:,} of {result.dense_prunable_params:,} prunable params)"
        + (" OFF TARGET: more pruning steps or a larger reg_learning_rate close the gap"
           if result.on_target is False else ""),
        f"dev {m}: teacher {result.teacher_metrics.get(m, float('nan')):.4f} | pruned "
        f"{result.pruned_metrics.get(m, float('nan')):.4f} | compact after fine-tune "
        f"{result.compact_metrics.get(m, float('nan')):.4f}",
        f"checkpoints chosen on: {result.selection}",
        f"hidden dims kept: {result.structure['hidden']}",
        "layer  heads  ffn_units",
    ]
    for i, (h, f) in enumerate(zip(result.structure["heads"], result.structure["ffn"])):
        lines.append(f"{i + 1:>5}  {h:>5}  {f:>9}")
    lines.append(f"layer alignment (teacher -> student): "
                 f"{dict(zip(result.teacher_layers, result.layer_alignment))}")
    lines.append(f"compact model: {result.compact_dir}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.prune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config",
                        help="job YAML, or the name of a shipped one (cofi_sweep/configs/)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value settings")
    args = parser.parse_intermixed_args(argv)  # key=value may stand anywhere
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        job = load_job_config(args.config, args.overrides)
        problems = check_job(job)  # before a teacher trains
        if problems:
            raise ConfigError(problems, args.config or "command line")
        if job.cofi.ladder:
            results = LadderPruner(job, callback=print_progress).run()
        else:
            results = [run_cofi(job, callback=print_progress)]
    except CofiSweepError as e:  # the user's to fix: the message says how, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if len(results) > 1:
        print(f"ladder: {len(results)} compact models from one pruning run "
              f"({job.output_dir}/ladder.json)")
    for result in results:
        print(format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
