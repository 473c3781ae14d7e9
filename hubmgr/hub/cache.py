"""The local Hugging Face cache: list, delete, prune, verify, and find a downloaded model.

Listing and deletion go through huggingface_hub's ``scan_cache_dir`` / ``delete_revisions``, so we agree
with ``hf cache`` on sizes and never delete a blob that another revision still uses. Verify re-hashes the
blobs: an LFS blob is named by its sha256, a small file by its git blob sha1, so the name is the checksum.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hubmgr.config import Settings, get_settings
from hubmgr.errors import CacheError, NotCachedError, UsageError
from hubmgr.hub.events import EventCallback, VerifyProgress

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import HFCacheInfo

__all__ = [
    "CachedRepo",
    "CachedRevision",
    "VerifyResult",
    "delete_repo",
    "delete_revision",
    "list_cached",
    "prune",
    "resolve_local",
    "verify",
]

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HEX_RE = re.compile(r"^[0-9a-f]{4,40}$")


@dataclass
class CachedRevision:
    """One snapshot of a cached repo.

    Attributes:
        commit: the commit hash (the snapshot folder's name).
        refs: branches/tags pointing at it (empty: a detached revision that ``prune`` removes).
        size_on_disk: bytes of the blobs it uses.
        path: the snapshot folder.
        last_modified: newest blob of the snapshot.
        nb_files: files in the snapshot.
    """

    commit: str
    refs: list[str]
    size_on_disk: int
    path: Path
    last_modified: _dt.datetime | None
    nb_files: int = 0


@dataclass
class CachedRepo:
    """One cached repo.

    Attributes:
        repo_id: ``org/name``.
        repo_type: ``model``, ``dataset`` or ``space``.
        size_on_disk: bytes of all its blobs (shared blobs counted once).
        last_accessed: last time a blob was read (atime; may lag on ``relatime`` mounts).
        last_modified: last time a blob was written.
        path: the repo folder in the cache.
        revisions: its snapshots, newest first.
    """

    repo_id: str
    repo_type: str
    size_on_disk: int
    last_accessed: _dt.datetime | None
    last_modified: _dt.datetime | None
    path: Path
    revisions: list[CachedRevision] = field(default_factory=list)

    @property
    def refs(self) -> dict[str, str]:
        """ref name -> commit."""
        return {ref: rev.commit for rev in self.revisions for ref in rev.refs}


@dataclass
class VerifyResult:
    """The check of one cached file.

    Attributes:
        repo_id: the repo.
        commit: the snapshot holding the file.
        path: the file's path in the repo.
        ok: the bytes match the checksum the blob is named by (or the file is present when the blob name
            is not a checksum).
        detail: what is wrong (empty when ok), or a note such as "not checkable".
    """

    repo_id: str
    commit: str
    path: str
    ok: bool
    detail: str = ""


def _ts(value: float | None) -> _dt.datetime | None:
    if value is None:
        return None
    return _dt.datetime.fromtimestamp(value, tz=_dt.timezone.utc)


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else get_settings()


def _cache_dir(settings: Settings) -> Path:
    return Path(settings.hub_cache).expanduser()


def _scan(settings: Settings) -> "HFCacheInfo | None":
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    cache = _cache_dir(settings)
    try:
        return scan_cache_dir(cache)
    except CacheNotFound:
        return None
    except ValueError as exc:  # the cache path is a file
        raise CacheError(f"The Hugging Face cache {cache} is not a folder.") from exc
    except OSError as exc:
        raise CacheError(f"Cannot read the Hugging Face cache {cache}: {exc.strerror or exc}.") from exc


def list_cached(settings: Settings | None = None) -> list[CachedRepo]:
    """List what the shared cache holds.

    Args:
        settings: where the cache is (default: from the environment).

    Returns:
        Repos sorted by repo id (models first, then datasets and spaces), each with its revisions
        (newest first). An absent cache gives an empty list. Repos huggingface_hub finds corrupt are left out.

    Raises:
        CacheError: the cache cannot be read.
    """
    info = _scan(_settings(settings))
    if info is None:
        return []
    order = {"model": 0, "dataset": 1, "space": 2}
    out = []
    for repo in info.repos:
        revisions = [
            CachedRevision(
                commit=rev.commit_hash,
                refs=sorted(rev.refs),
                size_on_disk=rev.size_on_disk,
                path=Path(rev.snapshot_path),
                last_modified=_ts(rev.last_modified),
                nb_files=len(rev.files),
            )
            for rev in repo.revisions
        ]
        revisions.sort(key=lambda r: (r.last_modified or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)), reverse=True)
        out.append(
            CachedRepo(
                repo_id=repo.repo_id,
                repo_type=repo.repo_type,
                size_on_disk=repo.size_on_disk,
                last_accessed=_ts(repo.last_accessed),
                last_modified=_ts(repo.last_modified),
                path=Path(repo.repo_path),
                revisions=revisions,
            )
        )
    out.sort(key=lambda r: (order.get(r.repo_type, 9), r.repo_id.lower()))
    return out


def _split_type(repo_id: str) -> tuple[str, str]:
    """Accept ``org/name`` or ``model/org/name``/``dataset/...``/``space/...`` (as ``hf cache`` prints them)."""
    for prefix in ("model", "dataset", "space"):
        for sep in (f"{prefix}/", f"{prefix}s/"):
            if repo_id.startswith(sep) and repo_id.count("/") >= 2:
                return prefix, repo_id[len(sep):]
    return "model", repo_id


def _find_repo(info: "HFCacheInfo | None", repo_id: str):
    repo_type, rid = _split_type(repo_id.strip())
    if info is not None:
        for repo in info.repos:
            if repo.repo_id == rid and repo.repo_type == repo_type:
                return repo
    raise NotCachedError(f"{rid} is not in the cache.")


def delete_repo(repo_id: str, *, settings: Settings | None = None) -> int:
    """Delete a cached repo: all its revisions, refs and blobs.

    Args:
        repo_id: ``org/name``.
        settings: where the cache is.

    Returns:
        Bytes freed.

    Raises:
        NotCachedError: the repo is not in the cache.
        CacheError: it could not be deleted.
    """
    s = _settings(settings)
    repo = _find_repo(_scan(s), repo_id)
    freed = repo.size_on_disk
    try:
        shutil.rmtree(repo.repo_path)
    except OSError as exc:
        raise CacheError(f"Could not delete {repo.repo_path}: {exc.strerror or exc}.") from exc
    shutil.rmtree(_cache_dir(s) / ".locks" / repo.repo_path.name, ignore_errors=True)
    return freed


def _match_revision(repo, revision: str):
    """A revision of a cached repo by full commit, unique commit prefix, or ref name."""
    revision = revision.strip()
    by_ref = [r for r in repo.revisions if revision in r.refs]
    if by_ref:
        return by_ref[0]
    if _HEX_RE.match(revision):
        hits = [r for r in repo.revisions if r.commit_hash.startswith(revision)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UsageError(f"'{revision}' matches {len(hits)} cached revisions of {repo.repo_id}; give more characters.")
    raise NotCachedError(f"Revision '{revision}' of {repo.repo_id} is not in the cache.")


def delete_revision(repo_id: str, commit: str, *, settings: Settings | None = None) -> int:
    """Delete one cached revision; blobs that other revisions still use survive.

    Deleting the last revision removes the whole repo folder (as ``hf cache`` does).

    Args:
        repo_id: ``org/name``.
        commit: full commit, unique prefix (7+ hex) or a ref name such as ``main``.
        settings: where the cache is.

    Returns:
        Bytes freed.

    Raises:
        NotCachedError: the repo or revision is not in the cache.
        UsageError: the prefix matches several revisions.
    """
    s = _settings(settings)
    info = _scan(s)
    repo = _find_repo(info, repo_id)
    rev = _match_revision(repo, commit)
    strategy = info.delete_revisions(rev.commit_hash)  # type: ignore[union-attr]
    freed = strategy.expected_freed_size
    try:
        strategy.execute()
    except OSError as exc:
        raise CacheError(f"Could not delete revision {rev.commit_hash[:12]} of {repo.repo_id}: {exc}.") from exc
    _drop_tree_cache(repo.repo_path, rev.commit_hash)
    return freed


def _drop_tree_cache(repo_path: Path, commit: str) -> None:
    try:
        (repo_path / "trees" / f"{commit}.json").unlink()
    except OSError:
        pass


def prune(settings: Settings | None = None, *, dry_run: bool = False) -> int:
    """Delete every cached revision that no ref (branch or tag) points to.

    Args:
        settings: where the cache is.
        dry_run: only compute what would be freed.

    Returns:
        Bytes freed (or that would be freed).
    """
    return prune_detailed(settings, dry_run=dry_run)[0]


def prune_detailed(settings: Settings | None = None, *, dry_run: bool = False) -> tuple[int, list[tuple[str, str]]]:
    """Like :func:`prune`, also returning the (repo_id, commit) pairs removed."""
    s = _settings(settings)
    info = _scan(s)
    if info is None:
        return 0, []
    detached = [(repo, rev) for repo in info.repos for rev in repo.revisions if not rev.refs]
    if not detached:
        return 0, []
    strategy = info.delete_revisions(*(rev.commit_hash for _, rev in detached))
    if not dry_run:
        try:
            strategy.execute()
        except OSError as exc:
            raise CacheError(f"Could not prune the cache: {exc}.") from exc
        for repo, rev in detached:
            _drop_tree_cache(repo.repo_path, rev.commit_hash)
    pairs = sorted((repo.repo_id, rev.commit_hash) for repo, rev in detached)
    return strategy.expected_freed_size, pairs


def hash_blob(path: Path) -> tuple[str | None, str]:
    """Re-hash a blob by the rule its name says.

    Returns:
        (digest or None when the name is not a checksum, kind: "sha256" | "git-sha1" | "unknown").
    """
    name = path.name
    if _SHA256_RE.match(name):
        h = hashlib.sha256()
        kind = "sha256"
    elif _COMMIT_RE.match(name):
        h = hashlib.sha1()
        h.update(b"blob %d\0" % path.stat().st_size)
        kind = "git-sha1"
    else:
        return None, "unknown"
    with open(path, "rb") as f:
        while True:
            block = f.read(4 * 1024 * 1024)
            if not block:
                break
            h.update(block)
    return h.hexdigest(), kind


def verify(
    repo_id: str | None = None,
    *,
    on_event: EventCallback | None = None,
    settings: Settings | None = None,
) -> list[VerifyResult]:
    """Re-hash what the cache holds and report files whose bytes do not match their checksum.

    Each blob is hashed once, even when several revisions use it.

    Args:
        repo_id: one repo, or None for the whole cache.
        on_event: gets a :class:`~hubmgr.hub.events.VerifyProgress` per file.
        settings: where the cache is.

    Returns:
        One :class:`VerifyResult` per snapshot file (``ok`` False for a mismatch, a missing blob or an
        unreadable one).

    Raises:
        NotCachedError: ``repo_id`` is not in the cache.
    """
    s = _settings(settings)
    repos = _repo_folders(s, repo_id)
    results: list[VerifyResult] = []
    seen: dict[Path, tuple[bool, str]] = {}
    for rid, repo_path in repos:
        snaps = repo_path / "snapshots"
        try:
            commits = sorted(p for p in snaps.iterdir() if p.is_dir())
        except OSError:
            commits = []
        for snap in commits:
            for file_path in sorted(snap.rglob("*")):
                if file_path.is_dir() and not file_path.is_symlink():
                    continue
                rel = file_path.relative_to(snap).as_posix()
                ok, detail = _check_file(file_path, repo_path, seen)
                results.append(VerifyResult(repo_id=rid, commit=snap.name, path=rel, ok=ok, detail=detail))
                if on_event is not None:
                    on_event(VerifyProgress(repo_id=rid, path=rel, ok=ok, detail=detail))
    return results


def _repo_folders(s: Settings, repo_id: str | None) -> list[tuple[str, Path]]:
    cache = _cache_dir(s)
    if repo_id is not None:
        repo_type, rid = _split_type(repo_id.strip())
        folder = cache / "--".join([f"{repo_type}s", *rid.split("/")])
        if not (folder / "snapshots").is_dir():
            raise NotCachedError(f"{rid} is not in the cache.")
        return [(rid, folder)]
    out = []
    try:
        entries = sorted(cache.iterdir())
    except OSError:
        return []
    for folder in entries:
        name = folder.name
        if "--" not in name or not (folder / "snapshots").is_dir():
            continue
        prefix, rest = name.split("--", 1)
        rid = rest.replace("--", "/")
        out.append((rid if prefix == "models" else f"{prefix[:-1]}/{rid}", folder))
    return out


def _check_file(file_path: Path, repo_path: Path, seen: dict[Path, tuple[bool, str]]) -> tuple[bool, str]:
    if file_path.is_symlink():
        blob = Path(os.path.abspath(file_path.parent / os.readlink(file_path)))
    else:
        blob = file_path
    if not blob.exists():
        return False, "the blob it points to is missing"
    if blob in seen:
        return seen[blob]
    try:
        digest, kind = hash_blob(blob)
    except OSError as exc:
        outcome = (False, f"cannot read it: {exc.strerror or exc}")
    else:
        if digest is None:
            outcome = (True, "not checkable (the blob name is not a checksum)")
        elif digest != blob.name:
            outcome = (False, f"{kind} mismatch: the blob is named {blob.name[:12]}... but its bytes hash to {digest[:12]}...")
        else:
            outcome = (True, "")
    seen[blob] = outcome
    return outcome


def resolve_local(
    repo_id_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    settings: Settings | None = None,
) -> Path:
    """Find a model on disk: a local folder as is, else the cached snapshot of a repo.

    Args:
        repo_id_or_path: a folder path, or a repo id.
        revision: branch, tag, commit or commit prefix (default ``main``; when ``main`` is not cached and
            there is exactly one snapshot, that one).
        settings: where the cache is.

    Returns:
        The folder (a local one, or ``.../snapshots/{commit}``).

    Raises:
        NotCachedError: the repo (at that revision) is not downloaded.
    """
    text = os.fspath(repo_id_or_path)
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    s = _settings(settings)
    repo_type, rid = _split_type(text.strip())
    if text.startswith(("/", "./", "../", "~")) or os.sep != "/" and os.sep in text:
        raise NotCachedError(f"The folder {text} does not exist.")
    folder = _cache_dir(s) / "--".join([f"{repo_type}s", *rid.split("/")])
    snaps = folder / "snapshots"
    hint = f"run `hubmgr download {rid}{f' --revision {revision}' if revision else ''}`"
    rev = revision or "main"
    commit: str | None = None
    if _COMMIT_RE.match(rev):
        commit = rev
    else:
        ref = folder / "refs" / rev
        try:
            refs_root = os.path.abspath(folder / "refs")
            if os.path.commonpath([os.path.abspath(ref), refs_root]) == refs_root and ref.is_file():
                commit = ref.read_text().strip()
        except (OSError, ValueError):
            commit = None
        if commit is None and _HEX_RE.match(rev) and len(rev) >= 7 and snaps.is_dir():
            hits = [p.name for p in snaps.iterdir() if p.name.startswith(rev)]
            if len(hits) == 1:
                commit = hits[0]
        if commit is None and revision is None and snaps.is_dir():
            only = [p for p in snaps.iterdir() if p.is_dir()]
            if len(only) == 1:
                commit = only[0].name
    if commit and (snaps / commit).is_dir() and any((snaps / commit).iterdir()):
        return snaps / commit
    if revision:
        raise NotCachedError(f"{rid} at revision '{revision}' is not downloaded; {hint}.")
    raise NotCachedError(f"{rid} is not downloaded; {hint}.")
