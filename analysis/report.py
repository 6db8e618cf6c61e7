"""Turn a sweep's experiment folder into a results table, Pareto frontiers, plots and a report.

    python -m analysis.report runs/sweeps/quickstart

Writes, in the experiment folder (works on running or interrupted experiments too):
  results.parquet   one row per trial (from the trial folders)
  pareto.csv        non-dominated points per method/ablation (max selection score, max measured
                    speedup; dev reported) and each frontier's hypervolume against the one
                    stated reference point
  plots/*.png|svg   metric vs measured speedup (frontiers, teacher, 95 % of teacher, published
                    points), metric vs remaining parameters, predicted vs measured speedup,
                    kept structure of the frontier models, layer alignment per evaluation
  report.md         which split selected and which is reported, the frontiers, accuracy at
                    2x/3x/4x/6x/8x/10x speedup, the frontier's compact model paths, each
                    ablation against full CoFi with a verdict per paper finding
                    (analysis.ablations), the layer alignment over training
                    (analysis.alignment), off-target trials

Like with like: a point is a grid cell with its searched values, averaged over its seeds (mean
and sample standard deviation); only finished trials on target (or baselines) make points, and
they are placed at their *measured* speedup and realized sparsity, never at a nominal target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.ablations import ablation_section
from analysis.alignment import alignment_section
from analysis.layout import (
    LATENCY_FILE,
    PARETO_FILE,
    PLOTS_DIR,
    REPORT_FILE,
    SPACE_FILE,
    TABLE_FILE,
    TASK_FILE,
)
from analysis.pareto import METRIC_SPAN, SPEEDUP_SPAN, value_at
from analysis.plots import write_plots
from analysis.points import (
    PREDICTORS,
    accuracy_at_speedups,
    frontiers,
    mean_sd,
    points,
    reliable,
    speedup_targets,
    teacher_score,
    unreliable,
)
from analysis.results import experiment_from_args, read_latency, write_table

PUBLISHED = Path(__file__).with_name("published.csv")
OUTPUTS = (TABLE_FILE, PARETO_FILE, REPORT_FILE, PLOTS_DIR)  # what write_report writes


def load_results(experiment: Path, latency_table: str = LATENCY_FILE,
                 out: Path | None = None) -> pd.DataFrame:
    """The trial table (re-collected from the trial folders so it is current), with the
    speedups of ``latency_table``; its protocol and device in ``attrs["latency"]``."""
    table = pd.read_parquet(write_table(experiment, latency_table, out))
    info = read_latency(experiment, latency_table)
    table.attrs["latency"] = {k: v for k, v in info.items() if k != "trials"}
    if "speedup" not in table:
        table["speedup"] = np.nan  # exclusive timing not done yet (running experiment)
    return table


def speedup_table(front: pd.DataFrame) -> list[str]:
    """The table people quote: accuracy at kx speedup, with the winner and whether the lead
    exceeds the seeds' spread."""
    at = accuracy_at_speedups(front) if len(front) else pd.DataFrame()
    if at.empty:
        return []
    labels = sorted(at["frontier"].unique())
    lines = ["## Accuracy at k× measured speedup", "",
             "Each frontier is interpolated linearly in log speedup between its points; a "
             "frontier whose fastest point is slower than k× has no entry. ± is the sample "
             "standard deviation over seeds, interpolated the same way. A lead counts as real "
             "only when it exceeds the two spreads combined (√(σ₁² + σ₂²)).", "",
             "| speedup | " + " | ".join(labels) + " | best | lead real? |",
             "|---|" + "---|" * (len(labels) + 2)]
    for k, group in at.groupby("speedup"):
        by = group.set_index("frontier")
        cells = []
        for label in labels:
            if label not in by.index:
                cells.append("–")
                continue
            r = by.loc[label]
            cells.append(mean_sd(r["score"], r["std"]))
        ranked = group.sort_values("score", ascending=False)
        verdict = "only one reaches it"
        if len(ranked) > 1:
            first, second = ranked.iloc[0], ranked.iloc[1]
            if pd.isna(first["std"]) or pd.isna(second["std"]):
                verdict = "unknown (one seed)"
            else:
                lead = first["score"] - second["score"]
                verdict = "yes" if lead > np.hypot(first["std"], second["std"]) else \
                    "no (within spread)"
        lines.append(f"| {k}× | " + " | ".join(cells) + f" | {ranked.iloc[0]['frontier']} | "
                     f"{verdict} |")
    return lines + [""]


def baseline_table(front: pd.DataFrame, pts: pd.DataFrame) -> list[str]:
    """Per baseline point: each CoFi frontier's score at the baseline's measured speedup
    (interpolated) minus the baseline's, with the combined seed spread."""
    if pts.empty or "frontier" not in pts:
        return []
    baselines = pts[pts["method"] == "distill"]
    cofi = front[front["method"] == "cofi"] if len(front) else front
    if baselines.empty or cofi.empty:
        return []
    labels = sorted(cofi["frontier"].unique())
    lines = ["## CoFi against each distillation baseline", "",
             "Baselines are trained like CoFi trials: the same losses (prediction distillation, "
             "plus layer distillation where it applies), the same steps in the same three "
             "stages (distillation warm-up, then the pruning stage's steps and decaying LR "
             "without masks, then fine-tuning), the same evaluations on the same selection "
             "split, the same latency protocol. Each cell: the CoFi frontier's score at the "
             "baseline's measured speedup minus the baseline's (± the two seed spreads "
             "combined; – where the frontier does not reach that speedup).", "",
             "| baseline | speedup | score | " + " | ".join(f"{lb} − baseline" for lb in labels)
             + " |", "|---|---|---|" + "---|" * len(labels)]
    for _, b in baselines.sort_values("speedup").iterrows():
        cells = []
        for label in labels:
            f = cofi[cofi["frontier"] == label]
            at = value_at(f["speedup"], f["score"], b["speedup"])
            if at is None:
                cells.append("–")
                continue
            sd = value_at(f["speedup"], f["score_std"], b["speedup"])
            spread = np.hypot(sd, b["score_std"]) if pd.notna(sd) and pd.notna(
                b["score_std"]) else np.nan
            cells.append(mean_sd(at - b["score"], spread, "+.4f"))
        lines.append(f"| {b['frontier']} | {b['speedup']:.2f}x | "
                     f"{mean_sd(b['score'], b['score_std'])} | " + " | ".join(cells) + " |")
    return lines + [""]


def selection_statement(table: pd.DataFrame) -> str:
    """Which split chose the checkpoints, stopped trials and steered the search."""
    chosen = sorted(set(table["selection"].dropna())) if "selection" in table else []
    if not chosen:
        return "Selection: not recorded (an experiment from an older version)."
    if chosen == ["dev"]:
        return ("Selection: **dev did both**. It chose checkpoints, early stopping, the "
                "search and the frontier points, and it is the reported score, so the scores "
                "below are optimistic (best-of-N on the published number). Set "
                "`job.data.selection_size` to hold out a selection split.")
    return (f"Selection: checkpoints, early stopping, the search (Optuna), which points "
            f"stand on a frontier and which seed's model ships were decided on a "
            f"{'; '.join(chosen)}. The scores below are dev, evaluated once per finished model "
            f"and never used to choose (so a frontier's dev scores need not rise with "
            f"its selection scores).")


def published_points(table: pd.DataFrame) -> pd.DataFrame:
    """Reported numbers for this model and task only (never mixed into our frontiers)."""
    points = pd.read_csv(PUBLISHED, comment="#")
    space = table.attrs.get("space", {})
    model, task = space.get("job", {}).get("model"), space.get("job", {}).get("task")
    return points[(points["model"] == model) & (points["task"] == task)]


def prediction_section(table: pd.DataFrame) -> list[str]:
    """How well FLOPs and the calibrated latency model predicted the measured speedups."""
    done = table[table["status"] == "finished"] if len(table) else table
    shaky = unreliable(done)
    done = reliable(done)  # an unreliable measurement says nothing about a prediction
    rows = []
    for column, label in PREDICTORS.items():
        if column in done and "speedup" in done and done[column].notna().any():
            ok = done[done[column].notna() & done["speedup"].notna()]
            error = (ok[column] / ok["speedup"] - 1).abs()
            rows.append(f"| {label} | {len(ok)} | {error.median():.1%} | {error.max():.1%} |")
    if not rows:
        return []
    return ["## Predicted speedup", "",
            "Relative error of each prediction against the measured speedup, over the finished "
            "trials (the latency model is calibrated on the timing's device, in its dtype and "
            "runtime).",
            "", "| predictor | trials | median error | largest error |", "|---|---|---|---|",
            *rows, "", *unreliable_note(shaky)]


def speedup_target_section(table: pd.DataFrame) -> list[str]:
    """Per trial that aimed at a speedup: the target, what the latency model predicted when
    pruning stopped, and the measured speedup as a multiple of the target."""
    aimed = speedup_targets(table)
    if aimed.empty or "speedup" not in aimed:
        return []
    lines = ["## Speedup targets", "",
             "Cells that aimed at a speedup (`grid.target_speedup`): pruning drove the latency "
             "model's expected speedup to the target and kept the predicted speedup within its "
             "tolerance; the measured speedup is the timing pass's.", "",
             "| trial | cell | target | latency model | measured | measured ÷ target | score |",
             "|---|---|---|---|---|---|---|"]
    shaky = set(unreliable(aimed)["trial_id"])
    for _, row in aimed.sort_values(["target_speedup", "trial_id"]).iterrows():
        mark = " †" if row["trial_id"] in shaky else ""
        lines.append(f"| {row['trial_id']} | {row['cell_id']} | {row['target_speedup']:g}x | "
                     f"{row.get('latency_model_speedup', float('nan')):.2f}x | "
                     f"{row['speedup']:.2f}x{mark} | "
                     f"{row['speedup'] / row['target_speedup']:.3f}{mark} | {row['score']:.4f} |")
    trusted = reliable(aimed)
    ratio = trusted["speedup"] / trusted["target_speedup"]
    if len(ratio):
        lines += ["", f"Measured ÷ target over the {len(ratio)} reliable timing(s): median "
                  f"{ratio.median():.3f}, from {ratio.min():.3f} to {ratio.max():.3f}."]
    return lines + ["", *unreliable_note(unreliable(aimed))]


def unreliable_note(shaky: pd.DataFrame) -> list[str]:
    """The footnote under a table that leaves out (or marks †) unreliable timings."""
    if not len(shaky):
        return []
    notes = "; ".join(f"{r['trial_id']}: {r.get('timing_note') or 'unreliable'}"
                      for _, r in shaky.iterrows())
    return [f"† Timed while the measurement was unreliable, so left out of the figures above "
            f"and not a result: {notes}. Re-time on a quiet machine (`python -m "
            f"cofi_sweep.retime <experiment>`).", ""]


def off_target_section(table: pd.DataFrame) -> list[str]:
    """Finished CoFi trials whose compact model missed its target band: their points sit at the
    sparsity they reached, and the report says so rather than let the target label stand."""
    if "on_target" not in table:
        return []
    off = table[(table["status"] == "finished") & (table["on_target"] == False)]  # noqa: E712
    if off.empty:
        return []
    lines = ["", "## Off-target trials", "",
             "These compact models lie outside their target's band (realized sparsity in "
             "[target − ε, target + max_overshoot], or the predicted speedup within its "
             "tolerance): more pruning steps or a larger `reg_learning_rate` close the gap.",
             "", "| trial | cell | target | realized | score |", "|---|---|---|---|---|"]
    for _, row in off.sort_values(["cell_id", "trial_id"]).iterrows():
        target = (f"{row['target_speedup']:g}x" if pd.notna(row.get("target_speedup"))
                  else row["target_sparsity"])
        lines.append(f"| {row['trial_id']} | {row['cell_id']} | {target} | "
                     f"{row['realized_sparsity']:.3f} | {row['score']:.4f} |")
    return lines


def write_report(experiment: Path, latency: str = LATENCY_FILE, out: Path | None = None
                 ) -> Path:
    """Writes every output listed in the module docstring into ``out`` (default: the
    experiment folder), with the speedups of the latency table ``latency`` (a re-timed
    setting's, :mod:`cofi_sweep.retime`); returns the report's path."""
    experiment = Path(experiment)
    out = Path(out or experiment)
    table = load_results(experiment, latency, out)
    space_file = experiment / SPACE_FILE
    table.attrs["space"] = json.loads(space_file.read_text()) if space_file.is_file() else {}
    task_file = experiment / TASK_FILE
    table.attrs["task"] = json.loads(task_file.read_text()) if task_file.is_file() else {}
    title = f"Sweep report: {experiment.name}" + (
        "" if latency == LATENCY_FILE else f", re-timed ({latency})")
    return render_report(table, out, title)


def task_statement(table: pd.DataFrame) -> str:
    """The task as the user named it: classification (its labels) or regression, and the
    metric every score is."""
    task = table.attrs.get("task") or {}
    if not task:
        return ""
    kind = ("regression" if task["problem"] == "regression" else
            f"classification into {len(task['labels'])} labels ({', '.join(task['labels'])})")
    return (f"Task: **{task['name']}**, {kind}. Score: dev {task['metrics'][0]}"
            + (f" (also recorded: {', '.join(task['metrics'][1:])})" if task["metrics"][1:]
               else "") + ".")


def latency_statement(info: dict) -> str:
    """How the speedups were measured: the protocol and the device, from the latency table."""
    p, d = info.get("protocol") or {}, info.get("device") or {}
    if not p:
        return "Speedup: the teacher's latency divided by the compact model's."
    where = (f"{d.get('name', '?')} ({d.get('device', p.get('device', '?'))}, "
             f"{d.get('threads', p.get('threads', '?'))} threads, torch {d.get('torch', '?')})"
             if d else f"{p.get('device', '?')}, {p.get('threads', '?')} threads")
    return (f"Speedup: the teacher's latency divided by the compact model's, both timed after "
            f"training on {where} with {p.get('runtime', 'pytorch')} in "
            f"{p.get('dtype', 'fp32')}: batch "
            f"{p.get('batch_size')} × {p.get('seq_len')} tokens, {p.get('warmup')} warm-up and "
            f"{p.get('repeats')} timed passes, each model interleaved with the teacher "
            f"(medians; the spread is a slow-quartile teacher over a fast-quartile model and "
            f"back).")


def render_report(table: pd.DataFrame, experiment: Path, title: str) -> Path:
    """pareto.csv, plots/ and report.md in ``experiment`` from a results table (a sweep's, or
    any table with the same columns, e.g. a benchmark's); returns the report's path."""
    pts = points(table)
    front, volumes = frontiers(pts, teacher_score(table))
    if len(front):
        keep = ["frontier", "cell_id", "target_sparsity", "target_speedup", "score",
                "score_std", "selection_score", "seeds", "speedup", "realized_sparsity",
                "prunable_params", "trial_ids", "timing_reliable", "compact_dir", "compact_uri"]
        out = front[[c for c in keep if c in front]].copy()
        out["hypervolume"] = out["frontier"].map(volumes)
        out.to_csv(experiment / PARETO_FILE, index=False)
    else:
        pd.DataFrame(columns=["frontier", "score", "speedup"]).to_csv(
            experiment / PARETO_FILE, index=False)
    published = published_points(table)
    plots = write_plots(table, front, published, experiment / PLOTS_DIR) if len(table) else []

    lines = [f"# {title}", ""]
    task = task_statement(table)
    if task:
        lines += [task, ""]
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    lines.append("Trials: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none yet"))
    lines += ["", selection_statement(table), ""]
    lines.append(latency_statement(table.attrs.get("latency", {})))
    lines.append("")
    shaky = unreliable(table)
    if len(shaky):
        lines += [f"**{len(shaky)} speedup(s) were timed while the measurement was unreliable** "
                  "(marked † below and ringed in red in the plot): they are not results. "
                  "Re-time on a quiet machine with `python -m cofi_sweep.retime <experiment>`.",
                  ""]
    lines.append(f"Points are placed at their measured "
                 f"speedup and realized sparsity; trials that missed their target's band never "
                 f"stand on a frontier. Hypervolume: one reference for every frontier, speedup "
                 f"1× and the teacher's score − {METRIC_SPAN:g}, with {SPEEDUP_SPAN:g}× of "
                 f"speedup (log scale) weighing as much as {METRIC_SPAN:g} of score, so 1.0 is a "
                 f"{SPEEDUP_SPAN:g}× model at the teacher's score.")
    lines.append("")
    if volumes:
        lines += ["## Frontiers", "", "| frontier | points | hypervolume |", "|---|---|---|"]
        for label, volume in sorted(volumes.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {label} | {int((front['frontier'] == label).sum())} | "
                         f"{volume:.4f} |")
        best = max(volumes, key=volumes.get)
        lines += ["", f"Largest hypervolume: **{best}**.", ""]
        lines += speedup_table(front)
        lines += baseline_table(front, pts)
        lines += ["## Frontier models", "", "| frontier | score (mean ± sd) | seeds | speedup | "
                  "realized sparsity | compact model (best seed) |", "|---|---|---|---|---|---|"]
        for _, row in front.sort_values(["frontier", "speedup"]).iterrows():
            lines.append(f"| {row['frontier']} | {mean_sd(row['score'], row['score_std'])} | "
                         f"{row['seeds']} | "
                         f"{row['speedup']:.2f}x{'' if row.get('timing_reliable', True) else ' †'}"
                         f" | {row['realized_sparsity']:.3f} | "
                         f"`{row.get('compact_uri') or row['compact_dir']}` |")
    lines += [""] + ablation_section(table)
    lines += alignment_section(table)
    lines += speedup_target_section(table)
    lines += prediction_section(table)
    lines += off_target_section(table)
    if len(published):
        lines += ["", "## Published reference points (reported, other hardware)", "",
                  published.to_markdown(index=False) if hasattr(published, "to_markdown")
                  else published.to_string(index=False)]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots
                                         if p.suffix == ".png"]
    path = experiment / REPORT_FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    experiment = experiment_from_args(argv, "python -m analysis.report", __doc__)
    if experiment is None:
        return 2
    path = write_report(experiment)
    print(f"report: {path}\nplots: {experiment / PLOTS_DIR}\nfrontier: {experiment / PARETO_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
