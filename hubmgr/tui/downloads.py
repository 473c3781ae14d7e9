"""The download queue's state: plain Python, no widgets.

A :class:`DownloadItem` is updated from the download worker thread by :meth:`DownloadItem.apply`
(the core's typed events) and read by the Downloads screen on the UI thread. Values are plain
attributes replaced whole, so a reader sees either the old or the new value, never half of one.

The queue outlives the app: :class:`QueueFile` keeps it in ``downloads.json`` under hubmgr's data
folder (written atomically, under a lock, so several TUIs share the file without corrupting it). Each
TUI process owns the entries it shows; an entry whose owner is gone is claimed by the next TUI that
starts, a running or queued one becoming ``interrupted`` (resumable). A download handed to a background
``hubmgr download`` process keeps that process's pid, so the next TUI knows whether it still runs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from hubmgr.hub import events as ev
from hubmgr.hub.files import PICKLE_SUFFIXES

logger = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
#: was running or queued when the app that held it ended (or was stopped at quit): resumable
INTERRUPTED = "interrupted"
#: handed to a detached ``hubmgr download`` process (``DownloadItem.pid``)
BACKGROUND = "background"

#: statuses a user can resume from
RESUMABLE = (FAILED, CANCELLED, INTERRUPTED)

#: Include/exclude presets offered by the Model screen (value -> label).
PRESET_LABELS = {
    "safetensors": "Safetensors only",
    "everything": "Everything (pickle too)",
    "custom": "Custom globs",
}
PICKLE_PATTERNS = [f"*{suffix}" for suffix in PICKLE_SUFFIXES]
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
    #: stable across launches (the on-disk queue's key); ``id`` is only this process's widget id
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: the background process (``BACKGROUND``): pid, its start time (tells a reused pid apart), its log
    pid: int | None = None
    pid_started: float | None = None
    log: str | None = None
    #: why the cancel event was set: the status the item takes when its worker ends (CANCELLED: the user
    #: cancelled it; INTERRUPTED: the app is closing; BACKGROUND: handed to a background process)
    stop_as: str | None = field(default=None, repr=False)
    #: the retry the download is waiting on ("the connection dropped; try 2 of 5 in 4 s"), None while bytes flow
    retry: str | None = None
    #: the Hub was not asked (offline or unreachable) and the cache held everything chosen
    from_cache: bool = False

    # -- events (worker thread) ----------------------------------------------------------------------
    def apply(self, event: ev.HubEvent) -> None:
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
        elif isinstance(event, ev.DownloadRetry):
            what = f" of {event.path}" if event.path else " of the file list"
            self.retry = f"{event.reason.rstrip('.')}; retry {event.attempt} of {event.max_attempts}{what} in {event.wait:.0f} s."
        elif isinstance(event, ev.FileProgress):
            self.retry = None
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
            self.retry = None
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
        self.stop_as = None
        self.pid = self.pid_started = None
        self.log = None
        self.status = RUNNING
        self.error = None
        self.retry = None
        self.from_cache = False
        self.speed = 0.0
        self.eta = None
        self.started_at = time.monotonic()

    def mark_finished(self, status: str, *, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.retry = None
        self.speed = 0.0
        if status != DONE:
            self.eta = None
        self.finished_at = time.monotonic()

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    @property
    def active(self) -> bool:
        """Running or queued in this app, and not being stopped or handed over already."""
        return self.status in (RUNNING, QUEUED) and self.stop_as is None

    @property
    def status_label(self) -> str:
        if self.status == BACKGROUND:
            return f"downloading in the background (pid {self.pid})" if self.pid else "downloading in the background"
        return self.status

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


# -- the queue on disk -------------------------------------------------------------------------------
QUEUE_FILE = "downloads.json"
QUEUE_FORMAT_VERSION = 1
_LOCK_TIMEOUT = 5.0
#: what an entry keeps (besides uid, owner and the background process)
_RECORD_FIELDS = (
    "repo_id",
    "revision",
    "include",
    "exclude",
    "allow_pickle",
    "status",
    "error",
    "commit",
    "total_bytes",
    "done_bytes",
    "bytes_cached",
    "total_files",
    "files_done",
    "path",
    "transferred_bytes",
    "pid",
    "pid_started",
    "log",
)


class QueueFileError(Exception):
    """The on-disk queue cannot be read or written (the message says which file and why)."""


def process_started(pid: int) -> float | None:
    """When a live process started (its identity with the pid), or None when there is no such process."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except (psutil.Error, OSError, ValueError):
        return None


def process_alive(pid: int | None, started: float | None) -> bool:
    """True while process ``pid`` runs and is the one that started at ``started`` (not a reused pid)."""
    if not pid:
        return False
    now = process_started(pid)
    if now is None:
        return False
    return started is None or abs(now - started) < 1.0


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "started": process_started(os.getpid())}


def item_record(item: DownloadItem, *, owner: dict[str, Any] | None) -> dict[str, Any]:
    """One entry of the on-disk queue. A running item being stopped is saved with the status it is
    stopping as (interrupted, background), since this app may end before its worker does."""
    rec: dict[str, Any] = {name: getattr(item, name) for name in _RECORD_FIELDS}
    if item.status == RUNNING and item.stop_as in (INTERRUPTED, BACKGROUND):
        rec["status"] = item.stop_as
    rec["uid"] = item.uid
    rec["owner"] = owner
    rec["updated"] = time.time()
    return rec


def item_from_record(rec: dict[str, Any]) -> DownloadItem | None:
    """A queue item from an entry (None for one too damaged to use). Running or queued becomes interrupted."""
    try:
        repo_id = rec["repo_id"]
        if not isinstance(repo_id, str) or not repo_id:
            return None

        def globs(value: Any) -> list[str] | None:
            return [str(v) for v in value] if isinstance(value, list) and value else None

        def num(value: Any) -> int:
            return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

        def text(value: Any) -> str | None:
            return str(value) if isinstance(value, str) and value else None

        status = rec.get("status")
        if status in (RUNNING, QUEUED):
            status = INTERRUPTED
        elif status not in (DONE, FAILED, CANCELLED, INTERRUPTED, BACKGROUND):
            status = INTERRUPTED
        item = DownloadItem(
            repo_id,
            revision=text(rec.get("revision")),
            include=globs(rec.get("include")),
            exclude=globs(rec.get("exclude")),
            allow_pickle=bool(rec.get("allow_pickle")),
        )
        item.status = status
        item.error = text(rec.get("error"))
        item.commit = text(rec.get("commit"))
        item.path = text(rec.get("path"))
        for name in ("total_bytes", "done_bytes", "bytes_cached", "total_files", "files_done", "transferred_bytes"):
            setattr(item, name, num(rec.get(name)))
        pid = rec.get("pid")
        item.pid = pid if isinstance(pid, int) and pid > 0 else None
        started = rec.get("pid_started")
        item.pid_started = float(started) if isinstance(started, (int, float)) else None
        item.log = text(rec.get("log"))
        if item.status == BACKGROUND and item.pid is None:
            item.status = INTERRUPTED
        if isinstance(rec.get("uid"), str) and rec["uid"]:
            item.uid = rec["uid"]
        return item
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


class QueueFile:
    """The download queue on disk: ``{"format_version": 1, "items": [entry, ...]}``.

    Every change is read-modify-write under ``downloads.json.lock`` and lands through a rename, so a
    reader never sees half a file and two TUIs never lose each other's entries. A file that cannot be
    parsed is set aside (``downloads.json.corrupt``) and the queue starts empty.

    Args:
        path: the JSON file (its folder is created on the first write).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.owner = _this_process()
        #: where an unreadable file was moved by the last read (None: it was fine)
        self.set_aside: Path | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.path) + ".lock", timeout=_LOCK_TIMEOUT)
            lock.acquire()
        except Timeout:
            raise QueueFileError(
                f"The download queue {self.path} is locked by another hubmgr for more than {_LOCK_TIMEOUT:.0f} s."
            ) from None
        except OSError as exc:
            raise QueueFileError(f"Cannot use the download queue {self.path}: {exc.strerror or exc}.") from None
        try:
            yield
        finally:
            lock.release()

    def _read(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise QueueFileError(f"Cannot read the download queue {self.path}: {exc.strerror or exc}.") from None
        try:
            data = json.loads(raw)
            items = data["items"]
            if not isinstance(items, list):
                raise TypeError("items is not a list")
            return [rec for rec in items if isinstance(rec, dict)]
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("the download queue %s is unreadable (%s); starting a new one", self.path, exc)
            aside = self.path.with_name(self.path.name + ".corrupt")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
                self.set_aside = aside
            return []

    def _write(self, records: list[dict[str, Any]]) -> None:
        data = {"format_version": QUEUE_FORMAT_VERSION, "items": records}
        tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise QueueFileError(f"Cannot write the download queue {self.path}: {exc.strerror or exc}.") from None

    def _mine(self, rec: dict[str, Any]) -> bool:
        owner = rec.get("owner")
        return (
            isinstance(owner, dict)
            and owner.get("pid") == self.owner["pid"]
            and (owner.get("started") == self.owner["started"])
        )

    @staticmethod
    def _orphan(rec: dict[str, Any]) -> bool:
        owner = rec.get("owner")
        if not isinstance(owner, dict):
            return True
        pid, started = owner.get("pid"), owner.get("started")
        return not (isinstance(pid, int) and process_alive(pid, started if isinstance(started, (int, float)) else None))

    def claim(self) -> list[DownloadItem]:
        """The entries no live TUI holds (and this process's own), now held by this process.

        Raises:
            QueueFileError: the file cannot be read, or the lock is not free.
        """
        with self._locked():
            records = self._read()
            others, items = [], []
            for rec in records:
                if not (self._mine(rec) or self._orphan(rec)):
                    others.append(rec)  # another TUI that runs now holds it
                elif (item := item_from_record(rec)) is not None:
                    items.append(item)
            if items or len(others) != len(records):
                self._write(others + [item_record(i, owner=self.owner) for i in items])
            return items

    def save(self, items: Iterable[DownloadItem]) -> None:
        """Make this process's entries be ``items`` (others' entries are left as they are).

        Raises:
            QueueFileError: the file cannot be written, or the lock is not free.
        """
        mine = [item_record(i, owner=self.owner) for i in items]
        uids = {rec["uid"] for rec in mine}
        with self._locked():
            others = [rec for rec in self._read() if not self._mine(rec) and rec.get("uid") not in uids]
            self._write(others + mine)
