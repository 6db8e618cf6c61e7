"""Stage 0: fine-tune the dense teacher, once, and cache it on disk.

The cache key is everything that determines the teacher: base model, task, data source and
subset, tokenization length, and every teacher hyperparameter including the seed. A second
request returns the cached teacher in seconds; processes asking for the same teacher at the same
time train it once (a file lock), the others wait and load it.

    python -m cofi_sweep.teacher --model minilm --task sst2 --data-dir ../shared/data/glue \
        --max-train-samples 16000 --epochs 3
"""

from __future__ import annotations

import argparse
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
from cofi_sweep.core.config import DataConfig, JobConfig, TeacherConfig, load_job_config
from cofi_sweep.core.data import load_task, make_loader, tokenize
from cofi_sweep.core.errors import ConfigError
from cofi_sweep.core.evaluation import describe, evaluate, model_inputs, task_loss, to_device
from cofi_sweep.core.model import CofiBert, load_model, resolve_device
from cofi_sweep.core.tasks import get_task

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


def teacher_key(model: str, task: str, data: DataConfig, teacher: TeacherConfig) -> dict:
    """Everything that determines the teacher's weights (the cache key's contents)."""
    settings = dataclasses.asdict(teacher)
    settings.pop("cache_dir")
    if teacher.path:  # a given teacher: only what it is and how it is evaluated matter
        settings = {"path": pretrained.resolve(teacher.path)}
    else:
        settings.pop("path")  # keys of trained teachers stay what they were
    data_settings = dataclasses.asdict(data)
    if data.source != "synthetic":  # generation sizes do not affect GLUE data
        data_settings.pop("synthetic_train_size")
        data_settings.pop("synthetic_eval_size")
    if data.dir and "://" not in data.dir:  # one folder, one key, however it was spelled
        data_settings["dir"] = str(Path(data.dir).expanduser().resolve())
    resolved = model if model in pretrained.ALIASES else pretrained.resolve(model)
    return {"format": _FORMAT, "model": resolved, "task": task, "data": data_settings,
            "teacher": settings}


def teacher_folder(job: JobConfig) -> Path:
    """Where ``job``'s teacher is cached: its name ends in a digest of :func:`teacher_key`, so
    a folder of that name anywhere holds this very teacher."""
    key = teacher_key(job.model, job.task, job.data, job.teacher)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    # absolute: trials run in folders of their own, where a relative cache names nothing
    root = (Path(job.teacher.cache_dir).expanduser().resolve() if job.teacher.cache_dir
            else pretrained.cache_root() / "teachers")
    return root / f"{job.task}-{pretrained.model_slug(job.model)}-{digest}"


def get_teacher(job: JobConfig, *, device: str | None = None,
                progress: bool = True) -> Teacher:
    """Returns the cached teacher for ``job``, training (and caching) it first if needed."""
    key = teacher_key(job.model, job.task, job.data, job.teacher)
    folder = teacher_folder(job)
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

    task = get_task(job.task)
    source = pretrained.resolve(job.teacher.path)
    labels = AutoConfig.from_pretrained(source).num_labels
    if labels != task.num_labels:
        raise ConfigError([f"teacher.path: {job.teacher.path!r} has {labels} output label(s), "
                           f"but task {job.task!r} needs {task.num_labels}: give a teacher "
                           "fine-tuned for this task, or leave teacher.path unset to train one"],
                          "teacher")
    tokenizer = AutoTokenizer.from_pretrained(source)
    data = tokenize(load_task(job.task, job.data), tokenizer, job.data.max_seq_length)
    dev_loader = make_loader(data["dev"], tokenizer, batch_size=128, shuffle=False)
    model = CofiBert.from_hf(source, num_labels=task.num_labels).to(resolve_device(device))
    metrics = evaluate(model, dev_loader, task)
    log.info("given teacher %s on %s: %s", job.teacher.path, job.task, describe(metrics))
    return model.eval(), tokenizer, metrics


def train_teacher(job: JobConfig, *, device: str, progress: bool = True
                  ) -> tuple[CofiBert, Any, dict[str, float]]:
    """Fine-tunes ``job.model`` on ``job.task`` (cross-entropy, or MSE for regression)."""
    cfg, task = job.teacher, get_task(job.task)
    torch.manual_seed(cfg.seed)
    keep_freed_memory()
    dev = resolve_device(device)
    tokenizer = pretrained.load_tokenizer(job.model)
    data_cfg = job.data
    if cfg.max_train_samples is not None:  # the teacher may learn from more data than CoFi
        data_cfg = dataclasses.replace(data_cfg, max_train_samples=cfg.max_train_samples)
    data = tokenize(load_task(job.task, data_cfg), tokenizer, job.data.max_seq_length)
    train_loader = make_loader(data["train"], tokenizer, batch_size=cfg.batch_size,
                               shuffle=True, seed=cfg.seed)
    dev_loader = make_loader(data["dev"], tokenizer, batch_size=128, shuffle=False)
    model = load_model(job.model, task.num_labels).to(dev).train()

    steps = math.ceil(cfg.epochs * len(train_loader))
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.learning_rate)
    schedule = linear_schedule(optimizer, warmup=int(cfg.warmup_ratio * steps), total=steps)
    bar = tqdm(total=steps, desc=f"teacher {job.task}", disable=not progress,
               mininterval=2.0, file=sys.stderr)
    step = 0
    while step < steps:
        for batch in train_loader:
            batch = to_device(batch, dev)
            loss = task_loss(model(**model_inputs(batch)).logits, batch["labels"], task)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            if step >= steps:
                break
    bar.close()
    metrics = evaluate(model, dev_loader, task)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.teacher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a job YAML (its model/task/data/teacher sections)")
    parser.add_argument("--model", help="alias (minilm, tiny-bert), hub name or folder")
    parser.add_argument("--task", help="sst2, mrpc, rte, cola, stsb, qnli, mnli, qqp, synthetic")
    parser.add_argument("--data-dir", help="GLUE-layout folder (sets data.source=local)")
    parser.add_argument("--max-train-samples", type=int, help="teacher's training subset")
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("overrides", nargs="*", help="key.sub=value settings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    flags = {"model": args.model, "task": args.task, "data.dir": args.data_dir,
             "teacher.max_train_samples": args.max_train_samples,
             "data.max_seq_length": args.max_seq_length, "teacher.epochs": args.epochs,
             "teacher.learning_rate": args.lr, "teacher.batch_size": args.batch_size,
             "teacher.seed": args.seed}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.data_dir:
        overrides.append("data.source=local")
    if args.task == "synthetic":
        overrides.append("data.source=synthetic")
    job = load_job_config(args.config, overrides + list(args.overrides))
    teacher = get_teacher(job)
    state = "cached" if teacher.cached else f"trained in {teacher.train_seconds:.0f}s"
    print(f"teacher ({state}): {teacher.path}")
    print(f"dev: {describe(teacher.metrics)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
