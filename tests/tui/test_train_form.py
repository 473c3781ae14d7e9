"""The Train form (issue 14, points 3-6): checked before a run starts, wrong fields marked in place;
Basic/Advanced with the model in view; remembered between launches; a live view that ends cleanly; the
form's own words instead of the CLI's flags."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Button, Collapsible, Input, Label, ProgressBar, Select, Static

from hubmgr.errors import UsageError
from hubmgr.train import events as tev
from hubmgr.train.config import TrainConfig
from hubmgr.tui.app import HubmgrApp
from tests.tui.fakes import FakeBackend, plain_text, settle, wait_until

SIZE = (100, 30)


def _notes(app: HubmgrApp) -> list[tuple[str, str]]:
    return [(n.severity, n.message) for n in app._notifications]


def _model_folder(root: Path) -> Path:
    """A folder the form accepts as a model (config.json and a weights file)."""
    model = root / "models" / "tiny"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    return model


def _csv(root: Path, text: str = "text,label\ngood,1\nbad,0\n", name: str = "train.csv") -> Path:
    path = root / name
    path.write_text(text)
    return path


async def _open_train(app: HubmgrApp, pilot) -> object:
    await settle(app, pilot)
    await pilot.press("4")
    await settle(app, pilot)
    return app.screen


def _error(screen, selector: str) -> str:
    widget = screen.query_one(selector, Static)
    return plain_text(widget) if widget.has_class("-shown") else ""


async def _start(app: HubmgrApp, pilot) -> None:
    await pilot.press("ctrl+s")
    await settle(app, pilot)


# -- 3: checked before Start ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_missing_data_file_is_marked_on_the_form_and_nothing_starts(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
        screen.query_one("#data-path", Input).value = str(tmp_path / "nope.csv")
        await _start(app, pilot)
        assert fake.started_runs == [] and screen.state is None
        assert _error(screen, "#data-error") == f"Data file {tmp_path / 'nope.csv'} does not exist."
        assert screen.query_one("#data-row").has_class("-invalid")
        assert screen.query_one("#data-path", Input).has_class("-invalid")
        assert app.focused is screen.query_one("#data-path", Input)
        assert screen.query_one("#train-tabs").active == "tab-setup"
        # the model is fine: not marked
        assert _error(screen, "#model-error") == ""


@pytest.mark.asyncio
async def test_a_python_file_as_data_is_refused_by_its_suffix(fake: FakeBackend, tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
        screen.query_one("#data-path", Input).value = str(script)
        await _start(app, pilot)
        assert fake.started_runs == []
        assert "unsupported extension '.py'" in _error(screen, "#data-error")


@pytest.mark.asyncio
async def test_missing_model_folder_is_marked_and_no_run_is_recorded(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-path", Input).value = str(tmp_path / "no-model")
        screen.query_one("#data-path", Input).value = str(_csv(tmp_path))
        await _start(app, pilot)
        assert fake.started_runs == [] and screen.state is None
        assert _error(screen, "#model-error") == f"Model folder {tmp_path / 'no-model'} does not exist."
        assert screen.query_one("#model-path-row").has_class("-invalid")


@pytest.mark.asyncio
async def test_a_column_the_task_needs_is_checked_in_the_first_rows(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
        screen.query_one("#data-path", Input).value = str(_csv(tmp_path, "sentence,label\ngood,1\n"))
        await _start(app, pilot)
        assert fake.started_runs == []
        # the core's sentence, the option named by its form label
        assert _error(screen, "#data-error") == (
            "Column 'text' (Text column) is not in train.csv; columns are: sentence, label."
        )
        # the fix is in the form: name the column, and the run starts
        screen.query_one("#opt-text_column", Input).value = "sentence"
        await _start(app, pilot)
        assert len(fake.started_runs) == 1
        assert _error(screen, "#data-error") == ""


@pytest.mark.asyncio
async def test_a_taken_output_folder_is_marked(fake: FakeBackend, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
        screen.query_one("#data-path", Input).value = str(_csv(tmp_path))
        screen.query_one("#cfg-output_dir", Input).value = str(out)
        await _start(app, pilot)
        assert fake.started_runs == []
        message = _error(screen, "#cfg-output_dir-error")
        assert "already exists and is not empty" in message and "--output" not in message
        assert "Output folder" in message


@pytest.mark.asyncio
async def test_a_wrong_advanced_field_opens_advanced_and_is_marked(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        advanced = screen.query_one("#train-advanced", Collapsible)
        assert advanced.collapsed
        screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
        screen.query_one("#data-path", Input).value = str(_csv(tmp_path))
        screen.query_one("#cfg-lora_r", Input).value = "0"
        await _start(app, pilot)
        assert fake.started_runs == []
        assert not advanced.collapsed
        assert _error(screen, "#cfg-lora_r-error") == "Lora r must be greater than 0, got 0."
        assert app.focused is screen.query_one("#cfg-lora_r", Input)
        # corrected, the marks go and the run starts
        screen.query_one("#cfg-lora_r", Input).value = "4"
        await _start(app, pilot)
        assert len(fake.started_runs) == 1
        assert not screen.query(".-invalid")


# -- 4: Basic / Advanced, remembered, `t` from Local ---------------------------------------------------
@pytest.mark.asyncio
async def test_epochs_is_a_few_tabs_from_the_model_and_headings_are_not_doubled(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-select", Select).focus()
        await pilot.pause(0.05)
        tabs = 0
        while app.focused is not screen.query_one("#cfg-epochs", Input):
            await pilot.press("tab")
            tabs += 1
            assert tabs <= 8, f"Epochs is more than 8 Tabs away (at {app.focused})"
        headings = [
            str(label.content).strip()
            for label in screen.query(Label)
            if label.has_class("section") or label.has_class("form-group")
        ]
        for heading in ("Model", "Data"):
            assert headings.count(heading) <= 1, headings
        # Basic: the fields most runs change; the rest wait under Advanced
        advanced = screen.query_one("#train-advanced", Collapsible)
        for wid in ("#cfg-epochs", "#cfg-max_epochs", "#cfg-time_budget", "#cfg-learning_rate", "#cfg-output_dir"):
            assert advanced not in screen.query_one(wid).ancestors
        for wid in ("#cfg-lora_r", "#cfg-batch_size", "#opt-text_column"):
            assert advanced in screen.query_one(wid).ancestors


@pytest.mark.asyncio
async def test_the_form_is_remembered_and_a_model_from_local_wins(fake: FakeBackend, tmp_path) -> None:
    data = _csv(tmp_path)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-select", Select).value = "acme/tiny-gpt2"
        screen.query_one("#data-path", Input).value = str(data)
        screen.query_one("#cfg-epochs", Input).value = "3"
        screen.query_one("#cfg-lora_r", Input).value = "4"
        screen.query_one("#cfg-use_dora").value = True
        screen.query_one("#cfg-output_dir", Input).value = str(tmp_path / "out")
        screen.query_one("#opt-text_column", Input).value = "sentence"
        await pilot.pause(0.8)  # the form is saved shortly after a change
        await settle(app, pilot)
    assert fake.train_form_file().is_file()

    app = HubmgrApp(FakeBackend(tmp=tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        assert screen.query_one("#model-select", Select).value == "acme/tiny-gpt2"
        assert screen.query_one("#data-path", Input).value == str(data)
        assert screen.query_one("#cfg-epochs", Input).value == "3"
        assert screen.query_one("#cfg-lora_r", Input).value == "4"
        assert screen.query_one("#cfg-use_dora").value is True
        assert screen.query_one("#opt-text_column", Input).value == "sentence"
        # an output folder is for one run: not brought back
        assert screen.query_one("#cfg-output_dir", Input).value == ""

    app = HubmgrApp(FakeBackend(tmp=tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        app.screen.query_one("#cache-table").move_cursor(row=1)
        await pilot.press("t")
        await settle(app, pilot)
        screen = app.screen
        assert app.current_mode == "train"
        assert screen.query_one("#model-select", Select).value == "acme/tiny-bert"
        assert screen.query_one("#data-path", Input).value == str(data)


@pytest.mark.asyncio
async def test_t_from_local_lands_at_the_top_of_the_form_with_the_model_in_view(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        # the user was down the form before
        screen.query_one("#start", Button).focus()
        await settle(app, pilot)
        setup = screen.query_one("#train-setup")
        assert setup.scroll_y > 0
        await pilot.press("3")
        await settle(app, pilot)
        app.screen.query_one("#cache-table").move_cursor(row=0)
        await pilot.press("t")
        await settle(app, pilot)
        assert app.current_mode == "train"
        assert setup.scroll_y == 0
        model = screen.query_one("#model-select", Select)
        assert model.value == "acme/tiny-gpt2"
        assert app.focused is model
        assert setup.region.contains_region(model.region)


# -- 5: the live view after a run ends -----------------------------------------------------------------
class ScriptedBackend(FakeBackend):
    """A fake whose run replays ``script`` (events), then returns a record of ``final`` status."""

    def __init__(self, script: list, final: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.final = final
        self.gate: threading.Event | None = None

    def follow_run(self, run_id, *, on_event, should_stop=None):
        for event in self.script:
            if event == "wait" and self.gate is not None:
                while not self.gate.wait(0.05):
                    pass
                continue
            on_event(event)
        self.live_status[run_id] = self.final
        record = self._live_record(run_id, self.final, f"/runs/{run_id}")
        if self.final == "failed":
            record.error = "Loss became NaN at step 1."
        return record


def _started(run_id: str = "20250314-dddd", total: int = 4) -> tev.TrainStarted:
    return tev.TrainStarted(
        run_id, "text-classification", "/models/tiny", f"/runs/{run_id}", total, 40, 4, 1000, 100000, "cpu"
    )


async def _run(app: HubmgrApp, pilot, tmp_path: Path):
    screen = await _open_train(app, pilot)
    screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
    screen.query_one("#data-path", Input).value = str(_csv(tmp_path))
    await pilot.press("ctrl+s")
    return screen


@pytest.mark.asyncio
async def test_a_run_that_fails_before_its_first_step_stops_the_progress_animation(tmp_path) -> None:
    backend = ScriptedBackend(
        [tev.TrainFinished("20250314-dddd", "failed", None, {}, 1.0, error="Model folder is broken.")],
        "failed",
        tmp=tmp_path,
    )
    app = HubmgrApp(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _run(app, pilot, tmp_path)
        await wait_until(pilot, lambda: screen.state is not None and screen.state.status == "failed", what="failure")
        await settle(app, pilot)
        bar = screen.query_one("#train-progress", ProgressBar)
        assert bar.total is not None  # an indeterminate bar (total None) animates for ever
        assert not screen.query_one("#cancel", Button).display


@pytest.mark.asyncio
async def test_after_completion_there_is_nothing_to_cancel(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _run(app, pilot, tmp_path)
        await wait_until(pilot, lambda: screen.state is not None and screen.state.status == "completed", what="end")
        await settle(app, pilot)
        cancel = screen.query_one("#cancel", Button)
        assert not cancel.display
        assert screen.query_one("#to-runs", Button).display and not screen.query_one("#to-runs", Button).disabled
        bar = screen.query_one("#train-progress", ProgressBar)
        assert bar.progress == bar.total == 4


@pytest.mark.asyncio
async def test_after_a_cancel_the_eta_is_gone(fake: FakeBackend, tmp_path) -> None:
    fake.train_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _run(app, pilot, tmp_path)
        await wait_until(pilot, lambda: screen.state is not None and screen.state.step == 1, what="the first step")
        assert "0:03" in plain_text(screen.query_one("#train-status", Static))  # the fake's ETA at step 1
        assert screen.query_one("#cancel", Button).display
        await pilot.press("c")
        await settle(app, pilot)
        assert screen.state.status == "cancelled"
        status = plain_text(screen.query_one("#train-status", Static))
        assert "0:03" not in status
        assert screen.state.eta is None
        assert not screen.query_one("#cancel", Button).display


@pytest.mark.asyncio
async def test_the_header_says_which_step_its_loss_is_from(tmp_path) -> None:
    backend = ScriptedBackend(
        [
            _started(total=20),
            tev.StepLogged(1, 20, 0.05, 0.9, 1e-3, 50.0, 19.0),  # logging_first_step
            tev.StepLogged(2, 20, 0.10, None, None, 50.0, 18.0),  # progress ticks between two logs
            tev.StepLogged(7, 20, 0.35, None, None, 50.0, 13.0),
            "wait",
            tev.StepLogged(10, 20, 0.5, 0.4, 5e-4, 50.0, 10.0),
            tev.TrainFinished("20250314-dddd", "completed", "/runs/20250314-dddd", {}, 3.0),
        ],
        "completed",
        tmp=tmp_path,
    )
    backend.gate = threading.Event()
    app = HubmgrApp(backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _run(app, pilot, tmp_path)
        await wait_until(pilot, lambda: screen.state is not None and screen.state.step == 7, what="step 7")
        await pilot.pause(0.1)
        status = plain_text(screen.query_one("#train-status", Static))
        assert "7/20" in status
        assert "0.9 (step 1)" in status and "0.001 (step 1)" in status
        backend.gate.set()
        await wait_until(pilot, lambda: screen.state.status == "completed", what="the end")
        await settle(app, pilot)
        status = plain_text(screen.query_one("#train-status", Static))
        assert "0.4" in status and "(step" not in status


# -- 6: the form's words, not the CLI's ----------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_missing_field_is_named_by_its_label_not_its_flag(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
        await _start(app, pilot)
        assert fake.started_runs == []
        assert _error(screen, "#data-error") == "Training data is required."
        assert not any("--data" in message or "command line" in message for _, message in _notes(app))
        assert any(message == "Training data is required." for _, message in _notes(app))


@pytest.mark.asyncio
async def test_field_help_in_the_form_mentions_no_flags(fake: FakeBackend) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        helps = [plain_text(w) for w in screen.query(".form-help")]
        assert helps and not [h for h in helps if "--" in h]
        assert any("With Epochs auto" in h for h in helps)


def test_the_cli_keeps_its_own_sentences() -> None:
    with pytest.raises(UsageError) as missing:
        TrainConfig(task="text-classification", model="m", data="").validate()
    assert str(missing.value) == "Missing --data: give it on the command line or as `data = ...` in the config file."
    assert missing.value.field == "data" and missing.value.form_message == "Training data is required."
    with pytest.raises(UsageError) as budget:
        TrainConfig(task="t", model="m", data="d", epochs=2.0, time_budget="10m").validate()
    assert str(budget.value).startswith("--time-budget goes with --epochs auto")
    from hubmgr.fields import field_specs

    help_of = {s.name: s.help for s in field_specs(TrainConfig)}
    assert "--max-epochs" in help_of["epochs"]  # `hubmgr train --help` still names the flags


# -- the look of a form with marked fields -------------------------------------------------------------
def test_marked_fields_snapshot(snap_compare, tmp_path) -> None:
    async def fill(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#model-path", Input).value = "/no/such/model"
        screen.query_one("#data-path", Input).value = "/no/such/train.csv"
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: _error(screen, "#data-error") and _error(screen, "#model-error"), what="the marks"
        )
        await settle(app, pilot)
        await pilot.pause(0.3)
        app.clear_notifications()
        screen.set_focus(None)  # no blinking cursor in the picture
        screen.query_one("#train-setup").scroll_home(animate=False)
        await pilot.pause(0.3)

    app = HubmgrApp(FakeBackend(tmp=Path("/tmp/hubmgr-snapshots"), fixed_plugins=True))
    assert snap_compare(app, terminal_size=(100, 30), run_before=fill)


# -- estimate: the prediction before Start -------------------------------------------------------------
async def _filled(app: HubmgrApp, pilot, tmp_path) -> object:
    screen = await _open_train(app, pilot)
    screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
    screen.query_one("#data-path", Input).value = str(_csv(tmp_path))
    await settle(app, pilot)
    return screen


def _estimate(screen) -> str:
    widget = screen.query_one("#estimate-result", Static)
    return plain_text(widget) if widget.has_class("-shown") else ""


@pytest.mark.asyncio
async def test_estimate_shows_time_steps_and_memory_then_goes_stale_on_a_change(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _filled(app, pilot, tmp_path)
        app.set_focus(None)
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert len(fake.estimated) == 1 and fake.started_runs == []
        assert fake.estimated[0].data == str(_csv(tmp_path))
        text = _estimate(screen)
        assert "the whole run takes about 0:24, 36 steps (3.0 epochs of 12 steps of batch size 8)" in text
        assert "Peak RAM: 1.2 GB of 8.0 GB available: fits." in text
        assert "--" not in text  # the form's words, not flags
        # the line sits under the buttons, below the fold: the form scrolls to it
        result = screen.query_one("#estimate-result")
        assert result.region.height > 0 and result.region.overlaps(app.screen.region)
        # a change of the form makes it stale
        screen.query_one("#data-path", Input).value = str(_csv(tmp_path, name="other.csv"))
        await settle(app, pilot)
        text = _estimate(screen)
        assert "Peak RAM" not in text and "settings changed" in text


@pytest.mark.asyncio
async def test_estimate_is_not_run_on_an_invalid_form(fake: FakeBackend, tmp_path) -> None:
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_train(app, pilot)
        screen.query_one("#model-path", Input).value = str(_model_folder(tmp_path))
        screen.query_one("#data-path", Input).value = str(tmp_path / "nope.csv")
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert fake.estimated == []
        assert _error(screen, "#data-error") == f"Data file {tmp_path / 'nope.csv'} does not exist."
        assert _estimate(screen) == ""
        # a value that does not parse is refused before anything is checked on disk
        screen.query_one("#data-path", Input).value = str(_csv(tmp_path))
        screen.query_one("#cfg-learning_rate", Input).value = "fast"
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert fake.estimated == [] and _error(screen, "#data-error") == ""


@pytest.mark.asyncio
async def test_a_failed_estimate_says_why_in_one_sentence(fake: FakeBackend, tmp_path) -> None:
    fake.estimate_error = "The model at /models/tiny has no weights."
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _filled(app, pilot, tmp_path)
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert _estimate(screen).strip() == "No estimate: The model at /models/tiny has no weights."


@pytest.mark.asyncio
async def test_an_estimate_going_can_be_stopped(fake: FakeBackend, tmp_path) -> None:
    fake.estimate_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _filled(app, pilot, tmp_path)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: len(fake.estimated) == 1, what="the estimate to start")
        assert "Estimating" in _estimate(screen)
        app.set_focus(None)
        await pilot.press("escape")
        await settle(app, pilot)
        assert _estimate(screen).strip() == "Estimate stopped."
        fake.estimate_gate.set()
        await settle(app, pilot)
        assert "Peak RAM" not in _estimate(screen)


def test_an_uncached_model_offline_is_told_in_the_forms_words(tmp_path) -> None:
    """The run's sentence names `hubmgr download`; the form's names what to do in the TUI."""
    from hubmgr.config import Settings
    from hubmgr.train.config import TrainConfig
    from hubmgr.tui.backend import Backend

    backend = Backend(
        Settings(endpoint="http://127.0.0.1:9", offline=True, hub_cache=tmp_path / "hub", data_dir=tmp_path / "home")
    )
    config = TrainConfig(model="acme/not-here", task="text-classification", data=str(_csv(tmp_path)))
    problems = backend.check_train_inputs(config)
    assert problems["model"] == (
        "acme/not-here is not in the local cache, and offline mode is on (HF_HUB_OFFLINE): download it from its"
        " model page (Browse, d) while online."
    )
