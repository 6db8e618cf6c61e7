"""Which evaluation of a stage becomes its best checkpoint (the model the stage hands on).

The best is the highest selection-split score among *eligible* evaluations: while pruning, those
whose (projected) masks are within the target's band once the target has been reached; a
fine-tune's and a baseline's are all eligible. While none has been eligible, the evaluation
closest to the target stands in, so a job that never lands in its band still compacts the
nearest model (and says so).
"""

from __future__ import annotations

from typing import Any


def replaces_best(best: dict[str, Any] | None, metric: float, eligible: bool,
                  distance: float) -> bool:
    """Whether an evaluation scoring ``metric`` (``eligible``, at ``distance`` from the target)
    replaces the stage's ``best`` so far (``{"event", "eligible", "distance"?}`` or None)."""
    if best is None:
        return True
    if eligible:
        return not best["eligible"] or metric > best["event"]["metric"]
    return not best["eligible"] and distance < best["distance"]
