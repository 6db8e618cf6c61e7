"""What pruning aims at: a parameter sparsity, or a speedup on this machine.

Both are one quantity the Lagrangian drives, the *reduction* r in [0, 1) (0 = the dense model):

    target_sparsity t:  r = 1 - prunable params / dense params      aimed at t
    target_speedup  S:  r = 1 - latency / dense latency              aimed at 1 - 1/S

where latency is the calibrated latency model's prediction (:mod:`cofi_sweep.latency.latency_model`)
in ``job.deploy``'s setting (batch, sequence length, threads) on this machine's CPU. Under the
gates, the expected latency plugs expected counts into the model's interpolated tables:

    E[lat] = fixed(h) + scale * sum_l [ P(MHA_l) mha(h, n_l) + P(FFN_l) ffn(h, f_l) ]
             + per_mha * sum_l P(MHA_l) + per_ffn * sum_l P(FFN_l)

with h = sum P(z_hidn), n_l = sum_j P(z_head_lj) the heads layer l's MHA keeps, f_l likewise
for its FFN units, and P(MHA_l) = P(z_MHA_l) (1 - prod_j (1 - P(z_head_lj))) the probability
the sub-layer exists (likewise P(FFN_l)). At binary masks this is exactly the model's
prediction for the compacted model; the tables are non-decreasing, so it is monotone in every
gate, and every enabled family moves it.

The target's warm-up (0 -> goal over ``sparsity_warmup_epochs``), the band that decides the best
checkpoint, and the projection onto the band before compaction (:mod:`cofi_sweep.core.projection`)
all work on r. A speedup target's band is the predicted speedup within ``speedup_tolerance``
(3 %) of the target; the compact model's *measured* speedup is reported beside it.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from cofi_sweep.core.config import DeployConfig, JobConfig
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.model import CofiBert, EncoderShape
from cofi_sweep.core.sparsity import dense_size, expected_size
from cofi_sweep.latency.latency_model import LatencyTable, latency_table
from cofi_sweep.latency.timing import available_cpus


class SparsityTarget:
    """Aim at ``target`` sparsity, kept in [target - epsilon, target + max_overshoot]."""

    kind = "sparsity"

    def __init__(self, target: float, *, epsilon: float, max_overshoot: float | None,
                 dense_shape: EncoderShape) -> None:
        s = dense_shape
        self.nominal, self.goal = target, target
        self.low, self.high = target - epsilon, (
            math.inf if max_overshoot is None else target + max_overshoot)
        self.head_dim = s.head_dim
        self.dense = dense_size(num_layers=s.num_layers, hidden_size=s.hidden_size,
                                num_heads=s.heads[0], head_dim=s.head_dim, ffn_size=s.ffn[0])

    def reduction(self, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Expected sparsity (exact at binary masks), by family probabilities."""
        return 1 - expected_size(probs, self.head_dim) / self.dense

    def value(self, reduction: float) -> float:
        return reduction

    def of_model(self, model: CofiBert) -> float:
        """The realized sparsity of a (compact) model."""
        return 1 - model.prunable_parameters() / self.dense

    def in_band(self, reduction: float) -> bool:
        return self.low <= reduction <= self.high

    def miss(self, reduction: float) -> float:
        """0 in the band, else the distance to the target sparsity."""
        return 0.0 if self.in_band(reduction) else abs(reduction - self.goal)


class SpeedupTarget:
    """Aim at ``target`` times the dense model's speed, as the latency ``table`` predicts it,
    kept within +- ``tolerance`` of it."""

    kind = "speedup"

    def __init__(self, target: float, *, tolerance: float, table: LatencyTable,
                 dense_shape: EncoderShape) -> None:
        self.nominal, self.table = target, table
        self.goal = 1 - 1 / target
        self.low, self.high = 1 - 1 / (target * (1 - tolerance)), 1 - 1 / (target * (1 + tolerance))
        self.dense_latency = table.predict(dense_shape)

    def reduction(self, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        """1 - expected latency / dense latency, by family probabilities."""
        return 1 - expected_latency(self.table, probs) / self.dense_latency

    def value(self, reduction: float) -> float:
        """The predicted speedup a reduction stands for."""
        return 1 / (1 - reduction)

    def of_model(self, model: CofiBert) -> float:
        """The reduction the latency model predicts for a (compact) model."""
        return 1 - self.table.predict(model.shape) / self.dense_latency

    def in_band(self, reduction: float) -> bool:
        return self.low <= reduction <= self.high

    def miss(self, reduction: float) -> float:
        """0 in the band, else the relative distance to the target speedup."""
        return 0.0 if self.in_band(reduction) else abs(self.value(reduction) / self.nominal - 1)


Target = SparsityTarget | SpeedupTarget


def expected_latency(table: LatencyTable, probs: dict[str, torch.Tensor]) -> torch.Tensor:
    """E[latency] of the masked model (module docstring), differentiable in ``probs``: per
    family (head (L,H), mha (L,), int (L,F), ffn (L,), hidden (d,)) P(z > 0)."""
    heads, units = probs["head"].sum(-1), probs["int"].sum(-1)
    mha_alive = probs["mha"] * (1 - torch.prod(1 - probs["head"], dim=-1))
    ffn_alive = probs["ffn"] * (1 - torch.prod(1 - probs["int"], dim=-1))
    return table.expected(probs["hidden"].sum(), heads, units, mha_alive, ffn_alive)


def max_speedup(table: LatencyTable, dense: EncoderShape, families: list[str]) -> float:
    """The largest speedup the enabled families can give: every sub-layer they can remove
    gone, the hidden width at the smallest the table measured (below it nothing is known)."""
    heads = 0 if {"head", "mha"} & set(families) else dense.heads[0]
    ffn = 0 if {"int", "ffn"} & set(families) else dense.ffn[0]
    hidden = int(table.hidden[0]) if "hidden" in families else dense.hidden_size
    smallest = dataclasses.replace(dense, hidden_size=hidden, kept_hidden_dims=None,
                                   heads=[heads] * dense.num_layers,
                                   ffn=[ffn] * dense.num_layers)
    return table.speedup(dense, smallest)


def deployment_table(deploy: DeployConfig, dense: EncoderShape) -> LatencyTable:
    """The latency model for ``deploy``'s setting (calibrated and cached on a first use, with
    the setting's threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(deploy.num_threads or available_cpus())
    try:
        return latency_table(dense, batch_size=deploy.batch_size, seq_len=deploy.seq_len,
                             device=deploy.device, dtype=deploy.dtype)
    finally:
        torch.set_num_threads(threads)


def reach_problem(job: JobConfig, dense: EncoderShape, table: LatencyTable) -> str | None:
    """Why the job's speedup target is out of reach for ``dense`` in its setting, or None."""
    cfg, d = job.cofi, job.deploy
    reach = max_speedup(table, dense, cfg.families)
    if cfg.target_speedup * (1 - cfg.speedup_tolerance) <= reach:
        return None
    return (f"cofi.target_speedup: {cfg.target_speedup:g}x is out of reach: with families "
            f"{cfg.families}, the latency model predicts at most {reach:.2f}x for this model at "
            f"batch {d.batch_size} x seq {d.seq_len} in {d.dtype} on this {d.device} "
            "(embeddings, classifier and "
            f"what no family removes stay); ask for at most {reach:.2f}x")


def make_target(job: JobConfig, dense: EncoderShape) -> Target:
    """The job's target; a speedup the model cannot reach in its setting is a ConfigError
    that names the largest reachable."""
    cfg = job.cofi
    if cfg.target_speedup is None:
        return SparsityTarget(cfg.target_sparsity, epsilon=cfg.sparsity_epsilon,
                              max_overshoot=cfg.max_overshoot, dense_shape=dense)
    table = deployment_table(job.deploy, dense)
    problem = reach_problem(job, dense, table)
    if problem:
        raise ConfigError([problem])
    return SpeedupTarget(cfg.target_speedup, tolerance=cfg.speedup_tolerance, table=table,
                         dense_shape=dense)
