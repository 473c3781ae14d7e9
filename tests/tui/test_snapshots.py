"""Snapshot tests of the main screens (pytest-textual-snapshot), on fixed data from the fake backend.

Update after an intended change of the look: ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the SVGs in ``__snapshots__``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hubmgr.tui.app import HubmgrApp
from tests.tui.fakes import FakeBackend, settle

# A fixed (never created) folder, so the cache path shown on Local is the same on every machine.
SNAP_ROOT = Path("/tmp/hubmgr-snapshots")


def _app(**kwargs) -> HubmgrApp:
    return HubmgrApp(FakeBackend(tmp=SNAP_ROOT, fixed_plugins=True, **kwargs))


def _steps(*keys: str, clear: bool = True, then=None):
    """A run_before: settle, press keys (settling after each), optionally run `then(app)`, drop toasts."""

    async def run_before(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)
        if then is not None:
            result = then(app)
            if hasattr(result, "__await__"):
                await result
            await settle(app, pilot)
        if clear:
            app.clear_notifications()
        await pilot.pause(0.2)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_browse(snap_compare, size) -> None:
    assert snap_compare(_app(), terminal_size=size, run_before=_steps())


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_model(snap_compare, size) -> None:
    assert snap_compare(_app(), terminal_size=size, run_before=_steps("down", "enter"))


def test_model_card(snap_compare) -> None:
    async def card(app) -> None:
        app.screen.query_one("#model-tabs").active = "tab-card"

    assert snap_compare(_app(), terminal_size=(100, 30), run_before=_steps("enter", then=card))


def test_downloads(snap_compare) -> None:
    def queue(app: HubmgrApp) -> None:
        app.enqueue_download("acme/model-000")

    async def fail_one(app: HubmgrApp) -> None:
        app.backend.unreachable = True
        app.enqueue_download("acme/model-001", include=["*.json"])

    async def both(app: HubmgrApp) -> None:
        queue(app)
        await app.workers.wait_for_complete()
        await fail_one(app)

    assert snap_compare(_app(), terminal_size=(100, 30), run_before=_steps("2", then=both))


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_local(snap_compare, size) -> None:
    assert snap_compare(_app(), terminal_size=size, run_before=_steps("3", "v"))


def test_train_setup(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=(100, 30), run_before=_steps("4"))


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_train_live(snap_compare, size) -> None:
    def start(app: HubmgrApp) -> None:
        from textual.widgets import Input, Select

        # a data file that exists (the form checks it before it starts); its path is not shown
        data = Path(os.environ["HUBMGR_HOME"]) / "train.csv"
        data.write_text("text,label\ngood,1\nbad,0\n")
        screen = app.screen
        screen.query_one("#model-select", Select).value = "acme/tiny-bert"
        screen.query_one("#data-path", Input).value = str(data)
        screen.action_start()

    assert snap_compare(_app(), terminal_size=size, run_before=_steps("4", then=start))


def test_runs_compare(snap_compare) -> None:
    async def compare(app: HubmgrApp) -> None:
        screen = app.screen
        screen.marked = {"20250314-aaaa", "20250314-bbbb"}
        screen._fill()
        screen._start_eval(
            "acme/tiny-bert",
            "text-classification",
            ["/runs/20250314-aaaa", "/runs/20250314-bbbb"],
            ["20250314-aaaa", "20250314-bbbb"],
            "/data/eval.csv",
            "eval",
        )

    assert snap_compare(_app(), terminal_size=(120, 34), run_before=_steps("5", then=compare))


def test_run_detail_curves(snap_compare) -> None:
    async def curves(app) -> None:
        app.screen.query_one("#run-tabs").active = "tab-run-curves"

    assert snap_compare(_app(), terminal_size=(100, 30), run_before=_steps("5", "enter", then=curves))


def test_run_detail_try(snap_compare) -> None:
    async def try_it(app) -> None:
        from textual.widgets import Input

        app.screen.query_one("#run-tabs").active = "tab-run-try"
        box = app.screen.query_one("#try-input", Input)
        for text in ("a wonderful film", "dull and far too long"):
            box.value = text
            await box.action_submit()
            for _ in range(50):
                await app.workers.wait_for_complete()
                if app.screen.query_one("#try-input", Input).value == "":
                    break
                import asyncio

                await asyncio.sleep(0.05)

    assert snap_compare(_app(), terminal_size=(100, 30), run_before=_steps("5", "enter", then=try_it))


def test_plugins(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=(120, 30), run_before=_steps("6"))


def test_help(snap_compare) -> None:
    assert snap_compare(_app(), terminal_size=(100, 30), run_before=_steps("f1"))


def test_unreachable_banner(snap_compare) -> None:
    assert snap_compare(_app(unreachable=True), terminal_size=(100, 24), run_before=_steps("3", clear=False))
