"""A latency model calibrated on the device: predicts a compact model's latency from its shape.

Matmul FLOPs mislead exactly where CoFi is most interesting: at 90-95 % sparsity the work that
does not shrink (embeddings, LayerNorms, residual adds, softmax, per-layer overhead, memory
traffic) dominates, so FLOPs promise 24x where the model runs 10x. Instead we *measure*, once
per device and protocol (batch, sequence length, threads, runtime: PyTorch or onnxruntime):

  * an MHA block (our :class:`~cofi_sweep.core.model.Layer` with only attention) over head counts,
  * an FFN block over widths,
  * the fixed part (embeddings, pooler, classifier: a model whose layers are all removed),

each at a few hidden widths, then a handful of whole models of CoFi-like shapes, and predict

    latency(shape) = fixed(d) + scale * sum over layers [ mha(d, heads_l) + ffn(d, ffn_l) ]
                     + per_mha * (live MHA sub-layers) + per_ffn * (live FFN sub-layers)

where ``scale``, ``per_mha`` and ``per_ffn`` are fitted to the whole models (blocks timed alone
run with warm caches and without the residual stream's traffic between them; a small MHA costs
more in a model than alone -- its LayerNorm, softmax and residual add do not shrink with its
heads -- and a speedup target finds exactly such shapes, so each sub-layer kind has its own
constant). Half of the whole models are at 80-97 % sparsity, where CoFi's interesting shapes
are and where a blocks-only estimate errs most. Each term is
interpolated piecewise-linearly (linear extrapolation past the last measured point; a removed
sub-layer costs nothing). Interpolation is written in torch, so the same prediction is
differentiable in expected head counts, widths and hidden size: the basis of speedup targets.
Tables are cached as JSON under ``<cache>/latency/`` by device and protocol (delete them to
recalibrate). For onnxruntime, a layer's cost is measured inside a whole exported model (a
stack of such layers), and nothing is fitted: blocks alone mislead there (:func:`_layer_runners`).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cofi_sweep.core.model import CofiBert, EncoderShape, Layer
from cofi_sweep.core.precision import DTYPES
from cofi_sweep.core.pretrained import cache_root
from cofi_sweep.core.projection import nearest_multiple
from cofi_sweep.latency.load import load_meter
from cofi_sweep.latency.timing import describe_device, time_models

# bump when what is measured (or how it is fitted) changes; 6: unpadded batches run without
# an attention mask; 7: timed with freed memory kept (cofi_sweep/allocator.py: 3-10 % faster);
# 8: onnxruntime sessions stop spinning after each run (they slowed the next one's blocks), and
# its layers are timed in stacks (_layer_runners)
FORMAT = 8
# widths are measured (and fitting shapes drawn) at multiples of ALIGN, the compact models'
# widths under the default cofi.shape_multiple: an odd width runs 10-18 % slower on this CPU
# (benchmarks/shape_rounding.py), so a table measured at odd widths describes neither
ALIGN = 8
# a table calibrated under load stands in for this long: calibrating again sooner, under the
# same load (a sweep's trials load each other), costs every trial its retries and buys nothing
BUSY_TABLE_SECONDS = 3600


@dataclass
class LatencyTable:
    """Measured seconds per forward pass: ``mha[i][j]`` at ``hidden[i]`` and ``heads[j]``,
    ``ffn[i][k]`` at ``hidden[i]`` and ``widths[k]``, ``fixed[i]`` at ``hidden[i]``."""

    hidden: list[float]
    heads: list[float]
    widths: list[float]
    mha: list[list[float]]
    ffn: list[list[float]]
    fixed: list[float]
    protocol: dict
    # a whole model is not the sum of its blocks timed alone (caches stay warm there; the
    # residual stream's traffic between blocks is missing): fitted on whole models measured at
    # calibration, latency = fixed + scale * sum(blocks) + per_mha * live MHA sub-layers
    # + per_ffn * live FFN sub-layers
    scale: float = 1.0
    per_mha: float = 0.0
    per_ffn: float = 0.0
    # the whole models the three were fitted on: {hidden, heads, ffn, seconds} each (kept, so a
    # fit can be checked or redone without timing again)
    fitted_on: list[dict] = dataclasses.field(default_factory=list)

    def predict(self, shape: EncoderShape) -> float:
        """Predicted seconds per forward pass of a (dense or compact) model."""
        return float(self.expected(torch.tensor(float(shape.hidden_size)),
                                   torch.tensor(shape.heads, dtype=torch.float),
                                   torch.tensor(shape.ffn, dtype=torch.float)))

    def speedup(self, teacher: EncoderShape, compact: EncoderShape) -> float:
        return self.predict(teacher) / self.predict(compact)

    @functools.cached_property
    def _tensors(self) -> dict[str, torch.Tensor]:
        """The measured tables as tensors, built once (a speedup target reads them every
        step). A wider block never costs less: timing noise that says otherwise is flattened,
        so the prediction is monotone in every count -- and so is a speedup target's expected
        latency in every gate. Timing noise is one-sided (a pass gets slowed, never sped up),
        so each point becomes the minimum of itself and every wider block's time: a slowed
        measurement cannot inflate the blocks wider than it (a running maximum let one spike
        of 49 ms, against 17 ms, raise every wider FFN and over-predict speedups by 20 %)."""
        t = {k: torch.tensor(getattr(self, k), dtype=torch.float)
             for k in ("hidden", "heads", "widths", "mha", "ffn", "fixed")}
        for k in ("mha", "ffn"):
            t[k] = _floor_from_above(_floor_from_above(t[k], 1), 0)
        t["fixed"] = _floor_from_above(t["fixed"], 0)
        return t

    def expected(self, hidden: torch.Tensor, heads: torch.Tensor, ffn: torch.Tensor,
                 mha_alive: torch.Tensor | None = None, ffn_alive: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """The prediction as a differentiable function: ``heads``/``ffn`` are (expected) counts
        per layer, ``*_alive`` (default: count > 0) the probability each sub-layer exists."""
        t = self._tensors
        mha_alive = (heads > 0).float() if mha_alive is None else mha_alive
        ffn_alive = (ffn > 0).float() if ffn_alive is None else ffn_alive
        mha = _grid(hidden, heads, t["hidden"], t["heads"], t["mha"])
        ffn_cost = _grid(hidden, ffn, t["hidden"], t["widths"], t["ffn"])
        blocks = (mha_alive * mha).sum() + (ffn_alive * ffn_cost).sum()
        return (interp(hidden, t["hidden"], t["fixed"]) + self.scale * blocks
                + self.per_mha * mha_alive.sum() + self.per_ffn * ffn_alive.sum())


def _floor_from_above(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Each entry lowered to the smallest at or after it along ``dim`` (non-decreasing)."""
    return x.flip(dim).cummin(dim=dim).values.flip(dim)


def interp(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``ys(xs)`` at ``x`` (any shape), extrapolated linearly from the two
    nearest points outside ``xs``; differentiable in ``x`` and ``ys``."""
    if len(xs) == 1:
        return ys[0].expand_as(x).clone()
    i = torch.searchsorted(xs, x.detach().contiguous()).clamp(1, len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[..., i - 1], ys[..., i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _grid(hidden: torch.Tensor, units: torch.Tensor, hs: torch.Tensor, us: torch.Tensor,
          table: torch.Tensor) -> torch.Tensor:
    """Bilinear in (hidden width, units): each hidden row interpolated over units, then the
    rows over the hidden width."""
    per_row = torch.stack([interp(units, us, row) for row in table])  # (len(hs), layers)
    return interp(hidden.reshape(1), hs, per_row.T).reshape(units.shape)


def _grid_points(full: int, smallest: int, count: int, multiple: int = 1) -> list[int]:
    """``count`` points from ``smallest`` to ``full``, spaced geometrically, distinct; all but
    ``full`` rounded to a multiple of ``multiple`` (when that leaves them in range)."""
    points = {full, smallest}
    for i in range(count):
        points.add(aligned(round(smallest * (full / smallest) ** (i / max(1, count - 1))),
                            multiple))
    return sorted(p for p in points if smallest <= p <= full)


def aligned(width: int, multiple: int = ALIGN) -> int:
    """``width`` as a rounded compact model has it: 0 (a removed sub-layer) stays 0, any other
    width goes to the nearest multiple of ``multiple``, never below it."""
    return 0 if width == 0 else nearest_multiple(width, multiple, least=multiple)


class _Block(nn.Module):
    """One layer as a function of (hidden states, attention bias), for timing."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.layer(x, bias, {})


def _run_block(block: _Block, x: torch.Tensor, bias: torch.Tensor, ids: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
    return block(x, bias)


def _layer_runners(shape: EncoderShape, heads: list[int], widths: list[int], *,
                   batch_size: int, seq_len: int, runtime: str, workdir: Path,
                   device: torch.device, dtype: torch.dtype) -> tuple[dict, int]:
    """Runners (see :func:`cofi_sweep.latency.timing.time_models`) whose times give one layer's cost
    at each head count (``h<n>``) and FFN width (``f<n>``), and the number of layers each runs.

    PyTorch: one block alone, on fixed hidden states. onnxruntime: a whole model of that many
    MHA-only (FFN-only) layers, whose time less the fixed part's, over the layer count, is the
    layer's cost -- ORT runs a block alone with overheads a whole graph does not pay (one head:
    5.5 ms alone, 1.7 ms a layer in a stack, at batch 32 x 128), and no fitted constant made
    block times predict whole models (speedup errors up to 55 %; from stacks 2.4 % median at
    batch 1, 12.8 % at batch 32: benchmarks/speedup_fidelity.py). In PyTorch blocks alone
    predict better (at batch 1 stacks erred up to 15 %, blocks 10 %)."""
    if runtime == "pytorch":
        x = torch.randn(batch_size, seq_len, shape.hidden_size, device=device, dtype=dtype)
        bias = torch.zeros(batch_size, 1, 1, seq_len, device=device, dtype=dtype)
        blocks = {f"h{h}": Layer(shape, h, 0) for h in heads} | {
            f"f{f}": Layer(shape, 0, f) for f in widths}
        return {k: functools.partial(_run_block, _Block(b).to(device, dtype).eval(), x, bias)
                for k, b in blocks.items()}, 1
    layers = shape.num_layers
    stacks = {f"h{h}": ([h] * layers, [0] * layers) for h in heads} | {
        f"f{f}": ([0] * layers, [f] * layers) for f in widths}
    return {k: _model_runner(CofiBert(dataclasses.replace(shape, heads=h, ffn=f)).eval(),
                             runtime, workdir) for k, (h, f) in stacks.items()}, layers


def _model_runner(model: CofiBert, runtime: str, workdir: Path,
                  device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32):
    if runtime == "pytorch":
        return model.to(device, dtype)
    from cofi_sweep.latency.onnx import onnx_runner, onnx_session, to_onnx

    path = workdir / f"model{len(list(workdir.iterdir()))}.onnx"
    to_onnx(model, path)
    return onnx_runner(onnx_session(path))


@torch.no_grad()
def calibrate(shape: EncoderShape, *, batch_size: int, seq_len: int, runtime: str = "pytorch",
              warmup: int = 2, repeats: int = 10, hidden_points: int = 4, unit_points: int = 8,
              device: str = "cpu", dtype: str = "fp32") -> LatencyTable:
    """Measures the table for models derived from the dense ``shape`` (see module docstring),
    on ``device`` (a CPU with torch's current thread count, or a GPU) in ``dtype``, in PyTorch
    or onnxruntime (CPU, fp32; a layer's cost measured as :func:`_layer_runners` says)."""
    torch.manual_seed(0)
    dev, dt = torch.device(device), DTYPES[dtype]
    max_heads, max_ffn = max(shape.heads), max(shape.ffn)
    hidden = _grid_points(shape.hidden_size, max(8, shape.hidden_size // 4), hidden_points,
                          ALIGN)
    heads = _grid_points(max_heads, 1, min(unit_points, max_heads))
    widths = _grid_points(max_ffn, max(8, max_ffn // 64), unit_points, ALIGN)
    mha, ffn, fixed = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for d in hidden:
            s = dataclasses.replace(shape, hidden_size=d, kept_hidden_dims=None)
            runners, layers = _layer_runners(s, heads, widths, batch_size=batch_size,
                                             seq_len=seq_len, runtime=runtime, workdir=Path(tmp),
                                             device=dev, dtype=dt)
            runners["fixed"] = _model_runner(CofiBert(dataclasses.replace(s, heads=[0],
                                                                          ffn=[0])).eval(),
                                             runtime, Path(tmp), dev, dt)
            timing = time_models(runners, batch_size=batch_size, seq_len=seq_len,
                                 vocab_size=shape.vocab_size, warmup=warmup, repeats=repeats,
                                 device=dev)
            fixed.append(timing["fixed"].median)
            # a stack is a whole model: its time includes the fixed part
            in_stack = fixed[-1] if runtime == "onnxruntime" else 0.0

            def per_layer(key: str) -> float:  # timing noise on a tiny stack can leave <= 0
                return max((timing[key].median - in_stack) / layers, 0.01 * fixed[-1])
            mha.append([per_layer(f"h{h}") for h in heads])
            ffn.append([per_layer(f"f{f}") for f in widths])
    protocol = {"batch_size": batch_size, "seq_len": seq_len, "runtime": runtime,
                "warmup": warmup, "repeats": repeats, "dtype": dtype, **describe_device(dev)}
    table = LatencyTable([float(d) for d in hidden], [float(h) for h in heads],
                         [float(f) for f in widths], mha, ffn, fixed, protocol)
    if runtime == "onnxruntime":
        # layers timed in stacks already pay what a whole model pays; fitted on the random
        # fitting shapes (half with a narrowed hidden width) the constants moved real frontier
        # models' speedup errors from <= 5 % to 26 % at batch 32 x 128: no fit
        return table
    with tempfile.TemporaryDirectory() as tmp:
        models = {f"m{i}": CofiBert(s).eval() for i, s in enumerate(_fitting_shapes(shape))}
        runners = {k: _model_runner(m, runtime, Path(tmp), dev, dt) for k, m in models.items()}
        timing = time_models(runners, batch_size=batch_size, seq_len=seq_len,
                             vocab_size=shape.vocab_size, warmup=warmup, repeats=repeats,
                             device=dev)
    fit_whole_models(table, [(m.shape, timing[k].median) for k, m in models.items()])
    return table


def _fitting_shapes(dense: EncoderShape, count: int = 16) -> list[EncoderShape]:
    """Whole-model shapes spanning 0-97 % sparsity, half of them past 80 %, like CoFi leaves
    them: per-layer head counts and widths that vary, some sub-layers removed, the hidden size
    kept or narrowed."""
    generator = torch.Generator().manual_seed(0)
    shapes = [dense]
    low, high = count // 2, count - 1 - count // 2  # below and past 80 % sparsity
    keeps = ([1 - 0.8 * i / low for i in range(1, low)]
             + [0.2 - 0.17 * i / high for i in range(high + 1)])
    for i, keep in enumerate(keeps, 1):  # keep: the fraction of units kept, on average

        def draw(full: int) -> int:
            fraction = keep * float(torch.empty(1).uniform_(0.3, 1.7, generator=generator))
            return 0 if fraction < 0.15 * min(1.0, keep * 5) else \
                max(1, min(full, round(full * fraction)))

        hidden = dense.hidden_size if i % 2 else min(dense.hidden_size, aligned(
            round(dense.hidden_size * (0.6 + 0.4 * keep)), ALIGN))
        shapes.append(dataclasses.replace(
            dense, hidden_size=hidden, kept_hidden_dims=None, heads=[draw(h) for h in dense.heads],
            ffn=[min(f, aligned(draw(f), ALIGN)) for f in dense.ffn]))
    return shapes


def fit_whole_models(table: LatencyTable, measured: list[tuple[EncoderShape, float]]) -> None:
    """Least-squares ``scale``, ``per_mha`` and ``per_ffn`` (all kept ≥ 0: a term that would
    go negative is dropped and the rest refitted) from whole models' measured latencies, on
    relative errors (a 95 %-sparse model counts as much as the dense one)."""
    table.scale, table.per_mha, table.per_ffn = 1.0, 0.0, 0.0
    table.fitted_on = [{"hidden": s.hidden_size, "heads": list(s.heads), "ffn": list(s.ffn),
                        "seconds": seconds} for s, seconds in measured]
    rows, targets = [], []
    for shape, seconds in measured:
        fixed = float(interp(torch.tensor(float(shape.hidden_size)),
                             torch.tensor(table.hidden), torch.tensor(table.fixed)))
        blocks_only = table.predict(shape) - fixed  # scale 1, no per-sub-layer terms
        rows.append([blocks_only / seconds, sum(h > 0 for h in shape.heads) / seconds,
                     sum(f > 0 for f in shape.ffn) / seconds])
        targets.append((seconds - fixed) / seconds)
    a, t = torch.tensor(rows, dtype=torch.float64), torch.tensor(targets, dtype=torch.float64)
    values = _nonnegative_fit(a, t)
    # a pass slowed throughout (a scheduler hiccup; seen once among ~50 models timed for an ORT
    # fit at batch 1, 5x its time) holds even a median: a point the fit misses by far more
    # than the others is dropped and the rest refitted, at most a quarter of them
    keep = list(range(len(t)))
    for _ in range(len(t) // 4):
        fitted = sum(a[keep, j] * v for j, v in values.items())
        misses = (fitted - t[keep]).abs()
        worst = int(misses.argmax())
        if misses[worst] <= max(0.05, 3 * float(misses.median())):
            break
        del keep[worst]
        values = _nonnegative_fit(a[keep], t[keep])
    # a scale that still is not positive (timing noise on a tiny model): the blocks as timed
    table.scale = values[0] if values[0] > 0 else 1.0
    table.per_mha, table.per_ffn = values.get(1, 0.0), values.get(2, 0.0)


def _nonnegative_fit(a: torch.Tensor, t: torch.Tensor) -> dict[int, float]:
    """Least squares of ``a @ x = t`` with columns dropped until no constant (columns 1, 2) is
    negative; {column: value} of the columns kept."""
    active = [0, 1, 2]
    while True:
        solution = torch.linalg.lstsq(a[:, active], t[:, None]).solution.flatten().tolist()
        values = dict(zip(active, solution))
        if values[0] <= 0 and len(active) > 1:  # the blocks must cost something: scale alone
            active = [0]
            continue
        negative = [j for j in active if values[j] < 0 and j != 0]
        if not negative:
            return values
        active.remove(negative[0])


def table_key(shape: EncoderShape, batch_size: int, seq_len: int, runtime: str,
              device: str = "cpu", dtype: str = "fp32") -> dict:
    """What a table depends on: the dense shape's widths, the protocol, the device (its name:
    a CPU model or a GPU's) and the dtype."""
    return {"format": FORMAT, "hidden": shape.hidden_size, "head_dim": shape.head_dim,
            "heads": max(shape.heads), "ffn": max(shape.ffn), "vocab": shape.vocab_size,
            "act": shape.hidden_act, "batch_size": batch_size, "seq_len": seq_len,
            "runtime": runtime, **describe_device(torch.device(device)),
            **({"dtype": dtype} if dtype != "fp32" else {})}  # fp32 keys stay what they were


def latency_table(shape: EncoderShape, *, batch_size: int, seq_len: int,
                  runtime: str = "pytorch", cache_dir: str | Path | None = None,
                  retries: int = 2, backoff_s: float = 10.0, device: str = "cpu",
                  dtype: str = "fp32", **kwargs) -> LatencyTable:
    """The cached table for this dense shape, protocol and device; calibrated on a miss (a
    few seconds for MiniLM on a 2-core CPU). A calibration contended by other processes
    (:mod:`cofi_sweep.latency.load`) is taken again after ``backoff_s`` seconds,
    doubling; one still contended is never cached as the device's truth, but kept aside as a
    busy table that later lookups use for ``BUSY_TABLE_SECONDS`` (then calibrate again). The
    cache records when, and under what load, its table was measured."""
    key = table_key(shape, batch_size, seq_len, runtime, device, dtype)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir or cache_root() / "latency") / f"{digest}.json"
    if path.is_file():
        return LatencyTable(**json.loads(path.read_text())["table"])
    busy_path = path.with_suffix(".busy.json")
    if busy_path.is_file():
        entry = json.loads(busy_path.read_text())
        at = datetime.datetime.fromisoformat(entry["measured"]["at"])
        age = (datetime.datetime.now(datetime.timezone.utc) - at).total_seconds()
        if age < BUSY_TABLE_SECONDS:
            print(f"[latency] using the table calibrated under load {age / 60:.0f} min ago "
                  f"({entry['measured']['note']}): predicted speedups may be off; it is "
                  f"calibrated again after {BUSY_TABLE_SECONDS / 60:.0f} min", flush=True)
            return LatencyTable(**entry["table"])
    for attempt in range(retries + 1):
        with load_meter(torch.device(device)) as meter:
            table = calibrate(shape, batch_size=batch_size, seq_len=seq_len, runtime=runtime,
                              device=device, dtype=dtype, **kwargs)
        busy = meter.contention(torch.get_num_threads())
        if not busy:
            break
        if attempt < retries:
            wait = backoff_s * 2 ** attempt
            print(f"[latency] calibration: {busy}; calibrating again in {wait:g} s",
                  flush=True)
            time.sleep(wait)
    if busy:
        print(f"[latency] calibration: {busy} throughout; its table is not cached as this "
              f"device's and serves for {BUSY_TABLE_SECONDS / 60:.0f} min: predicted speedups "
              "may be off", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # trials may calibrate side by side
    tmp.write_text(json.dumps({
        "key": key, "table": dataclasses.asdict(table),
        "measured": {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"), **meter.readings(), **({"note": busy} if busy else {})}},
        indent=1))
    tmp.replace(busy_path if busy else path)
    return table
