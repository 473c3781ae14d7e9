"""Train: choose a model, a task and data, adjust the settings (a form built from TrainConfig and the
task's options), start; then watch the loss curve, learning rate, samples/s, ETA and eval metrics.

A run is a process of its own (:mod:`hubmgr.runs.live`): Start launches it in the background and the
screen attaches to it, reading its event log; quitting the TUI leaves it going (the app asks), and this
screen (``a``) or Runs can attach to any running run, wherever it was started. ``c`` asks the run to save
a checkpoint and stop. The TUI itself never imports torch.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    Collapsible,
    DataTable,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
    TabbedContent,
    TabPane,
)
from textual.worker import Worker, WorkerState

from hubmgr.errors import HubmgrError, UsageError
from hubmgr.fields import atomic_write_text
from hubmgr.metrics import ordered
from hubmgr.train import events as tev
from hubmgr.tui.backend import TRAIN_BASIC_FIELDS
from hubmgr.tui.format import duration, number, one_line, plain
from hubmgr.tui.messages import TrainDone, TrainUpdated
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.screens.dialogs import FilePickerScreen
from hubmgr.tui.widgets.chart import MetricsChart
from hubmgr.tui.widgets.form import DataclassForm
from hubmgr.tui.widgets.inputs import Choice
from hubmgr.tui.widgets.tables import InfoTable

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.train.config import TrainConfig

STATUS_STYLE = {
    "completed": "bold green",
    "failed": "bold red",
    "cancelled": "bold yellow",
    "running": "bold cyan",
    "interrupted": "bold yellow",
}


@dataclass
class TrainState:
    """What the live view shows; updated from the worker thread by :meth:`apply`."""

    status: str = "starting"
    run_id: str | None = None
    model: str = ""
    task: str = ""
    device: str = ""
    output_dir: str | None = None
    total_steps: int = 0
    step: int = 0
    epoch: float = 0.0
    loss: float | None = None
    learning_rate: float | None = None
    #: the step at which ``loss`` and ``learning_rate`` were logged (every ``logging_steps``; the steps in
    #: between only move the progress)
    logged_step: int = 0
    samples_per_second: float | None = None
    eta: float | None = None
    trainable_params: int = 0
    total_params: int = 0
    num_train: int = 0
    num_eval: int = 0
    loss_points: list[tuple[int, float]] = field(default_factory=list)
    evals: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    last_checkpoint: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    budget: str = "fixed"
    main_metric: str | None = None

    def apply(self, event: tev.TrainEvent) -> None:
        if isinstance(event, tev.TrainStarted):
            self.status = "running"
            self.run_id = event.run_id
            self.task = event.task
            self.model = event.model
            self.device = f"{event.device}, {event.precision}" if event.precision else event.device
            self.output_dir = event.output_dir
            self.total_steps = event.total_steps
            self.step = event.resumed_from_step
            self.trainable_params = event.trainable_params
            self.total_params = event.total_params
            self.num_train = event.num_train_examples
            self.num_eval = event.num_eval_examples
            self.budget = getattr(event, "budget", "fixed")
            self.main_metric = getattr(event, "main_metric", None)
        elif isinstance(event, tev.StepLogged):
            self.step = event.step
            self.total_steps = event.total_steps or self.total_steps
            self.epoch = event.epoch
            self.samples_per_second = event.samples_per_second
            self.eta = event.eta_seconds
            if event.learning_rate is not None:
                self.learning_rate = event.learning_rate
                self.logged_step = event.step
            if event.loss is not None:
                self.logged_step = event.step
                points = list(self.loss_points)
                if points and points[-1][0] == event.step:
                    points[-1] = (event.step, event.loss)
                elif not points or points[-1][1] != event.loss:
                    points.append((event.step, event.loss))
                self.loss_points = points
                self.loss = event.loss
        elif isinstance(event, tev.EvalLogged):
            self.evals = [*self.evals, (event.step, dict(event.metrics))]
        elif isinstance(event, tev.CheckpointSaved):
            self.last_checkpoint = event.path
        elif isinstance(event, tev.TrainFinished):
            self.status = event.status
            self.run_id = event.run_id or self.run_id
            self.output_dir = event.output_dir or self.output_dir
            self.metrics = dict(event.metrics or {})
            self.error = event.error
            self.seconds = event.seconds
            self.stop_reason = getattr(event, "stop_reason", None)
            self.notes = list(getattr(event, "notes", None) or [])
            # nothing is left to wait for, whatever the last step event said
            self.eta = 0.0 if event.status == "completed" else None


#: The Train screen's own inputs (not the generic form's) by the TrainConfig field they fill.
SCREEN_FIELDS = {
    "model": "#model-path",
    "task": "#task-select",
    "data": "#data-path",
    "eval_data": "#eval-path",
}
#: Fields the form does not remember between launches: an output folder is used once (a second run into
#: it is refused), and resuming is for that one folder.
NOT_REMEMBERED = ("output_dir", "resume")


class TrainScreen(MainScreen):
    MODE = "train"
    AUTO_FOCUS = "#train-tabs Tabs"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", id="train-start"),
        Binding("ctrl+t", "estimate", "Estimate", id="train-estimate"),
        Binding("escape", "cancel_estimate", "Stop estimate", id="train-estimate-cancel"),
        Binding("c", "cancel_run", "Stop run", id="train-cancel"),
        Binding("a", "attach_latest", "Attach", id="train-attach"),
        Binding("ctrl+o", "pick_data", "Pick data", id="train-pick"),
        Binding("ctrl+l", "toggle_view", "Setup/Live", id="train-toggle"),
    ]
    DEFAULT_CSS = """
    TrainScreen .field-row.-invalid > .field-label {
        color: $text-error;
    }
    TrainScreen #config-basic-box {
        height: auto;
    }
    TrainScreen #train-advanced {
        margin-top: 1;
        padding: 0;
        border: none;
    }
    TrainScreen #train-advanced Contents {
        padding: 0 0 0 1;
    }
    TrainScreen .form-error {
        color: $text-error;
        padding-left: 24;
        height: auto;
        display: none;
    }
    TrainScreen .form-error.-shown {
        display: block;
    }
    TrainScreen #estimate-result {
        height: auto;
        display: none;
    }
    TrainScreen #estimate-result.-shown {
        display: block;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.state: TrainState | None = None
        #: set to stop following (quitting, or attaching to another run); the run itself goes on
        self.detach_event: threading.Event | None = None
        self.cancel_event: threading.Event | None = None
        self._tasks: dict[str, Any] = {}
        self._options_task: str | None = None
        #: the form as it was left at the last launch (read once, on the first choices)
        self._remembered: dict[str, Any] | None = None
        #: True once the remembered form is back: only then do changes get saved
        self._restored = False
        self._save_timer: Any = None
        #: set to stop the estimate going now (None: none is going)
        self._estimate_cancel: threading.Event | None = None
        #: the form (see :meth:`_estimate_key`) the estimate shown or going was made for
        self._estimate_key: dict[str, Any] | None = None
        self._spinner: Any = None
        self._spin_frame = 0

    # -- layout --------------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="train-tabs", initial="tab-setup"):
            with TabPane("Setup", id="tab-setup"):
                with VerticalScroll(id="train-setup", can_focus=False):
                    with Horizontal(classes="field-row", id="model-row"):
                        yield Label("Cached model", classes="field-label")
                        yield Choice([], prompt="choose a downloaded model", id="model-select", compact=True)
                    with Horizontal(classes="field-row", id="model-path-row"):
                        yield Label("…or path / repo id", classes="field-label")
                        yield Input(placeholder="a local model folder or org/name", id="model-path", compact=True)
                    yield Static("", id="model-error", classes="form-error", markup=False)
                    with Horizontal(classes="field-row", id="task-row"):
                        yield Label("Task", classes="field-label")
                        yield Choice([], prompt="choose a task", id="task-select", compact=True)
                    yield Static("", id="task-error", classes="form-error", markup=False)
                    yield Static("", id="task-description", classes="field-help")
                    with Horizontal(classes="field-row", id="data-row"):
                        yield Label("Training data", classes="field-label")
                        yield Input(
                            placeholder="CSV / JSON / JSONL / Parquet file, folder, or Hub dataset id",
                            id="data-path",
                            compact=True,
                        )
                        yield Button("Browse…", id="pick-data", compact=True)
                    yield Static("", id="data-error", classes="form-error", markup=False)
                    with Horizontal(classes="field-row", id="eval-row"):
                        yield Label("Eval data", classes="field-label")
                        yield Input(
                            placeholder="optional: default holds out a fraction of the training data",
                            id="eval-path",
                            compact=True,
                        )
                        yield Button("Browse…", id="pick-eval", compact=True)
                    yield Static("", id="eval_data-error", classes="form-error", markup=False)
                    yield Vertical(id="config-basic-box")
                    with Collapsible(title="Advanced: task options, LoRA, training, hardware", id="train-advanced"):
                        yield Label("Task options", classes="section")
                        yield Static("", id="options-error", classes="form-error", markup=False)
                        yield Vertical(id="task-options")
                        yield Vertical(id="config-form-box")
                    with Horizontal(classes="button-row"):
                        yield Button("Start training (Ctrl+S)", id="start", variant="success")
                        yield Button("Estimate time and memory (Ctrl+T)", id="estimate")
                    yield Static("", id="estimate-result")
            with TabPane("Live", id="tab-live"):
                with Vertical(id="train-live"):
                    yield Static("No run yet. Fill in the setup and press Ctrl+S.", id="train-status")
                    with Horizontal(id="train-progress-row"):
                        yield ProgressBar(id="train-progress", show_eta=False)
                        yield Button("Stop run (c)", id="cancel", variant="warning", disabled=True, compact=True)
                        yield Button("Show in Runs (5)", id="to-runs", disabled=True, compact=True)
                    yield MetricsChart("training loss", id="loss-chart")
                    yield InfoTable(id="eval-table")

    async def on_mount(self) -> None:
        await self._build_config_form()  # built before the choices come, which restore the remembered form
        self._load_choices()
        self.hub_app.cache_signal.subscribe(self, lambda _: self._load_choices())

    async def _build_config_form(self) -> None:
        box = self.query_one("#config-form-box", Vertical)
        try:
            specs = self.backend.train_specs()
        except Exception as exc:
            await box.mount(Static(Text(f"Training settings are unavailable: {exc}", style="red")))
            return
        basic = [s for s in specs if s.name in TRAIN_BASIC_FIELDS]
        basic.sort(key=lambda s: TRAIN_BASIC_FIELDS.index(s.name))
        advanced = [s for s in specs if s.name not in TRAIN_BASIC_FIELDS]
        await self.query_one("#config-basic-box", Vertical).mount(
            DataclassForm(basic, parse=self.backend.parse_field, prefix="cfg", groups=False, id="config-basic")
        )
        await box.mount(DataclassForm(advanced, parse=self.backend.parse_field, prefix="cfg", id="config-form"))

    def _forms(self) -> list[DataclassForm]:
        """The generic forms of TrainConfig's fields (Basic, then Advanced)."""
        return [f for f in self.query(DataclassForm) if f.id in ("config-basic", "config-form")]

    def _options_form(self) -> DataclassForm | None:
        forms = self.query("#options-form")
        return forms.first(DataclassForm) if forms else None

    @work(thread=True, group="train-choices", exclusive=True, exit_on_error=False)
    def _load_choices(self) -> None:
        tasks = self.backend.tasks()
        try:
            cached = [r.repo_id for r in self.backend.list_cached() if getattr(r, "repo_type", "model") == "model"]
        except HubmgrError:
            cached = []
        remembered = self._read_remembered() if self._remembered is None else self._remembered
        self.app.call_from_thread(self._set_choices, tasks, cached, remembered)

    def _set_choices(self, tasks: dict[str, Any], cached: list[str], remembered: dict[str, Any] | None = None) -> None:
        self._tasks = tasks
        first = self._remembered is None
        memory = (remembered or {}) if first else {}
        if first:
            self._remembered = memory
        task_select = self.query_one("#task-select", Select)
        current_task = task_select.value
        task_select.set_options([(name, name) for name in sorted(tasks)])
        if first and memory.get("task") in tasks:
            task_select.value = memory["task"]
        elif current_task in tasks:
            task_select.value = current_task
        elif tasks:
            task_select.value = "text-classification" if "text-classification" in tasks else sorted(tasks)[0]
        model_select = self.query_one("#model-select", Select)
        current_model = model_select.value
        model_select.set_options([(repo, repo) for repo in cached])
        if first and memory.get("model_select") in cached:
            model_select.value = memory["model_select"]
        elif current_model in cached:
            model_select.value = current_model
        if first:
            self._restore(memory)
        self.take_model_request()
        if first:
            self.call_after_refresh(self._mark_restored)

    def _mark_restored(self) -> None:
        self._restored = True

    def take_model_request(self) -> None:
        """Apply a model handed over by another screen (Local's or Model's "train"): it wins over the
        remembered one. The form opens at its top, the model in view."""
        model = self.hub_app.train_model_request
        if not model or self._remembered is None:  # not yet: the first choices (and the memory) take it
            return
        self.hub_app.train_model_request = None
        select = self.query_one("#model-select", Select)
        options = {value for _, value in select._options}  # noqa: SLF001 - Select has no public getter
        if model in options:
            select.value = model
            self.query_one("#model-path", Input).value = ""
        else:
            self.query_one("#model-path", Input).value = model
        self.query_one(TabbedContent).active = "tab-setup"
        focus = select if model in options else self.query_one("#model-path", Input)
        focus.focus(scroll_visible=False)
        setup = self.query_one("#train-setup", VerticalScroll)
        setup.scroll_home(animate=False, immediate=True)
        self.call_after_refresh(setup.scroll_home, animate=False)

    # -- remembering the form ------------------------------------------------------------------------
    def _read_remembered(self) -> dict[str, Any]:
        try:
            data = json.loads(self.backend.train_form_file().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _form_snapshot(self) -> dict[str, Any]:
        """What the form holds now, as typed; the options of other tasks are kept as they were."""
        selected = self.query_one("#model-select", Select).value
        task = self.query_one("#task-select", Select).value
        config: dict[str, Any] = {}
        for form in self._forms():
            config.update(form.raw_values(skip=NOT_REMEMBERED))
        options = dict((self._remembered or {}).get("options") or {})
        opt_form = self._options_form()
        if opt_form is not None and self._options_task:
            options[self._options_task] = opt_form.raw_values()
        return {
            "model_select": None if selected is Select.NULL else selected,
            "model_path": self.query_one("#model-path", Input).value,
            "task": None if task is Select.NULL else task,
            "data": self.query_one("#data-path", Input).value,
            "eval_data": self.query_one("#eval-path", Input).value,
            "config": config,
            "options": options,
        }

    def _restore(self, remembered: dict[str, Any]) -> None:
        for key, selector in (("model_path", "#model-path"), ("data", "#data-path"), ("eval_data", "#eval-path")):
            if isinstance(remembered.get(key), str):
                self.query_one(selector, Input).value = remembered[key]
        config = {k: v for k, v in (remembered.get("config") or {}).items() if k not in NOT_REMEMBERED}
        for form in self._forms():
            form.set_raw_values(config)

    def remember_form(self) -> None:
        """Save the form now (``train-form.json`` in hubmgr's data), for the next launch."""
        if self._save_timer is not None:
            self._save_timer.stop()
            self._save_timer = None
        if not self._restored:
            return
        snapshot = self._form_snapshot()
        self._remembered = snapshot
        try:
            atomic_write_text(self.backend.train_form_file(), json.dumps(snapshot, indent=1, sort_keys=True))
        except OSError:
            pass  # a form that cannot be remembered is no reason to interrupt anyone

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _form_changed(self, event: Any) -> None:
        if self.query_one("#train-setup") not in event.control.ancestors:
            return
        self._estimate_invalidated()
        if not self._restored:
            return
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(0.5, self.remember_form)

    # -- task options --------------------------------------------------------------------------------
    @on(Select.Changed, "#task-select")
    async def _task_changed(self, event: Select.Changed) -> None:
        name = None if event.value is Select.NULL else str(event.value)
        if name == self._options_task:
            return
        opt_form = self._options_form()
        if opt_form is not None and self._options_task and self._remembered is not None:
            self._remembered.setdefault("options", {})[self._options_task] = opt_form.raw_values()
        self._options_task = name
        box = self.query_one("#task-options", Vertical)
        await box.remove_children()
        desc = self.query_one("#task-description", Static)
        if name is None:
            desc.update("")
            return
        cls = self._tasks.get(name)
        tags = ", ".join(getattr(cls, "pipeline_tags", ()) or ())
        desc.update(
            Text(
                f"{one_line(getattr(cls, 'description', '') or '')}" + (f"  (fits: {tags})" if tags else ""),
                style="dim",
            )
        )
        try:
            specs = self.backend.option_specs(name)
        except Exception as exc:
            await box.mount(Static(Text(f"The options of {name} are unavailable: {exc}", style="red")))
            return
        if not specs:
            await box.mount(Static(Text("This task has no options.", style="dim")))
            return
        form = DataclassForm(specs, parse=self.backend.parse_field, prefix="opt", groups=False, id="options-form")
        await box.mount(form)
        remembered = ((self._remembered or {}).get("options") or {}).get(name)
        if isinstance(remembered, dict):
            form.set_raw_values(remembered)

    # -- data pickers --------------------------------------------------------------------------------
    @on(Button.Pressed, "#pick-data")
    def action_pick_data(self) -> None:
        self._pick("#data-path", "Choose the training data")

    @on(Button.Pressed, "#pick-eval")
    def _pick_eval(self) -> None:
        self._pick("#eval-path", "Choose the evaluation data")

    def _pick(self, selector: str, title: str) -> None:
        field_input = self.query_one(selector, Input)

        def chosen(path: str | None) -> None:
            if path:
                field_input.value = path

        self.app.push_screen(FilePickerScreen(field_input.value.strip() or None, title=title), chosen)

    # -- start / cancel ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state is not None and self.state.status in ("starting", "running")

    def _collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The form's values for TrainConfig, and the problem of each field whose text does not parse."""
        path = self.query_one("#model-path", Input).value.strip()
        selected = self.query_one("#model-select", Select).value
        model = path or ("" if selected is Select.NULL else str(selected))
        task = self.query_one("#task-select", Select).value
        task_name = "" if task is Select.NULL else str(task)
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for form in self._forms():
            form_values, errors = form.values_and_errors()
            values.update(form_values)
            problems.update({name: self.backend.form_message(exc, task_name) for name, exc in errors.items()})
        options: dict[str, Any] = {}
        opt_form = self._options_form()
        if opt_form is not None:
            options, errors = opt_form.values_and_errors(only_changed=True)
            problems.update(
                {f"options.{name}": self.backend.form_message(exc, task_name) for name, exc in errors.items()}
            )
        values.update(
            model=model,
            task=task_name,
            data=self.query_one("#data-path", Input).value.strip(),
            eval_data=self.query_one("#eval-path", Input).value.strip() or None,
            options=options,
        )
        return values, problems

    # -- marking wrong fields ------------------------------------------------------------------------
    def clear_errors(self) -> None:
        opt_form = self._options_form()
        for form in [*self._forms(), *([opt_form] if opt_form is not None else [])]:
            form.clear_errors()
        for row in self.query(".field-row.-invalid"):
            row.remove_class("-invalid")
        for widget in self.query("#train-setup .-invalid"):
            widget.remove_class("-invalid")
        for error in self.query("#train-setup > .form-error, #train-advanced .form-error"):
            if isinstance(error, Static) and error.id and not error.id.startswith(("cfg-", "opt-")):
                error.update("")
                error.remove_class("-shown")

    def show_errors(self, problems: dict[str, str]) -> None:
        """Mark each wrong field in place (an error style, the sentence under it), open Advanced when a
        field there is wrong, focus the first one and say how many there are."""
        self.clear_errors()
        first: Any = None
        advanced = self.query_one("#train-advanced", Collapsible)
        for name, message in problems.items():
            widget = self._mark(name, message)
            if widget is not None and advanced in widget.ancestors:
                advanced.collapsed = False
            if first is None:
                first = widget
        self.query_one(TabbedContent).active = "tab-setup"
        if first is not None:
            self.call_after_refresh(self._focus_field, first)
        count = len(problems)
        self.notify(
            f"{next(iter(problems.values()))}" if count == 1 else f"{count} fields need a change; they are marked.",
            title="Train: not started",
            severity="error",
            markup=False,
        )

    def _focus_field(self, widget: Any) -> None:
        widget.focus(scroll_visible=False)
        widget.scroll_visible(animate=False)

    def _mark(self, name: str, message: str) -> Any:
        if name.startswith("options.") or name == "options":
            form = self._options_form()
            option = name.partition(".")[2]
            if form is not None and option and form.has_field(option):
                form.set_error(option, message)
                return form.input_of(option)
            self._show_error("#options-error", message)
            return form.query(Input).first() if form is not None and form.query(Input) else None
        for form in self._forms():
            if form.has_field(name):
                form.set_error(name, message)
                return form.input_of(name)
        selector = SCREEN_FIELDS.get(name)
        if selector is None:  # a problem of no one field: under the model, the top of the form
            self._show_error("#model-error", message)
            return self.query_one("#model-select", Select)
        widget = self.query_one(selector)
        if name == "model" and not self.query_one("#model-path", Input).value.strip():
            widget = self.query_one("#model-select", Select)
        widget.add_class("-invalid")
        if widget.parent is not None:
            widget.parent.add_class("-invalid")
        self._show_error(f"#{name}-error", message)
        return widget

    def _show_error(self, selector: str, message: str) -> None:
        error = self.query_one(selector, Static)
        error.update(message)
        error.add_class("-shown")

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        """Check the form (values, then the data, model and output folder on disk) and start the run; a
        wrong field is marked in place and nothing starts."""
        if self.running:
            self.notify("A run is already going; cancel it first.", severity="warning")
            return
        config = self._form_config()
        if config is None:
            return
        self.query_one("#start", Button).disabled = True
        self._check_worker(config)

    def _form_config(self) -> TrainConfig | None:
        """The form's TrainConfig when its values parse and follow the settings' rules; else None, the wrong
        fields marked (what Start and Estimate check first)."""
        self.remember_form()
        values, problems = self._collect()
        if problems:
            self.show_errors(problems)
            return None
        try:
            return self.backend.make_train_config(values)
        except UsageError as exc:
            field = exc.field if exc.field in values or exc.field is None else f"options.{exc.field}"
            self.show_errors({field or "": self.backend.form_message(exc, values.get("task"))})
        except Exception as exc:
            self.hub_app.report_error(exc)
        return None

    @work(thread=True, group="train-check", exclusive=True, exit_on_error=False, description="checking the form")
    def _check_worker(self, config: Any) -> None:
        try:
            problems = self.backend.check_train_inputs(config)
        finally:
            self.app.call_from_thread(setattr, self.query_one("#start", Button), "disabled", False)
        self.app.call_from_thread(self._checked, config, problems)

    def _checked(self, config: Any, problems: dict[str, str]) -> None:
        if problems:
            self.show_errors(problems)
            return
        if self.running:
            return
        self.clear_errors()
        self.action_cancel_estimate()  # the run needs the machine more than a prediction of it
        self._open_live(TrainState(model=config.model, task=config.task))
        self.notify(
            f"Training {config.model} for {config.task} in the background. Loading the model…",
            title="Train",
            markup=False,
        )
        self._train_worker(config, self.state, self.detach_event)

    # -- estimate: a few real steps in a process of its own, the prediction shown under the buttons -------
    @on(Button.Pressed, "#estimate")
    def action_estimate(self) -> None:
        """Check the form as Start does, then time a few real steps of it (``hubmgr train --dry-run``) and
        show the predicted time and peak memory; pressed again while it goes, stop it."""
        if self._estimate_cancel is not None:
            self.action_cancel_estimate()
            return
        config = self._form_config()
        if config is None:
            return
        self.clear_errors()
        self.query_one(TabbedContent).active = "tab-setup"
        self._estimate_cancel = cancel = threading.Event()
        self._estimate_key = self._estimate_form()
        self._spin_frame = 0
        self._spin()
        self._spinner = self.set_interval(0.1, self._spin)
        self._reveal_estimate()
        self.refresh_bindings()
        self._estimate_worker(config, cancel)

    def _reveal_estimate(self) -> None:
        """Scroll the form to the estimate line (it sits under the buttons, below the fold of a long form)."""
        result = self.query_one("#estimate-result", Static)
        self.call_after_refresh(lambda: result.scroll_visible(animate=False))

    _SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def _spin(self) -> None:
        frame = self._SPINNER[self._spin_frame % len(self._SPINNER)]
        self._spin_frame += 1
        self._show_estimate(
            Text(f"{frame} Estimating… (checking the form, then a few real training steps; Esc or Ctrl+T stops)")
        )

    def _show_estimate(self, content: Text | str) -> None:
        result = self.query_one("#estimate-result", Static)
        result.update(content)
        result.set_class(bool(content), "-shown")

    def _estimate_form(self) -> dict[str, Any]:
        """What an estimate depends on: the form as typed (the options of the chosen task only)."""
        snapshot = self._form_snapshot()
        snapshot["options"] = (snapshot.get("options") or {}).get(self._options_task or "")
        return snapshot

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None

    def action_cancel_estimate(self) -> None:
        """Stop the estimate going (its process is killed); nothing is shown of it."""
        if self._estimate_cancel is None:
            return
        self._estimate_cancel.set()
        self._estimate_cancel = None
        self._estimate_key = None
        self._stop_spinner()
        self._show_estimate(Text("Estimate stopped.", style="dim"))
        self.refresh_bindings()

    @work(thread=True, group="train-estimate", exit_on_error=False, description="estimating a run")
    def _estimate_worker(self, config: TrainConfig, cancel: threading.Event) -> None:
        try:
            problems = self.backend.check_train_inputs(config)
            if problems or cancel.is_set():
                self.app.call_from_thread(self._estimated, cancel, None, problems, None)
                return
            report = self.backend.estimate_run(config, cancel=cancel)
        except HubmgrError as exc:
            message = self.backend.form_message(exc, config.task)
            self.app.call_from_thread(self._estimated, cancel, None, {}, message)
            return
        self.app.call_from_thread(self._estimated, cancel, report, {}, None)

    def _estimated(self, cancel: threading.Event, report: Any, problems: dict[str, str], error: str | None) -> None:
        if cancel is not self._estimate_cancel or cancel.is_set():  # stopped, or the form changed meanwhile
            return
        self._estimate_cancel = None
        self._stop_spinner()
        self.refresh_bindings()
        if problems:
            self._estimate_key = None
            self._show_estimate("")
            self.show_errors(problems)
        elif error is not None:
            self._estimate_key = None
            self._show_estimate(Text(f"No estimate: {error}", style="red"))
            self._reveal_estimate()
        elif report is not None:
            self._show_estimate(estimate_text(report))
            self._reveal_estimate()

    def _estimate_invalidated(self) -> None:
        """The form changed: the estimate shown (or going) is of other settings."""
        if self._estimate_key is None or self._estimate_form() == self._estimate_key:
            return
        if self._estimate_cancel is not None:
            self._estimate_cancel.set()
            self._estimate_cancel = None
            self._stop_spinner()
            self.refresh_bindings()
        self._estimate_key = None
        self._show_estimate(Text("The settings changed since the estimate; Ctrl+T estimates again.", style="dim"))

    def on_unmount(self) -> None:
        if self._estimate_cancel is not None:
            self._estimate_cancel.set()

    def attach(self, run_id: str) -> None:
        """Show a running run (started here, by the CLI, a script or another TUI) live."""
        if self.state is not None and self.state.run_id == run_id and self.running:
            self.query_one(TabbedContent).active = "tab-live"
            return
        self.detach()
        self._open_live(TrainState(run_id=run_id, status="running"))
        self._follow_worker(run_id, self.state, self.detach_event)

    def detach(self) -> None:
        """Stop following the current run (it goes on)."""
        if self.detach_event is not None:
            self.detach_event.set()

    def _open_live(self, state: TrainState) -> None:
        self.state = state
        self.detach_event = threading.Event()
        self.query_one("#loss-chart", MetricsChart).set_series({})
        table = self.query_one("#eval-table", DataTable)
        table.clear(columns=True)
        cancel = self.query_one("#cancel", Button)
        cancel.disabled = False
        cancel.display = True
        self.query_one("#to-runs", Button).disabled = True
        self.query_one(TabbedContent).active = "tab-live"
        self.query_one("#cancel", Button).focus()
        self._render_state()
        self.refresh_bindings()

    @work(thread=True, group="train", exit_on_error=False, description="training")
    def _train_worker(self, config: TrainConfig, state: TrainState, detach: threading.Event) -> None:
        state.run_id = self.backend.start_run(config)
        self.post_message(TrainUpdated())
        self._follow(state.run_id, state, detach)

    @work(thread=True, group="train", exit_on_error=False, description="following a run")
    def _follow_worker(self, run_id: str, state: TrainState, detach: threading.Event) -> None:
        self._follow(run_id, state, detach)

    def _follow(self, run_id: str, state: TrainState, detach: threading.Event) -> None:
        def on_event(event: tev.TrainEvent) -> None:
            state.apply(event)
            self.post_message(TrainUpdated())

        record = self.backend.follow_run(run_id, on_event=on_event, should_stop=detach.is_set)
        if not detach.is_set():
            self.post_message(TrainDone(record))

    @on(Button.Pressed, "#cancel")
    def action_cancel_run(self) -> None:
        if not self.running or self.state is None or not self.state.run_id:
            return
        self.query_one("#cancel", Button).disabled = True
        self._stop_worker(self.state.run_id)

    @work(thread=True, group="train-stop", exit_on_error=False, description="stopping a run")
    def _stop_worker(self, run_id: str) -> None:
        if self.backend.stop_run(run_id):
            self.app.call_from_thread(
                self.notify,
                f"Stopping run {run_id} after this step; it saves a checkpoint.",
                title="Train",
                markup=False,
            )

    def action_attach_latest(self) -> None:
        self._attach_latest_worker()

    @work(thread=True, group="train-attach", exclusive=True, exit_on_error=False)
    def _attach_latest_worker(self) -> None:
        running = [r for r in self.backend.list_runs() if r.status == "running"]
        if not running:
            self.app.call_from_thread(self.notify, "No run is going now; start one, or see Runs (5).", title="Train")
            return
        self.app.call_from_thread(self.attach, running[0].id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":
            return self.running
        if action == "start":
            return not self.running  # one run at a time from this screen
        if action == "cancel_estimate":
            return self._estimate_cancel is not None
        return True

    @on(Button.Pressed, "#to-runs")
    def _to_runs(self) -> None:
        self.hub_app.action_goto("runs")

    def action_toggle_view(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-live" if tabs.active == "tab-setup" else "tab-setup"

    # -- live view -----------------------------------------------------------------------------------
    def on_train_updated(self, _message: TrainUpdated) -> None:
        self._render_state()

    def on_train_done(self, message: TrainDone) -> None:
        state = self.state
        result = message.result
        if state is not None:
            status = getattr(result, "status", None) or state.status
            if state.status in ("starting", "running"):
                state.status = status
            if status == "failed" and not state.error:
                state.error = getattr(result, "error", None) or "The run failed; see `hubmgr runs show` for its log."
            if status == "interrupted":
                state.status = status
                state.error = state.error or "Its process ended without finishing; resume it from Runs (R)."
            state.run_id = getattr(result, "run_id", None) or getattr(result, "id", None) or state.run_id
            state.output_dir = state.output_dir or (str(getattr(result, "output_dir", "") or "") or None)
            state.metrics = dict(getattr(result, "metrics", None) or state.metrics)
        self._finished()
        status = state.status if state else "completed"
        if status == "completed":
            why = f" Stopped: {state.stop_reason}." if state and state.stop_reason else ""
            self.notify(
                f"Run {state.run_id if state else ''} finished; the adapter is in {state.output_dir if state else '?'}.{why}",
                title="Train",
                markup=False,
                timeout=10,
            )
            for note in state.notes if state else []:
                self.notify(note, title="Train", severity="warning", markup=False, timeout=15)
        elif status in ("cancelled", "interrupted"):
            run_id = state.run_id if state else ""
            self.notify(
                f"Run {run_id} {'stopped' if status == 'cancelled' else 'was interrupted'}; the last checkpoint"
                f" is kept. Resume it from Runs (R), or: hubmgr runs resume {run_id}",
                title="Train",
                severity="warning",
                markup=False,
                timeout=12,
            )
        elif status == "failed":
            self.notify(
                state.error if state and state.error else "The run failed.",
                title="Train",
                severity="error",
                markup=False,
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "train" and event.state == WorkerState.ERROR:
            if self.state is not None:
                self.state.status = "failed"
                self.state.error = str(event.worker.error)
            self._finished()

    def _finished(self) -> None:
        if self.state is not None and self.state.status not in ("starting", "running"):
            self.state.eta = 0.0 if self.state.status == "completed" else None
        cancel = self.query_one("#cancel", Button)
        cancel.disabled = True
        cancel.display = False  # nothing is left to stop
        self.query_one("#to-runs", Button).disabled = False
        self._render_state()
        self.hub_app.runs_signal.publish(None)
        self.refresh_bindings()

    def _render_state(self) -> None:
        s = self.state
        if s is None:
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_column(style="bold")
        grid.add_column()
        status = Text(s.status, style=STATUS_STYLE.get(s.status, "bold"))
        grid.add_row("Run", Text(s.run_id or "…"), "Status", status)
        grid.add_row("Model", Text(one_line(s.model, 60)), "Task", Text(s.task))
        steps = f"{s.step}/{s.total_steps}" if s.total_steps else str(s.step)
        grid.add_row("Step", steps, "Epoch", f"{s.epoch:.2f}")
        # loss and learning rate are logged every logging_steps: say which step they are from when the
        # run has moved on since
        logged = f" (step {s.logged_step})" if 0 < s.logged_step < s.step else ""
        grid.add_row(
            "Loss",
            number(s.loss) + (logged if s.loss is not None else ""),
            "Learning rate",
            number(s.learning_rate) + (logged if s.learning_rate is not None else ""),
        )
        live = s.status in ("starting", "running")
        sps = f"{s.samples_per_second:.1f}" if s.samples_per_second else "-"
        eta = duration(s.eta) if live or s.status == "completed" else "-"
        if s.budget == "auto" and s.status == "running" and s.eta:
            eta = f"at most {eta} (stops when the metric plateaus)"
        grid.add_row("Samples/s", sps, "ETA", eta)
        if s.device or s.trainable_params:
            share = f" ({100 * s.trainable_params / s.total_params:.2f}%)" if s.total_params else ""
            grid.add_row("Device", s.device or "-", "Trainable", f"{s.trainable_params:,}{share}")
        if s.status in ("completed", "cancelled", "failed") and s.output_dir:
            grid.add_row("Output", Text(one_line(s.output_dir, 70)), "Time", duration(s.seconds) if s.seconds else "-")
        elif s.last_checkpoint:
            grid.add_row("Checkpoint", Text(one_line(s.last_checkpoint, 70)), "", "")
        if s.error:
            grid.add_row("Error", Text(s.error, style="red"), "", "")
        if s.stop_reason:
            grid.add_row("Stopped", Text(s.stop_reason), "", "")
        for note in s.notes:
            grid.add_row("Note", Text(note, style="yellow"), "", "")
        self.query_one("#train-status", Static).update(grid)

        bar = self.query_one("#train-progress", ProgressBar)
        if s.total_steps:
            done = s.total_steps if s.status == "completed" else min(s.step, s.total_steps)
            bar.update(total=s.total_steps, progress=done)
        elif not live:  # ended before it knew its steps (a failure while loading): no more "working" animation
            bar.update(total=1, progress=0)
        self.query_one("#loss-chart", MetricsChart).set_series(
            {"loss": ([p[0] for p in s.loss_points], [p[1] for p in s.loss_points])}
        )
        self._render_evals(s)

    def _render_evals(self, s: TrainState) -> None:
        table = self.query_one("#eval-table", DataTable)
        names = ordered((name for _, metrics in s.evals for name in metrics), s.main_metric)
        if not s.evals:
            table.display = False
            return
        table.display = True
        table.clear(columns=True)
        table.add_column("Eval step", key="step")
        for name in names:
            table.add_column(name, key=name)
        for step, metrics in s.evals:
            table.add_row(plain(step, right=True), *[plain(number(metrics.get(n)), right=True) for n in names])


def estimate_text(report: Any) -> Text:
    """A :class:`hubmgr.train.trial.TrialReport` in the form's words: the whole run's time, its steps, the
    peak memory and whether it fits, and what the trial measured."""
    from hubmgr.tui.format import human_bytes

    epochs = f"epochs of {report.steps_per_epoch:,} steps of batch size {report.batch_size}"
    if report.auto and report.steps_low != report.steps_high:
        when = f"between {duration(report.seconds_low)} and {duration(report.seconds_high)}"
        steps = (
            f"{report.steps_low:,} to {report.steps_high:,} steps"
            f" ({report.steps_low / report.steps_per_epoch:.1f} to {report.steps_high / report.steps_per_epoch:.1f}"
            f" {epochs}; Epochs auto stops when the eval metric plateaus)"
        )
    else:
        when = f"about {duration(report.seconds_high)}"
        steps = f"{report.steps_high:,} steps ({report.steps_high / report.steps_per_epoch:.1f} {epochs})"
    text = Text()
    text.append("Estimate: ", style="bold")
    text.append(f"the whole run takes {when}, {steps}.")
    if report.time_budget is not None:
        text.append(f" The Time budget ({duration(report.time_budget)} of training) bounds it.")
    text.append(f"\nPeak {report.memory_kind}: {human_bytes(report.peak_memory_bytes)}")
    if report.available_memory_bytes:
        text.append(f" of {human_bytes(report.available_memory_bytes)} available: ")
        style = {"fits": "bold green", "tight": "bold yellow"}.get(report.verdict, "bold red")
        text.append(report.verdict, style=style)
    text.append(".")
    text.append(
        f"\nMeasured on {report.device} ({report.precision}): {report.trial_steps} real steps in"
        f" {duration(report.trial_seconds)}; loading takes {duration(report.startup_seconds)}, a step about"
        f" {report.step_seconds:.2g} s.",
        style="dim",
    )
    return text
