"""The frame every main screen shares: the navigation tabs, the offline banner, the footer, and the one
place where a failed worker becomes a notification."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message_pump import MessagePump
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from hubmgr.tui.widgets.banner import OfflineBanner
from hubmgr.tui.widgets.navbar import NavBar

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.tui.app import HubmgrApp
    from hubmgr.tui.backend import BackendProtocol

    # the mixin below is only ever mixed into screens: a MessagePump to mypy (it has .app), object at run time
    _MixinBase = MessagePump
else:
    _MixinBase = object

#: what a dialog hands back to the callback of ``push_screen`` when it is dismissed
ResultT = TypeVar("ResultT")


def hub_app_of(node: MessagePump) -> "HubmgrApp":
    """The running :class:`~hubmgr.tui.app.HubmgrApp`.

    Textual types ``node.app`` as ``App[object]`` (a widget cannot know its app's class); hubmgr's screens
    and widgets only ever run inside a HubmgrApp, which is what the cast says.
    """
    return cast("HubmgrApp", node.app)


class WorkerErrorsMixin(_MixinBase):
    """Turns a worker that ended in an error into a notification (workers never exit the app)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            hub_app_of(self).report_error(event.worker.error)


class MainScreen(WorkerErrorsMixin, Screen[None]):
    """Base of the numbered screens (and of screens pushed on top of them).

    Subclasses set ``MODE`` (which tab is lit) and implement :meth:`compose_body`.
    """

    MODE: ClassVar[str] = "browse"

    @property
    def hub_app(self) -> "HubmgrApp":
        return hub_app_of(self)

    @property
    def backend(self) -> "BackendProtocol":
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


class Dialog(WorkerErrorsMixin, ModalScreen[ResultT]):
    """Base of modal dialogs; ``ResultT`` is what :meth:`dismiss` hands back."""

    @property
    def backend(self) -> "BackendProtocol":
        return hub_app_of(self).backend
