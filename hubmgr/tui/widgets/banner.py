"""A one-line banner shown while the Hub is offline or unreachable."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


class OfflineBanner(Static):
    """Watches ``app.hub_offline`` (a reason string, empty when the Hub answers)."""

    DEFAULT_CSS = """
    OfflineBanner {
        width: 1fr;
        height: auto;
        background: $warning 30%;
        color: $text;
        padding: 0 1;
        display: none;
    }
    OfflineBanner.-shown {
        display: block;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__("", **kwargs)

    def on_mount(self) -> None:
        self.watch(self.app, "hub_offline", self._show, init=True)

    def _show(self, reason: str) -> None:
        self.set_class(bool(reason), "-shown")
        if reason:
            self.update(f"⚠ {reason} Local, Train and Runs keep working.")
