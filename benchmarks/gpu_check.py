"""The one-command GPU check (run by benchmarks/gpu_check.sh; sized for 8 minutes on one GPU).

Steps, each timed and recorded (a failing step is recorded with its error, the others still run):
  1. the GPU-marked tests (tests/test_gpu.py: bf16 training, fp16 timing by CUDA events, the
     GPU latency model);
  2. the quickstart with two trials sharing the GPU (``resources.gpus_per_trial: 0.5``),
     timed on the GPU in fp16 (its speedup cell dropped: a launch-bound GPU need not reach 5x
     on MiniLM at batch 32); every trial's peak GPU memory;
  3. a BERT-base-shaped model with random weights: a training step (forward, backward, AdamW)
     in fp32 and in bf16 autocast, batch 32 x 128;
  4. the GPU latency model for BERT-base in fp16 (batch 32 x 128): calibration time and its
     prediction for a half-width model;
  5. a retime of the quickstart's models on the GPU in fp16.
Writes benchmarks/results/gpu_check.json.

    bash benchmarks/gpu_check.sh
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]


def step(results: dict, name: str, fn: Callable[[], Any]) -> None:
    start = time.time()
    try:
        results[name] = {"ok": True, **fn()}
    except Exception as e:  # recorded, so one failure does not hide the other checks
        results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                         "traceback": traceback.format_exc()[-3000:]}
    results[name]["seconds"] = round(time.time() - start, 1)
    print(f"[gpu_check] {name}: {'ok' if results[name]['ok'] else 'FAILED'} "
          f"({results[name]['seconds']} s)", flush=True)


def run(cmd: list[str], timeout: int) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return done


def gpu_tests() -> dict:
    done = run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py"], 600)
    return {"summary": done.stdout.strip().splitlines()[-1]}


def quickstart(storage: Path) -> dict:
    import pandas as pd

    run([sys.executable, "-m", "cofi_sweep.run", "--space", "quickstart.yaml",
         "name=gpu-check", f"storage_path={storage}", "grid.target_speedup=[]",
         "resources.gpus_per_trial=0.5", "resources.max_concurrent_trials=2",
         "latency.device=cuda", "latency.dtype=fp16"], 600)
    table = pd.read_parquet(storage / "gpu-check" / "results.parquet")
    return {"trials": len(table), "finished": int((table["status"] == "finished").sum()),
            "peak_gpu_memory_mb": [round(float(m), 1) for m in table["peak_gpu_memory_mb"]
                                   if m == m],
            "precision": sorted(set(table["precision"].dropna())),
            "speedups_fp16": [round(float(s), 2) for s in table["speedup"] if s == s]}


def bert_base_step_times() -> dict:
    from cofi_sweep.core.model import CofiBert, EncoderShape
    from cofi_sweep.core.precision import autocast

    shape = EncoderShape("bert", 30522, 512, 2, 0, 768, 64, [12] * 12, [3072] * 12, 2, 768)
    device = torch.device("cuda")
    ids = torch.randint(5, 30000, (32, 128), device=device)
    labels = torch.randint(0, 2, (32,), device=device)
    out = {}
    for precision in ("fp32", "bf16"):
        model = CofiBert(shape).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        times = []
        for i in range(13):
            torch.cuda.synchronize()
            start = time.perf_counter()
            with autocast(precision, device):
                logits = model(ids).logits
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - start)
        out[f"{precision}_step_s"] = sorted(times)[len(times) // 2]
    out["bf16_speedup"] = round(out["fp32_step_s"] / out["bf16_step_s"], 2)
    return out


def latency_model() -> dict:
    import dataclasses

    from cofi_sweep.core.model import EncoderShape
    from cofi_sweep.latency.latency_model import latency_table

    dense = EncoderShape("bert", 30522, 512, 2, 0, 768, 64, [12] * 12, [3072] * 12, 2, 768)
    with tempfile.TemporaryDirectory() as cache:
        table = latency_table(dense, batch_size=32, seq_len=128, device="cuda", dtype="fp16",
                              cache_dir=cache)
    half = dataclasses.replace(dense, heads=[6] * 12, ffn=[1536] * 12)
    return {"device": table.protocol.get("name"), "dtype": table.protocol.get("dtype"),
            "dense_latency_s": table.predict(dense), "half_width_speedup":
            round(table.speedup(dense, half), 2)}


def retime(storage: Path) -> dict:
    run([sys.executable, "-m", "cofi_sweep.retime", str(storage / "gpu-check"), "--device",
         "cuda", "--dtype", "fp16", "--batch-size", "32", "--seq-len", "64"], 600)
    tables = list((storage / "gpu-check").glob("latency-*fp16.json"))
    rows = json.loads(tables[0].read_text())["trials"] if tables else {}
    return {"table": tables[0].name if tables else None,
            "speedups": {k: round(v["speedup"], 2) for k, v in rows.items()}}


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here")
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(), "torch": torch.__version__,
        "python": platform.python_version(), "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
            text=True).stdout.strip()}
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        step(results, "gpu_tests", gpu_tests)
        step(results, "quickstart_half_gpu_trials", lambda: quickstart(storage))
        step(results, "bert_base_step_fp32_vs_bf16", bert_base_step_times)
        step(results, "gpu_latency_model_fp16", latency_model)
        step(results, "retime_fp16", lambda: retime(storage))
    results["wall_seconds"] = round(time.time() - start, 1)
    out = ROOT / "benchmarks" / "results" / "gpu_check.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items()}, indent=1, default=str)[:6000])


if __name__ == "__main__":
    main()
