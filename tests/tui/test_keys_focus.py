"""Keys, focus, help and palette (issue 14): typing goes to the focused field and Esc leaves it first;
whatever has the focus is plainly marked and is what the keys act on; Help and the palette list the
current screen's keys; footers list only keys that apply; the Plugins screen shows a plugin's details."""

from __future__ import annotations

import pytest
from textual.color import Color
from textual.widgets import DataTable, Input, Select

from hubmgr.tui import downloads as dl
from hubmgr.tui.app import HubmgrApp
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.screens.dialogs import ConfirmScreen, HelpScreen
from hubmgr.tui.screens.downloads import DownloadCard
from hubmgr.tui.screens.model import ModelScreen
from hubmgr.tui.screens.plugins import DetailsDialog
from hubmgr.tui.screens.runs import RunDetailScreen
from hubmgr.tui.screens.train import TrainScreen
from hubmgr.tui.widgets.inputs import takes_typing
from tests.tui.fakes import FakeBackend, plain_text, settle, wait_until

pytestmark = pytest.mark.asyncio

SIZE = (100, 30)


def _footer(app: HubmgrApp) -> set[str]:
    """The descriptions the footer shows now (enabled, shown bindings of the focus chain)."""
    return {b.binding.description for b in app.screen.active_bindings.values() if b.binding.show and b.enabled}


def _notes(app: HubmgrApp) -> list[str]:
    return [n.message for n in app._notifications]


def _no_quit(app: HubmgrApp) -> list[object]:
    """Record app.exit() calls instead of quitting (so a stray `q` shows up as a quit)."""
    quits: list[object] = []
    app.exit = lambda *args, **kwargs: quits.append(args)  # type: ignore[method-assign]
    return quits


def _distance(a: Color, b: Color) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(a.rgb, b.rgb)) ** 0.5)


# -- 1. typing goes to the field; Esc leaves it first ---------------------------------------------------
async def test_train_input_takes_digits_and_q_and_esc_leaves_it(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    quits = _no_quit(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        lora_r = screen.query_one("#cfg-lora_r", Input)
        assert lora_r.value == "8"
        lora_r.focus()
        await pilot.pause()
        await pilot.press("end", "1", "q")
        assert lora_r.value == "81q"  # typed, not a screen switch nor a quit
        assert app.current_mode == "train" and not quits
        assert "Leave field" in _footer(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and not takes_typing(app.focused)
        assert lora_r.value == "81q"  # Esc keeps what was typed
        assert "Leave field" not in _footer(app)
        # now the keys are the screen's and the app's again
        await pilot.press("5")
        await settle(app, pilot)
        assert app.current_mode == "runs"
        await pilot.press("4")
        await settle(app, pilot)
        assert app.screen.query_one("#cfg-lora_r", Input).value == "81q"
        await pilot.press("q")
        await pilot.pause()
        assert quits  # `q` quits while no field has the focus


async def test_a_focused_choice_takes_letters_and_esc_closes_then_leaves_it(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        task = app.screen.query_one("#task-select", Select)
        task.focus()
        await pilot.pause()
        await pilot.press("i")  # opens the list on the first task starting with "i"
        await pilot.pause()
        assert task.expanded
        overlay = task.query_one("SelectOverlay")
        assert str(overlay.get_option_at_index(overlay.highlighted).prompt) == "image-classification"
        await pilot.press("5")  # a digit searches the list; it does not switch screens
        await pilot.pause()
        assert app.current_mode == "train"
        await pilot.press("escape")  # closes the list, the choice keeps the focus
        await pilot.pause()
        assert not task.expanded and app.focused is task
        assert task.value == "text-classification"
        await pilot.press("escape")  # leaves the choice
        await pilot.pause()
        assert app.screen.focused is not task and not takes_typing(app.focused)
        assert isinstance(app.screen, TrainScreen)


async def test_esc_in_the_model_glob_field_keeps_the_page_and_the_text(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#results", DataTable).focus()
        await pilot.press("down", "enter")
        await settle(app, pilot)
        model = app.screen
        assert isinstance(model, ModelScreen)
        model.query_one("#preset", Select).value = "custom"
        await pilot.pause()
        include = model.query_one("#include", Input)
        include.focus()
        await pilot.pause()
        await pilot.press(*"*.json", "d")
        assert include.value == "*.jsond" and not app.downloads  # `d` typed a letter
        await pilot.press("backspace", "escape")
        await pilot.pause()
        assert app.screen is model  # Esc left the field, not the page
        assert include.value == "*.json"
        assert not takes_typing(app.focused)
        await pilot.press("d")  # now `d` downloads, with the typed glob
        await settle(app, pilot)
        assert [i.repo_id for i in app.downloads] == [model.repo_id]
        assert app.downloads[0].include == ["*.json"]
        await pilot.press("escape")  # with no field focused, Esc goes back
        await pilot.pause()
        assert not isinstance(app.screen, ModelScreen)


async def test_esc_in_a_dialog_field_leaves_it_before_it_closes_the_dialog(fake: FakeBackend) -> None:
    from hubmgr.tui.screens.dialogs import EvalDialog

    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        dialog = EvalDialog("Base and adapters", data="/data/eval.csv")
        app.push_screen(dialog)
        await pilot.pause()
        data = dialog.query_one("#eval-data", Input)
        data.focus()
        await pilot.pause()
        await pilot.press("end", "x", "escape")
        await pilot.pause()
        assert app.screen is dialog and data.value == "/data/eval.csvx"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not dialog


# -- 2. focus is visible, and what the keys act on --------------------------------------------------
async def test_every_tab_stop_on_train_and_model_shows_the_focus(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        chain = app.screen.focus_chain
        # no stop that has nothing to show: the form's scroll box, tables of figures
        assert app.screen.query_one("#train-setup") not in chain
        assert all(not (isinstance(w, DataTable) and w.cursor_type == "none") for w in chain)
        # a focused choice and a focused field differ plainly from unfocused ones (not by one grey shade)
        select = app.screen.query_one("#model-select", Select)
        current = select.query_one("SelectCurrent")
        field = app.screen.query_one("#model-path", Input)
        field_before = field.background_colors[1]
        before = current.background_colors[1]
        select.focus()
        await pilot.pause()
        assert _distance(before, current.background_colors[1]) > 35
        field.focus()
        await pilot.pause()
        assert _distance(field_before, field.background_colors[1]) > 35

        await pilot.press("escape", "1")
        await settle(app, pilot)
        app.screen.query_one("#results", DataTable).focus()
        await pilot.press("down", "enter")
        await settle(app, pilot)
        chain = app.screen.focus_chain
        assert app.screen.query_one("#fit-table") not in chain


async def test_download_keys_act_on_the_selected_card_only(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        # an empty queue: the footer offers none of the card keys
        assert not {"Cancel", "Resume", "Remove", "Clear finished"} & _footer(app)
        app.enqueue_download("acme/model-000")
        await settle(app, pilot)
        app.enqueue_download("acme/model-001")
        await settle(app, pilot)
        cards = list(app.screen.query(DownloadCard))
        assert len(cards) == 2
        # a card is selected, and it shows: its border is the accent colour
        assert app.focused is cards[0]
        assert cards[0].styles.border_top[1] != cards[1].styles.border_top[1]
        # both are done: no cancel or resume in the footer, remove and clear are
        shown = _footer(app)
        assert {"Remove", "Clear finished"} <= shown and not {"Cancel", "Resume"} & shown
        await pilot.press("down")
        assert app.focused is cards[1]
        await pilot.press("x")
        await settle(app, pilot)
        assert [i.repo_id for i in app.downloads] == ["acme/model-000"]
        # the remaining card is selected after the removal
        selected = app.screen.selected_item()
        assert selected is not None and selected.id == app.downloads[0].id
        # none selected: the key says so and removes nothing (it used to remove the last card)
        app.screen.set_focus(None)
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert [i.repo_id for i in app.downloads] == ["acme/model-000"]
        assert any("Select the download to remove first" in n for n in _notes(app))


async def test_download_footer_offers_cancel_only_for_a_going_download(fake: FakeBackend) -> None:
    import threading

    fake.download_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        app.enqueue_download("acme/model-000")
        await wait_until(pilot, lambda: app.downloads[0].status == dl.RUNNING, what="the download to run")
        await wait_until(pilot, lambda: isinstance(app.focused, DownloadCard), what="its card to be selected")
        shown = _footer(app)
        assert "Cancel" in shown and not {"Resume", "Remove", "Clear finished"} & shown
        await pilot.press("c")
        fake.download_gate.set()
        await wait_until(pilot, lambda: app.downloads[0].status == dl.CANCELLED, what="the cancel")
        await pilot.pause(0.2)
        shown = _footer(app)
        assert {"Resume", "Remove"} <= shown and "Cancel" not in shown


# -- 3. help for the current screen; the palette holds every key of it -----------------------------------
async def test_help_shows_the_current_screens_keys_first(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        text = help_screen.text
        assert text.startswith("# Runs: keys on this screen")
        here, everywhere = text.index("Evaluate marked"), text.index("## Everywhere")
        assert here < everywhere < text.index("### Browse")
        assert "`Space` | Mark" in text and "`R` | Resume" in text
        assert "moves the cursor down" in text[:everywhere]
        await pilot.press("escape")
        # ...and what Help says about Space is what Space does
        table = app.screen.query_one("#runs-table", DataTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("space")
        assert table.cursor_row == 1 and app.screen.marked == {"20250314-aaaa"}
        # on Downloads, its keys come first, each marked when there is nothing to act on
        await pilot.press("2")
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        text = app.screen.text
        assert text.startswith("# Downloads: keys on this screen")
        assert "Clear finished *(nothing to act on now)*" in text


async def _palette(app: HubmgrApp, pilot, query: str, expect: str) -> None:
    from textual.command import CommandList

    def shows() -> bool:
        lists = app.screen.query(CommandList)
        if not lists:
            return False
        options = lists.first()
        return options.option_count > 0 and expect in str(options.get_option_at_index(0).prompt)

    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    await pilot.press(*query)
    await wait_until(pilot, shows, what=f"the palette to offer {expect!r}")
    await pilot.press("enter")
    await settle(app, pilot)


async def test_the_palette_has_the_screens_keys_runs_and_cached_models(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        await _palette(app, pilot, "delete", "Delete")
        assert isinstance(app.screen, ConfirmScreen)  # Local's `d`, on its selected repo
        await pilot.press("n")
        await pilot.press("5")
        await settle(app, pilot)
        await _palette(app, pilot, "evaluate", "Evaluate marked")
        assert type(app.screen).__name__ == "EvalDialog"
        await pilot.press("escape", "escape")
        await pilot.pause()
        await _palette(app, pilot, "20250314-bbbb", "Open run 20250314-bbbb")
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run_id == "20250314-bbbb"
        await _palette(app, pilot, "open cached model tiny-gpt2", "Open cached model acme/tiny-gpt2")
        assert isinstance(app.screen, ModelScreen) and app.screen.repo_id == "acme/tiny-gpt2"


# -- 4. footers list only what applies --------------------------------------------------------------
async def test_footers_hide_keys_that_do_nothing(fake: FakeBackend) -> None:
    fake.cached = []
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        assert not {"Delete", "Verify", "Verify all", "Train", "Sort"} & _footer(app)
        assert "Refresh" in _footer(app)
        await pilot.press("5")
        await settle(app, pilot)
        table = app.screen.query_one("#runs-table", DataTable)
        table.focus()
        table.move_cursor(row=0)  # a completed run with an adapter
        await pilot.pause()
        shown = _footer(app)
        assert {"Mark", "Evaluate marked"} <= shown and not {"Attach", "Stop", "Resume"} & shown
        table.move_cursor(row=2)  # the failed run: no adapter, but it resumes
        await pilot.pause(0.1)
        shown = _footer(app)
        assert "Resume" in shown and "Mark" not in shown
        await pilot.press("4")
        await settle(app, pilot)
        assert "Stop run" not in _footer(app) and "Start" in _footer(app)


# -- 5. plugins: details on Enter, whole descriptions; plurals ---------------------------------------
async def test_enter_on_a_plugin_shows_its_details(tmp_path) -> None:
    app = HubmgrApp(FakeBackend(tmp=tmp_path, fixed_plugins=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("6")
        await settle(app, pilot)
        tasks = app.screen.query_one("#tasks-table", DataTable)
        descriptions = [str(tasks.get_row_at(i)[2]) for i in range(tasks.row_count)]
        assert descriptions and not any(d.endswith("…") for d in descriptions)
        cls = app.screen.tasks["causal-lm"]
        assert str(tasks.get_row("causal-lm")[2]) == " ".join(cls.description.split())
        table = app.screen.query_one("#plugins-table", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("causal_lm"))
        await pilot.press("enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DetailsDialog)
        text = plain_text(dialog.query_one("#details-body"))
        for expected in ("Package", "hubmgr", "0.1.0", "register_tasks", "causal-lm", "Load errors", "none"):
            assert expected in text
        await pilot.press("escape")
        await pilot.pause()
        table.move_cursor(row=table.get_row_index("hubmgr-broken"))
        await pilot.press("enter")
        await pilot.pause()
        text = plain_text(app.screen.query_one("#details-body"))
        assert "hubmgr-broken" in text and "No module named 'missing_dependency'" in text and "failed" in text
        await pilot.press("escape")
        tasks.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailsDialog) and "perplexity" in plain_text(
            app.screen.query_one("#details-body")
        )


async def test_counts_of_one_are_singular(tmp_path) -> None:
    app = HubmgrApp(FakeBackend(tmp=tmp_path, n_models=1))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        status = plain_text(app.screen.query_one("#results-status"))
        assert "1 model · " in status and "1 models" not in status
        assert isinstance(app.screen, MainScreen)
