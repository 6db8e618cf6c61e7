"""Turn a sweep's experiment folder into a results table, Pareto frontiers, plots and a report.

    python -m analysis.report runs/sweeps/quickstart

Writes, in the experiment folder (works on running or interrupted experiments too):
  results.parquet   one row per trial (from the trial folders)
  pareto.csv        non-dominated points per method/ablation (max metric, max measured speedup)
                    and each frontier's hypervolume against the stated reference point
  plots/*.png|svg   metric vs measured speedup (frontiers, teacher, 95 % of teacher, published
                    points), metric vs remaining parameters, predicted vs measured speedup,
                    kept structure of the frontier models
  report.md         the tables, which ablation wins where, the frontier's compact model paths
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.pareto import hypervolume_2d, pareto_front
from analysis.results import TABLE_FILE, experiment_from_args, write_table

PUBLISHED = Path(__file__).with_name("published.csv")
OBJECTIVES = {"speedup": "max", "score": "max"}
REFERENCE = (1.0, 0.0)  # hypervolume reference: no speedup, metric 0
OUTPUTS = (TABLE_FILE, "pareto.csv", "report.md", "plots")  # what write_report writes


def load_results(experiment: Path) -> pd.DataFrame:
    """The trial table (re-collected from the trial folders so it is current)."""
    table = pd.read_parquet(write_table(experiment))
    if "speedup" not in table and "provisional_speedup" in table:
        table["speedup"] = np.nan  # exclusive timing not done yet (running experiment)
    return table


def frontier_label(row: pd.Series) -> str:
    method = row.get("method", "cofi") or "cofi"
    return f"{method}:{row.get('ablation')}" if method == "cofi" else f"{method}"


def frontiers(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Non-dominated finished trials per method/ablation, and each frontier's hypervolume."""
    done = table[(table.get("status") == "finished")].copy() if len(table) else table
    if done.empty or "speedup" not in done:
        return pd.DataFrame(), {}
    done["frontier"] = done.apply(frontier_label, axis=1)
    fronts, volumes = [], {}
    for label, group in done.groupby("frontier"):
        front = pareto_front(group, objectives=OBJECTIVES)
        fronts.append(front)
        volumes[label] = hypervolume_2d(front[["speedup", "score"]].to_numpy(), REFERENCE)
    return pd.concat(fronts), volumes


def published_points(table: pd.DataFrame) -> pd.DataFrame:
    """Reported numbers for this model and task only (never mixed into our frontiers)."""
    points = pd.read_csv(PUBLISHED, comment="#")
    space = table.attrs.get("space", {})
    model, task = space.get("job", {}).get("model"), space.get("job", {}).get("task")
    return points[(points["model"] == model) & (points["task"] == task)]


def write_plots(table: pd.DataFrame, front: pd.DataFrame, published: pd.DataFrame,
                out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    done = table[table["status"] == "finished"].copy()
    done["frontier"] = done.apply(frontier_label, axis=1) if len(done) else []
    metric = str(done["main_metric"].iloc[0]) if len(done) and "main_metric" in done else "score"
    teacher = float(done["teacher_score"].iloc[0]) if len(done) else float("nan")
    written = []

    def save(fig: plt.Figure, name: str) -> None:
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(out / f"{name}.{ext}", dpi=130)
            written.append(out / f"{name}.{ext}")
        plt.close(fig)

    # 1. metric vs measured speedup
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for i, (label, group) in enumerate(done.groupby("frontier")):
        color = f"C{i}"
        ax.scatter(group["speedup"], group["score"], facecolors="none", edgecolors=color,
                   s=30, label=f"{label} (all finished trials)")
        f = front[front["frontier"] == label] if len(front) else group.iloc[:0]
        ax.plot(f["speedup"], f["score"], "-o", color=color, label=f"{label} (frontier)", ms=5)
    if np.isfinite(teacher):
        ax.axhline(teacher, color="k", ls="--", lw=1, label=f"teacher ({teacher:.3f})")
        ax.axhline(0.95 * teacher, color="gray", ls=":", lw=1, label="95 % of teacher")
    if len(published):
        ax.scatter(published["speedup"], published["score"] / 100, marker="x", color="k",
                   label="reported, other hardware")
    ax.set_xlabel("measured speedup over the teacher (x)")
    ax.set_ylabel(f"dev {metric}")
    ax.set_title("Accuracy vs measured speedup")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over data
    ax.grid(alpha=0.3)
    save(fig, "metric_vs_speedup")

    # 2. metric vs remaining prunable parameters
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for i, (label, group) in enumerate(done.groupby("frontier")):
        ax.scatter(group["prunable_params"] / 1e6, group["score"], color=f"C{i}", label=label,
                   s=22)
    ax.set_xlabel("remaining prunable parameters (millions, encoder Linear layers)")
    ax.set_ylabel(f"dev {metric}")
    ax.set_title("Accuracy vs model size")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    save(fig, "metric_vs_params")

    # 3. predicted (FLOPs) vs measured speedup
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(done["predicted_speedup"], done["speedup"], s=22)
    top = float(np.nanmax([done["predicted_speedup"].max(), done["speedup"].max(), 1.0]))
    ax.plot([1, top], [1, top], "k--", lw=1, label="measured = predicted")
    ax.set_xlabel("FLOP-predicted speedup (x)")
    ax.set_ylabel("measured speedup (x)")
    ax.set_title("Predicted vs measured speedup")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, "predicted_vs_measured")

    # 4. kept structure of the frontier models
    models = front.sort_values("speedup") if len(front) else front
    if len(models):
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.5 + 0.45 * len(models) + 1.5))
        rows = [json.loads(s) for s in models["structure"]]
        names = [f"{r['frontier']} {r['speedup']:.1f}x" for _, r in models.iterrows()]
        for ax, key, title in ((axes[0], "heads", "attention heads kept"),
                               (axes[1], "ffn", "FFN units kept")):
            grid = np.array([r[key] for r in rows], dtype=float)
            image = ax.imshow(grid, aspect="auto", cmap="viridis")
            ax.set_xticks(range(grid.shape[1]), [str(i + 1) for i in range(grid.shape[1])])
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.set_xlabel("layer")
            ax.set_title(title)
            fig.colorbar(image, ax=ax)
        save(fig, "frontier_structure")
    return written


def off_target_section(table: pd.DataFrame) -> list[str]:
    """Finished CoFi trials whose compact model missed its target band: their points sit at the
    sparsity they reached, and the report says so rather than let the target label stand."""
    if "on_target" not in table:
        return []
    off = table[(table["status"] == "finished") & (table["on_target"] == False)]  # noqa: E712
    if off.empty:
        return []
    lines = ["", "## Off-target trials", "",
             "These compact models' realized sparsity lies outside [target − ε, target + "
             "max_overshoot]: more pruning steps or a larger `reg_learning_rate` close the gap.",
             "", "| trial | cell | target | realized | score |", "|---|---|---|---|---|"]
    for _, row in off.sort_values(["cell_id", "trial_id"]).iterrows():
        lines.append(f"| {row['trial_id']} | {row['cell_id']} | {row['target_sparsity']} | "
                     f"{row['realized_sparsity']:.3f} | {row['score']:.4f} |")
    return lines


def write_report(experiment: Path) -> Path:
    """Writes every output listed in the module docstring; returns the report's path."""
    experiment = Path(experiment)
    table = load_results(experiment)
    space_file = experiment / "space.json"
    table.attrs["space"] = json.loads(space_file.read_text()) if space_file.is_file() else {}
    front, volumes = frontiers(table)
    if len(front):
        keep = ["frontier", "cell_id", "target_sparsity", "score", "speedup",
                "realized_sparsity", "prunable_params", "compact_dir", "compact_uri"]
        out = front[[c for c in keep if c in front]].copy()
        out["hypervolume"] = out["frontier"].map(volumes)
        out.to_csv(experiment / "pareto.csv", index=False)
    else:
        pd.DataFrame(columns=["frontier", "score", "speedup"]).to_csv(
            experiment / "pareto.csv", index=False)
    published = published_points(table)
    plots = write_plots(table, front, published, experiment / "plots") if len(table) else []

    lines = [f"# Sweep report: {experiment.name}", ""]
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    lines.append("Trials: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none yet"))
    lines.append("")
    lines.append(f"Speedup is the teacher's latency divided by the compact model's, measured "
                 f"after training, one model at a time; hypervolume reference point: speedup "
                 f"{REFERENCE[0]}, metric {REFERENCE[1]}.")
    lines.append("")
    if volumes:
        lines += ["## Frontiers", "", "| frontier | points | hypervolume |", "|---|---|---|"]
        for label, volume in sorted(volumes.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {label} | {int((front['frontier'] == label).sum())} | "
                         f"{volume:.4f} |")
        best = max(volumes, key=volumes.get)
        lines += ["", f"Largest hypervolume: **{best}**.", ""]
        lines += ["## Which ablation wins where", "",
                  "| target sparsity | best ablation | score | speedup |", "|---|---|---|---|"]
        done = table[table["status"] == "finished"]
        for target, group in done.groupby("target_sparsity"):
            top = group.loc[group["score"].idxmax()]
            lines.append(f"| {target} | {frontier_label(top)} | {top['score']:.4f} | "
                         f"{top['speedup']:.2f}x |")
        lines += ["", "## Frontier models", "", "| frontier | score | speedup | realized "
                  "sparsity | compact model |", "|---|---|---|---|---|"]
        for _, row in front.sort_values(["frontier", "speedup"]).iterrows():
            lines.append(f"| {row['frontier']} | {row['score']:.4f} | {row['speedup']:.2f}x | "
                         f"{row['realized_sparsity']:.3f} | "
                         f"`{row.get('compact_uri') or row['compact_dir']}` |")
    lines += off_target_section(table)
    if len(published):
        lines += ["", "## Published reference points (reported, other hardware)", "",
                  published.to_markdown(index=False) if hasattr(published, "to_markdown")
                  else published.to_string(index=False)]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots
                                         if p.suffix == ".png"]
    path = experiment / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    experiment = experiment_from_args(argv, "python -m analysis.report", __doc__)
    if experiment is None:
        return 2
    path = write_report(experiment)
    print(f"report: {path}\nplots: {experiment / 'plots'}\nfrontier: {experiment / 'pareto.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
