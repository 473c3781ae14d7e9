"""Model: one repo's card, files, parameter count, dtypes, the LoRA fit estimate, and the download form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.worker import Worker
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    Label,
    LoadingIndicator,
    Markdown,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from hubmgr.tui import downloads as dl
from hubmgr.format import plural
from hubmgr.tui.format import date, error_sentence, human_bytes, human_count, plain
from hubmgr.tui.messages import ModelLoaded
from hubmgr.tui.screens.base import MainScreen
from hubmgr.tui.widgets.inputs import Choice
from hubmgr.tui.widgets.tables import InfoTable, RowTable

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.hub.fit import FitReport
    from hubmgr.hub.info import ModelDetails, RepoFile

VERDICT_STYLE = {"fits": "bold green", "tight": "bold yellow", "won't fit": "bold red"}


def strip_front_matter(card: str) -> str:
    """Drop the YAML metadata block at the top of a model card."""
    text = card.lstrip("\ufeff")
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip("\n")
    return text


class ModelScreen(MainScreen):
    """Pushed on top of Browse (or opened from the command palette)."""

    MODE = "browse"
    HELP_SECTION = "Model"
    AUTO_FOCUS = "#model-tabs Tabs"
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("d", "download", "Download", id="download"),
        Binding("t", "train", "Train it", id="train-model"),
        Binding("r", "retry", "Retry", id="retry-model"),
    ]

    def __init__(self, repo_id: str) -> None:
        super().__init__()
        self.repo_id = repo_id
        self.details: ModelDetails | None = None
        #: why the details could not be loaded (shown on the page; ``r`` tries again)
        self.failure: str | None = None
        #: the files of the loaded revision that are in the local cache already
        self.cached: set[str] = set()

    def compose_body(self) -> ComposeResult:
        yield Static(Text(self.repo_id, style="bold"), id="model-title")
        yield Static("", id="model-failure")
        yield LoadingIndicator(id="model-loading")
        with TabbedContent(id="model-tabs", initial="tab-overview"):
            with TabPane("Overview", id="tab-overview"):
                with Horizontal(id="overview-row"):
                    with VerticalScroll(id="overview"):
                        yield from self._compose_overview()
                    with VerticalScroll(id="card-side-scroll"):
                        yield Markdown("", id="card-side")
            with TabPane("Card", id="tab-card"):
                with VerticalScroll(id="card-scroll"):
                    yield Markdown("", id="card")
            with TabPane("Files", id="tab-files"):
                files = RowTable(id="files-table")
                files.add_column("File", key="path")
                files.add_column("Size", key="size")
                files.add_column("LFS", key="lfs")
                yield files

    def _compose_overview(self) -> ComposeResult:
        yield Static("", id="model-summary")
        yield Label("LoRA training on this machine", classes="section")
        yield Static("", id="fit-summary")
        fit = InfoTable(id="fit-table")
        fit.add_columns("Device", "Free", "Total", "Verdict")
        yield fit
        yield Label("Download", classes="section")
        with Horizontal(classes="form-line"):
            yield Choice(
                [(label, value) for value, label in dl.PRESET_LABELS.items()],
                value="safetensors",
                allow_blank=False,
                id="preset",
                compact=True,
            )
            yield Checkbox("allow pickle", id="allow-pickle", compact=True)
        yield Input(placeholder="include globs, e.g. *.json *.safetensors", id="include", classes="custom-only")
        yield Input(placeholder="exclude globs, e.g. *.onnx", id="exclude", classes="custom-only")
        yield Static("", id="download-preview", markup=False)
        with Horizontal(classes="form-line"):
            yield Button("Download (d)", id="download-button", variant="primary", disabled=True)
            yield Button("Train it (t)", id="train-button", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#model-tabs").display = False
        self._update_custom_fields()
        self.load_details()

    @work(thread=True, group="model", exclusive=True, exit_on_error=False)
    def load_details(self) -> None:
        details = self.backend.model_info(self.repo_id)
        fit, fit_error = None, None
        try:
            fit = self.backend.estimate_fit(details)
        except Exception as exc:  # the estimate is optional: show why it is missing
            fit_error = str(exc)
        cached: set[str] = set()
        if details.sha:
            try:
                cached = self.backend.cached_files(details.id, details.sha, [f.path for f in details.files])
            except Exception:  # noqa: BLE001 - an unreadable cache: count every file as to fetch
                cached = set()
        self.post_message(ModelLoaded(details, fit, fit_error, cached))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        from textual.worker import WorkerState

        if event.worker.group == "model" and event.state == WorkerState.ERROR:
            # the page says what went wrong and how to go on; it is not also a notification, nor the app's
            # "Hub unreachable" banner (one repo's failure says nothing about the other screens)
            event.prevent_default()
            event.stop()
            self._show_failure(event.worker.error)

    def _show_failure(self, error: BaseException | None) -> None:
        self.failure = reason = error_sentence(error)
        self.query_one("#model-loading").display = False
        self.query_one("#model-tabs").display = False
        hint = "Press r to try again, or Esc to go back."
        panel = self.query_one("#model-failure", Static)
        panel.update(Text.assemble(("Could not load this model. ", "bold red"), reason, "\n", (hint, "dim")))
        panel.display = True
        self.refresh_bindings()

    def action_retry(self) -> None:
        if self.failure is None:
            return
        self.failure = None
        self.query_one("#model-failure").display = False
        self.query_one("#model-loading").display = True
        self.refresh_bindings()
        self.load_details()

    def on_model_loaded(self, message: ModelLoaded) -> None:
        d = self.details = message.details
        self.cached = set(message.cached)
        if not getattr(d, "from_cache", False):
            self.hub_app.hub_answered()
        self.query_one("#model-loading").display = False
        self.query_one("#model-tabs").display = True
        bits = [d.pipeline_tag or "no task tag", d.library or "no library"]
        if d.gated:
            bits.append("gated")
        if getattr(d, "from_cache", False):
            bits.append("from the local cache")
        title = Text.assemble((d.id, "bold"), "  ", (" · ".join(str(b) for b in bits), "dim"))
        self.query_one("#model-title", Static).update(title)

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        dtypes = ", ".join(f"{k} ({human_count(v)})" for k, v in sorted((d.dtypes or {}).items())) or "unknown"
        rows = [
            ("Parameters", human_count(d.param_count) if d.param_count else "unknown (no safetensors header)"),
            ("Dtypes", dtypes),
            ("Files", f"{plural(len(d.files), 'file')}, {human_bytes(d.total_size)}"),
            ("License", str(d.license or "unknown")),
            ("Revision", f"{d.revision or 'main'} ({(d.sha or '')[:12]})"),
            ("Downloads / likes", f"{human_count(d.downloads)} / {human_count(d.likes)}"),
            ("Updated", date(d.last_modified)),
        ]
        if d.gated:
            rows.append(("Gated", f"{d.gated}: accept the terms on the Hub and set HF_TOKEN"))
        if d.tags:
            rows.append(("Tags", ", ".join(str(t) for t in list(d.tags)[:12])))
        for warning in getattr(d, "warnings", None) or []:
            rows.append(("Note", str(warning)))
        for key, value in rows:
            grid.add_row(key, Text(value))
        self.query_one("#model-summary", Static).update(grid)

        self._show_fit(message.fit, message.fit_error, d)

        files = self.query_one("#files-table", DataTable)
        files.clear()
        for f in sorted(d.files, key=lambda f: f.path):
            files.add_row(
                plain(f.path), plain(human_bytes(f.size), right=True), plain("yes" if f.lfs_sha256 else ""), key=f.path
            )
        card = strip_front_matter(d.card_text or "").strip() or "*This repo has no model card.*"
        self.query_one("#card", Markdown).update(card)
        self.query_one("#card-side", Markdown).update(card)
        self.query_one("#download-button", Button).disabled = False
        self.query_one("#train-button", Button).disabled = False
        self._update_preview()
        self.refresh_bindings()

    def _show_fit(self, fit: FitReport | None, error: str | None, d: ModelDetails) -> None:
        summary = self.query_one("#fit-summary", Static)
        table = self.query_one("#fit-table", DataTable)
        table.clear()
        if fit is None:
            table.display = False
            reason = error or "the parameter count is unknown (no safetensors header to read)"
            summary.update(Text(f"No estimate: {reason}.", style="dim"))
            return
        table.display = True
        parts = ", ".join(f"{k} {human_bytes(v)}" for k, v in (fit.breakdown or {}).items())
        summary.update(
            Text.assemble("Needs about ", (human_bytes(fit.required_bytes), "bold"), f" ({parts})" if parts else "")
        )
        for dev in fit.devices:
            table.add_row(
                plain(f"{dev.name} ({dev.kind})"),
                plain(human_bytes(dev.free_bytes), right=True),
                plain(human_bytes(dev.total_bytes), right=True),
                Text(dev.verdict, style=VERDICT_STYLE.get(dev.verdict, "")),
            )

    # -- download form -------------------------------------------------------------------------------
    def _filters(self) -> tuple[list[str] | None, list[str] | None, bool]:
        preset = self.query_one("#preset", Select).value
        return dl.preset_filters(
            str(preset),
            self.query_one("#include", Input).value,
            self.query_one("#exclude", Input).value,
            allow_pickle=self.query_one("#allow-pickle", Checkbox).value,
        )

    def _update_custom_fields(self) -> None:
        custom = self.query_one("#preset", Select).value == "custom"
        for widget in self.query(".custom-only"):
            widget.display = custom
        self.query_one("#allow-pickle", Checkbox).display = custom

    @on(Select.Changed, "#preset")
    @on(Input.Changed, "#include, #exclude")
    @on(Checkbox.Changed, "#allow-pickle")
    def _form_changed(self) -> None:
        self._update_custom_fields()
        self._update_preview()

    def _update_preview(self) -> None:
        if self.details is None:
            return
        include, exclude, allow_pickle = self._filters()
        chosen, refused = self.backend.download_selection(
            self.details.files, include=include, exclude=exclude, allow_pickle=allow_pickle
        )
        preview = self.query_one("#download-preview", Static)
        if refused:
            preview.update(
                "Will fetch nothing: the repo has only pickle weights, which are left out unless you "
                "choose Everything (or tick allow pickle)."
            )
            return
        preview.update(self._preview_text(chosen))

    def _preview_text(self, chosen: list[RepoFile]) -> str:
        """What Download would fetch: the chosen files not in the cache yet (none can be fetched offline)."""
        assert self.details is not None
        missing = [f for f in chosen if f.path not in self.cached]
        size = sum(f.size or 0 for f in missing)
        cached = len(chosen) - len(missing)
        if not chosen:
            return "Will fetch nothing: no file of the repo matches these globs."
        if not missing:
            return f"All {plural(len(chosen), 'chosen file')} are in the cache already; " + (
                "nothing to fetch." if self._hub_out() else "Download only checks them against the Hub."
            )
        kept = f" ({cached} chosen in the cache already)" if cached else ""
        if self._hub_out():
            return (
                f"{plural(len(missing), 'chosen file')} ({human_bytes(size)}) are not in the cache{kept}, and the "
                "Hub cannot be reached: they can be fetched once it answers."
            )
        total = plural(len(self.details.files), "file")
        return f"Will fetch {len(missing)} of {total}, about {human_bytes(size)}{kept}."

    def _hub_out(self) -> bool:
        """The details came from the cache (offline, or the Hub did not answer) or offline mode is on."""
        return bool(getattr(self.details, "from_cache", False)) or self.backend.offline()

    @on(Button.Pressed, "#download-button")
    def action_download(self) -> None:
        if self.details is None:
            self.notify("Wait for the model details to load.", severity="warning")
            return
        include, exclude, allow_pickle = self._filters()
        if self._hub_out():
            chosen, refused = self.backend.download_selection(
                self.details.files, include=include, exclude=exclude, allow_pickle=allow_pickle
            )
            if not refused and all(f.path in self.cached for f in chosen):
                self.notify(f"{self.details.id} is in the cache already: nothing to fetch.", title="Download")
                return
            if self.backend.offline():
                self.notify(
                    "Offline mode is on (HF_HUB_OFFLINE): the files not in the cache cannot be fetched.",
                    title="Download",
                    severity="warning",
                )
                return
        self.hub_app.enqueue_download(
            self.details.id, revision=self.details.revision, include=include, exclude=exclude, allow_pickle=allow_pickle
        )
        self.notify(f"Queued {self.details.id}. Press 2 to watch the download.", title="Download")

    @on(Button.Pressed, "#train-button")
    def action_train(self) -> None:
        self.hub_app.train_with(self.repo_id)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("download", "train"):
            return self.details is not None  # shown once the model's details have loaded
        if action == "retry":
            return self.failure is not None
        return True
