"""The report's "Ablations" section: each ablation against its reference at the same target, and
a verdict on each design finding of the CoFi paper (Xia, Zhong & Chen 2022, Tables 4 and 5).

An ablation (``grid.ablations``) is a named set of cofi settings. Its *reference* is the
ablation whose settings are the same but for all five mask families and the dynamic layer
mapping: ``full``, or full CoFi under the same other change (e.g. ``project_to_band: false``),
so each comparison changes one thing. What changed is read from the settings, not the names, so
any user's ablation sweep gets the same section.

Pairs are compared at the same target, where the projection onto the band puts both at the same
realized sparsity; the table shows it, and a pair whose realized sparsities are more than
``MATCHED`` apart is not judged. A difference counts only beyond the seeds' spread,
sqrt(sd_a² + sd_r²) (sample standard deviations, as everywhere in the report): within it a
finding is *inconclusive*; with one seed on either side there is no spread and no verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.alignment import cell_summary, mapped_cells
from analysis.points import mean_sd, unreliable

ALL_FAMILIES = ("head", "mha", "int", "ffn", "hidden")  # cofi_sweep.core.config.MASK_FAMILIES
MATCHED = 0.02  # realized sparsities further apart than this are not compared
CHANGE_NAMES = {("layer",): "no layer masks", ("hidden",): "no hidden mask",
                ("layer", "hidden"): "no layer or hidden masks",
                ("prediction",): "prediction distillation only", ("none",): "no distillation",
                ("fixed",): "fixed layer mapping", ("unconstrained",): "unconstrained mapping"}
MEASURES = {"score": "score", "speedup": "measured speedup", "layers": "layers kept"}


@dataclass(frozen=True)
class Finding:
    """One claim of the paper: ``measure`` of the ablation that makes ``change``, minus its
    reference's (``against``: the ablation making that change instead of full CoFi), has the
    sign ``sign`` (0: no difference) at the ``at`` target(s)."""

    change: tuple[str, ...]
    measure: str
    sign: int
    at: str  # highest | lowest | each
    paper: str
    against: tuple[str, ...] = ()


FINDINGS = (
    Finding(("layer",), "speedup", -1, "highest",
            "without the layer masks (z_MHA, z_FFN) models at high sparsity are much slower "
            "(95 %: 8.3-8.4× against 12.1×, Table 4)"),
    Finding(("layer",), "speedup", 0, "lowest",
            "without the layer masks models at low sparsity are no slower (60 %: 2.1× either "
            "way, Table 4)"),
    Finding(("hidden",), "score", -1, "each",
            "without the hidden-dimension mask accuracy drops slightly (95 %: 0.5-1.8 points, "
            "Table 4)"),
    Finding(("hidden",), "layers", -1, "each",
            "without the hidden-dimension mask more layers are removed (95 %: 10-13 % faster, "
            "Table 4)"),
    Finding(("layer", "hidden"), "speedup", -1, "highest",
            "without both layer and hidden masks models at high sparsity are slower still "
            "(95 %: 6.4-7.2× against 8.7-12.1×, Table 4)"),
    Finding(("none",), "score", -1, "each",
            "without distillation accuracy drops by 1.9-6.8 points (95 %, 4.0 on SST-2, "
            "Table 5)"),
    Finding(("prediction",), "score", 1, "each",
            "prediction-only distillation scores above no distillation (95 %: 0.9-6.7 points, "
            "Table 5)", against=("none",)),
    Finding(("prediction",), "score", -1, "each",
            "prediction-only distillation scores below full CoFi on 3 of 4 tasks (95 %: "
            "-0.1 to -1.0 points; +0.5 on SST-2, Table 5)"),
    Finding(("fixed",), "score", -1, "each",
            "the fixed layer mapping (teacher layer k to student layer k) scores below the "
            "dynamic one (95 %: 0.1-1.7 points, Table 5)"),
)


def settings(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Each ablation's effective cofi settings (the space's job.cofi with its overrides)."""
    space = table.attrs.get("space") or {}
    base = dict((space.get("job") or {}).get("cofi") or {})
    ablations = (space.get("grid") or {}).get("ablations") or {}
    return {name: {**base, **(overrides or {})} for name, overrides in ablations.items()}


def change_of(setting: dict[str, Any]) -> tuple[str, ...]:
    """What an ablation changes against full CoFi in mask families and distillation:
    ``("layer",)``, ``("hidden",)``, ``("prediction",)``, ...; ``()`` for a reference."""
    removed = set(ALL_FAMILIES) - set(setting.get("families") or ALL_FAMILIES)
    parts = []
    if {"mha", "ffn"} <= removed:
        parts.append("layer")
        removed -= {"mha", "ffn"}
    if "hidden" in removed:
        parts.append("hidden")
        removed.discard("hidden")
    parts += [f"no {family}" for family in sorted(removed)]
    if setting.get("distill", "dynamic") != "dynamic":
        parts.append(setting["distill"])
    return tuple(parts)


def describe_change(change: tuple[str, ...]) -> str:
    return CHANGE_NAMES.get(change) or ", ".join(change) or "full CoFi"


def _rest(setting: dict[str, Any]) -> str:
    """Everything but mask families and mapping: what an ablation shares with its reference."""
    return json.dumps({k: v for k, v in setting.items() if k not in ("families", "distill")},
                      sort_keys=True, default=str)


def pairs(table: pd.DataFrame) -> list[tuple[str, str, tuple[str, ...]]]:
    """(ablation, reference, change) for every ablation that has a reference."""
    found = settings(table)
    refs = {_rest(s): name for name, s in found.items() if not change_of(s)}
    out = []
    for name, s in found.items():
        change, ref = change_of(s), refs.get(_rest(s))
        if change and ref is not None:
            out.append((name, ref, change))
    return out


def _ordered(targets: Any) -> list[tuple[str, float]]:
    """Targets, sparsities before speedups, each ascending."""
    return sorted(set(targets), key=lambda k: (k[0] != "sparsity", k[1]))


def _target(row: pd.Series) -> tuple[str, float]:
    speedup = row.get("target_speedup")
    if speedup is not None and pd.notna(speedup):
        return "speedup", float(speedup)
    return "sparsity", float(row["target_sparsity"])


def target_name(target: tuple[str, float]) -> str:
    return f"sparsity {target[1]:g}" if target[0] == "sparsity" else f"speedup {target[1]:g}×"


def stats(group: pd.DataFrame) -> dict[str, Any]:
    """A cell's seeds: mean and sample sd of score and measured speedup, and mean kept
    structure and projection moves."""
    structures = [json.loads(s) for s in group["structure"]]
    layers = [sum(1 for h, f in zip(s["heads"], s["ffn"]) if h or f) for s in structures]

    def sd(values: pd.Series) -> float:
        return float(values.std(ddof=1)) if len(values) > 1 else float("nan")

    out = {"seeds": len(group), "score": group["score"].mean(), "score_sd": sd(group["score"]),
           "speedup": group["speedup"].mean(), "speedup_sd": sd(group["speedup"]),
           "realized": group["realized_sparsity"].mean(),
           "layers": float(np.mean(layers)), "layers_sd": sd(pd.Series(layers, dtype=float)),
           "mha": float(np.mean([sum(1 for h in s["heads"] if h) for s in structures])),
           "ffn_layers": float(np.mean([sum(1 for f in s["ffn"] if f) for s in structures])),
           "heads": float(np.mean([sum(s["heads"]) for s in structures])),
           "units": float(np.mean([sum(s["ffn"]) for s in structures])),
           "hidden": float(np.mean([s["hidden"] for s in structures])),
           "unreliable": not unreliable(group).empty}
    if "gates_sparsity" in group and group["gates_sparsity"].notna().any():
        out["gates"] = float(group["gates_sparsity"].mean())
    if "projection_moves" in group and group["projection_moves"].notna().any():
        moves = [json.loads(m) for m in group["projection_moves"].dropna()]
        families = dict.fromkeys(k for m in moves for k in m)  # any seed's, in order
        out["moves"] = {k: float(np.mean([m.get(k, 0) for m in moves])) for k in families}
    return out


def cells(table: pd.DataFrame) -> dict[tuple[tuple[str, float], str], dict[str, Any]]:
    """(target, ablation) -> :func:`stats`, over finished CoFi trials with a measured speedup."""
    if table.empty or "ablation" not in table or "structure" not in table:
        return {}
    done = table[table["status"] == "finished"]
    if "method" in done:
        done = done[done["method"] == "cofi"]
    done = done[done["speedup"].notna() & done["structure"].notna()] if "speedup" in done \
        else done.iloc[:0]
    out = {}
    for (ablation, _), group in done.groupby(["ablation", "cell_id"]):
        out[(_target(group.iloc[0]), str(ablation))] = stats(group)
    return out


@dataclass
class Comparison:
    """``measure`` of an ablation minus its reference's, with the combined seed spread."""

    ablation: str
    reference: str
    delta: float
    spread: float
    matched: bool
    a: dict[str, Any]
    r: dict[str, Any]

    def verdict(self, sign: int) -> str:
        if not self.matched:
            return (f"not judged (realized sparsity {self.a['realized']:.3f} against "
                    f"{self.r['realized']:.3f})")
        if not np.isfinite(self.spread):
            return "inconclusive (one seed)"
        if abs(self.delta) <= self.spread:
            return "reproduced" if sign == 0 else "inconclusive (within the spread)"
        if sign == 0:
            return "not reproduced"
        return "reproduced" if self.delta * sign > 0 else "not reproduced"


def compare(found: dict, target: tuple[str, float], ablation: str, reference: str,
            measure: str) -> Comparison | None:
    a, r = found.get((target, ablation)), found.get((target, reference))
    if a is None or r is None:
        return None
    sds = (a.get(f"{measure}_sd", np.nan), r.get(f"{measure}_sd", np.nan))
    return Comparison(ablation, reference, a[measure] - r[measure], float(np.hypot(*sds)),
                      abs(a["realized"] - r["realized"]) <= MATCHED, a, r)


def _fmt(measure: str, value: float, sign: str = "") -> str:
    digits = {"score": 4, "speedup": 2, "layers": 1}[measure]
    return f"{value:{sign}.{digits}f}" + ("×" if measure == "speedup" else "")


def finding_lines(table: pd.DataFrame, found: dict) -> list[str]:
    """A plain sentence per paper finding the sweep can test: its verdict per target and the
    figures behind it."""
    targets = _ordered(t for t, _ in found)
    sparsities = [t for t in targets if t[0] == "sparsity"] or targets
    all_settings = settings(table)
    lines = []
    for finding in FINDINGS:
        at = {"highest": sparsities[-1:], "lowest": sparsities[:1] if len(sparsities) > 1
              else [], "each": targets}[finding.at]
        phrases, verdicts = [], []
        for ablation, reference, change in pairs(table):
            if change != finding.change:
                continue
            if finding.against:  # the reference is the ablation making that other change
                reference = next((n for n, s in all_settings.items()
                                  if change_of(s) == finding.against
                                  and _rest(s) == _rest(all_settings[ablation])), None)
                if reference is None:
                    continue
            for target in at:
                c = compare(found, target, ablation, reference, finding.measure)
                if c is None:
                    continue
                v = c.verdict(finding.sign)
                verdicts.append(v.split(" (")[0])
                spread = f" ± {_fmt(finding.measure, c.spread)}" if np.isfinite(c.spread) \
                    else ""
                m = finding.measure
                phrases.append(
                    f"{target_name(target)}, {ablation} {_fmt(m, c.a[m])} against {reference} "
                    f"{_fmt(m, c.r[m])} (difference {_fmt(m, c.delta, '+')}{spread}): {v}")
        if not phrases:
            continue
        # the headline: what the judged pairs say (a pair off matched sparsity says nothing)
        judged = set(verdicts) - {"not judged"} or set(verdicts)
        word = judged.pop() if len(judged) == 1 else "mixed"
        lines.append(f"- **{word.capitalize()}**: {finding.paper}. Here: "
                     + "; ".join(phrases) + ".")
    alignment = alignment_finding(table)
    return lines + ([alignment] if alignment else [])


def alignment_finding(table: pd.DataFrame) -> str | None:
    """The paper's dynamic mapping converges to a consistent alignment: do this sweep's?"""
    mapped = mapped_cells(table)
    if not mapped:
        return None
    summaries = [cell_summary(group) for _, group in mapped]
    settled = sum(s["settled"] for s in summaries)
    seeds = sum(s["seeds"] for s in summaries)
    consistent = sum(s["consistent"] for s in summaries)
    if settled == seeds and consistent == len(summaries):
        word = "Reproduced"
    elif settled * 2 < seeds:
        word = "Not reproduced"
    else:
        word = "Mixed"
    return (f"- **{word}**: the dynamic layer mapping converges to a consistent teacher → "
            f"student alignment. Here: {settled} of {seeds} seeds settled (the final third of "
            f"their evaluations agree), and {consistent} of {len(summaries)} cells ended on "
            f"one mapping for all their seeds (see \"Layer alignment\").")


def ablation_section(table: pd.DataFrame) -> list[str]:
    """Per target, each ablation against its reference (score, measured speedup, kept
    structure, what the projection moved, with the seed spreads), then the paper's findings
    with a verdict each; empty when the sweep has no ablation with a reference."""
    found = cells(table)
    pairing = pairs(table)
    if not found or not pairing:
        return []
    lines = ["## Ablations", "",
             "Each ablation against its reference (full CoFi, or full CoFi under the same other "
             "change) at the same target: mean over seeds, Δ = ablation − reference ± the seed "
             "spreads combined (√(σ₁² + σ₂²)); a Δ counts only beyond it. Kept structure is the "
             "mean over seeds: layers with any sub-layer (MHA / FFN sub-layers), heads, FFN "
             "units, hidden dims. *Projection*: the gates' own sparsity → the compact model's, "
             "and the keep/remove decisions that rounding and the projection changed.", ""]
    for target in _ordered(t for t, _ in found):
        rows = []
        for ablation, reference, change in pairing:
            a, r = found.get((target, ablation)), found.get((target, reference))
            if a is None or r is None:
                continue
            ds = compare(found, target, ablation, reference, "score")
            dv = compare(found, target, ablation, reference, "speedup")
            rows.append(_row(ablation, describe_change(change), reference, a, ds, dv))
        if not rows:
            continue
        refs = sorted({ref for _, ref, _ in pairing if (target, ref) in found})
        lines += [f"### Target {target_name(target)}", "",
                  "| ablation | change | vs | seeds | realized sparsity | score | Δ score | "
                  "speedup | Δ speedup | layers (MHA / FFN) | heads | FFN units | hidden | "
                  "projection |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_row(ref, "reference", "–", found[(target, ref)], None, None) for ref in refs]
        lines += rows + [""]
    findings = finding_lines(table, found)
    if findings:
        lines += ["### The paper's findings", "",
                  "Reproduced: the difference has the paper's sign beyond the seed spread "
                  "(for a claim of no difference: within it). Inconclusive: within the spread, "
                  "or one seed.", "", *findings, ""]
    return lines


def _row(name: str, change: str, reference: str, s: dict[str, Any],
         ds: Comparison | None, dv: Comparison | None) -> str:
    def delta(c: Comparison | None, fmt: str) -> str:
        if c is None:
            return "–"
        real = " ✓" if np.isfinite(c.spread) and abs(c.delta) > c.spread else ""
        return mean_sd(c.delta, c.spread, fmt) + real

    moved = "–"
    if "gates" in s:
        moves = s.get("moves") or {}
        moved = f"{s['gates']:.3f} → {s['realized']:.3f}" + (
            " (" + ", ".join(f"{k} {v:.3g}" for k, v in moves.items() if v) + ")"
            if any(moves.values()) else "")
    dagger = " †" if s["unreliable"] else ""
    return (f"| {name} | {change} | {reference} | {s['seeds']} | {s['realized']:.3f} | "
            f"{mean_sd(s['score'], s['score_sd'])} | {delta(ds, '+.4f')} | "
            f"{s['speedup']:.2f}×{dagger} | {delta(dv, '+.2f')} | {s['layers']:.1f} "
            f"({s['mha']:.1f} / {s['ffn_layers']:.1f}) | {s['heads']:.1f} | {s['units']:.0f} | "
            f"{s['hidden']:.0f} | {moved} |")
