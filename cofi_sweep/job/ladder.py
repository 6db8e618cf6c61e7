"""A target ladder: one pruning run, a compact model at every target.

    teacher -> distil warm-up -> prune: the target rises to rung 1 and holds -> FORK -> rises to
    rung 2 and holds -> FORK -> ... -> the last rung -> FORK

Each FORK takes the pruning run's state at the rung's end -- its best evaluation inside the
rung's band, as a job's pruning stage keeps its best -- and finishes it exactly as an
independent job at that target finishes its own: masks projected onto the rung's band,
compaction, the same fine-tune (budget, LR, evaluations, selection split), written to
``<output_dir>/rung-<i>/`` (compact model and result.json). Pruning then goes on from the
un-compacted state to the next target. A fork *is* an independent job resumed from the state
saved at the fork (``rung-<i>/fork/``, removed once its result is written), so nothing of the
ladder's own run leaks into it and a killed ladder redoes only the fork it was in.

The schedule is the reference's linear warm-up cut into rungs: the target rises at an
independent job's rate (``sparsity_warmup_epochs`` from 0 to the last rung, so rung i's warm-up
is its share of that), then holds ``ladder_hold_epochs`` before it forks. The model's LR decays
linearly over the whole pruning run, as over one job's pruning stage; the Lagrangian's
multipliers carry over from rung to rung (not reset: the pressure that held rung i is where
rung i+1's warm-up starts, as within one job's warm-up).

Compute: k independent jobs cost k x (distil + prune + fine-tune) steps; the ladder costs one
distil, warm-up + k x hold pruning steps, and k fine-tunes of compact models.

    python -m cofi_sweep.prune --config sst2_minilm_cpu.yaml "cofi.ladder=[0.5,0.7,0.9]"
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from cofi_sweep.core.config import JobConfig
from cofi_sweep.core.teacher import Teacher
from cofi_sweep.job.fork import make_fork
from cofi_sweep.job.recipe import Callback, CofiPruner
from cofi_sweep.job.result import CofiResult
from cofi_sweep.latency.targets import Target, make_target

LADDER_FILE = "ladder.json"  # in the ladder's output folder: the rungs, and which are done
FORK_DIR = "fork"  # inside a rung's folder: the state a fork starts from (while it runs)


@dataclass
class Rung:
    """One target of the ladder, in stage steps of the pruning run."""

    index: int
    value: float  # the target as named: a sparsity, or a speedup
    start: int  # the stage step the rung's warm-up starts at
    warmup: int  # steps from the previous rung's target to this one
    end: int  # the stage step it forks at (warm-up, then the hold)
    start_goal: float  # the reduction it rises from (the previous rung's; 0 for the first)
    target: Target = dataclasses.field(repr=False)


def rung_job(job: JobConfig, value: float, output_dir: Path) -> JobConfig:
    """The independent job whose fine-tune a rung's fork is: the ladder's job at one target."""
    speedup = job.cofi.target_speedup is not None
    cofi = dataclasses.replace(job.cofi, ladder=[],
                               target_speedup=value if speedup else None,
                               target_sparsity=None if speedup else value)
    return dataclasses.replace(job, cofi=cofi, output_dir=str(output_dir))


class LadderPruner:
    """Runs a ladder job (``cofi.ladder``): ``run()`` returns one result per rung."""

    def __init__(self, job: JobConfig, *, teacher: Teacher | None = None,
                 callback: Callback | None = None,
                 on_fork: Callable[[Rung, CofiResult, CofiPruner], None] | None = None) -> None:
        """``callback`` gets every evaluation (of the pruning run and of the forks, marked
        with ``rung``, ``rung_target`` and, in a fork, ``fork``); ``on_fork`` each finished
        fork's rung, result and pruner (a sweep reports it as a result of its own)."""
        if not job.cofi.ladder:
            raise ValueError("a ladder job needs cofi.ladder: the targets, in rising order")
        self.job = job
        self.out = Path(job.output_dir).expanduser()
        self.callback = callback or (lambda pruner, event: None)
        self.on_fork = on_fork or (lambda rung, result, pruner: None)
        self.jobs = [rung_job(job, v, self.out / f"rung-{i}")
                     for i, v in enumerate(job.cofi.ladder)]
        self.main = CofiPruner(rung_job(job, job.cofi.ladder[-1], self.out / "ladder"),
                               teacher=teacher, callback=self._main_event)
        self.rungs = self._schedule()
        self.main.steps["prune"] = self.rungs[-1].end  # the LR decays over the whole run
        self.results: list[CofiResult | None] = [None] * len(self.rungs)
        self.start_time = time.time()

    def _schedule(self) -> list[Rung]:
        m = self.main
        hold = max(1, round(self.job.cofi.ladder_hold_epochs * len(m.train_loader)))
        rungs, start, previous = [], 0, 0.0
        targets = [make_target(j, m.dense_shape) for j in self.jobs]
        for i, (value, target) in enumerate(zip(self.job.cofi.ladder, targets)):
            warmup = round(m.warmup_steps * (target.goal - previous) / targets[-1].goal)
            rungs.append(Rung(i, value, start, warmup, start + warmup + hold, previous, target))
            start, previous = start + warmup + hold, target.goal
        return rungs

    # ---- the run --------------------------------------------------------------------------

    def run(self, checkpoint_dir: str | Path | None = None) -> list[CofiResult]:
        """Runs (or resumes) the ladder to its last fork. With ``checkpoint_dir``, the pruning
        run is saved there at every rung's end, before its fork (what :meth:`load_checkpoint`
        resumes from)."""
        m = self.main
        if m.stage == "distill":
            m._run_stage()
            m._finish_stage()  # -> pruning, with the optimizers of the whole run
        for rung in self.rungs:
            if self.results[rung.index] is not None:
                continue  # forked and fine-tuned before an interruption
            if m.rung["index"] != rung.index:
                self._enter(rung)
            m._run_stage(until=rung.end)
            if checkpoint_dir is not None:
                self.save_checkpoint(checkpoint_dir)
            self.results[rung.index] = self._fork(rung)
        self._write_summary()
        return list(self.results)

    def _enter(self, rung: Rung) -> None:
        """Moves the pruning run's target to ``rung``: a fresh best and band, the warm-up from
        the last rung's target."""
        m = self.main
        m.target, m.best, m.reached_target = rung.target, None, False
        m.rung = {"index": rung.index, "start": rung.start, "from": rung.start_goal,
                  "warmup": rung.warmup}

    def _fork(self, rung: Rung) -> CofiResult:
        """Compacts and fine-tunes the rung's best as an independent job resumed from the
        pruning run's state; the pruning run's RNG is untouched by it."""
        m, state = self.main, Path(self.jobs[rung.index].output_dir) / FORK_DIR
        m.save_checkpoint(state)
        rng = random.getstate(), np.random.get_state(), torch.get_rng_state()
        fork = make_fork(self.jobs[rung.index], state, teacher=m.teacher_info,
                         shared_from=m, callback=self._fork_event(rung))
        result = fork.run()
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        shutil.rmtree(state, ignore_errors=True)
        self.on_fork(rung, result, fork)
        return result

    def _main_event(self, pruner: CofiPruner, event: dict[str, Any]) -> None:
        if pruner.rung["index"] is not None:
            event = {**event, "rung": pruner.rung["index"],
                     "rung_target": self.rungs[pruner.rung["index"]].value}
        self.callback(pruner, event)

    def _fork_event(self, rung: Rung) -> Callback:
        return lambda pruner, event: self.callback(
            pruner, {**event, "rung": rung.index, "rung_target": rung.value, "fork": True})

    # ---- checkpoints and the summary ------------------------------------------------------

    def save_checkpoint(self, directory: str | Path, optimizer: bool = True,
                        best_file: str | Path | None = None) -> bool:
        """The pruning run's state (:meth:`CofiPruner.save_checkpoint`, whose arguments these
        are) and which rungs have forked (their results are on disk). Saved during a fork, it
        holds the state the fork started from: a resume redoes that fork only."""
        wrote = self.main.save_checkpoint(directory, optimizer=optimizer, best_file=best_file)
        # the forks' results travel with the checkpoint (a trial may resume on another node,
        # where this one's output folder is not): their models are the forks' own to store
        forked = {r.index: dataclasses.asdict(self.results[r.index]) for r in self.rungs
                  if self.results[r.index] is not None}
        (Path(directory) / LADDER_FILE).write_text(json.dumps({"forked": forked},
                                                              default=str))
        return wrote

    def load_checkpoint(self, directory: str | Path, best_file: str | Path | None = None
                        ) -> None:
        self.main.load_checkpoint(directory, best_file=best_file)
        if self.main.rung["index"] is not None:  # the target of the rung it stopped in
            self.main.target = self.rungs[self.main.rung["index"]].target
        forked = json.loads((Path(directory) / LADDER_FILE).read_text())["forked"]
        for i, saved in forked.items():
            self.results[int(i)] = CofiResult(**saved)

    def _write_summary(self) -> None:
        """``ladder.json``: the rungs' schedule and each fork's outcome."""
        self.out.mkdir(parents=True, exist_ok=True)
        rows = [{"rung": r.index, "target": r.value, "start_step": r.start,
                 "warmup_steps": r.warmup, "fork_step": r.end,
                 "compact_dir": res.compact_dir, "realized_sparsity": res.realized_sparsity,
                 "on_target": res.on_target, "score": res.compact_metrics[res.main_metric]}
                for r, res in zip(self.rungs, self.results)]
        (self.out / LADDER_FILE).write_text(json.dumps(
            {"kind": "speedup" if self.job.cofi.target_speedup is not None else "sparsity",
             "pruning_steps": self.rungs[-1].end, "hold_steps": self.rungs[0].end
             - self.rungs[0].warmup, "rungs": rows,
             "wall_seconds": time.time() - self.start_time}, indent=1))

