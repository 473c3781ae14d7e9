"""Modal dialogs: confirmation, help, file picker, evaluation settings, deleting a run, merging an adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, DirectoryTree, Input, Label, Markdown, Static

from hubmgr.tui.help import help_markdown
from hubmgr.tui.screens.base import Dialog


class ConfirmScreen(Dialog[bool]):
    """Ask a yes/no question; dismisses with True (yes) or False."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", danger: bool = True) -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error" if self.danger else "primary")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class QuitDialog(Dialog[str | None]):
    """Quitting with work going: dismisses with ``"keep"`` (it goes on in the background) or None (do not
    quit); "stop" stays open, saying "Stopping…", while the app's ``stop_then_quit`` stops the work and quits."""

    BINDINGS = [
        Binding("k", "answer('keep')", "Keep running"),
        Binding("s", "answer('stop')", "Stop them"),
        Binding("escape,n", "answer(None)", "Cancel"),
    ]

    def __init__(self, what: list[str]) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="quit-dialog"):
            yield Label("Quit hubmgr?", classes="dialog-title")
            yield Static(
                "Still going:\n" + "\n".join(f"  • {w}" for w in self.what), classes="dialog-text", markup=False
            )
            yield Static(
                "Keep running: training goes on as its own process and downloads go on in a background"
                " process; `hubmgr runs follow ID`, or the TUI next time, shows them. Stop them: training"
                " saves a checkpoint (resume it later) and downloads keep their partial files.",
                classes="dialog-text",
                markup=False,
            )
            yield Static("", id="quit-progress", classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep running (k)", id="keep", variant="primary")
                yield Button("Stop them (s)", id="stop", variant="error")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_answer(None if event.button.id == "cancel" else event.button.id)

    def action_answer(self, answer: str | None) -> None:
        stopping = self.query_one("#stop", Button).disabled
        if stopping and answer is None:  # Esc while stopping: quit now, the run stops on its own
            self.app.exit(message="Quit while stopping: the run stops after its current step, with a checkpoint.")
            return
        if answer == "stop":
            # the app stops the work, then quits; meanwhile the dialog stays and says so
            if stopping:
                return
            self.show_progress("Stopping… (training saves a checkpoint first; Esc quits without waiting)")
            for button in self.query(Button):
                button.disabled = True
            stop = getattr(self.app, "stop_then_quit", None)
            if stop is not None:
                stop(self)
            return
        self.dismiss(answer)

    def show_progress(self, text: str) -> None:
        self.query_one("#quit-progress", Static).update(text)


HELP_TEXT = """\
# hubmgr

Browse the Hugging Face Hub, download models, fine-tune them with LoRA and compare runs.
Everything here is also a `hubmgr` command (see `hubmgr --help`).

## Everywhere

| Key | Action |
|---|---|
| `1` … `6` | Browse, Downloads, Local, Train, Runs, Plugins |
| `Tab` / `Shift+Tab` | move the focus (what has it is outlined) |
| `Ctrl+P` | command palette: this screen's keys, *open run ID*, *open cached model NAME*, *open model owner/name* |
| `F1` / `?` | this help, for the screen you are on |
| `Esc` | leave a text field or list; with none focused: back / close |
| `q` / `Ctrl+Q` | quit (`q` only while no text field has the focus) |

While a text field or a choice list has the focus, letters and digits go to it (`1` types a 1, `q` a q).
`Esc` leaves the field and keeps what you typed; then the screen's keys and the number keys work again.

## Browse
Type a query and press `Enter`; pick a task, library and sort order. More results load as you
scroll down. `Enter` on a row opens the model. The Local column marks what the cache holds
(*✓ cached*, or *partial* when a revision lacks files). Offline, or with the Hub unreachable, the
table lists the cached models instead, filtered by the query; `F5` tries the Hub again.

## Model
The card, the files and their sizes, the parameter count, and whether LoRA training fits this
machine (fits / tight / won't fit). Choose a preset (safetensors only, everything, custom globs)
and press `d` (or the Download button) to queue it.

## Downloads
Per-file and total progress, speed and ETA. `c` cancels, `r` resumes a cancelled, failed or
interrupted download (bytes already fetched are kept), `x` removes an entry, `X` clears the finished
ones. The queue is kept between launches: what was going when hubmgr closed comes back as
interrupted, and a download left going in the background shows its process until it ends.

## Local
The shared Hugging Face cache. Click a column title (or press `s`) to sort. `d` deletes (after a
confirmation, which names the adapters trained on it), `v` verifies the selected repo, `V` verifies
all, `t` trains the selected model, `/` filters the repos as you type (Esc clears the filter).
A repo marked *incomplete* lacks files of its revision (a download that did not finish); `R`
resumes its download. After a verify that found damaged or missing files, `f` repairs them: they are
removed (only once the Hub has answered) and downloaded again, with their progress in Downloads.

## Train
Choose a cached model (or type a path), a task and a data file, adjust the settings, then
`Ctrl+S` (or Start). The run is a process of its own: the live view shows the loss curve, learning
rate, samples/s, ETA and eval metrics, and quitting the TUI leaves it going (you are asked). `c` stops it
after a checkpoint; `a` attaches to the newest running run, wherever it was started.
`Ctrl+T` (or Estimate) checks the form, then times a few real training steps of it and shows the
predicted time of the whole run, its steps and its peak memory (and whether it fits); `Esc` or `Ctrl+T`
stops it, and a change of the form marks the estimate as stale.

## Runs
Every training run. `Enter` opens a run (config, curves, metrics). `a` attaches to a running run
(its live view on Train), `s` stops it, `R` resumes a stopped or interrupted one (after a confirmation
that says from which checkpoint). `d` deletes a run: forget it, delete its adapter, or both (asked
first). `m` merges its adapter into the base model (a full model in a new folder). `/` filters the runs
as you type (Esc clears the filter). `Space` marks (or unmarks) the run under the cursor and moves the cursor down to the next
run, so pressing it again marks the next one; mark adapters of one base model, then `e` evaluates the
base and the marked adapters side by side, on the runs' eval data.

## Plugins
Loaded plugins, their tasks and hooks, and plugins that failed to load with their error. `Enter` on a
plugin shows its details: the package that provides it, its version, the hooks it implements, the tasks
it registers and its load errors.

When the Hub cannot be reached a banner says so; Local, Train and Runs keep working.
"""


class HelpScreen(Dialog[None]):
    """Help for the screen it was opened on: that screen's keys first, then the global keys, then the rest."""

    BINDINGS = [Binding("escape,q,f1,question_mark", "app.pop_screen", "Close")]

    def __init__(self, for_screen: Any = None) -> None:
        super().__init__()
        self.for_screen = for_screen
        #: the page as Markdown, built when it opens (the keys that apply now are the ones of that moment)
        self.text = help_markdown(for_screen, HELP_TEXT)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            with VerticalScroll(id="help-scroll"):
                yield Markdown(self.text, id="help-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (Esc)", id="close", variant="primary", compact=True)

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)


class _FileTree(DirectoryTree):
    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")]


class FilePickerScreen(Dialog[str | None]):
    """Pick a file (or folder) from a tree; dismisses with the path or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, start: str | Path | None = None, *, title: str = "Choose a data file") -> None:
        super().__init__()
        start_path = Path(start).expanduser() if start else Path.cwd()
        if start_path.is_file():
            start_path = start_path.parent
        if not start_path.is_dir():
            start_path = Path.cwd()
        self.start = start_path
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield _FileTree(self.start, id="picker-tree")
            yield Input(str(self.start), id="picker-path", placeholder="path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Use this path", id="use", variant="primary")
                yield Button("Cancel", id="cancel")

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(str(event.path))

    @on(DirectoryTree.DirectorySelected)
    def _dir(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#picker-path", Input).value = str(event.path)

    @on(Input.Submitted, "#picker-path")
    @on(Button.Pressed, "#use")
    def _use(self) -> None:
        value = self.query_one("#picker-path", Input).value.strip()
        self.dismiss(value or None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class EvalDialog(Dialog[tuple[str, str] | None]):
    """Ask for the data and split to evaluate on; dismisses with (data, split) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, summary: str, *, data: str = "", split: str = "eval") -> None:
        super().__init__()
        self.summary = summary
        self.data = data
        self.split = split

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Evaluate side by side", classes="dialog-title")
            yield Static(self.summary, classes="dialog-text", markup=False)
            yield Label("Data file or Hub dataset id")
            yield Input(self.data, id="eval-data", placeholder="path/to/data.csv")
            yield Label("Split")
            yield Input(self.split, id="eval-split")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Evaluate", id="go", variant="primary")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def _go(self) -> None:
        data = self.query_one("#eval-data", Input).value.strip()
        split = self.query_one("#eval-split", Input).value.strip() or "eval"
        if not data:
            self.notify("Give a data file to evaluate on.", severity="error")
            return
        self.dismiss((data, split))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class DeleteRunDialog(Dialog[str | None]):
    """Delete a run: forget it (its record and metric history), delete its adapter (record and folder), or
    both. Dismisses with ``"run"``, ``"adapter"``, ``"both"`` or None (cancel)."""

    BINDINGS = [
        Binding("f", "answer('run')", "Forget the run"),
        Binding("a", "answer('adapter')", "Delete the adapter"),
        Binding("b", "answer('both')", "Both"),
        Binding("n,escape", "answer(None)", "Cancel"),
    ]

    def __init__(self, run_id: str, what: str, *, adapter_path: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.what = what
        self.adapter_path = adapter_path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="delete-run-dialog"):
            yield Label(f"Delete run {self.run_id}?", classes="dialog-title", markup=False)
            lines = [self.what, "Forget the run: its record and metric history go; its files stay on disk."]
            if self.adapter_path:
                lines.append(f"Delete the adapter: its folder {self.adapter_path} is deleted from disk.")
            else:
                lines.append("It has no saved adapter.")
            yield Static("\n".join(lines), classes="dialog-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                if self.adapter_path:
                    yield Button("Both (b)", id="both", variant="error")
                    yield Button("Adapter only (a)", id="adapter", variant="error")
                yield Button("Forget the run (f)", id="run", variant="error" if not self.adapter_path else "warning")
                yield Button("Cancel (n)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_answer(None if event.button.id == "cancel" else event.button.id)

    def action_answer(self, answer: str | None) -> None:
        if answer in ("adapter", "both") and not self.adapter_path:
            return
        self.dismiss(answer)


class MergeDialog(Dialog[tuple[str, bool] | None]):
    """Ask where to write an adapter merged into its base model; dismisses with (output, trust_remote_code)
    or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, summary: str, *, output: str) -> None:
        super().__init__()
        self.summary = summary
        self.output = output

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="merge-dialog"):
            yield Label("Merge the adapter into its base model", classes="dialog-title")
            yield Static(self.summary, classes="dialog-text", markup=False)
            yield Label("Write the merged model (safetensors) to this new folder")
            yield Input(self.output, id="merge-output", placeholder="path/to/merged-model")
            yield Checkbox("Trust the base model's own code (only for a model that needs it)", id="merge-trust")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Merge", id="go", variant="primary")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def _go(self) -> None:
        output = self.query_one("#merge-output", Input).value.strip()
        if not output:
            self.notify("Give a folder to write the merged model to.", severity="error")
            return
        self.dismiss((output, self.query_one("#merge-trust", Checkbox).value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
