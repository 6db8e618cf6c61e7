"""The model: a BERT-family encoder for sequence classification that CoFi can mask and cut down.

Transformers v5 has no ``head_mask`` and no ``prune_heads``, so we own the encoder. It is plain
BERT/RoBERTa (post-LayerNorm), with HF's submodule names so HF weights map 1:1, plus:

  * five optional masks in ``forward(masks=...)``: ``head_z`` (L, H) scales each head's context
    before the output projection; ``head_layer_z`` (L,) scales the attention output (bias
    included); ``intermediate_z`` (L, F) scales the FFN activation; ``mlp_z`` (L,) scales the FFN
    output (bias included); ``hidden_z`` (d,) masks the embedding output and every sub-layer
    output, with LayerNorm statistics taken over the kept hidden dims only; each mask is
    folded into the weights next to it (``scaled_linear``, ``layer_norm``);
  * per-layer head counts and FFN widths, sub-layers that are absent, and a reduced hidden size:
    the shapes a compacted model has. A sub-layer whose mask group is empty is *removed* -- the
    block returns its residual input unchanged -- in the masked and the compact model alike.

Compact models are saved as ``model.safetensors`` + ``cofi_config.json`` (every layer's shape)
and load back with :meth:`CofiBert.from_pretrained`, without any training code.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN

from cofi_sweep.core.modeling_cofi_bert import FusedQKV
from cofi_sweep.core.pretrained import resolve

CONFIG_FILE = "cofi_config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class EncoderShape:
    """Everything that determines the model's architecture, dense or compacted."""

    family: str  # "bert" or "roberta" (position ids, classifier head naming)
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    pad_token_id: int
    hidden_size: int  # width of the residual stream (kept hidden dims after compaction)
    head_dim: int
    heads: list[int]  # per layer: attention heads (0 = MHA sub-layer removed)
    ffn: list[int]  # per layer: FFN units (0 = FFN sub-layer removed)
    num_labels: int  # 1 = regression
    pooler_size: int  # pooler output width (never pruned)
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    kept_hidden_dims: list[int] | None = None  # indices into the dense model's hidden dims
    labels: list[str] | None = None  # class names in id order (exports' id2label); None: unnamed

    @property
    def num_layers(self) -> int:
        return len(self.heads)

    @classmethod
    def from_hf_config(cls, hf: Any, num_labels: int) -> EncoderShape:
        """The shape of a transformers config (its class names kept when it has them)."""
        family = "roberta" if hf.model_type in ("roberta", "xlm-roberta") else "bert"
        head_dim = hf.hidden_size // hf.num_attention_heads
        return cls(
            family=family, vocab_size=hf.vocab_size,
            max_position_embeddings=hf.max_position_embeddings,
            type_vocab_size=hf.type_vocab_size, pad_token_id=hf.pad_token_id or 0,
            hidden_size=hf.hidden_size, head_dim=head_dim,
            heads=[hf.num_attention_heads] * hf.num_hidden_layers,
            ffn=[hf.intermediate_size] * hf.num_hidden_layers, num_labels=num_labels,
            pooler_size=hf.hidden_size, hidden_act=hf.hidden_act,
            layer_norm_eps=hf.layer_norm_eps, hidden_dropout=hf.hidden_dropout_prob,
            attention_dropout=hf.attention_probs_dropout_prob,
            labels=named_labels(hf) if num_labels == hf.num_labels else None,
        )

    @classmethod
    def from_pretrained(cls, model: str, num_labels: int) -> EncoderShape:
        """The dense shape of ``model`` (an alias, a hub name or a folder), read from its
        config alone: no weights are loaded."""
        from transformers import AutoConfig

        return cls.from_hf_config(AutoConfig.from_pretrained(resolve(model)), num_labels)

    def with_structure(self, structure: dict[str, Any]) -> EncoderShape:
        """This dense shape cut to ``structure`` (a :meth:`CofiBert.structure` dict, as results
        record it): the shape a recorded model is rebuilt with, random weights, for timing."""
        return dataclasses.replace(self, hidden_size=structure["hidden"],
                                   heads=list(structure["heads"]), ffn=list(structure["ffn"]),
                                   kept_hidden_dims=None)


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm, hidden_z: torch.Tensor | None) -> torch.Tensor:
    """LayerNorm whose statistics cover only the hidden dims where ``hidden_z`` is non-zero,
    times ``hidden_z`` (so 0 at the pruned dims).

    This is what makes the masked model equal the compacted one: there, the pruned dims do not
    exist, so they must not enter the mean and variance here either.

    Written as one fused ``F.layer_norm`` over all d dims (2.5x faster, forward and backward,
    than spelling out masked statistics; it runs twice per layer in every pruning step): the
    pruned dims are filled with the kept dims' mean m, so the mean over all d is m and the
    variance is n/d of the kept dims' one (n kept); scaling the weight by sqrt(n/d) and eps by
    n/d gives exactly the kept-dims LayerNorm. ``hidden_z`` is folded into the affine weight
    and bias: a (d,) multiply instead of one over the whole activation.
    """
    if hidden_z is None:
        return norm(x)
    keep = (hidden_z != 0).to(x.dtype)  # (d,)
    d, n = x.shape[-1], keep.sum().clamp(min=1)
    mean = ((x @ keep)[..., None] / n).to(x.dtype)  # autocast runs the product in bf16/fp16
    filled = torch.lerp(mean, x, keep)  # kept dims: x; pruned ones: the kept dims' mean
    share = float(n) / d
    return F.layer_norm(filled, (d,), norm.weight * (share ** 0.5 * hidden_z),
                        norm.bias * hidden_z, norm.eps * share)


def scaled_linear(lin: nn.Linear, x: torch.Tensor, in_scale: torch.Tensor | None = None,
                  out_scale: torch.Tensor | None = None) -> torch.Tensor:
    """``lin(x * in_scale) * out_scale`` with the scales folded into the weight and bias.

    Masks multiply activations of (B, T, width) but weights of (d_out, d_in): folding them in
    makes every mask multiply, and its backward, weight-sized (a pruning step spent more on
    activation-sized mask multiplies than on LayerNorm). ``out_scale`` is a scalar or (d_out,).
    """
    weight, bias = lin.weight, lin.bias
    if in_scale is not None:
        weight = weight * in_scale
    if out_scale is not None:
        weight, bias = weight * out_scale.reshape(-1, 1), bias * out_scale
    return F.linear(x, weight, bias)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout``, with the keep mask drawn from ``torch.rand`` on the CPU, where
    ``bernoulli_`` (what ``F.dropout`` draws with) takes twice as long: a training step of a
    6-layer model draws 13 of these masks (``benchmarks/overhead.py``)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    return x * ((torch.rand_like(x) >= p) * (1.0 / (1.0 - p)))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
              dropout_p: float, training: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_h) + bias) v, with dropout on the probabilities while training;
    (B, H, T, d_h).

    SDPA, except while training on the CPU at up to 128 tokens: there, written out, forward and
    backward take 0.7-0.85x SDPA's time (0.8x with its dropout, which draws with ``bernoulli_``;
    measured at 4-12 heads, d_h 32-64, batch 32 x 64 and x 128); at 256 tokens SDPA is faster.
    """
    if not training or q.device.type != "cpu" or q.shape[-2] > 128:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                              dropout_p=dropout_p if training else 0.0)
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, H, T, T)
    if bias is not None:
        scores = scores + bias
    return dropout(scores.softmax(-1), dropout_p, True) @ v


def times(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    """a * b, where None stands for 1."""
    return b if a is None else a if b is None else a * b


class Embeddings(nn.Module):
    def __init__(self, s: EncoderShape) -> None:
        super().__init__()
        self.family, self.pad_token_id = s.family, s.pad_token_id
        self.word_embeddings = nn.Embedding(s.vocab_size, s.hidden_size)
        self.position_embeddings = nn.Embedding(s.max_position_embeddings, s.hidden_size)
        self.token_type_embeddings = nn.Embedding(s.type_vocab_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.dropout_p = s.hidden_dropout

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                hidden_z: torch.Tensor | None) -> torch.Tensor:
        if self.family == "roberta":  # positions count non-pad tokens, offset by the pad id
            not_pad = (input_ids != self.pad_token_id).long()
            positions = torch.cumsum(not_pad, dim=1) * not_pad + self.pad_token_id
        else:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))  # (B, T, d)
        if hidden_z is not None:
            x = x * hidden_z
        return dropout(layer_norm(x, self.LayerNorm, hidden_z), self.dropout_p, self.training)


class SelfAttention(nn.Module):
    def __init__(self, s: EncoderShape, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, s.head_dim
        inner = n_heads * s.head_dim
        self.query = nn.Linear(s.hidden_size, inner)
        self.key = nn.Linear(s.hidden_size, inner)
        self.value = nn.Linear(s.hidden_size, inner)
        self.dropout_p = s.attention_dropout


class SubLayerOutput(nn.Module):
    """Output projection + (dropout, residual, LayerNorm) -- HF's ``*Output`` modules."""

    def __init__(self, s: EncoderShape, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.dropout_p = s.hidden_dropout

    def forward(self, h: torch.Tensor, residual: torch.Tensor, unit_z: torch.Tensor | None,
                layer_z: torch.Tensor | None, hidden_z: torch.Tensor | None) -> torch.Tensor:
        # unit_z scales the input units (heads' dims, FFN units); z_MHA / z_FFN and hidden_z
        # the whole output, bias included -- all folded into the projection's weight
        out = scaled_linear(self.dense, h, unit_z, times(layer_z, hidden_z))  # (B, T, d)
        return layer_norm(residual + dropout(out, self.dropout_p, self.training),
                          self.LayerNorm, hidden_z)


class Attention(FusedQKV, nn.Module):
    def __init__(self, s: EncoderShape, n_heads: int) -> None:
        super().__init__()
        self.self = SelfAttention(s, n_heads)  # HF's name, so weights map 1:1
        self.output = SubLayerOutput(s, n_heads * s.head_dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None, head_z: torch.Tensor | None,
                layer_z: torch.Tensor | None, hidden_z: torch.Tensor | None) -> torch.Tensor:
        sa = self.self
        B, T, _ = x.shape
        q, k, v = self.qkv(x)  # (B, H, T, d_h); one fused GEMM at inference
        ctx = attention(q, k, v, bias, sa.dropout_p, self.training)
        ctx = ctx.transpose(1, 2).reshape(B, T, sa.n_heads * sa.head_dim)
        # z_head scales each head's context before W_O: W_O's columns of that head
        head_dims = None if head_z is None else head_z.repeat_interleave(sa.head_dim)
        return self.output(ctx, x, head_dims, layer_z, hidden_z)


class Intermediate(nn.Module):
    def __init__(self, s: EncoderShape, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, width)
        self.act = ACT2FN[s.hidden_act]


class Layer(nn.Module):
    """One transformer block; ``attention`` and/or the FFN may be absent (None)."""

    def __init__(self, s: EncoderShape, n_heads: int, ffn_width: int) -> None:
        super().__init__()
        self.attention = Attention(s, n_heads) if n_heads > 0 else None
        self.intermediate = Intermediate(s, ffn_width) if ffn_width > 0 else None
        self.output = SubLayerOutput(s, ffn_width) if ffn_width > 0 else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None, m: dict[str, torch.Tensor]
                ) -> torch.Tensor:
        # A sub-layer is removed (identity on the residual) when its group is empty -- decided
        # from the mask values, never from the data, so masked == compact holds exactly.
        if self.attention is not None and group_alive(m.get("head_layer_z"), m.get("head_z")):
            x = self.attention(x, bias, m.get("head_z"), m.get("head_layer_z"), m.get("hidden_z"))
        if self.intermediate is not None and group_alive(m.get("mlp_z"), m.get("intermediate_z")):
            h = self.intermediate.act(self.intermediate.dense(x))  # (B, T, F)
            x = self.output(h, x, m.get("intermediate_z"), m.get("mlp_z"), m.get("hidden_z"))
        return x


def group_alive(layer_z: torch.Tensor | None, unit_z: torch.Tensor | None) -> bool:
    if layer_z is not None and not bool(layer_z != 0):
        return False
    return unit_z is None or bool((unit_z != 0).any())


class Encoder(nn.Module):
    def __init__(self, s: EncoderShape) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(s, h, f) for h, f in zip(s.heads, s.ffn))


@dataclass
class Output:
    logits: torch.Tensor  # (B, num_labels)
    hidden_states: list[torch.Tensor] = field(default_factory=list)  # L+1 of (B, T, d)


class CofiBert(nn.Module):
    """BERT/RoBERTa sequence classifier with CoFi masks and per-layer shapes.

    Example:
        >>> model = CofiBert.from_hf("path/or/hub-name", num_labels=2)
        >>> out = model(input_ids, attention_mask, masks={"head_z": torch.ones(L, H)})
    """

    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.shape = shape
        self.embeddings = Embeddings(shape)
        self.encoder = Encoder(shape)
        # BERT's pooler and RoBERTa's classification head are the same computation:
        # tanh(dense(h_[CLS])) -> dropout -> linear. We store both under BERT's names.
        self.pooler = nn.Linear(shape.hidden_size, shape.pooler_size)
        self.classifier = nn.Linear(shape.pooler_size, shape.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                masks: dict[str, torch.Tensor] | None = None,
                output_hidden_states: bool = False) -> Output:
        masks = masks or {}
        hidden_z = masks.get("hidden_z")
        # additive attention bias over keys: 0 for tokens, a large negative for padding; none
        # when nothing is padded (SDPA's unmasked kernel is faster, the result the same) --
        # except in a trace (the ONNX export), whose graph must mask whatever batch it gets
        bias = None
        if attention_mask is not None and (torch.jit.is_tracing()
                                           or not bool(attention_mask.all())):
            bias = ((1.0 - attention_mask[:, None, None, :].float())
                    * torch.finfo(torch.float32).min)
        x = self.embeddings(input_ids, token_type_ids, hidden_z)  # (B, T, d)
        if bias is not None:
            bias = bias.to(x.dtype)
        states = [x]
        for i, layer in enumerate(self.encoder.layer):
            per_layer = {k: (v if k == "hidden_z" else v[i]) for k, v in masks.items()}
            x = layer(x, bias, per_layer)
            states.append(x)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        logits = self.classifier(dropout(pooled, self.shape.hidden_dropout, self.training))
        return Output(logits, states if output_hidden_states else [])

    # ---- structure ------------------------------------------------------------------------

    def structure(self) -> dict[str, Any]:
        """Kept heads and FFN units per layer, and the hidden width."""
        return {"hidden": self.shape.hidden_size, "heads": list(self.shape.heads),
                "ffn": list(self.shape.ffn)}

    def prunable_parameters(self) -> int:
        """Weights and biases of the Linear layers inside the encoder blocks (no embeddings,
        LayerNorms, pooler or classifier): the size that CoFi's sparsity is relative to."""
        return sum(p.numel() for layer in self.encoder.layer for mod in layer.modules()
                   if isinstance(mod, nn.Linear) for p in mod.parameters())

    # ---- loading and saving ---------------------------------------------------------------

    @classmethod
    def from_hf(cls, name_or_path: str, num_labels: int,
                labels: Sequence[str] = ()) -> CofiBert:
        """Loads any BERT/RoBERTa checkpoint (hub name or folder) through transformers;
        ``labels``: the task's class names (else the checkpoint's, if it names them)."""
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        # A base checkpoint has no (or another task's) classifier: a fresh head is expected,
        # so the size mismatch is allowed and transformers' load report is kept quiet.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            hf = AutoModelForSequenceClassification.from_pretrained(
                name_or_path, num_labels=num_labels, ignore_mismatched_sizes=True)
        finally:
            hf_logging.set_verbosity(verbosity)
        model = cls.from_hf_model(hf)
        if labels:
            model.shape.labels = list(labels)
        return model

    @classmethod
    def from_hf_model(cls, hf: nn.Module) -> CofiBert:
        shape = EncoderShape.from_hf_config(hf.config, hf.config.num_labels)
        model = cls(shape)
        model.load_state_dict(hf_state_dict_to_cofi(hf.state_dict(), shape.family))
        return model

    def save_pretrained(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / WEIGHTS_FILE))
        (directory / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(self.shape), indent=1))

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> CofiBert:
        from safetensors.torch import load_file

        directory = Path(directory)
        shape = EncoderShape(**json.loads((directory / CONFIG_FILE).read_text()))
        model = cls(shape)
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE), device=map_location))
        return model.eval()


def hf_state_dict_to_cofi(state: dict[str, torch.Tensor], family: str) -> dict[str, torch.Tensor]:
    """Renames an HF ``*ForSequenceClassification`` state dict to this module's names."""
    out = {}
    for key, value in state.items():
        if key.endswith("position_ids") or key.endswith("token_type_ids"):
            continue  # buffers, not weights
        for prefix in ("bert.", "roberta."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        key = (key.replace("pooler.dense.", "pooler.")
               .replace("classifier.dense.", "pooler.")  # RoBERTa's head
               .replace("classifier.out_proj.", "classifier."))
        out[key] = value
    return out


def count_flops(shape: EncoderShape, seq_len: int) -> float:
    """Multiply-adds of one sequence through the encoder blocks (for predicted speedups)."""
    d, T, total = shape.hidden_size, seq_len, 0.0
    for h, f in zip(shape.heads, shape.ffn):
        inner = h * shape.head_dim
        total += T * (4 * d * inner) + 2 * T * T * inner if h else 0.0  # QKV+O, QK^T and AV
        total += T * 2 * d * f if f else 0.0
    return total


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_model(name: str, num_labels: int, labels: Sequence[str] = ()) -> CofiBert:
    """A :class:`CofiBert` with the pretrained weights of ``name`` (an alias, a folder or a hub
    name: :func:`cofi_sweep.core.pretrained.resolve`) and a fresh head for ``num_labels``
    classes named ``labels``."""
    return CofiBert.from_hf(resolve(name), num_labels=num_labels, labels=labels)


def named_labels(hf_config: Any) -> list[str] | None:
    """A transformers config's class names in id order; None for its defaults (LABEL_0 ...)."""
    id2label = getattr(hf_config, "id2label", None) or {}
    names = [str(id2label[i]) for i in sorted(id2label)]
    if not names or names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return names
