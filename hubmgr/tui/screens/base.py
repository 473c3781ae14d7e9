"""The frame every main screen shares: the navigation tabs, the offline banner, the footer, and the one
place where a failed worker becomes a notification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.actions import parse as parse_action
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message_pump import MessagePump
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from hubmgr.tui.widgets.banner import OfflineBanner
from hubmgr.tui.widgets.inputs import takes_typing
from hubmgr.tui.widgets.navbar import SECTIONS, NavBar

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


def own_bindings(screen: Screen[Any]) -> list[Binding]:
    """The bindings hubmgr's screen classes declare (Textual's own, such as Tab, left out), subclass first."""
    seen: set[str] = set()
    out: list[Binding] = []
    for cls in type(screen).__mro__:
        if cls.__module__.split(".")[0] != "hubmgr":
            continue
        for binding in cls.__dict__.get("BINDINGS", []):
            if not isinstance(binding, Binding):
                continue
            first_key = binding.key.split(",")[0]
            if first_key in seen:  # a subclass rebinds it
                continue
            seen.update(binding.key.split(","))
            out.append(binding)
    return out


def binding_applies(screen: Screen[Any], binding: Binding) -> bool:
    """Whether the screen's ``check_action`` lets ``binding`` act now."""
    try:
        namespace, name, params = parse_action(binding.action)
    except Exception:  # an action string that Textual itself would refuse
        return False
    target: Any = screen.app if namespace == "app" else screen
    return bool(target.check_action(name, params))


class LeavesInput:
    """Esc in a text field or choice list leaves it (what was typed stays) before it goes back or closes.

    The app's priority ``escape`` binding calls :meth:`leave_input` while such a widget has the focus; the
    focus moves to ``MAIN_WIDGET`` (default: ``AUTO_FOCUS`` when that is not itself a field), or nowhere.
    """

    MAIN_WIDGET: ClassVar[str | None] = None

    def main_widget(self) -> Widget | None:
        screen: Any = self
        selector = self.MAIN_WIDGET or (screen.AUTO_FOCUS if screen.AUTO_FOCUS not in (None, "", "*") else None)
        if not selector:
            return None
        for widget in screen.query(selector):
            if widget.focusable and not takes_typing(widget):
                return cast(Widget, widget)
        return None

    def leave_input(self) -> None:
        screen: Any = self
        target = self.main_widget()
        if target is not None:
            target.focus()
        else:
            screen.set_focus(None)


class MainScreen(LeavesInput, WorkerErrorsMixin, Screen[None]):
    """Base of the numbered screens (and of screens pushed on top of them).

    Subclasses set ``MODE`` (which tab is lit) and implement :meth:`compose_body`.
    """

    MODE: ClassVar[str] = "browse"
    #: the Help section that describes this screen (default: the label of its tab)
    HELP_SECTION: ClassVar[str | None] = None

    @property
    def help_section(self) -> str:
        return self.HELP_SECTION or dict(SECTIONS).get(self.MODE, self.MODE.capitalize())

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


class Dialog(LeavesInput, WorkerErrorsMixin, ModalScreen[ResultT]):
    """Base of modal dialogs; ``ResultT`` is what :meth:`dismiss` hands back."""

    @property
    def backend(self) -> "BackendProtocol":
        return hub_app_of(self).backend
