"""Messages that carry results and progress from worker threads to the UI thread.

Progress messages define :meth:`can_replace`, so a flood of updates (a download emits many per second)
collapses into the latest one; the state they point at is complete, so nothing is lost by skipping.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class SearchLoaded(Message):
    """A page of search results arrived. ``append``: more rows for the same search."""

    def __init__(self, page: Any, *, append: bool, generation: int) -> None:
        super().__init__()
        self.page = page
        self.append = append
        self.generation = generation


class ModelLoaded(Message):
    """Details (and the fit estimate) of one repo arrived."""

    def __init__(self, details: Any, fit: Any, fit_error: str | None = None) -> None:
        super().__init__()
        self.details = details
        self.fit = fit
        self.fit_error = fit_error


class DownloadUpdated(Message):
    """An item of the download queue changed (progress, status)."""

    def __init__(self, item_id: int) -> None:
        super().__init__()
        self.item_id = item_id

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadUpdated) and message.item_id == self.item_id


class DownloadsChanged(Message):
    """Items were added to or removed from the queue, or one finished."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadsChanged)


class CacheLoaded(Message):
    def __init__(self, repos: list[Any]) -> None:
        super().__init__()
        self.repos = repos


class VerifyDone(Message):
    def __init__(self, repo_id: str | None, results: list[Any]) -> None:
        super().__init__()
        self.repo_id = repo_id
        self.results = results


class TrainUpdated(Message):
    """The live training state changed; the screen re-reads it."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainUpdated)


class TrainDone(Message):
    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class RunsLoaded(Message):
    def __init__(self, runs: list[Any], adapters: list[Any]) -> None:
        super().__init__()
        self.runs = runs
        self.adapters = adapters


class RunLoaded(Message):
    def __init__(
        self,
        run: Any,
        history: list[Any],
        tables: dict[str, dict[str, float]] | None = None,
        folder: tuple[Any, bool] | None = None,
    ) -> None:
        super().__init__()
        self.run = run
        self.history = history
        self.tables = dict(tables or {})
        #: (the folder the run's files are in now, True when it is the unfinished OUT.partial), None: neither
        self.folder = folder


class EvalProgressed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EvalProgressed)


class PredictDone(Message):
    """Predictions for the Try tab arrived (``predictions``), or failed (``error``)."""

    def __init__(self, predictions: list[Any], error: str | None = None) -> None:
        super().__init__()
        self.predictions = predictions
        self.error = error


class EvalDone(Message):
    def __init__(self, report: Any) -> None:
        super().__init__()
        self.report = report


class PluginsLoaded(Message):
    def __init__(self, plugins: list[Any], tasks: dict[str, Any], error: str | None = None) -> None:
        super().__init__()
        self.plugins = plugins
        self.tasks = tasks
        self.error = error


class HubUnreachable(Message):
    """A Hub call found the Hub unreachable (posted to the app)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
