"""The report's plots: metric vs measured speedup (the frontiers, with baselines and published
points), metric vs parameters, predicted vs measured speedup, the frontier models' structure,
and the layer alignment over training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.alignment import alignment_plot
from analysis.points import (
    PREDICTORS,
    eligible,
    frontier_label,
    speedup_targets,
    teacher_score,
    unreliable,
)


def write_plots(table: pd.DataFrame, front: pd.DataFrame, published: pd.DataFrame,
                out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    done = table[table["status"] == "finished"].copy()
    done["frontier"] = done.apply(frontier_label, axis=1) if len(done) else []
    metric = str(done["main_metric"].iloc[0]) if len(done) and "main_metric" in done else "score"
    name = (table.attrs.get("task") or {}).get("name") or (
        table.attrs.get("space") or {}).get("job", {}).get("task")
    task = f"{name}: " if name else ""
    teacher = teacher_score(table)
    off = done[~done.index.isin(eligible(table).index)]
    done = done[done.index.isin(eligible(table).index)]
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
        if len(f) and f["score_std"].notna().any():
            ax.errorbar(f["speedup"], f["score"], yerr=f["score_std"], fmt="none",
                        ecolor=color, capsize=3, lw=1)
    if len(off):
        ax.scatter(off["speedup"], off["score"], marker="x", color="gray", s=30,
                   label="off target (never on a frontier)")
    shaky = unreliable(table)
    if len(shaky):  # ringed: their speedup is not a fact (see the report's footnote)
        ax.scatter(shaky["speedup"], shaky["score"], marker="o", facecolors="none",
                   edgecolors="red", s=140, linewidths=1.5,
                   label="speedup timed on a busy machine (unreliable; re-time it)")
    for k in sorted(speedup_targets(table)["target_speedup"].unique()):  # where they aimed
        ax.axvline(k, color="gray", ls="-.", lw=0.8)
        ax.annotate(f"target {k:g}x", (k, 0.02), xycoords=("data", "axes fraction"),
                    rotation=90, fontsize=7, color="gray", xytext=(2, 0),
                    textcoords="offset points")
    if np.isfinite(teacher):
        ax.axhline(teacher, color="k", ls="--", lw=1, label=f"teacher ({teacher:.3f})")
        ax.axhline(0.95 * teacher, color="gray", ls=":", lw=1, label="95 % of teacher")
    for _, p in published.iterrows():  # each labelled: name, hardware, metric convention
        ax.scatter(p["speedup"], p["score"] / 100, marker="x", color="k", s=25)
        ax.annotate(f"{p['method']} ({p['hardware']}; {p['source']})",
                    (p["speedup"], p["score"] / 100), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    if len(published):
        ax.scatter([], [], marker="x", color="k", label="published (other hardware, paper's "
                                                         "teacher; dev score)")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_xlabel("measured speedup over the teacher (log scale)")
    ax.set_ylabel(f"dev {metric}")
    ax.set_title(f"{task}{metric} vs measured speedup (frontier points: mean ± sd over seeds)")
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
    ax.set_title(f"{task}{metric} vs model size")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    save(fig, "metric_vs_params")

    # 3. predicted (FLOPs, latency model) vs measured speedup
    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = 1.0
    for column, label in PREDICTORS.items():
        if column in done and done[column].notna().any():
            ax.scatter(done[column], done["speedup"], s=22, label=label)
            top = float(np.nanmax([top, done[column].max(), done["speedup"].max()]))
    ax.plot([1, top], [1, top], "k--", lw=1, label="measured = predicted")
    ax.set_xlabel("predicted speedup (x)")
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

    # 5. which student layer each teacher layer was distilled into, per evaluation
    fig = alignment_plot(table, plt)
    if fig is not None:
        save(fig, "layer_alignment")
    return written
