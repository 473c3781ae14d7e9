"""A ``HUBMGR_HOME`` that cannot be used (read-only, or under a regular file): one line naming the path, exit 12.

chmod does not stop root from writing, so the read-only cases skip under root; the cases with a file where
a folder should be (NotADirectoryError, FileExistsError) hold for everyone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hubmgr.errors import LocalPathError

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_non_root = pytest.mark.skipif(ROOT, reason="running as root: chmod does not make a folder unwritable for root")


def _fails_with_path(result, path: Path, *fragments: str) -> None:
    assert result.exit_code == LocalPathError.exit_code == 12, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert str(path) in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _registry_with_a_run(home: Path) -> str:
    from hubmgr.runs.store import RunStore

    store = RunStore(home / "runs.sqlite")
    store.create_run(
        run_id="20260101-120000-aaaa",
        task="text-classification",
        model="org/m",
        revision=None,
        config={},
        output_dir=None,
    )
    store.set_status("20260101-120000-aaaa", "completed")
    return "20260101-120000-aaaa"


@pytest.mark.parametrize(
    "command", [["runs"], ["adapters"], ["runs", "rm", "20260101", "--yes"]], ids=["runs", "adapters", "runs-rm"]
)
def test_home_under_a_file(hf_env, tmp_path, monkeypatch, cli_runner, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "hubmgr"
    monkeypatch.setenv("HUBMGR_HOME", str(home))
    _fails_with_path(cli_runner(*command), home, "HUBMGR_HOME", "is a file, not a folder")


def test_home_is_a_file(hf_env, tmp_path, monkeypatch, cli_runner):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("HUBMGR_HOME", str(home))
    _fails_with_path(cli_runner("runs", "--json"), home, "HUBMGR_HOME", "is a file, not a folder")


def test_train_with_home_under_a_file(hf_env, tmp_path, monkeypatch, cli_runner, tiny_bert):
    """The default output folder lives in HUBMGR_HOME: the run stops before loading anything."""
    from tests.integration.test_train import write_reviews

    data = write_reviews(tmp_path / "train.csv", 16)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "hubmgr"
    monkeypatch.setenv("HUBMGR_HOME", str(home))
    result = cli_runner("train", "text-classification", "--model", tiny_bert, "--data", data, "--max-steps", "1")
    _fails_with_path(result, home, "is a file, not a folder")


@needs_non_root
def test_read_only_home(hf_env, tmp_path, monkeypatch, cli_runner):
    home = tmp_path / "ro-home"
    home.mkdir()
    run_id = _registry_with_a_run(home)
    monkeypatch.setenv("HUBMGR_HOME", str(home))
    home.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        _fails_with_path(cli_runner("runs"), home, "HUBMGR_HOME", "not writable")
        _fails_with_path(cli_runner("runs", "rm", run_id, "--yes"), home, "HUBMGR_HOME", "not writable")
        _fails_with_path(cli_runner("adapters", "--json"), home, "HUBMGR_HOME", "not writable")
        sub = home / "sub"
        monkeypatch.setenv("HUBMGR_HOME", str(sub))
        _fails_with_path(cli_runner("runs"), sub, "cannot be created", str(home))
    finally:
        home.chmod(stat.S_IRWXU)


@needs_non_root
def test_read_only_registry_file(hf_env, tmp_path, monkeypatch, cli_runner):
    """The folder is writable but runs.sqlite is not: listing works, forgetting a run says why it cannot."""
    home = tmp_path / "home"
    home.mkdir()
    run_id = _registry_with_a_run(home)
    monkeypatch.setenv("HUBMGR_HOME", str(home))
    db = home / "runs.sqlite"
    db.chmod(stat.S_IRUSR)
    try:
        listed = cli_runner("runs")
        assert listed.exit_code == 0 and run_id in listed.output, listed.output
        _fails_with_path(cli_runner("runs", "rm", run_id, "--yes"), db, "not writable")
    finally:
        db.chmod(stat.S_IRUSR | stat.S_IWUSR)
