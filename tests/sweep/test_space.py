from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cofi_sweep.core.errors import ConfigError
from cofi_sweep.sweep.space import job_for_trial, load_space

ROOT = Path(__file__).resolve().parents[2]  # the repository
VALID = {
    "name": "t", "job": {"model": "tiny-bert", "task": "synthetic",
                         "data": {"source": "synthetic"}},
    "grid": {"target_sparsity": [0.5, 0.8], "ablations": {"full": {}}},
    "search": {"cofi.learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3}},
}


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def merged(**changes: object) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


@pytest.mark.parametrize("space, key, words", [
    (merged(trials_per_cel=2), "trials_per_cel", "did you mean 'trials_per_cell'"),
    (merged(grid__target_sparsity=[]), "grid.target_sparsity", "at least one target"),
    (merged(grid__target_sparsity=[0.5, 1.5]), "grid.target_sparsity", "[0, 1)"),
    (merged(grid__target_sparsity="0.5"), "grid.target_sparsity", "must be a list"),
    (merged(grid__target_speedup=[4, 0.5]), "grid.target_speedup", "must be > 1"),
    (merged(grid__target_speedup=[4, 4]), "grid.target_speedup", "duplicates"),
    (merged(grid__ablations={"x": {"target_speedup": 2}}), "grid.ablations.x.target_speedup",
     "grid.target_speedup"),
    (merged(search={"cofi.target_speedup": {"type": "uniform", "low": 2, "high": 4}}),
     "search.cofi.target_speedup", "set per cell"),
    (merged(grid__ablations={"x": {"familes": ["head"]}}), "grid.ablations.x",
     "did you mean 'families'"),
    (merged(grid__ablations={"x": {"families": ["heads"]}}), "grid.ablations.x",
     "did you mean 'head'"),
    (merged(grid__ablations={}), "grid.ablations", "at least one"),
    (merged(search={"cofi.learning_rate": {"type": "loguniform", "low": 1e-3,
                                           "high": 1e-5}}),
     "search.cofi.learning_rate", "empty range"),
    (merged(search={"cofi.learning_rate": {"type": "loguniform", "low": 0, "high": 1e-3}}),
     "search.cofi.learning_rate", "low > 0"),
    (merged(search={"cofi.learning_rate": {"type": "normal", "low": 0, "high": 1}}),
     "search.cofi.learning_rate.type", "must be one of"),
    (merged(search={"cofi.alpha_layer": {"type": "choice", "values": []}}),
     "search.cofi.alpha_layer", "non-empty list"),
    (merged(search={"data.max_seq_length": {"type": "int", "low": 32, "high": 64}}),
     "search.data.max_seq_length", "only cofi.<setting>"),
    (merged(search={"cofi.target_sparsity": {"type": "uniform", "low": 0.1, "high": 0.5}}),
     "search.cofi.target_sparsity", "set per cell"),
    (merged(search={"cofi.seed": {"type": "int", "low": 0, "high": 5}}),
     "search.cofi.seed", "trials_per_cell"),
    (merged(search={"cofi.alpha_layer,alpha_pred": {"type": "choice", "values": [[0.9]]}}),
     "search.cofi.alpha_layer,alpha_pred", "choice of [alpha_layer, alpha_pred] lists"),
    (merged(search={"cofi.alpha_layer,alpha_prd": {"type": "choice", "values": [[1, 0]]}}),
     "search.cofi.alpha_layer,alpha_prd", "did you mean 'alpha_pred'"),
    (merged(search={"cofi.alpha_layer,alpha_pred": {"type": "choice",
                                                    "values": [[0.9, -0.1]]}}),
     "search.cofi.alpha_layer,alpha_pred", "alpha_pred: must be >= 0"),
    (merged(search={"cofi.finetune_learning_rate": {"type": "choice", "values": [1e-5, 3e-5]}}),
     "search", "act(s) only after compaction"),
    (merged(search={"cofi.sparsity_warmup_epochs": {"type": "choice", "values": [1, 2]}}),
     "search", "ASHA compares a cell's trials at the same evaluation"),
    (merged(search={"cofi.batch_size": {"type": "int", "low": 0, "high": 8}}),
     "search.cofi.batch_size", "batch_size: must be >= 1"),
    (merged(scheduler={"type": "hyperband"}), "scheduler.type", "must be one of"),
    (merged(resources={"cpus_per_trial": 0}), "resources.cpus_per_trial", "must be > 0"),
    (merged(resources={"max_concurrent_trials": "two"}), "resources.max_concurrent_trials",
     "must be an integer"),
    (merged(job__task="sst3"), "job.task", "did you mean 'sst2'"),
    (merged(job__cofi={"prune_epochs": -1}), "job.cofi.prune_epochs", "must be > 0"),
    (merged(latency={"seq_len": 0}), "latency.seq_len", "must be >= 1"),
    (merged(checkpoint={"num_to_keep": 1}), "checkpoint.num_to_keep", "must be >= 2"),
    (merged(name="my sweep"), "name", "without spaces"),
    (merged(storage_path="s3:/bucket/sweeps"), "storage_path", "write s3://bucket/sweeps"),
    (merged(storage_path="ftp://host/sweeps"), "storage_path", "unsupported URI scheme 'ftp'"),
    (merged(storage_path="file://runs/sweeps"), "storage_path", "absolute path"),
    (merged(storage_path="gs://"), "storage_path", "names no bucket"),
])
def test_malformed_spaces_give_specific_errors(tmp_path: Path, space: dict, key: str,
                                               words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_space(write(tmp_path, space))
    assert any(p.startswith(key) and words in p for p in info.value.problems), \
        info.value.problems


@pytest.mark.parametrize("path", ["runs/sweeps", "/abs/sweeps", "s3://bucket/sweeps",
                                  "gs://bucket", "file:///tmp/sweeps", "C:/sweeps"])
def test_storage_paths_that_are_accepted(tmp_path: Path, path: str) -> None:
    assert load_space(write(tmp_path, merged(storage_path=path))).storage_path == path


def test_cli_rejects_bad_space_without_starting_ray(tmp_path: Path) -> None:
    path = write(tmp_path, merged(grid__target_sparsity=[2.0]))
    code = (f"import sys; sys.modules['ray'] = None; from cofi_sweep.run import main; "
            f"sys.exit(main(['--space', {str(path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2 and "grid.target_sparsity" in proc.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "search_spaces").glob("*.yaml")))
def test_shipped_spaces_are_valid(name: str) -> None:
    space = load_space(ROOT / "search_spaces" / name)
    assert space.cells()


@pytest.mark.parametrize("key", ["cofi.finetune_learning_rate", "cofi.sparsity_warmup_epochs"])
def test_values_asha_cannot_judge_may_be_searched_without_asha(tmp_path: Path, key: str
                                                               ) -> None:
    raw = merged(search={key: {"type": "choice", "values": [1, 2]}}, scheduler={"type": "none"})
    assert load_space(write(tmp_path, raw)).search


def test_trials_searching_only_fine_tune_values_share_pruning_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cofi_sweep.sweep.plan import describe_plan

    lr = {"cofi.finetune_learning_rate": {"type": "choice", "values": [1e-5, 3e-5]}}
    raw = merged(search=lr, scheduler={"type": "none"}, trials_per_cell=5,
                 shared_pruning_runs=2, grid__ablations={"full": {}},
                 baselines={"small": {"layers": "first_k", "num_layers": 1}})
    space = load_space(write(tmp_path, raw))
    seeds = [seed for cell, seed in space.trial_queue() if cell == "t0.5-full"]
    assert seeds == [0, 1, 0, 1, 0]  # two pruning runs, trials 0, 2, 4 share the first
    baseline = [seed for cell, seed in space.trial_queue() if cell == "distill-small"]
    assert baseline == [0, 1, 2, 3, 4]  # baselines do not prune: their own seeds
    plan = describe_plan(space, data=None)
    assert "its 5 trial(s) share 2 pruning run(s)" in plan
    assert "shared pruning: 4 pruning state(s) of" in plan  # 2 cells x 2, kept till the end
    assert "up to 3 trials fine-tune one pruning run but the search has 2" in plan
    # a value that changes the pruning, or shared_pruning_runs: 0, gives each its own run
    for change in ({"search": {**lr, **VALID["search"]}}, {"shared_pruning_runs": 0}):
        other = load_space(write(tmp_path, {**raw, **change}))
        assert [s for c, s in other.trial_queue() if c == "t0.5-full"] == [0, 1, 2, 3, 4]
        assert not any(other.shares_pruning(c) for c in other.cells())
    # a resume that adds trials to a sharing cell adds them, though their (cell, seed) repeat
    from cofi_sweep.sweep.resume import queue_minus

    more = load_space(write(tmp_path, {**raw, "trials_per_cell": 7}))
    added = queue_minus(more.trial_queue(), space.trial_queue())
    assert [t for t in added if t[0] == "t0.5-full"] == [("t0.5-full", 1), ("t0.5-full", 0)]


def test_sweeps_hold_out_a_selection_split_unless_told_not_to(tmp_path: Path) -> None:
    from cofi_sweep.sweep.space import SWEEP_SELECTION_SIZE

    assert load_space(write(tmp_path, VALID)).job.data.selection_size == SWEEP_SELECTION_SIZE
    off = load_space(write(tmp_path, merged(job__data={"source": "synthetic",
                                                       "selection_size": None})))
    assert off.job.data.selection_size is None


def test_dry_run_prints_the_plan(capsys: pytest.CaptureFixture) -> None:
    from cofi_sweep.sweep.cli import main

    assert main(["--space", str(ROOT / "search_spaces" / "quickstart.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 cells x 2 trial(s) = 6 trials" in out
    assert "cell s5x-full: target speedup 5x" in out
    assert "cell t0.5-full: target sparsity 0.5" in out
    assert "[preflight] latency model for batch 32 x seq 64" in out  # the 5x target checked
    assert "one study per cell" in out and "200 training examples held out" in out


def test_the_gpu_ablation_space_plans_with_a_model_and_data_at_hand(
        capsys: pytest.CaptureFixture) -> None:
    from cofi_sweep.sweep.cli import main

    # offline its hub model and data cannot load (the preflight says so, as for pareto.yaml);
    # with ones at hand, the rest of it -- grid, resources, latency, disk -- plans and checks
    assert main(["--space", "ablation.yaml", "--dry-run", "job.model=tiny-bert",
                 "job.task=synthetic", "job.data.source=synthetic"]) == 0
    out = capsys.readouterr().out
    assert "14 cells x 3 trial(s) = 42 trials" in out
    assert "cell t0.95-no_layer: target sparsity 0.95, ablation no_layer" in out
    assert "resources per trial: 4 CPU, 1 GPU; at most 8 at once" in out


def test_trial_job_combines_space_cell_and_sampled_values(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, merged(
        grid__ablations={"pred": {"distill": "prediction", "families": ["head"]}})))
    cell = space.cells()[1]
    job = job_for_trial(space, cell, {"cofi.learning_rate": 3e-4, "cofi.seed": 7,
                                      "cofi.alpha_layer,alpha_pred": [0.7, 0.3]},
                        str(tmp_path / "out"))
    assert job.cofi.target_sparsity == 0.8 and job.cofi.distill == "prediction"
    assert job.cofi.families == ["head"] and job.cofi.learning_rate == 3e-4
    assert (job.cofi.seed, job.cofi.alpha_layer, job.cofi.alpha_pred) == (7, 0.7, 0.3)
    assert job.model == "tiny-bert" and job.output_dir == str(tmp_path / "out")


def test_speedup_targets_are_cells_aiming_at_the_sweeps_latency_setting(tmp_path: Path
                                                                        ) -> None:
    space = load_space(write(tmp_path, merged(
        grid__target_sparsity=[0.5], grid__target_speedup=[2, 4.5],
        latency={"batch_size": 8, "seq_len": 48, "num_threads": 1})))
    assert [c["id"] for c in space.cells()] == ["t0.5-full", "s2x-full", "s4.5x-full"]
    job = job_for_trial(space, space.cells()[2], {}, str(tmp_path / "out"))
    assert job.cofi.target_speedup == 4.5 and job.cofi.target_sparsity is None
    assert (job.deploy.batch_size, job.deploy.seq_len, job.deploy.num_threads) == (8, 48, 1)
    sparsity = job_for_trial(space, space.cells()[0], {}, str(tmp_path / "out"))
    assert sparsity.cofi.target_sparsity == 0.5 and sparsity.cofi.target_speedup is None
    only = load_space(write(tmp_path, merged(grid={"target_speedup": [3]})))
    assert [c["id"] for c in only.cells()] == ["s3x-full"]  # no sparsity cell by default


def test_an_empty_space_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("\n# nothing here\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_space(path)


def test_overrides_may_stand_anywhere_on_the_command_line(capsys: pytest.CaptureFixture
                                                          ) -> None:
    from cofi_sweep.sweep.cli import main

    space = str(ROOT / "search_spaces" / "quickstart.yaml")
    assert main(["trials_per_cell=3", "--space", space, "--dry-run", "name=elsewhere"]) == 0
    out = capsys.readouterr().out
    assert "3 cells x 3 trial(s) = 9 trials" in out and "elsewhere" in out


def test_resume_refuses_a_changed_space_and_names_what_changed(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture
                                                               ) -> None:
    import dataclasses
    import json

    from cofi_sweep.sweep.resume import check_resume

    space = load_space(write(tmp_path, VALID))
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "space.json").write_text(json.dumps(dataclasses.asdict(space)))
    check_resume(space, str(experiment), force=False)  # the same space: resumes
    changed = load_space(write(tmp_path, merged(job__cofi={"prune_epochs": 9})))
    with pytest.raises(ConfigError) as refused:
        check_resume(changed, str(experiment), force=False)
    message = str(refused.value)
    assert "job.cofi.prune_epochs:" in message and "-> 9" in message
    assert "new `name`" in message and "--resume --force" in message
    check_resume(changed, str(experiment), force=True)  # forced: goes on, and says what changed
    assert "job.cofi.prune_epochs" in capsys.readouterr().out


def test_resume_adds_cells_and_seeds_but_refuses_any_other_change(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture
                                                                 ) -> None:
    import dataclasses
    import json

    from cofi_sweep.sweep.resume import check_resume, read_additions, record_additions

    space = load_space(write(tmp_path, VALID))  # cells t0.5-full, t0.8-full; 1 trial each
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "space.json").write_text(json.dumps(dataclasses.asdict(space)))
    bigger = load_space(write(tmp_path, merged(grid__target_sparsity=[0.5, 0.8, 0.9],
                                               grid__ablations={"full": {}, "no_hidden": {
                                                   "families": ["head", "mha", "int", "ffn"]}},
                                               baselines={"half": {"layers": "every_other"}},
                                               trials_per_cell=2)))
    added = check_resume(bigger, str(experiment), force=False)
    # every trial of the 5 new cells (3 targets x 2 ablations + a baseline, less the 2 stored),
    # and the second seed of the stored cells; none of the stored trials again
    assert len(added) == len(bigger.trial_queue()) - len(space.trial_queue()) == 7 * 2 - 2
    assert ("t0.5-full", 0) not in added and ("t0.5-full", 1) in added
    assert {c for c, _ in added} == {c["id"] for c in bigger.cells()}
    assert "resuming with 12 added trial(s)" in capsys.readouterr().out
    assert record_additions(str(experiment), added) == "additions-1"
    (experiment / "sweep_done.json").write_text("{}")
    assert record_additions(str(experiment), added[:1]) == "additions-2"
    assert [a["name"] for a in read_additions(str(experiment))] == ["additions-1", "additions-2"]
    assert not (experiment / "sweep_done.json").exists()  # unfinished again
    # additions together with any other change, a removed or changed cell, fewer trials:
    # refused, naming the keys and what a resume may add
    for changes in ({"trials_per_cell": 2, "job__cofi": {"prune_epochs": 9}},
                    {"grid__target_sparsity": [0.5]},
                    {"grid__ablations": {"full": {"reg_learning_rate": 0.5}}}):
        with pytest.raises(ConfigError) as refused:
            check_resume(load_space(write(tmp_path, merged(**changes))), str(experiment),
                         force=False)
        assert "a resume may only add" in str(refused.value)
    (experiment / "space.json").write_text(json.dumps(dataclasses.asdict(bigger)))
    with pytest.raises(ConfigError, match="trials_per_cell: 2 -> 1"):
        check_resume(space, str(experiment), force=False)


def test_trackers_need_their_package(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    import importlib.util

    real = importlib.util.find_spec
    installed = {"mlflow"}  # as if mlflow were installed and wandb not, whatever this env has
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        (real("json") if name in installed else None) if name in ("mlflow", "wandb")
        else real(name, *a)))
    with pytest.raises(ConfigError) as missing:
        load_space(write(tmp_path, {**VALID, "callbacks": ["mlflow", "wandb"]}))
    assert "callbacks: wandb needs the 'wandb' package" in str(missing.value)
    assert "pip install wandb" in str(missing.value) and "mlflow" not in str(missing.value)
    with pytest.raises(ConfigError, match="must be one of"):
        load_space(write(tmp_path, {**VALID, "callbacks": ["tensorboardx"]}))
    space = load_space(write(tmp_path, {**VALID, "callbacks": ["mlflow"]}))
    assert space.callbacks == ["mlflow"]


def test_the_mlflow_tracker_logs_beside_the_results(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")  # optional (pip install mlflow-skinny); Ray's callback needs it
    from cofi_sweep.sweep.driver import tracker_callbacks

    space = load_space(write(tmp_path, {**VALID, "callbacks": ["mlflow"]}))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    [mlflow] = tracker_callbacks(space, str(tmp_path / "exp"))
    assert type(mlflow).__name__ == "MLflowLoggerCallback"
    assert mlflow.tracking_uri == f"sqlite:///{tmp_path / 'exp' / 'mlflow.db'}"
    assert mlflow.experiment_name == "t"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")  # the user's server
    assert tracker_callbacks(space, str(tmp_path / "exp"))[0].tracking_uri == \
        "http://tracking:5000"


def test_ray_client_addresses_are_refused_before_anything_starts(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture
                                                                 ) -> None:
    from cofi_sweep.sweep.cli import main

    path = write(tmp_path, {**VALID, "storage_path": str(tmp_path / "sweeps")})
    assert main(["--space", str(path), "--address", "ray://head:10001"]) == 2
    err = capsys.readouterr().err
    assert "Ray Client (ray://) addresses are not supported" in err and "ray job submit" in err
    assert not (tmp_path / "sweeps" / "t").exists()  # no experiment started


def test_trials_get_local_paths_made_absolute_against_the_start_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tune runs each trial in its own folder: a relative data dir (``../shared/data/glue``)
    or model folder must reach it as an absolute path; hub names and aliases stay names."""
    from cofi_sweep.sweep.space import resolve_local_paths

    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    raw = {"job": {"model": "models/mine", "task": "sst2",
                   "data": {"source": "local", "dir": "../glue"},
                   "teacher": {"cache_dir": "cache", "path": "textattack/bert-base-SST-2"}},
           "grid": {"target_sparsity": [0.5]}}
    space = resolve_local_paths(load_space(write(tmp_path, raw)))
    assert space.job.model == str(tmp_path / "models" / "mine")
    assert space.job.data.dir == str(tmp_path.parent / "glue")
    assert space.job.teacher.cache_dir == str(tmp_path / "cache")
    assert space.job.teacher.path == "textattack/bert-base-SST-2"  # a hub name
    raw["job"]["model"] = "minilm"
    assert resolve_local_paths(load_space(write(tmp_path, raw))).job.model == "minilm"


def test_a_shipped_space_is_found_by_name_from_any_folder(tmp_path: Path, monkeypatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    from cofi_sweep.sweep.cli import main

    monkeypatch.chdir(tmp_path)  # not the repository: only the package knows its spaces
    for name in ("quickstart", "quickstart.yaml", "search_spaces/quickstart.yaml"):
        assert load_space(name).name == "quickstart"
    # pareto.yaml is found; offline, its preflight then names the hub model it cannot reach
    assert main(["--space", "pareto.yaml", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "file not found" not in err and "job.model: 'bert-base-uncased'" in err
    assert main(["--space", "no_such_space.yaml", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "file not found: no_such_space.yaml" in err and "quickstart" in err  # the shipped ones


def test_the_plan_shows_a_baseline_as_written() -> None:
    from cofi_sweep.core.config import BaselineConfig
    from cofi_sweep.sweep.plan import as_written

    written = {"layers": "list", "layer_list": [3, 6], "hidden": 192}
    settings = dataclasses.asdict(BaselineConfig(**written))
    assert as_written(settings, BaselineConfig()) == \
        "{layers: list, layer_list: [3, 6], hidden: 192}"
    assert as_written(dataclasses.asdict(BaselineConfig()), BaselineConfig()) == \
        "{layers: every_other}"
