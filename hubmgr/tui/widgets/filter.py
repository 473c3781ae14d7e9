"""Filter as you type (``/``, as in k9s): an input over a table that filters its rows live.

Enter goes back to the table and keeps the filter; Esc clears it and goes back. The screen listens to
``Input.Changed`` of the bar (every keystroke) and hides rows that :func:`matches` refuses, and to
:class:`FilterBar.Closed` to focus its table again.
"""

from __future__ import annotations

from typing import Iterable

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


def matches(query: str, texts: Iterable[object]) -> bool:
    """True when every word of ``query`` is in one of ``texts`` (case-insensitive); an empty query matches."""
    words = query.lower().split()
    if not words:
        return True
    haystack = " ".join(str(t) for t in texts).lower()
    return all(w in haystack for w in words)


class FilterBar(Input):
    """The filter input; hidden until :meth:`open` (the screen binds ``/`` to it)."""

    DEFAULT_CSS = """
    FilterBar {
        display: none;
        width: 1fr;
    }
    FilterBar.-shown {
        display: block;
    }
    """
    BINDINGS = [
        Binding("escape", "close(True)", "Clear filter", show=True),
        Binding("enter", "close(False)", "Keep filter", show=False),
    ]

    class Closed(Message):
        """Enter or Esc in the bar: the screen focuses its table again."""

        def __init__(self, bar: "FilterBar") -> None:
            super().__init__()
            self.bar = bar

        @property
        def control(self) -> "FilterBar":
            return self.bar

    def __init__(self, what: str, *, id: str | None = None) -> None:
        super().__init__(placeholder=f"Filter {what} as you type (Enter keeps it, Esc clears it)", id=id, compact=True)

    @property
    def filter_text(self) -> str:
        """The filter in force ('' when none)."""
        return self.value.strip() if self.has_class("-shown") else ""

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def action_close(self, clear: bool) -> None:
        if clear:
            self.value = ""
            self.remove_class("-shown")
        elif not self.value.strip():
            self.remove_class("-shown")
        self.post_message(self.Closed(self))
