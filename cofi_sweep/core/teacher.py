"""Stage 0: fine-tune the dense teacher, once, and cache it on disk.

The cache key is everything that determines the teacher: base model, task, data source and
subset, tokenization length, and every teacher hyperparameter including the seed. A second
request returns the cached teacher in seconds; processes asking for the same teacher at the same
time train it once (a file lock), the others wait and load it.

From the command line: ``python -m cofi_sweep.teacher`` (:mod:`cofi_sweep.job.teacher_cli`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from tqdm.auto import tqdm

from cofi_sweep.core import pretrained
from cofi_sweep.core.allocator import keep_freed_memory
from cofi_sweep.core.config import JobConfig
from cofi_sweep.core.data import data_fingerprint, load_task, make_loader, tokenize
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.evaluation import describe, evaluate, model_inputs, task_loss, to_device
from cofi_sweep.core.model import CofiBert, load_model, named_labels, resolve_device
from cofi_sweep.core.precision import autocast, grad_scaler, resolve_precision
from cofi_sweep.core.tasks import Task

log = logging.getLogger(__name__)
TEACHER_FILE = "teacher.json"
_FORMAT = 1  # bump when the teacher's training code changes what it produces


@dataclass
class Teacher:
    """A fine-tuned teacher on disk: model + tokenizer folder, and its dev metrics."""

    path: Path
    metrics: dict[str, float]
    cached: bool  # True when this call loaded it instead of training it
    train_seconds: float

    @classmethod
    def from_dir(cls, path: str | Path) -> Teacher:
        """A cached teacher folder (as written by :func:`get_teacher`)."""
        info = json.loads((Path(path) / TEACHER_FILE).read_text())
        return cls(Path(path), info["metrics"], True, info["train_seconds"])

    def load(self, device: str | torch.device = "cpu") -> CofiBert:
        return CofiBert.from_pretrained(self.path).to(device).eval()

    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path)


# settings that describe the user's own data (files or a hub dataset): a GLUE or synthetic
# teacher's key leaves them out, so it stays what it was before they existed
USER_DATA_SETTINGS = ("train", "validation", "dataset", "config", "splits", "text_fields",
                      "label_field", "problem", "metrics", "validation_fraction")


def teacher_key(job: JobConfig) -> dict:
    """Everything that determines the teacher's weights (the cache key's contents), the
    precision it trains in on the job's device included."""
    model, data, teacher = job.model, job.data, job.teacher
    settings = dataclasses.asdict(teacher)
    settings.pop("cache_dir")
    if teacher.path:  # a given teacher: only what it is and how it is evaluated matter
        settings = {"path": pretrained.resolve(teacher.path)}
    else:
        settings.pop("path")  # keys of trained teachers stay what they were
        precision = resolve_precision(job.cofi.precision, resolve_device(job.device))
        if precision != "fp32":  # fp32 keys stay what they were
            settings["precision"] = precision
    data_settings = dataclasses.asdict(data)
    if data.source != "synthetic":  # generation sizes do not affect GLUE data
        data_settings.pop("synthetic_train_size")
        data_settings.pop("synthetic_eval_size")
    if data.dir and "://" not in data.dir:  # one folder, one key, however it was spelled
        data_settings["dir"] = str(Path(data.dir).expanduser().resolve())
    if not data.user_data:
        for key in USER_DATA_SETTINGS:
            data_settings.pop(key)
    elif data.source == "files":  # your files: wherever they lie, whatever they hold
        for key in ("train", "validation"):
            if data_settings[key]:
                data_settings[key] = str(Path(data_settings[key]).expanduser().resolve())
        data_settings["contents"] = data_fingerprint(data)
    resolved = model if model in pretrained.ALIASES else pretrained.resolve(model)
    return {"format": _FORMAT, "model": resolved, "task": job.task, "data": data_settings,
            "teacher": settings}


def teacher_folder(job: JobConfig, key: dict | None = None) -> Path:
    """Where ``job``'s teacher is cached: its name ends in a digest of :func:`teacher_key`
    (``key``, when computed already), so a folder of that name anywhere holds this very
    teacher."""
    key = key or teacher_key(job)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    # absolute: trials run in folders of their own, where a relative cache names nothing
    root = (Path(job.teacher.cache_dir).expanduser().resolve() if job.teacher.cache_dir
            else pretrained.cache_root() / "teachers")
    return root / f"{job.task}-{pretrained.model_slug(job.model)}-{digest}"


def get_teacher(job: JobConfig, *, device: str | None = None,
                progress: bool = True) -> Teacher:
    """Returns the cached teacher for ``job``, training (and caching) it first if needed."""
    key = teacher_key(job)  # reads and digests your data files: once
    folder = teacher_folder(job, key)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / TEACHER_FILE).is_file():
            log.info("teacher cache hit: %s", folder)
            return Teacher.from_dir(folder)
        start = time.time()
        if job.teacher.path:
            model, tokenizer, metrics = given_teacher(job, device=device or job.device)
        else:
            model, tokenizer, metrics = train_teacher(job, device=device or job.device,
                                                      progress=progress)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.cpu().save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        seconds = time.time() - start
        (tmp / TEACHER_FILE).write_text(json.dumps(
            {"key": key, "metrics": metrics, "train_seconds": seconds}, indent=1))
        tmp.rename(folder)  # atomic: a folder with teacher.json is always complete
        return Teacher(folder, metrics, False, seconds)


def given_teacher(job: JobConfig, *, device: str) -> tuple[CofiBert, Any, dict[str, float]]:
    """Loads the already fine-tuned ``teacher.path`` and measures it on the dev set."""
    from transformers import AutoConfig, AutoTokenizer

    source = pretrained.resolve(job.teacher.path)
    loaded = load_task(job.task, job.data)
    task = loaded.task
    problem = label_mismatch(AutoConfig.from_pretrained(source), task)
    if problem:
        raise ConfigError([f"teacher.path: {job.teacher.path!r} {problem}: give a teacher "
                           "fine-tuned for this task, or leave teacher.path unset to train one"],
                          "teacher")
    tokenizer = AutoTokenizer.from_pretrained(source)
    data = tokenize(loaded.splits, tokenizer, job.data.max_seq_length)
    dev_loader = make_loader(data["dev"], tokenizer, batch_size=128, shuffle=False)
    model = CofiBert.from_hf(source, num_labels=task.num_labels,
                             labels=task.labels).to(resolve_device(device))
    metrics = evaluate(model, dev_loader, task)
    log.info("given teacher %s on %s: %s", job.teacher.path, job.task, describe(metrics))
    return model.eval(), tokenizer, metrics


def label_mismatch(hf_config: Any, task: Task) -> str | None:
    """How a fine-tuned checkpoint's outputs disagree with the task's labels, or None: the
    count, and the class names in id order where the checkpoint names them."""
    if hf_config.num_labels != task.num_labels:
        return (f"has {hf_config.num_labels} output label(s), but task {task.name!r} needs "
                f"{task.num_labels}")
    names = named_labels(hf_config)
    if names and task.labels and names != list(task.labels):
        return (f"names its labels {names} (in id order), but the data's are "
                f"{list(task.labels)}")
    return None


def train_teacher(job: JobConfig, *, device: str, progress: bool = True
                  ) -> tuple[CofiBert, Any, dict[str, float]]:
    """Fine-tunes ``job.model`` on ``job.task`` (cross-entropy, or MSE for regression)."""
    cfg = job.teacher
    torch.manual_seed(cfg.seed)
    keep_freed_memory()
    dev = resolve_device(device)
    tokenizer = pretrained.load_tokenizer(job.model)
    data_cfg = job.data
    if cfg.max_train_samples is not None:  # the teacher may learn from more data than CoFi
        data_cfg = dataclasses.replace(data_cfg, max_train_samples=cfg.max_train_samples)
    loaded = load_task(job.task, data_cfg)
    task = loaded.task
    data = tokenize(loaded.splits, tokenizer, job.data.max_seq_length)
    train_loader = make_loader(data["train"], tokenizer, batch_size=cfg.batch_size,
                               shuffle=True, seed=cfg.seed)
    dev_loader = make_loader(data["dev"], tokenizer, batch_size=128, shuffle=False)
    model = load_model(job.model, task.num_labels, task.labels).to(dev).train()

    precision = resolve_precision(job.cofi.precision, dev)
    scaler = grad_scaler(precision, dev)
    steps = math.ceil(cfg.epochs * len(train_loader))
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.learning_rate)
    schedule = linear_schedule(optimizer, warmup=int(cfg.warmup_ratio * steps), total=steps)
    bar = tqdm(total=steps, desc=f"teacher {job.task}", disable=not progress,
               mininterval=2.0, file=sys.stderr)
    step = 0
    while step < steps:
        for batch in train_loader:
            batch = to_device(batch, dev)
            with autocast(precision, dev):
                loss = task_loss(model(**model_inputs(batch)).logits, batch["labels"], task)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            if step >= steps:
                break
    bar.close()
    metrics = evaluate(model, dev_loader, task, precision=precision)
    log.info("teacher %s on %s: %s", job.model, job.task, describe(metrics))
    return model.eval(), tokenizer, metrics


def param_groups(model: torch.nn.Module, weight_decay: float,
                 frozen: tuple[str, ...] = ()) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights; ``frozen`` name
    prefixes are left out (their parameters are also set to not require grad)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if any(name.startswith(f) for f in frozen):
            p.requires_grad_(False)
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def linear_schedule(optimizer: torch.optim.Optimizer, *, warmup: int, total: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the base LR over ``warmup`` steps, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
