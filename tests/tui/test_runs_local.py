"""Runs and Local: deleting, resuming and merging runs, the run detail (output folder, curves, metric
columns), the compare dialog's data, and Local's deletes (issue 14)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Select, Static

from hubmgr.config import Settings
from hubmgr.errors import UsageError
from hubmgr.runs.store import MetricPoint, RunStore
from hubmgr.tui.app import HubmgrApp
from hubmgr.tui.backend import Backend
from hubmgr.tui.format import column_numbers
from hubmgr.tui.screens.dialogs import ConfirmScreen, DeleteRunDialog, EvalDialog, MergeDialog
from hubmgr.tui.screens.runs import RunDetailScreen
from hubmgr.tui.widgets.chart import MetricsChart
from tests.tui.fakes import FakeBackend, plain_text, settle, wait_until

SIZE = (100, 30)


def _notes(app: HubmgrApp) -> list[tuple[str, str]]:
    return [(n.severity, n.message) for n in app._notifications]


async def _runs(app: HubmgrApp, pilot, row: int = 0) -> DataTable:
    await pilot.press("5")
    await settle(app, pilot)
    table = app.screen.query_one("#runs-table", DataTable)
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause(0.05)
    return table


def _run_ids(table: DataTable) -> list[str]:
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


# -- 7: delete, resume, merge ------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_failed_run_without_an_adapter_is_forgotten_after_a_confirmation(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        table = await _runs(app, pilot, row=2)  # 20250314-cccc: failed, no adapter
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DeleteRunDialog), what="the delete dialog")
        dialog = app.screen
        assert "no saved adapter" in plain_text(dialog.query_one(".dialog-text", Static))
        assert not dialog.query("#adapter") and not dialog.query("#both")
        await pilot.press("a")  # no adapter to delete: nothing happens
        assert app.screen is dialog
        await pilot.press("f")
        await settle(app, pilot)
        assert fake.deleted_runs == ["20250314-cccc"] and fake.deleted_adapters == []
        assert _run_ids(table) == ["20250314-aaaa", "20250314-bbbb"]
        assert ("information", "Forgot run 20250314-cccc.") in _notes(app)


@pytest.mark.asyncio
async def test_deleting_a_run_can_take_its_adapter_or_only_the_adapter(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        table = await _runs(app, pilot, row=0)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DeleteRunDialog), what="the delete dialog")
        assert "/runs/20250314-aaaa is deleted" in plain_text(app.screen.query_one(".dialog-text", Static))
        await pilot.press("n")  # cancel: nothing goes
        await settle(app, pilot)
        assert fake.deleted_runs == [] and fake.deleted_adapters == [] and table.row_count == 3
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DeleteRunDialog), what="the delete dialog")
        await pilot.press("a")  # the adapter only: the run stays in the history
        await settle(app, pilot)
        assert fake.deleted_adapters == ["/runs/20250314-aaaa"] and fake.deleted_runs == []
        table.move_cursor(row=1)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DeleteRunDialog), what="the delete dialog")
        await pilot.click("#both")
        await settle(app, pilot)
        assert fake.deleted_runs == ["20250314-bbbb"] and fake.deleted_adapters[-1] == "/runs/20250314-bbbb"
        assert _run_ids(table) == ["20250314-aaaa", "20250314-cccc"]


@pytest.mark.asyncio
async def test_a_running_run_is_not_deleted(fake: FakeBackend) -> None:
    fake.live_status["20250314-eeee"] = "running"
    original = fake.list_runs
    fake.list_runs = lambda: [fake._live_record("20250314-eeee", "running", "/runs/20250314-eeee"), *original()]
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=0)
        await pilot.press("d")
        await settle(app, pilot)
        assert not isinstance(app.screen, DeleteRunDialog)
        assert ("warning", "Run 20250314-eeee is still running; stop it first (s).") in _notes(app)


@pytest.mark.asyncio
async def test_resume_asks_first_and_says_from_where(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=2)  # failed at step 3, with a checkpoint
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the resume question")
        assert "checkpoint-3 in /runs/20250314-cccc.partial" in app.screen.question
        await pilot.press("n")
        await settle(app, pilot)
        assert fake.resumed == []
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the resume question")
        await pilot.press("y")
        await wait_until(pilot, lambda: fake.resumed == ["20250314-cccc"], what="the resume")
        await wait_until(pilot, lambda: app.current_mode == "train", what="Train to follow it")


@pytest.mark.asyncio
async def test_a_run_without_a_checkpoint_says_why_it_cannot_resume(fake: FakeBackend) -> None:
    fake.checkpoints.clear()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=2)
        await pilot.press("R")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmScreen) and fake.resumed == []
        errors = [m for sev, m in _notes(app) if sev == "error"]
        assert errors == ["Run 20250314-cccc saved no checkpoint before it stopped, so it cannot be resumed."]


@pytest.mark.asyncio
async def test_merge_asks_for_the_output_folder(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        table = await _runs(app, pilot, row=2)
        await pilot.press("m")  # no adapter: refused
        await settle(app, pilot)
        assert not isinstance(app.screen, MergeDialog)
        assert any(sev == "warning" and "no adapter to merge" in m for sev, m in _notes(app))
        table.move_cursor(row=0)
        await pilot.press("m")
        await settle(app, pilot)
        assert isinstance(app.screen, MergeDialog)
        box = app.screen.query_one("#merge-output", Input)
        assert box.value == "/runs/20250314-aaaa-merged"
        box.value = str(tmp_path)  # exists: the core refuses it in one sentence
        await pilot.click("#go")
        await settle(app, pilot)
        assert fake.merged == []
        assert any(sev == "error" and "already exists" in m for sev, m in _notes(app))
        await pilot.press("m")
        await settle(app, pilot)
        app.screen.query_one("#merge-output", Input).value = str(tmp_path / "merged")
        await pilot.click("#go")
        await settle(app, pilot)
        assert fake.merged == [("/runs/20250314-aaaa", str(tmp_path / "merged"), False)]
        assert any(f"Merged into {tmp_path / 'merged'}." == m for _, m in _notes(app))


def _real_backend(tmp_path) -> tuple[Backend, RunStore]:
    settings = Settings(endpoint="http://hub.invalid", offline=True, hub_cache=tmp_path / "hub", data_dir=tmp_path)
    return Backend(settings), RunStore(settings.runs_db)


def test_backend_deletes_through_the_run_store(tmp_path) -> None:
    backend, store = _real_backend(tmp_path)
    # a run that failed before it started: no output folder, no adapter
    store.create_run(run_id="r-early", task="text-classification", model="m", revision=None, config={}, output_dir=None)
    store.set_status("r-early", "failed", error="The data file does not exist.")
    backend.delete_run("r-early")
    assert [r.id for r in store.list_runs()] == []
    # a run with an adapter: the adapter and its folder go, the run stays (then goes too)
    adapter = tmp_path / "runs" / "r-done"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    store.create_run(
        run_id="r-done", task="text-classification", model="m", revision=None, config={}, output_dir=adapter
    )
    store.finish("r-done", status="completed", metrics={"accuracy": 0.9}, adapter_path=adapter)
    run = backend.get_run("r-done")
    assert backend.adapter_of(run) is not None
    backend.delete_run("r-done", forget_run=False, delete_adapter=True)
    assert not adapter.exists() and store.list_adapters() == [] and backend.adapter_of(run) is None
    assert [r.id for r in store.list_runs()] == ["r-done"]
    # a running run is refused, in one sentence
    store.create_run(run_id="r-live", task="t", model="m", revision=None, config={}, output_dir=None)
    with pytest.raises(UsageError, match="still running"):
        backend.delete_run("r-live")
    with pytest.raises(UsageError, match="still running"):
        backend.resume_point("r-live")


# -- 10: the compare dialog's data -----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_compare_defaults_to_the_eval_data_never_the_training_file(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=0)
        await pilot.press("e")  # the fixed runs have no eval data
        await settle(app, pilot)
        assert isinstance(app.screen, EvalDialog)
        assert app.screen.query_one("#eval-data", Input).value == ""
        assert "had no eval data" in plain_text(app.screen.query_one(".dialog-text", Static))
        await pilot.press("escape")
        await settle(app, pilot)
    original = fake._fixed_runs

    def with_eval_data():
        import dataclasses

        return [dataclasses.replace(r, config={**r.config, "eval_data": "/data/dev.csv"}) for r in original()]

    fake._fixed_runs = with_eval_data
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=0)
        await pilot.press("e")
        await settle(app, pilot)
        assert app.screen.query_one("#eval-data", Input).value == "/data/dev.csv"


# -- 9: the output folder that exists ----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_run_detail_shows_the_partial_folder_that_exists(fake: FakeBackend, tmp_path) -> None:
    out = tmp_path / "runs" / "20250314-cccc"
    (tmp_path / "runs" / "20250314-cccc.partial").mkdir(parents=True)
    original = fake._fixed_runs

    def runs():
        import dataclasses

        return [dataclasses.replace(r, output_dir=str(out)) if r.id == "20250314-cccc" else r for r in original()]

    fake._fixed_runs = runs
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=2)
        await pilot.press("enter")
        await settle(app, pilot)
        text = plain_text(app.screen.query_one("#run-summary", Static))
        assert f"{out}.partial (partial: the run failed)" in text
        await pilot.press("escape")
        await settle(app, pilot)
        await _runs(app, pilot, row=1)  # /runs/20250314-bbbb is on no disk
        await pilot.press("enter")
        await settle(app, pilot)
        assert "/runs/20250314-bbbb (not on disk)" in plain_text(app.screen.query_one("#run-summary", Static))
    out.mkdir()
    (tmp_path / "runs" / "20250314-cccc.partial").rmdir()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=2)
        await pilot.press("enter")
        await settle(app, pilot)
        text = plain_text(app.screen.query_one("#run-summary", Static))
        assert str(out) in text and "partial" not in text


# -- 8: curves and metric columns ---------------------------------------------------------------------------
def _eight_steps(run_id):
    pts = [MetricPoint(step, "train", "loss", 2.0 / step, 0.0) for step in range(1, 9)]
    return pts + [MetricPoint(8, "eval", "loss", 0.4, 0.0), MetricPoint(8, "eval", "accuracy", 0.8, 0.0)]


@pytest.mark.asyncio
async def test_curves_span_every_series_with_the_legend_under_the_plot(fake: FakeBackend) -> None:
    fake.metrics_history = _eight_steps
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=0)
        await pilot.press("enter")
        await settle(app, pilot)
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        detail.query_one("#run-tabs").active = "tab-run-curves"
        await settle(app, pilot)
        select = detail.query_one("#curve-metric", Select)
        assert [str(prompt) for prompt, _ in select._options] == ["accuracy", "loss"]  # no blank "metric"
        assert select.value == "loss"
        chart = detail.query_one("#run-chart", MetricsChart)
        assert set(chart.series) == {"train loss", "eval loss"}
        assert chart.x_range == (1.0, 8.0)  # the one eval point at step 8 does not narrow it to 7-9
        lines = str(chart.render()).splitlines()
        assert len(lines) == chart.size.height
        assert "train loss" in lines[-1] and "eval loss" in lines[-1]  # the legend: the last line...
        assert not any("train loss" in line or "eval loss" in line for line in lines[:-1])  # ...not on the data
        detail.query_one("#curve-metric", Select).value = "accuracy"
        await pilot.pause(0.1)
        assert chart.x_range == (7.0, 9.0) and set(chart.series) == {"eval accuracy"}


@pytest.mark.asyncio
async def test_a_run_without_history_offers_no_metric(fake: FakeBackend) -> None:
    fake.metrics_history = lambda run_id: []
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=0)
        await pilot.press("enter")
        await settle(app, pilot)
        select = app.screen.query_one("#curve-metric", Select)
        assert [str(prompt) for prompt, _ in select._options] == ["no metrics yet"]
        assert app.screen.query_one("#run-chart", MetricsChart).x_range is None


def test_metric_columns_have_fixed_decimals() -> None:
    assert column_numbers([0.875, 0.86, 0.41, 12.5]) == ["0.8750", "0.8600", "0.4100", "12.5000"]
    assert column_numbers([40.0, 60.0, None]) == ["40", "60", "-"]
    assert column_numbers([float("nan"), 1.5, "n/a"]) == ["nan", "1.5000", "n/a"]


@pytest.mark.asyncio
async def test_metric_tables_line_up_on_the_decimal_point(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _runs(app, pilot, row=0)
        await pilot.press("enter")
        await settle(app, pilot)
        metrics = app.screen.query_one("#run-metrics", DataTable)
        cells = [metrics.get_row_at(i)[1] for i in range(metrics.row_count)]
        assert [str(c) for c in cells] == ["0.8750", "0.8600", "0.4100"]
        assert all(c.justify == "right" for c in cells)
        tables = app.screen.query_one("#run-tables", DataTable)
        assert [[str(c) for c in tables.get_row_at(i)] for i in range(tables.row_count)] == [
            ["negative", "0.8400", "40"],
            ["positive", "0.8800", "60"],
        ]
        await pilot.press("escape")
        await settle(app, pilot)
        screen = app.screen
        screen.marked = {"20250314-aaaa", "20250314-bbbb"}
        screen._start_eval("acme/tiny-bert", "text-classification", ["/a", "/b"], ["a", "b"], "/data/dev.csv", "eval")
        await settle(app, pilot)
        compare = screen.query_one("#compare-table", DataTable)
        assert [str(compare.get_row_at(i)[1]) for i in range(3)] == ["0.5000", "0.8000", "0.8500"]


# -- 11: deleting a base model that adapters need -------------------------------------------------------------
@pytest.mark.asyncio
async def test_deleting_a_base_model_names_the_adapters_that_need_it(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#cache-table", DataTable)
        table.focus()
        keys = [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]
        table.move_cursor(row=keys.index("acme/tiny-bert"))
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the delete question")
        question = app.screen.question
        assert "2 adapters were trained on it (20250314-aaaa, 20250314-bbbb)" in question
        assert "fails until it is downloaded again" in question
        await pilot.press("n")
        await settle(app, pilot)
        assert fake.deleted == []
        table.move_cursor(row=keys.index("acme/tiny-gpt2"))  # no adapter on it: the plain question
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the delete question")
        assert app.screen.question == "Delete acme/tiny-gpt2 (20.0 MB) from the cache?"
        await pilot.press("y")
        await settle(app, pilot)
        assert fake.deleted == ["acme/tiny-gpt2"]


def test_adapters_on_a_repo_match_its_id_or_its_cache_folder(tmp_path) -> None:
    backend, store = _real_backend(tmp_path)
    for run_id, base in (
        ("r1", "acme/base"),
        ("r2", str(tmp_path / "hub/models--acme--base/snapshots/abc")),
        ("r3", "x/y"),
    ):
        folder = tmp_path / run_id
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")
        store.add_adapter(folder, adapter_id=run_id, base_model=base)
    assert sorted(a.id for a in backend.adapters_on("acme/base")) == ["r1", "r2"]


# -- 16: the Runs table at 80 columns ------------------------------------------------------------------------
def _long_runs(fake: FakeBackend):
    import dataclasses

    original = fake._fixed_runs

    def runs():
        return [
            dataclasses.replace(r, id=f"{r.id}-153012-ab12", model=f"/home/someone/models/{r.model}/snapshot")
            for r in original()
        ]

    return runs


@pytest.mark.asyncio
async def test_runs_table_keeps_metrics_and_model_on_screen_at_80_columns(fake: FakeBackend) -> None:
    fake._fixed_runs = _long_runs(fake)
    app = HubmgrApp(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await _runs(app, pilot)
        keys = [str(k.value) for k in table.columns]
        assert "metrics" in keys and "model" in keys
        assert "task" not in keys  # dropped first
        widths = sum(c.get_render_width(table) for c in table.columns.values())
        assert widths <= table.size.width, (widths, table.size.width)
        assert table.max_scroll_x == 0
        row = [str(c) for c in table.get_row_at(0)]
        assert "accuracy 0.875" in row[keys.index("metrics")]
        await pilot.resize_terminal(160, 40)  # wide again: every column
        await settle(app, pilot)
        assert [str(k.value) for k in table.columns] == ["mark", "id", "status", "created", "task", "metrics", "model"]
        assert "2025-03-14 09:26" in [str(c) for c in table.get_row_at(0)]


# -- 13: filter as you type ------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_runs_filter_as_you_type(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        table = await _runs(app, pilot)
        await pilot.press("slash")
        bar = app.screen.query_one("#runs-filter", Input)
        assert bar.display and app.focused is bar
        await pilot.press(*"gpt2")
        await pilot.pause(0.1)
        assert _run_ids(table) == ["20250314-cccc"]
        assert "1 of 3 runs match “gpt2”" in plain_text(app.screen.query_one("#runs-summary", Static))
        await pilot.press("enter")  # back to the table, the filter kept
        await pilot.pause(0.1)
        assert app.focused is table and _run_ids(table) == ["20250314-cccc"]
        await pilot.press("slash", "backspace", "backspace", "backspace", "backspace", *"completed bbbb")
        await pilot.pause(0.1)
        assert _run_ids(table) == ["20250314-bbbb"]
        await pilot.press("escape")  # clears it and leaves it
        await pilot.pause(0.1)
        assert not bar.display and app.focused is table and table.row_count == 3
        assert plain_text(app.screen.query_one("#runs-summary", Static)).startswith("3 runs")


@pytest.mark.asyncio
async def test_local_filter_as_you_type(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#cache-table", DataTable)
        table.focus()
        await pilot.press("slash", *"BERT")
        await pilot.pause(0.1)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == ["acme/tiny-bert"]
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert table.row_count == 2 and app.focused is table


# -- 13: verify offers a repair ----------------------------------------------------------------------------------
def _footer(app: HubmgrApp) -> set[str]:
    return {b.binding.description for b in app.screen.active_bindings.values() if b.binding.show and b.enabled}


@pytest.mark.asyncio
async def test_local_verify_then_repair_queues_exactly_the_damaged_files(fake: FakeBackend) -> None:
    from hubmgr.tui import downloads as dl

    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        table = app.screen.query_one("#cache-table", DataTable)
        table.focus()
        assert "Repair" not in _footer(app)  # nothing verified yet: nothing to repair
        await pilot.press("f")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("v")
        await settle(app, pilot)
        panel = plain_text(app.screen.query_one("#verify-panel", Static))
        assert "model.safetensors" in panel and "Press f to download the damaged files again" in panel
        assert "Repair" in _footer(app)
        await pilot.press("f")
        assert isinstance(app.screen, ConfirmScreen)
        assert "1 damaged or missing file of acme/tiny-gpt2" in app.screen.question
        await pilot.press("n")
        await settle(app, pilot)
        assert fake.repairs == [] and app.downloads == []
        await pilot.press("f", "y")
        await settle(app, pilot)
        assert fake.repairs == [("acme/tiny-gpt2", [("0" * 40, "model.safetensors")])]
        (item,) = app.downloads
        assert item.repo_id == "acme/tiny-gpt2" and item.revision == "0" * 40
        assert item.include == ["model.safetensors"] and not item.allow_pickle
        await wait_until(pilot, lambda: item.status == dl.DONE, what="the repair download")
        assert "Repair" not in _footer(app)  # repaired: the key goes
        panel = plain_text(app.screen.query_one("#verify-panel", Static))
        assert "Repairing acme/tiny-gpt2: 1 file queued to download again" in panel


@pytest.mark.asyncio
async def test_local_repair_needs_the_hub_and_says_so(tmp_path) -> None:
    for fake in (FakeBackend(tmp=tmp_path, offline=True), FakeBackend(tmp=tmp_path, unreachable=True)):
        app = HubmgrApp(fake)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            await settle(app, pilot)
            app.screen.query_one("#cache-table", DataTable).focus()
            await pilot.press("v")
            await settle(app, pilot)
            await pilot.press("f")
            if isinstance(app.screen, ConfirmScreen):
                await pilot.press("y")
            await settle(app, pilot)
            assert app.downloads == [] and fake.repairs == []
            notes = [msg for _sev, msg in _notes(app)]
            assert any("needs the Hub" in msg and "nothing was removed" in msg for msg in notes), notes
            assert "Repair" in _footer(app)  # still damaged: it can be tried again
