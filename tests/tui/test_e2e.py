"""The whole path through the TUI against the Hub double and the real core: search, open a model,
download it, see it in Local, train it for two steps, see the run in Runs with its metrics, delete it."""

from __future__ import annotations

import re

import asyncio
import os
import time

import pytest
from textual.widgets import DataTable, Input, Select

from hubmgr.tui import downloads as dl
from hubmgr.tui.app import HubmgrApp
from hubmgr.tui.screens.dialogs import ConfirmScreen, EvalDialog
from hubmgr.tui.screens.model import ModelScreen
from hubmgr.tui.screens.runs import RunDetailScreen
from tests.tui.fakes import plain_text, settle

pytestmark = pytest.mark.asyncio

SIZE = (120, 40)


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.2)


def _keys(table: DataTable) -> list[str]:
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


async def test_search_open_download_train_runs_delete(hub_server, tiny_bert, tmp_path) -> None:
    hub_server.add_repo(
        "acme/tiny-bert",
        folder=tiny_bert,
        pipeline_tag="text-classification",
        library_name="transformers",
        downloads=100,
        likes=3,
        card={"license": "mit"},
    )
    hub_server.add_repo("acme/other-model", {"README.md": "# Other\n"}, pipeline_tag="text-generation", downloads=5)
    data = tmp_path / "train.csv"
    rows = [("a good film", 1), ("a bad film", 0), ("great fun", 1), ("dull and slow", 0)] * 6
    data.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))

    app = HubmgrApp()  # the real backend: settings from the environment the fixtures set
    async with app.run_test(size=SIZE) as pilot:
        # -- browse: the first page, then a search
        await settle(app, pilot)
        results = app.screen.query_one("#results", DataTable)
        assert _keys(results) == ["acme/tiny-bert", "acme/other-model"]
        await pilot.press("slash", *"tiny", "enter")
        await settle(app, pilot)
        assert _keys(results) == ["acme/tiny-bert"]

        # -- model: card, files, parameters, fit
        results.focus()
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.details is not None, what="model details"
        )
        model = app.screen
        assert model.details.param_count and model.details.param_count > 0
        summary = plain_text(model.query_one("#model-summary"))
        assert "mit" in summary
        assert model.query_one("#files-table", DataTable).row_count >= 3
        assert model.query_one("#fit-table", DataTable).row_count >= 1

        # -- download it (safetensors only) and watch it finish
        await pilot.press("d")
        await wait_for(
            pilot, lambda: app.downloads and app.downloads[0].status not in (dl.QUEUED, dl.RUNNING), what="download"
        )
        item = app.downloads[0]
        assert item.status == dl.DONE, item.error
        assert item.total_bytes > 0 and item.done_bytes == item.total_bytes
        await pilot.press("2")
        await settle(app, pilot)
        assert "done" in plain_text(app.screen.query_one(f"#download-{item.id} .dl-title"))

        # -- local: it is in the cache
        await pilot.press("3")
        await settle(app, pilot)
        cache = app.screen.query_one("#cache-table", DataTable)
        await wait_for(pilot, lambda: "acme/tiny-bert" in _keys(cache), what="cache listing")

        # -- train it from Local for two steps
        cache.focus()
        cache.move_cursor(row=_keys(cache).index("acme/tiny-bert"))
        await pilot.press("t")
        await settle(app, pilot)
        train = app.screen
        assert app.current_mode == "train"
        assert train.query_one("#model-select", Select).value == "acme/tiny-bert"
        train.query_one("#task-select", Select).value = "text-classification"
        await pilot.pause(0.2)
        train.query_one("#data-path", Input).value = str(data)
        train.query_one("#cfg-max_steps", Input).value = "2"
        train.query_one("#cfg-batch_size", Input).value = "8"
        train.query_one("#cfg-logging_steps", Input).value = "1"
        train.query_one("#cfg-eval_fraction", Input).value = "0.25"
        await pilot.press("ctrl+s")
        await wait_for(
            pilot,
            lambda: train.state is not None and train.state.status not in ("starting", "running"),
            timeout=240,
            what="training",
        )
        state = train.state
        assert state.status == "completed", state.error
        assert state.run_id
        assert state.total_steps == 2 and state.step == 2
        assert state.loss_points, "the loss curve got points"
        # the run was a process of its own, which outlives the app (the TUI never trains in-process)
        from hubmgr.runs.store import RunStore

        record = RunStore().get_run(state.run_id)
        assert record.pid and record.pid != os.getpid()

        # -- runs: the run with its metrics, and its curves
        await pilot.press("5")
        await settle(app, pilot)
        runs = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: state.run_id in _keys(runs), what="run listed")
        row = runs.get_row_at(_keys(runs).index(state.run_id))
        assert str(row[2]) == "completed"
        assert "accuracy" in str(row[[str(k.value) for k in runs.columns].index("metrics")])
        runs.focus()
        runs.move_cursor(row=_keys(runs).index(state.run_id))
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.history, what="run details"
        )
        detail = app.screen
        assert detail.query_one("#run-metrics", DataTable).row_count > 0
        assert {p.name for p in detail.history} >= {"loss"}
        # -- try the adapter on an input: its prediction beside the base model's (real model, real adapter)
        detail.query_one("#run-tabs").active = "tab-run-try"
        box = detail.query_one("#try-input", Input)
        box.value = "a wonderful movie"
        await box.action_submit()
        tried = detail.query_one("#try-table", DataTable)
        await wait_for(pilot, lambda: tried.row_count == 1, timeout=120, what="a prediction")
        base_cell, tuned_cell = (str(c) for c in tried.get_row_at(0)[1:])
        assert re.fullmatch(r"[01] \(\d\.\d\d\)", tuned_cell), tuned_cell
        assert re.fullmatch(r"[01] \(\d\.\d\d\)", base_cell), base_cell
        await pilot.press("escape")

        # -- compare: the base model against the run's adapter, side by side
        runs.focus()
        runs.move_cursor(row=_keys(runs).index(state.run_id))
        await pilot.press("space", "e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalDialog), what="the evaluation dialog")
        box = app.screen.query_one("#eval-data", Input)
        assert box.value == ""  # the run held out part of its training file: never proposed
        box.value = str(data)
        await pilot.press("enter")
        compare = app.screen.query_one("#compare-table", DataTable)
        await wait_for(pilot, lambda: compare.row_count == 2, timeout=180, what="evaluation")
        assert str(compare.get_row_at(0)[0]) == "base"
        assert "accuracy" in [str(c.label) for c in compare.columns.values()]

        # -- delete the cached repo (after confirming)
        await pilot.press("3")
        await settle(app, pilot)
        cache = app.screen.query_one("#cache-table", DataTable)
        cache.focus()
        cache.move_cursor(row=_keys(cache).index("acme/tiny-bert"))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: "acme/tiny-bert" not in _keys(cache), what="deletion")
        notes = [n.message for n in app._notifications]
        assert any("Deleted acme/tiny-bert" in m for m in notes)
        assert not any(n.severity == "error" for n in app._notifications), notes


async def test_unreachable_hub_double_leaves_local_train_runs_usable(hub_server, monkeypatch) -> None:
    from tests.conftest import set_endpoint

    set_endpoint(monkeypatch, "http://127.0.0.1:9")  # nothing listens there
    app = HubmgrApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.hub_offline), timeout=60, what="the offline banner")
        assert app.screen.query_one("OfflineBanner").display
        assert any(n.severity == "error" for n in app._notifications)
        for key, selector in (("3", "#cache-table"), ("5", "#runs-table")):
            await pilot.press(key)
            await settle(app, pilot)
            assert app.screen.query_one(selector, DataTable) is not None
        await pilot.press("4")
        await settle(app, pilot)
        assert app.screen.query_one("#task-select", Select).value == "text-classification"
        await asyncio.sleep(0)
        assert app.is_running
