"""Sweep search spaces: a YAML file, validated completely before anything (Ray included) starts.

A space fixes one CoFi job (``job``: model, task, data, teacher and fixed CoFi settings), a
**grid** of targets (parameter sparsities and/or speedups) x named ablations, and the
**searched** CoFi hyperparameters with their distributions. Every grid cell gets
``trials_per_cell`` trials; inside a cell Optuna samples the searched values and ASHA may stop
trials early (see ``cofi_sweep/run.py``).

    name: quickstart
    job: {model: minilm, task: synthetic, data: {source: synthetic}, cofi: {prune_epochs: 2}}
    grid:
      target_sparsity: [0.5, 0.8]     # and/or target_speedup: [2, 4] (cells s2x-full, ...)
      ablations: {full: {}, no_hidden: {families: [head, mha, int, ffn]}}
    search:
      cofi.learning_rate: {type: loguniform, low: 2.0e-5, high: 2.0e-4}
      cofi.alpha_layer,alpha_pred: {type: choice, values: [[0.9, 0.1], [0.5, 0.5]]}  # a pair
    trials_per_cell: 3

Sweeps hold out a selection split (``job.data.selection_size``, default
:data:`SWEEP_SELECTION_SIZE`) that decides checkpoints, early stopping and the search; dev is
only reported. ``selection_size: null`` turns it off (dev then does both, and the report says so).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cofi_sweep.core.config import (
    POST_COMPACTION,
    BaselineConfig,
    CofiConfig,
    JobConfig,
    _did_you_mean,
    apply_overrides,
    below,
    from_dict,
    load_yaml,
)
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.pretrained import ALIASES
from cofi_sweep.sweep.cluster import ClusterConfig


@dataclass
class Distribution:
    """One searched value: choice(values), uniform/loguniform(low, high) or int(low, high)."""

    type: Literal["choice", "uniform", "loguniform", "int"]
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None

    def check(self) -> list[str]:
        if self.type == "choice":
            if not self.values:
                return ["values: choice needs a non-empty list of values"]
            if self.low is not None or self.high is not None:
                return ["low/high: not used by choice (give values)"]
            return []
        if self.low is None or self.high is None:
            return [f"low/high: {self.type} needs both low and high"]
        if self.values is not None:
            return [f"values: not used by {self.type} (give low and high)"]
        if not self.low < self.high:
            return [f"low/high: empty range, low={self.low} must be < high={self.high}"]
        if self.type == "loguniform" and self.low <= 0:
            return [f"low: loguniform needs low > 0, but got {self.low}"]
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            return [f"low/high: int needs whole numbers, but got {self.low}, {self.high}"]
        return []

    def endpoints(self) -> list[Any]:
        """Values the distribution can produce at its extremes (for range checking)."""
        if self.type == "choice":
            return list(self.values or [])
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


@dataclass
class GridConfig:
    # the targets: parameter sparsities, and/or speedups over the dense model in the sweep's
    # latency setting (predicted by the calibrated latency model: cofi_sweep/latency/targets.py)
    target_sparsity: list[float] | None = None  # [0.5] when neither is given
    # speedup targets, one cell each per ablation, e.g. [2, 4, 8] (beside or instead of sparsities)
    target_speedup: list[float] = field(default_factory=list)
    # name -> overrides of the job's cofi section (e.g. families, distill)
    ablations: dict[str, dict[str, Any]] = field(default_factory=lambda: {"full": {}})
    # true: per ablation, the sparsity targets are one ladder cell (and the speedup targets
    # another): each trial is one pruning run that forks a compact model at every target
    # (cofi_sweep/job/ladder.py), a results row per target
    ladder: bool = False

    def __post_init__(self) -> None:
        if self.target_sparsity is None:
            self.target_sparsity = [] if self.target_speedup else [0.5]

    def check(self) -> list[str]:
        problems = []
        if not self.target_sparsity and not self.target_speedup:
            problems.append("target_sparsity: needs at least one target (or target_speedup)")
        for t in self.target_sparsity:
            if not 0 <= t < 1:
                problems.append(f"target_sparsity: each target must be in [0, 1), but got {t}")
        for t in self.target_speedup:
            if t <= 1:
                problems.append(f"target_speedup: each target must be > 1 (times faster than "
                                f"the dense model), but got {t}")
        for name in ("target_sparsity", "target_speedup"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                problems.append(f"{name}: duplicates in {values}")
        if not self.ablations:
            problems.append("ablations: needs at least one (use {full: {}} for plain CoFi)")
        return problems


# cofi settings that act only after compaction (POST_COMPACTION): ASHA, which ranks
# pruning-stage scores, would judge them before they have had any effect; trials that differ
# only in them share their pruning (SweepSpace.shared_pruning_runs)
# cofi settings that place the evaluations and the target's warm-up: ASHA compares a cell's
# trials at their n-th ranked evaluation, which must be the same step and target for all
SCHEDULE = ("eval_every", "batch_size", "distill_epochs", "prune_epochs",
            "sparsity_warmup_epochs")
SWEEP_SELECTION_SIZE = 500  # examples held out of train when a sweep's space does not say


@dataclass
class SearcherConfig:
    """Optuna, one study per grid cell (see cofi_sweep/sweep/search.py)."""

    sampler: Literal["tpe", "random"] = "tpe"
    seed: int = 0  # Optuna's sampler seed
    startup_trials: int = 2  # a cell's random trials before its TPE starts learning

    def check(self) -> list[str]:
        return below(self, {"startup_trials": 1})


@dataclass
class SchedulerConfig:
    """Early stopping per cell on selection-split scores, counted in ranked pruning evaluations
    (masks at the target's current value; see cofi_sweep/sweep/scheduler.py): ``asha`` (async: a
    trial is judged when it reaches a rung, against those there before it) or ``halving``
    (synchronous: trials pause at each rung until the cell's others reach it)."""

    type: Literal["asha", "halving", "none"] = "asha"
    grace_period: int = 2  # ranked evaluations before a trial can first be stopped
    reduction_factor: int = 2  # keep the top 1/reduction_factor at each rung

    @property
    def name(self) -> str:
        return {"asha": "ASHA", "halving": "synchronous halving"}.get(self.type, self.type)

    def check(self) -> list[str]:
        return below(self, {"grace_period": 1, "reduction_factor": 2})


@dataclass
class ResourcesConfig:
    cpus_per_trial: float = 1.0  # also the trial's torch thread count (at least 1)
    gpus_per_trial: float = 0.0  # fractions share a GPU between trials
    max_concurrent_trials: int = 2  # trials running at once, over the whole grid

    def check(self) -> list[str]:
        return (below(self, {"cpus_per_trial": 0}, strict=True)
                + below(self, {"gpus_per_trial": 0, "max_concurrent_trials": 1}))


@dataclass
class CheckpointPolicy:
    every_n_evals: int = 1  # a resumable checkpoint every n evaluations (0 = never)
    # >= 2: a driver killed right after a new checkpoint replaced the previous one must still
    # find the checkpoint its last saved state names
    num_to_keep: int = 2
    # False: checkpoints leave out AdamW's moments (2/3 of a checkpoint's weights); a resumed
    # trial then restarts its optimizers' statistics (the weights, gates, lambdas, schedule and
    # data order are still restored exactly)
    keep_optimizer: bool = True

    def check(self) -> list[str]:
        return below(self, {"every_n_evals": 0, "num_to_keep": 2})


@dataclass
class LatencyConfig:
    """How the compact models and the teacher are timed (after all trials, one at a time)."""

    batch_size: int = 32  # the batch each compact model is timed at after the trials
    seq_len: int = 128  # and the sequence length
    warmup: int = 2  # untimed passes first
    repeats: int = 10  # timed passes per model, interleaved with the teacher; the median counts
    num_threads: int | None = None  # torch threads for the timing pass; None = all cores
    device: str = "auto"  # cpu, cuda; auto: the trials' kind (cuda when gpus_per_trial > 0)
    # the dtype every model, the teacher too, is cast to and timed in (a GPU deployment
    # usually runs fp16 or bf16); the latency model predicts fp32 CPU timings only
    dtype: Literal["fp32", "fp16", "bf16"] = "fp32"

    def check(self) -> list[str]:
        problems = below(self, {"batch_size": 1, "seq_len": 1, "repeats": 1, "warmup": 0,
                                "num_threads": 1})
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            problems.append(f"device: auto, cpu or cuda, but got {self.device!r}")
        return problems


@dataclass
class SweepSpace:
    """A whole sweep. ``storage_path`` is a folder or a URI that pyarrow.fs opens (s3://, gs://).

    See :mod:`analysis.storage` for how a URI experiment is written and read.
    """

    name: str = "sweep"  # the experiment's folder name under storage_path
    # a folder (shared by every node on a cluster) or a URI: s3://, gs://, abfs://, hdfs://
    storage_path: str = "runs/sweeps"
    job: JobConfig = field(default_factory=JobConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    # distillation baselines trained side by side (same teacher, data, budget, latency):
    # name -> student shape; each is one more cell, e.g. {distil6: {layers: every_other}}
    baselines: dict[str, BaselineConfig] = field(default_factory=dict)
    # searched values: `cofi.<key>` -> {type: choice|uniform|loguniform|int, ...}; keys joined by
    # commas are searched as one choice
    search: dict[str, Distribution] = field(default_factory=dict)
    searcher: SearcherConfig = field(default_factory=SearcherConfig)
    trials_per_cell: int = 1  # trials per grid cell, trial i with seed cofi.seed + i
    # when every searched value acts only after compaction (cofi.finetune_learning_rate,
    # finetune_epochs), a cell's trials would all prune alike: they share this many pruning
    # runs, each pruned once (trial i fine-tunes run i mod N, with seed cofi.seed + i mod N);
    # 0 gives every trial a pruning run, and a seed, of its own
    shared_pruning_runs: int = 1
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    max_failures: int = 0  # retries of a failing trial (from its last checkpoint)
    # experiment trackers fed by Ray Tune's own logger callbacks (opt-in; each needs its
    # package): mlflow logs to <experiment>/mlflow.db (./mlflow.db for a URI) unless
    # MLFLOW_TRACKING_URI says otherwise; wandb to the project named like the sweep
    # (WANDB_MODE=offline keeps it local)
    callbacks: list[Literal["mlflow", "wandb"]] = field(default_factory=list)
    # with --address: how the nodes get the code and dependencies (cofi_sweep/cluster.py)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def check(self) -> list[str]:
        problems = below(self, {"trials_per_cell": 1, "max_failures": 0,
                                "shared_pruning_runs": 0})
        problems += _callback_problems(self.callbacks)
        if not self.name or any(c in self.name for c in "/\\ "):
            problems.append(f"name: a non-empty folder name without spaces, got {self.name!r}")
        problems += _storage_problems(self.storage_path)
        cofi_fields = {f.name for f in dataclasses.fields(CofiConfig)}
        base = dataclasses.asdict(self.job.cofi)
        for ablation, overrides in self.grid.ablations.items():
            where = f"grid.ablations.{ablation}"
            if not isinstance(overrides, dict):
                problems.append(f"{where}: must be a mapping of cofi settings")
                continue
            for key in ("target_sparsity", "target_speedup"):
                if key in overrides:
                    problems.append(f"{where}.{key}: set targets in grid.{key}")
            problems += _cofi_problems({**base, **overrides}, where)
        for key, dist in self.search.items():
            problems += _search_problems(key, dist, base, cofi_fields)
        # searched values an early stopper cannot judge: it ranks a cell's trials on
        # pruning-stage scores at the same evaluation, so the same step and target for all
        unjudgeable = {POST_COMPACTION: "act(s) only after compaction, but {s} ranks trials on "
                       "pruning-stage scores, before that; fix it in job.cofi",
                       SCHEDULE: "move(s) the evaluations or the target's warm-up, but {s} "
                       "compares a cell's trials at the same evaluation, which must be the "
                       "same step and target for all; fix it in job.cofi (or per ablation)"}
        for names, why in unjudgeable.items():
            keys = [k for k in self.search if set(_names(k)) & set(names)]
            if keys and self.scheduler.type != "none":
                problems.append(f"search: {', '.join(keys)} "
                                + why.format(s=self.scheduler.name)
                                + ", or set scheduler.type: none to search it")
        return problems

    # ---- the plan ---------------------------------------------------------------------------

    def cells(self) -> list[dict[str, Any]]:
        """The grid: one dict per (target, ablation) cell, with a folder-safe ``id``."""
        out = []
        targets = ([("target_sparsity", t, f"t{t:g}") for t in self.grid.target_sparsity]
                   + [("target_speedup", t, f"s{t:g}x") for t in self.grid.target_speedup])
        if self.grid.ladder:  # a cell per ablation and target kind, all its targets in one
            ladders = [("sparsity", "ladder", sorted(self.grid.target_sparsity)),
                       ("speedup", "ladder-speedup", sorted(self.grid.target_speedup))]
            for (kind, name, values), (ablation, overrides) in itertools.product(
                    ladders, self.grid.ablations.items()):
                if values:
                    out.append({"id": f"{name}-{ablation}", "method": "cofi",
                                "target_sparsity": None, "target_speedup": None,
                                "ladder": {"kind": kind, "targets": values},
                                "ablation": ablation, "overrides": dict(overrides)})
            targets = []
        for (kind, target, name), (ablation, overrides) in itertools.product(
                targets, self.grid.ablations.items()):
            out.append({"id": f"{name}-{ablation}", "method": "cofi",
                        "target_sparsity": target if kind == "target_sparsity" else None,
                        "target_speedup": target if kind == "target_speedup" else None,
                        "ablation": ablation, "overrides": dict(overrides)})
        for name, baseline in self.baselines.items():
            out.append({"id": f"distill-{name}", "method": "distill", "target_sparsity": None,
                        "target_speedup": None, "ablation": name, "overrides": {},
                        "baseline": dataclasses.asdict(baseline)})
        return out

    def shares_pruning(self, cell: dict[str, Any]) -> bool:
        """Whether ``cell``'s trials share pruning runs: a CoFi cell (not a ladder, which is
        one pruning run per trial already) of a search over values that all act only after
        compaction, with ``shared_pruning_runs`` > 0."""
        searched = {name for key in self.search for name in _names(key)}
        return (self.shared_pruning_runs > 0 and cell["method"] == "cofi"
                and not cell.get("ladder") and bool(searched)
                and searched <= set(POST_COMPACTION))

    def pruning_runs(self, cell: dict[str, Any]) -> int:
        """How many pruning runs ``cell``'s trials make (its trials, unless they share)."""
        if self.shares_pruning(cell):
            return min(self.shared_pruning_runs, self.trials_per_cell)
        return self.trials_per_cell

    def trial_queue(self) -> list[tuple[str, int]]:
        """Every trial as (cell id, seed), in the order they are handed out: round-robin over
        the cells, trial i of a cell with seed ``cofi.seed + i`` (``+ i mod N`` where the
        cell's trials share N pruning runs: trials of one seed prune alike)."""
        base = self.job.cofi.seed
        return [(cell["id"], base + i % self.pruning_runs(cell))
                for i in range(self.trials_per_cell) for cell in self.cells()]

    def storage_uri(self) -> str:
        """``storage_path`` made absolute (Ray requires it) unless it is a URI."""
        if "://" in self.storage_path:
            return self.storage_path
        return str(Path(self.storage_path).expanduser().resolve())


# the package each tracker needs, and how to get it
TRACKER_PACKAGES = {"mlflow": ("mlflow", "pip install mlflow-skinny"),
                    "wandb": ("wandb", "pip install wandb")}


def _callback_problems(callbacks: list[str]) -> list[str]:
    """A tracker whose package is missing is a validation error, not a crash mid-sweep."""
    import importlib.util

    problems = []
    for name in dict.fromkeys(callbacks):
        module, install = TRACKER_PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            problems.append(f"callbacks: {name} needs the {module!r} package, which is not "
                            f"installed: {install}, or remove {name!r} from callbacks")
    if len(set(callbacks)) != len(callbacks):
        problems.append(f"callbacks: duplicates in {callbacks}")
    return problems


def _names(key: str) -> list[str]:
    """The cofi settings a search key sets: ``cofi.a,b`` sets a and b together."""
    return [k.strip() for k in key.partition(".")[2].split(",")]


def _search_problems(key: str, dist: Distribution, base: dict[str, Any],
                     cofi_fields: set[str]) -> list[str]:
    where = f"search.{key}"
    section, names = key.partition(".")[0], _names(key)
    unknown = [n for n in names if n not in cofi_fields]
    if section != "cofi" or unknown:
        return [f"{where}: only cofi.<setting> (or cofi.<a>,<b> for a pair) can be searched "
                f"(model, data and teacher are fixed per sweep)"
                f"{_did_you_mean(unknown[0] if unknown else key, cofi_fields)}"]
    grid_axes = [n for n in names if n in ("target_sparsity", "target_speedup", "families",
                                          "distill", "seed")]
    if grid_axes:
        return [f"{where}: {grid_axes[0]} is set per cell (grid.target_sparsity, "
                "grid.ablations; seeds by trials_per_cell), not a searched value"]
    if len(names) == 1:
        return [p for value in dist.endpoints()
                for p in _cofi_problems({**base, names[0]: value}, where)]
    values = dist.values or []
    if dist.type != "choice" or not all(isinstance(v, list) and len(v) == len(names)
                                        for v in values):
        return [f"{where}: a pair is searched as a choice of [{', '.join(names)}] lists, "
                f"e.g. {{type: choice, values: [[0.9, 0.1], [0.5, 0.5]]}}"]
    return [p for v in values for p in _cofi_problems({**base, **dict(zip(names, v))}, where)]


def _cofi_problems(raw: dict[str, Any], where: str) -> list[str]:
    try:
        from_dict(CofiConfig, raw)
    except ConfigError as e:
        return [f"{where}: {p}" for p in e.problems]
    return []


def load_space(path: str | Path, overrides: list[str] = ()) -> SweepSpace:
    """Loads and validates a sweep YAML; raises :class:`ConfigError` listing every problem."""
    raw = load_yaml(path, "space")
    if raw == {}:
        raise ConfigError(["the file is empty: a sweep needs at least `grid:` (targets and "
                           "ablations) and `job:` (model, task); see the shipped spaces in "
                           "cofi_sweep/spaces/"], str(path))
    if not isinstance(raw, dict):
        raise ConfigError([f"top level must be a mapping, but got {type(raw).__name__}"], str(path))
    raw = apply_overrides(raw, list(overrides))
    data = raw.setdefault("job", {}).setdefault("data", {}) if isinstance(
        raw.get("job", {}), dict) else {}
    if isinstance(data, dict):
        data.setdefault("selection_size", SWEEP_SELECTION_SIZE)
    return from_dict(SweepSpace, raw, source=str(path))


def job_for_trial(space: SweepSpace, cell: dict[str, Any], params: dict[str, Any],
                  output_dir: str) -> JobConfig:
    """The full JobConfig of one trial: the sweep's job + the cell + the sampled values."""
    raw = dataclasses.asdict(space.job)
    raw["cofi"].update(cell["overrides"])
    if cell["method"] == "distill":
        raw["method"], raw["baseline"] = "distill", cell["baseline"]
    elif cell.get("ladder"):  # the last rung names the kind (and the pruning run's end)
        ladder = cell["ladder"]
        speedup = ladder["kind"] == "speedup"
        raw["cofi"].update(ladder=list(ladder["targets"]),
                           target_sparsity=None if speedup else ladder["targets"][-1],
                           target_speedup=ladder["targets"][-1] if speedup else None)
    else:
        raw["cofi"]["target_sparsity"] = cell["target_sparsity"]
        raw["cofi"]["target_speedup"] = cell.get("target_speedup")
    # a speedup target aims at the speedup the sweep measures: its latency setting
    lat = space.latency
    raw["deploy"] = {"batch_size": lat.batch_size, "seq_len": lat.seq_len,
                     "num_threads": lat.num_threads, "device": timing_device(space),
                     "dtype": lat.dtype}
    for key, value in params.items():
        names = _names(key)
        raw["cofi"].update(zip(names, value) if len(names) > 1 else {names[0]: value})
    raw["output_dir"] = output_dir
    return from_dict(JobConfig, raw)


def aims_at_speedup(cell: dict[str, Any]) -> bool:
    """A cell whose trials aim at speedups (a speedup target, or a ladder of them): its
    latency model is calibrated and its reach checked before the trials start."""
    return bool(cell.get("target_speedup")) or (cell.get("ladder") or {}).get("kind") == \
        "speedup"


def timing_device(space: SweepSpace) -> str:
    """``latency.device``; ``auto`` is the kind of device the trials trained on (a GPU when
    ``gpus_per_trial`` > 0), never simply whatever the driver's machine happens to have."""
    lat = space.latency
    if lat.device != "auto":
        return lat.device
    return "cuda" if space.resources.gpus_per_trial > 0 else "cpu"


def resolve_local_paths(space: SweepSpace, base: Path | None = None) -> SweepSpace:
    """``space`` with its relative local paths made absolute against ``base`` (default: the
    working directory the sweep was started from). Tune runs every trial in its own folder,
    where ``data.dir: ../shared/data/glue`` or ``data.train: data/train.csv`` names nothing.
    Model, teacher and dataset names that are no local path (hub names, aliases) are left as
    they are."""
    base = Path(base or Path.cwd())

    def absolute(path: str | None, must_exist: bool = False) -> str | None:
        if not path or Path(path).expanduser().is_absolute() or "://" in path:
            return path
        resolved = (base / Path(path).expanduser()).resolve()
        return str(resolved) if resolved.exists() or not must_exist else path

    job = space.job
    data = dataclasses.replace(job.data, dir=absolute(job.data.dir),
                               train=absolute(job.data.train),
                               validation=absolute(job.data.validation),
                               dataset=absolute(job.data.dataset, must_exist=True))
    teacher = dataclasses.replace(job.teacher, cache_dir=absolute(job.teacher.cache_dir),
                                  path=absolute(job.teacher.path, must_exist=True))
    model = job.model if job.model in ALIASES else absolute(job.model, must_exist=True)
    return dataclasses.replace(space, job=dataclasses.replace(job, model=model, data=data,
                                                              teacher=teacher))


# what pyarrow.fs.FileSystem.from_uri opens (and so what Ray Tune can write to)
STORAGE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


def _storage_problems(path: str) -> list[str]:
    """A folder, or a URI whose shape pyarrow accepts (checked offline: no bucket is opened)."""
    match = re.fullmatch(r"([A-Za-z][\w+.-]*):(/*)(.*)", path)
    if not path:
        return ["storage_path: must be a folder or a URI (s3://bucket/path)"]
    if match is None or (len(match[1]) == 1 and not match[2].startswith("//")):
        return []  # a plain folder (or a Windows drive letter)
    scheme, slashes, rest = match[1], match[2], match[3]
    if slashes != "//" and not (scheme == "file" and slashes == "///"):
        return [f"storage_path: {path!r} looks like a mistyped URI; write "
                f"{scheme}://{rest.lstrip('/')}"]
    if scheme not in STORAGE_SCHEMES:
        return [f"storage_path: unsupported URI scheme {scheme!r}; one of "
                f"{', '.join(STORAGE_SCHEMES)}, or a folder"]
    if scheme == "file" and slashes != "///":
        return [f"storage_path: a file:// URI needs an absolute path (file:///abs/path), "
                f"got {path!r}"]
    if not rest.strip("/"):
        return [f"storage_path: {path!r} names no bucket or folder"]
    return []


