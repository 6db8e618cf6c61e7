"""The import rules of the layers, in one place (see cofi_sweep/__init__.py).

    core -> latency -> job -> deploy (core, latency only) -> sweep;  analysis stands alone

Every import counts, at module level or inside a function: a layer imports only itself and the
layers below it, there is no import circle between modules, a tiny CoFi job runs to a compact
model with ray, optuna and analysis blocked, and an export needs neither the sweep nor analysis.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {  # layer -> the layers (of ours) it may import
    "core": {"core"},
    "latency": {"core", "latency"},
    "job": {"core", "latency", "job"},
    "deploy": {"core", "latency", "deploy"},
    "sweep": {"core", "latency", "job", "deploy", "sweep", "analysis"},
    "analysis": {"analysis"},
}
FORBIDDEN_BELOW_SWEEP = ("ray", "optuna")  # third-party packages only the sweep may use


def modules() -> dict[str, Path]:
    found = {}
    for package in ("cofi_sweep", "analysis"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def layer(module: str) -> str | None:
    """The layer of one of our modules; None for the commands and the package's own files."""
    parts = module.split(".")
    if parts[0] == "analysis":
        return "analysis"
    return parts[1] if len(parts) > 2 and parts[1] in ALLOWED else None


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports, anywhere in it (ours resolved to the module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:  # `from pkg import module` names a module
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return out


def test_each_layer_imports_only_itself_and_the_layers_below() -> None:
    known = modules()
    wrong = []
    for module, path in known.items():
        mine = layer(module)
        if mine is None:
            continue
        for target in imports(path, known):
            top = target.split(".")[0]
            theirs = layer(target) if target in known else None
            if theirs is not None and theirs not in ALLOWED[mine]:
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
            if mine != "sweep" and top in FORBIDDEN_BELOW_SWEEP:
                wrong.append(f"{module} ({mine}) imports {target}")
            if top == "cofi_sweep" and target in known and layer(target) is None \
                    and target != "cofi_sweep":
                wrong.append(f"{module} ({mine}) imports the command module {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles() -> None:
    known = modules()
    graph = {m: {t for t in imports(p, known) if t in known and t != m}
             for m, p in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, circles


BLOCK = ("import sys\n"
         "for blocked in {blocked!r}:\n"
         "    sys.modules[blocked] = None  # any import of it fails\n")


def test_a_tiny_cofi_job_runs_without_ray_optuna_or_analysis(tmp_path: Path,
                                                              teacher_cache: Path) -> None:
    code = BLOCK.format(blocked=("ray", "optuna", "analysis")) + f"""
sys.path.insert(0, {str(ROOT / 'tests')!r})
from helpers import job
from cofi_sweep.job.recipe import run_cofi
result = run_cofi(job(__import__('pathlib').Path({str(tmp_path)!r}),
                      __import__('pathlib').Path({str(teacher_cache)!r})))
assert (__import__('pathlib').Path(result.compact_dir) / 'model.safetensors').is_file()
assert not any(m.split('.')[0] in ('ray', 'optuna', 'analysis')
               for m, v in sys.modules.items() if v is not None)
print('compact', result.compact_dir)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and "compact" in run.stdout, run.stderr[-3000:]


def test_deploy_needs_neither_the_sweep_nor_analysis(tmp_path: Path) -> None:
    code = BLOCK.format(blocked=("ray", "optuna", "analysis", "cofi_sweep.sweep",
                                 "cofi_sweep.job")) + f"""
from pathlib import Path
from cofi_sweep.core.model import load_model
from cofi_sweep.deploy.export import export_hf
model = load_model('tiny-bert', 2)
model.save_pretrained(Path({str(tmp_path)!r}) / 'compact')
print(export_hf(Path({str(tmp_path)!r}) / 'compact', Path({str(tmp_path)!r}) / 'hf')['class'])
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


def test_analysis_reads_results_without_the_training_layers() -> None:
    code = (BLOCK.format(blocked=("ray", "torch", "transformers", "cofi_sweep"))
            + "import analysis.results, analysis.pareto, analysis.points, analysis.plots, "
              "analysis.report\n")
    subprocess.run([sys.executable, "-c", code], check=True)
