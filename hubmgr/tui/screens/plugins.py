"""Plugins: what loaded, the tasks and hooks each provides, and what failed with its error."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Static

from hubmgr.tui.format import one_line, plain
from hubmgr.tui.messages import PluginsLoaded
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.widgets.tables import RowTable


class PluginsScreen(MainScreen):
    MODE = "plugins"
    AUTO_FOCUS = "#plugins-table"
    BINDINGS = [Binding("r", "refresh", "Refresh", id="plugins-refresh")]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="plugins-body"):
            yield Label("Plugins", classes="section")
            plugins = RowTable(id="plugins-table")
            plugins.add_columns("Plugin", "Version", "Tasks", "Hooks", "Status")
            yield plugins
            yield Static("", id="plugin-errors")
            yield Label("Tasks", classes="section")
            tasks = RowTable(id="tasks-table")
            tasks.add_columns("Task", "Main metric", "Description", "Hub pipeline tags")
            yield tasks

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
        table = self.query_one("#plugins-table", DataTable)
        table.clear()
        failed = []
        for p in sorted(message.plugins, key=lambda p: (p.error is None, p.name)):
            status = Text("failed", style="bold red") if p.error else Text("ok", style="green")
            if p.error:
                failed.append(p)
            table.add_row(
                plain(p.name),
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
            errors.append("The other plugins keep working. `hubmgr plugins` shows the same list.", style="dim")
        panel = self.query_one("#plugin-errors", Static)
        panel.update(errors)
        panel.display = bool(failed or message.error)

        tasks = self.query_one("#tasks-table", DataTable)
        tasks.clear()
        for name, cls in sorted(message.tasks.items()):
            tasks.add_row(
                plain(name),
                plain(getattr(cls, "main_metric", "") or "-"),
                plain(one_line(getattr(cls, "description", "") or "", 60)),
                plain(", ".join(getattr(cls, "pipeline_tags", ()) or ()) or "-"),
                key=name,
            )
