"""The hubmgr terminal UI: one Textual app with a screen per job (browse, downloads, local cache,
train, runs, plugins), built around an injected :class:`~hubmgr.tui.backend.Backend`.

Opening the app imports no heavy library (torch loads when training or evaluation starts).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable

from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.reactive import reactive
from textual.screen import Screen, SystemModalScreen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from hubmgr.errors import HubmgrError, HubUnreachableError, disk_full_from
from hubmgr.format import plural
from hubmgr.hub.events import DownloadStarted, HubEvent
from hubmgr.tui import downloads as dl
from hubmgr.tui.backend import Backend, BackendProtocol
from hubmgr.tui.format import error_sentence, human_bytes, one_line
from hubmgr.tui.help import key_display
from hubmgr.tui.messages import DownloadsChanged, DownloadUpdated, HubUnreachable
from hubmgr.tui.screens.browse import BrowseScreen
from hubmgr.tui.screens.base import binding_applies, own_bindings
from hubmgr.tui.screens.model import ModelScreen
from hubmgr.tui.screens.dialogs import HelpScreen, QuitDialog
from hubmgr.tui.screens.downloads import DownloadsScreen
from hubmgr.tui.screens.local import LocalScreen
from hubmgr.tui.screens.plugins import PluginsScreen
from hubmgr.tui.screens.runs import RunDetailScreen, RunsScreen
from hubmgr.tui.screens.train import TrainScreen
from hubmgr.tui.widgets.inputs import takes_typing
from hubmgr.tui.widgets.navbar import SECTIONS

OFFLINE_REASON = "Offline mode (HF_HUB_OFFLINE is set): the Hub is not contacted."


def _left_going(run_id: str | None, downloads: int) -> str | None:
    """The line printed after the TUI quits, leaving work going."""
    parts = []
    if run_id:
        parts.append(f"Run {run_id} goes on: hubmgr runs follow {run_id}")
    if downloads:
        goes = "goes" if downloads == 1 else "go"
        parts.append(
            f"{plural(downloads, 'download')} {goes} on in the background (see the Downloads screen next time)."
        )
    return "\n".join(parts) or None


@dataclass(frozen=True)
class PaletteCommand:
    name: str
    help: str
    callback: Callable[[], Any]


class HubmgrCommands(Provider):
    """Command palette entries: the keys of the screen it was opened on, the app's actions, "Open run ID"
    for every run, "Open cached model NAME" for every cached model, and "Open model owner/name" from the
    query."""

    async def startup(self) -> None:
        app = self.app
        self._listed: list[PaletteCommand] = []
        if isinstance(app, HubmgrApp):
            import asyncio

            self._listed = await asyncio.to_thread(app.palette_lookups)

    def _commands(self) -> list[PaletteCommand]:
        app = self.app
        if not isinstance(app, HubmgrApp):
            return []
        return [*app.screen_commands(self.screen), *app.palette_commands(), *getattr(self, "_listed", [])]

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
            yield Hit(
                1.0, f"Open model {repo}", partial(app.open_model, repo), help="Show this repo's card, files and fit"
            )


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
        # while a text field or choice list has the focus, Esc leaves it before anything else sees the key
        Binding("escape", "leave_input", "Leave field", priority=True, id="leave-input"),
        Binding("q", "quit", "Quit", show=False, id="quit-q"),
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False, id="quit"),
    ]

    #: Why the Hub is not usable now ("" while it answers).
    hub_offline: reactive[str] = reactive("")

    def __init__(self, backend: BackendProtocol | None = None) -> None:
        super().__init__()
        self.backend: BackendProtocol = backend or Backend()
        #: the download queue (kept on disk: interrupted downloads of an earlier launch come back)
        self.downloads: list[dl.DownloadItem] = self._load_saved_downloads()
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
        """End this process's threads: downloads and evaluations stop, the Train screen stops following its
        run (the run itself is a process of its own and goes on)."""
        for item in self.downloads:
            item.cancel.set()
        screen = self.screen_for("runs")
        event = getattr(screen, "eval_cancel", None) if screen is not None else None
        if event is not None:
            event.set()
        train = self.screen_for("train")
        if isinstance(train, TrainScreen):
            train.detach()

    def work_going(self) -> list[str]:
        """What quitting would leave or stop: the run the Train screen follows, active downloads."""
        what: list[str] = []
        train = self.screen_for("train")
        if isinstance(train, TrainScreen) and train.running and train.state is not None:
            what.append(f"training run {train.state.run_id or '(starting)'} ({train.state.model})")
        for item in self.active_downloads():
            what.append(f"download of {item.repo_id} ({item.status})")
        return what

    async def action_quit(self) -> None:
        if isinstance(self.screen, QuitDialog):
            return
        what = self.work_going()
        if not what:
            self.stop_background_work()
            self.exit()
            return

        def answered(answer: str | None) -> None:
            if answer == "keep":
                moved = self.downloads_to_background() if self.active_downloads() else 0
                self.stop_background_work()
                self.exit(message=_left_going(self._followed_run(), moved))

        self.push_screen(QuitDialog(what), answered)

    def _followed_run(self) -> str | None:
        train = self.screen_for("train")
        if isinstance(train, TrainScreen) and train.running and train.state is not None:
            return train.state.run_id
        return None

    def stop_then_quit(self, dialog: Any) -> None:
        """Stop the followed run (after its checkpoint) and the downloads, saying so, then quit."""
        run_id = self._followed_run()
        self.stop_downloads()
        self._stop_then_quit(run_id, dialog)

    @work(thread=True, group="quit", exclusive=True, exit_on_error=False, description="stopping")
    def _stop_then_quit(self, run_id: str | None, dialog: Any) -> None:
        import time

        if run_id:
            try:
                asked = self.backend.stop_run(run_id)
            except HubmgrError:
                asked = False
            deadline = time.monotonic() + 300
            while asked and time.monotonic() < deadline:
                try:
                    if self.backend.get_run(run_id).status != "running":
                        break
                except HubmgrError:
                    break
                self.call_from_thread(dialog.show_progress, f"Stopping run {run_id}: it saves a checkpoint…")
                time.sleep(0.5)
        deadline = time.monotonic() + 60
        while any(item.status == dl.RUNNING for item in self.downloads) and time.monotonic() < deadline:
            self.call_from_thread(dialog.show_progress, "Stopping the downloads (their partial files are kept)…")
            time.sleep(0.2)
        self.call_from_thread(dialog.show_progress, "Stopped.")
        self.call_from_thread(self.stop_background_work)
        self.call_from_thread(self.exit)

    def on_unmount(self) -> None:
        self.stop_background_work()

    # -- keys ----------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_input":
            # the command palette's own Esc closes it; an open Select list's Esc closes the list; a field
            # with an Esc of its own (the / filter bar: Esc clears it) keeps it
            focused = self.focused
            own_escape = any(
                isinstance(b, Binding) and "escape" in b.key.split(",") for b in getattr(type(focused), "BINDINGS", [])
            )
            return not isinstance(self.screen, SystemModalScreen) and takes_typing(focused) and not own_escape
        return True

    def action_leave_input(self) -> None:
        """Esc in a text field or choice list: leave it, keeping what was typed."""
        leave = getattr(self.screen, "leave_input", None)
        if callable(leave):
            leave()
        else:
            self.screen.set_focus(None)

    # -- navigation ----------------------------------------------------------------------------------
    def action_goto(self, mode: str) -> None:
        if mode in self.MODES and mode != self.current_mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def open_run(self, run_id: str) -> None:
        """Show one run (from Runs or the command palette)."""
        if self.current_mode != "runs":
            self.switch_mode("runs")
        self.push_screen(RunDetailScreen(run_id))

    def open_model(self, repo_id: str) -> None:
        """Show one repo (from Browse, Local or the command palette)."""
        if self.current_mode != "browse":
            self.switch_mode("browse")
        self.push_screen(ModelScreen(repo_id))

    def attach_run(self, run_id: str) -> None:
        """Go to Train and show a running run live (from Runs)."""
        self.switch_mode("train")

        def attach() -> None:
            screen = self.screen_for("train")
            if isinstance(screen, TrainScreen) and screen.is_mounted:
                screen.attach(run_id)

        self.call_after_refresh(attach)

    def train_with(self, model: str) -> None:
        """Go to Train with ``model`` chosen."""
        self.train_model_request = model
        self.switch_mode("train")
        screen = self.get_screen_stack("train")[0]
        if isinstance(screen, TrainScreen) and screen.is_mounted:
            screen.take_model_request()

    def screen_for(self, mode: str) -> Screen[Any] | None:
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
        self.notify(
            f"Unexpected {type(error).__name__}: {text}", title="Error", severity="error", markup=False, timeout=10
        )

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
    def _load_saved_downloads(self) -> list[dl.DownloadItem]:
        """The queue an earlier launch left (interrupted, failed, handed to the background, done)."""
        self._queue_file: dl.QueueFile | None = None
        self._queue_problem: str | None = None  # told once, at mount
        self._queue_saved_at = 0.0
        self._background_timer: Any = None
        try:
            self._queue_file = dl.QueueFile(self.backend.downloads_file())
            items = self._queue_file.claim()
        except (dl.QueueFileError, HubmgrError) as exc:
            self._queue_problem = f"{exc} Downloads of this session are not kept."
            return []
        except OSError as exc:
            self._queue_problem = (
                f"Cannot use the download queue file: {exc.strerror or exc}. Downloads of this session are not kept."
            )
            self._queue_file = None
            return []
        if self._queue_file.set_aside is not None:
            self._queue_problem = (
                f"The download queue was unreadable; it was set aside as {self._queue_file.set_aside} "
                "and a new one started."
            )
        return items

    @on(events.Mount)
    def _downloads_mounted(self) -> None:
        if self._queue_problem:
            self.notify(self._queue_problem, title="Downloads", severity="warning", markup=False, timeout=8)
        self._check_background()
        waiting = [i for i in self.downloads if i.resumable]
        if waiting:
            n = len(waiting)
            self.notify(
                f"{plural(n, 'download')} did not finish last time; resume "
                f"{'them' if n != 1 else 'it'} from Downloads (2) with r.",
                title="Downloads",
                timeout=15,
            )

    @on(events.Unmount)
    def _downloads_unmounted(self) -> None:
        self.save_downloads(quiet=True)  # the latest sizes; what still runs is read back as interrupted

    def save_downloads(self, *, quiet: bool = False) -> None:
        """Write the queue to disk (it is read back at the next launch); a failure is told once."""
        if self._queue_file is None:
            return
        try:
            self._queue_file.save(self.downloads)
            self._queue_saved_at = time.monotonic()
        except dl.QueueFileError as exc:
            if not quiet:
                self.notify(
                    f"{exc} Downloads of this session are not kept.",
                    title="Downloads",
                    severity="warning",
                    markup=False,
                    timeout=8,
                )
            self._queue_file = None

    def _queue_changed(self) -> None:
        self.save_downloads()
        self.downloads_signal.publish(None)

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
        self._queue_changed()
        self._pump_downloads()
        return item

    def download_item(self, item_id: int) -> dl.DownloadItem | None:
        return next((i for i in self.downloads if i.id == item_id), None)

    def active_downloads(self) -> list[dl.DownloadItem]:
        """The downloads running or queued in this app (not those already being stopped or handed over)."""
        return [i for i in self.downloads if i.active]

    def stop_downloads(self) -> None:
        """Stop every active download; they are saved as interrupted (partial files kept), to resume at the
        next launch. A running one ends when its worker sees the cancel (status RUNNING until then)."""
        for item in self.active_downloads():
            item.stop_as = dl.INTERRUPTED
            if item.status == dl.RUNNING:
                item.cancel.set()
            else:
                item.mark_finished(dl.INTERRUPTED)
        self._queue_changed()

    def downloads_to_background(self) -> int:
        """Hand every active download to a detached ``hubmgr download`` process that outlives the app.

        The in-process download is cancelled first; the child resumes its partial files (it waits on each
        file's lock while this process still holds it). The pid is kept in the on-disk queue, so the next
        launch shows the download as going on in the background, then done or interrupted.

        Returns:
            How many downloads were handed over (one that could not be started is left interrupted).
        """
        moved = 0
        for item in self.active_downloads():
            item.stop_as = dl.BACKGROUND
            if item.status == dl.RUNNING:
                item.cancel.set()
            try:
                pid, log = self.backend.download_in_background(
                    item.repo_id,
                    revision=item.revision,
                    include=item.include,
                    exclude=item.exclude,
                    allow_pickle=item.allow_pickle,
                    name=f"download-{item.uid[:12]}",
                )
            except (OSError, HubmgrError) as exc:
                item.stop_as = dl.INTERRUPTED
                if item.status != dl.RUNNING:
                    item.mark_finished(dl.INTERRUPTED)
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.notify(
                    f"Could not start a background download of {item.repo_id}: {why}. It is kept as "
                    "interrupted; resume it at the next launch.",
                    title="Downloads",
                    severity="error",
                    markup=False,
                    timeout=8,
                )
                continue
            item.pid, item.pid_started, item.log = pid, dl.process_started(pid), str(log)
            if item.status != dl.RUNNING:
                item.mark_finished(dl.BACKGROUND)
            moved += 1
        self._queue_changed()
        self._check_background()
        return moved

    def cancel_download(self, item_id: int) -> None:
        item = self.download_item(item_id)
        if item is None:
            return
        if item.status == dl.RUNNING:
            item.stop_as = item.stop_as or dl.CANCELLED
            item.cancel.set()
            self.notify(f"Cancelling {item.repo_id}; what is downloaded is kept for a resume.")
        elif item.status == dl.QUEUED:
            item.mark_finished(dl.CANCELLED)
            self._queue_changed()
        elif item.status == dl.BACKGROUND:
            if item.pid is not None and dl.process_alive(item.pid, item.pid_started):
                import signal

                item.stop_as = dl.CANCELLED
                try:
                    os.kill(item.pid, signal.SIGTERM)
                except OSError as exc:
                    self.notify(
                        f"Could not stop the background download of {item.repo_id} (pid {item.pid}): "
                        f"{exc.strerror or exc}.",
                        severity="error",
                        markup=False,
                    )
                    return
                self.notify(
                    f"Stopping the background download of {item.repo_id}; what is downloaded is kept for a resume."
                )
            self._check_background()

    def resume_download(self, item_id: int) -> None:
        item = self.download_item(item_id)
        if item is None or not item.resumable:
            return
        item.status = dl.QUEUED
        item.error = None
        item.stop_as = None
        self._queue_changed()
        self._pump_downloads()

    def remove_download(self, item_id: int) -> None:
        item = self.download_item(item_id)
        if item is None or item.status == dl.RUNNING:
            return
        if item.status == dl.BACKGROUND and dl.process_alive(item.pid, item.pid_started):
            return  # cancel it first
        self.downloads.remove(item)
        self._queue_changed()

    def clear_finished_downloads(self) -> int:
        """Drop the finished (done) entries; returns how many."""
        done = [i for i in self.downloads if i.status == dl.DONE]
        if done:
            self.downloads = [i for i in self.downloads if i.status != dl.DONE]
            self._queue_changed()
        return len(done)

    def _pump_downloads(self) -> None:
        if any(i.status == dl.RUNNING for i in self.downloads):
            return
        nxt = next((i for i in self.downloads if i.status == dl.QUEUED), None)
        if nxt is None:
            return
        nxt.mark_running()
        self._queue_changed()
        self._download_worker(nxt)

    @work(thread=True, group="downloads", exit_on_error=False, description="download")
    def _download_worker(self, item: dl.DownloadItem) -> None:
        def on_event(event: HubEvent) -> None:
            item.apply(event)
            if isinstance(event, DownloadStarted):  # the Hub listed the files: it answers again
                self.call_from_thread(self.hub_answered)
            self.post_message(DownloadUpdated(item.id))

        status, error = dl.DONE, None
        try:
            result = self.backend.download(
                item.repo_id,
                revision=item.revision,
                include=item.include,
                exclude=item.exclude,
                allow_pickle=item.allow_pickle,
                on_event=on_event,
                cancel=item.cancel,
            )
            item.from_cache = bool(getattr(result, "from_cache", False))
            if item.cancel.is_set():
                status = item.stop_as or dl.INTERRUPTED
        except BaseException as exc:  # noqa: BLE001 - every outcome must reach the queue
            if item.cancel.is_set():
                # the user's cancel, or the app closing (interrupted), or a hand-over to the background
                status = item.stop_as or dl.INTERRUPTED
            else:
                status = dl.FAILED
                error = error_sentence(exc)
                if isinstance(exc, HubUnreachableError):
                    self.post_message(HubUnreachable(str(exc)))
        try:
            self.call_from_thread(self._download_ended, item, status, error)
        except RuntimeError:  # the app has ended: the on-disk queue already says what to resume
            pass

    def _download_ended(self, item: dl.DownloadItem, status: str, error: str | None) -> None:
        item.mark_finished(status, error=error)
        if status == dl.DONE and item.from_cache:
            self.notify(
                f"{item.repo_id} is in the cache already; the Hub could not be asked for newer files.",
                title="Download",
            )
        elif status == dl.DONE:
            sent = human_bytes(item.transferred_bytes) if item.transferred_bytes else "nothing new"
            self.notify(f"Downloaded {item.repo_id} ({sent} transferred).", title="Download finished")
            self.hub_answered()
        elif status == dl.FAILED:
            self.notify(
                error or "The download failed.",
                title=f"Download of {item.repo_id} failed",
                severity="error",
                markup=False,
                timeout=8,
            )
        elif status == dl.CANCELLED:
            self.notify(f"Download of {item.repo_id} cancelled; resume it from Downloads.", severity="warning")
        elif status == dl.BACKGROUND:
            self._check_background()
        self.save_downloads(quiet=True)
        self.downloads_signal.publish(item.id)
        self.downloads_signal.publish(None)
        self.cache_signal.publish(None)
        self._pump_downloads()

    # -- downloads handed to a background process ----------------------------------------------------
    def _check_background(self) -> None:
        """Settle the background downloads whose process has ended: done when the cache holds the whole
        snapshot, else interrupted (or cancelled) with the reason from its log; poll while some go on."""
        changed = False
        going = False
        for item in self.downloads:
            if item.status != dl.BACKGROUND:
                continue
            if dl.process_alive(item.pid, item.pid_started):
                going = True
                continue
            changed = True
            try:
                path = self.backend.finished_download(
                    item.repo_id,
                    revision=item.revision,
                    commit=item.commit,
                    include=item.include,
                    exclude=item.exclude,
                    allow_pickle=item.allow_pickle,
                )
            except Exception:  # noqa: BLE001 - an unreadable cache: say it did not finish
                path = None
            if path is not None:
                item.path = path
                item.done_bytes = item.total_bytes or item.done_bytes
                item.files_done = item.total_files or item.files_done
                item.mark_finished(dl.DONE)
                self.notify(f"Downloaded {item.repo_id} (in the background).", title="Download finished")
            else:
                stopped = item.stop_as == dl.CANCELLED
                reason = _log_error(item.log)
                item.mark_finished(
                    dl.CANCELLED if stopped else dl.INTERRUPTED,
                    error=reason
                    or (None if stopped else f"The background download (pid {item.pid}) ended before it finished."),
                )
            item.stop_as = None
        if changed:
            self.save_downloads(quiet=True)
            self.downloads_signal.publish(None)
            self.cache_signal.publish(None)
        if going and self._background_timer is None and self.is_running:
            self._background_timer = self.set_interval(1.0, self._check_background, name="background-downloads")
        elif not going and self._background_timer is not None:
            self._background_timer.stop()
            self._background_timer = None

    def on_download_updated(self, message: DownloadUpdated) -> None:
        if time.monotonic() - self._queue_saved_at > 5.0:  # keep the sizes on disk fresh enough
            self.save_downloads(quiet=True)
        self.downloads_signal.publish(message.item_id)

    def on_downloads_changed(self, message: DownloadsChanged) -> None:
        self.downloads_signal.publish(None)

    # -- command palette -----------------------------------------------------------------------------
    def screen_commands(self, screen: Any) -> Iterable[PaletteCommand]:
        """Every key of ``screen`` that can act now, as a palette entry acting on that screen."""
        section = getattr(screen, "help_section", None)
        if section is None:
            return
        for binding in own_bindings(screen):
            if binding.description and binding_applies(screen, binding):
                yield PaletteCommand(
                    binding.description,
                    f"{section}: key {key_display(self, binding)}",
                    partial(self.call_later, screen.run_action, binding.action),
                )

    def palette_lookups(self) -> list[PaletteCommand]:
        """ "Open run ID" and "Open cached model NAME" entries (read in a thread when the palette opens)."""
        commands: list[PaletteCommand] = []
        try:
            runs = list(self.backend.list_runs())
        except Exception:  # the palette still offers the rest
            runs = []
        for run in runs:
            commands.append(
                PaletteCommand(
                    f"Open run {run.id}",
                    f"{run.status} · {run.task} on {one_line(run.model, 60)}",
                    partial(self.open_run, run.id),
                )
            )
        try:
            cached = list(self.backend.list_cached())
        except Exception:  # the palette still offers the rest
            cached = []
        for repo in cached:
            if (getattr(repo, "repo_type", "model") or "model") != "model":
                continue
            commands.append(
                PaletteCommand(
                    f"Open cached model {repo.repo_id}",
                    f"{human_bytes(repo.size_on_disk)} in the local cache",
                    partial(self.open_model, repo.repo_id),
                )
            )
        return commands

    def palette_commands(self) -> Iterable[PaletteCommand]:
        for i, (mode, label) in enumerate(SECTIONS, 1):
            yield PaletteCommand(
                f"Go to {label}", f"Show the {label} screen (key {i})", partial(self.action_goto, mode)
            )
        yield PaletteCommand("Search the Hub", "Focus the search box on Browse", self._palette_search)
        yield PaletteCommand(
            "Refresh local cache", "Re-read the Hugging Face cache", partial(self._screen_action, "local", "refresh")
        )
        yield PaletteCommand(
            "Verify all cached repos", "Re-hash every cached file", partial(self._screen_action, "local", "verify_all")
        )
        yield PaletteCommand(
            "Start training",
            "Start a run with the Train screen's settings",
            partial(self._screen_action, "train", "start"),
        )
        yield PaletteCommand(
            "Cancel training",
            "Stop the running training (the last checkpoint is kept)",
            partial(self._screen_action, "train", "cancel_run"),
        )
        yield PaletteCommand(
            "Refresh runs", "Re-read the run registry", partial(self._screen_action, "runs", "refresh")
        )
        yield PaletteCommand("Help", "Keys and screens", self.action_help)

    def _palette_search(self) -> None:
        self.action_goto("browse")
        while len(self.screen_stack) > 1 and self.current_mode == "browse":
            self.pop_screen()
        screen = self.screen_for("browse")
        if isinstance(screen, BrowseScreen):
            self.call_after_refresh(screen.focus_search)

    def _screen_action(self, mode: str, action: str) -> None:
        self.action_goto(mode)

        def run() -> None:
            screen = self.screen_for(mode)
            if screen is not None:
                self.call_later(screen.run_action, action)

        self.call_after_refresh(run)


def _log_error(log: str | None) -> str | None:
    """The last ``error: ...`` line of a background download's log (what the CLI said), if any."""
    if not log:
        return None
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: ") :].strip() or None
    return None


def run_app(backend: BackendProtocol | None = None) -> None:
    """Open the TUI (``hubmgr`` with no arguments, ``hubmgr tui``)."""
    HubmgrApp(backend).run()
