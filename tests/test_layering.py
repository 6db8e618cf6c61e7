"""The CoFi core must not import Ray; analysis must not import either training layer."""

from __future__ import annotations

import subprocess
import sys

CORE = ["config", "data", "model", "gates", "sparsity", "distill", "compact", "evaluation",
        "pretrained", "teacher", "projection", "students", "prune", "space", "latency",
        "latency_model", "export", "modeling_cofi_bert", "preflight", "targets"]


def test_core_imports_without_ray() -> None:
    code = ("import sys; sys.modules['ray'] = None\n"
            + "".join(f"import cofi_sweep.{m}\n" for m in CORE)
            + "assert not any(k == 'ray' or k.startswith('ray.') for k in sys.modules "
              "if sys.modules[k] is not None)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_analysis_reads_results_without_the_training_layers() -> None:
    code = ("import sys\n"
            "for blocked in ('ray', 'torch', 'transformers', 'cofi_sweep'):\n"
            "    sys.modules[blocked] = None\n"
            "import analysis.results, analysis.pareto, analysis.report\n")
    subprocess.run([sys.executable, "-c", code], check=True)
