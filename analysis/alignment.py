"""Layer alignment over training: which student layer each teacher layer was distilled into.

With the dynamic mapping (``cofi.distill: dynamic``), every training step matches each chosen
teacher layer to the student layer whose projected output is closest, top-down and strictly
downward. Every evaluation records the mapping of the step before it, and a finished trial
carries the list as ``alignment_trace`` (``[[step, stage, [student layer per teacher layer]],
...]``, 1-based, ``null`` where no layer was left) beside ``teacher_layers``.

A trial's alignment has *settled* when its last change came before the final third of its
evaluations (so the last third, and at least two, agree); a cell's alignment is *consistent*
when its settled seeds end on the same mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

MAPPED_MODES = ("dynamic", "unconstrained")  # mappings chosen during training (fixed is set)
MAX_PANELS = 12  # cells drawn in the plot, in the report's order


@dataclass
class Trace:
    """One trial's alignment per evaluation."""

    trial_id: str
    teacher_layers: list[int]
    steps: list[int]
    stages: list[str]
    alignments: list[list[int | None]]

    @property
    def final(self) -> tuple[int | None, ...]:
        return tuple(self.alignments[-1]) if self.alignments else ()

    def last_change(self) -> int | None:
        """The step of the last evaluation whose mapping differs from the one before it
        (None: it never changed)."""
        changed = [self.steps[i] for i in range(1, len(self.alignments))
                   if self.alignments[i] != self.alignments[i - 1]]
        return changed[-1] if changed else None

    def settled(self) -> bool:
        """The same mapping over the last third of the evaluations (at least the last two)."""
        tail = max(2, -(-len(self.alignments) // 3))
        return len(self.alignments) >= 2 and all(a == self.alignments[-1]
                                                 for a in self.alignments[-tail:])


def traces(rows: pd.DataFrame) -> list[Trace]:
    """The traces of the rows that carry one (trials of older versions carry none)."""
    if "alignment_trace" not in rows:
        return []
    out = []
    for _, row in rows.iterrows():
        raw, layers = row.get("alignment_trace"), row.get("teacher_layers")
        if not isinstance(raw, str) or not isinstance(layers, str):
            continue
        evaluations = json.loads(raw)
        if evaluations and evaluations[-1][2]:  # a student distilled layer to layer
            out.append(Trace(str(row["trial_id"]), json.loads(layers),
                             [e[0] for e in evaluations], [e[1] for e in evaluations],
                             [e[2] for e in evaluations]))
    return out


def describe(mapping: tuple[int | None, ...] | list[int | None], teacher_layers: list[int]
             ) -> str:
    """``2→1, 3→2, 5→4, 6→5`` (teacher → student; – where nothing was left to map to)."""
    return ", ".join(f"{t}→{'–' if s is None else s}" for t, s in zip(teacher_layers, mapping))


def mapped_cells(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Finished CoFi cells whose mapping was chosen in training, each with its trials, in
    cell order."""
    if "alignment_trace" not in table or "status" not in table:
        return []
    done = table[table["status"] == "finished"]
    if "method" in done:
        done = done[done["method"] == "cofi"]
    modes = _modes(table)
    return [(cell, group) for cell, group in done.groupby("cell_id", sort=True)
            if modes.get(str(group["ablation"].iloc[0]), "dynamic") in MAPPED_MODES
            and traces(group)]


def _modes(table: pd.DataFrame) -> dict[str, str]:
    """Each ablation's layer mapping mode, from the space (``dynamic`` unless set)."""
    space = table.attrs.get("space") or {}
    base = (space.get("job") or {}).get("cofi", {}).get("distill", "dynamic")
    return {name: (overrides or {}).get("distill", base)
            for name, overrides in ((space.get("grid") or {}).get("ablations") or {}).items()}


def cell_summary(group: pd.DataFrame) -> dict[str, Any]:
    """A cell's alignment: how many seeds settled, their final mappings, and whether the
    settled ones agree."""
    found = traces(group)
    settled = [t for t in found if t.settled()]
    finals = {t.final for t in settled}
    return {"traces": found, "settled": len(settled), "seeds": len(found),
            "consistent": len(finals) == 1 and len(settled) == len(found),
            "finals": sorted(finals, key=str),
            "teacher_layers": found[0].teacher_layers if found else []}


def alignment_section(table: pd.DataFrame) -> list[str]:
    """The report's "Layer alignment" section: per cell, whether the mapping settled, to what,
    and whether the seeds agree."""
    cells = mapped_cells(table)
    if not cells:
        return []
    lines = ["## Layer alignment", "",
             "Which student layer each teacher layer was distilled into, recorded at every "
             "evaluation (the mapping of the step before it; plot: `plots/layer_alignment.png`). "
             "A seed has *settled* when the final third of its evaluations (at least two) agree; "
             "a cell is *consistent* when all its seeds settled on the same mapping.", "",
             "| cell | seeds settled | final mapping (teacher → student) | last change (step) | "
             "consistent |", "|---|---|---|---|---|"]
    for cell, group in cells:
        s = cell_summary(group)
        finals = "; ".join(describe(f, s["teacher_layers"]) for f in s["finals"]) or "–"
        changes = ", ".join("never" if t.last_change() is None else str(t.last_change())
                            for t in s["traces"])
        lines.append(f"| {cell} | {s['settled']} of {s['seeds']} | {finals} | {changes} | "
                     f"{'yes' if s['consistent'] else 'no'} |")
    return lines + [""]


def alignment_plot(table: pd.DataFrame, plt: Any) -> Any | None:
    """Student layer per teacher layer over the evaluations, a panel per cell (its first
    seed solid, the others dashed); None when no trial carries a trace."""
    cells = mapped_cells(table)[:MAX_PANELS]
    if not cells:
        return None
    cols = min(3, len(cells))
    rows = -(-len(cells) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False,
                             sharey=True)
    for ax, (cell, group) in zip(axes.flat, cells):
        for k, trace in enumerate(sorted(traces(group), key=lambda t: t.trial_id)):
            for i, teacher_layer in enumerate(trace.teacher_layers):
                ys = [a[i] if a[i] is not None else float("nan") for a in trace.alignments]
                ax.step(trace.steps, ys, where="pre", color=f"C{i}", lw=1.6 if k == 0 else 0.9,
                        ls="-" if k == 0 else "--", alpha=1.0 if k == 0 else 0.6,
                        label=f"teacher {teacher_layer}" if k == 0 else None)
            if k == 0:  # the stages, from the first seed's evaluations
                for stage, start in _stage_starts(trace):
                    ax.axvline(start, color="gray", lw=0.6, ls=":")
                    ax.annotate(stage, (start, 0.98), xycoords=("data", "axes fraction"),
                                fontsize=6, color="gray", va="top", xytext=(2, 0),
                                textcoords="offset points")
        ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(cell, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("student layer")
    for ax in list(axes.flat)[len(cells):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Layer alignment per evaluation (first seed solid, others dashed)",
                 fontsize=10)
    return fig


def _stage_starts(trace: Trace) -> list[tuple[str, int]]:
    out = []
    for i, stage in enumerate(trace.stages):
        if i == 0 or stage != trace.stages[i - 1]:
            out.append((stage, trace.steps[i - 1] if i else 0))
    return out
