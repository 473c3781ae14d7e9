"""Local: the shared Hugging Face cache with sizes and last use; sort, delete (confirmed), verify.

A repo with a snapshot that lacks files of its revision (a download that did not finish) is marked
incomplete, with what is missing and what partial files already hold (``hubmgr ls``'s words), and ``R``
queues the download of the missing files, which resumes them. After a verify that found damaged or missing
files, ``f`` repairs them: the core removes them (``hubmgr verify --repair``'s rule, the Hub asked first) and
the download queue fetches exactly those files again, so the progress shows in Downloads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import glob

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Static
from textual.worker import Worker, WorkerState

from hubmgr.format import plural
from hubmgr.tui.format import date_time, human_bytes, plain, to_datetime
from hubmgr.tui.messages import CacheLoaded, EvalProgressed, VerifyDone
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.widgets.tables import RowTable
from hubmgr.tui.screens.dialogs import ConfirmScreen
from hubmgr.tui.widgets.filter import FilterBar, matches

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.hub.cache import CachedRepo, CachedRevision, RepairPlan, VerifyResult
    from hubmgr.hub.events import VerifyProgress

#: column key -> (title, sort key on a CachedRepo)
COLUMNS: dict[str, tuple[str, Any]] = {
    "repo": ("Repo", lambda r: repo_key(r).lower()),
    "size": ("Size", lambda r: r.size_on_disk or 0),
    "revisions": ("Revs", lambda r: len(r.revisions or [])),
    "used": ("Last used", lambda r: _ts(r.last_accessed)),
    "modified": ("Modified", lambda r: _ts(r.last_modified)),
}
SORT_ORDER = list(COLUMNS)


def repo_key(repo: CachedRepo) -> str:
    """The name the cache functions accept: ``org/name`` for models, ``dataset/org/name`` otherwise."""
    kind = getattr(repo, "repo_type", "model") or "model"
    return repo.repo_id if kind == "model" else f"{kind}/{repo.repo_id}"


def incomplete_revisions(repo: CachedRepo) -> list[CachedRevision]:
    """The revisions of a cached repo that lack files of their revision (newest first)."""
    return [rev for rev in getattr(repo, "revisions", None) or [] if not getattr(rev, "complete", True)]


def incomplete_words(rev: CachedRevision) -> str:
    """``(incomplete: 2 files, 3.0 MB missing, 1.2 MB resumable)``: what ``hubmgr ls`` says."""
    return (
        f"(incomplete: {plural(len(rev.missing_files), 'file')}, {human_bytes(rev.missing_bytes)} missing, "
        f"{human_bytes(rev.resumable_bytes)} resumable)"
    )


def _ts(value: Any) -> float:
    d = to_datetime(value)
    return d.timestamp() if d else 0.0


class LocalScreen(MainScreen):
    MODE = "local"
    AUTO_FOCUS = "#cache-table"
    BINDINGS = [
        Binding("d,delete", "delete", "Delete", id="local-delete"),
        Binding("v", "verify", "Verify", id="local-verify"),
        Binding("V", "verify_all", "Verify all", show=False, id="local-verify-all"),  # in Help (F1)
        Binding("s", "cycle_sort", "Sort", show=False, id="local-sort"),  # the column header shows it
        Binding("t", "train", "Train", id="local-train"),
        Binding("r", "refresh", "Refresh", id="local-refresh"),
        Binding("R", "resume_download", "Resume", id="local-resume"),
        Binding("f", "repair", "Repair", id="local-repair"),
        Binding("slash", "filter", "Filter", id="local-filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.repos: list[Any] = []
        self.sort_key = "size"
        self.sort_reverse = True
        #: the damaged or missing files the last verify found (what `f` repairs)
        self.damaged: list[VerifyResult] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="cache-summary")
        yield FilterBar("cached repos", id="cache-filter")
        yield RowTable(id="cache-table")
        yield Static("", id="incomplete-panel")
        yield Static("", id="verify-panel")

    def on_mount(self) -> None:
        self.hub_app.cache_signal.subscribe(self, lambda _: self.action_refresh())
        self.query_one("#verify-panel").display = False
        self.query_one("#incomplete-panel").display = False
        self.action_refresh()

    # -- loading -------------------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, group="cache-list", exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        self.post_message(CacheLoaded(self.backend.list_cached()))

    def on_cache_loaded(self, message: CacheLoaded) -> None:
        self.repos = list(message.repos)
        self._fill()

    def _fill(self) -> None:
        table = self.query_one("#cache-table", DataTable)
        current = self.selected_repo()
        _, key = COLUMNS[self.sort_key]
        query = self.query_one("#cache-filter", FilterBar).filter_text
        repos = sorted((r for r in self.repos if matches(query, (repo_key(r),))), key=key, reverse=self.sort_reverse)
        table.clear(columns=True)
        for col_key, (title, _) in COLUMNS.items():
            arrow = (" ▼" if self.sort_reverse else " ▲") if col_key == self.sort_key else ""
            table.add_column(title + arrow, key=col_key)
        for r in repos:
            name = plain(repo_key(r))
            if incomplete_revisions(r):
                name.append(" incomplete", style="bold yellow")
            table.add_row(
                name,
                plain(human_bytes(r.size_on_disk), right=True),
                plain(len(r.revisions or []), right=True),
                plain(date_time(r.last_accessed)),
                plain(date_time(r.last_modified)),
                key=repo_key(r),
            )
        if current is not None and current in table.rows:
            table.move_cursor(row=table.get_row_index(current))
        total = sum(r.size_on_disk or 0 for r in self.repos)
        n = len(self.repos)
        summary = f"{plural(n, 'repo')}, {human_bytes(total)} in {self.backend.settings().hub_cache}"
        if query:
            summary = f"{len(repos)} of {summary} match “{query}”"
        if not self.repos:
            summary = "The cache is empty. Download a model from Browse (1)."
        partial = sum(1 for r in self.repos if incomplete_revisions(r))
        if partial:
            summary += f" · {partial} incomplete (R resumes the selected one)"
        self.query_one("#cache-summary", Static).update(Text(summary))
        self._show_incomplete()

    def selected_repo(self) -> str | None:
        table = self.query_one("#cache-table", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        except Exception:
            return None
        return str(key.value) if key.value is not None else None

    def _selected(self) -> Any:
        key = self.selected_repo()
        return next((r for r in self.repos if repo_key(r) == key), None) if key else None

    # -- filter as you type ------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one("#cache-filter", FilterBar).open()

    @on(Input.Changed, "#cache-filter")
    def _filter_changed(self) -> None:
        self._fill()

    @on(FilterBar.Closed, "#cache-filter")
    def _filter_closed(self) -> None:
        self._fill()
        self.query_one("#cache-table", DataTable).focus()

    # -- incomplete snapshots ------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#cache-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_incomplete()

    def _show_incomplete(self) -> None:
        """Under the table: the selected repo's incomplete revisions, in ``hubmgr ls``'s words."""
        panel = self.query_one("#incomplete-panel", Static)
        repo = self._selected()
        revs = incomplete_revisions(repo) if repo is not None else []
        panel.display = bool(revs)
        self.refresh_bindings()
        if not revs:
            return
        text = Text()
        for rev in revs:
            label = ",".join(rev.refs) if rev.refs else "detached"
            text.append(f"{label}@{rev.commit[:7]}", style="bold")
            text.append(f" {incomplete_words(rev)}\n", style="yellow")
        if getattr(repo, "downloading", False):
            text.append("A download is running on it now.", style="cyan")
        else:
            text.append("Press R to resume its download (partial files continue where they stopped).", style="dim")
        panel.update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "repair":
            return bool(self.damaged)
        if action == "resume_download":
            repo = self._selected() if self.is_mounted else None
            return bool(repo is not None and incomplete_revisions(repo))
        if action in ("delete", "verify", "verify_all", "cycle_sort", "train"):
            return bool(self.repos)  # an empty cache: nothing to act on
        return super().check_action(action, parameters)

    def action_resume_download(self) -> None:
        """Queue the download of what the selected repo's newest incomplete snapshot lacks."""
        from hubmgr.hub.files import is_pickle
        from hubmgr.tui import downloads as dl

        repo = self._selected()
        revs = incomplete_revisions(repo) if repo is not None else []
        if not revs:
            return
        rev = revs[0]
        repo_id = repo.repo_id
        if (getattr(repo, "repo_type", "model") or "model") != "model":
            self.notify(
                f"{repo_key(repo)} is not a model; hubmgr downloads models only.", severity="warning", markup=False
            )
            return
        app = self.hub_app
        same = [
            i
            for i in app.downloads
            if i.repo_id == repo_id and (i.commit in (None, rev.commit) or i.revision == rev.commit)
        ]
        going = next((i for i in same if i.status in (dl.RUNNING, dl.QUEUED, dl.BACKGROUND)), None)
        if going is not None:
            self.notify(f"{repo_id} is already in the download queue ({going.status_label}).", markup=False)
            return
        earlier = next((i for i in same if i.resumable and i.commit == rev.commit), None)
        if earlier is not None:  # the interrupted download itself, with its own file choice
            app.resume_download(earlier.id)
        else:
            app.enqueue_download(
                repo_id,
                revision=rev.commit,
                include=[glob.escape(path) for path in rev.missing_files],
                allow_pickle=any(is_pickle(path) for path in rev.missing_files),
            )
        n = len(rev.missing_files)
        self.notify(
            f"Resuming {repo_id}@{rev.commit[:7]}: {plural(n, 'file')}, "
            f"{human_bytes(rev.missing_bytes)} missing, {human_bytes(rev.resumable_bytes)} already fetched. "
            "See Downloads (2).",
            title="Download queued",
            markup=False,
        )

    # -- sorting -------------------------------------------------------------------------------------
    @on(DataTable.HeaderSelected, "#cache-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    def sort_by(self, key: str) -> None:
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key = key
            self.sort_reverse = key != "repo"
        self._fill()

    def action_cycle_sort(self) -> None:
        i = SORT_ORDER.index(self.sort_key)
        self.sort_key = SORT_ORDER[(i + 1) % len(SORT_ORDER)]
        self.sort_reverse = self.sort_key != "repo"
        self._fill()

    # -- delete --------------------------------------------------------------------------------------
    def action_delete(self) -> None:
        repo_id = self.selected_repo()
        if repo_id is None:
            return
        repo = next((r for r in self.repos if repo_key(r) == repo_id), None)
        size = human_bytes(repo.size_on_disk) if repo else "?"
        self._ask_delete(repo_id, size)

    @work(thread=True, group="cache-delete", exclusive=True, exit_on_error=False)
    def _ask_delete(self, repo_id: str, size: str) -> None:
        """Confirm a delete, saying which saved adapters were trained on the repo (they need it)."""
        adapters = self.backend.adapters_on(repo_id)
        question = f"Delete {repo_id} ({size}) from the cache?"
        if adapters:
            n = len(adapters)
            names = ", ".join(a.id for a in adapters[:5]) + (f" and {n - 5} more" if n > 5 else "")
            question += (
                f"\n⚠ {n} adapter{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} trained on it ({names}):"
                " trying, evaluating or merging them fails until it is downloaded again."
            )

        def done(answer: bool | None) -> None:
            if answer:
                self._delete(repo_id)

        self.app.call_from_thread(self.app.push_screen, ConfirmScreen(question, yes="Delete"), done)

    @work(thread=True, group="cache-delete", exit_on_error=False)
    def _delete(self, repo_id: str) -> None:
        freed = self.backend.delete_repo(repo_id)
        self.app.call_from_thread(self._deleted, repo_id, freed)

    def _deleted(self, repo_id: str, freed: int) -> None:
        self.notify(f"Deleted {repo_id} ({human_bytes(freed)} freed).", title="Cache")
        self.hub_app.cache_signal.publish(None)

    # -- verify --------------------------------------------------------------------------------------
    def action_verify(self) -> None:
        repo_id = self.selected_repo()
        if repo_id is not None:
            self._start_verify(repo_id)

    def action_verify_all(self) -> None:
        self._start_verify(None)

    def _start_verify(self, repo_id: str | None) -> None:
        self.damaged = []
        self.refresh_bindings()
        panel = self.query_one("#verify-panel", Static)
        panel.display = True
        panel.update(Text(f"Verifying {repo_id or 'every cached repo'}…", style="bold"))
        self._verify(repo_id)

    @work(thread=True, group="cache-verify", exclusive=True, exit_on_error=False)
    def _verify(self, repo_id: str | None) -> None:
        count = 0

        def on_event(event: VerifyProgress) -> None:
            nonlocal count
            count += 1
            self.post_message(
                EvalProgressed(
                    f"Verifying {repo_id or 'every cached repo'}… {plural(count, 'file')} checked ({event.path})"
                )
            )

        results = self.backend.verify(repo_id, on_event=on_event)
        self.post_message(VerifyDone(repo_id, results))

    def on_eval_progressed(self, message: EvalProgressed) -> None:
        self.query_one("#verify-panel", Static).update(Text(message.text))

    def on_verify_done(self, message: VerifyDone) -> None:
        panel = self.query_one("#verify-panel", Static)
        bad = [r for r in message.results if not r.ok]
        what = message.repo_id or "every cached repo"
        self.damaged = bad
        self.refresh_bindings()
        if not bad:
            intact = (
                "the 1 file is intact"
                if len(message.results) == 1
                else f"all {plural(len(message.results), 'file')} are intact"
            )
            panel.update(Text(f"✓ {what}: {intact}.", style="green"))
            self.notify(f"{what}: {intact}.", title="Verify")
            return
        are = "is" if len(bad) == 1 else "are"
        text = Text(
            f"✗ {what}: {len(bad)} of {plural(len(message.results), 'file')} {are} damaged or missing:\n",
            style="bold red",
        )
        for r in bad[:20]:
            text.append(f"  {r.repo_id}: {r.path}: {r.detail}\n", style="red")
        if len(bad) > 20:
            text.append(f"  … and {len(bad) - 20} more\n", style="red")
        text.append("Press f to download the damaged files again (repair).", style="dim")
        panel.update(text)
        self.notify(f"{what}: {len(bad)} damaged or missing files.", title="Verify", severity="error")

    # -- repair --------------------------------------------------------------------------------------
    def action_repair(self) -> None:
        """Ask, then remove the damaged files the last verify found and queue their downloads."""
        damaged = list(self.damaged)
        if not damaged:
            return
        if self.backend.offline():
            self.notify(
                "Repairing needs the Hub, but HF_HUB_OFFLINE is set; nothing was removed.",
                title="Repair",
                severity="warning",
                markup=False,
            )
            return
        repos = sorted({r.repo_id for r in damaged})
        what = repos[0] if len(repos) == 1 else plural(len(repos), "repo")
        question = (
            f"Download the {plural(len(damaged), 'damaged or missing file')} of {what} again?\n"
            "The damaged copies are removed first (the Hub is asked before anything is removed); "
            "the downloads show in Downloads (2)."
        )

        def done(answer: bool | None) -> None:
            if answer:
                self._repair(damaged)

        self.app.push_screen(ConfirmScreen(question, yes="Repair", danger=False), done)

    @work(thread=True, group="cache-repair", exclusive=True, exit_on_error=False)
    def _repair(self, damaged: list[VerifyResult]) -> None:
        from hubmgr.errors import HubmgrError, HubUnreachableError
        from hubmgr.tui.messages import HubUnreachable

        by_repo: dict[str, list[VerifyResult]] = {}
        for r in damaged:
            by_repo.setdefault(r.repo_id, []).append(r)
        for repo_id, files in by_repo.items():
            try:
                plan = self.backend.prepare_repair(repo_id, files)
            except HubmgrError as exc:
                if isinstance(exc, HubUnreachableError) and not self.backend.offline():
                    self.app.post_message(HubUnreachable(str(exc)))
                self.app.call_from_thread(self._repair_failed, repo_id, str(exc))
                continue
            self.app.call_from_thread(self._repair_queued, plan)

    def _repair_failed(self, repo_id: str, error: str) -> None:
        self.notify(error, title=f"Repair of {repo_id}", severity="error", markup=False, timeout=8)

    def _repair_queued(self, plan: RepairPlan) -> None:
        for commit in plan.files:
            self.hub_app.enqueue_download(
                plan.repo_id,
                revision=commit,
                include=plan.include_for(commit),
                allow_pickle=plan.needs_pickle(commit),
            )
        self.damaged = [r for r in self.damaged if r.repo_id != plan.repo_id]
        self.refresh_bindings()
        text = Text()
        if plan.count:
            text.append(
                f"Repairing {plan.repo_id}: {plural(plan.count, 'file')} queued to download again; "
                "see Downloads (2), then verify again (v).\n",
                style="bold",
            )
        elif not plan.unrepairable:
            text.append(f"Nothing of {plan.repo_id} needed repairing.", style="green")
        for r in plan.unrepairable:
            text.append(f"  cannot repair {r.path}: {r.detail}\n", style="red")
        self.query_one("#verify-panel", Static).update(text)
        if plan.count:
            self.notify(
                f"{plural(plan.count, 'damaged file')} of {plan.repo_id} removed and queued to download again. "
                "See Downloads (2).",
                title="Repair",
                markup=False,
            )
        self.hub_app.cache_signal.publish(None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "cache-verify" and event.state == WorkerState.ERROR:
            self.query_one("#verify-panel", Static).update(Text(f"Verify failed: {event.worker.error}", style="red"))

    # -- other screens -------------------------------------------------------------------------------
    def action_train(self) -> None:
        repo_id = self.selected_repo()
        if repo_id is not None:
            self.hub_app.train_with(repo_id)

    @on(DataTable.RowSelected, "#cache-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is None:
            return
        self.hub_app.open_model(str(event.row_key.value))
