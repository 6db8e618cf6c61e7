"""Small builders shared by the tests: tiny models and batches, mask cases, a tiny CoFi job,
a tiny sweep space, a small table of your own data and its broken variants."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
import yaml

from cofi_sweep.core.config import DataConfig, JobConfig, from_dict
from cofi_sweep.core.model import CofiBert, load_model
from cofi_sweep.job.recipe import CofiPruner


def tiny(name: str = "tiny-bert", num_labels: int = 3) -> CofiBert:
    return load_model(name, num_labels).eval()


def random_batch(vocab: int, pad_id: int = 0, batch: int = 3, length: int = 11):
    """Random ids with padding on the first row (positions 7+)."""
    ids = torch.randint(5, vocab, (batch, length))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    ids[0, 7:] = pad_id
    return ids, mask


def all_on_masks(model: CofiBert) -> dict[str, torch.Tensor]:
    s = model.shape
    L, H, F, d = s.num_layers, s.heads[0], s.ffn[0], s.hidden_size
    return {"head_z": torch.ones(L, H), "head_layer_z": torch.ones(L),
            "intermediate_z": torch.ones(L, F), "mlp_z": torch.ones(L), "hidden_z": torch.ones(d)}


def binary(shape: tuple[int, ...], keep: float) -> torch.Tensor:
    return (torch.rand(shape) < keep).float()


def case_masks(model: CofiBert, case: str) -> dict[str, torch.Tensor]:
    m = all_on_masks(model)
    m["head_z"], m["intermediate_z"] = binary((4, 4), 0.7), binary((4, 128), 0.6)
    m["head_z"][:, 0] = 1
    m["intermediate_z"][:, 0] = 1
    if case == "removed_mha":
        m["head_layer_z"][1] = 0
    elif case == "removed_ffn":
        m["mlp_z"][2] = 0
    elif case == "all_heads_off_mha_on":
        m["head_z"][0] = 0
    elif case == "all_units_off_ffn_on":
        m["intermediate_z"][3] = 0
    elif case == "hidden_dims_removed":
        m["hidden_z"] = binary((64,), 0.7)
    elif case == "whole_layer_removed":
        m["head_layer_z"][2], m["mlp_z"][2] = 0, 0
    elif case == "everything":
        m["head_layer_z"][1], m["mlp_z"][2], m["head_z"][0] = 0, 0, 0
        m["intermediate_z"][3] = 0
        m["hidden_z"] = binary((64,), 0.7)
    return m


CASES = ["removed_mha", "removed_ffn", "all_heads_off_mha_on", "all_units_off_ffn_on",
         "hidden_dims_removed", "whole_layer_removed", "everything"]


def job(tmp_path: Path, teacher_cache: Path, **cofi: object) -> JobConfig:
    settings = {"target_sparsity": 0.5, "distill_epochs": 0.25, "prune_epochs": 4,
                "sparsity_warmup_epochs": 1, "finetune_epochs": 0.5, "batch_size": 16,
                "learning_rate": 1e-4, "reg_learning_rate": 0.1, "eval_every": 5,
                **cofi}
    return from_dict(JobConfig, {
        "model": "tiny-bert", "task": "synthetic", "output_dir": str(tmp_path / "out"),
        "data": {"source": "synthetic", "synthetic_train_size": 320, "synthetic_eval_size": 64,
                 "max_seq_length": 32},
        "teacher": {"epochs": 2, "learning_rate": 1e-3, "cache_dir": str(teacher_cache)},
        "cofi": settings})


def quiet(pruner: CofiPruner, event: dict) -> None:
    pass


def tiny_space(tmp_path: Path, teacher_cache: Path, **changes: object) -> dict:
    space = {
        "name": "tiny", "storage_path": str(tmp_path / "sweeps"),
        "job": {"model": "tiny-bert", "task": "synthetic",
                "data": {"source": "synthetic", "synthetic_train_size": 2000,
                         "selection_size": 128,
                         "max_train_samples": 512, "synthetic_eval_size": 128,
                         "max_seq_length": 32},
                "teacher": {"epochs": 15, "learning_rate": 5e-4, "max_train_samples": 2000,
                            "cache_dir": str(teacher_cache)},
                "cofi": {"batch_size": 32, "distill_epochs": 0.25, "prune_epochs": 4,
                         "sparsity_warmup_epochs": 1, "finetune_epochs": 1,
                         "learning_rate": 2e-4, "reg_learning_rate": 0.1, "eval_every": 4}},
        "grid": {"target_sparsity": [0.3, 0.6],
                 "ablations": {"full": {}, "no_hidden": {"families": ["head", "mha", "int",
                                                                     "ffn"]}}},
        "search": {"cofi.alpha_layer,alpha_pred": {"type": "choice",
                                                   "values": [[0.9, 0.1], [0.5, 0.5]]}},
        "trials_per_cell": 2,
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
        "checkpoint": {"every_n_evals": 3, "num_to_keep": 2},
        "latency": {"batch_size": 4, "seq_len": 16, "repeats": 2, "warmup": 1},
    }
    space.update(changes)
    return space


def write(tmp_path: Path, space: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


# ---- your own data: a small labelled table, written in any format, and broken ways -----------

ROWS = pd.DataFrame({
    "message": ["refund please", "app crashes on start", "add dark mode", "charged twice",
                "blank page after update", "export to excel please", "invoice is wrong",
                "login button does nothing"],
    "category": ["billing", "bug", "feature", "billing", "bug", "feature", "billing", "bug"],
    "extra": range(8),
})


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as the file ``path`` names (by its suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    else:
        frame.to_parquet(path, index=False)
    return path


def files(tmp_path: Path, train: pd.DataFrame, dev: pd.DataFrame | None = None,
          suffix: str = ".csv", **settings) -> DataConfig:
    return DataConfig(source="files", train=str(write_table(train, tmp_path / f"train{suffix}")),
                      validation=str(write_table(dev, tmp_path / f"dev{suffix}"))
                      if dev is not None else None,
                      **({"text_fields": ["message"], "label_field": "category"} | settings))


def bad_data(tmp_path: Path) -> list[tuple[str, DataConfig, str]]:
    """(what, data settings, words the one message must contain)"""
    def make(name: str, train: pd.DataFrame, dev: pd.DataFrame | None = None,
             **kw) -> DataConfig:
        return files(tmp_path / name, train, dev, **kw)

    garbage = tmp_path / "garbage" / "train.parquet"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"this is not a parquet file")
    mostly_empty = ROWS.assign(message=["hi"] + [""] * 7)
    return [
        ("a missing file", DataConfig(source="files", train=str(tmp_path / "nope.csv")),
         "data.train: file not found"),
        ("an unreadable file", DataConfig(source="files", train=str(garbage),
                                          text_fields=["message"]),
         "data.train: cannot read"),
        ("a missing text column", make("text", ROWS, text_fields=["mesage"]),
         "has no column 'mesage'; did you mean 'message'?"),
        ("a missing label column", make("label", ROWS, label_field="categroy"),
         "did you mean 'category'?"),
        ("no usual text column", DataConfig(source="files", train=str(
            write_table(ROWS, tmp_path / "guess" / "train.csv")), label_field="category"),
         "data.text_fields: unset"),
        ("an empty split", make("empty", ROWS, ROWS.iloc[:0]), "has no rows"),
        ("labels unseen in train", make("unseen", ROWS,
                                        ROWS.iloc[:2].assign(category=["refunds", "bug"])),
         "labels ['refunds']"),
        ("a non-numeric regression label",
         make("reg", ROWS.assign(category=["1.5"] * 7 + ["high"]), problem="regression"),
         "'high' (row 8) is not a number"),
        ("one class", make("one", ROWS.assign(category="bug")), "one class only"),
        ("a mostly empty text column", make("holes", mostly_empty), "empty in 88%"),
        ("a metric of the other problem", make("metric", ROWS, metrics=["pearson"]),
         "metric 'pearson' is for regression"),
        ("binary f1 over three classes", make("f1", ROWS, metrics=["f1"]),
         "use f1_macro or f1_micro"),
        ("a hub split that does not exist",
         DataConfig(source="hub", dataset=str(write_table(ROWS, tmp_path / "hubx" / "train.csv")
                                              .parent), splits={"validation": "dev"},
                    text_fields=["message"], label_field="category"),
         "has no split 'dev'"),
    ]


BAD_DATA_CASES = 13  # len(bad_data(...))
