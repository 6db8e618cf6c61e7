"""Real sweeps with Ray on 2 CPUs: tiny random BERT, the synthetic task, Optuna + ASHA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import tiny_space, write

from cofi_sweep.sweep.space import load_space

pytestmark = pytest.mark.sweep


def test_sweep_runs_every_cell_and_records_errors(tmp_path: Path, teacher_cache: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    from cofi_sweep.sweep.driver import run_sweep

    raw = tiny_space(tmp_path, teacher_cache)
    raw["grid"]["ablations"]["broken"] = {"teacher_layers": [99]}  # valid YAML, fails at run
    raw["grid"]["target_sparsity"], raw["grid"]["target_speedup"] = [0.3], [1.5]
    raw["baselines"] = {"half_depth": {"layers": "every_other"}}
    # a checkpoint at every evaluation: the first rung is at the first pruning evaluation (the
    # 2nd), so every trial ASHA stops has checkpointed before it
    raw["checkpoint"]["every_n_evals"] = 1
    space = load_space(write(tmp_path, raw))
    experiment = run_sweep(space)
    table = pd.read_parquet(experiment / "results.parquet")
    assert len(table) == 7 * 2
    assert table.groupby("cell_id").size().to_dict() == {c["id"]: 2 for c in space.cells()}
    broken = table[table["ablation"] == "broken"]
    assert (broken["status"] == "errored").all()
    baseline = table[table["method"] == "distill"]
    assert len(baseline) == 2 and set(baseline["status"]) <= {"finished", "stopped early"}
    assert (baseline["structure"].map(lambda s: json.loads(s)["heads"][0]) == 0).all()
    healthy = table[(table["ablation"] != "broken") & (table["method"] == "cofi")]
    assert set(healthy["status"]) <= {"finished", "stopped early"}
    finished = healthy[healthy["status"] == "finished"]
    assert len(finished) >= 4  # ASHA keeps at least the best trial of each cell
    # ASHA acted: it stopped a trial, on pruning-stage scores at target of the trial's own cell
    stopped = healthy[healthy["status"] == "stopped early"]
    assert len(stopped) >= 1
    rungs = json.loads((experiment / "asha_rungs.json").read_text())
    for _, row in stopped.iterrows():
        assert any(row["trial_id"] in recorded for recorded in rungs[row["cell_id"]].values())
    for trial_dir in stopped["trial_dir"]:  # stopped while pruning, never compared later
        results = [json.loads(line) for line in
                   (Path(trial_dir) / "result.json").read_text().splitlines()]
        assert results[-1]["stage"] == "prune" and "rung_score" in results[-1]
    # like with like: a cell's trials were ranked at the same target at the same rung clock
    targets: dict[tuple, set] = {}
    for _, row in healthy[healthy["method"] == "cofi"].iterrows():
        for line in (Path(row["trial_dir"]) / "result.json").read_text().splitlines():
            result = json.loads(line)
            if "rung_score" in result:
                key = (row["cell_id"], result["ranked_evals"])
                target = result.get("target", result.get("target_speedup"))  # by cell kind
                targets.setdefault(key, set()).add(target)
    assert targets and all(len(t) == 1 for t in targets.values()), targets
    # every trial of a cell ran with its own seed
    assert (healthy.groupby("cell_id")["config/cofi.seed"].nunique() == 2).all()
    # and the summary says so, with the on-target count
    out = capsys.readouterr().out
    all_stopped = int((table["status"] == "stopped early").sum())  # baselines' cells too
    assert f"ASHA stopped {all_stopped} trial(s) early" in out
    cofi_done = int(((table["method"] == "cofi") & (table["status"] == "finished")).sum())
    assert f"on target: {cofi_done} of {cofi_done} finished CoFi trials" in out
    assert finished["teacher_score"].iloc[0] > 0.7  # a teacher that learned the task
    # the time each job stood in tune.report is measured, and is part of the job's own time
    assert ((finished["tune_report_seconds"] > 0)
            & (finished["tune_report_seconds"] < finished["job_wall_seconds"])).all()
    for _, row in finished.iterrows():
        assert Path(row["compact_dir"]).is_dir()
        assert Path(row["compact_dir"]).is_relative_to(experiment)  # in storage, not /tmp/ray
        assert row["speedup"] > 0 and row["latency_s"] > 0
        assert row["timing_reliable"] in (True, False) and row["other_cores"] is not None
        assert 0 <= row["realized_sparsity"] < 1 and row["predicted_speedup"] >= 1
        assert row["on_target"]  # projected onto the band, whatever the short budget left
        if pd.notna(row["target_speedup"]):  # the latency model's speedup within 3 %
            assert abs(row["latency_model_speedup"] / row["target_speedup"] - 1) <= 0.03
        else:
            assert abs(row["target_sparsity"] - row["realized_sparsity"]) <= 0.01
        assert "held out of the training data" in row["selection"]
    no_hidden = finished[finished["ablation"] == "no_hidden"]
    assert len(no_hidden) > 0  # (.all() of nothing would pass)
    assert (no_hidden["structure"].map(lambda s: json.loads(s)["hidden"]) == 64).all()
    # CoFi and the baseline each get a frontier in the report and the plot
    frontiers = set(pd.read_csv(experiment / "pareto.csv")["frontier"])
    assert {"cofi:full", "cofi:no_hidden", "distill:half_depth"} <= frontiers
    assert not any("@" in f for f in frontiers)  # speedup-target cells join their ablation's
    assert "| s1.5x-" in (experiment / "report.md").read_text().split("## Speedup targets")[1]
    for name in ("metric_vs_speedup", "metric_vs_params", "predicted_vs_measured",
                 "frontier_structure", "layer_alignment"):
        assert (experiment / "plots" / f"{name}.png").stat().st_size > 10_000
    report = (experiment / "report.md").read_text()
    assert "## Frontier models" in report
    # the ablation against full CoFi, and the layer alignment each evaluation recorded
    assert "| no_hidden | no hidden mask | full |" in report.split("## Ablations")[1]
    assert "## Layer alignment" in report and "| t0.3-full |" in report
    for _, row in finished.iterrows():
        trace = json.loads(row["alignment_trace"])
        assert len(trace) >= 3 and {e[1] for e in trace} >= {"distill", "prune", "finetune"}
        assert all(len(e[2]) == len(json.loads(row["teacher_layers"])) for e in trace)
        moved = json.loads(row["projection_moves"])
        assert set(moved) <= {"head", "mha", "int", "ffn", "hidden"} and moved
        assert 0 < row["gates_sparsity"] < 1
    # every frontier model is exported, ready to load with transformers alone
    exported = sorted((experiment / "export").iterdir())
    assert len(exported) == len(pd.read_csv(experiment / "pareto.csv"))
    assert all((e / "config.json").is_file() and (e / "model.safetensors").is_file()
               for e in exported)
    assert all(e.name.isidentifier() for e in exported)  # transformers imports remote code by it
    assert "frontier models, exported" in out
    # ended trials' checkpoints and best snapshots are gone, each as its trial ended (errored
    # ones keep theirs, for a retry)
    ended = table[table["status"] != "errored"]
    assert not [c for d in ended["trial_dir"] for c in Path(d).glob("checkpoint_*")]
    assert not [d for d in ended["job_dir"] if (Path(d) / "best.pt").exists()]
    assert all(f"{t} ended: removed its resumable checkpoints" in out
               for t in stopped["trial_id"])  # stopped trials had checkpointed
    # one Optuna study per cell, learning only final scores: stopped trials are PRUNED
    import optuna

    db = f"sqlite:///{experiment / 'optuna.db'}"
    studies = {c["id"]: optuna.load_study(study_name=f"tiny/{c['id']}", storage=db)
               for c in space.cells()}
    states = [t.state.name for study in studies.values() for t in study.trials]
    assert states.count("COMPLETE") == int((table["status"] == "finished").sum())
    assert states.count("PRUNED") == int((table["status"] == "stopped early").sum())
    assert states.count("FAIL") == len(broken)
    assert len(states) == len(table)
    # each Optuna trial names its Tune trial, so the dashboard lines up with results.parquet
    by_id = table.set_index("trial_id")
    for cell, study in studies.items():
        for t in study.trials:
            row = by_id.loc[t.user_attrs["tune_trial_id"]]
            assert row["cell_id"] == cell and row["config/cofi.seed"] == t.user_attrs["seed"]
            if t.state.name == "COMPLETE":
                assert t.user_attrs["realized_sparsity"] == row["realized_sparsity"]
                assert t.value == row["final_score"]  # the selection score, not dev
    # the studies are readable by Optuna's own tools (optuna-dashboard reads the same DB)
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization.matplotlib import plot_optimization_history

    assert plot_optimization_history(studies["t0.3-full"]) is not None
    # timed interleaved with the teacher, spread and device recorded, and said in the report
    default = json.loads((experiment / "latency.json").read_text())
    done_ids = set(table[table["status"] == "finished"]["trial_id"])
    assert set(default["trials"]) == done_ids and default["device"]["threads"] >= 1
    assert default["node"]["device"] == "cpu"  # timed as a Ray task on a CPU node
    assert "[sweep] timed on node" in out
    for timing in default["trials"].values():
        assert timing["speedup_low"] <= timing["speedup"] <= timing["speedup_high"]
        assert timing["latency_model_speedup"] > 0 and timing["flop_predicted_speedup"] >= 1
    report = (experiment / "report.md").read_text()
    assert "interleaved with the teacher" in report
    assert "| latency model (calibrated) | " in report and "| matmul FLOPs | " in report
    # re-timed under other settings without retraining: a table and a frontier beside each
    from cofi_sweep.sweep.retime import main as retime

    for runtime in ("pytorch", "onnxruntime"):
        assert retime([str(experiment), "--batch-size", "1", "--seq-len", "8", "--threads", "1",
                       "--repeats", "2", "--runtime", runtime]) == 0
        setting = f"b1x8-1t-cpu-{runtime}"
        timed = json.loads((experiment / f"latency-{setting}.json").read_text())
        assert set(timed["trials"]) == done_ids and timed["protocol"]["batch_size"] == 1
        assert all(t["speedup"] > 0 for t in timed["trials"].values())
        for t in timed["trials"].values():  # onnxruntime: 3 passes by default, the median kept
            passes = t.get("pass_speedups", [t["speedup"]])
            assert len(passes) == (3 if runtime == "onnxruntime" else 1)
            assert passes == sorted(passes) and t["speedup"] == passes[len(passes) // 2]
        report = (experiment / "retimed" / setting / "report.md").read_text()
        assert "batch 1 × 8 tokens" in report and runtime in report
        assert (experiment / "retimed" / setting / "pareto.csv").is_file()
    assert json.loads((experiment / "latency.json").read_text()) == default  # untouched


def test_halving_pauses_at_rungs_and_resumes_exactly(tmp_path: Path, teacher_cache: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """Synchronous halving: trials wait at each rung (paused) for their cell's others; the
    kept ones go on from the rung's checkpoint and finish exactly as they would unpaused."""
    from cofi_sweep.sweep.driver import run_sweep

    def sweep(name: str, scheduler: dict) -> pd.DataFrame:
        raw = tiny_space(tmp_path, teacher_cache, name=name, search={}, trials_per_cell=4,
                         scheduler=scheduler)
        raw["grid"] = {"target_sparsity": [0.6], "ablations": {"full": {}}}
        raw["checkpoint"]["keep_optimizer"] = False  # rungs keep it all the same
        table = pd.read_parquet(run_sweep(load_space(write(tmp_path, raw))) / "results.parquet")
        return table.set_index("config/cofi.seed")

    halved = sweep("halved", {"type": "halving", "grace_period": 1, "reduction_factor": 2})
    out = capsys.readouterr().out
    unpaused = sweep("unpaused", {"type": "none"})
    # 4 trials: the top 2 of the cell go on at rung 1, the top 1 at rung 2; 3 stopped
    assert (halved["status"] == "finished").sum() == 1
    assert (halved["status"] == "stopped early").sum() == 3
    assert "halving stopped 3 trial(s) early" in out
    rungs = json.loads((tmp_path / "sweeps" / "halved" / "halving_rungs.json").read_text())
    counts = [len(v) for v in rungs["t0.6-full"]["scores"].values()]
    assert counts[:3] == [4, 2, 1] and set(counts[3:]) <= {1}  # alone after rung 2: no waiting
    kept = halved[halved["status"] == "finished"].iloc[0]
    # ranked by rung score, as recorded: the kept trial was in the top 2 of 4, then led
    for m, top in (("1", 2), ("2", 1)):
        scores = rungs["t0.6-full"]["scores"][m]
        assert scores[kept["trial_id"]] >= sorted(scores.values())[-top]
        assert rungs["t0.6-full"]["kept"][m] == sorted(scores, key=scores.get)[::-1][:top]
    # a trial that waited at a rung went on from its checkpoint there (the last to arrive at
    # a rung never waits), and every evaluation it made is the one it made unpaused
    def starts(row: pd.Series) -> list[str]:
        log = tmp_path / "sweeps" / "halved" / "trials" / row["trial_id"] / "starts.log"
        return [json.loads(line)["start"] for line in log.read_text().splitlines()]

    def evaluations(row: pd.Series) -> list[tuple]:
        lines = (Path(row["trial_dir"]) / "result.json").read_text().splitlines()
        return [(r["step"], r["selection_score"]) for r in map(json.loads, lines)
                if "selection_score" in r and not r.get("done_job")]

    resumed = [seed for seed, row in halved.iterrows() if "resumed" in starts(row)]
    assert resumed
    for seed, row in halved.iterrows():
        run = evaluations(row)
        assert run == evaluations(unpaused.loc[seed])[:len(run)], seed
    same = unpaused.loc[kept.name]
    for column in ("selection_score", "score", "realized_sparsity", "step"):
        assert kept[column] == same[column], column


def test_resume_with_added_cells_and_seeds_runs_just_the_new_trials(
        tmp_path: Path, teacher_cache: Path, capsys: pytest.CaptureFixture) -> None:
    from cofi_sweep.sweep.driver import run_sweep

    raw = tiny_space(tmp_path, teacher_cache, trials_per_cell=1, scheduler={"type": "none"})
    raw["grid"] = {"target_sparsity": [0.3], "ablations": {"full": {}}}
    raw["job"]["cofi"].update(prune_epochs=1, sparsity_warmup_epochs=0.5, finetune_epochs=0.25)
    experiment = run_sweep(load_space(write(tmp_path, raw)))
    (first,) = pd.read_parquet(experiment / "results.parquet").itertuples()
    first_results = (Path(first.trial_dir) / "result.json").read_text()
    raw["grid"]["target_sparsity"], raw["trials_per_cell"] = [0.3, 0.6], 2
    bigger = load_space(write(tmp_path, raw))
    assert run_sweep(bigger, resume=True) == experiment
    assert "resuming with 3 added trial(s)" in capsys.readouterr().out
    table = pd.read_parquet(experiment / "results.parquet")
    assert len(table) == 4 and set(table["status"]) == {"finished"}
    assert table.groupby("cell_id")["config/cofi.seed"].apply(set).to_dict() == {
        "t0.3-full": {0, 1}, "t0.6-full": {0, 1}}
    # the stored trial was not run again; the added ones ran as a Tune experiment of their own
    assert (Path(first.trial_dir) / "result.json").read_text() == first_results
    added = table[table["trial_id"] != first.trial_id]
    assert all(Path(d).parent == experiment / "additions-1" for d in added["trial_dir"])
    assert json.loads((experiment / "sweep_done.json").read_text())["trials"] == 4
    assert set(json.loads((experiment / "latency.json").read_text())["trials"]) == set(
        table["trial_id"])  # every model timed, the added ones too
    # the same space again: nothing left to run, nothing added
    run_sweep(bigger, resume=True)
    assert "added trial" not in capsys.readouterr().out
    assert len(pd.read_parquet(experiment / "results.parquet")) == 4


def _saved_state(experiment: Path) -> dict[str, str]:
    """Each trial's state in Tune's saved experiment state (what a resume starts from):
    "finished", "checkpointed" (unfinished, with a checkpoint) or "started"."""
    states = sorted(experiment.glob("experiment_state-*.json"), key=lambda f: f.stat().st_mtime)
    try:
        trials = json.loads(states[-1].read_text())["trial_data"] if states else []
    except (json.JSONDecodeError, KeyError):  # being written: ask again
        return {}
    saved = {}
    for meta, run in trials:
        run = json.loads(run)
        if (run.get("last_result") or {}).get("done_job"):
            state = "finished"
        else:  # the checkpoint manager is a cloudpickle that names its checkpoints
            manager = bytes.fromhex(run["checkpoint_manager"]["value"])
            state = "checkpointed" if b"checkpoint_0" in manager else "started"
        saved[json.loads(meta)["trial_id"]] = state
    return saved


def _starts(trial_dir: Path) -> list[str]:
    """A trial's start audit (``fresh`` / ``resumed`` per start); [] before its first."""
    log = trial_dir / "starts.log"
    return [json.loads(line)["start"] for line in log.read_text().splitlines()] \
        if log.is_file() else []


def _session_pids(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    return [int(p) for p, s in (line.split() for line in out.splitlines()) if int(s) == sid]


def test_sigkill_then_resume_finishes_every_trial_once(tmp_path: Path,
                                                       teacher_cache: Path) -> None:
    # on a folder; bucket (URI) storage runs in the two-node cluster test (test_cluster.py)
    bucket = str(tmp_path / "bucket")
    # 4 trials, 2 at a time: at the kill two are running (one checkpointed) and two wait
    raw = tiny_space(tmp_path, teacher_cache, scheduler={"type": "none"}, storage_path=bucket,
                     trials_per_cell=1)
    raw["job"]["cofi"]["prune_epochs"] = 8
    path = write(tmp_path, raw)
    experiment = tmp_path / "bucket" / "tiny"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cofi_sweep.run", "--space", str(path)]
    driver = subprocess.Popen(cmd, start_new_session=True, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill once Tune has saved a checkpoint of a running trial
        if "checkpointed" in _saved_state(experiment).values():
            break
        time.sleep(0.2)
    else:
        driver.kill()
        pytest.fail("the sweep never reached a killable state")
    for pid in _session_pids(driver.pid):  # the driver and every Ray process it started
        os.kill(pid, signal.SIGKILL)
    driver.wait()
    time.sleep(1)
    at_kill = _saved_state(experiment)  # the final word: the driver is gone
    logged_at_kill = {t: _starts(experiment / "trials" / t) for t in at_kill}
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    table = pd.read_parquet(experiment / "results.parquet")
    assert len(table) == 4 and (table["status"] == "finished").all(), table["status"]
    for trial_id, trial_dir, job_dir in zip(table["trial_id"], table["trial_dir"],
                                            table["job_dir"]):
        starts = [json.loads(line)["start"] for line in
                  (Path(job_dir) / "starts.log").read_text().splitlines()]
        state = at_kill.get(trial_id)
        if state == "finished":  # finished trials are not re-run
            assert starts == ["fresh"], (trial_id, starts)
        elif state == "checkpointed":  # unfinished ones continue from their checkpoint
            assert starts == ["fresh", "resumed"], (trial_id, starts)
        elif state == "started":  # without a checkpoint: it starts over, once more
            assert starts == logged_at_kill[trial_id] + ["fresh"], (trial_id, starts)
        else:  # not started before the kill: its one start is after the resume
            assert state is None and starts == ["fresh"], (trial_id, state, starts)
        results = [json.loads(line) for line in
                   (Path(trial_dir) / "result.json").read_text().splitlines()]
        assert sum(1 for r in results if r.get("done_job")) == 1  # none finished twice
    assert "checkpointed" in at_kill.values()  # so at least one trial continued from one
    assert (table["speedup"] > 0).all()
    assert (experiment / "report.md").is_file() and (experiment / "plots").is_dir()
    # the Optuna study lives beside the results, in SQLite
    assert (experiment / "optuna.db").is_file() and "compact_uri" not in table
    assert not (experiment / "teacher").exists()  # one machine: trials read the cache
    # the ended trials' checkpoints were removed, and a later --resume still works
    assert not list(experiment.glob("*/checkpoint_*"))
    logged = {d: _starts(Path(d)) for d in table["job_dir"]}
    again = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert pd.read_parquet(experiment / "results.parquet")["status"].eq("finished").all()
    for job_dir in table["job_dir"]:  # nothing re-ran: no trial logged another start
        assert _starts(Path(job_dir)) == logged[job_dir], job_dir


def test_retry_errored_reruns_failed_trials_from_their_checkpoint(tmp_path: Path,
                                                                   teacher_cache: Path) -> None:
    """Storage fails at the end of every trial (a file stands where the compact model is
    stored): both trials error after checkpointing. With the obstacle gone, a plain --resume
    leaves them errored; --retry-errored continues each from its last checkpoint.

    The two trials search only the fine-tune's learning rate, so they share one pruning run
    (shared_pruning_runs: 1): one prunes, the other waits for it, both fine-tune a fork of it,
    and the retries continue the forks."""
    raw = tiny_space(tmp_path, teacher_cache, scheduler={"type": "none"}, trials_per_cell=2,
                     search={"cofi.finetune_learning_rate": {"type": "choice",
                                                             "values": [1e-4, 5e-4]}})
    raw["grid"] = {"target_sparsity": [0.3], "ablations": {"full": {}}}
    path = write(tmp_path, raw)
    experiment = tmp_path / "sweeps" / "tiny"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cofi_sweep.run", "--space", str(path)]
    log_file = (tmp_path / "first.log").open("w")  # a pipe left unread would block the driver
    driver = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    blocked: set[Path] = set()
    deadline = time.time() + 600  # the teacher trains first
    while driver.poll() is None and time.time() < deadline:
        for log in (experiment / "trials").glob("*/starts.log"):  # a trial has started
            if log.parent not in blocked:
                (log.parent / "job").write_text("not a folder")  # its upload will fail
                blocked.add(log.parent)
        time.sleep(0.1)
    driver.wait(timeout=60)
    assert len(blocked) == 2, (tmp_path / "first.log").read_text()[-3000:]
    table = pd.read_parquet(experiment / "results.parquet")
    assert (table["status"] == "errored").all(), table["status"]
    assert all(list(Path(d).glob("checkpoint_*")) for d in table["trial_dir"])  # kept
    for trial in blocked:
        (trial / "job").unlink()
    plain = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert (pd.read_parquet(experiment / "results.parquet")["status"] == "errored").all()
    retried = subprocess.run(cmd + ["--retry-errored"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert retried.returncode == 0, retried.stdout[-3000:] + retried.stderr[-3000:]
    table = pd.read_parquet(experiment / "results.parquet")
    assert (table["status"] == "finished").all(), table["status"]
    for job_dir in table["job_dir"]:
        starts = [json.loads(line)["start"] for line in
                  (Path(job_dir) / "starts.log").read_text().splitlines()]
        assert starts == ["fresh", "resumed"], starts  # from its checkpoint, not from scratch
    import optuna  # the study learns from the retries: a completed trial each, beside the FAILs

    study = optuna.load_study(study_name="tiny/t0.3-full",
                              storage=f"sqlite:///{experiment / 'optuna.db'}")
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"], states
    done = {t.user_attrs["tune_trial_id"]: t for t in study.trials if t.state.name == "COMPLETE"}
    assert set(done) == set(table["trial_id"])
    assert all(t.user_attrs["retry_of"] is not None for t in done.values())
    # one pruning run for both: only the trial that ran it reported pruning evaluations
    assert table["pruning_run"].nunique() == 1 and table["pruned_here"].sum() == 1
    assert table["structure"].nunique() == 1  # one compact structure, fine-tuned twice
    for _, row in table.iterrows():
        stages = {json.loads(line).get("stage") for line in
                  (Path(row["trial_dir"]) / "result.json").read_text().splitlines()}
        assert ("prune" in stages) == row["pruned_here"], stages
    assert "[sweep] shared pruning: 2 trials fine-tuned from 1 pruning run(s)" in retried.stdout
    assert not (experiment / "shared_pruning").exists()  # every trial has ended


@pytest.mark.parametrize("flag", ["--passes", "--threads", "--repeats", "--batch-size"])
def test_retime_rejects_zero_counts_instead_of_taking_a_default(tmp_path: Path, flag: str,
                                                                capsys) -> None:
    from cofi_sweep.sweep.retime import main as retime

    assert retime([str(tmp_path), flag, "0"]) == 2
    assert f"{flag} must be >= 1" in capsys.readouterr().err
