"""Browse: search the Hub with filters; more results load as the cursor or the scroll nears the end."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from hubmgr.format import plural
from hubmgr.tui.format import date, human_count, plain
from hubmgr.tui.messages import SearchLoaded
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.widgets.inputs import Choice
from hubmgr.tui.widgets.tables import RowTable

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

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="Search models on the Hub (Enter to search, / to come back here)", id="search")
        with Horizontal(id="filters"):
            yield Choice([], prompt="Any task", id="task-filter", compact=True)
            yield Choice([(name, name) for name in LIBRARIES], prompt="Any library", id="library-filter", compact=True)
            yield Choice(SORTS, value="downloads", allow_blank=False, id="sort", compact=True)
        table = RowTable(id="results")
        table.add_column("Model", key="id")
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
        if self.hub_app.hub_offline:
            self._set_status("The Hub is offline: search is unavailable. Local, Train and Runs work.")
        else:
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
        if not reason and not self._rows:
            self.start_search()

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
        if self.hub_app.hub_offline and self.backend.offline():
            self._set_status("Offline mode: search is unavailable.")
            return
        self._generation += 1
        self._loading = True
        self._next_cursor = None
        self._last_query = self._query()
        self._set_status("Searching…")
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
