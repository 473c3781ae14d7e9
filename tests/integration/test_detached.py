"""Runs as their own processes: ``train --detach``, ``runs follow``, ``runs stop``, ``runs resume`` from another
folder; the event log; the output lock; and the registry reconciling from the output folder.

The runs are a tiny random BERT for a few steps, so each one is seconds (mostly the child's imports).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_train import _config, write_reviews


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _wait(predicate, timeout: float = 90.0, what: str = "the condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_detach_follow_stop_and_resume_from_another_folder(
    hf_env, tiny_bert: Path, tmp_path: Path, run_cli, cli_runner
) -> None:
    from hubmgr.runs.store import RunStore

    work = tmp_path / "work"
    work.mkdir()
    write_reviews(work / "train.csv")
    started = run_cli(
        "train",
        "text-classification",
        "--model",
        tiny_bert,
        "--data",
        "train.csv",  # relative
        "--output",
        "out",
        "--max-steps",
        "8",
        "--batch-size",
        "8",
        "--logging-steps",
        "1",
        "--learning-rate",
        "5e-3",
        "--detach",
        cwd=work,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert run_id and "\n" not in run_id
    assert f"hubmgr runs follow {run_id}" in started.stderr
    store = RunStore()
    record = store.get_run(run_id)
    assert record.status == "running" and record.output_dir == str((work / "out").resolve())

    # a follower attached from the start, in another process
    env = dict(os.environ)
    follower = subprocess.Popen(
        [sys.executable, "-m", "hubmgr", "runs", "follow", run_id, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    # ask it to stop as soon as it can be asked (in-process, so that the request surely comes before its
    # first step while it loads the model): it stops after that step, with a checkpoint
    stopped = cli_runner("runs", "stop", run_id, "--timeout", "120")
    assert stopped.exit_code == 0, stopped.output
    assert f"hubmgr runs resume {run_id}" in stopped.stderr
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 130, err
    events = _lines(out)
    assert events[0]["kind"] == "train_started" and events[-1]["kind"] == "train_finished"
    assert events[-1]["status"] == "cancelled"
    assert store.get_run(run_id).status == "cancelled"
    stopped_at = int(events[-1]["metrics"]["step"])
    assert 1 <= stopped_at < 8

    # resume from a folder where the relative data path means nothing
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = run_cli("runs", "resume", run_id[:12], "--json", cwd=elsewhere, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    result = _lines(resumed.stdout)[-1]
    assert result["kind"] == "result" and result["status"] == "completed" and result["run_id"] == run_id
    assert result["resumed_from_step"] == stopped_at and result["global_step"] == 8
    assert (work / "out" / "adapter_model.safetensors").is_file()

    # one run, one history: the whole story is in the event log of the finished folder, in order
    assert [r.id for r in store.list_runs()] == [run_id]
    assert store.get_run(run_id).status == "completed"
    replay = run_cli("runs", "follow", run_id, "--json", cwd=elsewhere, timeout=60)
    assert replay.returncode == 0, replay.stderr
    kinds = [e["kind"] for e in _lines(replay.stdout)]
    assert kinds.count("train_started") == 2 and kinds.count("train_finished") == 2
    assert kinds[-1] == "train_finished" and _lines(replay.stdout)[-1]["status"] == "completed"
    steps = [e["step"] for e in _lines(replay.stdout) if e["kind"] == "step" and e.get("loss") is not None]
    assert steps == sorted(steps) and steps[-1] == 8
    history = store.metrics_history(run_id, split="train", name="loss")
    assert [p.step for p in history] == sorted({p.step for p in history}), "a step was recorded twice"
    text = run_cli("runs", "follow", run_id, cwd=elsewhere, timeout=60)
    assert text.returncode == 0 and text.stdout.strip() == str((work / "out").resolve())


@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN], ids=["sigint-default", "sigint-ignored"])
def test_follow_detaches_on_ctrl_c_and_the_run_goes_on(hf_env, tmp_path: Path, inherited) -> None:
    """Also when started with SIGINT ignored, as a parent that ignores it (a test runner's worker, a shell's
    background job) leaves it: Python then installs no KeyboardInterrupt handler of its own."""
    from hubmgr.runs.live import EventLog
    from hubmgr.runs.store import RunStore
    from hubmgr.train.events import StepLogged, TrainStarted
    from hubmgr.train._outputs import partial_dir

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        out = tmp_path / "out"
        partial = partial_dir(out)
        partial.mkdir()
        store = RunStore()
        store.create_run(
            run_id="r1",
            task="text-classification",
            model="m",
            revision=None,
            config={},
            output_dir=str(out),
            pid=sleeper.pid,
        )
        log = EventLog(partial)
        log.write(
            TrainStarted(
                run_id="r1",
                task="text-classification",
                model="m",
                output_dir=str(out),
                total_steps=10,
                num_train_examples=8,
                num_eval_examples=0,
                trainable_params=1,
                total_params=2,
                device="cpu",
            )
        )
        log.write(
            StepLogged(
                step=1,
                total_steps=10,
                epoch=0.1,
                loss=0.5,
                learning_rate=1e-3,
                samples_per_second=10.0,
                eta_seconds=9.0,
            )
        )
        follower = subprocess.Popen(
            [sys.executable, "-m", "hubmgr", "runs", "follow", "r1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, inherited),
        )
        _wait(lambda: follower.poll() is not None or store.get_run("r1").status == "running", what="follower")
        time.sleep(4)  # it has replayed the log and is waiting for more
        assert follower.poll() is None, follower.communicate()
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
        assert "step 1/10" in err and "Detached from run r1; it goes on" in err
        assert store.get_run("r1").status == "running" and sleeper.poll() is None
        log.close()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the process is gone: the run is interrupted, and follow says so instead of waiting forever
    assert RunStore().get_run("r1").status == "interrupted"


def test_follow_reads_through_the_final_rename(hf_env, tmp_path: Path) -> None:
    """A follower that opened the log in OUT.partial keeps reading it after the run's folder became OUT."""
    from hubmgr.runs.live import EventLog, follow
    from hubmgr.runs.store import RunStore
    from hubmgr.train._outputs import partial_dir
    from hubmgr.train.events import TrainFinished

    out = tmp_path / "out"
    partial = partial_dir(out)
    partial.mkdir()
    store = RunStore()
    store.create_run(run_id="r2", task="t", model="m", revision=None, config={}, output_dir=str(out))
    log = EventLog(partial)
    log.write({"kind": "step", "step": 1})
    events = follow("r2", store=store, poll=0.05)
    assert next(events)["step"] == 1
    tmp = partial / ".final"
    tmp.mkdir()
    log.link_into(tmp)
    os.rename(tmp, out)
    import shutil

    shutil.rmtree(partial)
    log.write(TrainFinished(run_id="r2", status="completed", output_dir=str(out)))
    assert next(events)["kind"] == "train_finished"
    assert list(events) == []
    assert [e["kind"] for e in follow("r2", store=store)] == ["step", "train_finished"]


def test_a_second_run_into_the_same_output_is_refused(hf_env, tiny_bert: Path, tmp_path: Path) -> None:
    from hubmgr.errors import UsageError
    from hubmgr.train._outputs import OutputLock
    from hubmgr.train.runner import train

    data = write_reviews(tmp_path / "train.csv")
    out = tmp_path / "same"
    with OutputLock(out.resolve()):
        with pytest.raises(UsageError, match="Another run is training into"):
            train(_config(tiny_bert, data, out))
        assert not (tmp_path / "same.partial").exists()
    assert not (tmp_path / "same.lock").exists()


def test_the_registry_reconciles_from_a_complete_output_folder(
    hf_env, tiny_bert: Path, tmp_path: Path, run_cli
) -> None:
    """Killed between the adapter folder's rename and the registry update: the folder is the truth."""
    import sqlite3

    from hubmgr.runs.store import RunStore
    from hubmgr.train.runner import train

    data = write_reviews(tmp_path / "train.csv")
    out = tmp_path / "adapter"
    result = train(_config(tiny_bert, data, out))
    store = RunStore()
    # what the registry holds when the process died in that window: running, a dead pid, no adapter
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "UPDATE runs SET status='running', pid=?, pid_started=NULL, finished=NULL, adapter_path=NULL,"
            " metrics='{}' WHERE id=?",
            (dead.pid, result.run_id),
        )
        conn.execute("DELETE FROM adapters")
    record = RunStore().get_run(result.run_id)
    assert record.status == "completed" and record.adapter_path == str(out.resolve())
    assert record.metrics.get("step") == 6
    listed = run_cli("adapters", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [a["path"] for a in json.loads(listed.stdout)] == [str(out.resolve())]
    again = run_cli("train", "--resume", "--output", out)
    assert again.returncode == 2 and "holds a completed run" in again.stderr


def test_resume_errors_are_one_clear_line(hf_env, tmp_path: Path, run_cli) -> None:
    nothing = run_cli("train", "--resume", "--output", tmp_path / "none")
    assert nothing.returncode == 2 and "Nothing to resume" in nothing.stderr and "TASK" not in nothing.stderr
    afile = tmp_path / "afile"
    afile.write_text("x")
    as_output = run_cli("train", "text-classification", "--model", "m", "--data", afile, "--output", afile)
    assert as_output.returncode == 2 and "is a file, not a folder" in as_output.stderr
