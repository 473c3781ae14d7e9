"""DataTables: row lists whose Home/End go to the first/last row (DataTable's default scrolls sideways), and
tables of figures that take no Tab stop."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable


class RowTable(DataTable[str | Text]):
    """A row-cursor DataTable for lists (results, cache, runs)."""

    BINDINGS = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)


class InfoTable(DataTable[Any], can_focus=False):
    """A table that only shows figures (no cursor): it takes no Tab stop, since focusing it would show nothing."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="none", show_cursor=False)
