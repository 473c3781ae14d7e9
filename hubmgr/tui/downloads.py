"""The download queue's state: plain Python, no widgets.

A :class:`DownloadItem` is updated from the download worker thread by :meth:`DownloadItem.apply`
(the core's typed events) and read by the Downloads screen on the UI thread. Values are plain
attributes replaced whole, so a reader sees either the old or the new value, never half of one.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hubmgr.hub import events as ev

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

#: Include/exclude presets offered by the Model screen (value -> label).
PRESET_LABELS = {
    "safetensors": "Safetensors only",
    "everything": "Everything (pickle too)",
    "custom": "Custom globs",
}
PICKLE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt"]
#: Other weight formats a "safetensors only" download leaves out.
OTHER_WEIGHT_PATTERNS = ["*.h5", "*.msgpack", "*.onnx", "*.onnx_data", "*.ot", "*.gguf", "*.tflite"]


def preset_filters(
    preset: str, include_text: str = "", exclude_text: str = "", *, allow_pickle: bool = False
) -> tuple[list[str] | None, list[str] | None, bool]:
    """(include, exclude, allow_pickle) for a preset; "custom" reads the glob fields."""
    if preset == "everything":
        # "*" takes every file; naming the pickle suffixes keeps pickle copies that sit beside safetensors
        return ["*", *PICKLE_PATTERNS], None, True
    if preset == "custom":
        return split_globs(include_text) or None, split_globs(exclude_text) or None, allow_pickle
    return None, PICKLE_PATTERNS + OTHER_WEIGHT_PATTERNS, False


_ids = itertools.count(1)


def split_globs(text: str) -> list[str]:
    """'*.json, *.safetensors  tokenizer*' -> ['*.json', '*.safetensors', 'tokenizer*']."""
    return [part for part in text.replace(",", " ").split() if part]


@dataclass
class FileState:
    path: str
    size: int
    done: int = 0
    finished: bool = False
    cached: bool = False


@dataclass
class DownloadItem:
    """One repo in the queue."""

    repo_id: str
    revision: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    allow_pickle: bool = False
    id: int = field(default_factory=lambda: next(_ids))
    status: str = QUEUED
    commit: str | None = None
    total_bytes: int = 0
    done_bytes: int = 0
    bytes_cached: int = 0
    total_files: int = 0
    files_done: int = 0
    speed: float = 0.0
    eta: float | None = None
    files: dict[str, FileState] = field(default_factory=dict)
    error: str | None = None
    path: str | None = None
    transferred_bytes: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    # -- events (worker thread) ----------------------------------------------------------------------
    def apply(self, event: Any) -> None:
        """Fold one core download event into the item's state."""
        if isinstance(event, ev.DownloadStarted):
            self.commit = event.commit
            self.total_bytes = event.total_bytes
            self.total_files = event.total_files
            self.bytes_cached = event.bytes_cached
            self.done_bytes = max(self.done_bytes, event.bytes_cached)
        elif isinstance(event, ev.FileStarted):
            files = dict(self.files)
            files[event.path] = FileState(event.path, event.size, done=event.resumed_from)
            self.files = files
        elif isinstance(event, ev.FileProgress):
            state = self.files.get(event.path)
            if state is None:
                files = dict(self.files)
                files[event.path] = state = FileState(event.path, event.size)
                self.files = files
            state.done = event.done
            state.size = event.size
        elif isinstance(event, ev.FileDone):
            files = dict(self.files)
            files[event.path] = FileState(event.path, event.size, done=event.size, finished=True, cached=event.cached)
            self.files = files
        elif isinstance(event, ev.DownloadProgress):
            self.done_bytes = event.done_bytes
            self.total_bytes = event.total_bytes or self.total_bytes
            self.files_done = event.files_done
            self.total_files = event.total_files or self.total_files
            self.speed = event.speed
            self.eta = event.eta
        elif isinstance(event, ev.DownloadFinished):
            self.commit = event.commit
            self.path = event.path
            self.transferred_bytes = event.transferred_bytes
            self.done_bytes = self.total_bytes or self.done_bytes
            self.files_done = self.total_files or self.files_done
            self.eta = 0.0

    # -- lifecycle (UI thread) -----------------------------------------------------------------------
    def mark_running(self) -> None:
        self.cancel = threading.Event()
        self.status = RUNNING
        self.error = None
        self.speed = 0.0
        self.eta = None
        self.started_at = time.monotonic()

    def mark_finished(self, status: str, *, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.speed = 0.0
        if status != DONE:
            self.eta = None
        self.finished_at = time.monotonic()

    @property
    def resumable(self) -> bool:
        return self.status in (FAILED, CANCELLED)

    @property
    def active_files(self) -> list[FileState]:
        """Files being transferred now (started, not finished)."""
        return [f for f in list(self.files.values()) if not f.finished]

    @property
    def fraction(self) -> float:
        return (self.done_bytes / self.total_bytes) if self.total_bytes else (1.0 if self.status == DONE else 0.0)

    def describe_filters(self) -> str:
        parts = []
        if self.include:
            parts.append("include " + " ".join(self.include))
        if self.exclude:
            parts.append("exclude " + " ".join(self.exclude))
        if self.allow_pickle:
            parts.append("pickle allowed")
        return ", ".join(parts) or "default files"
