"""What the benchmarks that time frontier structures share: their command line (``--label``,
``--repeats``), the latency setting they time at (sst2_minilm_cpu's), the dense MiniLM's shape,
and the rows of ``results/frontier_<label>.json`` whose structures they rebuild."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cofi_sweep.core.model import EncoderShape
from cofi_sweep.sweep.space import LatencyConfig, load_space

HERE = Path(__file__).resolve().parent


def setup(doc: str | None) -> tuple[argparse.Namespace, LatencyConfig, EncoderShape]:
    """Parse ``--label``/``--repeats``; return them, the latency setting and the dense shape."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="sst2_minilm_cpu",
                        help="which results/frontier_<label>.json to rebuild")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    latency = load_space(HERE.parent / "search_spaces" / "sst2_minilm_cpu.yaml").latency
    return args, latency, EncoderShape.from_pretrained("minilm", 2)


def frontier_rows(label: str) -> list[dict]:
    """The frontier benchmark's models (CoFi and distillation students), structure included."""
    return json.loads((HERE / "results" / f"frontier_{label}.json").read_text())
