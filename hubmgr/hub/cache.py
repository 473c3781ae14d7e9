"""The local Hugging Face cache: list, delete, prune, verify, repair, and find a downloaded model.

Listing goes through huggingface_hub's ``scan_cache_dir``, so we agree with ``hf cache`` on sizes, and a
blob that another revision still uses is never deleted. On top of it hubmgr tells a complete snapshot from
one a download left half-done (:func:`snapshot_status`: the files the revision should hold, from the
manifest hubmgr writes at download time, or the revision's listing), counts the partial downloads
(``blobs/*.incomplete``), and never deletes what a live download holds. Verify re-hashes the blobs: an LFS
blob is named by its sha256, a small file by its git blob sha1, so the name is the checksum; a file the
revision lists but the snapshot lacks fails too. Repair (:func:`prepare_repair`, :func:`repair`) removes
what verify found damaged, checking with the Hub first, so that a download of exactly those files fetches
them again.

Where things lie in the cache, and which snapshot a revision names, is :mod:`hubmgr.hub.layout`'s business.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import glob
import hashlib
import logging
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from hubmgr.config import Settings, get_settings
from hubmgr.errors import (
    CacheError,
    HubmgrError,
    HubUnreachableError,
    LocalPathError,
    NotCachedError,
    RepoBusyError,
    UnsafePathError,
    UsageError,
)
from hubmgr.hub import download as _dl
from hubmgr.hub import layout
from hubmgr.hub.events import EventCallback, VerifyProgress
from hubmgr.hub.files import is_pickle, select_files

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import CachedRepoInfo, HFCacheInfo

__all__ = [
    "CachedRepo",
    "CachedRevision",
    "PartialFile",
    "PruneResult",
    "RepairPlan",
    "RepairResult",
    "SnapshotStatus",
    "VerifyResult",
    "delete_repo",
    "delete_revision",
    "list_cached",
    "prune",
    "prune_cache",
    "prepare_repair",
    "repair",
    "resolve_local",
    "snapshot_status",
    "verify",
]

logger = logging.getLogger(__name__)

_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_INCOMPLETE = ".incomplete"


@dataclass
class SnapshotStatus:
    """Whether a snapshot holds every file of its revision.

    Attributes:
        expected_files: how many files the snapshot should hold (None: unknown, nothing to compare with).
        missing_files: repo paths it should hold but lacks, sorted.
        missing_bytes: their total size.
        resumable_bytes: how much of them partial downloads (``blobs/{blob}.incomplete``) already hold; a
            download resumes from there.
        source: where the expected list comes from: ``hubmgr`` (the manifest hubmgr writes when it
            downloads: what was asked for), ``listing`` (the revision's listing in ``trees/``, safetensors-only
            selection), ``hub`` (the same, asked from the Hub), or ``unknown``.
    """

    expected_files: int | None = None
    missing_files: list[str] = field(default_factory=list)
    missing_bytes: int = 0
    resumable_bytes: int = 0
    source: str = "unknown"

    @property
    def complete(self) -> bool:
        return not self.missing_files


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
        complete: False when it lacks files of its revision (a download that did not finish).
        missing_files: those files (repo paths), sorted.
        missing_bytes: their total size.
        resumable_bytes: how much of them partial downloads already hold (a download resumes there).
    """

    commit: str
    refs: list[str]
    size_on_disk: int
    path: Path
    last_modified: _dt.datetime | None
    nb_files: int = 0
    complete: bool = True
    missing_files: list[str] = field(default_factory=list)
    missing_bytes: int = 0
    resumable_bytes: int = 0


@dataclass
class CachedRepo:
    """One cached repo.

    Attributes:
        repo_id: ``org/name``.
        repo_type: ``model``, ``dataset`` or ``space``.
        size_on_disk: bytes of all its complete blobs (shared blobs counted once; partial files not).
        last_accessed: last time a blob was read (atime; may lag on ``relatime`` mounts).
        last_modified: last time a blob was written.
        path: the repo folder in the cache.
        revisions: its snapshots, newest first.
        partial_bytes: bytes of partial downloads (``blobs/*.incomplete``), resumable or orphaned.
        partial_files: how many partial files.
        downloading: a download (hubmgr's or huggingface_hub's) holds the repo right now.
    """

    repo_id: str
    repo_type: str
    size_on_disk: int
    last_accessed: _dt.datetime | None
    last_modified: _dt.datetime | None
    path: Path
    revisions: list[CachedRevision] = field(default_factory=list)
    partial_bytes: int = 0
    partial_files: int = 0
    downloading: bool = False

    @property
    def refs(self) -> dict[str, str]:
        """ref name -> commit."""
        return {ref: rev.commit for rev in self.revisions for ref in rev.refs}

    @property
    def complete(self) -> bool:
        """Every revision holds all its files."""
        return all(rev.complete for rev in self.revisions)


@dataclass
class PartialFile:
    """A partial download in a repo's ``blobs/`` folder.

    Attributes:
        repo_id: the repo (``dataset/...`` or ``space/...`` for those kinds).
        path: the ``.incomplete`` file.
        size: its bytes.
        resumable: named ``{blob}.incomplete``, so a download of that blob resumes it; False for the
            ``{blob}.{random}.incomplete`` files huggingface_hub can leave behind, which nothing resumes.
    """

    repo_id: str
    path: Path
    size: int
    resumable: bool


@dataclass
class PruneResult:
    """What :func:`prune_cache` deleted (or, with ``dry_run``, would delete).

    Attributes:
        revisions: (repo_id, commit) of the revisions deleted, sorted.
        partials: the partial files deleted (only with ``incomplete``).
        revision_bytes: bytes the deleted revisions freed.
        partial_bytes: bytes the deleted partial files freed.
        kept_partial_bytes: bytes of partial files left in place (not asked for, or held by a download).
        kept_incomplete: (repo_id, commit) of detached revisions left because they are incomplete (a
            download to resume); ``incomplete=True`` deletes them.
        busy: repo ids left alone because a download is running on them.
        dry_run: nothing was deleted.
    """

    revisions: list[tuple[str, str]] = field(default_factory=list)
    partials: list[PartialFile] = field(default_factory=list)
    revision_bytes: int = 0
    partial_bytes: int = 0
    kept_partial_bytes: int = 0
    kept_incomplete: list[tuple[str, str]] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def freed_bytes(self) -> int:
        return self.revision_bytes + self.partial_bytes


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
        missing: the revision lists the file but the snapshot lacks it.
    """

    repo_id: str
    commit: str
    path: str
    ok: bool
    detail: str = ""
    missing: bool = False


def _ts(value: float | None) -> _dt.datetime | None:
    if value is None:
        return None
    return _dt.datetime.fromtimestamp(value, tz=_dt.timezone.utc)


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else get_settings()


def _delete_error(exc: OSError, settings: Settings, what: str) -> HubmgrError:
    """A failed delete: the environment's error when the cache is read-only, else a cache error."""
    import errno

    if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return layout.cache_path_error(exc, settings)
    return CacheError(f"{what}: {exc.strerror or exc}.")


def _scan(settings: Settings) -> "HFCacheInfo | None":
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    layout.check_cache_root(settings)
    cache = layout.hub_cache_dir(settings)
    try:
        return scan_cache_dir(cache)
    except CacheNotFound:
        return None
    except ValueError as exc:  # the cache path is a file
        raise LocalPathError(f"The Hugging Face cache {layout.cache_label(settings)} is a file, not a folder.") from exc
    except OSError as exc:
        raise CacheError(f"Cannot read the Hugging Face cache {cache}: {exc.strerror or exc}.") from exc


# --- what a snapshot should hold --------------------------------------------------------------------
def _expected_files(
    storage: Path, commit: str, *, repo_id: str | None = None, settings: Settings | None = None, online: bool = False
) -> tuple[list[_dl.RemoteFile] | None, str]:
    """The files a snapshot should hold, and where that list comes from (see :class:`SnapshotStatus`).

    The one rule for ``ls``, the TUI and ``verify``: hubmgr's manifest (what its downloads of that commit
    asked for); else the revision's listing (``trees/{commit}.json``, or the Hub's when ``online``) with the
    default selection (safetensors only: pickle weights are not expected).
    """
    recorded = _dl.read_manifest(storage, commit)
    if recorded is not None:
        return recorded, "hubmgr"
    listing = _dl.read_tree_cache(storage, commit)
    source = "listing"
    if listing is None and online and repo_id and settings is not None and not settings.offline:
        try:
            listing = _dl.list_remote_files(repo_id, commit, settings=settings)
        except HubmgrError as exc:
            logger.info("could not ask the Hub for the files of %s at %s: %s", repo_id, commit[:12], exc)
            listing = None
        else:
            source = "hub"
            _dl.write_tree_cache(storage, commit, listing)
    if listing is None:
        return None, "unknown"
    wanted, _ = select_files([rf.path for rf in listing])
    keep = set(wanted)
    return [rf for rf in listing if rf.path in keep], source


def _status_of(storage: Path, snap: Path, expected: list[_dl.RemoteFile] | None, source: str) -> SnapshotStatus:
    if expected is None:
        return SnapshotStatus(source=source)
    blobs = storage / "blobs"
    missing: list[_dl.RemoteFile] = []
    for rf in expected:
        try:
            pointer = layout.check_safe_name(rf.path, snap)
        except UnsafePathError:
            continue
        if not pointer.is_file():  # follows the link: the blob must be there
            missing.append(rf)
    resumable = sum(min(_size(blobs / f"{rf.blob}{_INCOMPLETE}"), rf.size) for rf in missing)
    return SnapshotStatus(
        expected_files=len(expected),
        missing_files=sorted(rf.path for rf in missing),
        missing_bytes=sum(rf.size for rf in missing),
        resumable_bytes=resumable,
        source=source,
    )


def snapshot_status(
    repo_id: str, commit: str, *, settings: Settings | None = None, online: bool = False
) -> SnapshotStatus:
    """Whether a cached snapshot holds every file of its revision (what ``ls`` and the TUI show).

    Args:
        repo_id: ``org/name`` (or ``dataset/org/name``).
        commit: the snapshot's full commit.
        settings: where the cache is.
        online: when hubmgr recorded no file list for it and the cache has no listing, ask the Hub.

    Returns:
        A :class:`SnapshotStatus` (``expected_files`` None when nothing tells what it should hold).

    Raises:
        NotCachedError: no such snapshot.
    """
    s = _settings(settings)
    repo_type, rid = layout.split_repo_type(repo_id)
    storage = layout.repo_dir(s, rid, repo_type)
    snap = layout.snapshot_dir(storage, commit)
    if not snap.is_dir():
        raise NotCachedError(f"Revision {commit[:12]} of {rid} is not in the cache.")
    expected, source = _expected_files(
        storage, commit, repo_id=rid if repo_type == "model" else None, settings=s, online=online
    )
    return _status_of(storage, snap, expected, source)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _partials(storage: Path, repo_id: str) -> list[PartialFile]:
    """The partial downloads in a repo's ``blobs/`` folder."""
    try:
        entries = sorted((storage / "blobs").glob(f"*{_INCOMPLETE}"))
    except OSError:
        return []
    out = []
    for path in entries:
        stem = path.name[: -len(_INCOMPLETE)]
        out.append(PartialFile(repo_id=repo_id, path=path, size=_size(path), resumable="." not in stem))
    return out


def _busy(hub_cache: Path, folder: str) -> bool:
    try:
        with _dl.repo_held_for_delete(hub_cache, folder, folder):
            return False
    except RepoBusyError:
        return True


def list_cached(settings: Settings | None = None) -> list[CachedRepo]:
    """List what the shared cache holds.

    Args:
        settings: where the cache is (default: from the environment).

    Returns:
        Repos sorted by repo id (models first, then datasets and spaces), each with its revisions
        (newest first, each marked complete or not), its partial downloads, and whether a download runs on
        it now. An absent cache gives an empty list. Repos huggingface_hub finds corrupt are left out,
        except a folder that holds only partial downloads (listed with no revision).

    Raises:
        LocalPathError: the cache path is a file or under one.
        CacheError: the cache cannot be read.
    """
    s = _settings(settings)
    info = _scan(s)
    if info is None:
        return []
    hub_cache = layout.hub_cache_dir(s)
    order = {"model": 0, "dataset": 1, "space": 2}
    out = []
    seen: set[Path] = set()
    for repo in info.repos:
        storage = Path(repo.repo_path)
        seen.add(storage)
        revisions = []
        for rev in repo.revisions:
            snap = Path(rev.snapshot_path)
            expected, source = _expected_files(storage, rev.commit_hash)
            st = _status_of(storage, snap, expected, source)
            revisions.append(
                CachedRevision(
                    commit=rev.commit_hash,
                    refs=sorted(rev.refs),
                    size_on_disk=rev.size_on_disk,
                    path=snap,
                    last_modified=_ts(rev.last_modified),
                    nb_files=len(rev.files),
                    complete=st.complete,
                    missing_files=st.missing_files,
                    missing_bytes=st.missing_bytes,
                    resumable_bytes=st.resumable_bytes,
                )
            )
        revisions.sort(key=lambda r: r.last_modified or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc), reverse=True)
        partials = _partials(storage, layout.repo_label(repo.repo_type, repo.repo_id))
        out.append(
            CachedRepo(
                repo_id=repo.repo_id,
                repo_type=repo.repo_type,
                size_on_disk=repo.size_on_disk,
                last_accessed=_ts(repo.last_accessed),
                last_modified=_ts(repo.last_modified),
                path=storage,
                revisions=revisions,
                partial_bytes=sum(p.size for p in partials),
                partial_files=len(partials),
                downloading=_busy(hub_cache, storage.name),
            )
        )
    for repo_type, rid, storage in layout.repo_folders(hub_cache):
        if storage in seen:
            continue
        partials = _partials(storage, layout.repo_label(repo_type, rid))
        if not partials:
            continue
        stamp = max((p.path.stat().st_mtime for p in partials if p.path.exists()), default=None)
        out.append(
            CachedRepo(
                repo_id=rid,
                repo_type=repo_type,
                size_on_disk=0,
                last_accessed=None,
                last_modified=_ts(stamp),
                path=storage,
                revisions=[],
                partial_bytes=sum(p.size for p in partials),
                partial_files=len(partials),
                downloading=_busy(hub_cache, storage.name),
            )
        )
    out.sort(key=lambda r: (order.get(r.repo_type, 9), r.repo_id.lower()))
    return out


def _find_repo(info: "HFCacheInfo | None", repo_id: str) -> "CachedRepoInfo":
    repo_type, rid = layout.split_repo_type(repo_id)
    if info is not None:
        for repo in info.repos:
            if repo.repo_id == rid and repo.repo_type == repo_type:
                return repo
    raise NotCachedError(f"{rid} is not in the cache.")


def _remove_lock_files(hub_cache: Path, folder: str) -> None:
    """Remove a deleted repo's blob lock files (hubmgr's own repo lock stays: a waiting download holds it)."""
    locks = layout.locks_dir(hub_cache, folder)
    try:
        entries = list(locks.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name != _dl.REPO_LOCK_NAME:
            try:
                entry.unlink()
            except OSError:
                pass


def delete_repo(repo_id: str, *, settings: Settings | None = None) -> int:
    """Delete a cached repo: all its revisions, refs, blobs and partial downloads.

    Args:
        repo_id: ``org/name``.
        settings: where the cache is.

    Returns:
        Bytes freed (partial downloads included).

    Raises:
        NotCachedError: the repo is not in the cache.
        CacheError: it could not be deleted, or a download is running on it (nothing deleted).
    """
    s = _settings(settings)
    hub_cache = layout.hub_cache_dir(s)
    repo_type, rid = layout.split_repo_type(repo_id)
    storage = hub_cache / layout.repo_folder_name(rid, repo_type)
    info = _scan(s)
    try:
        repo = _find_repo(info, repo_id)
        size: int = repo.size_on_disk
    except NotCachedError:
        if not _partials(storage, rid):  # a folder with only partial downloads is deleted too
            raise
        size = 0
    with _dl.repo_held_for_delete(hub_cache, storage.name, layout.repo_label(repo_type, rid)):
        freed = size + sum(p.size for p in _partials(storage, rid))
        try:
            shutil.rmtree(storage)
        except OSError as exc:
            raise _delete_error(exc, s, f"Could not delete {storage}") from exc
        _remove_lock_files(hub_cache, storage.name)
    return freed


def delete_revision(repo_id: str, commit: str, *, settings: Settings | None = None) -> int:
    """Delete one cached revision; blobs that other revisions still use survive.

    Deleting the last revision removes the whole repo folder, partial downloads included (as ``hf cache``
    does).

    Args:
        repo_id: ``org/name``.
        commit: a ref name such as ``main``, a full commit or a unique prefix (4+ hex), resolved by
            :func:`hubmgr.hub.layout.cached_commit`.
        settings: where the cache is.

    Returns:
        Bytes freed.

    Raises:
        NotCachedError: the repo or revision is not in the cache.
        UsageError: the prefix matches several revisions.
        CacheError: it could not be deleted, or a download is running on the repo (nothing deleted).
    """
    s = _settings(settings)
    info = _scan(s)
    repo = _find_repo(info, repo_id)
    storage = Path(repo.repo_path)
    wanted = layout.cached_commit(storage, commit.strip())
    rev = next((r for r in repo.revisions if r.commit_hash == wanted), None)
    if rev is None:
        raise NotCachedError(f"Revision '{commit.strip()}' of {repo.repo_id} is not in the cache.")
    with _dl.repo_held_for_delete(
        layout.hub_cache_dir(s), storage.name, layout.repo_label(repo.repo_type, repo.repo_id)
    ):
        plan = _plan(repo, {rev.commit_hash})
        freed = plan.size + (sum(p.size for p in _partials(storage, repo.repo_id)) if plan.whole else 0)
        try:
            _execute(plan, keep_partials=False)
        except OSError as exc:
            raise _delete_error(exc, s, f"Could not delete revision {rev.commit_hash[:12]} of {repo.repo_id}") from exc
        if plan.whole:
            _remove_lock_files(layout.hub_cache_dir(s), storage.name)
    return freed


@dataclass
class _Plan:
    """How to delete some revisions of one repo (huggingface_hub's rule: a blob another revision uses stays)."""

    storage: Path
    commits: list[str]
    whole: bool  # every revision goes: the repo folder goes (or, keeping partials, all but them)
    snapshots: list[Path]
    blobs: list[Path]
    refs: list[Path]
    size: int


def _plan(repo: "CachedRepoInfo", commits: set[str]) -> _Plan:
    doomed = [r for r in repo.revisions if r.commit_hash in commits]
    kept = [r for r in repo.revisions if r.commit_hash not in commits]
    storage = Path(repo.repo_path)
    if not kept:
        return _Plan(
            storage,
            sorted(r.commit_hash for r in doomed),
            True,
            [Path(r.snapshot_path) for r in doomed],
            [],
            [],
            repo.size_on_disk,
        )
    keep_blobs = {f.blob_path for r in kept for f in r.files}
    blobs: dict[Path, int] = {}
    for r in doomed:
        for f in r.files:
            if f.blob_path not in keep_blobs:
                blobs[Path(f.blob_path)] = f.size_on_disk
    refs = [path for r in doomed for ref in r.refs if (path := layout.ref_path(storage, ref)) is not None]
    return _Plan(
        storage,
        sorted(r.commit_hash for r in doomed),
        False,
        [Path(r.snapshot_path) for r in doomed],
        sorted(blobs),
        refs,
        sum(blobs.values()),
    )


def _execute(plan: _Plan, *, keep_partials: bool) -> None:
    if plan.whole and not keep_partials:
        shutil.rmtree(plan.storage)
        return
    if plan.whole:
        # Everything but the partial downloads: they stay for a later resume (and `ls` still counts them,
        # so an empty snapshots/ folder keeps the repo visible to huggingface_hub's scanner).
        for name in ("refs", "trees", layout.MANIFEST_DIR):
            shutil.rmtree(plan.storage / name, ignore_errors=True)
        for snap in plan.snapshots:
            shutil.rmtree(snap)
        blobs = plan.storage / "blobs"
        for blob in blobs.iterdir() if blobs.is_dir() else ():
            if not blob.name.endswith(_INCOMPLETE):
                blob.unlink()
        return
    for snap in plan.snapshots:
        shutil.rmtree(snap)
    for blob in plan.blobs:
        try:
            blob.unlink()
        except FileNotFoundError:
            pass
    for ref in plan.refs:
        try:
            ref.unlink()
        except FileNotFoundError:
            pass
    for commit in plan.commits:
        _dl.drop_snapshot_records(plan.storage, commit)


def prune(settings: Settings | None = None, *, dry_run: bool = False) -> int:
    """Delete every complete cached revision that no ref (branch or tag) points to.

    Args:
        settings: where the cache is.
        dry_run: only compute what would be freed.

    Returns:
        Bytes freed (or that would be freed).
    """
    return prune_cache(settings, dry_run=dry_run).freed_bytes


def prune_detailed(settings: Settings | None = None, *, dry_run: bool = False) -> tuple[int, list[tuple[str, str]]]:
    """Like :func:`prune`, also returning the (repo_id, commit) pairs removed."""
    result = prune_cache(settings, dry_run=dry_run)
    return result.freed_bytes, result.revisions


def prune_cache(settings: Settings | None = None, *, dry_run: bool = False, incomplete: bool = False) -> PruneResult:
    """Delete the detached revisions (no branch or tag points to them) and, when asked, partial downloads.

    Partial downloads (``blobs/*.incomplete``) are what a later download resumes from, so by default they
    stay, and so does a detached revision that lacks files (a download that did not finish: its ref is
    written only at the end). ``incomplete=True`` deletes both, and the partial files huggingface_hub
    leaves behind (``{blob}.{random}.incomplete``). A repo a download is running on is left alone.

    Args:
        settings: where the cache is.
        dry_run: only compute what would be deleted.
        incomplete: also delete incomplete detached revisions and every partial download.

    Returns:
        A :class:`PruneResult`.

    Raises:
        LocalPathError: the cache path is a file or under one.
        CacheError: something could not be deleted.
    """
    s = _settings(settings)
    hub_cache = layout.hub_cache_dir(s)
    result = PruneResult(dry_run=dry_run)
    info = _scan(s)
    if info is None:
        return result
    targets: list[tuple[str, Path, CachedRepoInfo | None]] = []  # (label, folder, hf repo info or None)
    listed: set[Path] = set()
    for repo in sorted(info.repos, key=lambda r: (r.repo_type, r.repo_id)):
        listed.add(Path(repo.repo_path))
        targets.append((layout.repo_label(repo.repo_type, repo.repo_id), Path(repo.repo_path), repo))
    for repo_type, rid, storage in layout.repo_folders(hub_cache):
        if storage not in listed and _partials(storage, layout.repo_label(repo_type, rid)):
            targets.append((layout.repo_label(repo_type, rid), storage, None))
    for label, storage, repo in targets:
        partials = _partials(storage, label)
        doomed: set[str] = set()
        kept_incomplete: list[tuple[str, str]] = []
        for rev in repo.revisions if repo is not None else ():
            if rev.refs:
                continue
            expected, source = _expected_files(storage, rev.commit_hash)
            if _status_of(storage, Path(rev.snapshot_path), expected, source).complete or incomplete:
                doomed.add(rev.commit_hash)
            else:
                kept_incomplete.append((label, rev.commit_hash))
        if not doomed and not (incomplete and partials):
            result.kept_incomplete += kept_incomplete
            result.kept_partial_bytes += sum(p.size for p in partials)
            continue
        try:
            with _dl.repo_held_for_delete(hub_cache, storage.name, label):
                plan = _plan(repo, doomed) if repo is not None and doomed else None
                gone = list(partials) if incomplete else []  # every blob lock is held here: none is in use
                if not dry_run:
                    try:
                        if plan is not None:
                            _execute(plan, keep_partials=not incomplete)
                        for p in gone:
                            try:
                                p.path.unlink()
                            except FileNotFoundError:
                                pass
                        _tidy_empty(storage)
                    except OSError as exc:
                        raise _delete_error(exc, s, f"Could not prune {label}") from exc
                if plan is not None:
                    result.revisions += [(label, c) for c in plan.commits]
                    result.revision_bytes += plan.size
                result.partials += gone
                result.partial_bytes += sum(p.size for p in gone)
                result.kept_partial_bytes += sum(p.size for p in partials) - sum(p.size for p in gone)
                result.kept_incomplete += kept_incomplete
        except RepoBusyError:
            result.busy.append(label)
            result.kept_partial_bytes += sum(p.size for p in partials)
    result.revisions.sort()
    return result


def _tidy_empty(storage: Path) -> None:
    """Remove a repo folder that holds nothing any more (no snapshot, no blob, no partial file)."""
    if not storage.exists():
        return
    snaps = storage / "snapshots"
    blobs = storage / "blobs"
    has_snaps = snaps.is_dir() and any(snaps.iterdir())
    has_blobs = blobs.is_dir() and any(blobs.iterdir())
    if not has_snaps and not has_blobs:
        shutil.rmtree(storage, ignore_errors=True)


def hash_blob(path: Path) -> tuple[str | None, str]:
    """Re-hash a blob by the rule its name says.

    Returns:
        (digest or None when the name is not a checksum, kind: "sha256" | "git-sha1" | "unknown").
    """
    name = path.name
    if _SHA256_RE.match(name):
        h = hashlib.sha256()
        kind = "sha256"
    elif _SHA1_RE.match(name):
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
    on_event: Callable[[VerifyProgress], None] | None = None,
    settings: Settings | None = None,
) -> list[VerifyResult]:
    """Re-hash what the cache holds, and check each snapshot against its revision's file list.

    Each blob is hashed once, even when several revisions use it. The file list is the one hubmgr
    recorded when it downloaded the snapshot, else the revision's listing in the cache, else (online)
    the Hub's; a snapshot of which none is known is only re-hashed.

    Args:
        repo_id: one repo, or None for the whole cache.
        on_event: gets a :class:`~hubmgr.hub.events.VerifyProgress` per file.
        settings: where the cache is.

    Returns:
        One :class:`VerifyResult` per snapshot file and per file the snapshot lacks (``ok`` False for a
        mismatch, a missing file or blob, or an unreadable one).

    Raises:
        NotCachedError: ``repo_id`` is not in the cache.
        LocalPathError: the cache path is a file or under one.
    """
    s = _settings(settings)
    layout.check_cache_root(s)
    repos = _repo_folders(s, repo_id)
    results: list[VerifyResult] = []
    seen: dict[Path, tuple[bool, str]] = {}

    def report(result: VerifyResult) -> None:
        results.append(result)
        if on_event is not None:
            on_event(VerifyProgress(repo_id=result.repo_id, path=result.path, ok=result.ok, detail=result.detail))

    for rid, repo_path in repos:
        snaps = repo_path / "snapshots"
        try:
            commits = sorted(p for p in snaps.iterdir() if p.is_dir())
        except OSError:
            commits = []
        is_model = repo_path.name.startswith("models--")
        for snap in commits:
            expected, source = _expected_files(
                repo_path, snap.name, repo_id=rid if is_model else None, settings=s, online=True
            )
            by_path = {rf.path: rf for rf in expected or []}
            present: set[str] = set()
            for file_path in sorted(snap.rglob("*")):
                if file_path.is_dir() and not file_path.is_symlink():
                    continue
                rel = file_path.relative_to(snap).as_posix()
                present.add(rel)
                ok, detail = _check_file(file_path, repo_path, seen, by_path.get(rel))
                report(VerifyResult(repo_id=rid, commit=snap.name, path=rel, ok=ok, detail=detail))
            status = _status_of(repo_path, snap, [by_path[p] for p in sorted(set(by_path) - present)], source)
            for rel in status.missing_files:
                rf = by_path[rel]
                have = min(_size(repo_path / "blobs" / f"{rf.blob}{_INCOMPLETE}"), rf.size)
                resumable = f", {have} of them in a partial download that `hubmgr download` resumes" if have else ""
                report(
                    VerifyResult(
                        repo_id=rid,
                        commit=snap.name,
                        path=rel,
                        ok=False,
                        missing=True,
                        detail=f"missing: the revision has it ({rf.size} bytes{resumable}) but the snapshot does not",
                    )
                )
    return results


# --- repair: re-download what verify found damaged ------------------------------------------------
@dataclass
class RepairPlan:
    """What :func:`prepare_repair` removed from the cache, and what a download must fetch again.

    Attributes:
        repo_id: the repo (``org/name``).
        files: commit -> the repo paths to download again at that commit, sorted: the damaged files, and
            every other file of the repo that pointed at a damaged blob (it is removed once, for all).
        removed_blobs: the damaged blobs deleted.
        removed_links: the snapshot entries deleted (so that the download links them again).
        unrepairable: damaged files the Hub does not list at their commit: left as they are.
    """

    repo_id: str
    files: dict[str, list[str]] = field(default_factory=dict)
    removed_blobs: list[Path] = field(default_factory=list)
    removed_links: list[Path] = field(default_factory=list)
    unrepairable: list[VerifyResult] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many files are to be downloaded again."""
        return sum(len(paths) for paths in self.files.values())

    def include_for(self, commit: str) -> list[str]:
        """The ``include`` globs that select exactly the files of ``commit`` to fetch again."""
        return [glob.escape(path) for path in self.files.get(commit, [])]

    def needs_pickle(self, commit: str) -> bool:
        """Whether a file to fetch again at ``commit`` is pickle weights (the download must allow them: they
        were downloaded before, on purpose)."""
        return any(is_pickle(path) for path in self.files.get(commit, []))


@dataclass
class RepairResult:
    """What :func:`repair` did.

    Attributes:
        plan: what was removed and fetched again.
        results: the check of every file fetched again (re-hashed, as :func:`verify` does).
        transferred_bytes: bytes the downloads fetched.
    """

    plan: RepairPlan
    results: list[VerifyResult] = field(default_factory=list)
    transferred_bytes: int = 0

    @property
    def ok(self) -> bool:
        """Every damaged file is intact again."""
        return not self.plan.unrepairable and all(r.ok for r in self.results)


def _damaged_by_commit(
    rid: str, label: str, damaged: Iterable[VerifyResult | tuple[str, str]]
) -> tuple[dict[str, set[str]], dict[tuple[str, str], VerifyResult]]:
    wanted: dict[str, set[str]] = {}
    given: dict[tuple[str, str], VerifyResult] = {}
    for item in damaged:
        if isinstance(item, VerifyResult):
            if item.ok or item.repo_id not in (rid, label):
                continue
            result = item
        else:
            commit, path = item
            result = VerifyResult(repo_id=label, commit=commit, path=path, ok=False, detail="damaged")
        wanted.setdefault(result.commit, set()).add(result.path)
        given[(result.commit, result.path)] = result
    return wanted, given


def _links_to(storage: Path, blobs: set[Path]) -> list[tuple[str, str]]:
    """``(commit, repo path)`` of every snapshot entry of the repo that points at one of ``blobs``."""
    out = []
    snaps = storage / "snapshots"
    try:
        commits = sorted(p for p in snaps.iterdir() if p.is_dir())
    except OSError:
        return []
    for snap in commits:
        for entry in sorted(snap.rglob("*")):
            if entry.is_symlink() and Path(os.path.abspath(entry.parent / os.readlink(entry))) in blobs:
                out.append((snap.name, entry.relative_to(snap).as_posix()))
    return out


def prepare_repair(
    repo_id: str,
    damaged: Iterable[VerifyResult | tuple[str, str]],
    *,
    settings: Settings | None = None,
) -> RepairPlan:
    """Remove the damaged files :func:`verify` found, so that a download of them fetches them again.

    The one rule of the repair (``hubmgr verify --repair`` and the TUI's Local screen both use it): for
    each damaged file, the Hub's listing of its commit says which blob it must be. A snapshot entry that
    points at another blob, or at none, is removed; an entry that points at the right blob means the blob's
    bytes are bad: the blob is removed, with every entry of the repo that points at it (another revision
    sharing it included), so no pointer is left dangling and all of them are fetched again. A file listed
    as missing needs no removal. Nothing is removed before the Hub has answered for every commit involved,
    nor while a download runs on the repo. The download (:func:`hubmgr.hub.download.download_repo` with
    ``revision=commit`` and ``include=plan.include_for(commit)``) checks what it fetches against the Hub's
    checksum and places it atomically.

    Args:
        repo_id: ``org/name`` (models only: hubmgr downloads models).
        damaged: the failed :class:`VerifyResult` of the repo (ok ones, and other repos', are ignored), or
            ``(commit, repo path)`` pairs.
        settings: where the cache and the Hub are.

    Returns:
        A :class:`RepairPlan` (empty when nothing was damaged).

    Raises:
        HubUnreachableError: offline (``HF_HUB_OFFLINE``) or the Hub does not answer; nothing was removed.
        NotCachedError: the repo is not in the cache.
        RepoBusyError: a download is running on the repo; nothing was removed.
        UsageError: the repo is not a model.
        CacheError, LocalPathError: a file could not be removed.
    """
    s = _settings(settings)
    repo_type, rid = layout.split_repo_type(repo_id)
    label = layout.repo_label(repo_type, rid)
    if repo_type != "model":
        raise UsageError(f"{label} is not a model; hubmgr downloads models only, so it cannot repair it.")
    storage = layout.repo_dir(s, rid)
    if not (storage / "snapshots").is_dir():
        raise NotCachedError(f"{rid} is not in the cache.")
    wanted, given = _damaged_by_commit(rid, label, damaged)
    plan = RepairPlan(repo_id=rid)
    if not wanted:
        return plan
    if s.offline:
        raise HubUnreachableError(f"Repairing {rid} needs the Hub, but HF_HUB_OFFLINE is set; nothing was removed.")
    listings: dict[str, dict[str, _dl.RemoteFile]] = {}

    def listing(commit: str) -> dict[str, _dl.RemoteFile]:
        if commit not in listings:
            try:
                files = _dl.list_remote_files(rid, commit, settings=s)
            except HubUnreachableError:
                raise HubUnreachableError(
                    f"Repairing {rid} needs the Hub, which is unreachable at {s.endpoint}; nothing was removed."
                ) from None
            listings[commit] = {rf.path: rf for rf in files}
        return listings[commit]

    blobs_dir = storage / "blobs"
    links: set[Path] = set()
    doomed_blobs: set[Path] = set()
    refetch: dict[str, set[str]] = {}
    for commit in sorted(wanted):
        snap = layout.snapshot_dir(storage, commit)
        for path in sorted(wanted[commit]):
            rf = listing(commit).get(path)
            try:
                pointer = layout.check_safe_name(path, snap)
            except UnsafePathError:
                rf = None
            if rf is None:
                result = given[(commit, path)]
                plan.unrepairable.append(
                    dataclasses.replace(result, detail=f"{result.detail}; the Hub does not list it at this commit")
                )
                continue
            if pointer.is_symlink():
                target = Path(os.path.abspath(pointer.parent / os.readlink(pointer)))
                if target.exists() and target == blobs_dir / rf.blob:
                    doomed_blobs.add(target)  # the right blob, with bad bytes
                links.add(pointer)
            elif pointer.exists():
                links.add(pointer)  # a copy instead of a link (no symlinks here): it is the damaged data
            refetch.setdefault(commit, set()).add(path)
    for commit, path in _links_to(storage, doomed_blobs):  # the other files sharing a damaged blob
        if path in listing(commit):
            links.add(layout.snapshot_dir(storage, commit) / path)
            refetch.setdefault(commit, set()).add(path)
    hub_cache = layout.hub_cache_dir(s)
    with _dl.repo_held_for_delete(hub_cache, storage.name, rid):
        try:
            for commit, paths in refetch.items():
                # a snapshot hubmgr did not download has no manifest: record what it should hold, so that the
                # repair's own download (which records its files) does not narrow that to the repaired ones
                if _dl.read_manifest(storage, commit) is None:
                    expected, _ = _expected_files(storage, commit)
                    keep = {rf.path: rf for rf in expected or []}
                    keep.update({p: listing(commit)[p] for p in paths})
                    _dl.write_manifest(storage, commit, keep.values(), layout.locks_dir(hub_cache, storage.name))
            for link in sorted(links):  # the links first: a reader sees a missing file, never a dangling link
                _unlink_if_there(link)
            for blob in sorted(doomed_blobs):
                _unlink_if_there(blob)
        except OSError as exc:
            raise _delete_error(exc, s, f"Could not remove the damaged files of {rid}") from exc
    plan.files = {commit: sorted(paths) for commit, paths in sorted(refetch.items())}
    plan.removed_links = sorted(links)
    plan.removed_blobs = sorted(doomed_blobs)
    return plan


def _unlink_if_there(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def repair(
    repo_id: str,
    damaged: Iterable[VerifyResult | tuple[str, str]],
    *,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    settings: Settings | None = None,
) -> RepairResult:
    """Re-download the damaged files :func:`verify` found: :func:`prepare_repair`, then a download of
    exactly those files per commit, then a re-check of each of them.

    Args:
        repo_id: ``org/name``.
        damaged: the failed :class:`VerifyResult` of the repo, or ``(commit, repo path)`` pairs.
        on_event: gets the downloads' :mod:`hubmgr.hub.events` events.
        cancel: set it to stop the downloads (what was removed stays missing; a download resumes it).
        settings: where the cache and the Hub are.

    Returns:
        A :class:`RepairResult`; ``ok`` when every damaged file is intact again.

    Raises:
        the errors of :func:`prepare_repair` (nothing removed) and of
        :func:`hubmgr.hub.download.download_repo` (the files removed stay missing, and ``hubmgr download``
        or another repair fetches them).
    """
    s = _settings(settings)
    plan = prepare_repair(repo_id, damaged, settings=s)
    outcome = RepairResult(plan=plan)
    for commit in plan.files:
        result = _dl.download_repo(
            plan.repo_id,
            revision=commit,
            include=plan.include_for(commit),
            allow_pickle=plan.needs_pickle(commit),
            on_event=on_event,
            cancel=cancel,
            settings=s,
        )
        outcome.transferred_bytes += result.transferred_bytes
    storage = layout.repo_dir(s, plan.repo_id)
    seen: dict[Path, tuple[bool, str]] = {}
    for commit, paths in plan.files.items():
        expected = {rf.path: rf for rf in _dl.read_manifest(storage, commit) or []}
        snap = layout.snapshot_dir(storage, commit)
        for path in paths:
            pointer = layout.check_safe_name(path, snap)
            if not (pointer.exists() or pointer.is_symlink()):
                ok, detail = False, "still missing after the repair"
            else:
                ok, detail = _check_file(pointer, storage, seen, expected.get(path))
            outcome.results.append(VerifyResult(repo_id=plan.repo_id, commit=commit, path=path, ok=ok, detail=detail))
    return outcome


def _repo_folders(s: Settings, repo_id: str | None) -> list[tuple[str, Path]]:
    cache = layout.hub_cache_dir(s)
    if repo_id is not None:
        repo_type, rid = layout.split_repo_type(repo_id)
        folder = cache / layout.repo_folder_name(rid, repo_type)
        if not (folder / "snapshots").is_dir():
            raise NotCachedError(f"{rid} is not in the cache.")
        return [(rid, folder)]
    out = []
    for repo_type, rid, folder in layout.repo_folders(cache):
        if (folder / "snapshots").is_dir():
            out.append((layout.repo_label(repo_type, rid), folder))
    return out


def _check_file(
    file_path: Path, repo_path: Path, seen: dict[Path, tuple[bool, str]], expected: "_dl.RemoteFile | None" = None
) -> tuple[bool, str]:
    if file_path.is_symlink():
        blob = Path(os.path.abspath(file_path.parent / os.readlink(file_path)))
    else:
        blob = file_path
    if not blob.exists():
        return False, "the blob it points to is missing"
    if expected is not None and file_path.is_symlink() and blob.name != expected.blob:
        return False, (
            f"it points to the blob {blob.name[:12]}... but the revision lists {expected.blob[:12]}... for it"
        )
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
            outcome = (
                False,
                f"{kind} mismatch: the blob is named {blob.name[:12]}... but its bytes hash to {digest[:12]}...",
            )
        else:
            outcome = (True, "")
    seen[blob] = outcome
    return outcome


def resolve_local(
    repo_id_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    settings: Settings | None = None,
) -> Path:
    """Find a model on disk: a local folder as is, else the cached snapshot of a repo.

    Args:
        repo_id_or_path: a folder path, or a repo id.
        revision: branch, tag, commit or commit prefix, resolved by
            :func:`hubmgr.hub.layout.cached_commit` (default ``main``; when ``main`` is not cached and
            there is exactly one snapshot, that one).
        settings: where the cache is.

    Returns:
        The folder (a local one, or ``.../snapshots/{commit}``).

    Raises:
        NotCachedError: the repo (at that revision) is not downloaded, or a hubmgr download of it did not
            finish (its snapshot lacks files it was asked for).
        UsageError: the commit prefix matches several cached snapshots.
    """
    text = os.fspath(repo_id_or_path)
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    s = _settings(settings)
    repo_type, rid = layout.split_repo_type(text)
    if text.startswith(("/", "./", "../", "~")) or os.sep != "/" and os.sep in text:
        raise NotCachedError(f"The folder {text} does not exist.")
    folder = layout.repo_dir(s, rid, repo_type)
    hint = f"run `hubmgr download {rid}{f' --revision {revision}' if revision else ''}`"
    commit = layout.cached_commit(folder, revision)
    snap = layout.snapshot_dir(folder, commit) if commit else None
    if commit and snap is not None and any(snap.iterdir()):
        recorded = _dl.read_manifest(folder, commit)
        if recorded is not None:  # hubmgr downloaded it: a download that did not finish is no model folder
            status = _status_of(folder, snap, recorded, "hubmgr")
            if not status.complete:
                names = ", ".join(status.missing_files[:3]) + (" ..." if len(status.missing_files) > 3 else "")
                raise NotCachedError(f"{rid} is only partly downloaded ({names} missing); {hint} to finish it.")
        return snap
    if revision:
        raise NotCachedError(f"{rid} at revision '{revision}' is not downloaded; {hint}.")
    raise NotCachedError(f"{rid} is not downloaded; {hint}.")
