"""The SQLite run registry: runs, metrics, adapters, prefixes, interrupted runs, migrations."""

from __future__ import annotations

import json
import multiprocessing
import re
import sqlite3
import subprocess
import sys
from dataclasses import asdict

import pytest

from hubmgr.errors import RunNotFoundError, UsageError
from hubmgr.runs.store import SCHEMA_VERSION, RunStore, RunStoreError, new_run_id


@pytest.fixture()
def store(tmp_path):
    return RunStore(tmp_path / "sub" / "runs.sqlite")


def _adapter_dir(path):
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    (path / "adapter_model.safetensors").write_bytes(b"x")
    return path


def test_new_run_id_is_short_and_sortable():
    a = new_run_id()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", a)
    assert a[:15] <= new_run_id()[:15]


def test_default_path_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBMGR_HOME", str(tmp_path / "home"))
    s = RunStore()
    assert s.path == tmp_path / "home" / "runs.sqlite"
    assert s.path.exists()


def test_schema_wal_and_version(store):
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    RunStore(store.path)  # reopening does not migrate again


def test_newer_schema_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.close()
    with pytest.raises(RunStoreError, match="newer hubmgr"):
        RunStore(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RunStoreError):
        RunStore(path)


def test_create_log_finish_roundtrip(store, tmp_path):
    out = tmp_path / "out"
    rec = store.create_run(
        run_id="20260101-000000-aaaa",
        task="text-classification",
        model="org/m",
        revision="abc",
        config={"lr": 1e-3, "path": tmp_path},
        output_dir=out,
    )
    assert rec.status == "running" and rec.config["path"] == str(tmp_path) and rec.finished is None
    store.log_metrics(rec.id, 1, {"loss": 1.0, "learning_rate": 0.1, "note": "skip me"})
    store.log_metrics(rec.id, 2, {"loss": float("nan")})
    store.log_metrics(rec.id, 2, {"accuracy": 0.5}, split="eval")
    hist = store.metrics_history(rec.id)
    assert [(p.step, p.split, p.name, p.value) for p in hist] == [
        (1, "train", "loss", 1.0),
        (1, "train", "learning_rate", 0.1),
        (2, "train", "loss", None),
        (2, "eval", "accuracy", 0.5),
    ]
    assert [p.value for p in store.metrics_history(rec.id, split="eval")] == [0.5]
    adapter = _adapter_dir(out / "adapter")
    done = store.finish(rec.id, status="completed", metrics={"accuracy": 0.5}, adapter_path=adapter)
    assert done.status == "completed" and done.finished and done.adapter_path == str(adapter.resolve())
    assert done.duration_seconds is not None
    json.dumps(asdict(done))  # JSON-able
    [ad] = store.list_adapters()
    assert (ad.id, ad.run_id, ad.base_model, ad.base_revision, ad.task, ad.exists) == (
        rec.id,
        rec.id,
        "org/m",
        "abc",
        "text-classification",
        True,
    )
    assert ad.metrics == {"accuracy": 0.5}
    json.dumps(asdict(ad))


def test_status_and_errors(store):
    store.create_run(run_id="r1", task="t", model="m", revision=None, config={}, output_dir=None)
    store.set_status("r1", "failed", error="NaN loss\nat step 3")
    rec = store.get_run("r1")
    assert rec.status == "failed" and rec.error == "NaN loss at step 3" and rec.finished
    with pytest.raises(UsageError):
        store.set_status("r1", "exploded")
    with pytest.raises(RunNotFoundError):
        store.set_status("nope", "failed")
    with pytest.raises(RunNotFoundError):
        store.log_metrics("nope", 1, {"loss": 1.0})
    with pytest.raises(RunNotFoundError):
        store.finish("nope", status="completed", metrics={}, adapter_path=None)


def test_list_newest_first_and_prefix(store):
    for rid in ("20260101-000000-aaaa", "20260102-000000-bbbb", "20260102-000000-bbcc"):
        store.create_run(run_id=rid, task="t", model="m", revision=None, config={}, output_dir=None)
    ids = [r.id for r in store.list_runs()]
    assert ids == ["20260102-000000-bbcc", "20260102-000000-bbbb", "20260101-000000-aaaa"]
    assert [r.id for r in store.list_runs(limit=1)] == ids[:1]
    assert store.get_run("20260101").id == "20260101-000000-aaaa"
    with pytest.raises(UsageError, match="several"):
        store.get_run("20260102-000000-bb")
    with pytest.raises(RunNotFoundError):
        store.get_run("2027")
    with pytest.raises(RunNotFoundError):
        store.get_run("%")  # LIKE wildcards are literal


def test_resume_keeps_history(store):
    store.create_run(run_id="r", task="t", model="m", revision=None, config={"a": 1}, output_dir=None)
    store.log_metrics("r", 1, {"loss": 2.0})
    store.set_status("r", "cancelled")
    rec = store.create_run(run_id="r", task="t", model="m", revision=None, config={"a": 2}, output_dir=None)
    assert rec.status == "running" and rec.config == {"a": 2} and rec.finished is None
    assert len(store.metrics_history("r")) == 1


def test_interrupted_when_process_is_dead(store):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    store.create_run(run_id="dead", task="t", model="m", revision=None, config={}, output_dir=None, pid=proc.pid)
    store.create_run(run_id="alive", task="t", model="m", revision=None, config={}, output_dir=None)
    status = {r.id: r.status for r in store.list_runs()}
    assert status == {"dead": "interrupted", "alive": "running"}
    assert store.get_run("dead").status == "interrupted"
    assert [r.id for r in store.list_runs(status="interrupted")] == ["dead"]
    # a resumed run becomes running again
    assert (
        store.create_run(run_id="dead", task="t", model="m", revision=None, config={}, output_dir=None).status
        == "running"
    )


def test_delete_adapter(store, tmp_path):
    store.create_run(run_id="r1", task="t", model="m", revision=None, config={}, output_dir=None)
    a1 = _adapter_dir(tmp_path / "a1")
    store.finish("r1", status="completed", metrics={}, adapter_path=a1)
    a2 = _adapter_dir(tmp_path / "a2")
    rec2 = store.add_adapter(a2, base_model="m", task="t")
    assert {a.id for a in store.list_adapters()} == {"r1", rec2.id}

    store.delete_adapter("r1", delete_files=False)
    assert a1.exists() and [a.id for a in store.list_adapters()] == [rec2.id]
    store.delete_adapter(str(a2))  # by path, files too
    assert not a2.exists() and store.list_adapters() == []
    assert store.get_run("r1").status == "completed"  # run history stays
    with pytest.raises(RunNotFoundError):
        store.delete_adapter("r1")


def test_delete_adapter_refuses_non_adapter_folder(store, tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    store.add_adapter(folder, adapter_id="x1")
    with pytest.raises(UsageError, match="does not look like an adapter"):
        store.delete_adapter("x1")
    assert (folder / "keep.txt").exists()
    assert [a.exists for a in store.list_adapters()] == [False]


def _writer(path, run_id, n):
    s = RunStore(path)
    s.create_run(run_id=run_id, task="t", model="m", revision=None, config={}, output_dir=None)
    for step in range(n):
        s.log_metrics(run_id, step, {"loss": float(step)})
    s.finish(run_id, status="completed", metrics={"loss": 0.0}, adapter_path=None)


def test_concurrent_processes(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"p{i}", 30)) for i in range(2)]
    for p in procs:
        p.start()
    reader = RunStore(path)
    while any(p.is_alive() for p in procs):
        reader.list_runs()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert sorted(r.status for r in reader.list_runs()) == ["completed", "completed"]
    assert len(reader.metrics_history("p0")) == 30


def test_finish_keeps_the_main_metric_and_directions(store, tmp_path):
    store.create_run(run_id="r-main", task="t", model="m", revision=None, config={}, output_dir=tmp_path / "o")
    adapter = _adapter_dir(tmp_path / "o" / "adapter")
    done = store.finish(
        "r-main",
        status="completed",
        metrics={"eval_micro_f1": 0.6, "eval_hamming_loss": 0.1},
        adapter_path=adapter,
        main_metric="micro_f1",
        metric_directions={"eval_micro_f1": True, "eval_hamming_loss": False},
    )
    assert done.main_metric == "micro_f1"
    assert done.metric_directions == {"eval_micro_f1": True, "eval_hamming_loss": False}
    assert store.list_adapters()[0].main_metric == "micro_f1"


def test_a_version_2_registry_is_migrated_in_place(tmp_path):
    """A registry written before the main metric was recorded opens, keeps its runs and gains the columns."""
    from hubmgr.runs.store import _MIGRATIONS

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    for statements in _MIGRATIONS[:2]:
        for statement in statements:
            con.execute(statement)
    con.execute("PRAGMA user_version = 2")
    con.execute(
        "INSERT INTO runs (id, task, model, status, created, updated, metrics) VALUES"
        " ('old', 't', 'm', 'completed', 1.0, 1.0, '{\"eval_accuracy\": 0.8}')"
    )
    con.commit()
    con.close()
    store = RunStore(path)
    [old] = store.list_runs()
    assert (old.id, old.main_metric, old.metric_directions, old.metrics) == ("old", None, {}, {"eval_accuracy": 0.8})
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
