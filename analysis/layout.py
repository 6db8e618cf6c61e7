"""Every file name of an experiment folder, ``<storage_path>/<name>/``, in one place.

Everything that writes or reads an experiment -- the sweep, the timing pass, the report, the
exports -- takes its names from here; ``docs/outputs.md`` describes each file.

    <experiment>/
      space.json              the sweep as started (a --resume is checked against it)
      additions.json          trials that resumes added, each batch a Tune experiment of its own
      sweep_done.json         written once every trial has ended
      results.parquet         one row per trial (analysis.results)
      latency.json            the sweep's timing pass, keyed by trial id
      latency-<setting>.json  a retime under another deployment setting
      pareto.csv, report.md, plots/   the frontiers and the report (analysis.report)
      retimed/<setting>/      a retime's own frontier, report and plots
      task.json               the task: classification or regression, label names, metrics
      export/                 the frontier's models, exported to load with transformers alone
      trials/<trial_id>/      per trial: job/compact (the compact model), job/result.json,
                              starts.log, best.pt (the stage's best snapshot while it runs);
                              a ladder's forks under job/rung-<i>/ (compact/, result.json)
      teacher/<key>/          the teacher, for nodes that cannot see the driver's cache
      shared_pruning/<cell>/<key>/   a pruning run that trials differing only in fine-tune
                              values share (its state at the pruning stage's end, pruned.json);
                              removed when every trial of the sweep has ended
      asha_rungs.json, halving_rungs.json, optuna.db   scheduler and searcher records
      <name>/, additions-<k>/ Tune's own experiment folders (trial dirs and checkpoints)
"""

from __future__ import annotations

SPACE_FILE = "space.json"
TASK_FILE = "task.json"  # the task as its data defined it: name, problem, labels, metrics
ADDITIONS_FILE = "additions.json"  # [{"name": "additions-<k>", "queue": [[cell, seed], ...]}]
ADDITIONS_PREFIX = "additions-"
SWEEP_DONE = "sweep_done.json"
TABLE_FILE = "results.parquet"
LATENCY_FILE = "latency.json"
PARETO_FILE = "pareto.csv"
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"
RETIMED_DIR = "retimed"
EXPORT_DIR = "export"
TRIALS_DIR = "trials"
TEACHER_COPY = "teacher"
SHARED_PRUNING_DIR = "shared_pruning"  # <cell>/<pruning key>/: a state forks start from
PRUNED_MARKER = "pruned.json"  # inside it, written last: the state is complete
OPTUNA_DB = "optuna.db"
RUNGS_FILE = "asha_rungs.json"
HALVING_FILE = "halving_rungs.json"
# inside trials/<trial_id>/
JOB_DIR = "job"
COMPACT_DIR = "compact"  # inside a job's output folder (also a single job's)
LADDER_RUNG_PREFIX = "rung-"  # a ladder's fork <i>: its job folder's rung-<i>/ (compact/, ...)
JOB_RESULT = "result.json"
STARTS_LOG = "starts.log"
BEST_FILE = "best.pt"


def latency_file(setting: str) -> str:
    """The table of a retime under ``setting`` (e.g. ``b1x128-2t-cpu-pytorch``)."""
    return f"latency-{setting}.json"


def trial_dir(trial_id: str) -> str:
    """A trial's own outputs, relative to the experiment."""
    return f"{TRIALS_DIR}/{trial_id}"


def compact_dir(trial_id: str, rung: int | None = None) -> str:
    """A trial's compact model (a ladder's: its fork at ``rung``), relative to the
    experiment."""
    job = f"{TRIALS_DIR}/{trial_id}/{JOB_DIR}"
    return f"{job}/{COMPACT_DIR}" if rung is None else \
        f"{job}/{LADDER_RUNG_PREFIX}{rung}/{COMPACT_DIR}"
