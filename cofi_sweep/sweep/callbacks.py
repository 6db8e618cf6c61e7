"""The sweep's Tune callbacks: the progress table a person follows, and the clean-up of an ended
trial's checkpoints."""

from __future__ import annotations

import time
from typing import Any

import cofi_sweep.sweep.ray_settings  # noqa: F401  (before ray)
from ray import tune

from analysis import storage
from analysis.layout import TRIALS_DIR
from cofi_sweep.sweep.checkpoints import remove_trial_checkpoints


class SweepProgress(tune.Callback):
    """Progress a person can follow: every 30 s (and whenever a trial ends) the counts, then
    one line per running trial -- cell, stage, step of total, expected / realized sparsity vs
    target, latest selection score, elapsed and estimated time left."""

    EVERY = 30.0

    def __init__(self, total: int) -> None:
        self.total, self.last_print = total, 0.0
        self.state: dict[str, str] = {}
        self.latest: dict[str, dict[str, Any]] = {}  # trial id -> cell, last result, start

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001
        for t in trials:  # synchronous halving pauses trials at its rungs
            if self.state.get(t.trial_id) in ("running", "paused"):
                self.state[t.trial_id] = "paused" if t.status == "PAUSED" else "running"
        self.state[trial.trial_id] = "running"
        seen = self.latest.setdefault(trial.trial_id, {"cell": trial.config.get("cell_id", "?"),
                                                      "start": time.time()})
        seen["result"] = result
        self._print()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        done = (trial.last_result or {}).get("done_job")
        self.state[trial.trial_id] = "done" if done else "stopped"
        self._print(force=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        self.state[trial.trial_id] = "errored"
        self._print(force=True)

    def lines(self, now: float | None = None) -> list[str]:
        """The progress table (see the class docstring)."""
        now = now or time.time()
        states = list(self.state.values())
        paused = f"{states.count('paused')} paused, " if "paused" in states else ""
        out = [f"[sweep] {states.count('running')} running, {paused}{states.count('done')} done, "
               f"{states.count('stopped')} stopped, {states.count('errored')} errored "
               f"(of {self.total})"]
        running = [t for t, s in self.state.items() if s == "running" and t in self.latest]
        if running:
            out.append(f"  {'trial':<12} {'cell':<22} {'stage':<9} {'step':>11}  "
                       f"{'sparsity (speedup) exp/real/target':<25} {'score':>7} {'elapsed':>8} "
                       f"{'left':>8}")
        for trial_id in running:
            seen, r = self.latest[trial_id], self.latest[trial_id]["result"]
            step, total = r.get("step", 0), r.get("total_steps") or 0
            elapsed = now - seen["start"]
            left = elapsed / step * (total - step) if step and total else None
            sparsity = "/".join("–" if r.get(k) is None else f"{r[k]:.2f}" for k in (
                "expected_sparsity", "realized_sparsity", "target"))
            if r.get("target_speedup") is not None:  # a speedup target: predicted speedups
                sparsity = "/".join("–" if r.get(k) is None else f"{r[k]:.2f}x" for k in (
                    "expected_speedup", "latency_model_speedup", "target_speedup"))
            score = r.get("selection_score")
            stage = r.get("stage", "?") + (f" r{r['rung']}" if r.get("rung") is not None
                                           else "")  # a ladder's rung
            out.append(f"  {trial_id:<12} {seen['cell']:<22} {stage:<9} "
                       f"{f'{step}/{total}':>11}  {sparsity:<25} "
                       f"{'–' if score is None else f'{score:.4f}':>7} {_clock(elapsed):>8} "
                       f"{'?' if left is None else _clock(left):>8}")
        return out

    def _print(self, force: bool = False) -> None:
        if not force and time.time() - self.last_print < self.EVERY:
            return
        self.last_print = time.time()
        print("\n".join(self.lines()), flush=True)


class SpentCheckpoints(tune.Callback):
    """Bounded disk: as each trial ends (finished, or stopped early by ASHA) its resumable
    checkpoints and its best snapshot are deleted, not at the sweep's end -- its results and
    compact model are stored, and a resume never restarts an ended trial (Tune keeps it
    TERMINATED). Errored trials keep theirs, for ``--retry-errored``. Nothing is written after
    the deletion: a function trainable blocks in ``tune.report`` until the driver asks for its
    next result, and a trial that ended is never asked again."""

    def __init__(self, phase_dir: str, experiment_dir: str) -> None:
        self.phase_dir, self.experiment_dir = phase_dir, experiment_dir

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        try:
            freed = remove_trial_checkpoints(
                storage.join(self.phase_dir, trial.storage.trial_dir_name),
                storage.join(self.experiment_dir, TRIALS_DIR, trial.trial_id))
        except OSError as e:  # disk clean-up must never end a sweep; the sweep's end retries
            print(f"[sweep] could not remove {trial.trial_id}'s checkpoints: {e}", flush=True)
            return
        if freed:
            print(f"[sweep] {trial.trial_id} ended: removed its resumable checkpoints "
                  f"({freed / 1024 ** 3:.2f} GiB)", flush=True)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"
