"""Fixtures for the plugin and task tests: an isolated HF environment, a fresh plugin manager, data writers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pytest


@pytest.fixture(autouse=True)
def _isolated(hf_env, monkeypatch: pytest.MonkeyPatch):
    """Every test here runs in an isolated HF environment and starts from freshly loaded plugins."""
    from hubmgr.plugins import reset_plugin_manager

    monkeypatch.delenv("HUBMGR_LOAD_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """``write_jsonl(name, rows) -> Path``: a JSON-lines file in tmp_path."""

    def write(name: str, rows: Iterable[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    return write


@pytest.fixture
def write_csv(tmp_path: Path):
    """``write_csv(name, header, rows) -> Path``: a CSV file in tmp_path."""
    import csv

    def write(name: str, header: list[str], rows: Iterable[Iterable[Any]]) -> Path:
        path = tmp_path / name
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write
