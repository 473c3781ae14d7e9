"""Fixtures for the TUI tests: an isolated environment, fresh plugins, a fake backend with fixed data."""

from __future__ import annotations

import pytest

from tests.tui.fakes import FakeBackend


@pytest.fixture(autouse=True)
def _isolated(hf_env, monkeypatch: pytest.MonkeyPatch):
    """Every TUI test runs in an isolated HF environment with freshly loaded plugins."""
    from hubmgr.plugins import reset_plugin_manager

    monkeypatch.delenv("HUBMGR_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("TZ", "UTC")
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def fake(tmp_path) -> FakeBackend:
    return FakeBackend(tmp=tmp_path)
