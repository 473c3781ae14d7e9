"""Messages that carry results and progress from worker threads to the UI thread.

Progress messages define :meth:`can_replace`, so a flood of updates (a download emits many per second)
collapses into the latest one; the state they point at is complete, so nothing is lost by skipping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # pragma: no cover - the core's types; importing them here would load the core
    from hubmgr.eval.predict import Prediction
    from hubmgr.eval.runner import EvalReport
    from hubmgr.hub.cache import CachedRepo, VerifyResult
    from hubmgr.hub.fit import FitReport
    from hubmgr.hub.info import ModelDetails
    from hubmgr.hub.search import SearchPage
    from hubmgr.plugins import PluginInfo
    from hubmgr.runs.store import AdapterRecord, MetricPoint, RunRecord
    from hubmgr.task import Task
    from pathlib import Path


class SearchLoaded(Message):
    """A page of search results arrived. ``append``: more rows for the same search."""

    def __init__(self, page: SearchPage, *, append: bool, generation: int) -> None:
        super().__init__()
        self.page = page
        self.append = append
        self.generation = generation


class ModelLoaded(Message):
    """Details (and the fit estimate) of one repo arrived."""

    def __init__(
        self,
        details: ModelDetails,
        fit: FitReport | None,
        fit_error: str | None = None,
        cached: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.details = details
        self.fit = fit
        self.fit_error = fit_error
        #: the repo files of ``details.sha`` already in the local cache
        self.cached = cached or set()


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
    def __init__(self, repos: list[CachedRepo]) -> None:
        super().__init__()
        self.repos = repos


class VerifyDone(Message):
    def __init__(self, repo_id: str | None, results: list[VerifyResult]) -> None:
        super().__init__()
        self.repo_id = repo_id
        self.results = results


class TrainUpdated(Message):
    """The live training state changed; the screen re-reads it."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainUpdated)


class TrainDone(Message):
    def __init__(self, result: RunRecord) -> None:
        super().__init__()
        self.result = result


class RunsLoaded(Message):
    def __init__(self, runs: list[RunRecord], adapters: list[AdapterRecord]) -> None:
        super().__init__()
        self.runs = runs
        self.adapters = adapters


class RunLoaded(Message):
    def __init__(
        self,
        run: RunRecord,
        history: list[MetricPoint],
        tables: dict[str, dict[str, float]] | None = None,
        folder: "tuple[Path, bool] | None" = None,
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

    def __init__(self, predictions: list[Prediction], error: str | None = None) -> None:
        super().__init__()
        self.predictions = predictions
        self.error = error


class EvalDone(Message):
    def __init__(self, report: EvalReport) -> None:
        super().__init__()
        self.report = report


class PluginsLoaded(Message):
    def __init__(self, plugins: list[PluginInfo], tasks: dict[str, type[Task]], error: str | None = None) -> None:
        super().__init__()
        self.plugins = plugins
        self.tasks = tasks
        self.error = error


class HubUnreachable(Message):
    """A Hub call found the Hub unreachable (posted to the app)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
