"""Download a repo into the shared Hugging Face cache, resumably, checked and in parallel.

The files land exactly where huggingface_hub puts them (the layout is :mod:`hubmgr.hub.layout`), so
transformers and the ``hf`` CLI see them: a blob per file, named by its sha256 (LFS files) or git blob sha1;
``snapshots/{commit}/{path}`` as a relative symlink to it; ``refs/{revision}`` written when the download is
complete; the listing in ``trees/{commit}.json`` and hubmgr's manifest (the files its downloads of that
commit asked for) in ``hubmgr/{commit}.json``; ``.locks/{repo folder}/{blob}.lock`` per blob and
``hubmgr-download.lock`` held shared while a download runs.

What we do better than ``snapshot_download``:

* Resume across processes. Partial data stays in ``blobs/{blob}.incomplete``; the next run (even after a
  SIGKILL) hashes what is there and asks for the rest with ``Range: bytes=N-``. A server that ignores the
  range (200 instead of 206) makes us start that file again from zero.
* Integrity. Every LFS file is hashed while it streams and checked against the sha256 the Hub gives
  before it is renamed into ``blobs/`` (atomic ``os.replace``); small files are checked by size and git
  sha1. A file that fails is deleted and never placed; the error names it.
* Concurrency. One lock per blob (huggingface_hub's ``.locks/`` convention, so ``hf`` downloads take part
  too). A process that gets the lock after another one finished the blob sees it complete and only links
  it. Snapshot links and refs are replaced atomically, so a reader never sees a half-made entry.
* Safety. A remote name that is absolute, has ``..`` segments or backslashes, or lands outside the
  snapshot folder is refused before anything is written, and so is a listing with both a file ``X`` and a
  file ``X/y``. Pickle weights are skipped unless asked for; a selection left with no safetensors weights
  because of that is refused.
* Never silent. No byte for :data:`READ_TIMEOUT` seconds ends the request and asks again; every retry
  (stall, dropped connection, 5xx, 429 waiting its capped ``Retry-After``) is a ``DownloadRetry`` event.
* No poisoning. When a file fails its checksum, what the other files received in that run is not kept.
* Live downloads are respected: each holds the repo's ``hubmgr-download.lock`` shared, which ``rm`` and
  ``prune`` (:mod:`hubmgr.hub.cache`) need exclusive.

Nothing here imports a UI. Progress goes to ``on_event`` as the typed events of :mod:`hubmgr.hub.events`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol
from urllib.parse import quote

from hubmgr.config import Settings, get_settings
from hubmgr.errors import (
    CacheError,
    DiskFullError,
    DownloadCancelled,
    HubError,
    HubmgrError,
    HubUnreachableError,
    IntegrityError,
    RateLimitedError,
    RepoBusyError,
    UnsafePathError,
    UnsupportedByMirrorError,
    UsageError,
    disk_full_from,
)
from hubmgr.hub import client as _client
from hubmgr.hub import layout
from hubmgr.hub.client import env_seconds
from hubmgr.hub.files import pickle_only_error, select_files
from hubmgr.hub.events import (
    DownloadFinished,
    DownloadProgress,
    DownloadRetry,
    DownloadStarted,
    EventCallback,
    FileDone,
    FileProgress,
    FileStarted,
    HubEvent,
)

__all__ = [
    "DownloadCancelled",
    "DownloadResult",
    "RemoteFile",
    "download_repo",
    "git_blob_sha1",
]

if TYPE_CHECKING:  # pragma: no cover
    import httpx2
    from filelock import BaseFileLock

logger = logging.getLogger(__name__)


CHUNK_SIZE = 256 * 1024
EVENT_INTERVAL = 0.2  # seconds between two progress events (~5/s)
HEARTBEAT_INTERVAL = 1.0  # a DownloadProgress at least this often, even while no byte arrives
SPEED_WINDOW = 5.0  # seconds of history for the speed estimate
CONNECT_TIMEOUT = 10.0
#: seconds without a byte before a request counts as stalled and is tried again (huggingface_hub's 10 s;
#: HUBMGR_READ_TIMEOUT)
READ_TIMEOUT = env_seconds("HUBMGR_READ_TIMEOUT", 10.0)
TREE_CACHE_FORMAT_VERSION = 1  # huggingface_hub's trees/{commit}.json format
MANIFEST_FORMAT_VERSION = 1  # hubmgr's own record of the files a snapshot should hold: hubmgr/{commit}.json
REPO_LOCK_NAME = "hubmgr-download.lock"  # in .locks/{repo folder}/: shared by downloads, exclusive for deletes
MANIFEST_LOCK_NAME = "hubmgr-manifest.lock"  # in .locks/{repo folder}/: held while a manifest is rewritten

_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")  # a git blob id
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_BLOB_NAME_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_\-]{0,127}$")


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repo at a commit, as the Hub lists it.

    Attributes:
        path: path in the repo, ``/``-separated.
        size: bytes.
        blob: name of the blob in the cache: the sha256 for LFS files, the git blob sha1 otherwise.
        lfs_sha256: the sha256 the Hub gives for an LFS file, else None.
        git_sha1: the git blob id of a non-LFS file when known (used to check it), else None.
        oid: the git object id the Hub lists (for an LFS file: of its pointer), when known.
    """

    path: str
    size: int
    blob: str
    lfs_sha256: str | None = None
    git_sha1: str | None = None
    oid: str | None = None


@dataclass
class DownloadResult:
    """What :func:`download_repo` did.

    Attributes:
        repo_id: the repo.
        commit: the commit the revision resolved to.
        path: the snapshot folder (``.../snapshots/{commit}``), ready for ``from_pretrained``.
        files: repo paths now in the snapshot (downloaded or already cached), sorted.
        transferred_bytes: bytes that crossed the network in this call.
        skipped: repo paths left out by the safety rules (pickle weights), sorted.
        skip_reasons: why each skipped path was left out.
        from_cache: True when the Hub was not asked (offline or unreachable) and the cache answered.
    """

    repo_id: str
    commit: str
    path: Path
    files: list[str]
    transferred_bytes: int
    skipped: list[str] = field(default_factory=list)
    skip_reasons: dict[str, str] = field(default_factory=dict)
    from_cache: bool = False


# ------------------------------------------------------------------------------------------------
# pure helpers
# ------------------------------------------------------------------------------------------------
def check_listing(repo_id: str, paths: Iterable[str]) -> None:
    """Refuse a listing that cannot be laid out as files: a file ``X`` and a file ``X/y`` at once.

    Raises:
        IntegrityError: such a pair is listed (nothing is written).
    """
    names = set(paths)
    for name in sorted(names):
        parts = name.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in names:
                raise IntegrityError(
                    f"The Hub's listing of {repo_id} has both a file '{folder}' and a file '{name}' inside a folder "
                    "of that name, which cannot both exist on disk; the listing was refused and nothing was written."
                )


def git_blob_sha1(data: bytes) -> str:
    """The git blob id of some bytes (what the Hub calls ``oid`` for a non-LFS file)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


class _Hasher(Protocol):
    """What the download needs of a ``hashlib`` object."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def _new_hasher(rf: RemoteFile) -> _Hasher | None:
    if rf.lfs_sha256:
        return hashlib.sha256()
    if rf.git_sha1:
        h = hashlib.sha1()
        h.update(b"blob %d\0" % rf.size)
        return h
    return None


def _expected_digest(rf: RemoteFile) -> str | None:
    return rf.lfs_sha256 or rf.git_sha1


# ------------------------------------------------------------------------------------------------
# tree cache (huggingface_hub's trees/{commit}.json), so the offline check knows what a commit holds
# ------------------------------------------------------------------------------------------------
def _write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary sibling and a rename (readers never see half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)


def write_tree_cache(storage: Path, commit: str, files: Iterable[RemoteFile]) -> None:
    """Write the listing of a commit in huggingface_hub's tree-cache format (best effort, atomic)."""
    data: dict[str, Any] = {"format_version": TREE_CACHE_FORMAT_VERSION, "files": {}}
    for rf in sorted(files, key=lambda f: f.path):
        info: dict[str, Any] = {"size": rf.size, "blob_id": rf.oid or rf.git_sha1 or rf.blob}
        if rf.lfs_sha256:
            info["lfs_sha256"] = rf.lfs_sha256
            info["lfs_size"] = rf.size
        data["files"][rf.path] = info
    path = layout.tree_cache_path(storage, commit)
    try:
        _write_json_atomic(path, data)
    except OSError as exc:
        full = disk_full_from(exc, str(path))
        if full:
            raise full from exc
        logger.debug("could not write the tree cache %s: %s", path, exc)


def read_tree_cache(storage: Path, commit: str) -> list[RemoteFile] | None:
    """Read a commit's listing written by us or huggingface_hub; None when absent or unreadable."""
    try:
        data = json.loads(layout.tree_cache_path(storage, commit).read_text(encoding="utf-8"))
        if data.get("format_version") != TREE_CACHE_FORMAT_VERSION:
            return None
        out = []
        for path, info in data["files"].items():
            sha = info.get("lfs_sha256")
            blob_id = info.get("blob_id")
            out.append(
                RemoteFile(
                    path=path,
                    size=int(info["size"]),
                    blob=sha or blob_id,
                    lfs_sha256=sha,
                    git_sha1=blob_id if (not sha and blob_id and _SHA1_RE.match(blob_id)) else None,
                    oid=blob_id,
                )
            )
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# ------------------------------------------------------------------------------------------------
# hubmgr's manifest: the files a snapshot should hold (what was asked for at that commit, with sizes and
# checksums), so that `ls` and `verify` can tell a complete snapshot from one a download left half-done
# ------------------------------------------------------------------------------------------------
def _file_record(rf: RemoteFile) -> dict[str, Any]:
    rec: dict[str, Any] = {"size": rf.size, "blob": rf.blob}
    for key in ("lfs_sha256", "git_sha1", "oid"):
        if getattr(rf, key):
            rec[key] = getattr(rf, key)
    return rec


def read_manifest(storage: Path, commit: str) -> list[RemoteFile] | None:
    """The files hubmgr was asked to put in a snapshot (every download of that commit, merged); None when
    hubmgr never recorded one (a snapshot another tool made) or it is unreadable."""
    try:
        data = json.loads(layout.manifest_path(storage, commit).read_text(encoding="utf-8"))
        if data.get("format_version") != MANIFEST_FORMAT_VERSION:
            return None
        return [
            RemoteFile(
                path=path,
                size=int(info["size"]),
                blob=str(info["blob"]),
                lfs_sha256=info.get("lfs_sha256"),
                git_sha1=info.get("git_sha1"),
                oid=info.get("oid"),
            )
            for path, info in data["files"].items()
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_manifest(storage: Path, commit: str, files: Iterable[RemoteFile], locks_dir: Path) -> None:
    """Add ``files`` to the snapshot's manifest (atomic; merged with what earlier downloads recorded).

    Best effort on a read-only cache (a download that finds everything cached still works there).

    Raises:
        DiskFullError: no space left to write it.
    """
    path = layout.manifest_path(storage, commit)
    try:
        from filelock import FileLock

        with FileLock(str(locks_dir / MANIFEST_LOCK_NAME), mode=0o664, timeout=30):
            old = {rf.path: rf for rf in read_manifest(storage, commit) or []}
            merged = {**old, **{rf.path: rf for rf in files}}
            if merged == old and path.is_file():
                return
            data = {
                "format_version": MANIFEST_FORMAT_VERSION,
                "commit": commit,
                "files": {p: _file_record(merged[p]) for p in sorted(merged)},
            }
            _write_json_atomic(path, data)
    except OSError as exc:
        full = disk_full_from(exc, str(path))
        if full:
            raise full from exc
        logger.debug("could not write the manifest %s: %s", path, exc)
    except Exception as exc:  # noqa: BLE001 - filelock.Timeout: another process is writing it; theirs is as good
        logger.debug("could not write the manifest %s: %s", path, exc)


def drop_snapshot_records(storage: Path, commit: str) -> None:
    """Forget a deleted snapshot's listing (``trees/``) and manifest (``hubmgr/``)."""
    for path in (layout.tree_cache_path(storage, commit), layout.manifest_path(storage, commit)):
        try:
            path.unlink()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------
# locks: one per blob (huggingface_hub's), and one per repo that every hubmgr download holds shared while
# it runs, so that `rm` / `prune` (which need it exclusive) never delete what a live download is writing
# ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _repo_download_lock(locks_dir: Path) -> Iterator[None]:
    """Hold the repo's hubmgr lock shared for the duration of a download (waits while a delete runs).

    Best effort: where it cannot be taken (no ``fcntl``, a read-only cache) the download goes on without it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(locks_dir / REPO_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o664)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def repo_held_for_delete(hub_cache: Path, folder: str, repo_id: str) -> Iterator[None]:
    """Hold a repo against every download (hubmgr's repo lock exclusive, and each blob lock) while it is deleted.

    Raises:
        RepoBusyError: a download (hubmgr's, or huggingface_hub's holding a blob lock) is running on it.
    """
    locks_dir = layout.locks_dir(hub_cache, folder)
    busy = RepoBusyError(
        f"{repo_id} is being downloaded right now (by this or another process); wait for the download to end "
        "or cancel it, then try again. Nothing was deleted."
    )
    if not locks_dir.is_dir():
        yield
        return
    fd = None
    held = []
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fd = os.open(locks_dir / REPO_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o664)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            except OSError:
                pass  # unreadable lock file: the blob locks below still tell
        from filelock import FileLock, Timeout

        for lock_file in sorted(locks_dir.glob("*.lock")):
            if lock_file.name in (REPO_LOCK_NAME, MANIFEST_LOCK_NAME):
                continue
            lock = FileLock(str(lock_file), mode=0o664)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                raise busy from None
            except OSError:
                continue
            held.append(lock)
        yield
    finally:
        for lock in held:
            try:
                lock.release()
            except Exception:  # noqa: BLE001
                pass
        if fd is not None:
            os.close(fd)


# ------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------
class _Http:
    """Requests of one download through huggingface_hub's shared HTTP client (``get_session()``, httpx), the one
    client every hubmgr request to the Hub uses: the token only to the endpoint's host, our read timeout, and
    retries announced as :class:`~hubmgr.hub.events.DownloadRetry` (the waits are :data:`hubmgr.hub.client.RETRY`'s)."""

    def __init__(self, settings: Settings, repo_id: str) -> None:
        self.settings = settings
        self.repo_id = repo_id
        from urllib.parse import urlsplit

        self._host = urlsplit(settings.endpoint).netloc
        #: gets a DownloadRetry before each wait-and-retry, so a stall or a rate limit is never silent
        self.notify: EventCallback | None = None

    def retry(self, path: str, reason: str, attempt: int, max_attempts: int, wait: float) -> None:
        """Announce a retry (event + log line)."""
        logger.info("retrying %s: %s (%d of %d, in %.1f s)", path or "the listing", reason, attempt, max_attempts, wait)
        if self.notify is not None:
            self.notify(DownloadRetry(path=path, reason=reason, attempt=attempt, max_attempts=max_attempts, wait=wait))

    def headers(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Our user agent, the token when ``url`` is on the endpoint's host, then ``extra``."""
        from urllib.parse import urlsplit

        same_host = urlsplit(url).netloc == self._host
        return {**_client.auth_headers(self.settings, token=same_host), **(extra or {})}

    def request(
        self,
        method: str,
        url: str,
        *,
        stream: bool = False,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> httpx2.Response:
        """One request; with ``stream`` the body is read by the caller, who closes the response."""
        import httpx2
        from huggingface_hub.errors import OfflineModeIsEnabled
        from huggingface_hub.utils import get_session

        session: httpx2.Client = get_session()
        try:
            request = session.build_request(
                method,
                url,
                headers=self.headers(url, headers),
                params=params,
                timeout=httpx2.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            )
            return session.send(request, stream=stream, follow_redirects=allow_redirects)
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol):
            raise UsageError(f"The Hub endpoint {self.settings.endpoint!r} is not a valid http(s) URL.") from None
        except httpx2.TooManyRedirects:
            raise HubError(f"The Hub at {self.settings.endpoint} redirected too many times.") from None
        except OfflineModeIsEnabled:
            raise _client.unreachable_error(self.settings) from None


def _is_connection_error(exc: BaseException) -> bool:
    import httpx2

    return isinstance(
        exc, (httpx2.TransportError, httpx2.DecodingError, httpx2.StreamError, ConnectionError, TimeoutError)
    )


def _connection_problem(exc: BaseException) -> str:
    """What a connection failure was, in a few words ("no data for 10 s", "the connection dropped")."""
    import httpx2

    if isinstance(exc, (httpx2.ConnectTimeout, httpx2.PoolTimeout)):
        return f"no connection within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, (httpx2.TimeoutException, TimeoutError)) or "timed out" in str(exc).lower():
        return f"no data for {READ_TIMEOUT:g} s"
    return f"the connection failed ({type(exc).__name__})"


def _http_error(
    resp: httpx2.Response,
    repo_id: str,
    *,
    settings: Settings,
    revision: str | None = None,
    path: str | None = None,
    route: str | None = None,
) -> HubmgrError:
    """Map an HTTP error answer to a hubmgr error with one clear sentence (shared wording with
    :mod:`hubmgr.hub.client`)."""
    from hubmgr.hub.client import error_for_status

    url = getattr(resp, "url", None)
    err = error_for_status(
        resp.status_code,
        resp.headers,
        settings=settings,
        url=str(url) if url else None,
        repo_id=repo_id,
        revision=revision,
        filename=path,
        route=route,
    )
    return err or HubError(f"The Hub at {settings.endpoint} answered HTTP {resp.status_code} for {repo_id}.")


class _RouteMissing(Exception):
    """The endpoint does not serve an API route (a mirror that serves files only)."""


# ------------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------------
class _Progress:
    """Thread-safe totals and throttled events."""

    def __init__(self, on_event: EventCallback | None, total_bytes: int, total_files: int) -> None:
        self._emit_cb = on_event
        self._lock = threading.RLock()
        self.total_bytes = total_bytes
        self.total_files = total_files
        self.done_bytes = 0
        self.files_done = 0
        self.transferred = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._last_total_event = 0.0
        self._last_file_event: dict[str, float] = {}
        self.started = time.monotonic()
        self._last_byte = self.started

    def emit(self, event: HubEvent) -> None:
        if self._emit_cb is None:
            return
        with self._lock:
            self._emit_cb(event)

    def add(self, path: str, *, disk: int, net: int, file_done: int, file_size: int) -> None:
        """Count bytes (``disk`` may be negative when a file restarts from zero)."""
        now = time.monotonic()
        with self._lock:
            self.done_bytes += disk
            self.transferred += net
            if net:
                self._samples.append((now, self.transferred))
                self._last_byte = now
            if now - self._last_file_event.get(path, 0.0) >= EVENT_INTERVAL:
                self._last_file_event[path] = now
                self.emit(FileProgress(path=path, done=file_done, size=file_size))
            self._maybe_total(now)

    def file_finished(self, path: str, size: int, *, cached: bool) -> None:
        with self._lock:
            self.files_done += 1
            self._last_file_event.pop(path, None)
            self.emit(FileDone(path=path, size=size, cached=cached))
            self._maybe_total(time.monotonic(), force=self.files_done == self.total_files)

    def heartbeat(self) -> None:
        """Emit the totals when nothing else did for :data:`HEARTBEAT_INTERVAL` (a stall shows as one)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_total_event >= HEARTBEAT_INTERVAL and self.files_done < self.total_files:
                self._maybe_total(now, force=True)

    def speed(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._samples and now - self._samples[-1][0] > SPEED_WINDOW:
                return 0.0  # nothing arrived lately: the speed is nil, not the average since the start
            while len(self._samples) > 1 and now - self._samples[0][0] > SPEED_WINDOW:
                self._samples.popleft()
            if len(self._samples) < 2:
                elapsed = now - self.started
                return self.transferred / elapsed if elapsed > 0.5 else 0.0
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
            span = max(now - t0, t1 - t0, 1e-6)
            return (b1 - b0) / span

    def _maybe_total(self, now: float, force: bool = False) -> None:
        if not force and now - self._last_total_event < EVENT_INTERVAL:
            return
        self._last_total_event = now
        speed = self.speed(now)
        remaining = max(self.total_bytes - self.done_bytes, 0)
        eta = (remaining / speed) if speed > 0 else (0.0 if remaining == 0 else None)
        stalled = now - self._last_byte if self.files_done < self.total_files else 0.0
        self.emit(
            DownloadProgress(
                done_bytes=self.done_bytes,
                total_bytes=self.total_bytes,
                files_done=self.files_done,
                total_files=self.total_files,
                speed=speed,
                eta=eta,
                stalled_for=round(stalled, 1) if stalled >= 1.0 else 0.0,
            )
        )


# ------------------------------------------------------------------------------------------------
# the download
# ------------------------------------------------------------------------------------------------
def download_repo(
    repo_id: str,
    *,
    revision: str | None = None,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    allow_pickle: bool = False,
    max_workers: int = 8,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    settings: Settings | None = None,
) -> DownloadResult:
    """Download a repo (or the files the globs select) into the shared Hugging Face cache.

    Files already complete in the cache are not transferred again; a file left incomplete by an earlier
    run (even one killed with SIGKILL) is resumed from where it stopped.

    Args:
        repo_id: ``org/name``.
        revision: branch, tag or commit (default ``main``).
        include: download only paths matching one of these globs.
        exclude: skip paths matching one of these globs.
        allow_pickle: also download pickle weights (.bin .pt .pth .pkl .ckpt); even then a repo that has
            safetensors weights gets only those, unless ``include`` names the pickle file.
        max_workers: files downloaded in parallel.
        on_event: called with :mod:`hubmgr.hub.events` events, from worker threads but never two at once.
        cancel: set it to stop between two chunks; partial files are kept for a later resume.
        settings: endpoint, token, offline flag and cache folder (default: from the environment).

    Returns:
        A :class:`DownloadResult`; ``path`` is the snapshot folder.

    Raises:
        UsageError: a bad repo id, option or endpoint URL.
        RepoNotFoundError, RevisionNotFoundError, EntryNotFoundError: not on the Hub.
        GatedRepoError, AuthError: access refused.
        HubUnreachableError: offline (``HF_HUB_OFFLINE``) or the endpoint does not answer, and the repo is
            not fully in the cache.
        UnsupportedByMirrorError: the endpoint serves no API route to list the repo's files.
        RateLimitedError, HubError: the Hub kept failing after retries.
        UnsafePathError: a remote file name would escape the snapshot folder (nothing written).
        IntegrityError: a file does not match the Hub's checksum (it is deleted, never placed).
        IntegrityError: also when the Hub lists a file ``X`` and a file ``X/y`` (nothing written).
        ModelError: the selection has no safetensors weights because pickle weights were refused (pass
            ``allow_pickle``); nothing is downloaded.
        LocalPathError: the cache folder is a file, sits under a file, or is read-only.
        DiskFullError: no space left (nothing incomplete is placed; partial data is kept for a resume).
        DownloadCancelled: ``cancel`` was set (partial data is kept for a resume).
    """
    settings = settings or get_settings()
    repo_id = layout.validate_repo_id(repo_id)
    asked = (revision or "").strip() or None
    revision = asked or layout.DEFAULT_REVISION
    if max_workers < 1:
        raise UsageError("--workers must be at least 1.")
    layout.check_cache_root(settings)
    cancel = cancel or threading.Event()
    storage = layout.repo_dir(settings, repo_id)

    def from_cache(reason: str) -> DownloadResult:
        result = cached_snapshot(
            repo_id,
            revision=asked,
            include=include,
            exclude=exclude,
            allow_pickle=allow_pickle,
            settings=settings,
        )
        if result is None:
            raise HubUnreachableError(f"{reason} and {repo_id} is not fully in the cache.")
        refused = pickle_only_error(repo_id, result.files, result.skip_reasons)
        if refused is not None:
            raise refused
        if on_event:
            on_event(
                DownloadFinished(
                    repo_id=repo_id, commit=result.commit, path=str(result.path), transferred_bytes=0, seconds=0.0
                )
            )
        return result

    if settings.offline:
        return from_cache("The Hub is unreachable: HF_HUB_OFFLINE is set")

    http = _Http(settings, repo_id)
    http.notify = on_event
    try:
        commit, listing = _list_repo(http, settings, repo_id, revision)
    except HubUnreachableError:
        return from_cache(f"The Hub at {settings.endpoint} is unreachable")
    return _download_listing(
        http,
        settings,
        storage,
        repo_id,
        revision,
        commit,
        listing,
        include=include,
        exclude=exclude,
        allow_pickle=allow_pickle,
        max_workers=max_workers,
        on_event=on_event,
        cancel=cancel,
    )


def list_remote_files(repo_id: str, revision: str, *, settings: Settings | None = None) -> list[RemoteFile]:
    """The files of a model repo at a revision, as the Hub lists them (names, sizes, checksums).

    Raises:
        HubmgrError: the Hub cannot be asked or answers with an error (see :func:`download_repo`).
    """
    settings = settings or get_settings()
    if settings.offline:
        raise HubUnreachableError("HF_HUB_OFFLINE is set: the Hub is not contacted (unset it to go online).")
    http = _Http(settings, layout.validate_repo_id(repo_id))
    return _list_repo(http, settings, repo_id, revision)[1]


def cached_snapshot(
    repo_id: str,
    *,
    revision: str | None = None,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    allow_pickle: bool = False,
    settings: Settings | None = None,
) -> DownloadResult | None:
    """The cached snapshot of a revision when every file the same download would fetch is in it.

    The revision names a snapshot by :func:`hubmgr.hub.layout.cached_commit`, the rule ``train`` and
    ``info`` follow too. Uses the commit's listing (``trees/{commit}.json``) when the cache has it; a
    snapshot that another tool wrote without a listing counts as complete when it holds at least one file.

    Returns:
        A :class:`DownloadResult` with ``from_cache=True``, or None when the revision is not fully cached.

    Raises:
        UsageError: the revision is a commit prefix that matches several cached snapshots.
    """
    settings = settings or get_settings()
    storage = layout.repo_dir(settings, repo_id)
    commit = layout.cached_commit(storage, revision)
    if commit is None:
        return None
    snap = layout.snapshot_dir(storage, commit)
    listing = read_tree_cache(storage, commit)
    if listing is None:
        present = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
        if not present:
            return None
        files, skipped = select_files(present, include=include, exclude=exclude, allow_pickle=allow_pickle)
        return DownloadResult(repo_id, commit, snap, sorted(files), 0, sorted(skipped), skipped, True)
    by_path = {rf.path: rf for rf in listing}
    files, skipped = select_files(list(by_path), include=include, exclude=exclude, allow_pickle=allow_pickle)
    if len(layout.cached_paths(storage, commit, files)) < len(set(files)):
        return None
    return DownloadResult(repo_id, commit, snap, sorted(files), 0, sorted(skipped), skipped, True)


# --- listing ---------------------------------------------------------------------------------------
def _request(
    http: _Http,
    method: str,
    url: str,
    *,
    path: str = "",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    allow_redirects: bool = True,
) -> httpx2.Response:
    """One listing or HEAD request, tried again as :data:`hubmgr.hub.client.RETRY` says, each retry announced.

    Returns the last answer (any status); a connection that keeps failing raises :class:`HubUnreachableError`.
    """
    policy = _client.RETRY
    tries = 0
    limited = 0
    while True:
        try:
            resp = http.request(method, url, headers=headers, params=params, allow_redirects=allow_redirects)
        except Exception as exc:  # noqa: BLE001 - sorted below
            if not _is_connection_error(exc):
                raise
            tries += 1
            if tries >= policy.api_tries:
                raise HubUnreachableError(
                    f"The Hub at {http.settings.endpoint} is unreachable ({_connection_problem(exc)})."
                ) from None
            wait = policy.backoff(tries)
            http.retry(path, _connection_problem(exc), tries, policy.api_tries, wait)
            time.sleep(wait)
            continue
        if resp.status_code == 429 and limited < policy.max_rate_limited:
            limited += 1
            wait, reason = policy.rate_limit_wait(resp.headers)
            http.retry(path, reason, limited, policy.max_rate_limited, wait)
            time.sleep(wait)
            continue
        if resp.status_code in policy.statuses and tries < policy.max_tries - 1:
            tries += 1
            wait, reason = policy.wait(resp.status_code, resp.headers, tries)
            http.retry(path, reason, tries, policy.max_tries, wait)
            time.sleep(wait)
            continue
        return resp


def _api_get(
    http: _Http, url: str, repo_id: str, *, revision: str, params: dict[str, str] | None = None, route: str = ""
) -> httpx2.Response:
    """GET an API route with retries; returns the response (2xx). Maps errors."""
    resp = _request(http, "GET", url, params=params)
    if resp.status_code < 400:
        return resp
    code = resp.headers.get("X-Error-Code")
    if (resp.status_code == 404 and not code) or resp.status_code in (405, 501):
        raise _RouteMissing(route)
    raise _http_error(resp, repo_id, settings=http.settings, revision=revision, route=route or None)


def _json(resp: httpx2.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise UnsupportedByMirrorError(f"The endpoint answered {what} with something that is not JSON.") from None


def _list_repo(http: _Http, settings: Settings, repo_id: str, revision: str) -> tuple[str, list[RemoteFile]]:
    """Resolve the revision to a commit and list the files there."""
    base = f"{settings.endpoint}/api/models/{repo_id}"
    info: dict[str, Any] | None = None
    try:
        resp = _api_get(
            http,
            f"{base}/revision/{quote(revision, safe='')}",
            repo_id,
            revision=revision,
            params={"blobs": "true"},
            route="model_info",
        )
        info = _json(resp, "the model info request")
    except _RouteMissing:
        info = None
    commit = (info or {}).get("sha")
    if info is not None and not (isinstance(commit, str) and layout.is_commit(commit)):
        raise HubError(f"The Hub did not give a commit for {repo_id} at '{revision}'.")

    # 1. the tree route (the same listing huggingface_hub uses)
    try:
        listing = _list_tree(http, settings, repo_id, commit or revision, revision)
    except _RouteMissing:
        listing = None
    if listing is not None and commit is None:
        commit = _commit_from_head(http, settings, repo_id, revision, listing[0].path if listing else None)
    if listing is not None:
        assert commit is not None  # the model info's commit, or the one from the HEAD request above
        return commit, listing
    if info is None:
        raise UnsupportedByMirrorError(
            f"The endpoint {settings.endpoint} serves neither the model info nor the file tree API route, "
            "so hubmgr cannot list the repo's files."
        )
    assert commit is not None  # checked above: the model info gave a commit
    # 2. the siblings of the model info (with blobs=true they carry sizes and hashes)
    siblings = info.get("siblings") or []
    out: list[RemoteFile] = []
    missing: list[str] = []
    for s in siblings:
        name = s.get("rfilename")
        if not isinstance(name, str):
            continue
        rf = _remote_from_entry(name, s.get("size"), s.get("blobId"), s.get("lfs"))
        if rf is None:
            missing.append(name)
        else:
            out.append(rf)
    # 3. HEAD the files the listing says too little about
    for name in missing:
        out.append(_head_file(http, settings, repo_id, commit, name))
    return commit, out


def _remote_from_entry(path: str, size: object, oid: object, lfs: object) -> RemoteFile | None:
    if isinstance(lfs, dict):
        sha = lfs.get("sha256") or lfs.get("oid")
        lsize = lfs.get("size", size)
        if isinstance(sha, str) and _SHA256_RE.match(sha) and isinstance(lsize, int):
            return RemoteFile(
                path=path, size=lsize, blob=sha, lfs_sha256=sha, oid=oid if isinstance(oid, str) else None
            )
    if isinstance(size, int) and isinstance(oid, str) and _BLOB_NAME_RE.match(oid):
        return RemoteFile(path=path, size=size, blob=oid, git_sha1=oid if _SHA1_RE.match(oid) else None, oid=oid)
    return None


def _list_tree(http: _Http, settings: Settings, repo_id: str, rev: str, revision: str) -> list[RemoteFile]:
    url: str | None = f"{settings.endpoint}/api/models/{repo_id}/tree/{quote(rev, safe='')}"
    params: dict[str, str] | None = {"recursive": "true", "expand": "false"}
    out: list[RemoteFile] = []
    pages = 0
    while url:
        resp = _api_get(http, url, repo_id, revision=revision, params=params, route="tree")
        items = _json(resp, "the file tree request")
        if not isinstance(items, list):
            raise UnsupportedByMirrorError("The endpoint answered the file tree request with an unexpected shape.")
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "file":
                continue
            path = item.get("path")
            if not isinstance(path, str):
                continue
            rf = _remote_from_entry(path, item.get("size"), item.get("oid"), item.get("lfs"))
            if rf is None:
                raise HubError(f"The Hub listed '{path}' in {repo_id} without a usable size or hash.")
            out.append(rf)
        nxt = resp.links.get("next", {}).get("url")
        url, params = (nxt, None) if nxt else (None, None)
        pages += 1
        if pages > 10_000:
            raise HubError("The file tree of this repo does not end.")
    return out


def _commit_from_head(http: _Http, settings: Settings, repo_id: str, revision: str, path: str | None) -> str:
    if path is None:
        raise UnsupportedByMirrorError(
            f"The endpoint {settings.endpoint} does not serve the model info route, so the commit of "
            f"{repo_id} at '{revision}' is unknown."
        )
    url = f"{settings.endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"
    resp = _head(http, url, repo_id, revision, path)
    commit = resp.headers.get("X-Repo-Commit", "")
    if not layout.is_commit(commit):
        raise UnsupportedByMirrorError(
            f"The endpoint {settings.endpoint} gives no commit (X-Repo-Commit) for {repo_id} at '{revision}'."
        )
    return commit


def _head(http: _Http, url: str, repo_id: str, revision: str, path: str) -> httpx2.Response:
    resp = _request(http, "HEAD", url, path=path, allow_redirects=False, headers={"Accept-Encoding": "identity"})
    if resp.status_code < 400:
        return resp
    raise _http_error(resp, repo_id, settings=http.settings, revision=revision, path=path)


def _head_file(http: _Http, settings: Settings, repo_id: str, commit: str, path: str) -> RemoteFile:
    url = f"{settings.endpoint}/{repo_id}/resolve/{commit}/{quote(path)}"
    resp = _head(http, url, repo_id, commit, path)
    etag = resp.headers.get("X-Linked-Etag") or resp.headers.get("ETag") or ""
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    etag = etag.strip('"')
    size_text = resp.headers.get("X-Linked-Size") or resp.headers.get("Content-Length")
    try:
        size = int(size_text or "")
    except ValueError:
        size = -1
    if not _BLOB_NAME_RE.match(etag) or size < 0:
        raise UnsupportedByMirrorError(
            f"The endpoint {settings.endpoint} gives no usable ETag and size for '{path}' in {repo_id}."
        )
    if _SHA256_RE.match(etag):
        return RemoteFile(path=path, size=size, blob=etag, lfs_sha256=etag)
    return RemoteFile(path=path, size=size, blob=etag, git_sha1=etag if _SHA1_RE.match(etag) else None)


# --- placing files ---------------------------------------------------------------------------------
def _download_listing(
    http: _Http,
    settings: Settings,
    storage: Path,
    repo_id: str,
    revision: str,
    commit: str,
    listing: list[RemoteFile],
    *,
    include: str | Iterable[str] | None,
    exclude: str | Iterable[str] | None,
    allow_pickle: bool,
    max_workers: int,
    on_event: EventCallback | None,
    cancel: threading.Event,
) -> DownloadResult:
    t0 = time.monotonic()
    snap = layout.snapshot_dir(storage, commit)
    by_path: dict[str, RemoteFile] = {}
    for rf in listing:
        by_path.setdefault(rf.path, rf)
    check_listing(repo_id, by_path)
    selected, skipped = select_files(list(by_path), include=include, exclude=exclude, allow_pickle=allow_pickle)
    refused = pickle_only_error(repo_id, selected, skipped)
    if refused is not None:
        raise refused
    if not selected and (include or exclude):
        raise UsageError(f"No file of {repo_id} matches the --include/--exclude patterns.")
    # Refuse any unsafe name before a single byte is written.
    targets = {p: layout.check_safe_name(p, snap) for p in selected}
    for rf in (by_path[p] for p in selected):
        if not _BLOB_NAME_RE.match(rf.blob):
            raise UnsafePathError(
                f"Refusing the blob name {rf.blob!r} the Hub gave for '{rf.path}'; nothing was written."
            )
        if rf.size < 0:
            raise HubError(f"The Hub gave a negative size for '{rf.path}'.")

    files = [by_path[p] for p in selected]
    hub_cache = layout.hub_cache_dir(settings)
    blobs_dir = storage / "blobs"
    locks_dir = layout.locks_dir(hub_cache, storage.name)
    try:
        locks_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise layout.cache_write_error(exc, settings) from None
    with _repo_download_lock(locks_dir):  # `rm` / `prune` leave the repo alone while this is held
        try:
            for d in (blobs_dir, snap):
                d.mkdir(parents=True, exist_ok=True)
            _cachedir_tag(hub_cache)
            write_tree_cache(storage, commit, [rf for rf in listing if _safe(rf.path, snap)])
            write_manifest(storage, commit, files, locks_dir)
        except OSError as exc:
            raise layout.cache_write_error(exc, settings) from None
        return _fetch_all(
            http,
            settings,
            storage,
            repo_id,
            revision,
            commit,
            files,
            targets,
            skipped,
            blobs_dir=blobs_dir,
            locks_dir=locks_dir,
            max_workers=max_workers,
            on_event=on_event,
            cancel=cancel,
            t0=t0,
        )


@dataclass
class _Run:
    """What every worker of one download shares."""

    http: _Http
    settings: Settings
    repo_id: str
    commit: str
    progress: "_Progress"
    cancel: threading.Event
    stop: threading.Event  # set on the first failure or on cancel: the other workers stop too
    #: set when a file failed its size or checksum: the bytes the other files got in this run may come
    #: from the same bad source, so they are not kept for a resume
    poisoned: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.stop.is_set() or self.cancel.is_set():
            raise _Stopped()

    def poison(self) -> None:
        self.poisoned.set()
        self.stop.set()


def _fetch_all(
    http: _Http,
    settings: Settings,
    storage: Path,
    repo_id: str,
    revision: str,
    commit: str,
    files: list[RemoteFile],
    targets: dict[str, Path],
    skipped: dict[str, str],
    *,
    blobs_dir: Path,
    locks_dir: Path,
    max_workers: int,
    on_event: EventCallback | None,
    cancel: threading.Event,
    t0: float,
) -> DownloadResult:
    """Fetch the selected files in parallel, then write the ref (the repo's download lock is held)."""
    snap = layout.snapshot_dir(storage, commit)
    by_path = {rf.path: rf for rf in files}
    total_bytes = sum(rf.size for rf in files)
    cached = {rf.path for rf in files if (blobs_dir / rf.blob).is_file()}
    bytes_cached = sum(by_path[p].size for p in cached)
    needed = sum(
        max(rf.size - _size_or_zero(blobs_dir / f"{rf.blob}.incomplete"), 0) for rf in files if rf.path not in cached
    )
    _check_space(blobs_dir, needed)

    progress = _Progress(on_event, total_bytes, len(files))
    http.notify = progress.emit  # retries from worker threads, serialized with the other events
    progress.emit(
        DownloadStarted(
            repo_id=repo_id,
            revision=revision,
            commit=commit,
            total_files=len(files),
            total_bytes=total_bytes,
            bytes_cached=bytes_cached,
        )
    )
    run = _Run(
        http=http,
        settings=settings,
        repo_id=repo_id,
        commit=commit,
        progress=progress,
        cancel=cancel,
        stop=threading.Event(),
    )

    def job(rf: RemoteFile) -> None:
        _fetch_one(run, rf, targets[rf.path], blobs_dir, locks_dir)

    errors: list[BaseException] = []
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(files) or 1)), thread_name_prefix="hubmgr-dl")
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(job, rf) for rf in files]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    errors.append(exc)
                    run.stop.set()
            if cancel.is_set():
                run.stop.set()
            progress.heartbeat()
    except BaseException:  # KeyboardInterrupt in the caller's thread: stop the workers cleanly
        run.stop.set()
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    if errors:
        real = [e for e in errors if not isinstance(e, _Stopped)]
        _tidy_failed(storage, snap, files)
        if real:
            # user-facing errors first, in a stable order
            real.sort(key=lambda e: 0 if isinstance(e, HubmgrError) else 1)
            raise real[0]
    if cancel.is_set() or errors:
        raise DownloadCancelled("Download cancelled; run it again to resume.")

    try:
        layout.write_ref(storage, revision, commit)
    except OSError as exc:
        raise layout.cache_write_error(exc, settings) from None
    progress.emit(
        DownloadProgress(
            done_bytes=progress.done_bytes,
            total_bytes=total_bytes,
            files_done=progress.files_done,
            total_files=len(files),
            speed=progress.speed(),
            eta=0.0,
        )
    )
    seconds = time.monotonic() - t0
    progress.emit(
        DownloadFinished(
            repo_id=repo_id, commit=commit, path=str(snap), transferred_bytes=progress.transferred, seconds=seconds
        )
    )
    return DownloadResult(
        repo_id=repo_id,
        commit=commit,
        path=snap,
        files=sorted(by_path),
        transferred_bytes=progress.transferred,
        skipped=sorted(skipped),
        skip_reasons=dict(sorted(skipped.items())),
    )


class _Stopped(Exception):
    """A worker stopped because another one failed or the download was cancelled."""


def _safe(path: str, snap: Path) -> bool:
    try:
        layout.check_safe_name(path, snap)
        return True
    except UnsafePathError:
        return False


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _check_space(folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise DiskFullError(
            f"Not enough disk space in {folder}: the download needs {needed / 1e6:.1f} MB, {free / 1e6:.1f} MB is free."
        )


def _cachedir_tag(cache: Path) -> None:
    tag = cache / "CACHEDIR.TAG"
    if tag.exists():
        return
    try:
        tmp = cache / f".CACHEDIR.TAG.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by hubmgr (Hugging Face cache layout).\n"
        )
        os.replace(tmp, tag)
    except OSError:
        pass


def _link(blob: Path, pointer: Path) -> None:
    """Point a snapshot entry at a blob with a relative symlink, replacing atomically."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(blob, pointer.parent)
    if pointer.is_symlink() and os.readlink(pointer) == rel:
        return
    tmp = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.symlink(rel, tmp)
        os.replace(tmp, pointer)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if not _symlinks_supported(pointer.parent):
            # No symlinks (some Windows set-ups): copy, as huggingface_hub does.
            ctmp = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex[:8]}.tmp")
            shutil.copyfile(blob, ctmp)
            os.replace(ctmp, pointer)
        else:
            raise


def _symlinks_supported(folder: Path) -> bool:
    probe = folder / f".probe-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink("x", probe)
        os.unlink(probe)
        return True
    except OSError:
        return False


def _acquire(lock_path: Path, stop: threading.Event, cancel: threading.Event) -> BaseFileLock:
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path), mode=0o664)
    while True:
        if stop.is_set() or cancel.is_set():
            raise _Stopped()
        try:
            lock.acquire(timeout=0.25)
            return lock
        except Timeout:
            continue


def _fetch_one(run: _Run, rf: RemoteFile, pointer: Path, blobs_dir: Path, locks_dir: Path) -> None:
    progress = run.progress
    blob = blobs_dir / rf.blob
    try:
        if blob.is_file():
            if not (pointer.is_symlink() and pointer.is_file()):
                _link(blob, pointer)
            progress.add(rf.path, disk=rf.size, net=0, file_done=rf.size, file_size=rf.size)
            progress.file_finished(rf.path, rf.size, cached=True)
            return
        lock = _acquire(locks_dir / f"{rf.blob}.lock", run.stop, run.cancel)
        try:
            if blob.is_file():  # another process finished it while we waited
                _link(blob, pointer)
                progress.add(rf.path, disk=rf.size, net=0, file_done=rf.size, file_size=rf.size)
                progress.file_finished(rf.path, rf.size, cached=True)
                return
            _transfer(run, rf, blob)
            _link(blob, pointer)
        finally:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - a failed release must not hide the real outcome
                pass
        progress.file_finished(rf.path, rf.size, cached=False)
    except OSError as exc:
        err = layout.cache_write_error(exc, run.settings)
        if err is not exc:
            raise err from None
        raise


def _hash_existing(path: Path, hasher: _Hasher | None, limit: int, run: _Run) -> int:
    """Feed the first ``limit`` bytes of a partial file to the hasher; returns the bytes fed."""
    fed = 0
    with open(path, "rb") as f:
        while fed < limit:
            run.check()
            block = f.read(min(4 * 1024 * 1024, limit - fed))
            if not block:
                break
            if hasher is not None:
                hasher.update(block)
            fed += len(block)
    return fed


def _transfer(run: _Run, rf: RemoteFile, blob: Path) -> None:
    """Stream one file into ``{blob}.incomplete`` (resuming it), check it, rename it into place.

    Must be called with the blob's lock held.
    """
    incomplete = blob.with_name(blob.name + ".incomplete")
    url = f"{run.settings.endpoint}/{run.repo_id}/resolve/{run.commit}/{quote(rf.path)}"
    hasher = _new_hasher(rf)

    # What an earlier (maybe killed) try left behind.
    have = _size_or_zero(incomplete)
    if have > rf.size:
        incomplete.unlink()
        have = 0
    if have:
        have = _hash_existing(incomplete, hasher, have, run)
        with open(incomplete, "r+b") as f:  # drop any tail past what we hashed
            f.truncate(have)
    kept = have
    run.progress.emit(FileStarted(path=rf.path, size=rf.size, resumed_from=have))
    run.progress.add(rf.path, disk=have, net=0, file_done=have, file_size=rf.size)
    try:
        _stream_into(run, rf, incomplete, url, hasher, have)
    except BaseException:
        size = _size_or_zero(incomplete)
        if run.poisoned.is_set() and size > kept:
            # Another file of this run failed its checksum: what this one received meanwhile may be
            # just as wrong, so only what an earlier run left is kept for the next one.
            if kept:
                with open(incomplete, "r+b") as f:
                    f.truncate(kept)
            else:
                _unlink(incomplete)
        elif size == 0:  # nothing worth resuming
            _unlink(incomplete)
        raise
    os.replace(incomplete, blob)


def _stream_into(run: _Run, rf: RemoteFile, incomplete: Path, url: str, hasher: _Hasher | None, have: int) -> None:
    """The transfer loop of :func:`_transfer`: append to ``incomplete`` until complete, then check it.

    Every retry is announced (:class:`~hubmgr.hub.events.DownloadRetry`): a stalled answer (no byte for
    :data:`READ_TIMEOUT` seconds), a dropped connection, a 5xx, or a 429 (waiting its ``Retry-After``,
    capped), waiting as :data:`hubmgr.hub.client.RETRY` says.
    """
    http, settings, progress, repo_id = run.http, run.settings, run.progress, run.repo_id
    policy = _client.RETRY
    tries = 0
    limited = 0
    with open(incomplete, "ab") as out:
        while have < rf.size:
            run.check()
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            made_progress = False
            problem = ""
            try:
                resp = http.request("GET", url, stream=True, headers=headers)
            except HubmgrError:
                raise
            except Exception as exc:  # noqa: BLE001
                if not _is_connection_error(exc):
                    raise
                tries += 1
                problem = _connection_problem(exc)
                if tries >= policy.max_tries:
                    raise HubUnreachableError(
                        f"The connection to {settings.endpoint} kept failing while downloading '{rf.path}' "
                        f"({problem}, {tries} times in a row); run the download again to resume."
                    ) from None
                http.retry(rf.path, problem, tries, policy.max_tries, policy.backoff(tries))
                _sleep(policy.backoff(tries), run)
                continue
            try:
                status = resp.status_code
                if status == 429:
                    limited += 1
                    wait_s, reason = policy.rate_limit_wait(resp.headers)
                    if limited > policy.max_rate_limited:
                        raise RateLimitedError(
                            f"The Hub kept answering 429 (rate limited) while downloading '{rf.path}' ({reason}); "
                            "run the download again later to resume."
                        )
                    http.retry(rf.path, reason, limited, policy.max_rate_limited, wait_s)
                    _sleep(wait_s, run)
                    continue
                if status in policy.statuses:
                    tries += 1
                    if tries >= policy.max_tries:
                        raise HubError(
                            f"The Hub kept answering HTTP {status} while downloading '{rf.path}'; "
                            "run it again later to resume."
                        )
                    wait_s, reason = policy.wait(status, resp.headers, tries)
                    http.retry(rf.path, reason, tries, policy.max_tries, wait_s)
                    _sleep(wait_s, run)
                    continue
                if status == 416 and have:
                    # Our partial file does not fit the remote one: start that file again.
                    out.truncate(0)
                    out.seek(0)
                    progress.add(rf.path, disk=-have, net=0, file_done=0, file_size=rf.size)
                    have = 0
                    hasher = _new_hasher(rf)
                    continue
                if status >= 400:
                    raise _http_error(resp, repo_id, settings=settings, revision=run.commit, path=rf.path)
                if have and status != 206:
                    # The server ignored the range: take the whole body from zero.
                    out.truncate(0)
                    out.seek(0)
                    progress.add(rf.path, disk=-have, net=0, file_done=0, file_size=rf.size)
                    have = 0
                    hasher = _new_hasher(rf)
                elif status == 206:
                    start = _range_start(resp.headers.get("Content-Range", ""))
                    if start is not None and start != have:
                        raise HubError(f"The Hub answered a range request for '{rf.path}' with the wrong bytes.")
                try:
                    for chunk in _iter_body(resp):
                        if run.stop.is_set() or run.cancel.is_set():
                            out.flush()
                            raise _Stopped()
                        if not chunk:
                            continue
                        room = rf.size - have
                        if len(chunk) > room:  # a server that sends more than the file: never write past it
                            chunk = chunk[:room]
                        if chunk:
                            out.write(chunk)
                            if hasher is not None:
                                hasher.update(chunk)
                            have += len(chunk)
                            made_progress = True
                            progress.add(rf.path, disk=len(chunk), net=len(chunk), file_done=have, file_size=rf.size)
                        if have >= rf.size:
                            break
                except _Stopped:
                    raise
                except OSError as exc:
                    full = disk_full_from(exc, rf.path)
                    if full is not None:
                        raise full from None
                    if not _is_connection_error(exc):
                        raise
                    problem = _connection_problem(exc)
                except Exception as exc:  # noqa: BLE001
                    if not _is_connection_error(exc):
                        raise
                    problem = _connection_problem(exc)
                out.flush()
            finally:
                resp.close()
            if have < rf.size:
                # Dropped connection, stalled or short body: ask for the rest.
                if made_progress:
                    tries = 0
                else:
                    tries += 1
                problem = problem or "the answer ended early"
                if tries >= policy.max_tries:
                    kind = (
                        HubUnreachableError
                        if problem.startswith(("no data", "no connection", "the connection"))
                        else HubError
                    )
                    raise kind(
                        f"The download of '{rf.path}' kept stopping short ({problem}, {tries} times in a row, "
                        f"at {have} of {rf.size} bytes); run it again to resume."
                    )
                wait_s = policy.backoff(tries) if not made_progress else 0.0
                http.retry(rf.path, f"{problem}, at {have} of {rf.size} bytes", max(tries, 1), policy.max_tries, wait_s)
                _sleep(wait_s, run)
        out.flush()
        os.fsync(out.fileno())

    # Check before placing.
    if not incomplete.exists():
        raise CacheError(
            f"The partial file of '{rf.path}' was deleted from the cache while it downloaded; run the download again."
        )
    size = _size_or_zero(incomplete)
    if size != rf.size:
        run.poison()
        _unlink(incomplete)
        raise IntegrityError(
            f"'{rf.path}' has {size} bytes instead of {rf.size}; it was not placed. Run the download again."
        )
    expected = _expected_digest(rf)
    if hasher is not None and expected:
        got = hasher.hexdigest()
        if got != expected:
            run.poison()
            _unlink(incomplete)
            digest_kind = "sha256" if rf.lfs_sha256 else "git sha1"
            raise IntegrityError(
                f"'{rf.path}' does not match the {digest_kind} the Hub gives (expected {expected[:12]}..., got {got[:12]}...); "
                "it was deleted and not placed."
            )


def _iter_body(resp: httpx2.Response) -> Iterator[bytes]:
    """The response body in pieces as they arrive, so a dropped connection loses nothing that already reached us."""
    yield from resp.iter_bytes()


def _range_start(content_range: str) -> int | None:
    m = re.match(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$", content_range or "")
    return int(m.group(1)) if m else None


def _sleep(seconds: float, run: _Run) -> None:
    """Sleep, waking up early when the download stops."""
    end = time.monotonic() + seconds
    while True:
        run.check()
        left = end - time.monotonic()
        if left <= 0:
            return
        run.cancel.wait(min(left, 0.1))


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _tidy_failed(storage: Path, snap: Path, files: Iterable[RemoteFile] = ()) -> None:
    """After a failed download, leave no empty snapshot behind (``hubmgr ls`` would list a 0-byte revision)
    unless partial files of it remain: then the snapshot stays, and ``ls`` shows it incomplete, with what a
    resume would keep.

    Partial ``.incomplete`` blobs are kept so that a later run resumes them; a repo folder that holds
    nothing else (no blob, no ref, no other snapshot) is removed whole, with its records.
    """
    try:
        blobs = storage / "blobs"
        resumable = any((blobs / f"{rf.blob}.incomplete").exists() for rf in files)
        if snap.is_dir() and not any(snap.iterdir()) and not resumable:
            snap.rmdir()
            drop_snapshot_records(storage, snap.name)
        snapshots = storage / "snapshots"
        if snapshots.is_dir() and not any(snapshots.iterdir()):
            snapshots.rmdir()
        refs = storage / "refs"
        has_blobs = blobs.is_dir() and any(blobs.iterdir())
        has_refs = refs.is_dir() and any(refs.rglob("*"))
        if not has_blobs and not has_refs and not snapshots.exists():
            shutil.rmtree(storage, ignore_errors=True)
    except OSError:
        pass
