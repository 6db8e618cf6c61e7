"""A compact CoFi model for transformers' ``trust_remote_code``: shipped inside every ``hf`` export.

Standalone on purpose (imports torch and transformers only, never ``cofi_sweep``): an exported
folder holds this file, ``config.json``, ``model.safetensors`` and the tokenizer, and loads with

    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)

on a machine without this project. The architecture is BERT/RoBERTa (post-LayerNorm) with what
CoFi leaves behind, recorded in the config: per-layer attention head counts and FFN widths (0 =
that sub-layer removed: the block passes its input through), and a hidden width that may be
smaller than the pretrained one. Weight names are those of ``cofi_sweep.core.model.CofiBert``, so an
export is a copy of the compact model's weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import SequenceClassifierOutput


class CofiBertConfig(PretrainedConfig):
    """Per-layer ``heads`` and ``ffn`` (0 = removed), ``head_dim``, the kept ``hidden_size``."""

    model_type = "cofi_bert"

    def __init__(self, family: str = "bert", vocab_size: int = 30522,
                 max_position_embeddings: int = 512, type_vocab_size: int = 2,
                 hidden_size: int = 768, head_dim: int = 64, heads: list[int] | None = None,
                 ffn: list[int] | None = None, pooler_size: int = 768, hidden_act: str = "gelu",
                 layer_norm_eps: float = 1e-12, hidden_dropout_prob: float = 0.1,
                 attention_probs_dropout_prob: float = 0.1, pad_token_id: int = 0,
                 **kwargs) -> None:
        self.family, self.vocab_size = family, vocab_size
        self.max_position_embeddings, self.type_vocab_size = max_position_embeddings, \
            type_vocab_size
        self.hidden_size, self.head_dim = hidden_size, head_dim
        self.heads = list(heads if heads is not None else [12] * 12)
        self.ffn = list(ffn if ffn is not None else [3072] * 12)
        self.num_hidden_layers = len(self.heads)
        self.pooler_size, self.hidden_act = pooler_size, hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class Embeddings(nn.Module):
    def __init__(self, c: CofiBertConfig) -> None:
        super().__init__()
        self.family, self.pad_token_id = c.family, c.pad_token_id
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        if self.family == "roberta":  # positions count non-pad tokens, offset by the pad id
            not_pad = (input_ids != self.pad_token_id).long()
            positions = torch.cumsum(not_pad, dim=1) * not_pad + self.pad_token_id
        else:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, c: CofiBertConfig, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, c.head_dim
        self.query = nn.Linear(c.hidden_size, n_heads * c.head_dim)
        self.key = nn.Linear(c.hidden_size, n_heads * c.head_dim)
        self.value = nn.Linear(c.hidden_size, n_heads * c.head_dim)


class SubLayerOutput(nn.Module):
    def __init__(self, c: CofiBertConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(h)))


class FusedQKV:
    """Q, K and V of ``self.self`` (query/key/value Linears): separate projections while
    training, and one fused GEMM for inference, whose stacked weights are rebuilt only when a
    weight changed. At high sparsity, with few heads left, reading the hidden states three
    times -- not the multiply-adds -- is the attention's cost. (Also used by
    ``cofi_sweep.core.model``: this file must stay importable on its own.)"""

    _fused: tuple | None = None

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each (B, heads, T, head_dim)."""
        sa, (B, T, _) = self.self, x.shape
        if torch.is_grad_enabled():
            return tuple(lin(x).view(B, T, sa.n_heads, sa.head_dim).transpose(1, 2)
                         for lin in (sa.query, sa.key, sa.value))
        params = [p for lin in (sa.query, sa.key, sa.value) for p in (lin.weight, lin.bias)]
        key = tuple((p.data_ptr(), p._version, p.device) for p in params)
        if self._fused is None or self._fused[0] != key:
            self._fused = (key, torch.cat(params[0::2]), torch.cat(params[1::2]))
        return F.linear(x, self._fused[1], self._fused[2]).view(
            B, T, 3, sa.n_heads, sa.head_dim).permute(2, 0, 3, 1, 4).unbind(0)


class Attention(FusedQKV, nn.Module):
    def __init__(self, c: CofiBertConfig, n_heads: int) -> None:
        super().__init__()
        self.self = SelfAttention(c, n_heads)
        self.output = SubLayerOutput(c, n_heads * c.head_dim)
        self.dropout_p = c.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x)
        ctx = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout_p if self.training else 0.0)
        return self.output(ctx.transpose(1, 2).reshape(B, T, -1), x)


class Intermediate(nn.Module):
    def __init__(self, c: CofiBertConfig, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, width)
        self.act = ACT2FN[c.hidden_act]


class Layer(nn.Module):
    def __init__(self, c: CofiBertConfig, n_heads: int, width: int) -> None:
        super().__init__()
        self.attention = Attention(c, n_heads) if n_heads else None
        self.intermediate = Intermediate(c, width) if width else None
        self.output = SubLayerOutput(c, width) if width else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.attention is not None:
            x = self.attention(x, bias)
        if self.intermediate is not None:
            x = self.output(self.intermediate.act(self.intermediate.dense(x)), x)
        return x


class Encoder(nn.Module):
    def __init__(self, c: CofiBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(c, h, f) for h, f in zip(c.heads, c.ffn))


class CofiBertForSequenceClassification(PreTrainedModel):
    """BERT/RoBERTa classifier (or regressor, ``num_labels == 1``) of CoFi-compacted shape."""

    config_class = CofiBertConfig
    base_model_prefix = "cofi_bert"
    _supports_sdpa = True

    def __init__(self, config: CofiBertConfig) -> None:
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = nn.Linear(config.hidden_size, config.pooler_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.pooler_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:  # fresh models only; exports load
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        if isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **kwargs) -> SequenceClassifierOutput:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        bias = None
        if attention_mask is not None:  # additive over keys: 0 for tokens, very negative for pad
            bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(
                torch.float32).min
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.encoder.layer:
            x = layer(x, bias)
        logits = self.classifier(self.dropout(torch.tanh(self.pooler(x[:, 0]))))
        loss = None
        if labels is not None:
            loss = (F.mse_loss(logits.squeeze(-1), labels.float()) if self.config.num_labels == 1
                    else F.cross_entropy(logits, labels.long()))
        return SequenceClassifierOutput(loss=loss, logits=logits)
