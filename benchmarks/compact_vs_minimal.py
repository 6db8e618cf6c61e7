"""Benchmark: how lean are compact models? Each ÷ a minimal hand-written stack of the same shape.

The minimal stack (below, ~40 lines) is what an engineer would write for inference only: one
fused QKV Linear, scaled-dot-product attention, LayerNorm, GELU FFN, no masks, no hooks. For
real CoFi structures (from pruning runs, nearest 50, 70, 90 and 95 %) and the dense model, times
interleaved: our compact model (``CofiBert``), the ``hf`` export's model
(``modeling_cofi_bert``) and the minimal stack, all with the same random weights' shapes, at
batch 32 x 128 on every available core. Goal: compact ÷ minimal ≤ 1.10 at every sparsity up to
95 %. ``--round N`` also times the shape with heads, FFN widths and hidden size rounded up to
multiples of N, to see whether aligned shapes run faster on this CPU.

    python benchmarks/compact_vs_minimal.py                 # after benchmarks/frontier.py
    python benchmarks/compact_vs_minimal.py --round 8 --batch-size 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from sparsity_control import commit
from speedup_fidelity import load, pruned_models
from torch import nn

from cofi_sweep.core.model import CofiBert, EncoderShape
from cofi_sweep.core.modeling_cofi_bert import CofiBertForSequenceClassification
from cofi_sweep.deploy.export import remote_code_config
from cofi_sweep.latency.timing import available_cpus, describe_device, time_models

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "compact_vs_minimal.json"


class MinimalBlock(nn.Module):
    def __init__(self, d: int, heads: int, head_dim: int, ffn: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        if heads:
            self.qkv = nn.Linear(d, 3 * heads * head_dim)
            self.out = nn.Linear(heads * head_dim, d)
            self.norm1 = nn.LayerNorm(d)
        if ffn:
            self.up, self.down, self.norm2 = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        if self.heads:
            q, k, v = self.qkv(x).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            x = self.norm1(x + self.out(ctx.transpose(1, 2).reshape(B, T, -1)))
        if hasattr(self, "up"):
            x = self.norm2(x + self.down(F.gelu(self.up(x))))
        return x


class MinimalStack(nn.Module):
    """Embeddings, the blocks, pooler and classifier: inference only."""

    def __init__(self, s: EncoderShape) -> None:
        super().__init__()
        self.shape = s
        self.words = nn.Embedding(s.vocab_size, s.hidden_size)
        self.positions = nn.Embedding(s.max_position_embeddings, s.hidden_size)
        self.types = nn.Embedding(s.type_vocab_size, s.hidden_size)
        self.norm = nn.LayerNorm(s.hidden_size)
        self.blocks = nn.ModuleList(MinimalBlock(s.hidden_size, h, s.head_dim, f)
                                    for h, f in zip(s.heads, s.ffn))
        self.pooler = nn.Linear(s.hidden_size, s.pooler_size)
        self.classifier = nn.Linear(s.pooler_size, s.num_labels)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.words(ids) + self.positions(positions) + self.types(ids * 0))
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for block in self.blocks:
            x = block(x, bias)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


def rounded(s: EncoderShape, n: int) -> EncoderShape:
    up = lambda v: int(math.ceil(v / n) * n) if v else 0  # noqa: E731
    heads = [up(h * s.head_dim) // s.head_dim for h in s.heads]
    return dataclasses.replace(s, heads=heads, ffn=[up(f) for f in s.ffn],
                               hidden_size=up(s.hidden_size), kept_hidden_dims=None)


def structures(dense: EncoderShape) -> list[tuple[str, EncoderShape]]:
    """The dense shape and, for 50, 70, 90 and 95 %, the real pruned structure nearest to it
    (:func:`speedup_fidelity.pruned_models`)."""
    out = [("dense (0 %)", dense)]
    models = pruned_models()
    for target in (0.5, 0.7, 0.9, 0.95):
        if not models:
            break
        m = min(models, key=lambda m: abs(m["realized_sparsity"] - target))
        s = load(m, dense)[0].shape  # rebuilt from its structure where runs/ is gone
        out.append((f"{m['trial_id']} ({m['realized_sparsity']:.1%})", s))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--round", type=int, default=0, help="also time shapes rounded up")
    args = parser.parse_args()
    torch.set_num_threads(available_cpus())
    torch.manual_seed(0)
    dense = EncoderShape.from_pretrained("minilm", 2)
    results = []
    for name, shape in structures(dense):
        models = {"compact": CofiBert(shape).eval(), "minimal": MinimalStack(shape).eval(),
                  "hf_export": CofiBertForSequenceClassification(
                      CofiBertForSequenceClassification.config_class(
                          **remote_code_config(shape))).eval()}
        if args.round:
            models["compact_rounded"] = CofiBert(rounded(shape, args.round)).eval()
        t = time_models(models, batch_size=args.batch_size, seq_len=args.seq_len,
                        vocab_size=shape.vocab_size, repeats=args.repeats)
        row = {"structure": name, "heads": shape.heads, "ffn": shape.ffn,
               "hidden": shape.hidden_size,
               **{f"{k}_ms": round(v.median * 1e3, 3) for k, v in t.items()},
               "compact_over_minimal": round(t["compact"].median / t["minimal"].median, 3),
               "hf_export_over_minimal": round(t["hf_export"].median / t["minimal"].median, 3)}
        if args.round:
            row["rounded_over_compact"] = round(t["compact_rounded"].median
                                                / t["compact"].median, 3)
        print(json.dumps(row), flush=True)
        results.append(row)
    setting = {"batch_size": args.batch_size, "seq_len": args.seq_len, "round": args.round,
               **describe_device(torch.device("cpu")), "commit": commit(),
               "command": "python benchmarks/compact_vs_minimal.py --batch-size "
                          f"{args.batch_size} --seq-len {args.seq_len}"
                          + (f" --round {args.round}" if args.round else "")}
    kept = json.loads(OUT.read_text()) if OUT.is_file() else []
    key = (args.batch_size, args.seq_len, args.round)
    kept = [k for k in kept if (k["setting"]["batch_size"], k["setting"]["seq_len"],
                                k["setting"]["round"]) != key]
    OUT.write_text(json.dumps(kept + [{"setting": setting, "rows": results}], indent=1) + "\n")
    print("| structure | compact ms | minimal ms | compact ÷ minimal | hf export ÷ minimal |")
    for r in results:
        print(f"| {r['structure']} | {r['compact_ms']} | {r['minimal_ms']} | "
              f"{r['compact_over_minimal']} | {r['hf_export_over_minimal']} |")


if __name__ == "__main__":
    main()
