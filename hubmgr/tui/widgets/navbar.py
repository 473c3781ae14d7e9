"""The row of screen tabs at the top of every main screen (click one, or press its number)."""

from __future__ import annotations

from textual.widgets import Tab, Tabs

#: (mode name, label) in the order of their number keys.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("browse", "Browse"),
    ("downloads", "Downloads"),
    ("local", "Local"),
    ("train", "Train"),
    ("runs", "Runs"),
    ("plugins", "Plugins"),
)


class NavBar(Tabs):
    """Tabs bound to the app's modes. Not focusable: the number keys switch screens."""

    can_focus = False

    DEFAULT_CSS = """
    NavBar {
        width: 1fr;
    }
    NavBar Tab {
        padding: 0 1;
    }
    """

    def __init__(self, active: str) -> None:
        tabs = [Tab(f"{i} {label}", id=f"nav-{mode}") for i, (mode, label) in enumerate(SECTIONS, 1)]
        super().__init__(*tabs, active=f"nav-{active}")
        self._mode = active

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab is None or event.tab.id is None:
            return
        mode = event.tab.id.removeprefix("nav-")
        if mode != self.app.current_mode and mode in dict(SECTIONS):
            self.app.switch_mode(mode)
            # this bar belongs to one screen: keep showing that screen as active
            self.active = f"nav-{self._mode}"
