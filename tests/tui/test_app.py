"""Pilot tests of every screen against a fake backend with fixed data (fast: no network, no torch)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Checkbox, DataTable, Input, Select, Static

from hubmgr.errors import DataError
from hubmgr.tui import downloads as dl
from hubmgr.tui.app import HubmgrApp, OFFLINE_REASON
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.screens.dialogs import ConfirmScreen, EvalDialog, HelpScreen
from hubmgr.tui.screens.model import ModelScreen
from hubmgr.tui.screens.runs import RunDetailScreen
from hubmgr.tui.widgets.chart import MetricsChart
from tests.tui.fakes import FakeBackend, plain_text, settle, wait_until

pytestmark = pytest.mark.asyncio

SIZE = (100, 30)


def _text(app: HubmgrApp, selector: str) -> str:
    return plain_text(app.screen.query_one(selector, Static))


def _palette_shows(app: HubmgrApp, text: str) -> bool:
    from textual.command import CommandList

    lists = app.screen.query(CommandList)
    if not lists:
        return False
    options = lists.first()
    return options.option_count > 0 and text in str(options.get_option_at_index(0).prompt)


def _notes(app: HubmgrApp) -> list[tuple[str, str]]:
    return [(n.severity, n.message) for n in app._notifications]


async def test_number_keys_switch_screens_and_help_opens(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "browse"
        for key, mode in zip("234561", ["downloads", "local", "train", "runs", "plugins", "browse"]):
            await pilot.press(key)
            await settle(app, pilot)
            assert app.current_mode == mode
            assert isinstance(app.screen, MainScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        # typing a digit in the search box types it; it does not switch screens
        await pilot.press("slash", "3")
        assert app.current_mode == "browse"
        assert app.screen.query_one("#search", Input).value == "3"


async def test_clicking_a_tab_switches_screens(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.click("#nav-local")
        await settle(app, pilot)
        assert app.current_mode == "local"
        await pilot.click("#nav-runs")
        await settle(app, pilot)
        assert app.current_mode == "runs"


async def test_command_palette_runs_app_actions(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"go to local")
        await wait_until(pilot, lambda: _palette_shows(app, "Go to Local"), what="the palette hit")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.current_mode == "local"
        # "Open model owner/name" comes from the query itself
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"acme/model-007")
        await wait_until(pilot, lambda: _palette_shows(app, "Open model acme/model-007"), what="the palette hit")
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ModelScreen)
        assert app.screen.repo_id == "acme/model-007"


async def test_browse_searches_filters_and_loads_more_near_the_end(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#results", DataTable)
        assert table.row_count == 30
        # the task filter offers the registered tasks' pipeline tags
        task_select = app.screen.query_one("#task-filter", Select)
        tags = [value for _, value in task_select._options if value is not Select.NULL]
        assert "text-classification" in tags and "text-generation" in tags
        # scrolling to the end (mouse wheel, scroll bar) loads the next page
        table.scroll_end(animate=False)
        await settle(app, pilot)
        assert table.row_count == 60
        # so does the cursor nearing the last row, until there is no more
        table.focus()
        await pilot.press("end")
        await settle(app, pilot)
        assert table.row_count == 75
        assert "75 models" in _text(app, "#results-status")
        # a filter runs a new search with it
        task_select.value = "text-generation"
        await settle(app, pilot)
        assert fake.searches[-1]["task"] == "text-generation"
        assert table.row_count == 30
        # typing a query and Enter searches it
        await pilot.press("slash", *"model-01", "enter")
        await settle(app, pilot)
        assert fake.searches[-1]["query"] == "model-01"
        assert table.row_count == 10


async def open_first_model(app: HubmgrApp, pilot) -> ModelScreen:
    """From Browse, open the first search result's Model screen."""
    await settle(app, pilot)
    app.screen.query_one("#results", DataTable).focus()
    await pilot.press("down", "enter")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ModelScreen)
    return screen


async def test_model_screen_shows_card_files_fit_and_queues_a_download(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_first_model(app, pilot)
        assert screen.repo_id == "acme/model-001"
        summary = plain_text(screen.query_one("#model-summary", Static))
        assert "4.4M" in summary and "F32" in summary and "apache-2.0" in summary
        fit = screen.query_one("#fit-table", DataTable)
        verdicts = [str(fit.get_row_at(i)[3]) for i in range(fit.row_count)]
        assert verdicts == ["fits", "tight"]
        assert "620.0 MB" in plain_text(screen.query_one("#fit-summary", Static))
        assert screen.query_one("#files-table", DataTable).row_count == 5
        # safetensors only leaves the pickle weights out of the preview
        assert "4 of 5 files" in plain_text(screen.query_one("#download-preview", Static))
        screen.query_one("#preset", Select).value = "custom"
        await pilot.pause(0.1)
        screen.query_one("#include", Input).value = "*.json"
        await pilot.pause(0.1)
        assert "2 of 5 files" in plain_text(screen.query_one("#download-preview", Static))
        screen.query_one("#preset", Select).value = "safetensors"
        await pilot.pause(0.1)
        await pilot.press("d")
        await settle(app, pilot)
        assert fake.downloads == ["acme/model-001"]
        item = app.downloads[0]
        assert item.status == dl.DONE
        assert "*.bin" in (item.exclude or [])
        await pilot.press("escape")
        assert app.screen.query_one("#results", DataTable)


async def test_download_preview_promises_what_the_download_fetches(fake: FakeBackend) -> None:
    # The fake repo has model.safetensors and pytorch_model.bin: with pickle allowed the download still takes
    # the safetensors copy only, and the preview must say so (it used to count the pickle copy too).
    from hubmgr.hub.files import select_files

    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_first_model(app, pilot)
        preview = screen.query_one("#download-preview", Static)
        screen.query_one("#preset", Select).value = "custom"
        await pilot.pause(0.1)
        screen.query_one("#allow-pickle", Checkbox).value = True
        await pilot.pause(0.1)
        paths = [f.path for f in screen.details.files]
        fetched, _ = select_files(paths, allow_pickle=True)
        assert "pytorch_model.bin" not in fetched
        assert f"{len(fetched)} of 5 files" in plain_text(preview) == "Will fetch 4 of 5 files, about 18.1 MB."
        # naming the pickle file takes it too, as the download does
        screen.query_one("#include", Input).value = "*"
        await pilot.pause(0.1)
        assert "4 of 5 files" in plain_text(preview)
        screen.query_one("#include", Input).value = "* pytorch_model.bin"
        await pilot.pause(0.1)
        assert "5 of 5 files" in plain_text(preview)
        # only pickle weights left and pickle not allowed: the download refuses, and the preview says it
        screen.query_one("#allow-pickle", Checkbox).value = False
        screen.query_one("#include", Input).value = "*.bin *.json"
        await pilot.pause(0.1)
        assert plain_text(preview).startswith("Will fetch nothing: the repo has only pickle weights")


async def test_downloads_show_progress_cancel_and_resume(fake: FakeBackend) -> None:
    fake.download_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=1)
        item = app.enqueue_download("acme/model-002")
        queued = app.enqueue_download("acme/model-003")
        await pilot.press("2")
        await wait_until(
            pilot, lambda: item.total_bytes > 0 and app.screen.query(f"#download-{item.id} FileRow"), what="progress"
        )
        assert item.status == dl.RUNNING and queued.status == dl.QUEUED
        card = app.screen.query_one(f"#download-{item.id}")
        stats = plain_text(card.query_one(".dl-stats", Static))
        assert "500 B / 2.0 KB" in stats and "1.0 KB/s" in stats and "ETA 0:02" in stats
        assert card.query(".dl-files FileRow")
        # cancel the running one: it stops as cancelled and the next one starts
        card.focus()
        await pilot.press("c")
        await wait_until(pilot, lambda: item.status == dl.CANCELLED, what="the cancel")
        assert queued.status == dl.RUNNING
        fake.download_gate.set()
        await settle(app, pilot)
        assert queued.status == dl.DONE
        # resume the cancelled one
        app.screen.query_one(f"#download-{item.id}").focus()
        await pilot.press("r")
        await settle(app, pilot)
        assert item.status == dl.DONE
        assert fake.downloads == ["acme/model-002", "acme/model-003", "acme/model-002"]
        await pilot.press("X")
        await pilot.pause(0.2)
        assert app.downloads == []


async def test_a_failed_download_says_why_and_can_be_resumed(fake: FakeBackend) -> None:
    fake.unreachable = True
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        item = app.enqueue_download("acme/model-002")
        await settle(app, pilot)
        assert item.status == dl.FAILED
        assert "is unreachable" in (item.error or "")
        assert any(sev == "error" and "is unreachable" in msg for sev, msg in _notes(app))
        fake.unreachable = False
        app.resume_download(item.id)
        await settle(app, pilot)
        assert item.status == dl.DONE


async def test_local_sorts_deletes_with_confirmation_and_verifies(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        screen = app.screen
        table = screen.query_one("#cache-table", DataTable)
        keys = [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]
        assert keys == ["acme/tiny-gpt2", "acme/tiny-bert"]  # biggest first
        await pilot.click("#cache-table", offset=(3, 0))  # the Repo column header
        await pilot.pause(0.2)
        assert screen.sort_key == "repo" and not screen.sort_reverse
        keys = [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]
        assert keys == ["acme/tiny-bert", "acme/tiny-gpt2"]
        await pilot.press("s")  # keyboard: next column
        assert screen.sort_key == "size"
        # verify the selected repo: the damaged file is named
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("v")
        await settle(app, pilot)
        panel = plain_text(screen.query_one("#verify-panel", Static))
        assert "1 of 2 files" in panel and "model.safetensors" in panel and "sha256 mismatch" in panel
        # delete asks first; "n" keeps it
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert fake.deleted == []
        await pilot.press("d")
        await pilot.press("y")
        await settle(app, pilot)
        assert fake.deleted == ["acme/tiny-gpt2"]
        assert table.row_count == 1


async def test_train_form_starts_a_run_and_shows_it_live(fake: FakeBackend, tmp_path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("text,label\ngood,1\nbad,0\n")
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        screen = app.screen
        assert screen.query_one("#task-select", Select).value == "text-classification"
        # the task's options and TrainConfig fields become form inputs with their help
        assert screen.query_one("#opt-text_column", Input).value == "text"
        assert screen.query_one("#cfg-lora_r", Input).value == "8"
        assert isinstance(screen.query_one("#cfg-use_dora"), Checkbox)
        assert screen.query_one("#cfg-device", Select).value == "auto"
        # a bad value is refused with one sentence in the form's words, nothing starts
        screen.query_one("#model-select", Select).value = "acme/tiny-bert"
        screen.query_one("#data-path", Input).value = str(data)
        screen.query_one("#cfg-lora_r", Input).value = "eight"
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert any(sev == "error" and "Lora r must be a whole number" in msg for sev, msg in _notes(app))
        assert screen.state is None
        screen.query_one("#cfg-lora_r", Input).value = "4"
        screen.query_one("#cfg-max_steps", Input).value = "4"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        state = screen.state
        assert state is not None and state.status == "completed"
        assert state.run_id == "20250314-dddd"
        assert state.loss_points[-1] == (4, 0.25)
        assert screen.query_one("#loss-chart", MetricsChart).series["loss"][0] == [1.0, 2.0, 3.0, 4.0]
        assert screen.query_one("#eval-table", DataTable).row_count == 1
        status = plain_text(screen.query_one("#train-status", Static))
        assert "completed" in status and "4/4" in status


async def _start_a_run(app, pilot):
    """Start a run from the Train screen (the fake's, held at its first step by ``train_gate``)."""
    await pilot.press("4")
    await settle(app, pilot)
    screen = app.screen
    # a model folder and a data file that exist: the form checks them before it starts
    root = Path(app.backend.settings().hub_cache).parent
    model = root / "models" / "tiny"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    (root / "train.csv").write_text("text,label\ngood,1\nbad,0\n")
    screen.query_one("#model-path", Input).value = str(model)
    screen.query_one("#data-path", Input).value = str(root / "train.csv")
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: screen.state is not None and screen.state.step == 1, what="the first step")
    return screen


async def test_cancelling_a_run_keeps_the_checkpoint(fake: FakeBackend) -> None:
    fake.train_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _start_a_run(app, pilot)
        assert screen.running
        assert app.screen.query_one("#cancel").has_focus
        await pilot.press("c")
        await settle(app, pilot)
        assert screen.state.status == "cancelled"
        assert screen.state.output_dir == "/runs/20250314-dddd.partial"
        assert any(sev == "warning" and "hubmgr runs resume 20250314-dddd" in msg for sev, msg in _notes(app))
        assert "cancelled" in _text(app, "#train-status")


async def test_quitting_during_a_run_asks_and_keeps_it_going(fake: FakeBackend) -> None:
    fake.train_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _start_a_run(app, pilot)
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        from hubmgr.tui.screens.dialogs import QuitDialog

        assert isinstance(app.screen, QuitDialog)
        assert "training run 20250314-dddd" in plain_text(app.screen.query_one(".dialog-text"))
        await pilot.press("escape")  # cancel: nothing happens
        await pilot.pause(0.1)
        assert not isinstance(app.screen, QuitDialog) and screen.running
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        await pilot.press("k")  # keep it running: the app quits at once, the run is not asked to stop
        await pilot.pause(0.3)
    assert not fake.stop_requested.is_set() and fake.live_status["20250314-dddd"] == "running"
    assert app.return_code == 0


async def test_quitting_during_a_run_can_stop_it_first(fake: FakeBackend) -> None:
    fake.train_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _start_a_run(app, pilot)
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        await pilot.press("s")
        await pilot.pause(0.05)
        from hubmgr.tui.screens.dialogs import QuitDialog

        if isinstance(app.screen, QuitDialog):  # it says what it does while it stops
            assert "Stop" in plain_text(app.screen.query_one("#quit-progress"))
        await wait_until(
            pilot,
            lambda: not app.is_running or fake.live_status.get("20250314-dddd") == "cancelled",
            what="the run to stop",
        )
    assert fake.stop_requested.is_set() and fake.live_status["20250314-dddd"] == "cancelled"


async def test_runs_screen_attaches_to_a_running_run(fake: FakeBackend) -> None:
    fake.train_gate = threading.Event()
    fake.live_status["20250314-eeee"] = "running"
    original = fake.list_runs

    def list_runs():
        return [
            fake._live_record("20250314-eeee", fake.live_status["20250314-eeee"], "/runs/20250314-eeee"),
            *original(),
        ]

    fake.list_runs = list_runs
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await settle(app, pilot)
        await pilot.press("a")
        await wait_until(
            pilot,
            lambda: app.current_mode == "train" and fake.followed == ["20250314-eeee"],
            what="Train to follow the run",
        )
        screen = app.screen
        await wait_until(pilot, lambda: screen.state is not None and screen.state.step == 1, what="its first step")
        assert screen.state.run_id == "20250314-eeee" and screen.running
        fake.train_gate.set()
        await settle(app, pilot)
        assert screen.state.status == "completed"


async def test_local_hands_a_model_to_train(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#cache-table", DataTable)
        table.move_cursor(row=1)
        await pilot.press("t")
        await settle(app, pilot)
        assert app.current_mode == "train"
        assert app.screen.query_one("#model-select", Select).value == "acme/tiny-bert"


async def test_runs_open_a_run_and_compare_adapters(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await settle(app, pilot)
        table = app.screen.query_one("#runs-table", DataTable)
        assert table.row_count == 3
        metrics_column = [str(k.value) for k in table.columns].index("metrics")  # Task goes on narrow screens
        assert "accuracy 0.875" in str(table.get_row_at(0)[metrics_column])
        # open the first run: summary, metrics, curves, config
        table.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        assert detail.query_one("#run-metrics", DataTable).row_count == 3
        chart = detail.query_one("#run-chart", MetricsChart)
        assert set(chart.series) == {"train loss", "eval loss"}
        detail.query_one("#curve-metric", Select).value = "accuracy"
        await pilot.pause(0.1)
        assert set(chart.series) == {"eval accuracy"}
        config = detail.query_one("#run-config", DataTable)
        assert "options.text_column" in [str(config.get_row_at(i)[0]) for i in range(config.row_count)]
        await pilot.press("escape")
        # mark two adapters of one base and evaluate them side by side
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("space", "space")
        assert app.screen.marked == {"20250314-aaaa", "20250314-bbbb"}
        await pilot.press("space")  # the failed run has no adapter: refused
        assert "20250314-cccc" not in app.screen.marked
        await pilot.press("e")
        await pilot.pause(0.2)
        assert isinstance(app.screen, EvalDialog)
        box = app.screen.query_one("#eval-data", Input)
        assert box.value == ""  # the runs had no eval data; never the training file
        box.value = "/data/eval.csv"
        await pilot.press("enter")
        await settle(app, pilot)
        base, adapters, task, data, split = fake.evaluated[-1]
        assert base == "acme/tiny-bert" and task == "text-classification"
        assert adapters == ("/runs/20250314-aaaa", "/runs/20250314-bbbb")
        compare = app.screen.query_one("#compare-table", DataTable)
        assert compare.row_count == 3
        assert [str(compare.get_row_at(i)[0]) for i in range(3)] == ["base", "20250314-aaaa", "20250314-bbbb"]


async def test_unreachable_hub_shows_a_banner_and_the_rest_keeps_working(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path, unreachable=True)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "unreachable" in app.hub_offline
        banner = app.screen.query_one("OfflineBanner")
        assert banner.display and "Local, Train and Runs keep working" in plain_text(banner)
        assert any(sev == "error" and "is unreachable" in msg for sev, msg in _notes(app))
        # the cached models stand in for the results, and a line says why
        assert "the Hub is unreachable: these are the 2 cached models" in _text(app, "#results-status")
        assert app.screen.query_one("#results", DataTable).row_count == 2
        for key, selector, rows in (("3", "#cache-table", 2), ("5", "#runs-table", 3)):
            await pilot.press(key)
            await settle(app, pilot)
            assert app.screen.query_one(selector, DataTable).row_count == rows
            assert app.screen.query_one("OfflineBanner").display
        await pilot.press("4")
        await settle(app, pilot)
        assert app.screen.query_one("#task-select", Select).value == "text-classification"
        # the Hub answers again: a new search drops the banner
        fake.unreachable = False
        await pilot.press("1", "f5")
        await settle(app, pilot)
        assert app.hub_offline == ""
        assert app.screen.query_one("#results", DataTable).row_count == 30


async def test_offline_mode_does_not_search(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path, offline=True)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.hub_offline == OFFLINE_REASON
        assert fake.searches == []
        assert "Offline" in _text(app, "#results-status") or "offline" in _text(app, "#results-status")


def _rows(app: HubmgrApp) -> dict[str, str]:
    """Browse's rows: repo id -> its Local mark."""
    table = app.screen.query_one("#results", DataTable)
    return {str(key.value): str(table.get_cell(key, "local")) for key in table.rows}


async def test_browse_marks_the_cached_results_and_refreshes_the_marks(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path)
    fake.cached += ["acme/model-001", "acme/model-002"]
    fake.incomplete["acme/model-002"] = (["model.safetensors"], 1000, 0)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        rows = _rows(app)
        assert rows["acme/model-001"] == "✓ cached" and rows["acme/model-002"] == "partial"
        assert rows["acme/model-000"] == "" and rows["acme/model-003"] == ""
        # a download finishes (the app publishes cache_signal): the marks follow without a new search
        searches = len(fake.searches)
        fake.cached.append("acme/model-003")
        del fake.incomplete["acme/model-002"]
        app.cache_signal.publish(None)
        await settle(app, pilot)
        rows = _rows(app)
        assert rows["acme/model-003"] == "✓ cached" and rows["acme/model-002"] == "✓ cached"
        assert len(fake.searches) == searches


async def test_browse_offline_lists_the_cached_models_filtered_and_opens_them(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path, offline=True)
    fake.incomplete["acme/tiny-gpt2"] = (["model.safetensors"], 1000, 0)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert fake.searches == []
        assert _rows(app) == {"acme/tiny-bert": "✓ cached", "acme/tiny-gpt2": "partial"}
        status = _text(app, "#results-status")
        assert "offline mode (HF_HUB_OFFLINE) is on: these are the 2 cached models" in status
        app.screen.query_one("#search", Input).value = "GPT"
        await pilot.press("slash", "enter")
        await settle(app, pilot)
        assert list(_rows(app)) == ["acme/tiny-gpt2"]
        assert "the 1 cached model matching “GPT”" in _text(app, "#results-status")
        app.screen.query_one("#search", Input).value = "nothing-like-it"
        await pilot.press("slash", "enter")
        await settle(app, pilot)
        assert _rows(app) == {} and "no cached model matches “nothing-like-it”" in _text(app, "#results-status")
        app.screen.query_one("#search", Input).value = ""
        await pilot.press("slash", "enter")
        await settle(app, pilot)
        await pilot.press("enter")  # the first cached model opens its page
        await settle(app, pilot)
        assert isinstance(app.screen, ModelScreen)
        assert fake.searches == []


async def test_browse_unreachable_lists_the_cached_models_until_the_hub_answers(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path, unreachable=True)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert list(_rows(app)) == ["acme/tiny-bert", "acme/tiny-gpt2"]
        assert "F5 tries the Hub again" in _text(app, "#results-status")
        fake.unreachable = False
        await pilot.press("f5")
        await settle(app, pilot)
        assert app.hub_offline == ""
        assert len(_rows(app)) == 30 and "30 models" in _text(app, "#results-status")


async def test_a_failing_plugin_is_listed_with_its_error_and_the_app_works(fake: FakeBackend) -> None:
    from hubmgr.hookspecs import hookimpl
    from hubmgr.plugins import registered

    class Broken:
        @hookimpl
        def register_tasks(self, register):
            raise RuntimeError("boom in register_tasks")

    with registered(Broken(), name="broken-plugin"):
        app = HubmgrApp(fake)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("6")
            await settle(app, pilot)
            table = app.screen.query_one("#plugins-table", DataTable)
            rows = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[-1]) for i in range(table.row_count)}
            assert rows["broken-plugin"] == "failed"
            assert rows["text_classification"] == "ok"
            errors = plain_text(app.screen.query_one("#plugin-errors", Static))
            assert "broken-plugin" in errors and "boom in register_tasks" in errors
            tasks = app.screen.query_one("#tasks-table", DataTable)
            names = {str(tasks.get_row_at(i)[0]) for i in range(tasks.row_count)}
            assert {"text-classification", "token-classification", "causal-lm", "image-classification"} <= names
            await pilot.press("4")
            await settle(app, pilot)
            assert app.screen.query_one("#task-select", Select).value == "text-classification"


async def test_unexpected_errors_in_workers_become_notifications(fake: FakeBackend) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("something odd")

    fake.list_cached = explode  # type: ignore[method-assign]
    fake.list_runs = lambda: (_ for _ in ()).throw(DataError("The run registry is unreadable."))  # type: ignore[method-assign]
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        for key in "35":
            await pilot.press(key)
            await settle(app, pilot)
        notes = _notes(app)
        assert ("error", "Unexpected RuntimeError: something odd") in notes
        assert ("error", "The run registry is unreadable.") in notes
        assert app.is_running
        await pilot.press("1")
        await settle(app, pilot)
        assert app.screen.query_one("#results", DataTable).row_count == 30


async def _open_run(app: HubmgrApp, pilot, row: int) -> None:
    await pilot.press("5")
    await settle(app, pilot)
    table = app.screen.query_one("#runs-table", DataTable)
    table.focus()
    table.move_cursor(row=row)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_run_detail_try_tab_predicts_with_and_without_the_adapter(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _open_run(app, pilot, 0)
        detail = app.screen
        assert isinstance(detail, RunDetailScreen) and detail.run_id == "20250314-aaaa"
        detail.query_one("#run-tabs").active = "tab-run-try"
        await pilot.pause(0.1)
        box = detail.query_one("#try-input", Input)
        box.focus()
        await pilot.press(*"great film 5")  # digits go into the box, not to the screen switcher
        assert box.value == "great film 5" and app.screen is detail
        await pilot.press("enter")
        table = detail.query_one("#try-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="a prediction")
        assert fake.predicted[-1] == ("/runs/20250314-aaaa", ("great film 5",), True)
        assert [str(c) for c in table.get_row_at(0)] == ["great film 5", "negative (0.51)", "positive (0.90)"]
        assert box.value == ""
        # a failure is shown on the screen, the app goes on
        box.value = "crash please"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Prediction failed" in _text(app, "#try-status"), what="the error")
        assert "does not fit the base model" in _text(app, "#try-status") and table.row_count == 1


async def test_run_detail_says_why_the_run_stopped(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _open_run(app, pilot, 0)
        await wait_until(pilot, lambda: "Stopped" in _text(app, "#run-summary"), what="the run summary")
        summary = _text(app, "#run-summary")
        assert "stopped improving after epoch 2.0" in " ".join(summary.split())
        assert "Note" in summary and "still improving" in summary
        # the task's per-label metrics: a row per label, a column per metric
        tables = app.screen.query_one("#run-tables", DataTable)
        assert tables.display and tables.row_count == 2
        assert [str(c.label) for c in tables.columns.values()] == ["Label", "f1_per_label", "support"]
        assert [str(cell) for cell in tables.get_row_at(1)] == ["positive", "0.8800", "60"]


async def test_run_detail_hides_the_per_label_table_when_the_task_gave_none(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _open_run(app, pilot, 1)
        await wait_until(pilot, lambda: app.screen.run is not None, what="the run details")
        assert app.screen.run.id == "20250314-bbbb"
        assert not app.screen.query_one("#run-tables", DataTable).display
        assert not app.screen.query_one("#run-tables-label").display


async def test_run_without_an_adapter_cannot_be_tried(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _open_run(app, pilot, 2)
        assert app.screen.run_id == "20250314-cccc"
        assert app.screen.query_one("#try-input", Input).disabled
        assert "no adapter" in _text(app, "#try-status")
