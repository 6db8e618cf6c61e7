"""Typed configuration for a CoFi job, loaded from plain YAML and validated up front.

One dataclass tree is the single source of truth for every setting and its default. The loader
walks it, rejects unknown keys (with a close-match hint), type-checks every value, runs each
section's range checks, and raises one :class:`ConfigError` listing *all* problems, each with its
dotted key path. Nothing else in the code reads raw dicts.

    job = load_job_config("sst2_minilm_cpu.yaml", overrides=["cofi.target_sparsity=0.9"])
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.tasks import GLUE, METRICS, SYNTHETIC


def below(obj: Any, minimums: dict[str, float], *, strict: bool = False) -> list[str]:
    """Problems for the fields of ``obj`` under their minimum (``strict``: at or under it).
    ``None`` values are allowed (they mean "not set")."""
    problems = []
    for name, bound in minimums.items():
        value = getattr(obj, name)
        if value is not None and (value <= bound if strict else value < bound):
            problems.append(f"{name}: must be {'>' if strict else '>='} {bound:g}, "
                            f"but got {value}")
    return problems


MASK_FAMILIES = ("head", "mha", "int", "ffn", "hidden")
DistillMode = Literal["dynamic", "unconstrained", "fixed", "prediction", "none"]


DATA_FILE_FORMATS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


@dataclass
class DataConfig:
    """Where the task's data comes from, what its columns mean, and how it is cut and
    tokenized (guide: docs/your-data.md)."""

    # files: your own .csv .tsv .json .jsonl .parquet (train, validation); hub: a dataset on the
    # Hugging Face hub (dataset), or a GLUE task's when dataset is unset; local: a folder in
    # GLUE's layout (dir); synthetic: the generated offline task
    source: Literal["files", "hub", "local", "synthetic"] = "hub"
    train: str | None = None  # files: the training file
    # files: the dev file, whose scores are reported; unset: validation_fraction of train,
    # carved with the seed below
    validation: str | None = None
    dataset: str | None = None  # hub: e.g. ag_news, imdb, user/name, or a folder it can read
    config: str | None = None  # hub: the dataset's configuration (e.g. tweet_eval's emotion)
    # hub: which of its splits serve as train and validation, e.g. {validation: test};
    # default train and validation (carved from train when the dataset has none)
    splits: dict[str, str] | None = None
    # one text column, or two for sentence pairs; unset: text, sentence, or sentence1 and
    # sentence2, whichever the data has
    text_fields: list[str] | None = None
    label_field: str = "label"  # class names (strings or integers) or regression scores
    # unset: regression when the labels are numbers that are not all whole, else classification
    problem: Literal["classification", "regression"] | None = None
    # by name: accuracy, f1 (binary), f1_macro, f1_micro, matthews, pearson, spearman; the first
    # chooses checkpoints and draws frontiers; unset: accuracy and f1 (f1_macro above two
    # classes), or pearson and spearman
    metrics: list[str] | None = None
    validation_fraction: float = 0.1  # see validation
    dir: str | None = None  # GLUE-layout folder (<TASK>/train.tsv, dev.tsv) for source=local
    max_train_samples: int | None = None  # seeded subsample of the training split
    max_eval_samples: int | None = None  # seeded subsample of the dev split
    # a seeded split carved from train that decides checkpoints, early stopping and search,
    # so dev is only reported (None: dev does both; sweeps default to 500)
    selection_size: int | None = None
    max_seq_length: int = 128  # tokens per example; longer ones are cut
    seed: int = 0  # subsampling, carved splits and synthetic generation
    synthetic_train_size: int = 4000  # examples the synthetic task generates for training
    synthetic_eval_size: int = 1000  # and for dev

    @property
    def user_data(self) -> bool:
        """Files or a hub dataset of the user's (not a GLUE preset or the synthetic task)."""
        return self.source == "files" or (self.source == "hub" and self.dataset is not None)

    def check(self) -> list[str]:
        problems = below(self, {"max_train_samples": 1, "max_eval_samples": 1,
                                "selection_size": 10,
                                "synthetic_train_size": 10, "synthetic_eval_size": 10})
        if self.source == "local" and not self.dir:
            problems.append("dir: source=local needs dir (a folder with <TASK>/train.tsv, dev.tsv)")
        if self.source == "files" and not self.train:
            problems.append("train: source=files needs train (a .csv, .tsv, .json, .jsonl or "
                            ".parquet file)")
        for key in ("train", "validation"):
            path = getattr(self, key)
            if path and self.source != "files":
                problems.append(f"{key}: a file is read with source: files, but source is "
                                f"{self.source!r}")
            elif path and not path.lower().endswith(DATA_FILE_FORMATS):
                problems.append(f"{key}: {path!r} is none of {', '.join(DATA_FILE_FORMATS)}")
        for key in ("dataset", "config", "splits"):
            if getattr(self, key) is not None and self.source != "hub":
                problems.append(f"{key}: for source: hub, but source is {self.source!r}")
        unknown = sorted(set(self.splits or {}) - {"train", "validation"})
        if unknown:
            problems.append(f"splits: keys are train and validation, but got {unknown}")
        if self.text_fields is not None and len(self.text_fields) not in (1, 2):
            problems.append(f"text_fields: one column, or two for sentence pairs, but got "
                            f"{self.text_fields}")
        if (self.text_fields or self.metrics or self.problem) and not self.user_data:
            problems.append("text_fields, problem, metrics: describe your own data (source: "
                            "files, or hub with dataset); GLUE and synthetic tasks know theirs")
        for name in self.metrics or []:
            if name not in METRICS:
                problems.append(f"metrics: unknown metric {name!r}{_did_you_mean(name, METRICS)}"
                                f"; known: {sorted(METRICS)}")
        if not 0 < self.validation_fraction <= 0.5:
            problems.append(f"validation_fraction: must be in (0, 0.5], but got "
                            f"{self.validation_fraction}")
        if not 8 <= self.max_seq_length <= 512:
            problems.append(f"max_seq_length: must be in [8, 512], but got {self.max_seq_length}")
        return problems


@dataclass
class TeacherConfig:
    """Fine-tuning of the dense teacher (cached on disk by everything listed here)."""

    epochs: float = 3.0  # epochs of teacher fine-tuning
    learning_rate: float = 5e-5  # AdamW peak learning rate
    batch_size: int = 32  # examples per step
    warmup_ratio: float = 0.1  # linear LR warm-up over this fraction of steps, then linear decay
    weight_decay: float = 0.01  # AdamW weight decay (not on biases and LayerNorm)
    seed: int = 0  # initialisation and data order
    max_train_samples: int | None = None  # teacher's own subset size; None = data's subset
    cache_dir: str | None = None  # None: <COFI_SWEEP_CACHE or ~/.cache/cofi_sweep>/teachers
    # an already fine-tuned teacher for this task (hub name or folder of a BERT/RoBERTa
    # *ForSequenceClassification checkpoint): its dev score is measured, nothing is trained,
    # and the settings above are ignored
    path: str | None = None

    def check(self) -> list[str]:
        problems = below(self, {"epochs": 0}, strict=True)
        problems += below(self, {"batch_size": 1, "max_train_samples": 1})
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate: must be in (0, 1), but got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio: must be in [0, 1), but got {self.warmup_ratio}")
        return problems

# CofiConfig settings read only after compaction: jobs differing only in these prune alike
POST_COMPACTION = ("finetune_learning_rate", "finetune_epochs")


@dataclass
class CofiConfig:
    """The CoFi method: masks, sparsity control, distillation and the three training stages."""

    # what pruning aims at -- one of: the realized sparsity of the prunable encoder weights
    # (0.5 when neither is set), or the speedup over the dense model that the calibrated
    # latency model predicts in job.deploy's setting on this machine (cofi_sweep/latency/targets.py)
    target_sparsity: float | None = None
    # e.g. 4: 4x faster than the dense model (see target_sparsity)
    target_speedup: float | None = None
    speedup_tolerance: float = 0.03  # a speedup target's band: within +- this fraction
    # a ladder: one pruning run whose target rises through these values in turn (sparsities,
    # or speedups when target_speedup is set, whose value then only names the kind), forking a
    # compact model at each rung that is fine-tuned as its own result (cofi_sweep/job/ladder.py);
    # empty: one target
    ladder: list[float] = field(default_factory=list)
    ladder_hold_epochs: float = 0.5  # pruning epochs a rung holds its target before it forks
    families: list[str] = field(default_factory=lambda: list(MASK_FAMILIES))  # mask families on
    distill: DistillMode = "dynamic"  # layer mapping; prediction = KL only; none = hard labels
    init_from: Literal["teacher", "pretrained"] = "teacher"  # student's starting weights
    batch_size: int = 32  # examples per step, every stage
    learning_rate: float = 2e-5  # model AdamW, linear decay over the pruning stage
    reg_learning_rate: float = 0.01  # log-alpha (descent) and lambda (ascent) optimizers
    distill_epochs: float = 1.0  # stage 1: distillation-only warm-up before masks appear
    prune_epochs: float = 10.0  # stage 2: pruning (includes the target warm-up)
    sparsity_warmup_epochs: float = 5.0  # target rises linearly from 0 over this many epochs
    finetune_epochs: float = 3.0  # stage 3: distillation fine-tune of the compact model
    finetune_learning_rate: float = 2e-5  # constant LR
    eval_every: int = 100  # optimizer steps between dev evaluations
    # the best pruning checkpoint is kept only once expected sparsity >= target - eps, and
    # only where realized sparsity is in [target - eps, target + max_overshoot] (null: no cap)
    sparsity_epsilon: float = 0.01
    max_overshoot: float | None = 0.01  # see sparsity_epsilon
    # before compaction and at every pruning evaluation (during the target's warm-up, onto its
    # current value), move the deterministic masks onto the band by the fewest heads/FFN units
    # (cofi_sweep/core/projection.py); false = reference, and ASHA then ranks only once at target
    project_to_band: bool = True
    # before compaction (and for pruning evaluations), round the kept hidden width and FFN
    # widths to multiples of this (odd widths run 10-18 % slower here; projection.py); 1 = off
    # (the reference: project_to_band false and shape_multiple 1)
    shape_multiple: int = 8
    temperature: float = 2.0  # softmax temperature of the prediction distillation (tau)
    alpha_layer: float = 0.9  # weight of the layer-wise MSE in the distillation loss
    alpha_pred: float = 0.1  # weight of the prediction KL
    teacher_layers: list[int] | None = None  # 1-based; default every quarter of the depth
    droprate_init_int: float = 0.5  # initial drop rate of FFN units (reference: 0.5)
    droprate_init: float = 0.0  # initial drop rate of the other families (reference: ~0)
    freeze_embeddings: bool = True  # embeddings stay as the teacher's (not pruned either way)
    max_grad_norm: float = 1.0  # gradient clipping
    # the teacher's outputs on the training data are computed once and kept when they fit in
    # this many MB (cofi_sweep/core/teacher_cache.py; a pruning step then skips the teacher's
    # forward); 0 = recompute them every step
    teacher_cache_mb: float = 1024
    seed: int = 0  # initialisation, mask samples and data order; a sweep's trial i adds i
    # the forward passes of the teacher, CoFi and the baselines, by torch.autocast (gates,
    # lambdas, weights and optimizers stay fp32; fp16 adds a gradient scaler); auto: bf16 on a
    # GPU that supports it, else fp32 (cofi_sweep/core/precision.py)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"

    def __post_init__(self) -> None:
        if self.target_sparsity is None and self.target_speedup is None:
            self.target_sparsity = 0.5

    def check(self) -> list[str]:
        problems = []
        if self.target_sparsity is not None and self.target_speedup is not None:
            problems.append(f"target_speedup: set target_sparsity or target_speedup, not both "
                            f"(got {self.target_sparsity} and {self.target_speedup})")
        if self.target_sparsity is not None and not 0 <= self.target_sparsity < 1:
            problems.append(f"target_sparsity: must be in [0, 1), but got {self.target_sparsity}")
        if self.target_speedup is not None and self.target_speedup <= 1:
            problems.append(f"target_speedup: must be > 1 (times faster than the dense model), "
                            f"but got {self.target_speedup}")
        if self.ladder:
            speedups = self.target_speedup is not None
            if any(b <= a for a, b in zip(self.ladder, self.ladder[1:])):
                problems.append(f"ladder: targets must rise strictly, but got {self.ladder}")
            bad = [v for v in self.ladder if (v <= 1 if speedups else not 0 < v < 1)]
            if bad:
                rule = ("speedups must be > 1 (target_speedup is set)" if speedups else
                        "sparsities must be in (0, 1) (set target_speedup for speedups)")
                problems.append(f"ladder: {rule}, but got {bad}")
        if not 0 < self.speedup_tolerance < 0.5:
            problems.append(f"speedup_tolerance: must be in (0, 0.5), but got "
                            f"{self.speedup_tolerance}")
        unknown = [f for f in self.families if f not in MASK_FAMILIES]
        if unknown:
            hint = _did_you_mean(unknown[0], MASK_FAMILIES)
            problems.append(
                f"families: must be a subset of {list(MASK_FAMILIES)}, but got {unknown}{hint}"
            )
        if not self.families:
            problems.append("families: needs at least one mask family (for a dense student, "
                            "use a distillation baseline: method: distill)")
        if len(set(self.families)) != len(self.families):
            problems.append(f"families: duplicates in {self.families}")
        problems += below(self, {"batch_size": 1, "eval_every": 1, "shape_multiple": 1})
        problems += below(self, dict.fromkeys(("learning_rate", "reg_learning_rate",
                                               "finetune_learning_rate", "temperature",
                                               "prune_epochs", "ladder_hold_epochs"), 0),
                          strict=True)
        problems += below(self, dict.fromkeys(("distill_epochs", "sparsity_warmup_epochs",
                                               "finetune_epochs", "sparsity_epsilon",
                                               "alpha_layer", "alpha_pred",
                                               "max_overshoot", "teacher_cache_mb"), 0))
        if self.sparsity_warmup_epochs > self.prune_epochs:
            problems.append(
                f"sparsity_warmup_epochs: must be <= prune_epochs ({self.prune_epochs}), "
                f"but got {self.sparsity_warmup_epochs}"
            )
        for name in ("droprate_init_int", "droprate_init"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name}: must be in [0, 1), but got {getattr(self, name)}")
        if self.teacher_layers is not None and (
            not self.teacher_layers or min(self.teacher_layers) < 1
        ):
            problems.append(f"teacher_layers: 1-based layer numbers, but got {self.teacher_layers}")
        return problems


@dataclass
class BaselineConfig:
    """A distillation baseline: a dense student trained with CoFi's losses, step budget, LR
    schedules, evaluations and selection split (see cofi_sweep/core/students.py).

    The student is cut from the teacher (layers, then optionally heads, FFN units and hidden
    dims, ranked by importance or first-k) or, with ``pretrained``, is that checkpoint as is.
    """

    layers: Literal["every_other", "first_k", "list", "all"] = "every_other"  # DistilBERT-style
    num_layers: int | None = None  # for first_k
    layer_list: list[int] | None = None  # for list: the teacher's layers kept, 1-based
    heads: int | None = None  # attention heads kept per layer; None = all
    ffn: int | None = None  # FFN units kept per layer; None = all
    hidden: int | None = None  # hidden (residual) width kept; None = all
    rank: Literal["importance", "first"] = "importance"  # which heads/units/dims stay
    importance_batches: int = 16  # training batches that estimate the importance
    pretrained: str | None = None  # a BERT-family checkpoint (hub name or folder) as student

    def check(self) -> list[str]:
        problems = below(self, {"num_layers": 1, "heads": 1, "ffn": 1, "hidden": 1,
                                "importance_batches": 1})
        if self.layers == "first_k" and self.num_layers is None:
            problems.append("num_layers: layers=first_k needs num_layers")
        if self.layers == "list" and not self.layer_list:
            problems.append("layer_list: layers=list needs the 1-based layers to keep")
        if self.layer_list is not None and (self.layers != "list" or min(self.layer_list) < 1):
            problems.append(f"layer_list: 1-based layer numbers, used with layers=list, but got "
                            f"{self.layer_list} with layers={self.layers}")
        cut = [k for k in ("num_layers", "layer_list", "heads", "ffn", "hidden")
               if getattr(self, k) is not None]
        if self.pretrained is not None and cut:
            problems.append(f"pretrained: a pretrained student is used as it is; drop "
                            f"{', '.join(cut)} (or drop pretrained to cut a student from the "
                            "teacher)")
        return problems


@dataclass
class DeployConfig:
    """The setting a speedup target is for (and the latency model is calibrated in): this
    machine's CPU or GPU, full batches of ``batch_size`` x ``seq_len`` in ``dtype``. A sweep
    takes it from its ``latency:`` section, so trials aim at the speedup the sweep then
    measures."""

    batch_size: int = 32  # the batch a speedup target is timed and predicted at
    seq_len: int = 128  # and its sequence length
    num_threads: int | None = None  # None: every core this process may use
    device: str = "cpu"  # cpu, cuda or cuda:N: where the latency model is calibrated
    dtype: Literal["fp32", "fp16", "bf16"] = "fp32"  # the models are cast to and timed in

    def check(self) -> list[str]:
        problems = below(self, {"batch_size": 1, "seq_len": 1, "num_threads": 1})
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            problems.append(f"device: cpu or cuda, but got {self.device!r}")
        return problems


@dataclass
class JobConfig:
    """One CoFi job: teacher, pruning to one target, compaction, fine-tuning."""

    model: str = "minilm"  # alias (minilm, tiny-bert, tiny-roberta), hub name or local path
    # a GLUE task (sst2, mrpc, rte, cola, stsb, qnli, mnli, qqp), synthetic, or any name for
    # your own data (data.source: files or hub with data.dataset)
    task: str = "sst2"
    # where a single job writes compact/ and result.json (a sweep sets it per trial)
    output_dir: str = "runs/prune"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int | None = None  # torch CPU threads; None keeps torch's default
    method: Literal["cofi", "distill"] = "cofi"  # distill = the dense-student baseline
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    cofi: CofiConfig = field(default_factory=CofiConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)

    def check(self) -> list[str]:
        if self.data.user_data:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.task):
                return [f"task: a name for your task in letters, digits, '_', '.', '-' (it names "
                        f"folders), but got {self.task!r}"]
            return []
        if self.task != SYNTHETIC.name and self.task not in GLUE:
            return [f"task: {self.task!r} is not a GLUE task ({', '.join(GLUE)})"
                    f"{_did_you_mean(self.task, GLUE)}; for your own data set data.source: "
                    "files and data.train: <file>, or data.source: hub and data.dataset: <name>"]
        if (self.task == SYNTHETIC.name) != (self.data.source == "synthetic"):
            return ["data.source: the synthetic task and source: synthetic go together, "
                    f"but got task {self.task!r} with source {self.data.source!r}"]
        return []

# --------------------------------------------------------------------------------------------
# The loader: dict -> dataclass tree, collecting every problem before raising.


def from_dict(cls: type, raw: Any, *, source: str = "config") -> Any:
    """Builds dataclass ``cls`` from ``raw`` (a mapping), validating everything.

    Raises:
        ConfigError: listing every unknown key, wrong type and out-of-range value.
    """
    problems: list[str] = []
    obj = _build(cls, raw, "", problems)
    if problems:
        raise ConfigError(problems, source)
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """The plain-dict (YAML-ready) form of a config dataclass."""
    return dataclasses.asdict(obj)


# the spaces and job configs that ship with the package (python -m cofi_sweep.run --space NAME)
SHIPPED = {"space": Path(__file__).resolve().parents[1] / "spaces",
           "config": Path(__file__).resolve().parents[1] / "configs"}


def find_shipped(path: str | Path, kind: str = "space") -> Path:
    """``path`` when it names a file; else the shipped space (``kind="config"``: job config) of
    that name, with or without ``.yaml`` and its folder (``pareto``, ``pareto.yaml``,
    ``search_spaces/pareto.yaml``), so a shipped one runs from any folder and after pip install."""
    path = Path(path)
    if path.is_file():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    shipped = SHIPPED[kind] / name
    return shipped if shipped.is_file() else path


def load_yaml(path: str | Path, kind: str | None = None) -> Any:
    """Reads a YAML file (``kind``: also a shipped one by name, see :func:`find_shipped`),
    turning a missing file or a syntax error into a ConfigError."""
    given = Path(path)
    path = find_shipped(given, kind) if kind else given
    if not path.is_file():
        shipped = sorted(f.stem for f in SHIPPED[kind].glob("*.yaml")) if kind else []
        raise ConfigError([f"file not found: {given}" + (
            f" (nor a shipped {kind} of that name: {', '.join(shipped)})" if shipped else "")],
            str(given))
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"not valid YAML: {e}"], str(path)) from e


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Applies ``key.sub=value`` strings (values parsed as YAML) onto a raw config dict."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError([f"override {item!r}: expected the form key.sub=value"])
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([f"override {item!r}: {part} is not a section"])
        node[parts[-1]] = yaml.safe_load(value)
    return raw


def load_job_config(path: str | Path | None = None, overrides: list[str] = ()) -> JobConfig:
    """Loads a :class:`JobConfig` from YAML (or defaults) plus ``key=value`` overrides."""
    raw = load_yaml(path, "config") if path is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError([f"top level must be a mapping, but got {type(raw).__name__}"], str(path))
    raw = apply_overrides(raw, list(overrides))
    return from_dict(JobConfig, raw, source=str(path or "config"))


def _did_you_mean(name: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _build(cls: type, raw: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"{where or 'top level'}: must be a mapping, but got {raw!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            problems.append(f"{where}{key}: unknown key{_did_you_mean(key, fields)}; "
                            f"allowed: {sorted(fields)}")
    values = {}
    for name in fields:
        if name in raw:
            values[name] = _convert(hints[name], raw[name], f"{where}{name}", problems)
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    for name in required:
        if name not in raw:
            problems.append(f"{where}{name}: required")
    if any(values.get(n, _INVALID) is _INVALID for n in required):
        return _INVALID  # cannot be built; its problems are already listed
    obj = cls(**{k: v for k, v in values.items() if v is not _INVALID})
    if hasattr(obj, "check"):
        problems.extend(f"{where}{p}" for p in obj.check())
    return obj


_INVALID = object()
# scalar type -> (what the error message says it must be, whether a YAML value is acceptable)
_SCALARS: dict[type, tuple[str, Any]] = {
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _convert(tp: Any, value: Any, where: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{where}.", problems)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, problems)
    if origin is Literal:
        if value not in args:
            problems.append(f"{where}: must be one of {list(args)}, but got {value!r}"
                            f"{_did_you_mean(value, [str(a) for a in args])}")
            return _INVALID
        return value
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where}: must be a mapping, but got {value!r}")
            return _INVALID
        out = {str(k): _convert(args[1], v, f"{where}.{k}", problems) for k, v in value.items()}
        return _INVALID if _INVALID in out.values() else out
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where}: must be a list, but got {value!r}")
            return _INVALID
        items = [_convert(args[0], v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        return _INVALID if _INVALID in items else items
    if tp is float and isinstance(value, str):  # PyYAML reads 5e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in _SCALARS:
        what, accepts = _SCALARS[tp]
        if not accepts(value):
            problems.append(f"{where}: must be {what}, but got {value!r}")
            return _INVALID
        return float(value) if tp is float else value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp} at {where}")  # a bug in the schema, not input
