"""The hubmgr terminal UI: one Textual app with a screen per job (browse, downloads, local cache,
train, runs, plugins), built around an injected :class:`~hubmgr.tui.backend.Backend`.

Opening the app imports no heavy library (torch loads when training or evaluation starts).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.reactive import reactive
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from hubmgr.errors import HubmgrError, HubUnreachableError, disk_full_from
from hubmgr.tui import downloads as dl
from hubmgr.tui.backend import Backend
from hubmgr.tui.format import human_bytes
from hubmgr.tui.messages import DownloadsChanged, DownloadUpdated, HubUnreachable
from hubmgr.tui.screens.browse import BrowseScreen
from hubmgr.tui.screens.model import ModelScreen
from hubmgr.tui.screens.dialogs import HelpScreen
from hubmgr.tui.screens.downloads import DownloadsScreen
from hubmgr.tui.screens.local import LocalScreen
from hubmgr.tui.screens.plugins import PluginsScreen
from hubmgr.tui.screens.runs import RunsScreen
from hubmgr.tui.screens.train import TrainScreen
from hubmgr.tui.widgets.navbar import SECTIONS

OFFLINE_REASON = "Offline mode (HF_HUB_OFFLINE is set): the Hub is not contacted."


@dataclass(frozen=True)
class PaletteCommand:
    name: str
    help: str
    callback: Callable[[], Any]


class HubmgrCommands(Provider):
    """Command palette entries for the app's actions, plus "Open model owner/name" from the query."""

    def _commands(self) -> list[PaletteCommand]:
        app = self.app
        return list(app.palette_commands()) if isinstance(app, HubmgrApp) else []

    async def discover(self) -> Hits:
        for cmd in self._commands():
            yield DiscoveryHit(cmd.name, cmd.callback, help=cmd.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for cmd in self._commands():
            score = matcher.match(cmd.name)
            if score > 0:
                yield Hit(score, matcher.highlight(cmd.name), cmd.callback, help=cmd.help)
        repo = query.strip()
        app = self.app
        if "/" in repo and " " not in repo and isinstance(app, HubmgrApp):
            yield Hit(1.0, f"Open model {repo}", partial(app.open_model, repo), help="Show this repo's card, files and fit")


class HubmgrApp(App[None]):
    """The hubmgr TUI.

    Args:
        backend: the door to the core (default: the real one, reading settings from the environment).
    """

    CSS_PATH = "app.tcss"
    TITLE = "hubmgr"
    MODES = {
        "browse": BrowseScreen,
        "downloads": DownloadsScreen,
        "local": LocalScreen,
        "train": TrainScreen,
        "runs": RunsScreen,
        "plugins": PluginsScreen,
    }
    DEFAULT_MODE = "browse"
    COMMANDS = App.COMMANDS | {HubmgrCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        *[
            Binding(str(i), f"goto('{mode}')", label, show=False, id=f"goto-{mode}")
            for i, (mode, label) in enumerate(SECTIONS, 1)
        ],
        Binding("f1,question_mark", "help", "Help", id="help"),
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False, id="quit"),
    ]

    #: Why the Hub is not usable now ("" while it answers).
    hub_offline: reactive[str] = reactive("")

    def __init__(self, backend: Backend | None = None) -> None:
        super().__init__()
        self.backend = backend or Backend()
        self.downloads: list[dl.DownloadItem] = []
        #: published with a DownloadItem id on progress, or None when the queue itself changed
        self.downloads_signal: Signal[int | None] = Signal(self, "downloads")
        #: published when the local cache changed (download finished, repo deleted)
        self.cache_signal: Signal[None] = Signal(self, "cache")
        #: published when the run registry changed (a training run ended)
        self.runs_signal: Signal[None] = Signal(self, "runs")
        #: one-shot hand-over from another screen to the Train screen (model id/path to preselect)
        self.train_model_request: str | None = None
        if self.backend.offline():
            self.set_reactive(HubmgrApp.hub_offline, OFFLINE_REASON)

    # -- quitting ------------------------------------------------------------------------------------
    def stop_background_work(self) -> None:
        """Ask every download, training run and evaluation to stop (their threads must not outlive the app)."""
        for item in self.downloads:
            item.cancel.set()
        for mode, attr in (("train", "cancel_event"), ("runs", "eval_cancel")):
            screen = self.screen_for(mode)
            event = getattr(screen, attr, None) if screen is not None else None
            if event is not None:
                event.set()

    async def action_quit(self) -> None:
        self.stop_background_work()
        self.exit()

    def on_unmount(self) -> None:
        self.stop_background_work()

    # -- navigation ----------------------------------------------------------------------------------
    def action_goto(self, mode: str) -> None:
        if mode in self.MODES and mode != self.current_mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def open_model(self, repo_id: str) -> None:
        """Show one repo (from Browse, Local or the command palette)."""
        if self.current_mode != "browse":
            self.switch_mode("browse")
        self.push_screen(ModelScreen(repo_id))

    def train_with(self, model: str) -> None:
        """Go to Train with ``model`` chosen."""
        self.train_model_request = model
        self.switch_mode("train")
        screen = self.get_screen_stack("train")[0]
        if isinstance(screen, TrainScreen) and screen.is_mounted:
            screen.take_model_request()

    def screen_for(self, mode: str) -> Any:
        """The base screen of a mode if it was opened already, else None."""
        try:
            stack = self.get_screen_stack(mode)
        except KeyError:
            return None
        return stack[0] if stack else None

    # -- errors --------------------------------------------------------------------------------------
    def report_error(self, error: BaseException) -> None:
        """Show a failure as one notification; the app goes on."""
        if isinstance(error, HubUnreachableError):
            self.hub_offline = str(error)
        if isinstance(error, HubmgrError):
            self.notify(str(error), title="Error", severity="error", markup=False, timeout=8)
            return
        if isinstance(error, OSError):
            full = disk_full_from(error, getattr(error, "filename", None) or "files")
            if full is not None:
                self.notify(str(full), title="Error", severity="error", markup=False, timeout=8)
                return
        text = " ".join(str(error).split()) or type(error).__name__
        self.notify(f"Unexpected {type(error).__name__}: {text}", title="Error", severity="error", markup=False, timeout=10)

    def hub_answered(self) -> None:
        """A Hub call succeeded: drop the unreachable banner (offline mode stays)."""
        if self.hub_offline and self.hub_offline != OFFLINE_REASON:
            self.hub_offline = ""

    def on_hub_unreachable(self, message: HubUnreachable) -> None:
        self.hub_offline = message.reason

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error)

    # -- downloads -----------------------------------------------------------------------------------
    def enqueue_download(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
    ) -> dl.DownloadItem:
        """Add a repo to the download queue; it starts when the ones before it are done."""
        item = dl.DownloadItem(repo_id, revision=revision, include=include, exclude=exclude, allow_pickle=allow_pickle)
        self.downloads.append(item)
        self.downloads_signal.publish(None)
        self._pump_downloads()
        return item

    def download_item(self, item_id: int) -> dl.DownloadItem | None:
        return next((i for i in self.downloads if i.id == item_id), None)

    def cancel_download(self, item_id: int) -> None:
        item = self.download_item(item_id)
        if item is None:
            return
        if item.status == dl.RUNNING:
            item.cancel.set()
            self.notify(f"Cancelling {item.repo_id}; what is downloaded is kept for a resume.")
        elif item.status == dl.QUEUED:
            item.mark_finished(dl.CANCELLED)
            self.downloads_signal.publish(None)

    def resume_download(self, item_id: int) -> None:
        item = self.download_item(item_id)
        if item is None or not item.resumable:
            return
        item.status = dl.QUEUED
        item.error = None
        self.downloads_signal.publish(None)
        self._pump_downloads()

    def remove_download(self, item_id: int) -> None:
        item = self.download_item(item_id)
        if item is None or item.status == dl.RUNNING:
            return
        self.downloads.remove(item)
        self.downloads_signal.publish(None)

    def _pump_downloads(self) -> None:
        if any(i.status == dl.RUNNING for i in self.downloads):
            return
        nxt = next((i for i in self.downloads if i.status == dl.QUEUED), None)
        if nxt is None:
            return
        nxt.mark_running()
        self.downloads_signal.publish(None)
        self._download_worker(nxt)

    @work(thread=True, group="downloads", exit_on_error=False, description="download")
    def _download_worker(self, item: dl.DownloadItem) -> None:
        def on_event(event: Any) -> None:
            item.apply(event)
            self.post_message(DownloadUpdated(item.id))

        status, error = dl.DONE, None
        try:
            self.backend.download(
                item.repo_id,
                revision=item.revision,
                include=item.include,
                exclude=item.exclude,
                allow_pickle=item.allow_pickle,
                on_event=on_event,
                cancel=item.cancel,
            )
            if item.cancel.is_set():
                status = dl.CANCELLED
        except BaseException as exc:  # noqa: BLE001 - every outcome must reach the queue
            if item.cancel.is_set():
                status = dl.CANCELLED
            else:
                status = dl.FAILED
                if isinstance(exc, HubmgrError):
                    error = str(exc)
                else:
                    error = f"Unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"
                if isinstance(exc, HubUnreachableError):
                    self.post_message(HubUnreachable(str(exc)))
        self.call_from_thread(self._download_ended, item, status, error)

    def _download_ended(self, item: dl.DownloadItem, status: str, error: str | None) -> None:
        item.mark_finished(status, error=error)
        if status == dl.DONE:
            sent = human_bytes(item.transferred_bytes) if item.transferred_bytes else "nothing new"
            self.notify(f"Downloaded {item.repo_id} ({sent} transferred).", title="Download finished")
            self.hub_answered()
        elif status == dl.FAILED:
            self.notify(error or "The download failed.", title=f"Download of {item.repo_id} failed", severity="error", markup=False, timeout=8)
        else:
            self.notify(f"Download of {item.repo_id} cancelled; resume it from Downloads.", severity="warning")
        self.downloads_signal.publish(item.id)
        self.downloads_signal.publish(None)
        self.cache_signal.publish(None)
        self._pump_downloads()

    def on_download_updated(self, message: DownloadUpdated) -> None:
        self.downloads_signal.publish(message.item_id)

    def on_downloads_changed(self, message: DownloadsChanged) -> None:
        self.downloads_signal.publish(None)

    # -- command palette -----------------------------------------------------------------------------
    def palette_commands(self) -> Iterable[PaletteCommand]:
        for i, (mode, label) in enumerate(SECTIONS, 1):
            yield PaletteCommand(f"Go to {label}", f"Show the {label} screen (key {i})", partial(self.action_goto, mode))
        yield PaletteCommand("Search the Hub", "Focus the search box on Browse", self._palette_search)
        yield PaletteCommand("Refresh local cache", "Re-read the Hugging Face cache", partial(self._screen_action, "local", "refresh"))
        yield PaletteCommand("Verify all cached repos", "Re-hash every cached file", partial(self._screen_action, "local", "verify_all"))
        yield PaletteCommand("Start training", "Start a run with the Train screen's settings", partial(self._screen_action, "train", "start"))
        yield PaletteCommand("Cancel training", "Stop the running training (the last checkpoint is kept)", partial(self._screen_action, "train", "cancel_run"))
        yield PaletteCommand("Refresh runs", "Re-read the run registry", partial(self._screen_action, "runs", "refresh"))
        yield PaletteCommand("Help", "Keys and screens", self.action_help)

    def _palette_search(self) -> None:
        self.action_goto("browse")
        while len(self.screen_stack) > 1 and self.current_mode == "browse":
            self.pop_screen()
        screen = self.screen_for("browse")
        if screen is not None:
            self.call_after_refresh(screen.focus_search)

    def _screen_action(self, mode: str, action: str) -> None:
        self.action_goto(mode)

        def run() -> None:
            screen = self.screen_for(mode)
            if screen is not None:
                self.call_later(screen.run_action, action)

        self.call_after_refresh(run)


def run_app(backend: Backend | None = None) -> None:
    """Open the TUI (``hubmgr`` with no arguments, ``hubmgr tui``)."""
    HubmgrApp(backend).run()
