"""Downloads: the queue, with per-file and total progress, speed and ETA; cancel and resume.

The queue is kept between launches: what did not finish comes back as interrupted (resume it with r),
and a download handed to a background process shows as such while that process runs."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, ProgressBar, Static

from hubmgr.tui import downloads as dl
from hubmgr.format import plural
from hubmgr.tui.format import duration, human_bytes, speed
from hubmgr.tui.screens.base import MainScreen, hub_app_of

MAX_FILE_ROWS = 6
STATUS_STYLE = {
    dl.QUEUED: "dim",
    dl.RUNNING: "bold cyan",
    dl.DONE: "bold green",
    dl.FAILED: "bold red",
    dl.CANCELLED: "bold yellow",
    dl.INTERRUPTED: "bold yellow",
    dl.BACKGROUND: "bold cyan",
}


class FileRow(Horizontal):
    """One file being transferred: its name and its own progress bar."""

    DEFAULT_CSS = """
    FileRow { height: 1; }
    FileRow > .file-name { width: 1fr; color: $text-muted; }
    FileRow > ProgressBar { width: 32; }
    FileRow > ProgressBar > Bar { width: 20; }
    """

    def __init__(self, path: str, done: int = 0, size: int = 0) -> None:
        super().__init__()
        self.path = path
        self._initial = (done, size)

    def compose(self) -> ComposeResult:
        yield Static(Text(self.path, overflow="ellipsis", no_wrap=True), classes="file-name")
        done, size = self._initial
        yield ProgressBar(total=max(size, 1), show_eta=False)

    def on_mount(self) -> None:
        self.set_progress(*self._initial)

    def set_progress(self, done: int, size: int) -> None:
        self.query_one(ProgressBar).update(total=max(size, 1), progress=min(done, max(size, 1)))


class DownloadCard(Vertical, can_focus=True):
    """One repo in the queue."""

    def __init__(self, item: dl.DownloadItem) -> None:
        super().__init__(id=f"download-{item.id}", classes="download-card")
        self.item = item
        self.item_id = item.id
        self._rows: dict[str, FileRow] = {}

    def on_mount(self) -> None:
        self.refresh_from(self.item)
        mounted = getattr(self.screen, "card_mounted", None)
        if mounted is not None:
            mounted(self)

    def compose(self) -> ComposeResult:
        yield Static("", classes="dl-title")
        with Horizontal(classes="dl-total"):
            yield ProgressBar(show_eta=False, id=f"dl-bar-{self.item_id}")
            yield Static("", classes="dl-stats")
        yield Static("", classes="dl-detail")
        yield Vertical(classes="dl-files")
        with Horizontal(classes="dl-buttons"):
            yield Button("Cancel (c)", classes="dl-cancel", compact=True, variant="warning")
            yield Button("Resume (r)", classes="dl-resume", compact=True, variant="primary")
            yield Button("Remove (x)", classes="dl-remove", compact=True)

    def refresh_from(self, item: dl.DownloadItem) -> None:
        title = Text.assemble((item.repo_id, "bold"), "  ", (item.status_label, STATUS_STYLE.get(item.status, "")))
        if item.revision:
            title.append(f"  @ {item.revision}", style="dim")
        self.query_one(".dl-title", Static).update(title)

        bar = self.query_one(ProgressBar)
        if item.total_bytes:
            bar.update(total=item.total_bytes, progress=min(item.done_bytes, item.total_bytes))
        elif item.status == dl.DONE:
            bar.update(total=1, progress=1)
        elif item.status != dl.RUNNING:
            bar.update(total=1, progress=0)

        stats = f"{human_bytes(item.done_bytes)} / {human_bytes(item.total_bytes) if item.total_bytes else '?'}"
        if item.total_files:
            stats += f" · {item.files_done}/{item.total_files} files"
        if item.status == dl.RUNNING:
            stats += f" · {speed(item.speed)} · ETA {duration(item.eta)}"
        self.query_one(".dl-stats", Static).update(Text(stats))

        if item.status == dl.FAILED and item.error:
            detail = Text(item.error, style="red")
        elif item.status == dl.DONE and item.path:
            detail = Text(f"→ {item.path}", style="dim", no_wrap=True, overflow="ellipsis")
            if item.from_cache:
                detail = Text.assemble(("In the cache already; the Hub was not asked. ", "cyan"), detail)
        elif item.status == dl.RUNNING and item.retry:
            detail = Text(item.retry, style="yellow")
        elif item.status in (dl.CANCELLED, dl.INTERRUPTED):
            what = (
                "Cancelled"
                if item.status == dl.CANCELLED
                else "Interrupted"
                if item.error
                else "Interrupted (hubmgr was closed)"
            )
            detail = Text(f"{what}: press r to resume (the bytes already fetched are kept).", style="yellow")
            if item.error:
                detail.append(f" {item.error}", style="dim")
        elif item.status == dl.BACKGROUND:
            detail = Text(f"A hubmgr download process of its own (pid {item.pid}) goes on with it", style="cyan")
            detail.append(f"; its log: {item.log}" if item.log else ".", style="dim")
        else:
            detail = Text(item.describe_filters(), style="dim")
        self.query_one(".dl-detail", Static).update(detail)

        self._refresh_files(item)
        self.query_one(".dl-cancel").display = item.status in (dl.RUNNING, dl.QUEUED, dl.BACKGROUND)
        self.query_one(".dl-resume").display = item.resumable
        self.query_one(".dl-remove").display = item.status not in (dl.RUNNING, dl.BACKGROUND)

    def _refresh_files(self, item: dl.DownloadItem) -> None:
        box = self.query_one(".dl-files", Vertical)
        active = item.active_files if item.status == dl.RUNNING else []
        shown = active[:MAX_FILE_ROWS]
        keep = {f.path for f in shown}
        for path in list(self._rows):
            if path not in keep:
                self._rows.pop(path).remove()
        for f in shown:
            row = self._rows.get(f.path)
            if row is None:
                row = self._rows[f.path] = FileRow(f.path, f.done, f.size)
                box.mount(row)
            elif row.is_mounted:
                row.set_progress(f.done, f.size)
        box.display = bool(shown)

    @on(Button.Pressed, ".dl-cancel")
    def _cancel(self) -> None:
        hub_app_of(self).cancel_download(self.item_id)

    @on(Button.Pressed, ".dl-resume")
    def _resume(self) -> None:
        hub_app_of(self).resume_download(self.item_id)

    @on(Button.Pressed, ".dl-remove")
    def _remove(self) -> None:
        hub_app_of(self).remove_download(self.item_id)


def can_cancel(item: dl.DownloadItem) -> bool:
    return item.status in (dl.RUNNING, dl.QUEUED, dl.BACKGROUND)


def can_remove(item: dl.DownloadItem) -> bool:
    """What :meth:`HubmgrApp.remove_download` removes: not a running one (cancel it first)."""
    if item.status == dl.RUNNING:
        return False
    return not (item.status == dl.BACKGROUND and dl.process_alive(item.pid, item.pid_started))


class DownloadsScreen(MainScreen):
    """The queue, a card per download. The keys act on the selected (focused, outlined) card only; the
    footer lists a key only when it applies to the selected card (or, with none selected, to some card)."""

    MODE = "downloads"
    AUTO_FOCUS = ".download-card"
    BINDINGS = [
        Binding("c", "cancel", "Cancel", id="dl-cancel"),
        Binding("r", "resume", "Resume", id="dl-resume"),
        Binding("x", "remove", "Remove", id="dl-remove"),
        Binding("X", "clear_finished", "Clear finished", id="dl-clear"),
        Binding("down,j", "select_card(1)", "Next download", show=False, id="dl-next"),
        Binding("up,k", "select_card(-1)", "Previous download", show=False, id="dl-previous"),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: the card to select once it has mounted (a new card, or the one after a removed selected card)
        self._to_select: int | None = None
        self._applies: tuple[object, ...] = ()

    def compose_body(self) -> ComposeResult:
        yield Static("", id="downloads-summary")
        yield VerticalScroll(id="queue", can_focus=False)
        yield Static(
            "No downloads yet. Open a model in Browse (1) and press d to queue it.", id="queue-empty", markup=False
        )

    def on_mount(self) -> None:
        self.hub_app.downloads_signal.subscribe(self, self._changed)
        self._sync()

    def on_screen_resume(self) -> None:
        self._sync()

    def _changed(self, item_id: int | None) -> None:
        if item_id is None:
            self._sync()
            return
        item = self.hub_app.download_item(item_id)
        card = self._card(item_id)
        if item is not None and card is not None and card.is_mounted:
            card.refresh_from(item)
            self._summary()
            self._refresh_footer()

    def _card(self, item_id: int) -> DownloadCard | None:
        try:
            return self.query_one(f"#download-{item_id}", DownloadCard)
        except Exception:
            return None

    def _sync(self) -> None:
        """Make the cards match the queue (add new ones, drop removed ones, refresh all); keep a card
        selected: the one after a removed selected card, or the first one when none is."""
        queue = self.query_one("#queue", VerticalScroll)
        items = list(self.hub_app.downloads)
        ids = {i.id for i in items}
        cards = list(queue.query(DownloadCard))
        selected = self._focused_card()
        reselect: int | None = None
        if selected is not None and selected.item_id not in ids:
            reselect = cards.index(selected) if selected in cards else 0
        elif selected is None:
            reselect = 0
        for card in cards:
            if card.item_id not in ids:
                card.remove()
        for item in items:
            existing = self._card(item.id)
            if existing is None:
                queue.mount(DownloadCard(item))
            elif existing.is_mounted:
                existing.refresh_from(item)
        self.query_one("#queue-empty").display = not items
        queue.display = bool(items)
        self._summary()
        if reselect is not None and items and self.is_current:
            order = [i.id for i in items]
            target = order[min(reselect, len(order) - 1)]
            self._select(target)
        self._refresh_footer()

    def _refresh_footer(self) -> None:
        """Redraw the footer when the keys that apply changed (not at every progress update)."""
        actions = ("cancel", "resume", "remove", "clear_finished", "select_card")
        selected = self.selected_item()
        applies = (selected.id if selected else None, *(self.check_action(a, ()) for a in actions))
        if applies != self._applies:
            self._applies = applies
            self.refresh_bindings()

    def _select(self, item_id: int) -> None:
        """Focus the card of ``item_id`` unless one is selected already; a card still mounting is focused
        when it has mounted (:meth:`card_mounted`)."""
        card = self._card(item_id)
        if card is None or self._focused_card() is not None:
            return
        if card.is_mounted:
            card.focus()
        else:
            self._to_select = item_id

    def card_mounted(self, card: DownloadCard) -> None:
        if self._to_select == card.item_id:
            self._to_select = None
            if self._focused_card() is None and self.is_current:
                card.focus()

    def _summary(self) -> None:
        items = self.hub_app.downloads
        if not items:
            self.query_one("#downloads-summary", Static).update("")
            return
        counts: dict[str, int] = {}
        for i in items:
            counts[i.status] = counts.get(i.status, 0) + 1
        running = [i for i in items if i.status == dl.RUNNING]
        text = " · ".join(f"{n} {status}" for status, n in counts.items())
        if running:
            text += f" · {speed(sum(i.speed for i in running))}"
        self.query_one("#downloads-summary", Static).update(Text(text, style="bold"))

    # -- actions on the selected (focused) card ------------------------------------------------------
    def _focused_card(self) -> DownloadCard | None:
        node: Widget | None = self.focused
        while node is not None and not isinstance(node, DownloadCard):
            node = node.parent if isinstance(node.parent, Widget) else None
        return node if isinstance(node, DownloadCard) else None

    def selected_item(self) -> dl.DownloadItem | None:
        """The download of the selected card; None when no card is selected."""
        card = self._focused_card()
        return self.hub_app.download_item(card.item_id) if card is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        applies = {"cancel": can_cancel, "resume": lambda i: i.resumable, "remove": can_remove}.get(action)
        if applies is None:
            if action == "clear_finished":
                return any(i.status == dl.DONE for i in self.hub_app.downloads)
            if action == "select_card":
                return bool(self.hub_app.downloads)
            return True
        if not self.is_mounted:
            return False
        item = self.selected_item()
        if item is not None:
            return bool(applies(item))
        # none selected: offer the key while it applies to some card; pressing it asks to select one
        return any(applies(i) for i in self.hub_app.downloads)

    def _target(self, verb: str) -> dl.DownloadItem | None:
        item = self.selected_item()
        if item is None:
            self.notify(
                f"Select the download to {verb} first (Tab, or ↑/↓, moves between them).",
                title="Downloads",
                severity="warning",
            )
        return item

    def action_select_card(self, step: int) -> None:
        cards = list(self.query(DownloadCard))
        if not cards:
            return
        current = self._focused_card()
        index = cards.index(current) + step if current in cards else (0 if step > 0 else len(cards) - 1)
        cards[max(0, min(index, len(cards) - 1))].focus()

    def action_cancel(self) -> None:
        if (item := self._target("cancel")) is not None:
            self.hub_app.cancel_download(item.id)

    def action_resume(self) -> None:
        if (item := self._target("resume")) is not None:
            self.hub_app.resume_download(item.id)

    def action_remove(self) -> None:
        if (item := self._target("remove")) is not None:
            self.hub_app.remove_download(item.id)

    def action_clear_finished(self) -> None:
        n = self.hub_app.clear_finished_downloads()
        if n:
            self.notify(f"Cleared {plural(n, 'finished download')}.", title="Downloads")
