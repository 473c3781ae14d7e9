"""A Hub-compatible HTTP server for tests: speaks the dialect of huggingface_hub's client.

Start it, add repos, point ``HF_ENDPOINT`` (or ``HfApi(endpoint=...)``) at :attr:`HubServer.url`::

    with HubServer() as hub:
        sha = hub.add_repo("acme/tiny", {"config.json": "{}", "model.safetensors": weights})
        hf_hub_download("acme/tiny", "config.json", endpoint=hub.url)

Routes (``{type}`` is ``models`` or ``datasets``; dataset files live under ``/datasets/{repo}/resolve``):

- ``GET /api/{type}`` search: ``search``, ``filter`` (tags, library, pipeline tag, ``license:x``; all must
  match), ``author``, ``pipeline_tag``, ``library``, ``gated``, ``sort`` (downloads, likes, trendingScore,
  lastModified, createdAt, id), ``direction`` (-1 default, 1 ascending), ``limit``, ``full``, ``cardData``,
  ``config``, ``expand``/``expand[]``; pages with ``cursor`` and a ``Link: <…>; rel="next"`` header.
- ``GET /api/{type}/{repo}`` and ``…/revision/{rev}``: model info (``blobs=true`` adds sizes and lfs).
- ``GET /api/{type}/{repo}/tree/{rev}[/{path}]`` (``recursive``), ``POST …/paths-info/{rev}``,
  ``GET …/refs``, ``GET …/commits/{rev}``, ``GET /api/whoami-v2``.
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``Range`` (206 + ``Content-Range``, 416),
  ``X-Repo-Commit``, ``ETag`` (git blob sha1 for small files; sha256 for LFS files, plus ``X-Linked-Etag``
  and ``X-Linked-Size``), ``Accept-Ranges``. Never sends xet headers.
- Errors carry ``X-Error-Code`` / ``X-Error-Message`` and a JSON ``{"error": …}`` body: ``RepoNotFound``
  (404), ``RevisionNotFound`` (404), ``EntryNotFound`` (404, with ``X-Repo-Commit``), ``GatedRepo`` (401
  without a token, 403 with a token not granted).

Gated repos show their metadata and file list to anyone (like the Hub); only ``resolve`` needs a token given
to :meth:`HubServer.grant`. Private repos (``private=True``) are invisible (``RepoNotFound``) without one.

Files larger than :data:`LFS_THRESHOLD` bytes or with a weights suffix are "LFS" files (they carry a
sha256). Files given as :class:`~pathlib.Path` are streamed from disk, never held in memory.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
import json
import math
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, cast
from urllib.parse import parse_qs, quote, unquote, urlencode

__all__ = ["HubServer", "LFS_THRESHOLD", "LFS_SUFFIXES", "RequestRecord", "FAULT_KINDS", "ROUTE_NAMES"]

LFS_THRESHOLD = 1024
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".pkl",
    ".ckpt",
    ".gguf",
    ".onnx",
    ".h5",
    ".msgpack",
    ".parquet",
    ".arrow",
    ".zip",
    ".tar",
    ".gz",
    ".npy",
    ".npz",
)
FAULT_KINDS = ("drop", "error500", "rate_limit", "truncate", "corrupt", "stall", "slow", "status")
ROUTE_NAMES = ("search", "model_info", "tree", "paths_info", "refs", "commits", "whoami", "resolve")
_CHUNK = 64 * 1024
_SMALL_IN_MEMORY = 1 << 20  # files under 1 MiB given as Path are read once; larger ones stream from disk
_DEFAULT_BRANCH = "main"


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _as_datetime(value: datetime | str | None, default: datetime) -> datetime:
    if value is None:
        return default
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = value.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _git_blob_sha1(size: int, chunks: Iterable[bytes]) -> str:
    h = hashlib.sha1(f"blob {size}\0".encode())
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _iter_file(path: Path, start: int = 0, end: int | None = None, chunk: int = _CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            data = fh.read(chunk if remaining is None else min(chunk, remaining))
            if not data:
                break
            if remaining is not None:
                remaining -= len(data)
            yield data


@dataclass
class _Blob:
    """One file's content and hashes (shared by every commit that holds the same bytes)."""

    size: int
    git_sha1: str  # blob id: of the content, or of the LFS pointer for LFS files
    sha256: str | None  # set for LFS files
    pointer_size: int | None
    data: bytes | None = None
    path: Path | None = None

    def read(self, start: int = 0, end: int | None = None) -> Iterable[bytes]:
        end = self.size if end is None else end
        if self.data is not None:
            view = memoryview(self.data)
            for pos in range(start, end, _CHUNK):
                yield bytes(view[pos : min(pos + _CHUNK, end)])
        else:
            assert self.path is not None
            yield from _iter_file(self.path, start, end)

    def head(self, n: int) -> bytes:
        return b"".join(self.read(0, min(n, self.size)))

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None


def _make_blob(name: str, content: bytes | str | Path) -> _Blob:
    if isinstance(content, str):
        content = content.encode("utf-8")
    data: bytes | None
    path: Path | None
    if isinstance(content, (bytes, bytearray, memoryview)):
        blob = bytes(content)
        data = blob
        size = len(blob)
        path = None

        def chunks() -> Iterable[bytes]:
            return [blob]

    else:
        file_path = Path(content)
        size = file_path.stat().st_size
        small = file_path.read_bytes() if size < _SMALL_IN_MEMORY else None
        data = small
        path = None if small is not None else file_path
        chunks = (lambda: [small]) if small is not None else (lambda: _iter_file(file_path))
    is_lfs = size > LFS_THRESHOLD or name.lower().endswith(LFS_SUFFIXES)
    if is_lfs:
        h = hashlib.sha256()
        for c in chunks():
            h.update(c)
        sha256 = h.hexdigest()
        pointer = _lfs_pointer(sha256, size)
        return _Blob(
            size=size,
            git_sha1=_git_blob_sha1(len(pointer), [pointer]),
            sha256=sha256,
            pointer_size=len(pointer),
            data=data,
            path=path,
        )
    return _Blob(
        size=size, git_sha1=_git_blob_sha1(size, chunks()), sha256=None, pointer_size=None, data=data, path=path
    )


@dataclass
class _Commit:
    sha: str
    files: dict[str, _Blob]
    date: datetime
    title: str
    parent: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)  # card data, config, safetensors summary (immutable)


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags_refs: dict[str, str] = field(default_factory=dict)
    pipeline_tag: str | None = None
    library_name: str | None = None
    tags: list[str] = field(default_factory=list)
    author: str | None = None
    downloads: int = 0
    likes: int = 0
    trending_score: float | None = None
    gated: bool | str = False
    private: bool = False
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    last_modified: datetime | None = None
    tokens: set[str] = field(default_factory=set)
    uid: str = ""

    def resolve(self, revision: str) -> _Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision in self.tags_refs:
            return self.commits[self.tags_refs[revision]]
        for name in (revision.removeprefix("refs/heads/"), revision.removeprefix("refs/tags/")):
            if name != revision:
                sha = self.branches.get(name) or self.tags_refs.get(name)
                if sha:
                    return self.commits[sha]
        if revision in self.commits:
            return self.commits[revision]
        if 7 <= len(revision) < 40:
            matches = [c for sha, c in self.commits.items() if sha.startswith(revision.lower())]
            if len(matches) == 1:
                return matches[0]
        return None

    @property
    def head(self) -> _Commit:
        return self.commits[self.branches[_DEFAULT_BRANCH]]


@dataclass
class _Fault:
    kind: str
    path: str | None
    repo_id: str | None
    remaining: int | None  # None: forever
    method: str  # "GET", "HEAD" or "*"
    route: str | None  # an API route name instead of resolve
    kw: dict[str, Any]

    def matches(self, *, route: str, method: str, repo_id: str | None, path: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.route is not None:
            if self.route != route:
                return False
        elif route != "resolve":
            return False
        if self.method != "*" and self.method != method:
            return False
        if self.repo_id is not None and self.repo_id != repo_id:
            return False
        if self.path is not None:
            if path is None or not (path == self.path or fnmatch.fnmatchcase(path, self.path)):
                return False
        return True


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered (tokens are never recorded).

    Attributes:
        method: ``GET``, ``HEAD`` or ``POST``.
        path: the URL path, percent-decoded.
        query: the query parameters.
        route: the route name (``search``, ``model_info``, ``tree``, ``resolve``, …) or ``unknown``.
        repo_id: the repo addressed, if any.
        file: the file addressed by ``resolve``, if any.
        range: the ``Range`` header, if any.
        authorized: whether an ``Authorization`` header came with it.
        status: the status code answered.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    route: str
    repo_id: str | None
    file: str | None
    range: str | None
    authorized: bool
    status: int


class _HTTPError(Exception):
    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        plain: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.plain = plain


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    block_on_close = False

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], hub: "HubServer") -> None:
        self.hub = hub
        self.live: set[socket.socket] = set()
        self.live_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request_thread(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        sock = cast(socket.socket, request)  # a TCP server's requests are its connections' sockets
        with self.live_lock:
            self.live.add(sock)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.live_lock:
                self.live.discard(sock)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:  # quiet: clients hang up on purpose in tests
        pass

    def close_live(self) -> None:
        with self.live_lock:
            sockets = list(self.live)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubDouble/1.0"
    timeout = 60
    server: _Server
    #: set by HubServer for each request: records its status when the status line goes out
    _hub_record: Callable[[int], None]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "POST")


class HubServer:
    """A Hub double on ``127.0.0.1``: repos in memory (or streamed from disk), faults on demand.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. All methods are thread-safe.

    Args:
        host: interface to bind (default ``127.0.0.1``).
        port: port to bind (default 0: a free one).
        page_size: most search results per page when the request gives no ``limit``.
        tree_page_size: most entries per page of a tree listing.
        user: the user name ``/api/whoami-v2`` reports for a known token.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 1000,
        tree_page_size: int = 1000,
        user: str = "tester",
    ) -> None:
        self.host = host
        self.port = port
        self.page_size = page_size
        self.tree_page_size = tree_page_size
        self.user = user
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._faults: list[_Fault] = []
        self._disabled: set[str] = set()
        self._bytes: dict[tuple[str, str], int] = {}
        self._bytes_cond = threading.Condition(self._lock)
        self._requests: list[RequestRecord] = []
        self._tokens: set[str] = set()
        self._counter = itertools.count(1)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None
        self._stalls: set[threading.Event] = set()  # one per stalled or throttled response in flight
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "HubServer":
        """Bind and serve in a background thread.

        Returns:
            ``self``, started.
        """
        if self._httpd is not None:
            return self
        self._stopping = False
        self._httpd = _Server((self.host, self.port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"hub-double:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (the port then refuses connections)."""
        httpd, self._httpd = self._httpd, None
        self._stopping = True
        self.release_stalls()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_live()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The endpoint, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        return f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "stopped"
        return f"<HubServer {where} repos={len(self._repos)}>"

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    # ------------------------------------------------------------------ content
    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str | Path | None] | None = None,
        *,
        folder: str | Path | None = None,
        revision: str = _DEFAULT_BRANCH,
        pipeline_tag: str | None = None,
        library_name: str | None = None,
        tags: Iterable[str] = (),
        author: str | None = None,
        downloads: int = 0,
        likes: int = 0,
        gated: bool | str = False,
        card: str | Mapping[str, Any] | None = None,
        last_modified: datetime | str | None = None,
        created_at: datetime | str | None = None,
        trending_score: float | None = None,
        private: bool = False,
        repo_type: str = "model",
        message: str | None = None,
        replace: bool = False,
        tag: str | None = None,
    ) -> str:
        """Create a repo, or add a commit to one.

        A new repo gets one commit on ``main`` (and on *revision* if that differs). For an existing repo the
        new commit goes on top of *revision* (a new branch starts from ``main``): the given files are laid
        over the previous ones (a value of ``None`` deletes that file) unless ``replace=True``. Metadata
        given with a non-default value updates the repo.

        Args:
            repo_id: ``owner/name`` (or a bare ``name``).
            files: path in repo -> content (``bytes``, ``str`` as UTF-8, or a ``Path`` served from disk).
                Names are kept verbatim, even hostile ones (``../x``, ``/abs``, ``a\\b``), for safety tests.
            folder: a folder whose files (recursively, ``.git`` excluded) are added before *files*.
            revision: the branch to commit to.
            pipeline_tag: e.g. ``text-classification``.
            library_name: e.g. ``transformers``.
            tags: extra tags; ``library_name``, ``pipeline_tag`` and ``license:<card license>`` are added.
            author: defaults to the owner part of *repo_id*.
            downloads: download count (for sorting).
            likes: like count (for sorting).
            gated: ``False``, ``True`` (``"auto"``), ``"auto"`` or ``"manual"``.
            card: README.md text, or a dict of card metadata (written as YAML front matter).
            last_modified: the commit's date (datetime or ISO string); default now.
            created_at: the repo's creation date; default now.
            trending_score: for ``sort=trendingScore``; defaults to *likes*.
            private: hide the repo from anyone without a granted token.
            repo_type: ``"model"`` or ``"dataset"``.
            message: the commit title.
            replace: the commit holds exactly *files*/*folder*, nothing inherited.
            tag: also point this git tag at the new commit.

        Returns:
            The new commit sha (40 hex digits).

        Raises:
            ValueError: for an unknown repo type or gated value.
        """
        if repo_type not in ("model", "dataset"):
            raise ValueError(f"unknown repo_type {repo_type!r}")
        if gated is True:
            gated = "auto"
        if gated not in (False, "auto", "manual"):
            raise ValueError(f"gated must be False, True, 'auto' or 'manual', not {gated!r}")
        new_files: dict[str, _Blob | None] = {}
        if folder is not None:
            root = Path(folder)
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root)
                if p.is_file() and ".git" not in rel.parts and ".cache" not in rel.parts:
                    new_files[rel.as_posix()] = _make_blob(rel.as_posix(), p)
        for name, content in (files or {}).items():
            new_files[name] = None if content is None else _make_blob(name, content)
        if card is not None:
            new_files["README.md"] = _make_blob("README.md", _render_card(repo_id, card))

        with self._lock:
            key = (repo_type, repo_id)
            repo = self._repos.get(key)
            now = datetime.now(timezone.utc)
            if repo is None:
                repo = _Repo(
                    repo_id=repo_id,
                    repo_type=repo_type,
                    author=author or (repo_id.split("/")[0] if "/" in repo_id else None),
                    created_at=_as_datetime(created_at, now),
                    uid=hashlib.sha1(f"{repo_type}:{repo_id}".encode()).hexdigest()[:24],
                )
                self._repos[key] = repo
                base: dict[str, _Blob] = {}
                parent = None
            else:
                head_sha = repo.branches.get(revision) or repo.branches.get(_DEFAULT_BRANCH)
                parent = head_sha
                base = {} if replace or head_sha is None else dict(repo.commits[head_sha].files)
                if author:
                    repo.author = author
                if created_at is not None:
                    repo.created_at = _as_datetime(created_at, now)
            for name, blob in new_files.items():
                if blob is None:
                    base.pop(name, None)
                else:
                    base[name] = blob
            date = _as_datetime(last_modified, now)
            n = next(self._counter)
            digest = hashlib.sha1(f"{repo_type}:{repo_id}:{revision}:{n}:{time.time_ns()}".encode())
            for name in sorted(base):
                digest.update(f"{name}\0{base[name].git_sha1}\n".encode())
            sha = digest.hexdigest()
            repo.commits[sha] = _Commit(
                sha=sha, files=base, date=date, title=message or f"Upload commit {n}", parent=parent
            )
            repo.branches[revision] = sha
            if _DEFAULT_BRANCH not in repo.branches:
                repo.branches[_DEFAULT_BRANCH] = sha
            if tag:
                repo.tags_refs[tag] = sha
            if pipeline_tag is not None:
                repo.pipeline_tag = pipeline_tag
            if library_name is not None:
                repo.library_name = library_name
            for t in tags:
                if t not in repo.tags:
                    repo.tags.append(t)
            if downloads:
                repo.downloads = downloads
            if likes:
                repo.likes = likes
            if trending_score is not None:
                repo.trending_score = trending_score
            if gated:
                repo.gated = gated
            if private:
                repo.private = True
            if repo.last_modified is None or date >= repo.last_modified or last_modified is not None:
                repo.last_modified = date
            return sha

    def add_pretrained(self, repo_id: str, model: Any, tokenizer_or_processor: Any = None, **meta: Any) -> str:
        """Publish a model: a ``save_pretrained`` folder, or an object with ``save_pretrained``.

        Args:
            repo_id: ``owner/name``.
            model: a folder path (e.g. the ``tiny_bert`` fixture) or a transformers/peft model object (saved
                with safetensors into a folder the server owns until :meth:`stop`).
            tokenizer_or_processor: saved next to the model when given (an object with ``save_pretrained``).
            **meta: passed to :meth:`add_repo` (``library_name`` defaults to ``transformers``; the pipeline tag
                is left to the caller).

        Returns:
            The new commit sha.
        """
        meta.setdefault("library_name", "transformers")
        if isinstance(model, (str, os.PathLike)) and tokenizer_or_processor is None:
            return self.add_repo(repo_id, folder=Path(model), **meta)
        with self._lock:
            if self._workdir is None:
                self._workdir = Path(tempfile.mkdtemp(prefix="hub-double-"))
            target = self._workdir / f"{next(self._counter)}-{repo_id.replace('/', '--')}"
        target.mkdir(parents=True)
        if isinstance(model, (str, os.PathLike)):
            shutil.copytree(Path(model), target, dirs_exist_ok=True)
        else:
            model.save_pretrained(target, safe_serialization=True)
        if tokenizer_or_processor is not None:
            tokenizer_or_processor.save_pretrained(target)
        return self.add_repo(repo_id, folder=target, **meta)

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        """Remove a repo (later requests get ``RepoNotFound``)."""
        with self._lock:
            self._repos.pop((repo_type, repo_id), None)

    def delete_branch(self, repo_id: str, branch: str, *, repo_type: str = "model") -> None:
        """Remove a branch (its commits stay reachable by sha)."""
        with self._lock:
            self._repos[(repo_type, repo_id)].branches.pop(branch, None)

    def commit_sha(self, repo_id: str, revision: str = _DEFAULT_BRANCH, *, repo_type: str = "model") -> str:
        """The commit a revision points to.

        Raises:
            KeyError: unknown repo or revision.
        """
        with self._lock:
            commit = self._repos[(repo_type, repo_id)].resolve(revision)
            if commit is None:
                raise KeyError(revision)
            return commit.sha

    def file_sha256(self, repo_id: str, path: str, *, revision: str = _DEFAULT_BRANCH, repo_type: str = "model") -> str:
        """The sha256 of a file's content (computed for non-LFS files too)."""
        with self._lock:
            commit = self._repos[(repo_type, repo_id)].resolve(revision)
            assert commit is not None
            blob = commit.files[path]
        if blob.sha256:
            return blob.sha256
        h = hashlib.sha256()
        for c in blob.read():
            h.update(c)
        return h.hexdigest()

    def grant(self, repo_id: str, token: str, *, repo_type: str = "model") -> None:
        """Give *token* access to a gated or private repo (and make it known to ``whoami``)."""
        with self._lock:
            self._repos[(repo_type, repo_id)].tokens.add(token)
            self._tokens.add(token)

    def add_token(self, token: str) -> None:
        """Make a token valid for ``/api/whoami-v2`` without granting any repo."""
        with self._lock:
            self._tokens.add(token)

    # ------------------------------------------------------------------ faults, routes, counters
    def inject(
        self,
        kind: str,
        *,
        path: str | None = None,
        repo_id: str | None = None,
        times: int | None = 1,
        method: str = "GET",
        route: str | None = None,
        **kw: Any,
    ) -> None:
        """Make the next matching request(s) misbehave.

        By default a fault applies to ``GET …/resolve/…`` of any repo and file; narrow it with *repo_id* and
        *path* (exact or a glob), *method* (``"GET"``, ``"HEAD"`` or ``"*"``), or aim an ``error500`` /
        ``rate_limit`` at an API route with ``route=`` (one of :data:`ROUTE_NAMES`).

        Kinds and their keywords:
            ``drop`` (``after_bytes``, default half the body): send that many body bytes, then reset the
            connection. ``truncate`` (``after_bytes``): announce the full Content-Length, send fewer bytes,
            close cleanly. ``corrupt`` (``offset``: file offset of the byte to flip, default the middle;
            ``count``: how many consecutive bytes, default 1; ``bytes_per_sec``: also throttle the body, as
            ``slow`` does): right length, wrong bytes. ``error500``: answer 500. ``rate_limit``
            (``retry_after``, default 1): answer 429 with ``Retry-After``. ``status`` (``status``, default
            410; ``message``): answer that status with an ``X-Error-Message`` and no error code.
            ``stall`` (``after_bytes``, default 0; ``timeout``, default 30 s): send that many bytes, then hang
            until :meth:`release_stalls`, :meth:`stop` or the timeout, then close. ``slow``
            (``bytes_per_sec``, default 64 KiB/s): throttle the body.

        Args:
            kind: one of :data:`FAULT_KINDS`.
            path: file path in the repo (or glob) it applies to; None for all.
            repo_id: repo it applies to; None for all.
            times: how many requests it spoils; None for every one.
            method: HTTP method it applies to.
            route: an API route instead of ``resolve`` (``error500``, ``rate_limit``, ``drop``, ``status`` only).
            **kw: the kind's keywords.

        Raises:
            ValueError: unknown kind, route or method.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if route is not None and route not in ROUTE_NAMES:
            raise ValueError(f"unknown route {route!r}; one of {', '.join(ROUTE_NAMES)}")
        if method not in ("GET", "HEAD", "POST", "*"):
            raise ValueError(f"unknown method {method!r}")
        with self._lock:
            self._faults.append(
                _Fault(
                    kind=kind,
                    path=path,
                    repo_id=repo_id,
                    remaining=times,
                    method=method,
                    route=None if route == "resolve" else route,
                    kw=dict(kw),
                )
            )

    def clear_faults(self) -> None:
        """Forget every pending fault (and release stalled responses)."""
        with self._lock:
            self._faults.clear()
        self.release_stalls()

    def pending_faults(self) -> int:
        """How many injected faults can still fire."""
        with self._lock:
            return sum(1 for f in self._faults if f.remaining is None or f.remaining > 0)

    def release_stalls(self) -> None:
        """Let the ``stall``-ed responses in flight end (they close the connection) and ``slow`` ones speed up.

        Faults injected later stall again.
        """
        with self._lock:
            events = list(self._stalls)
        for ev in events:
            ev.set()

    def _stall_event(self) -> threading.Event:
        ev = threading.Event()
        if self._stopping:
            ev.set()
        with self._lock:
            self._stalls.add(ev)
        return ev

    def _stall_done(self, ev: threading.Event) -> None:
        with self._lock:
            self._stalls.discard(ev)

    def disable_api(self, *route_names: str) -> None:
        """Answer these routes with a bare 404 page (no ``X-Error-Code``), like a mirror without the API.

        Args:
            *route_names: names from :data:`ROUTE_NAMES`, e.g. ``"search"``, ``"model_info"``, ``"tree"``.

        Raises:
            ValueError: unknown route name.
        """
        for name in route_names:
            if name not in ROUTE_NAMES:
                raise ValueError(f"unknown route {name!r}; one of {', '.join(ROUTE_NAMES)}")
        with self._lock:
            self._disabled.update(route_names)

    def enable_api(self, *route_names: str) -> None:
        """Undo :meth:`disable_api` for these routes (all of them when none are named)."""
        with self._lock:
            if route_names:
                self._disabled.difference_update(route_names)
            else:
                self._disabled.clear()

    def bytes_sent(self, repo_id: str | None = None, path: str | None = None) -> int:
        """Body bytes actually written for ``resolve`` GETs since the last :meth:`reset_counters`.

        Args:
            repo_id: count only this repo.
            path: count only this file (in any repo unless *repo_id* is given).

        Returns:
            The byte count.
        """
        with self._lock:
            return sum(
                n
                for (r, p), n in self._bytes.items()
                if (repo_id is None or r == repo_id) and (path is None or p == path)
            )

    def wait_for_bytes(
        self, n: int, *, repo_id: str | None = None, path: str | None = None, timeout: float = 30.0
    ) -> bool:
        """Block until :meth:`bytes_sent` reaches *n* (e.g. to kill a client mid-file).

        Returns:
            True when reached, False on timeout.
        """
        deadline = time.monotonic() + timeout
        with self._bytes_cond:
            while self.bytes_sent(repo_id, path) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._bytes_cond.wait(min(left, 0.1))
            return True

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered since the last :meth:`reset_counters` (a copy)."""
        with self._lock:
            return list(self._requests)

    def reset_counters(self) -> None:
        """Zero the byte counters and forget the request log."""
        with self._lock:
            self._bytes.clear()
            self._requests.clear()

    # ------------------------------------------------------------------ request handling
    def _record(
        self,
        h: _Handler,
        method: str,
        path: str,
        query: dict[str, list[str]],
        route: str,
        repo_id: str | None,
        file: str | None,
        status: int,
    ) -> None:
        rec = RequestRecord(
            method=method,
            path=path,
            query=query,
            route=route,
            repo_id=repo_id,
            file=file,
            range=h.headers.get("Range"),
            authorized=bool(h.headers.get("Authorization")),
            status=status,
        )
        with self._lock:
            self._requests.append(rec)

    def _take_fault(
        self, *, route: str, method: str, repo_id: str | None, path: str | None, kinds: tuple[str, ...] | None = None
    ) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if (kinds is None or f.kind in kinds) and f.matches(
                    route=route, method=method, repo_id=repo_id, path=path
                ):
                    if f.remaining is not None:
                        f.remaining -= 1
                    return f
        return None

    def _token(self, h: _Handler) -> str | None:
        auth = h.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return None

    def _dispatch(self, h: _Handler, method: str) -> None:
        raw_path, _, raw_query = h.path.partition("?")
        query = parse_qs(raw_query, keep_blank_values=True)
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length) if length else b""
            ctype = h.headers.get("Content-Type", "")
            if "json" in ctype:
                try:
                    data = json.loads(body or b"{}")
                    for k, v in data.items():
                        query.setdefault(k, []).extend(v if isinstance(v, list) else [str(v)])
                except ValueError:
                    pass
            else:
                for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
                    query.setdefault(k, []).extend(v)
        segs = [unquote(s) for s in raw_path.split("/")[1:]]
        if segs and segs[-1] == "" and len(segs) > 1:
            segs = segs[:-1]
        ctx: dict[str, Any] = {"route": "unknown", "repo_id": None, "file": None}
        done = [False]

        def record(status: int) -> None:
            # recorded when the status line goes out, before the body: a client that has its answer
            # always finds its request in the log
            if not done[0]:
                done[0] = True
                self._record(h, method, unquote(raw_path), query, ctx["route"], ctx["repo_id"], ctx["file"], status)

        h._hub_record = record
        try:
            self._route(h, method, raw_path, segs, query, ctx)
        except _HTTPError as err:
            self._send_error(h, method, err)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            h.close_connection = True
            record(499)
        except Exception as exc:  # a bug in the double: answer 500 with the reason
            try:
                self._send_error(h, method, _HTTPError(500, None, f"hub double failed: {exc!r}"))
            except OSError:
                h.close_connection = True
            record(500)

    def _find_repo(self, repo_type: str, parts: list[str]) -> tuple[str, list[str]]:
        """Split ``owner/name/rest…`` (or ``name/rest…``) into repo id and the rest."""
        with self._lock:
            if len(parts) >= 2 and (repo_type, f"{parts[0]}/{parts[1]}") in self._repos:
                return f"{parts[0]}/{parts[1]}", parts[2:]
            if parts and (repo_type, parts[0]) in self._repos:
                return parts[0], parts[1:]
        keywords = {"revision", "tree", "refs", "commits", "paths-info", "resolve", "raw", "blob", "commit"}
        if len(parts) >= 2 and parts[1] not in keywords:
            return f"{parts[0]}/{parts[1]}", parts[2:]
        return parts[0] if parts else "", parts[1:]

    def _route(
        self, h: _Handler, method: str, raw_path: str, segs: list[str], query: dict[str, list[str]], ctx: dict[str, Any]
    ) -> int:
        if len(segs) >= 2 and segs[0] == "api" and segs[1] == "whoami-v2":
            ctx["route"] = "whoami"
            self._api_fault(method, "whoami", None)
            return self._whoami(h, method)
        if len(segs) >= 2 and segs[0] == "api" and segs[1] in ("models", "datasets"):
            repo_type = segs[1][:-1]
            rest = segs[2:]
            if not rest:
                ctx["route"] = "search"
                self._check_enabled("search")
                self._api_fault(method, "search", None)
                return self._search(h, method, repo_type, raw_path, query)
            # the tree path and revision arrive percent-encoded (``%2F``): split the raw path instead
            raw_rest = raw_path.split("/")[3:]
            repo_id, tail = self._find_repo(repo_type, rest)
            n_repo = len(repo_id.split("/"))
            raw_tail = raw_rest[n_repo:]
            ctx["repo_id"] = repo_id
            if not tail or tail[0] == "revision":
                ctx["route"] = "model_info"
                self._check_enabled("model_info")
                self._api_fault(method, "model_info", repo_id)
                rev = unquote(raw_tail[1]) if len(tail) >= 2 else _DEFAULT_BRANCH
                if len(raw_tail) > 2:  # unencoded slashes in a revision
                    rev = unquote("/".join(raw_tail[1:]))
                return self._model_info(h, method, repo_type, repo_id, rev, query)
            if tail[0] == "tree":
                ctx["route"] = "tree"
                self._check_enabled("tree")
                self._api_fault(method, "tree", repo_id)
                rev = unquote(raw_tail[1]) if len(raw_tail) >= 2 else _DEFAULT_BRANCH
                sub = unquote("/".join(raw_tail[2:])) if len(raw_tail) > 2 else ""
                return self._tree(h, method, repo_type, repo_id, rev, sub, raw_path, query)
            if tail[0] == "paths-info":
                ctx["route"] = "paths_info"
                self._check_enabled("paths_info")
                self._api_fault(method, "paths_info", repo_id)
                rev = unquote("/".join(raw_tail[1:])) if len(raw_tail) >= 2 else _DEFAULT_BRANCH
                return self._paths_info(h, method, repo_type, repo_id, rev, query)
            if tail[0] == "refs":
                ctx["route"] = "refs"
                self._check_enabled("refs")
                self._api_fault(method, "refs", repo_id)
                return self._refs(h, method, repo_type, repo_id)
            if tail[0] == "commits":
                ctx["route"] = "commits"
                self._check_enabled("commits")
                self._api_fault(method, "commits", repo_id)
                rev = unquote("/".join(raw_tail[1:])) if len(raw_tail) >= 2 else _DEFAULT_BRANCH
                return self._commits(h, method, repo_type, repo_id, rev)
            raise _HTTPError(404, None, "Not Found", plain=True)
        # /{repo}/resolve/{rev}/{path} and /datasets/{repo}/resolve/{rev}/{path}
        repo_type = "model"
        raw_parts = raw_path.split("/")[1:]
        if segs and segs[0] == "datasets":
            repo_type = "dataset"
            segs, raw_parts = segs[1:], raw_parts[1:]
        elif segs and segs[0] == "models":
            segs, raw_parts = segs[1:], raw_parts[1:]
        repo_id, tail = self._find_repo(repo_type, segs)
        if len(tail) >= 2 and tail[0] == "resolve":
            n_repo = len(repo_id.split("/"))
            raw_tail = raw_parts[n_repo:]
            rev = unquote(raw_tail[1])
            file = unquote("/".join(raw_tail[2:]))
            ctx.update(route="resolve", repo_id=repo_id, file=file)
            self._check_enabled("resolve")
            return self._resolve(h, method, repo_type, repo_id, rev, file)
        raise _HTTPError(404, None, "Not Found", plain=True)

    def _check_enabled(self, route: str) -> None:
        with self._lock:
            disabled = route in self._disabled
        if disabled:
            raise _HTTPError(404, None, "Not Found", plain=True)

    def _api_fault(self, method: str, route: str, repo_id: str | None) -> None:
        f = self._take_fault(route=route, method=method, repo_id=repo_id, path=None)
        if f is None:
            return
        if f.kind == "rate_limit":
            raise _HTTPError(429, None, "Too Many Requests", headers={"Retry-After": str(f.kw.get("retry_after", 1))})
        if f.kind == "drop":
            raise ConnectionAbortedError  # close without an answer
        if f.kind == "status":
            raise _fault_status(f)
        raise _HTTPError(500, None, "Internal Error - We're working hard to fix this as soon as possible!")

    # ------------------------------------------------------------------ repo access
    def _get_repo(self, h: _Handler, repo_type: str, repo_id: str) -> _Repo:
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and self._token(h) not in repo.tokens):
            raise _HTTPError(404, "RepoNotFound", "Repository not found")
        return repo

    def _get_commit(self, repo: _Repo, revision: str) -> _Commit:
        with self._lock:
            commit = repo.resolve(revision)
        if commit is None:
            raise _HTTPError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _check_gate(self, h: _Handler, repo: _Repo) -> None:
        if not repo.gated:
            return
        token = self._token(h)
        kind = "model" if repo.repo_type == "model" else "dataset"
        if token is None:
            raise _HTTPError(
                401,
                "GatedRepo",
                f"Access to {kind} {repo.repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
            )
        if token not in repo.tokens:
            raise _HTTPError(
                403,
                "GatedRepo",
                f"Access to {kind} {repo.repo_id} is restricted and you are not in the authorized "
                f"list. Visit {self.url}/{repo.repo_id} to ask for access.",
            )

    # ------------------------------------------------------------------ responses
    def _send_json(
        self, h: _Handler, method: str, payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> int:
        body = json.dumps(payload).encode()
        h._hub_record(status)
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(body)
        return status

    def _send_error(self, h: _Handler, method: str, err: _HTTPError) -> None:
        h._hub_record(err.status)
        if err.plain:
            body = (
                b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
                b"<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>\n"
            )
            h.send_response(err.status)
            h.send_header("Content-Type", "text/html; charset=utf-8")
        else:
            body = json.dumps({"error": err.message}).encode()
            h.send_response(err.status)
            h.send_header("Content-Type", "application/json; charset=utf-8")
            if err.code:
                h.send_header("X-Error-Code", err.code)
            h.send_header("X-Error-Message", err.message)
        for k, v in err.headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(body)

    def _next_link(self, h: _Handler, raw_path: str, query: dict[str, list[str]], offset: int) -> str:
        params = [(k, v) for k, vs in query.items() if k != "cursor" for v in vs]
        params.append(("cursor", base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()))
        return f'<{self.url}{raw_path}?{urlencode(params)}>; rel="next"'

    @staticmethod
    def _cursor_offset(query: dict[str, list[str]]) -> int:
        cursor = (query.get("cursor") or [""])[0]
        if not cursor:
            return 0
        try:
            return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"])
        except Exception as exc:
            raise _HTTPError(400, "BadRequest", f"Invalid cursor: {cursor}") from exc

    # ------------------------------------------------------------------ /api/whoami-v2
    def _whoami(self, h: _Handler, method: str) -> int:
        token = self._token(h)
        with self._lock:
            known = token is not None and token in self._tokens
        if not known:
            raise _HTTPError(401, None, "Invalid credentials in Authorization header")
        return self._send_json(
            h,
            method,
            {
                "type": "user",
                "id": "0" * 24,
                "name": self.user,
                "fullname": self.user.title(),
                "email": None,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "read"}},
            },
        )

    # ------------------------------------------------------------------ /api/models (search)
    def _search(self, h: _Handler, method: str, repo_type: str, raw_path: str, query: dict[str, list[str]]) -> int:
        token = self._token(h)

        def one(name: str) -> str | None:
            vals = query.get(name) or query.get(name + "[]")
            return vals[0] if vals else None

        def many(name: str) -> list[str]:
            return [v for k in (name, name + "[]") for v in query.get(k, []) if v != ""]

        search = (one("search") or "").lower()
        filters = [f.lower() for v in many("filter") for f in v.split(",") if f]
        author = one("author")
        pipeline = one("pipeline_tag")
        library = many("library")
        gated = one("gated")
        sort = one("sort") or None
        direction = one("direction")
        limit_s = one("limit")
        try:
            limit = int(limit_s) if limit_s else None
        except ValueError as exc:
            raise _HTTPError(400, "BadRequest", f"Invalid limit: {limit_s}") from exc

        with self._lock:
            repos = [
                r
                for (t, _), r in self._repos.items()
                if t == repo_type and (not r.private or (token is not None and token in r.tokens))
            ]
            snapshot = [(r, r.head) for r in repos]
        out: list[tuple[_Repo, _Commit]] = []
        for r, c in snapshot:
            if search and search not in r.repo_id.lower():
                continue
            if author and (r.author or "").lower() != author.lower():
                continue
            if pipeline and r.pipeline_tag != pipeline:
                continue
            if library and (r.library_name or "").lower() not in {x.lower() for x in library}:
                continue
            if gated is not None and bool(r.gated) != (gated.lower() in ("true", "1")):
                continue
            facets = {t.lower() for t in self._all_tags(r, c)} | {r.repo_id.lower()}
            if any(f not in facets for f in filters):
                continue
            out.append((r, c))

        keys: dict[str, Callable[[tuple[_Repo, _Commit]], Any]] = {
            "downloads": lambda rc: rc[0].downloads,
            "likes": lambda rc: rc[0].likes,
            "trendingScore": lambda rc: rc[0].trending_score if rc[0].trending_score is not None else rc[0].likes,
            "trending": lambda rc: rc[0].trending_score if rc[0].trending_score is not None else rc[0].likes,
            "lastModified": lambda rc: rc[0].last_modified or rc[1].date,
            "last_modified": lambda rc: rc[0].last_modified or rc[1].date,
            "createdAt": lambda rc: rc[0].created_at,
            "created_at": lambda rc: rc[0].created_at,
            "id": lambda rc: rc[0].repo_id.lower(),
            "modelId": lambda rc: rc[0].repo_id.lower(),
        }
        if sort is not None:
            if sort not in keys:
                raise _HTTPError(400, "BadRequest", f"Invalid sort parameter: {sort}")
            descending = direction not in ("1", "asc", "ascending")
            out.sort(key=lambda rc: rc[0].repo_id)  # stable tie-break
            out.sort(key=keys[sort], reverse=descending)
        else:
            out.sort(key=lambda rc: rc[0].created_at, reverse=True)

        offset = self._cursor_offset(query)
        size = max(1, min(limit if limit else self.page_size, self.page_size))
        page = out[offset : offset + size]
        full = (one("full") or "").lower() in ("true", "1")
        expand = many("expand")
        card = (one("cardData") or "").lower() in ("true", "1")
        config = (one("config") or "").lower() in ("true", "1")
        items = [self._list_item(r, c, full=full, expand=expand, card=card, config=config) for r, c in page]
        headers = {}
        if offset + size < len(out):
            headers["Link"] = self._next_link(h, raw_path, query, offset + size)
        return self._send_json(h, method, items, headers=headers)

    def _all_tags(self, r: _Repo, c: _Commit) -> list[str]:
        tags = list(r.tags)
        extra = [r.library_name, r.pipeline_tag]
        if any(p.endswith(".safetensors") for p in c.files):
            extra.append("safetensors")
        card = _card_data(c)
        lic = card.get("license") if isinstance(card, dict) else None
        if isinstance(lic, str):
            extra.append(f"license:{lic}")
        for t in extra:
            if t and t not in tags:
                tags.append(t)
        return tags

    def _list_item(
        self, r: _Repo, c: _Commit, *, full: bool, expand: list[str], card: bool, config: bool
    ) -> dict[str, Any]:
        everything = self._info_fields(r, c, blobs=False)
        if expand:
            item = {"_id": everything["_id"], "id": r.repo_id}
            for name in expand:
                if name in everything:
                    item[name] = everything[name]
            return item
        base: tuple[str, ...] = (
            "_id",
            "id",
            "likes",
            "trendingScore",
            "private",
            "downloads",
            "tags",
            "pipeline_tag",
            "library_name",
            "createdAt",
            "modelId",
        )
        if full:
            base += ("author", "sha", "lastModified", "gated", "disabled", "siblings")
        item = {k: everything[k] for k in base if k in everything}
        if card and "cardData" in everything:
            item["cardData"] = everything["cardData"]
        if config and "config" in everything:
            item["config"] = everything["config"]
        if r.repo_type == "dataset":
            item.pop("pipeline_tag", None)
            item.pop("library_name", None)
            item.pop("modelId", None)
        return item

    def _info_fields(self, r: _Repo, c: _Commit, *, blobs: bool) -> dict[str, Any]:
        siblings = []
        for name in sorted(c.files):
            b = c.files[name]
            s: dict[str, Any] = {"rfilename": name}
            if blobs:
                s["blobId"] = b.git_sha1
                s["size"] = b.size
                if b.lfs:
                    s["lfs"] = {"sha256": b.sha256, "size": b.size, "pointerSize": b.pointer_size}
            siblings.append(s)
        info: dict[str, Any] = {
            "_id": r.uid,
            "id": r.repo_id,
            "modelId": r.repo_id,
            "author": r.author,
            "sha": c.sha,
            "lastModified": _iso(r.last_modified or c.date) if c is r.head else _iso(c.date),
            "private": r.private,
            "disabled": False,
            "gated": r.gated,
            "downloads": r.downloads,
            "likes": r.likes,
            "trendingScore": r.trending_score if r.trending_score is not None else r.likes,
            "tags": self._all_tags(r, c),
            "createdAt": _iso(r.created_at),
            "siblings": siblings,
            "spaces": [],
            "usedStorage": sum(b.size for b in c.files.values()),
        }
        if r.repo_type == "model":
            info["pipeline_tag"] = r.pipeline_tag
            info["library_name"] = r.library_name
        else:
            info.pop("modelId")
        card = _card_data(c)
        if card:
            info["cardData"] = card
        cfg = _config_summary(c)
        if cfg is not None:
            info["config"] = cfg
            if r.library_name == "transformers" and cfg.get("architectures"):
                info["transformersInfo"] = {
                    "auto_model": "AutoModel",
                    "pipeline_tag": r.pipeline_tag,
                    "processor": "AutoTokenizer",
                }
        st = _safetensors_summary(c)
        if st is not None:
            info["safetensors"] = st
        return info

    # ------------------------------------------------------------------ /api/models/{repo}[/revision/{rev}]
    def _model_info(
        self, h: _Handler, method: str, repo_type: str, repo_id: str, revision: str, query: dict[str, list[str]]
    ) -> int:
        repo = self._get_repo(h, repo_type, repo_id)
        commit = self._get_commit(repo, revision)
        blobs = (query.get("blobs") or [""])[0].lower() in ("true", "1")
        info = self._info_fields(repo, commit, blobs=blobs)
        expand = [v for k in ("expand", "expand[]") for v in query.get(k, [])]
        if expand:
            info = {"_id": info["_id"], "id": info["id"], **{k: info[k] for k in expand if k in info}}
        return self._send_json(h, method, info)

    # ------------------------------------------------------------------ tree / paths-info / refs / commits
    @staticmethod
    def _file_entry(path: str, b: _Blob) -> dict[str, Any]:
        e: dict[str, Any] = {"type": "file", "oid": b.git_sha1, "size": b.size, "path": path}
        if b.lfs:
            e["lfs"] = {"oid": b.sha256, "size": b.size, "pointerSize": b.pointer_size}
        return e

    @staticmethod
    def _dir_entry(path: str, commit: _Commit) -> dict[str, Any]:
        oid = hashlib.sha1(f"tree:{commit.sha}:{path}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": path}

    def _tree(
        self,
        h: _Handler,
        method: str,
        repo_type: str,
        repo_id: str,
        revision: str,
        sub: str,
        raw_path: str,
        query: dict[str, list[str]],
    ) -> int:
        repo = self._get_repo(h, repo_type, repo_id)
        commit = self._get_commit(repo, revision)
        recursive = (query.get("recursive") or ["false"])[0].lower() in ("true", "1")
        sub = sub.strip("/")
        prefix = sub + "/" if sub else ""
        if sub and sub in commit.files:
            raise _HTTPError(
                404, "EntryNotFound", f"{sub} is a file, not a folder", headers={"X-Repo-Commit": commit.sha}
            )
        names = [n for n in sorted(commit.files) if n.startswith(prefix)]
        if sub and not names:
            raise _HTTPError(
                404, "EntryNotFound", f'{sub} does not exist on "{revision}"', headers={"X-Repo-Commit": commit.sha}
            )
        dirs: set[str] = set()
        files: list[str] = []
        for n in names:
            rel = n[len(prefix) :]
            parts = rel.split("/")
            if any(part in ("", ".", "..") for part in n.split("/")):
                files.append(n)  # a hostile name (``../x``, ``/abs``): listed verbatim, no folders made up
                continue
            if len(parts) > 1:
                upto = len(parts) - 1 if recursive else 1
                for i in range(1, upto + 1):
                    dirs.add(prefix + "/".join(parts[:i]))
                if not recursive:
                    continue
            files.append(n)
        entries = [self._dir_entry(d, commit) for d in sorted(dirs)] + [
            self._file_entry(n, commit.files[n]) for n in files
        ]
        entries.sort(key=lambda e: (e["path"].count("/"), e["type"] != "directory", e["path"]))
        offset = self._cursor_offset(query)
        page = entries[offset : offset + self.tree_page_size]
        headers = {"X-Repo-Commit": commit.sha}
        if offset + self.tree_page_size < len(entries):
            headers["Link"] = self._next_link(h, raw_path, query, offset + self.tree_page_size)
        return self._send_json(h, method, page, headers=headers)

    def _paths_info(
        self, h: _Handler, method: str, repo_type: str, repo_id: str, revision: str, query: dict[str, list[str]]
    ) -> int:
        repo = self._get_repo(h, repo_type, repo_id)
        commit = self._get_commit(repo, revision)
        out = []
        for p in query.get("paths", []) + query.get("paths[]", []):
            p = p.strip("/")
            if p in commit.files:
                out.append(self._file_entry(p, commit.files[p]))
            elif p == "" or any(n.startswith(p + "/") for n in commit.files):
                out.append(self._dir_entry(p, commit))
        return self._send_json(h, method, out)

    def _refs(self, h: _Handler, method: str, repo_type: str, repo_id: str) -> int:
        repo = self._get_repo(h, repo_type, repo_id)
        with self._lock:
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo.branches.items()]
            tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags_refs.items()]
        return self._send_json(h, method, {"branches": branches, "converts": [], "tags": tags})

    def _commits(self, h: _Handler, method: str, repo_type: str, repo_id: str, revision: str) -> int:
        repo = self._get_repo(h, repo_type, repo_id)
        commit: _Commit | None = self._get_commit(repo, revision)
        out = []
        with self._lock:
            while commit is not None:
                out.append(
                    {
                        "id": commit.sha,
                        "title": commit.title,
                        "message": "",
                        "authors": [{"user": self.user}],
                        "date": _iso(commit.date),
                    }
                )
                commit = repo.commits.get(commit.parent) if commit.parent else None
        return self._send_json(h, method, out)

    # ------------------------------------------------------------------ /{repo}/resolve/{rev}/{path}
    def _resolve(self, h: _Handler, method: str, repo_type: str, repo_id: str, revision: str, file: str) -> int:
        repo = self._get_repo(h, repo_type, repo_id)
        commit = self._get_commit(repo, revision)
        blob = commit.files.get(file)
        if blob is None:
            raise _HTTPError(404, "EntryNotFound", f"Entry not found: {file}", headers={"X-Repo-Commit": commit.sha})
        self._check_gate(h, repo)

        fault = self._take_fault(route="resolve", method=method, repo_id=repo_id, path=file)
        if fault is not None and fault.kind == "error500":
            raise _HTTPError(500, None, "Internal Error - We're working hard to fix this as soon as possible!")
        if fault is not None and fault.kind == "rate_limit":
            raise _HTTPError(
                429, None, "Too Many Requests", headers={"Retry-After": str(fault.kw.get("retry_after", 1))}
            )
        if fault is not None and fault.kind == "status":
            raise _fault_status(fault)

        size = blob.size
        start, end = 0, size  # end exclusive
        status = 200
        rng = h.headers.get("Range")
        if rng:
            parsed = _parse_range(rng, size)
            if parsed is None:
                raise _HTTPError(
                    416,
                    None,
                    "Requested Range Not Satisfiable",
                    headers={"Content-Range": f"bytes */{size}", "X-Repo-Commit": commit.sha},
                )
            start, end = parsed
            status = 206
        length = end - start
        h._hub_record(status)
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(length))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("X-Repo-Commit", commit.sha)
        if blob.lfs:
            etag = f'"{blob.sha256}"'
            h.send_header("ETag", etag)
            h.send_header("X-Linked-Etag", etag)
            h.send_header("X-Linked-Size", str(size))
        else:
            h.send_header("ETag", f'"{blob.git_sha1}"')
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        h.send_header("Content-Disposition", f'inline; filename="{quote(file.rsplit("/", 1)[-1])}"')
        if fault is not None and fault.kind in ("drop", "truncate", "stall"):
            h.send_header("Connection", "close")
        h.end_headers()
        if method == "HEAD":
            if fault is not None and fault.kind == "drop":
                h.close_connection = True
            return status
        self._stream(h, repo_id, file, blob, start, end, fault)
        return status

    def _count(self, repo_id: str, file: str, n: int) -> None:
        with self._bytes_cond:
            key = (repo_id, file)
            self._bytes[key] = self._bytes.get(key, 0) + n
            self._bytes_cond.notify_all()

    def _stream(
        self, h: _Handler, repo_id: str, file: str, blob: _Blob, start: int, end: int, fault: _Fault | None
    ) -> None:
        length = end - start
        cut: int | None = None
        flip: tuple[int, int] | None = None
        rate: float | None = None
        kind = fault.kind if fault is not None else None
        kw = fault.kw if fault is not None else {}
        if kind in ("drop", "truncate", "stall"):
            default = 0 if kind == "stall" else length // 2
            cut = max(0, min(int(kw.get("after_bytes", default)), length))
        elif kind == "corrupt":
            at = kw.get("offset")
            at = blob.size // 2 if at is None else int(at)
            if not (start <= at < end):
                at = start
            flip = (at, int(kw.get("count", 1)))
            if kw.get("bytes_per_sec") is not None:
                rate = float(kw["bytes_per_sec"])
        elif kind == "slow":
            rate = float(kw.get("bytes_per_sec", 64 * 1024))

        if kind in ("slow", "stall") or rate is not None:
            release = self._stall_event()
            try:
                self._write_body(h, repo_id, file, blob, start, end, fault, cut, flip, rate, release)
            finally:
                self._stall_done(release)
        else:
            self._write_body(h, repo_id, file, blob, start, end, fault, cut, flip, rate, None)

    def _write_body(
        self,
        h: _Handler,
        repo_id: str,
        file: str,
        blob: _Blob,
        start: int,
        end: int,
        fault: _Fault | None,
        cut: int | None,
        flip: tuple[int, int] | None,
        rate: float | None,
        release: threading.Event | None,
    ) -> None:
        kind = fault.kind if fault is not None else None
        sent = 0
        pos = start
        t0 = time.monotonic()
        chunk_size = _CHUNK if rate is None else max(1, min(_CHUNK, int(rate // 20) or 1))
        for chunk in blob.read(start, end):
            for i in range(0, len(chunk), chunk_size):
                piece = chunk[i : i + chunk_size]
                if cut is not None and sent + len(piece) > cut:
                    piece = piece[: cut - sent]
                if flip is not None:
                    lo, hi = max(flip[0], pos), min(flip[0] + flip[1], pos + len(piece))
                    if lo < hi:
                        buf = bytearray(piece)
                        for j in range(lo - pos, hi - pos):
                            buf[j] ^= 0xFF
                        piece = bytes(buf)
                if piece:
                    # counted before the write so a client that has the bytes sees them counted;
                    # taken back when the write fails
                    self._count(repo_id, file, len(piece))
                    try:
                        h.wfile.write(piece)
                    except OSError:
                        self._count(repo_id, file, -len(piece))
                        raise
                    sent += len(piece)
                    pos += len(piece)
                if cut is not None and sent >= cut:
                    self._end_cut(h, kind, fault, release)
                    return
                if rate is not None:
                    ahead = sent / rate - (time.monotonic() - t0)
                    if ahead > 0 and release is not None:
                        if release.wait(ahead):
                            rate = None  # released: finish at full speed
        if cut is not None:  # empty range
            self._end_cut(h, kind, fault, release)

    def _end_cut(self, h: _Handler, kind: str | None, fault: _Fault | None, release: threading.Event | None) -> None:
        h.close_connection = True
        try:
            h.wfile.flush()
        except OSError:
            return
        if kind == "stall" and fault is not None and release is not None:  # kind is the fault's kind
            release.wait(float(fault.kw.get("timeout", 30)))
        elif kind == "drop":
            time.sleep(0.05)  # let the client read what was sent before the reset
            try:
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        # "truncate": a clean close right away (socketserver shuts the socket down after the handler)


def _fault_status(fault: _Fault) -> _HTTPError:
    status = int(fault.kw.get("status", 410))
    message = str(fault.kw.get("message", {410: "Gone", 418: "I'm a teapot"}.get(status, "Error")))
    return _HTTPError(status, None, message)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse one ``bytes=`` range into ``(start, end_exclusive)``; None when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(0, size - n), size
        s = int(first)
        e = int(last) + 1 if last else size
    except ValueError:
        return None
    e = min(e, size)
    if s >= size or s >= e:
        if size == 0 and s == 0:
            return 0, 0
        return None
    return s, e


def _render_card(repo_id: str, card: str | Mapping[str, Any]) -> str:
    if isinstance(card, str):
        return card
    import yaml

    front = yaml.safe_dump(dict(card), sort_keys=False).strip()
    return f"---\n{front}\n---\n\n# {repo_id}\n\nA test model served by the hubmgr Hub double.\n"


def _memo(fn: Callable[[_Commit], Any]) -> Callable[[_Commit], Any]:
    def wrapper(c: _Commit) -> Any:
        if fn.__name__ not in c.memo:
            c.memo[fn.__name__] = fn(c)
        return c.memo[fn.__name__]

    wrapper.__name__ = fn.__name__
    return wrapper


@_memo
def _card_data(c: _Commit) -> dict[str, Any]:
    blob = c.files.get("README.md")
    if blob is None or blob.size > 1 << 20:
        return {}
    text = blob.head(blob.size).decode("utf-8", "replace")
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    try:
        import yaml

        data = yaml.safe_load(text[3:end])
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


@_memo
def _config_summary(c: _Commit) -> dict[str, Any] | None:
    blob = c.files.get("config.json")
    if blob is None or blob.size > 1 << 20:
        return None
    try:
        cfg = json.loads(blob.head(blob.size))
    except ValueError:
        return None
    if not isinstance(cfg, dict):
        return None
    out = {k: cfg[k] for k in ("architectures", "model_type") if k in cfg}
    return out


_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
}


@_memo
def _safetensors_summary(c: _Commit) -> dict[str, Any] | None:
    params: dict[str, int] = {}
    found = False
    for name, blob in c.files.items():
        if not name.endswith(".safetensors") or blob.size < 8:
            continue
        try:
            (n,) = struct.unpack("<Q", blob.head(8))
            if n > 100 * 1024 * 1024 or 8 + n > blob.size:
                continue
            header = json.loads(blob.head(8 + n)[8:])
        except (ValueError, struct.error):
            continue
        found = True
        for key, meta in header.items():
            if key == "__metadata__" or not isinstance(meta, dict):
                continue
            dtype = str(meta.get("dtype", "F32"))
            params[dtype] = params.get(dtype, 0) + math.prod(meta.get("shape") or [])
    if not found:
        return None
    return {"parameters": params, "total": sum(params.values())}
