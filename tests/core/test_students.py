"""Distillation baselines: every student kind, importance ranking, and parity with CoFi."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import job, quiet

from cofi_sweep.core.config import BaselineConfig, from_dict
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.model import CofiBert
from cofi_sweep.core.students import kept_layers, student_masks
from cofi_sweep.job.recipe import CofiPruner, run_cofi


def baseline_job(tmp_path: Path, teacher_cache: Path, **baseline: object):
    config = job(tmp_path, teacher_cache)
    config.method = "distill"
    config.baseline = from_dict(BaselineConfig, baseline)
    return config


@pytest.mark.parametrize("layers, extra, kept", [
    ("every_other", {}, [False, True, False, True]),
    ("first_k", {"num_layers": 3}, [True, True, True, False]),
    ("list", {"layer_list": [1, 4]}, [True, False, False, True]),
    ("all", {}, [True] * 4)])
def test_layer_subsets(layers: str, extra: dict, kept: list[bool]) -> None:
    assert kept_layers(4, from_dict(BaselineConfig, {"layers": layers, **extra})) == kept


def test_importance_keeps_the_highest_scoring_units_and_first_k_the_first() -> None:
    import dataclasses

    from helpers import tiny

    shape = dataclasses.replace(tiny().shape, hidden_size=8, heads=[4, 4], ffn=[6, 6])
    importance = {"head": torch.tensor([[0.1, 0.9, 0.5, 0.0], [1.0, 0.0, 0.0, 0.2]]),
                  "int": torch.arange(12.0).reshape(2, 6), "hidden": -torch.arange(8.0)}
    cfg = from_dict(BaselineConfig, {"layers": "all", "heads": 2, "ffn": 3, "hidden": 5})
    masks = student_masks(shape, cfg, importance)
    assert masks["head_z"].tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]
    assert masks["intermediate_z"].tolist() == [[0, 0, 0, 1, 1, 1]] * 2
    assert masks["hidden_z"].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    first = student_masks(shape, from_dict(BaselineConfig, {"layers": "all", "heads": 2,
                                                            "rank": "first"}))
    assert first["head_z"].tolist() == [[1, 1, 0, 0]] * 2 and "hidden_z" not in first


@pytest.mark.parametrize("baseline, heads, ffn, hidden", [
    ({"layers": "every_other"}, [0, 4, 0, 4], [0, 128, 0, 128], 64),
    ({"layers": "first_k", "num_layers": 2, "heads": 2, "ffn": 32, "hidden": 48},
     [2, 2, 0, 0], [32, 32, 0, 0], 48),
    ({"layers": "list", "layer_list": [2, 3], "heads": 1, "rank": "first"},
     [0, 1, 1, 0], [0, 128, 128, 0], 64),
])
def test_cut_students_train_compact_and_load(tmp_path: Path, teacher_cache: Path,
                                             baseline: dict, heads: list, ffn: list,
                                             hidden: int) -> None:
    result = run_cofi(baseline_job(tmp_path, teacher_cache, **baseline), callback=quiet)
    assert result.structure == {"hidden": hidden, "heads": heads, "ffn": ffn}
    loaded = CofiBert.from_pretrained(result.compact_dir)
    assert loaded.structure() == result.structure and result.on_target is None
    assert 0 < result.realized_sparsity < 1


def test_a_pretrained_checkpoint_is_a_student(tmp_path: Path, teacher_cache: Path) -> None:
    from cofi_sweep.core import pretrained

    # a tiny random RoBERTa-family transformers checkpoint stands in for a hub model
    folder = pretrained.build_tiny_model("tiny-roberta", seed=1)
    config = baseline_job(tmp_path, teacher_cache, pretrained=str(folder))
    config.cofi.distill = "fixed"
    pruner = CofiPruner(config, callback=quiet)
    assert pruner.model.shape.family == "roberta"
    result = pruner.run()
    assert result.structure["heads"] == [4, 4, 4, 4]
    assert CofiBert.from_pretrained(result.compact_dir).structure() == result.structure


def test_pretrained_student_takes_no_cut_settings() -> None:
    with pytest.raises(ConfigError, match="used as it is; drop heads"):
        from_dict(BaselineConfig, {"pretrained": "bert-base-uncased", "heads": 4})


def test_baseline_has_cofis_steps_schedule_and_evaluations(tmp_path: Path,
                                                          teacher_cache: Path) -> None:
    cofi_events: list[dict] = []
    base_events: list[dict] = []
    run_cofi(job(tmp_path / "c", teacher_cache), callback=lambda p, e: cofi_events.append(e))
    run_cofi(baseline_job(tmp_path / "b", teacher_cache, layers="every_other"),
             callback=lambda p, e: base_events.append(e))

    def shape(events: list[dict]) -> list[tuple]:
        return [(e["stage"], e["step"], e["stage_step"], round(e["lr"], 12)) for e in events]

    assert shape(base_events) == shape(cofi_events)  # stages, steps, evaluations, LR schedule
    lrs = [e["lr"] for e in base_events if e["stage"] == "prune"]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]  # linear decay, like CoFi
    assert all("expected_sparsity" not in e for e in base_events)  # no masks, no Lagrangian
