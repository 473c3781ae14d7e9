"""Plugins: what loaded, the tasks and hooks each provides, and what failed with its error; Enter on a
plugin (or a task) shows all there is to know about it."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.widgets import Button, DataTable, Label, Static

from hubmgr.tui.format import one_line, plain
from hubmgr.tui.messages import PluginsLoaded
from hubmgr.tui.screens.base import Dialog, MainScreen
from hubmgr.tui.widgets.tables import RowTable

#: the widths of the Tasks table's description and tags columns: longer texts wrap onto more lines
DESCRIPTION_WIDTH = 44
TAGS_WIDTH = 30


def plugin_details(plugin: Any, tasks: dict[str, Any]) -> Group:
    """Everything about one plugin: package, version, hooks, the tasks it registers, its errors."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    status = Text("failed", style="bold red") if plugin.error else Text("loaded", style="green")
    grid.add_row("Status", status)
    package = getattr(plugin, "package", None)
    grid.add_row("Package", Text(package or "- (registered in code, not by an installed package)"))
    grid.add_row("Version", Text(plugin.version or "-"))
    hooks = list(plugin.hooks or [])
    grid.add_row("Hooks", Text("\n".join(hooks) if hooks else "none"))
    names = list(getattr(plugin, "tasks", None) or [])
    if names:
        lines = Text()
        for i, name in enumerate(names):
            cls = tasks.get(name)
            lines.append(name, style="bold")
            description = getattr(cls, "description", "") if cls is not None else ""
            if description:
                lines.append(f": {one_line(description, 10_000)}")
            if i < len(names) - 1:
                lines.append("\n")
        grid.add_row("Tasks", lines)
    else:
        grid.add_row("Tasks", Text("none"))
    grid.add_row("Load errors", Text(plugin.error, style="red") if plugin.error else Text("none"))
    parts: list[Any] = [grid]
    if plugin.error:
        parts.append(Text("\nThe other plugins keep working. `hubmgr plugins` shows the same.", style="dim"))
    return Group(*parts)


def task_details(name: str, cls: Any, owner: str | None) -> Table:
    """Everything about one task: what it does, its metric, the Hub tags it fits, the plugin it comes from."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("Description", Text(one_line(getattr(cls, "description", "") or "-", 10_000)))
    grid.add_row("Main metric", Text(getattr(cls, "main_metric", "") or "-"))
    grid.add_row("Hub pipeline tags", Text(", ".join(getattr(cls, "pipeline_tags", ()) or ()) or "-"))
    grid.add_row("Plugin", Text(owner or "-"))
    return grid


class DetailsDialog(Dialog[None]):
    """A titled page of details; Esc, q or Enter (on its Close button) closes it."""

    AUTO_FOCUS = "#close"
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, body: Any) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog details-dialog"):
            yield Label(Text(self.title_text), classes="dialog-title")
            with VerticalScroll(id="details-scroll"):
                yield Static(self.body, id="details-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (Esc)", id="close", variant="primary", compact=True)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)


class PluginsScreen(MainScreen):
    MODE = "plugins"
    AUTO_FOCUS = "#plugins-table"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="plugins-refresh"),
        Binding("i", "details", "Details (Enter)", id="plugins-details"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.plugins: dict[str, Any] = {}
        self.tasks: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="plugins-body", can_focus=False):
            yield Label("Plugins", classes="section")
            plugins = RowTable(id="plugins-table")
            plugins.add_columns("Plugin", "Package", "Version", "Tasks", "Hooks", "Status")
            yield plugins
            yield Static("", id="plugin-errors")
            yield Label("Tasks", classes="section")
            tasks = RowTable(id="tasks-table")
            tasks.add_column("Task")
            tasks.add_column("Main metric")
            tasks.add_column("Description", width=DESCRIPTION_WIDTH)
            tasks.add_column("Hub pipeline tags", width=TAGS_WIDTH)
            yield tasks
            yield Static("Enter on a plugin or a task shows its details.", id="plugins-hint")

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, group="plugins", exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        plugins = self.backend.plugins()
        try:
            tasks, error = self.backend.tasks(), None
        except Exception as exc:  # listing plugins worked; show the task failure beside them
            tasks, error = {}, str(exc)
        self.post_message(PluginsLoaded(plugins, tasks, error))

    def on_plugins_loaded(self, message: PluginsLoaded) -> None:
        self.plugins = {p.name: p for p in message.plugins}
        self.tasks = dict(message.tasks)
        table = self.query_one("#plugins-table", DataTable)
        table.clear()
        failed = []
        for p in sorted(message.plugins, key=lambda p: (p.error is None, p.name)):
            status = Text("failed", style="bold red") if p.error else Text("ok", style="green")
            if p.error:
                failed.append(p)
            table.add_row(
                plain(p.name),
                plain(getattr(p, "package", None) or "-"),
                plain(p.version or "-"),
                plain(", ".join(getattr(p, "tasks", []) or []) or "-"),
                plain(", ".join(p.hooks) or "-"),
                status,
                key=p.name,
            )
        errors = Text()
        for p in failed:
            errors.append(f"✗ {p.name}: ", style="bold red")
            errors.append(one_line(p.error, 400) + "\n", style="red")
        if message.error:
            errors.append(f"✗ tasks: {message.error}\n", style="bold red")
        if failed or message.error:
            errors.append(
                "The other plugins keep working. Enter on a plugin shows its whole error; "
                "`hubmgr plugins` shows the same list.",
                style="dim",
            )
        panel = self.query_one("#plugin-errors", Static)
        panel.update(errors)
        panel.display = bool(failed or message.error)

        tasks = self.query_one("#tasks-table", DataTable)
        tasks.clear()
        for name, cls in sorted(message.tasks.items()):
            tasks.add_row(
                plain(name),
                plain(getattr(cls, "main_metric", "") or "-"),
                # the whole description, wrapped in its column (the row grows to fit it)
                plain(one_line(getattr(cls, "description", "") or "", 10_000)),
                plain(", ".join(getattr(cls, "pipeline_tags", ()) or ()) or "-"),
                key=name,
                height=None,
            )
        self.refresh_bindings()

    # -- details -------------------------------------------------------------------------------------
    def _row_key(self, table: DataTable[Any]) -> str | None:
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return str(key) if key is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "details":
            return bool(self.plugins or self.tasks)
        return True

    def action_details(self) -> None:
        tasks_table = self.query_one("#tasks-table", DataTable)
        if tasks_table.has_focus:
            self.show_task(self._row_key(tasks_table))
        else:
            self.show_plugin(self._row_key(self.query_one("#plugins-table", DataTable)))

    @on(DataTable.RowSelected, "#plugins-table")
    def _plugin_selected(self, event: DataTable.RowSelected) -> None:
        self.show_plugin(str(event.row_key.value) if event.row_key.value is not None else None)

    @on(DataTable.RowSelected, "#tasks-table")
    def _task_selected(self, event: DataTable.RowSelected) -> None:
        self.show_task(str(event.row_key.value) if event.row_key.value is not None else None)

    def show_plugin(self, name: str | None) -> None:
        plugin = self.plugins.get(name) if name else None
        if plugin is not None:
            self.app.push_screen(DetailsDialog(f"Plugin {plugin.name}", plugin_details(plugin, self.tasks)))

    def show_task(self, name: str | None) -> None:
        cls = self.tasks.get(name) if name else None
        if name is None or cls is None:
            return
        owner = next((p.name for p in self.plugins.values() if name in (getattr(p, "tasks", None) or [])), None)
        self.app.push_screen(DetailsDialog(f"Task {name}", task_details(name, cls, owner)))
