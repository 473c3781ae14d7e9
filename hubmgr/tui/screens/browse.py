"""Browse: search the Hub with filters; more results load as the cursor or the scroll nears the end.

Each result the local cache holds is marked (``✓ cached``, or ``partial`` when a revision of it lacks files);
the cache is read in a thread once per search and again whenever the app's ``cache_signal`` says it
changed. Offline (``HF_HUB_OFFLINE``) or with the Hub unreachable, the table lists the cached models
instead, filtered by the query as a substring; the next search the Hub answers brings the results back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from hubmgr.errors import HubUnreachableError
from hubmgr.format import plural
from hubmgr.tui.format import date, human_count, plain
from hubmgr.tui.messages import SearchLoaded
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.widgets.inputs import Choice
from hubmgr.tui.widgets.tables import RowTable

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.hub.cache import CachedRepo

CACHED = "✓ cached"
PARTIAL = "partial"

LIBRARIES = [
    "transformers",
    "sentence-transformers",
    "peft",
    "timm",
    "diffusers",
    "gguf",
    "safetensors",
    "onnx",
]
SORTS = [
    ("Most downloads", "downloads"),
    ("Most likes", "likes"),
    ("Trending", "trending"),
    ("Recently updated", "last_modified"),
]
PAGE_SIZE = 30
#: load the next page when the cursor is this close to the last row
PREFETCH_ROWS = 5


class BrowseScreen(MainScreen):
    MODE = "browse"
    AUTO_FOCUS = "#results"
    BINDINGS = [
        Binding("slash", "focus_search", "Search", id="focus-search"),
        Binding("escape", "focus_results", "Back to the results", show=False, id="focus-results"),
        Binding("f5", "refresh", "Search again", id="search-again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._generation = 0
        self._next_cursor: str | None = None
        self._loading = False
        self._rows: list[Any] = []
        self._debounce: Timer | None = None
        self._last_query: dict[str, Any] | None = None
        #: the cached models (None until the cache was read) and their marks: repo id -> CACHED / PARTIAL
        self._cached: list[CachedRepo] | None = None
        self._cache_error: str | None = None
        self._marks: dict[str, str] = {}
        #: the table lists the cached models (the Hub is offline or unreachable), not search results
        self._offline_list = False

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="Search models on the Hub (Enter to search, / to come back here)", id="search")
        with Horizontal(id="filters"):
            yield Choice([], prompt="Any task", id="task-filter", compact=True)
            yield Choice([(name, name) for name in LIBRARIES], prompt="Any library", id="library-filter", compact=True)
            yield Choice(SORTS, value="downloads", allow_blank=False, id="sort", compact=True)
        table = RowTable(id="results")
        table.add_column("Model", key="id")
        table.add_column("Local", key="local", width=8)  # next to the name: visible at any width; "✓ cached"
        table.add_column("Task", key="task")
        table.add_column("Downloads", key="downloads")
        table.add_column("Likes", key="likes")
        table.add_column("Updated", key="updated")
        table.add_column("Library", key="library")
        yield table
        yield Static("", id="results-status", markup=False)

    def on_mount(self) -> None:
        self.watch(self.query_one("#results", DataTable), "scroll_y", self._scrolled)
        self.load_task_filter()
        self.watch(self.app, "hub_offline", self._offline_changed, init=False)
        self.hub_app.cache_signal.subscribe(self, lambda _: self._load_cache())
        self.start_search()

    # -- filters -------------------------------------------------------------------------------------
    @work(thread=True, group="task-filter", exit_on_error=False)
    def load_task_filter(self) -> None:
        tags = self.backend.pipeline_tags()
        self.app.call_from_thread(self._set_task_options, tags)

    def _set_task_options(self, tags: list[str]) -> None:
        select = self.query_one("#task-filter", Select)
        select.set_options([(tag, tag) for tag in tags])

    def _offline_changed(self, reason: str) -> None:
        if reason:
            self._show_cached()
        elif self._offline_list or not self._rows:
            self.start_search()

    # -- the local cache: marks, and the list offline -----------------------------------------------------
    @work(thread=True, group="browse-cache", exclusive=True, exit_on_error=False)
    def _load_cache(self) -> None:
        try:
            repos: list[CachedRepo] | None = self.backend.list_cached()
            error = None
        except Exception as exc:  # noqa: BLE001 - the marks are a help; Local reports a cache it cannot read
            repos, error = None, " ".join(str(exc).split()) or type(exc).__name__
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._cache_read, repos, error)

    def _cache_read(self, repos: list[CachedRepo] | None, error: str | None) -> None:
        self._cached = [r for r in repos or [] if (getattr(r, "repo_type", "model") or "model") == "model"]
        self._cache_error = error
        self._marks = {}
        for repo in self._cached:
            whole = bool(repo.revisions) and all(rev.complete for rev in repo.revisions)
            self._marks[repo.repo_id] = CACHED if whole else PARTIAL
        if self._offline_list:
            self._fill_cached()
            return
        table = self.query_one("#results", DataTable)
        for result in self._rows:
            if result.id in table.rows:
                table.update_cell(result.id, "local", self._mark(result.id))

    def _mark(self, repo_id: str) -> Text:
        mark = self._marks.get(repo_id, "")
        return Text(mark, style="green" if mark == CACHED else "yellow")

    def _show_cached(self) -> None:
        """List the cached models instead of search results (the Hub is offline or unreachable)."""
        self._offline_list = True
        self._loading = False
        self._next_cursor = None
        if self._cached is None:
            self._set_status("The Hub is offline: reading the cached models…")
            return
        self._fill_cached()

    def _fill_cached(self) -> None:
        table = self.query_one("#results", DataTable)
        table.clear()
        self._rows = []
        query = self.query_one("#search", Input).value.strip()
        wanted = query.lower()
        repos = sorted(
            (r for r in self._cached or [] if not wanted or wanted in r.repo_id.lower()),
            key=lambda r: r.repo_id.lower(),
        )
        for repo in repos:
            self._rows.append(repo)
            table.add_row(
                plain(repo.repo_id),
                self._mark(repo.repo_id),
                plain("-"),
                plain("-", right=True),
                plain("-", right=True),
                plain(date(repo.last_modified)),
                plain("-"),
                key=repo.repo_id,
            )
        why = "offline mode (HF_HUB_OFFLINE) is on" if self.backend.offline() else "the Hub is unreachable"
        again = "" if self.backend.offline() else " F5 tries the Hub again."
        if self._cache_error:
            self._set_status(f"Search needs the Hub and {why}; the cache could not be read: {self._cache_error}")
        elif repos:
            matching = f" matching “{query}”" if query else ""
            self._set_status(
                f"Search needs the Hub and {why}: these are the {plural(len(repos), 'cached model')}{matching}."
                f" Enter opens one.{again}"
            )
        elif query:
            self._set_status(f"Search needs the Hub and {why}, and no cached model matches “{query}”.{again}")
        else:
            self._set_status(f"Search needs the Hub and {why}, and the cache holds no model.{again}")

    def focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_search(self) -> None:
        self.focus_search()

    def action_focus_results(self) -> None:
        self.query_one("#results", DataTable).focus()

    def action_refresh(self) -> None:
        self.start_search()

    @on(Input.Submitted, "#search")
    def _submitted(self) -> None:
        self.start_search()
        table = self.query_one("#results", DataTable)
        table.focus()

    @on(Input.Changed, "#search")
    def _typed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.6, self._search_if_changed)

    def _search_if_changed(self) -> None:
        if self._query() != self._last_query:
            self.start_search()

    @on(Select.Changed)
    def _filter_changed(self, event: Select.Changed) -> None:
        if event.select.id in ("task-filter", "library-filter", "sort") and self.is_mounted:
            if self._query() != self._last_query:
                self.start_search()

    # -- searching -----------------------------------------------------------------------------------
    def _query(self) -> dict[str, Any]:
        def value(selector: str) -> Any:
            v = self.query_one(selector, Select).value
            return None if v is Select.NULL else v

        return {
            "query": self.query_one("#search", Input).value.strip() or None,
            "task": value("#task-filter"),
            "library": value("#library-filter"),
            "sort": value("#sort") or "downloads",
        }

    def start_search(self) -> None:
        """Run the search in the box with the filters, replacing the results."""
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self._load_cache()
        self._last_query = self._query()
        if self.hub_app.hub_offline:
            self._show_cached()
            if self.backend.offline():
                return  # offline mode: the Hub is not asked
        self._generation += 1
        self._loading = True
        self._next_cursor = None
        if not self._offline_list:
            self._set_status("Searching…")
        # unreachable: the cached models stay listed while the Hub is asked; its answer brings the results back
        self._search_worker(self._last_query, None, self._generation, False)

    def load_more(self) -> None:
        if self._loading or not self._next_cursor:
            return
        self._loading = True
        self._set_status(f"{plural(len(self._rows), 'model')} · loading more…")
        self._search_worker(self._query(), self._next_cursor, self._generation, True)

    @work(thread=True, group="search", exclusive=True, exit_on_error=False)
    def _search_worker(self, query: dict[str, Any], cursor: str | None, generation: int, append: bool) -> None:
        page = self.backend.search(
            query["query"],
            task=query["task"],
            library=query["library"],
            sort=query["sort"],
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        if not get_current_worker().is_cancelled:
            self.post_message(SearchLoaded(page, append=append, generation=generation))

    def on_search_loaded(self, message: SearchLoaded) -> None:
        if message.generation != self._generation:
            return  # an older search answered late
        self._loading = False
        self._offline_list = False
        self.hub_app.hub_answered()
        table = self.query_one("#results", DataTable)
        if not message.append:
            table.clear()
            self._rows = []
        page = message.page
        for result in page.results:
            if result.id in table.rows:
                continue
            self._rows.append(result)
            gated = " (gated)" if result.gated else ""
            table.add_row(
                plain(f"{result.id}{gated}"),
                self._mark(result.id),
                plain(result.task or "-"),
                plain(human_count(result.downloads), right=True),
                plain(human_count(result.likes), right=True),
                plain(date(result.last_modified)),
                plain(result.library or "-"),
                key=result.id,
            )
        self._next_cursor = page.next_cursor
        if not self._rows:
            self._set_status("No models match.")
        else:
            more = " · scroll down for more" if self._next_cursor else ""
            self._set_status(f"{plural(len(self._rows), 'model')}{more} · Enter opens a model")
        if self._next_cursor:
            self.call_after_refresh(self._fill_screen)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "search" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            if event.state == WorkerState.ERROR:
                self._loading = False
                if isinstance(event.worker.error, HubUnreachableError):
                    self._show_cached()
                else:
                    self._set_status(f"Search failed: {event.worker.error}")

    def _set_status(self, text: str) -> None:
        self.query_one("#results-status", Static).update(text)

    # -- paging --------------------------------------------------------------------------------------
    def _fill_screen(self) -> None:
        """Load another page while the results do not fill the table (a tall terminal)."""
        table = self.query_one("#results", DataTable)
        if table.row_count and table.row_count + 1 < table.size.height:
            self.load_more()

    def _maybe_load_more(self) -> None:
        table = self.query_one("#results", DataTable)
        near_cursor = table.row_count and table.cursor_row >= table.row_count - PREFETCH_ROWS
        near_scroll = table.max_scroll_y > 0 and table.scroll_y >= table.max_scroll_y - 2
        if near_cursor or near_scroll:
            self.load_more()

    @on(DataTable.RowHighlighted, "#results")
    def _highlighted(self) -> None:
        self._maybe_load_more()

    def _scrolled(self, _value: float) -> None:
        self._maybe_load_more()

    @on(DataTable.RowSelected, "#results")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.hub_app.open_model(str(event.row_key.value))
