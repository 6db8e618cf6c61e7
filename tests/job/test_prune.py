from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from helpers import job, quiet

from cofi_sweep.core.gates import Gates
from cofi_sweep.core.model import CofiBert
from cofi_sweep.core.sparsity import dense_size
from cofi_sweep.job.checkpoint import CHECKPOINT_FILE
from cofi_sweep.job.cli import format_report, print_progress
from cofi_sweep.job.recipe import CofiPruner, run_cofi


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
    # realized sparsity, counted on the saved model against the dense tiny-bert's Linears
    model = CofiBert.from_pretrained(result.compact_dir)
    linears = sum(m.weight.numel() + m.bias.numel() for m in model.encoder.modules()
                  if isinstance(m, torch.nn.Linear))
    dense = dense_size(num_layers=4, hidden_size=64, num_heads=4, head_dim=16, ffn_size=128)
    assert result.realized_sparsity == pytest.approx(1 - linears / dense)
    assert result.on_target and 0.49 <= result.realized_sparsity <= 0.51
    assert model.prunable_parameters() == result.prunable_params
    assert model.structure() == result.structure
    assert (Path(result.compact_dir).parent / "result.json").is_file()
    alignment = [j for j in result.layer_alignment if j is not None]
    assert alignment == sorted(set(alignment))  # dynamic mapping: strictly increasing upward
    # the alignment of every evaluation, in the order they came, the last one the final
    trace = json.loads(result.table_columns()["alignment_trace"])
    assert [[e["step"], e["stage"]] for e in events] == [t[:2] for t in trace]
    assert trace[-1][2] == result.layer_alignment


def test_one_mask_sample_per_pruning_step(tmp_path: Path, teacher_cache: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = Gates.sample
    monkeypatch.setattr(Gates, "sample", lambda self: calls.append(1) or original(self))
    pruner = CofiPruner(job(tmp_path, teacher_cache, finetune_epochs=0), callback=quiet)
    embeddings_before = pruner.model.embeddings.word_embeddings.weight.clone()
    pruner.run()
    assert len(calls) == pruner.steps["prune"]
    # embeddings are frozen by default: the compact model holds the kept columns, unchanged
    kept = pruner.model.shape.kept_hidden_dims or list(range(64))
    assert len(kept) == pruner.model.shape.hidden_size
    assert torch.equal(pruner.model.embeddings.word_embeddings.weight,
                       embeddings_before[:, kept])


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_stage, stop_step, best_apart", [
    ("prune", 20, False), ("prune", 20, True), ("finetune", 5, False)])
def test_checkpoint_resume_gives_the_same_result(tmp_path: Path, teacher_cache: Path,
                                                 stop_stage: str, stop_step: int,
                                                 best_apart: bool) -> None:
    reference = run_cofi(job(tmp_path / "a", teacher_cache), callback=quiet)
    best_file = tmp_path / "best.pt" if best_apart else None  # once per trial, as sweeps do

    def stop(pruner: CofiPruner, event: dict) -> None:
        if event["stage"] == stop_stage and event["stage_step"] == stop_step:
            assert pruner.best is not None  # so there is a snapshot to keep apart
            pruner.save_checkpoint(tmp_path / "ckpt", best_file=best_file)
            raise Interrupt

    with pytest.raises(Interrupt):
        run_cofi(job(tmp_path / "b", teacher_cache), callback=stop)
    saved = torch.load(tmp_path / "ckpt" / CHECKPOINT_FILE, weights_only=False)
    assert (saved["best"]["state"] is None) == best_apart  # not in the checkpoint itself
    resumed = CofiPruner(job(tmp_path / "b", teacher_cache), callback=quiet)
    resumed.load_checkpoint(tmp_path / "ckpt", best_file=best_file)
    result = resumed.run()
    assert result.structure == reference.structure
    assert result.compact_metrics == reference.compact_metrics
    assert result.realized_sparsity == reference.realized_sparsity


@pytest.mark.parametrize("distill", ["unconstrained", "fixed", "prediction", "none"])
def test_distillation_variants_and_ablations_run(tmp_path: Path, teacher_cache: Path,
                                                 distill: str) -> None:
    events: list[dict] = []
    result = run_cofi(job(tmp_path, teacher_cache, distill=distill, families=["head", "int"],
                          prune_epochs=1, sparsity_warmup_epochs=0.5),
                      callback=lambda p, e: events.append(e))
    assert result.structure["hidden"] == 64  # hidden dims not pruned in this ablation
    assert result.on_target
    losses = {k for e in events if e["stage"] == "prune" for k in e}
    if distill == "fixed":  # student layer k learns from the k-th distilled teacher layer
        assert result.layer_alignment == list(range(1, len(result.teacher_layers) + 1))
    if distill in ("unconstrained", "fixed"):
        assert "layer_loss" in losses and "pred_loss" in losses
    elif distill == "prediction":
        assert "pred_loss" in losses and "layer_loss" not in losses
        assert result.layer_alignment == []
    else:  # hard labels only
        assert losses >= {"task_loss"} and "pred_loss" not in losses


@pytest.mark.parametrize("max_overshoot", [0.0, 0.1])
def test_best_checkpoint_respects_max_overshoot(tmp_path: Path, teacher_cache: Path,
                                                max_overshoot: float) -> None:
    # the reference path (no projection): the band decides which checkpoint is kept; a wide
    # eps, because a tiny-bert head is 3 % of the parameters
    events: list[dict] = []
    result = run_cofi(job(tmp_path, teacher_cache, max_overshoot=max_overshoot,
                          finetune_epochs=0, target_sparsity=0.5, project_to_band=False,
                          shape_multiple=1, eval_every=1, sparsity_epsilon=0.1),
                      callback=lambda p, e: events.append(e))
    prune = [e for e in events if e["stage"] == "prune"]
    assert all(e["realized_sparsity"] == e["deterministic_sparsity"] for e in prune)
    eligible = [e for e in prune if e["at_target"]
                and 0.4 <= e["deterministic_sparsity"] <= 0.5 + max_overshoot]
    assert eligible, "the settings must give the band rule something to choose from"
    beyond = [e for e in prune if e["at_target"] and e["deterministic_sparsity"] > 0.5]
    assert beyond, "and something that only the wider band admits"
    # the compacted model is the best eligible checkpoint
    best = max(eligible, key=lambda e: e["metric"])
    assert result.realized_sparsity == pytest.approx(best["deterministic_sparsity"], abs=1e-9)
    assert 0.4 - 1e-9 <= result.realized_sparsity <= 0.5 + max_overshoot + 1e-9
    # the result says whether it is on target, by the same band
    assert result.on_target == (0.4 <= result.realized_sparsity <= 0.5 + max_overshoot)
    assert (result.on_target is False) == ("OFF TARGET" in format_report(result))


@pytest.mark.parametrize("target", [0.3, 0.85])
def test_short_budget_lands_on_target_with_projection(tmp_path: Path, teacher_cache: Path,
                                                      target: float) -> None:
    # 20 pruning steps: the Lagrangian cannot get there alone (checked with projection off)
    settings = dict(target_sparsity=target, prune_epochs=1, sparsity_warmup_epochs=0.5,
                    finetune_epochs=0.25, reg_learning_rate=0.02)
    events: list[dict] = []
    result = run_cofi(job(tmp_path / "on", teacher_cache, **settings),
                      callback=lambda p, e: events.append(e))
    assert result.on_target and abs(result.realized_sparsity - target) <= 0.01
    ranked = [e for e in events if e["stage"] == "prune" and e["at_target"]]
    assert ranked and all(abs(e["realized_sparsity"] - target) <= 0.01 for e in ranked)
    # the warm-up's evaluations are of masks projected onto its current target, though the
    # gates lag it (what lets early stopping rank trials during the warm-up)
    warm = [e for e in events if e["stage"] == "prune" and not e["at_target"]]
    assert warm and all(abs(e["realized_sparsity"] - e["target"]) <= 0.01 for e in warm)
    assert any(abs(e["deterministic_sparsity"] - e["target"]) > 0.01 for e in warm)
    assert all(e["ranked"] for e in events if e["stage"] == "prune")  # ASHA may rank them
    assert not any(e["ranked"] for e in events if e["stage"] != "prune")
    # widths rounded to cofi.shape_multiple (8) in the compact model
    widths = [result.structure["hidden"], *result.structure["ffn"]]
    assert all(w % 8 == 0 for w in widths), result.structure
    events.clear()
    off = run_cofi(job(tmp_path / "off", teacher_cache, project_to_band=False, shape_multiple=1,
                       **settings), callback=lambda p, e: events.append(e))
    assert not off.on_target and abs(off.realized_sparsity - target) > 0.05
    warm = [e for e in events if e["stage"] == "prune" and not e["at_target"]]
    assert warm and all(e["realized_sparsity"] == e["deterministic_sparsity"] for e in warm)
    assert not any(e["ranked"] for e in warm)  # raw masks: each trial at its own sparsity
    # what the projection moved is recorded: units moved with it on, nothing with it off
    assert sum(result.pruned_checkpoint["projection_moves"].values()) > 0
    assert set(off.pruned_checkpoint["projection_moves"].values()) == {0}
    assert json.loads(off.table_columns()["projection_moves"]) == \
        off.pruned_checkpoint["projection_moves"]


def test_selection_split_chooses_and_dev_only_reports(tmp_path: Path, teacher_cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    import cofi_sweep.job.recipe as prune

    config = job(tmp_path, teacher_cache)
    config.data.selection_size = 48
    seen: list[int] = []
    original = prune.evaluate
    monkeypatch.setattr(prune, "evaluate", lambda model, loader, *a, **k: seen.append(
        len(loader.dataset)) or original(model, loader, *a, **k))
    pruner = CofiPruner(config, callback=quiet)
    assert len(pruner.select_loader.dataset) == 48 and len(pruner.dev_loader.dataset) == 64
    assert len(pruner.train_loader.dataset) == 320 - 48  # held out of the training data
    result = pruner.run()
    evaluations = len(result.history)
    # every evaluation that decides something is on the selection split; dev twice: the best
    # pruning checkpoint and the final model, each once, for the report
    assert seen.count(48) == evaluations and seen.count(64) == 2
    assert "48 examples held out" in result.selection
    assert result.selection_metrics["accuracy"] == max(
        e["metric"] for e in result.history if e["stage"] == "finetune")
    assert "checkpoints chosen on: selection split" in format_report(result)
    print_progress(pruner, result.history[-1])  # the progress line names the split it scored
    assert " | selection accuracy=" in capsys.readouterr().out


def test_a_checkpoint_without_optimizer_state_resumes_at_the_same_lr(
        tmp_path: Path, teacher_cache: Path) -> None:
    saved = {}

    def stop(pruner: CofiPruner, event: dict) -> None:
        if event["stage"] == "prune":
            pruner.save_checkpoint(tmp_path / "lean", optimizer=False)
            pruner.save_checkpoint(tmp_path / "full")
            saved["lr"] = [g["lr"] for g in pruner.optimizer.param_groups]
            saved["step"] = pruner.global_step
            raise Interrupt

    with pytest.raises(Interrupt):
        run_cofi(job(tmp_path, teacher_cache), callback=stop)
    full = torch.load(tmp_path / "full" / CHECKPOINT_FILE, weights_only=False)
    lean = torch.load(tmp_path / "lean" / CHECKPOINT_FILE, weights_only=False)
    assert "optimizer" in full and "optimizer" not in lean and "gate_optimizer" not in lean
    resumed = CofiPruner(job(tmp_path, teacher_cache), callback=quiet)
    resumed.load_checkpoint(tmp_path / "lean")
    assert resumed.global_step == saved["step"] and saved["lr"][0] > 0
    assert [g["lr"] for g in resumed.optimizer.param_groups] == saved["lr"]
    assert resumed.run().compact_dir  # and it runs to the end


def test_teacher_outputs_are_cached_once_and_train_as_recomputed(
        tmp_path: Path, teacher_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job computes the teacher's outputs in one pass and reads them at every step; a step
    from the cache equals one that recomputes them; a budget too small for the training set
    (or 0) recomputes them every step."""
    pruners = {mb: CofiPruner(job(tmp_path / str(mb), teacher_cache, teacher_cache_mb=mb),
                              callback=quiet) for mb in (1024, 0, 0.01)}
    calls = {mb: 0 for mb in pruners}
    for mb, pruner in pruners.items():
        forward = pruner.teacher.forward

        def counted(*args, mb=mb, forward=forward, **kwargs):
            calls[mb] += 1
            return forward(*args, **kwargs)

        monkeypatch.setattr(pruner.teacher, "forward", counted)
    batches = list(itertools.islice(pruners[0].train_loader, 3))
    losses = {}
    for mb, pruner in pruners.items():
        torch.manual_seed(1)  # the same dropout and mask samples (building draws nothing)
        losses[mb] = [pruner.train_step(b) for b in batches]
    cached = pruners[1024].teacher_cache
    examples = len(pruners[1024].train_data)  # sentences repeat: fewer entries
    assert cached is not None and 0.5 * examples < len(cached.entries) <= examples
    assert calls[1024] == -(-examples // 128)  # the build's batches, then none
    assert pruners[0].teacher_cache is None and calls[0] == 3
    assert pruners[0.01].teacher_cache is None and calls[0.01] == 3  # 10 kB: does not fit
    for (loss, parts), (ref, ref_parts) in zip(losses[1024], losses[0]):
        assert loss == pytest.approx(ref, rel=1e-5, abs=1e-6)
        assert parts == pytest.approx(ref_parts, rel=1e-5, abs=1e-6)
