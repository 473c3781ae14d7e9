"""Widgets that take typing, and the one rule the whole TUI follows for them.

While an Input, a TextArea or a Select has the focus, the printable keys go to it (digits and letters
never switch screens or run a screen's action from there); Esc leaves the field (the focus goes to the
screen's main widget, or nowhere) and keeps what was typed; only with no such widget focused do Esc and
the screens' single-letter and number keys act. The app's priority ``escape`` binding and
:meth:`hubmgr.tui.screens.base.LeavesInput.leave_input` implement the Esc half; :class:`Choice` makes a
Select take the printable keys the way an Input does.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.widget import Widget
from textual.widgets import Input, Select, TextArea


def takes_typing(widget: Widget | None) -> bool:
    """Whether the printable keys go to ``widget`` (a text field or a choice list), not to the screen."""
    return isinstance(widget, (Input, TextArea, Select))


class Choice(Select[Any]):
    """A Select that takes the printable keys while it has the focus, as an Input does: a letter or a
    digit opens the list on the first option that matches what was typed (Space and Enter open it too).
    Screen keys bound to letters or digits therefore never fire from a focused choice; Esc leaves it."""

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        return character is not None and character.isprintable()

    def on_key(self, event: events.Key) -> None:
        if event.character is None or not event.character.isprintable() or event.key == "space":
            return  # Space opens the list through Select's own binding
        event.stop()
        event.prevent_default()
        if not self.expanded:
            self.action_show_overlay()
        # the list takes it from here: it jumps to the first option that matches what was typed
        self.query_one("SelectOverlay").post_message(events.Key(event.key, event.character))
