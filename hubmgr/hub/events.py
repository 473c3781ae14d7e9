"""Typed download/verify progress events. The core emits them through an ``on_event`` callback;
the CLI renders them with rich, the TUI turns them into Textual messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union


@dataclass(frozen=True)
class DownloadStarted:
    repo_id: str
    revision: str
    commit: str
    total_files: int
    total_bytes: int  # bytes of all selected files
    bytes_cached: int  # already complete in the cache (not transferred)


@dataclass(frozen=True)
class FileStarted:
    path: str
    size: int
    resumed_from: int = 0  # bytes kept from an earlier, interrupted try


@dataclass(frozen=True)
class FileProgress:
    path: str
    done: int  # bytes of this file on disk so far
    size: int


@dataclass(frozen=True)
class FileDone:
    path: str
    size: int
    cached: bool = False  # True when already complete in the cache; nothing was transferred


@dataclass(frozen=True)
class DownloadProgress:
    """Totals over the whole repo; emitted at most a few times a second."""

    done_bytes: int
    total_bytes: int
    files_done: int
    total_files: int
    speed: float  # bytes/s over a moving window
    eta: float | None  # seconds, None while unknown
    stalled_for: float = 0.0  # seconds since the last byte arrived while files are in flight (0 while bytes flow)


@dataclass(frozen=True)
class DownloadFinished:
    repo_id: str
    commit: str
    path: str  # the snapshot folder
    transferred_bytes: int  # bytes that crossed the network in this call
    seconds: float


@dataclass(frozen=True)
class DownloadRetry:
    """A request failed in a way worth another try (no data for a while, a dropped connection, 429, 5xx);
    the download waits ``wait`` seconds, then asks again. Renderers show it, so a stall is never silent."""

    path: str  # the repo file, or "" for the file listing
    reason: str  # one sentence: what happened ("no data for 10 s", "HTTP 429 ...")
    attempt: int  # this retry's number (1 for the first retry)
    max_attempts: int  # when ``attempt`` reaches it, the download gives up
    wait: float  # seconds before the next try


@dataclass(frozen=True)
class VerifyProgress:
    repo_id: str
    path: str
    ok: bool
    detail: str = ""


HubEvent = Union[
    DownloadStarted,
    FileStarted,
    FileProgress,
    FileDone,
    DownloadProgress,
    DownloadFinished,
    DownloadRetry,
    VerifyProgress,
]
EventCallback = Callable[[HubEvent], None]
