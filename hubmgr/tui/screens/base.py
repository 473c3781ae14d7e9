"""The frame every main screen shares: the navigation tabs, the offline banner, the footer, and the one
place where a failed worker becomes a notification."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from hubmgr.tui.widgets.banner import OfflineBanner
from hubmgr.tui.widgets.navbar import NavBar

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.tui.app import HubmgrApp
    from hubmgr.tui.backend import Backend


class WorkerErrorsMixin:
    """Turns a worker that ended in an error into a notification (workers never exit the app)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.app.report_error(event.worker.error)  # type: ignore[attr-defined]


class MainScreen(WorkerErrorsMixin, Screen):
    """Base of the numbered screens (and of screens pushed on top of them).

    Subclasses set ``MODE`` (which tab is lit) and implement :meth:`compose_body`.
    """

    MODE: ClassVar[str] = "browse"

    @property
    def hub_app(self) -> "HubmgrApp":
        return self.app  # type: ignore[return-value]

    @property
    def backend(self) -> "Backend":
        return self.hub_app.backend

    def compose(self) -> ComposeResult:
        with Horizontal(id="topbar"):
            yield Static("hubmgr", id="brand")
            yield NavBar(self.MODE)
        yield OfflineBanner()
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()


class Dialog(WorkerErrorsMixin, ModalScreen):
    """Base of modal dialogs."""

    @property
    def backend(self) -> "Backend":
        return self.app.backend  # type: ignore[attr-defined]
