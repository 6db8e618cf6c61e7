"""One CoFi job, start to finish, without Ray: the training loop lives here.

    teacher (cached) -> 1. distil-only warm-up -> 2. pruning (masks + Lagrangian, target warm-up,
    then hold; best checkpoint at target) -> masks projected onto the target band -> compaction
    -> 3. distillation fine-tune of the compact model (constant LR, best kept) -> saved model

A distillation baseline (``method: distill``) starts from its dense student
(:mod:`cofi_sweep.core.students`) and runs the same three stages without masks: the pruning stage's
steps and decaying LR train the student, its best checkpoint goes on to the fine-tune.

Checkpoints are chosen on the *selection* split (``data.selection_size`` examples held out of
the training data) when there is one, else on dev; dev is evaluated once per finished model
(the best pruning checkpoint and the final compact model), for the report.

Run one from the command line with ``python -m cofi_sweep.prune`` (:mod:`cofi_sweep.job.cli`).

The :class:`CofiPruner` reports through a callback at every evaluation, and can save and load a
complete checkpoint (weights, log_alphas, lambdas, optimizer states, stage, step, RNG) so that a
sweep can pause and resume it.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from cofi_sweep.core.allocator import keep_freed_memory
from cofi_sweep.core.compact import compact, compact_projection, kept_indices
from cofi_sweep.core.config import JobConfig
from cofi_sweep.core.data import endless_batches, load_task, make_loader, tokenize
from cofi_sweep.core.distill import (
    align_layers,
    default_teacher_layers,
    identity_projection,
    layer_loss,
    layer_loss_matrix,
    prediction_loss,
    real_tokens,
)
from cofi_sweep.core.evaluation import evaluate, model_inputs, task_loss, to_device
from cofi_sweep.core.gates import Gates, masks_as_probs
from cofi_sweep.core.model import group_alive, resolve_device
from cofi_sweep.core.precision import autocast, grad_scaler, resolve_precision
from cofi_sweep.core.projection import mask_changes, project_to_band, round_shapes
from cofi_sweep.core.sparsity import Lagrangian, dense_size, expected_size, target_at
from cofi_sweep.core.students import make_student
from cofi_sweep.core.teacher import Teacher, get_teacher, linear_schedule, param_groups
from cofi_sweep.core.teacher_cache import TeacherCache, build_for_job
from cofi_sweep.job.checkpoint import Resumable
from cofi_sweep.job.result import CofiResult
from cofi_sweep.job.selection import replaces_best
from cofi_sweep.latency.targets import make_target

log = logging.getLogger(__name__)
STAGES = ("distill", "prune", "finetune", "done")

Callback = Callable[["CofiPruner", dict[str, Any]], None]


class CofiPruner(Resumable):
    """Runs one CoFi job. ``run()`` does everything; ``save_checkpoint``/``load_checkpoint``
    make it resumable at any evaluation point."""

    def __init__(self, job: JobConfig, *, teacher: Teacher | None = None,
                 callback: Callback | None = None) -> None:
        self.job, self.cfg = job, job.cofi
        self.callback = callback or (lambda pruner, event: None)
        self.device = resolve_device(job.device)
        self.precision = resolve_precision(job.cofi.precision, self.device)
        self.scaler = grad_scaler(self.precision, self.device)
        if job.num_threads:
            torch.set_num_threads(job.num_threads)
        keep_freed_memory()
        self.teacher_info = teacher or get_teacher(job)
        self.stage, self.stage_step, self.global_step = "distill", 0, 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None  # best checkpoint of the current stage
        self._best_written: int | None = None  # the step of the snapshot in best_file
        self.reached_target = False
        self.pruned_metrics: dict[str, float] = {}
        self.pruned_checkpoint: dict[str, Any] = {}
        self.mapping: list[int | None] = []
        # the target's schedule: from `from` at stage step `start` to the target over `warmup`
        # steps (a plain job: from 0 at step 0; a ladder moves it rung by rung)
        self.rung: dict[str, Any] = {"index": None, "start": 0, "from": 0.0, "warmup": 0}
        self.start_time = time.time()
        self._setup()

    # ---- setup ----------------------------------------------------------------------------

    def _setup(self) -> None:
        cfg, job = self.cfg, self.job
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        # data first: the step budgets of every stage are counted in epochs of it
        self.tokenizer = self.teacher_info.tokenizer()
        loaded = load_task(job.task, job.data)
        self.task = loaded.task
        log.info("data %s: %s", job.data.source, loaded.describe())  # what the job trains on
        data = tokenize(loaded.splits, self.tokenizer, job.data.max_seq_length)
        self.train_data = data["train"]
        self.teacher_cache: TeacherCache | None = None
        self.teacher_cache_tried = False
        self.train_loader = make_loader(data["train"], self.tokenizer,
                                        batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed)
        self.dev_loader = make_loader(data["dev"], self.tokenizer, batch_size=128,
                                      shuffle=False)
        if "selection" in data:
            self.select_loader = make_loader(data["selection"], self.tokenizer, batch_size=128,
                                             shuffle=False)
            self.selection = (f"selection split: {len(data['selection'])} examples held out of "
                              f"the training data (seed {job.data.seed})")
        else:
            self.select_loader, self.selection = self.dev_loader, "dev"
        per_epoch = len(self.train_loader)
        self.steps = {"distill": round(cfg.distill_epochs * per_epoch),
                      "prune": max(1, round(cfg.prune_epochs * per_epoch)),
                      "finetune": round(cfg.finetune_epochs * per_epoch)}
        self.warmup_steps = round(cfg.sparsity_warmup_epochs * per_epoch)
        self.rung["warmup"] = self.warmup_steps

        self.teacher = self.teacher_info.load(self.device).requires_grad_(False)
        if cfg.init_from == "teacher":
            self.model = copy.deepcopy(self.teacher).requires_grad_(True)
        else:
            from cofi_sweep.core.model import load_model
            self.model = load_model(job.model, self.task.num_labels,
                                    self.task.labels).to(self.device)
        self.model.train()
        s = self.model.shape
        self.dense_shape = s
        self.dense_params = dense_size(num_layers=s.num_layers, hidden_size=s.hidden_size,
                                       num_heads=s.heads[0], head_dim=s.head_dim,
                                       ffn_size=s.ffn[0])
        self.teacher_layers = cfg.teacher_layers or default_teacher_layers(
            self.teacher.shape.num_layers)
        if max(self.teacher_layers) > self.teacher.shape.num_layers:
            raise ValueError(f"cofi.teacher_layers {self.teacher_layers} exceed the teacher's "
                             f"{self.teacher.shape.num_layers} layers")
        self.projection = identity_projection(s.hidden_size,
                                              self.teacher.shape.hidden_size).to(self.device)
        self.gates = Gates(num_layers=s.num_layers, num_heads=s.heads[0], ffn_size=s.ffn[0],
                           hidden_size=s.hidden_size, families=cfg.families,
                           droprate_init_int=cfg.droprate_init_int,
                           droprate_init=cfg.droprate_init).to(self.device)
        self.lagrangian = Lagrangian().to(self.device)
        self.pruning = job.method == "cofi"  # a baseline runs the same stages without masks
        # what the Lagrangian, the band and the projection aim at: a sparsity or a speedup
        self.target = make_target(job, s) if self.pruning else None
        if not self.pruning:
            self._make_student()
        self._make_optimizers()

    def _make_student(self) -> None:
        """A distillation baseline's dense student (see :mod:`cofi_sweep.core.students`)."""
        self.model, self.projection = make_student(
            self.job.baseline, self.model, self.projection, self.teacher, self.task,
            self.train_loader, self.device)
        self.model.train()
        self.reached_target = True  # a dense student is at its final size from the start

    def _make_optimizers(self) -> None:
        """Optimizers of the current stage: each stage starts with fresh ones (the reference
        re-creates the model optimizer when pruning starts)."""
        cfg = self.cfg
        frozen = ("embeddings.",) if cfg.freeze_embeddings else ()
        groups = param_groups(self.model, 0.0, frozen)
        groups.append({"params": list(self.projection.parameters()), "weight_decay": 0.0})
        lr = cfg.finetune_learning_rate if self.stage == "finetune" else cfg.learning_rate
        self.optimizer = torch.optim.AdamW(groups, lr=lr)
        total = self.steps.get(self.stage, 1)
        if self.stage == "prune":  # linear decay to 0 over pruning
            self.schedule = linear_schedule(self.optimizer, warmup=0, total=total)
        else:  # constant LR in the warm-up and the fine-tune
            self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        self.gate_optimizer = torch.optim.AdamW(self.gates.parameters(), lr=cfg.reg_learning_rate,
                                                weight_decay=0.0)
        # gradient *ascent* on the multipliers: they maximise the same loss the rest minimises
        self.lambda_optimizer = torch.optim.AdamW(self.lagrangian.parameters(),
                                                  lr=cfg.reg_learning_rate, weight_decay=0.0,
                                                  maximize=True)

    # ---- the loop -------------------------------------------------------------------------

    def run(self) -> CofiResult:
        """Runs (or resumes) the job to the end and returns its result."""
        while self.stage != "done":
            self._run_stage()
            self._finish_stage()
        return self._result()

    def scheduled_target(self) -> float:
        """The target (a reduction: sparsity, or 1 - 1/speedup) at the current pruning step."""
        r = self.rung
        return target_at(self.stage_step - r["start"], target=self.target.goal,
                         warmup_steps=r["warmup"], start=r["from"])

    def _run_stage(self, until: int | None = None) -> None:
        """Trains the current stage to its end (or to stage step ``until``: a ladder's rung),
        evaluating every ``eval_every`` steps and at the last."""
        cfg, stage = self.cfg, self.stage
        total = self.steps[stage] if until is None else until
        per_epoch = len(self.train_loader)
        batches = endless_batches(self.train_loader, cfg.seed, self.stage_step // per_epoch,
                         self.stage_step % per_epoch)
        self.model.train()
        while self.stage_step < total:
            epoch, batch = next(batches)
            loss, parts = self.train_step(to_device(batch, self.device))
            # eval + best checkpoint
            if self.stage_step % cfg.eval_every == 0 or self.stage_step == total:
                self._evaluate(epoch, loss, parts)

    def train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
        """One optimizer step of the current stage (forward, backward, update); returns the
        loss and its parts. While pruning: one mask sample for the batch, the Lagrangian at the
        warmed-up target, and the gates' and multipliers' steps too."""
        cfg = self.cfg
        pruning = self.stage == "prune" and self.pruning
        masks = self.gates.sample() if pruning else None  # one sample per step
        with autocast(self.precision, self.device):
            loss, parts = self._loss(batch, masks)
        if pruning:
            expected = self.target.reduction(self.gates.probs())
            lagrangian = self.lagrangian(expected, self.scheduled_target())
            loss = loss + lagrangian
            parts.update(lagrangian=lagrangian.item())
        self.scaler.scale(loss).backward()  # fp16 only: scaled, so small gradients survive
        self.scaler.unscale_(self.optimizer)  # clipping sees the true gradients
        torch.nn.utils.clip_grad_norm_(
            list(self.model.parameters()) + list(self.projection.parameters()),
            cfg.max_grad_norm)
        self.scaler.step(self.optimizer)  # skipped (all three) when fp16 overflowed
        self.schedule.step()
        if pruning:
            self.scaler.step(self.gate_optimizer)
            self.scaler.step(self.lambda_optimizer)
            self.gates.clamp_()  # log_alpha stays in [ln 0.01, ln 100]
        self.scaler.update()
        for opt in (self.optimizer, self.gate_optimizer, self.lambda_optimizer):
            opt.zero_grad(set_to_none=True)
        self.stage_step += 1
        self.global_step += 1
        return loss.item(), parts

    def _loss(self, batch: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None
              ) -> tuple[torch.Tensor, dict[str, float]]:
        """The stage's training loss: distillation (or hard labels when distill == none)."""
        cfg = self.cfg
        inputs = model_inputs(batch)
        use_layers = cfg.distill in ("dynamic", "unconstrained", "fixed")
        out = self.model(**inputs, masks=masks, output_hidden_states=use_layers)
        if cfg.distill == "none":
            loss = task_loss(out.logits, batch["labels"], self.task)
            return loss, {"task_loss": loss.item()}
        t_logits, targets = self._teacher_outputs(batch, use_layers)
        pred = prediction_loss(out.logits, t_logits, temperature=cfg.temperature,
                               regression=self.task.is_regression)
        if not use_layers:
            return pred, {"pred_loss": pred.item()}
        tokens = batch["attention_mask"]
        projected = [self.projection(h) for h in real_tokens(out.hidden_states[1:], tokens)]
        self.mapping = align_layers(layer_loss_matrix(projected, targets),
                                    self.existing_layers(masks), cfg.distill,
                                    self.teacher_layers, self.teacher.shape.num_layers)
        layer = layer_loss(projected, targets, self.mapping)
        loss = cfg.alpha_layer * layer + cfg.alpha_pred * pred
        return loss, {"pred_loss": pred.item(), "layer_loss": layer.item()}

    def _teacher_outputs(self, batch: dict[str, torch.Tensor], use_layers: bool
                         ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The teacher's logits and its chosen layers' states at the batch's real tokens: from
        the cache or computed. The cache is built at the first call when it fits and the job
        spans two epochs or more -- the same decision wherever a resumed job starts, so that
        it reads the same outputs as one run without a break."""
        if not self.teacher_cache_tried:
            self.teacher_cache_tried = True
            if self.cfg.teacher_cache_mb > 0 and (
                    sum(self.steps.values()) >= 2 * len(self.train_loader)):
                self.teacher_cache = build_for_job(
                    self.teacher, self.train_data, self.train_loader.collate_fn,
                    layers=self.teacher_layers if use_layers else [],
                    num_labels=self.task.num_labels, device=self.device,
                    budget_mb=self.cfg.teacher_cache_mb)
        found = self.teacher_cache.lookup(batch) if self.teacher_cache else None
        if found is not None:
            return found
        with torch.no_grad():
            out = self.teacher(**model_inputs(batch), output_hidden_states=use_layers)
        states = [out.hidden_states[i] for i in self.teacher_layers] if use_layers else []
        return out.logits, real_tokens(states, batch["attention_mask"])

    def existing_layers(self, masks: dict[str, torch.Tensor] | None) -> list[bool]:
        """Student layers with an MHA or an FFN sub-layer still present."""
        out = []
        for i, layer in enumerate(self.model.encoder.layer):
            m = {k: v[i] for k, v in (masks or {}).items() if k != "hidden_z"}
            mha = layer.attention is not None and group_alive(m.get("head_layer_z"),
                                                               m.get("head_z"))
            ffn = layer.intermediate is not None and group_alive(m.get("mlp_z"),
                                                                  m.get("intermediate_z"))
            out.append(mha or ffn)
        return out

    # ---- sparsity -------------------------------------------------------------------------

    def expected_sparsity(self) -> torch.Tensor:
        size = expected_size(self.gates.probs(), self.dense_shape.head_dim)
        return 1 - size / self.dense_params

    def deterministic_sparsity(self, masks: dict[str, torch.Tensor]) -> float:
        size = expected_size(masks_as_probs(masks, self.gates), self.dense_shape.head_dim)
        return 1 - float(size) / self.dense_params

    def reduction(self, masks: dict[str, torch.Tensor]) -> float:
        """What the target is in (sparsity, or 1 - 1/predicted speedup) at binary masks."""
        return float(self.target.reduction(masks_as_probs(masks, self.gates)))

    def masks_at_target(self, masks: dict[str, torch.Tensor], goal: float | None = None
                        ) -> dict[str, torch.Tensor]:
        """``masks`` with widths rounded to ``cofi.shape_multiple``, then projected onto the
        target's band (when ``cofi.project_to_band``; see :mod:`cofi_sweep.core.projection`) --
        or onto a band as wide around ``goal`` (a reduction), e.g. the warm-up's current
        target."""
        log_alpha, multiple = dict(self.gates.log_alpha.items()), self.cfg.shape_multiple
        masks = round_shapes(masks, log_alpha, multiple)
        if not self.cfg.project_to_band:
            return masks
        t = self.target
        shift = 0.0 if goal is None else goal - t.goal
        return project_to_band(masks, log_alpha, reduction=self.reduction, target=t.goal + shift,
                               low=t.low + shift, high=t.high + shift, multiple=multiple)

    def structure(self, masks: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """Kept heads and FFN units per layer and kept hidden dims (under ``masks``)."""
        if self.stage == "finetune" or masks is None:
            return self.model.structure()
        hidden, heads, units = kept_indices(masks, self.model.shape)
        return {"hidden": len(hidden), "heads": [len(h) for h in heads],
                "ffn": [len(u) for u in units]}

    # ---- evaluation, stage ends, checkpoints ----------------------------------------------

    def _evaluate(self, epoch: int, loss: float, parts: dict[str, float]) -> None:
        """Scores the model on the selection split, offers it as the stage's best checkpoint
        (:func:`~cofi_sweep.job.selection.replaces_best`) and reports the event."""
        event: dict[str, Any] = {
            "stage": self.stage, "step": self.global_step, "stage_step": self.stage_step,
            "total_steps": sum(self.steps.values()),
            "epoch": epoch, "loss": loss, "lr": self.schedule.get_last_lr()[0], **parts}
        eligible, masks, distance = True, None, 0.0
        # ranked: a pruning-stage score of a model at the target's current value, the same for
        # all of a cell's trials at the same step (what early stopping ranks); a baseline's
        # student is at its final size throughout
        ranked = self.stage == "prune"
        if self.stage == "prune" and self.pruning:
            self._update_reached_target()
            ranked = self.reached_target or self.cfg.project_to_band
            masks, eligible, distance = self._pruning_state(event, ranked)
        else:  # a compact model, or a baseline's dense student: at its final size
            event["realized_sparsity"] = 1 - self.model.prunable_parameters() / self.dense_params
        # at_target: the score is of a model at its final sparsity
        event["at_target"] = self.stage == "finetune" or (self.stage == "prune"
                                                          and self.reached_target)
        event["ranked"] = ranked
        metrics = evaluate(self.model, self.select_loader, self.task, masks=masks,
                           precision=self.precision,
                           device=self.device)
        event["metric"] = metrics[self.task.main_metric]
        event.update({f"selection_{k}": v for k, v in metrics.items()})
        event["structure"] = self.structure(masks)
        event["layer_alignment"] = [None if j is None else j + 1 for j in self.mapping]
        if self.stage in ("prune", "finetune") and replaces_best(self.best, event["metric"],
                                                                 eligible, distance):
            self.best = {"event": event, "eligible": eligible, "state": self._snapshot()}
            if not eligible:
                self.best["distance"] = distance
        self.history.append(event)
        self.callback(self, event)

    def _update_reached_target(self) -> None:
        """The target counts as reached once the expected reduction enters its band -- or, with
        projection, once the target's warm-up is over: every evaluation after it is then of an
        on-target model, however far the Lagrangian lags."""
        expected = float(self.target.reduction(self.gates.probs()).detach())
        self.reached_target |= expected >= self.target.low
        self.reached_target |= self.cfg.project_to_band and (
            self.stage_step - self.rung["start"] >= self.rung["warmup"])

    def _pruning_state(self, event: dict[str, Any], ranked: bool
                       ) -> tuple[dict[str, torch.Tensor], bool, float]:
        """The masks to score at a pruning evaluation, whether that model may be the stage's
        best, and its distance from the target; adds the sparsity (speedup) figures to
        ``event``."""
        t, now = self.target, self.scheduled_target()
        raw = self.gates.deterministic()
        # projected onto the target's current value: during its warm-up every trial of a
        # cell is then at the same sparsity at the same step, whatever its gates lag, so
        # scores compare like with like from the first evaluation (early stopping ranks them)
        masks = self.masks_at_target(raw, now) if ranked else raw
        expected_reduction = float(t.reduction(self.gates.probs()).detach())
        event.update(
            target=now if t.kind == "sparsity" else None,
            expected_sparsity=self.expected_sparsity().item(),
            deterministic_sparsity=self.deterministic_sparsity(raw),
            realized_sparsity=self.deterministic_sparsity(masks),
            lambda_1=self.lagrangian.lambda_1.item(), lambda_2=self.lagrangian.lambda_2.item())
        realized = self.reduction(masks)
        if t.kind == "speedup":  # the latency model's speedups (measured ones come later)
            event.update(target_speedup=t.value(now), expected_speedup=t.value(
                expected_reduction), latency_model_speedup=t.value(realized))
        # the Lagrangian oscillates around the target: a checkpoint far from it would be a
        # mislabelled frontier point, so the best is kept only within the target's band
        return masks, self.reached_target and t.in_band(realized), abs(realized - t.goal)

    def _snapshot(self) -> dict[str, Any]:
        return {name: copy.deepcopy(module.state_dict()) for name, module in
                (("model", self.model), ("gates", self.gates), ("projection", self.projection))}

    def _finish_stage(self) -> None:
        """Moves to the next stage; after pruning, restores the best checkpoint and compacts."""
        stage = self.stage
        if stage == "distill":
            self.stage = "prune"
        elif stage == "prune" and not self.pruning:  # a baseline: its best, no compaction
            if self.best is not None:
                self.model.load_state_dict(self.best["state"]["model"])
                self.projection.load_state_dict(self.best["state"]["projection"])
            self.pruned_metrics = evaluate(self.model, self.dev_loader, self.task,
                                           precision=self.precision,
                                           device=self.device)  # once, for the report
            self.stage = "finetune"
        elif stage == "prune":
            if self.best is not None:
                self.model.load_state_dict(self.best["state"]["model"])
                self.gates.load_state_dict(self.best["state"]["gates"])
                self.projection.load_state_dict(self.best["state"]["projection"])
                self.pruned_checkpoint = {k: self.best["event"][k] for k in (
                    "step", "expected_sparsity", "deterministic_sparsity")}
            if self.best is not None and not self.best["eligible"]:
                log.warning("no evaluation was within the band of the %s target %g once the "
                            "expected %s had reached it; compacting the one closest to the "
                            "target%s", self.target.kind, self.target.nominal, self.target.kind,
                            ", projected onto the band" if self.cfg.project_to_band else
                            " (raise prune_epochs or reg_learning_rate, or eval more often, "
                            "or set cofi.project_to_band: true)")
            raw = self.gates.deterministic()
            masks = self.masks_at_target(raw)
            # what rounding and projection changed against the gates' choice (ablations of the
            # mask families state it: a projection can move units the gates did not choose)
            self.pruned_checkpoint["projection_moves"] = mask_changes(raw, masks)
            self.model = compact(self.model, masks)
            self.projection = compact_projection(self.projection, masks)
            self.pruned_metrics = evaluate(self.model, self.dev_loader, self.task,
                                           precision=self.precision,
                                           device=self.device)  # once, for the report
            self.pruned_checkpoint["realized_sparsity"] = \
                1 - self.model.prunable_parameters() / self.dense_params
            self.stage = "finetune"
            if self.steps["finetune"] == 0:  # no fine-tune: the compact model is final
                self._evaluate(0, float("nan"), {})
        elif stage == "finetune":
            if self.best is not None:
                self.model.load_state_dict(self.best["state"]["model"])
            self.stage = "done"
        self.stage_step, self.best = 0, None
        if self.stage in ("prune", "finetune"):
            self._make_optimizers()

    # ---- the result -----------------------------------------------------------------------

    def _result(self) -> CofiResult:
        out = Path(self.job.output_dir).expanduser()
        compact_dir = out / "compact"
        self.model.save_pretrained(compact_dir)
        self.tokenizer.save_pretrained(compact_dir)
        final = [e for e in self.history if e["stage"] == "finetune"]
        best = max(final, key=lambda e: e["metric"]) if final else self.history[-1]
        dev = evaluate(self.model, self.dev_loader, self.task, device=self.device,
                       precision=self.precision)  # once
        prunable = self.model.prunable_parameters()
        t = self.target  # None for a baseline: it has no target
        speedup = t is not None and t.kind == "speedup"
        result = CofiResult(
            compact_dir=str(compact_dir),
            target_sparsity=None if speedup else self.cfg.target_sparsity if t else
            1 - prunable / self.dense_params,
            realized_sparsity=1 - prunable / self.dense_params,
            reached_target=self.reached_target,
            on_target=t.in_band(t.of_model(self.model)) if t else None,
            target_speedup=t.nominal if speedup else None,
            latency_model_speedup=t.value(t.of_model(self.model)) if speedup else None,
            target_miss=t.miss(t.of_model(self.model)) if t else 0.0,
            prunable_params=prunable,
            dense_prunable_params=self.dense_params,
            total_params=sum(p.numel() for p in self.model.parameters()),
            teacher_metrics=self.teacher_info.metrics, pruned_metrics=self.pruned_metrics,
            compact_metrics=dev,
            selection_metrics={k[10:]: v for k, v in best.items()
                               if k.startswith("selection_")},
            selection=self.selection, pruned_checkpoint=self.pruned_checkpoint,
            main_metric=self.task.main_metric, structure=self.model.structure(),
            layer_alignment=[None if j is None else j + 1 for j in self.mapping],
            teacher_layers=self.teacher_layers, wall_seconds=time.time() - self.start_time,
            history=self.history, task=asdict(self.task))
        (out / "result.json").write_text(json.dumps(asdict(result), indent=1, default=str))
        return result


def run_cofi(job: JobConfig, *, callback: Callback | None = None) -> CofiResult:
    """Runs a whole CoFi job from a config (teacher from cache or trained first)."""
    return CofiPruner(job, callback=callback).run()


