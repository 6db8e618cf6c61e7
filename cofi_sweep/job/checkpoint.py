"""Save and restore a running CoFi job exactly: weights, log_alphas, lambdas, optimizer states,
stage, step, best snapshot and RNG -- what lets a sweep pause a trial and resume it."""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cofi_sweep.core.model import CofiBert, EncoderShape

log = logging.getLogger(__name__)
CHECKPOINT_FILE = "cofi_state.pt"


class Resumable:
    """The checkpoint half of :class:`~cofi_sweep.job.recipe.CofiPruner` (a mixin: it reads and
    writes the pruner's own attributes)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this job exactly where it is."""
        return {
            "stage": self.stage, "stage_step": self.stage_step, "global_step": self.global_step,
            "model": self.model.state_dict(), "model_shape": asdict(self.model.shape),
            "projection": self.projection.state_dict(), "gates": self.gates.state_dict(),
            "lagrangian": self.lagrangian.state_dict(),
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "gate_optimizer": self.gate_optimizer.state_dict(),
            "lambda_optimizer": self.lambda_optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),  # fp16's loss scale; empty otherwise
            "best": self.best, "reached_target": self.reached_target,
            "pruned_metrics": self.pruned_metrics, "history": self.history,
            "pruned_checkpoint": self.pruned_checkpoint,
            "mapping": self.mapping, "rung": self.rung, "rng": {
                "python": random.getstate(), "numpy": np.random.get_state(),
                "torch": torch.get_rng_state()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage, self.stage_step = state["stage"], state["stage_step"]
        self.global_step = state["global_step"]
        if self.stage in ("finetune", "done") or not self.pruning:  # compact: rebuild its shape
            self.model = CofiBert(EncoderShape(**state["model_shape"])).to(self.device)
            self.projection = nn.Linear(self.model.shape.hidden_size,
                                        self.teacher.shape.hidden_size).to(self.device)
        self.model.load_state_dict(state["model"])
        self.projection.load_state_dict(state["projection"])
        self.gates.load_state_dict(state["gates"])
        self.lagrangian.load_state_dict(state["lagrangian"])
        self._make_optimizers()
        if "optimizer" in state:  # left out with checkpoint.keep_optimizer: false
            self.optimizer.load_state_dict(state["optimizer"])
            self.gate_optimizer.load_state_dict(state["gate_optimizer"])
            self.lambda_optimizer.load_state_dict(state["lambda_optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for group, lr in zip(self.optimizer.param_groups, self.schedule.get_last_lr()):
            group["lr"] = lr  # where the schedule was, with or without the optimizer's state
        self.best, self.reached_target = state["best"], state["reached_target"]
        self.pruned_metrics, self.history = state["pruned_metrics"], state["history"]
        self.pruned_checkpoint = state.get("pruned_checkpoint", {})
        self.mapping = state["mapping"]
        self.rung = state.get("rung", self.rung)  # (older checkpoints: a plain job's)
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])

    def save_checkpoint(self, directory: str | Path, optimizer: bool = True,
                        best_file: str | Path | None = None) -> bool:
        """Writes the job's state; ``optimizer=False`` leaves out AdamW's moments (a resume
        then restarts them: see ``checkpoint.keep_optimizer``). With ``best_file``, the best
        snapshot (a whole model) is written there, only when it changed, and the checkpoint
        names it by step: one copy per trial instead of one in every checkpoint. Returns
        whether ``best_file`` was (re)written."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        if not optimizer:
            for key in ("optimizer", "gate_optimizer", "lambda_optimizer"):
                state.pop(key)
        wrote = False
        if best_file is not None and self.best is not None:
            step = self.best["event"]["step"]
            if self._best_written != step:
                tmp = Path(f"{best_file}.tmp")
                torch.save({"step": step, "state": self.best["state"]}, tmp)
                tmp.replace(best_file)  # a reader never sees half a snapshot
                self._best_written, wrote = step, True
            state["best"] = {**self.best, "state": None, "state_step": step}
        torch.save(state, Path(directory) / CHECKPOINT_FILE)
        return wrote

    def load_checkpoint(self, directory: str | Path, best_file: str | Path | None = None
                        ) -> None:
        state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location=self.device,
                           weights_only=False)
        best = state.get("best")
        if best is not None and "state_step" in best:  # the best snapshot lives in best_file
            saved = (torch.load(best_file, map_location=self.device, weights_only=False)
                     if best_file is not None and Path(best_file).is_file() else None)
            if saved is not None and saved["step"] == best["state_step"]:
                state["best"] = {**best, "state": saved["state"]}
                self._best_written = saved["step"]
            else:  # a newer snapshot was written, then the process died before its checkpoint
                log.warning("best snapshot of step %s not found; the stage's best is chosen "
                            "again from the evaluations after the resume", best["state_step"])
                state["best"] = None
        self.load_state_dict(state)
