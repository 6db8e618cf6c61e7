"""What a finished CoFi job returns, and writes as ``result.json`` beside its compact model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CofiResult:
    """What a finished job returns (and writes as ``result.json`` next to the compact model)."""

    compact_dir: str
    target_sparsity: float | None  # None: a speedup target
    realized_sparsity: float
    reached_target: bool  # the expected sparsity (speedup) reached its band during pruning
    # realized sparsity in [target - eps, target + max_overshoot], or the predicted speedup
    # within its tolerance of a speedup target; None: a baseline
    on_target: bool | None
    prunable_params: int
    dense_prunable_params: int
    total_params: int
    teacher_metrics: dict[str, float]
    pruned_metrics: dict[str, float]  # dev: the best pruning checkpoint, compacted
    compact_metrics: dict[str, float]  # dev: the compact model after fine-tuning
    selection_metrics: dict[str, float]  # selection split: the same final model
    selection: str  # which split chose the checkpoints ("dev" when there is no selection split)
    # the compacted pruning checkpoint: step, expected, gates' deterministic (before projection)
    # and realized sparsity; empty for a baseline
    pruned_checkpoint: dict[str, Any]
    main_metric: str
    structure: dict[str, Any]
    layer_alignment: list[int | None]  # student layer (1-based) per teacher layer
    teacher_layers: list[int]
    wall_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    target_speedup: float | None = None
    latency_model_speedup: float | None = None  # predicted, for a speedup target
    target_miss: float = 0.0  # how far off its band a CoFi job ended (what the search avoids)
    task: dict[str, Any] = field(default_factory=dict)  # name, problem, labels, metrics

    def alignment_trace(self) -> list[list[Any]]:
        """``[step, stage, alignment]`` per evaluation: the student layer (1-based) that each of
        ``teacher_layers`` mapped to at the last training step before it (what the report plots
        to show whether the dynamic mapping settled)."""
        return [[e["step"], e["stage"], e["layer_alignment"]] for e in self.history
                if "layer_alignment" in e]

    def table_columns(self) -> dict[str, Any]:
        """The columns a results row takes from this result beside its scores (lists and
        dicts as JSON text): kept structure, layer alignment and its trace, and what the
        projection moved (for a pruned model: the gates' own sparsity before it, and the
        keep/remove decisions it changed per mask family)."""
        moved = self.pruned_checkpoint.get("projection_moves")
        return {
            "structure": json.dumps(self.structure),
            "layer_alignment": json.dumps(self.layer_alignment),
            "teacher_layers": json.dumps(self.teacher_layers),
            "alignment_trace": json.dumps(self.alignment_trace()),
            "gates_sparsity": self.pruned_checkpoint.get("deterministic_sparsity"),
            "projection_moves": json.dumps(moved) if moved is not None else None,
        }
