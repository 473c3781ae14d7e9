"""Train: choose a model, a task and data, adjust the settings (a form built from TrainConfig and the
task's options), start; then watch the loss curve, learning rate, samples/s, ETA and eval metrics.

A run is a process of its own (:mod:`hubmgr.runs.live`): Start launches it in the background and the
screen attaches to it, reading its event log; quitting the TUI leaves it going (the app asks), and this
screen (``a``) or Runs can attach to any running run, wherever it was started. ``c`` asks the run to save
a checkpoint and stop. The TUI itself never imports torch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
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

from hubmgr.errors import HubmgrError
from hubmgr.metrics import ordered
from hubmgr.train import events as tev
from hubmgr.tui.format import duration, number, one_line, plain
from hubmgr.tui.messages import TrainDone, TrainUpdated
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.screens.dialogs import FilePickerScreen
from hubmgr.tui.widgets.chart import MetricsChart
from hubmgr.tui.widgets.form import DataclassForm
from hubmgr.tui.widgets.inputs import Choice
from hubmgr.tui.widgets.tables import InfoTable

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

    def apply(self, event: Any) -> None:
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
            if event.loss is not None:
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
            if event.status == "completed":
                self.eta = 0.0


class TrainScreen(MainScreen):
    MODE = "train"
    AUTO_FOCUS = "#train-tabs Tabs"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", id="train-start"),
        Binding("c", "cancel_run", "Stop run", id="train-cancel"),
        Binding("a", "attach_latest", "Attach", id="train-attach"),
        Binding("ctrl+o", "pick_data", "Pick data", id="train-pick"),
        Binding("ctrl+l", "toggle_view", "Setup/Live", id="train-toggle"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state: TrainState | None = None
        #: set to stop following (quitting, or attaching to another run); the run itself goes on
        self.detach_event: threading.Event | None = None
        self.cancel_event: threading.Event | None = None
        self._tasks: dict[str, Any] = {}
        self._options_task: str | None = None

    # -- layout --------------------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="train-tabs", initial="tab-setup"):
            with TabPane("Setup", id="tab-setup"):
                with VerticalScroll(id="train-setup", can_focus=False):
                    yield Label("Model", classes="section")
                    with Horizontal(classes="field-row"):
                        yield Label("Cached model", classes="field-label")
                        yield Choice([], prompt="choose a downloaded model", id="model-select", compact=True)
                    with Horizontal(classes="field-row"):
                        yield Label("…or path / repo id", classes="field-label")
                        yield Input(placeholder="a local model folder or org/name", id="model-path", compact=True)
                    yield Label("Task", classes="section")
                    with Horizontal(classes="field-row"):
                        yield Label("Task", classes="field-label")
                        yield Choice([], prompt="choose a task", id="task-select", compact=True)
                    yield Static("", id="task-description", classes="field-help")
                    yield Label("Data", classes="section")
                    with Horizontal(classes="field-row"):
                        yield Label("Training data", classes="field-label")
                        yield Input(
                            placeholder="CSV / JSON / JSONL / Parquet file, folder, or Hub dataset id",
                            id="data-path",
                            compact=True,
                        )
                        yield Button("Browse…", id="pick-data", compact=True)
                    with Horizontal(classes="field-row"):
                        yield Label("Eval data", classes="field-label")
                        yield Input(
                            placeholder="optional: default holds out a fraction of the training data",
                            id="eval-path",
                            compact=True,
                        )
                        yield Button("Browse…", id="pick-eval", compact=True)
                    yield Label("Task options", classes="section")
                    yield Vertical(id="task-options")
                    yield Vertical(id="config-form-box")
                    with Horizontal(classes="button-row"):
                        yield Button("Start training (Ctrl+S)", id="start", variant="success")
            with TabPane("Live", id="tab-live"):
                with Vertical(id="train-live"):
                    yield Static("No run yet. Fill in the setup and press Ctrl+S.", id="train-status")
                    with Horizontal(id="train-progress-row"):
                        yield ProgressBar(id="train-progress", show_eta=False)
                        yield Button("Stop run (c)", id="cancel", variant="warning", disabled=True, compact=True)
                        yield Button("Show in Runs (5)", id="to-runs", disabled=True, compact=True)
                    yield MetricsChart("training loss", id="loss-chart")
                    yield InfoTable(id="eval-table")

    def on_mount(self) -> None:
        self._build_config_form()
        self._load_choices()
        self.hub_app.cache_signal.subscribe(self, lambda _: self._load_choices())

    def _build_config_form(self) -> None:
        box = self.query_one("#config-form-box", Vertical)
        try:
            specs = self.backend.train_specs()
        except Exception as exc:
            box.mount(Static(Text(f"Training settings are unavailable: {exc}", style="red")))
            return
        box.mount(DataclassForm(specs, parse=self.backend.parse_field, prefix="cfg", id="config-form"))

    @work(thread=True, group="train-choices", exclusive=True, exit_on_error=False)
    def _load_choices(self) -> None:
        tasks = self.backend.tasks()
        try:
            cached = [r.repo_id for r in self.backend.list_cached() if getattr(r, "repo_type", "model") == "model"]
        except HubmgrError:
            cached = []
        self.app.call_from_thread(self._set_choices, tasks, cached)

    def _set_choices(self, tasks: dict[str, Any], cached: list[str]) -> None:
        self._tasks = tasks
        task_select = self.query_one("#task-select", Select)
        current_task = task_select.value
        task_select.set_options([(name, name) for name in sorted(tasks)])
        if current_task in tasks:
            task_select.value = current_task
        elif tasks:
            task_select.value = "text-classification" if "text-classification" in tasks else sorted(tasks)[0]
        model_select = self.query_one("#model-select", Select)
        current_model = model_select.value
        model_select.set_options([(repo, repo) for repo in cached])
        if current_model in cached:
            model_select.value = current_model
        self.take_model_request()

    def take_model_request(self) -> None:
        """Apply a model handed over by another screen (Local's or Model's "train")."""
        model = self.hub_app.train_model_request
        if not model:
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
        self.query_one("#task-select", Select).focus()

    # -- task options --------------------------------------------------------------------------------
    @on(Select.Changed, "#task-select")
    async def _task_changed(self, event: Select.Changed) -> None:
        name = None if event.value is Select.NULL else str(event.value)
        if name == self._options_task:
            return
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
        await box.mount(
            DataclassForm(specs, parse=self.backend.parse_field, prefix="opt", groups=False, id="options-form")
        )

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

    def _collect(self) -> dict[str, Any]:
        path = self.query_one("#model-path", Input).value.strip()
        selected = self.query_one("#model-select", Select).value
        model = path or ("" if selected is Select.NULL else str(selected))
        task = self.query_one("#task-select", Select).value
        values: dict[str, Any] = {}
        forms = self.query("#config-form")
        if forms:
            values.update(forms.first(DataclassForm).values())
        options: dict[str, Any] = {}
        opt_forms = self.query("#options-form")
        if opt_forms:
            options = opt_forms.first(DataclassForm).values(only_changed=True)
        values.update(
            model=model,
            task="" if task is Select.NULL else str(task),
            data=self.query_one("#data-path", Input).value.strip(),
            eval_data=self.query_one("#eval-path", Input).value.strip() or None,
            options=options,
        )
        return values

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.running:
            self.notify("A run is already going; cancel it first.", severity="warning")
            return
        try:
            config = self.backend.make_train_config(self._collect())
        except Exception as exc:
            self.hub_app.report_error(exc)
            return
        self._open_live(TrainState(model=config.model, task=config.task))
        self.notify(
            f"Training {config.model} for {config.task} in the background. Loading the model…",
            title="Train",
            markup=False,
        )
        self._train_worker(config, self.state, self.detach_event)

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
        self.query_one("#cancel", Button).disabled = False
        self.query_one("#to-runs", Button).disabled = True
        self.query_one(TabbedContent).active = "tab-live"
        self.query_one("#cancel", Button).focus()
        self._render_state()
        self.refresh_bindings()

    @work(thread=True, group="train", exit_on_error=False, description="training")
    def _train_worker(self, config: Any, state: TrainState, detach: threading.Event) -> None:
        state.run_id = self.backend.start_run(config)
        self.post_message(TrainUpdated())
        self._follow(state.run_id, state, detach)

    @work(thread=True, group="train", exit_on_error=False, description="following a run")
    def _follow_worker(self, run_id: str, state: TrainState, detach: threading.Event) -> None:
        self._follow(run_id, state, detach)

    def _follow(self, run_id: str, state: TrainState, detach: threading.Event) -> None:
        def on_event(event: Any) -> None:
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
        self.query_one("#cancel", Button).disabled = True
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
        grid.add_row("Loss", number(s.loss), "Learning rate", number(s.learning_rate))
        sps = f"{s.samples_per_second:.1f}" if s.samples_per_second else "-"
        eta = duration(s.eta)
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
            bar.update(total=s.total_steps, progress=min(s.step, s.total_steps))
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
