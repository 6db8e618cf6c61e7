"""What the driver prints when a sweep ends: what was stopped, what landed on target, the best
trial per cell, and where the table, report, plot and models are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import storage
from analysis.layout import PARETO_FILE, PLOTS_DIR, TABLE_FILE, compact_dir
from analysis.points import unreliable
from analysis.results import read_latency


def print_summary(experiment: str, local: Path, stopper: str) -> None:
    """What ``stopper`` (the scheduler's name) stopped, how many trials landed on target, the
    best trial per cell (by the selection score, which chose it; dev beside it), and where the
    table and models are."""
    import pandas as pd

    table_path = local / TABLE_FILE
    table = pd.read_parquet(table_path)
    print(f"[sweep] {len(table)} trials: " + ", ".join(
        f"{n} {s}" for s, n in table["status"].value_counts().items()))
    if "ladder_trial" in table and table["ladder_trial"].notna().any():
        forks = table[table["ladder_trial"].notna()]  # (a stopped ladder's own row: none)
        runs = forks["ladder_trial"].nunique()
        print(f"[sweep] ladders: {len(forks)} compact models from {runs} pruning run(s) "
              f"({len(forks) / runs:.1f} per run; each row of a fork is its target's cell)")
    if "pruning_run" in table and table["pruning_run"].notna().any():
        sharing = table[table["pruning_run"].notna()]
        runs = sharing["pruning_run"].nunique()
        print(f"[sweep] shared pruning: {len(sharing)} trials fine-tuned from {runs} pruning "
              f"run(s) (their searched values act only after compaction; "
              f"{len(sharing) - runs} pruning run(s) saved)")
    stopped = table[table["status"] == "stopped early"]
    if len(stopped):
        per_cell = ", ".join(f"{c}: {n}" for c, n in stopped["cell_id"].value_counts()
                             .sort_index().items())
        print(f"[sweep] {stopper} stopped {len(stopped)} trial(s) early, each against its own "
              f"cell's selection scores while pruning ({per_cell})")
    done = table[table["status"] == "finished"]
    cofi = done[done["method"] == "cofi"]
    if len(cofi) and "on_target" in cofi:
        hits = int((cofi["on_target"] == True).sum())  # noqa: E712
        print(f"[sweep] on target: {hits} of {len(cofi)} finished CoFi trials are within "
              f"their target's band (realized sparsity in [target - eps, target + "
              f"max_overshoot], or predicted speedup within speedup_tolerance)")
    if len(done):
        cols = ["cell_id", "selection_score", "score", "realized_sparsity",
                "latency_model_speedup", "speedup", "compact_dir"]
        best = done.sort_values("selection_score").groupby("cell_id").tail(1)
        print("best trial per cell (chosen on selection_score; score = dev, reported):")
        print(best.sort_values("cell_id")[[c for c in cols if c in best]].to_string(index=False))
    print_timing_warning(table, experiment, local)
    print(f"results table: {table_path}")
    models = compact_dir("<trial_id>") + (" (a ladder's fork: <trial_id>/job/rung-<i>/compact)"
                                           if "ladder_trial" in table else "")
    print(f"compact models: {storage.join(experiment, models)}"
          + (f" (local copies: {local / models})" if storage.is_uri(experiment) else ""))


def print_exports(exported: list[dict[str, Any]], local: Path, report: Path) -> None:
    """The frontier models exported, and where the report, plot and frontier table are."""
    if exported:
        print("frontier models, exported to load with transformers alone "
              "(AutoModelForSequenceClassification.from_pretrained):")
        for e in exported:
            print(f"  {e['frontier']:<24} {e['speedup']:5.2f}x  score {e['score']:.4f}  "
                  f"{e['out']}  ({'trust_remote_code=True' if e['remote_code'] else e['class']})")
    print(f"report: {report}\nplot: {local / PLOTS_DIR / 'metric_vs_speedup.png'}\n"
          f"frontier (with compact model paths): {local / PARETO_FILE}")


def print_timing_warning(table: Any, experiment: str, local: Path) -> None:
    """The finished trials whose timing was unreliable (the machine busy with other work, a
    noisy teacher), and the command that re-times them on a quiet machine."""
    flagged = unreliable(table)
    if not len(flagged):
        return
    done = table[table["status"] == "finished"]
    protocol = read_latency(local).get("protocol", {})
    print(f"[sweep] WARNING: {len(flagged)} of {len(done)} speedups were measured while the "
          f"timing was unreliable ({flagged['timing_note'].iloc[0]}); they are marked "
          "timing_reliable=false in the results and the report. Re-time them on a quiet "
          f"machine: python -m cofi_sweep.retime {experiment} --batch-size "
          f"{protocol.get('batch_size', 32)} --seq-len {protocol.get('seq_len', 128)}")
