"""The Hugging Face cache layout: the one place that knows where a repo's files lie and which commit a
revision names.

huggingface_hub, transformers and the ``hf`` CLI share this layout, and so does every module of
``hubmgr.hub``::

    $HF_HUB_CACHE/                                   hub_cache_dir(); check_cache_root()
        {type}s--{org}--{name}/                      repo_folder_name(), repo_dir(); read back: repo_folders()
            blobs/{sha256 | git blob sha1}[.incomplete]
            snapshots/{commit}/{path}                snapshot_dir(); a repo path lands by check_safe_name()
            refs/{branch or tag}                     ref_path(), read_ref(), write_ref(): its commit
            trees/{commit}.json                      tree_cache_path(): the commit's file listing
            hubmgr/{commit}.json                     manifest_path(): what hubmgr's downloads asked for
        .locks/{type}s--{org}--{name}/               locks_dir(): blob locks, hubmgr's repo lock

The rules that used to be spelled out in several modules live here, once:

* :func:`validate_repo_id`: what a repo id may look like;
* :func:`cached_commit`: which cached snapshot a revision names (``train``, ``info``, an offline
  ``download`` and ``rm --revision`` all ask it, so they all mean the same snapshot);
* :func:`check_safe_name`: a remote file name never lands outside its snapshot folder.

Nothing here touches the network or imports more than the standard library.
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from pathlib import Path
from typing import Iterable

from hubmgr.config import Settings
from hubmgr.errors import HubmgrError, LocalPathError, UnsafePathError, UsageError, disk_full_from, local_path_error

__all__ = [
    "DEFAULT_REVISION",
    "MANIFEST_DIR",
    "cache_label",
    "cache_path_error",
    "cache_write_error",
    "cached_commit",
    "check_cache_root",
    "check_safe_name",
    "hub_cache_dir",
    "is_commit",
    "locks_dir",
    "manifest_path",
    "read_ref",
    "ref_path",
    "repo_dir",
    "repo_folder_name",
    "repo_folders",
    "repo_label",
    "snapshot_dir",
    "split_repo_type",
    "tree_cache_path",
    "validate_repo_id",
    "write_ref",
]

DEFAULT_REVISION = "main"
#: hubmgr's records in a repo folder, next to snapshots/ (huggingface_hub ignores it)
MANIFEST_DIR = "hubmgr"
#: the shortest commit prefix that names a cached snapshot (git's minimum abbreviation)
MIN_COMMIT_PREFIX = 4

REPO_TYPES = ("model", "dataset", "space")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_PREFIX_RE = re.compile(rf"^[0-9a-f]{{{MIN_COMMIT_PREFIX},39}}$")
#: one segment of a repo id: word characters, '.' and '-', starting and ending with a word character
_REPO_ID_PART = r"\w(?:[\w.-]*\w)?"
_REPO_ID_RE = re.compile(rf"^(?:{_REPO_ID_PART}/)?{_REPO_ID_PART}$")
_REPO_ID_MAX = 96


# --- repo ids ---------------------------------------------------------------------------------------
def validate_repo_id(repo_id: str) -> str:
    """Check a repo id: ``name`` or ``org/name``, the rule the Hub applies.

    Each part is word characters, ``.`` and ``-``, starting and ending with a word character; no ``--``
    or ``..`` (they would break the cache folder name), 96 characters at most.

    Returns:
        The id, stripped of surrounding blanks.

    Raises:
        UsageError: it is not a valid repo id.
    """
    text = (repo_id or "").strip()
    if len(text) > _REPO_ID_MAX or not _REPO_ID_RE.match(text) or "--" in text or ".." in text:
        raise UsageError(f"'{text}' is not a valid repo id; expected 'name' or 'org/name'.")
    return text


def split_repo_type(text: str) -> tuple[str, str]:
    """``(repo_type, repo_id)`` of ``org/name``, or of ``model/org/name``, ``dataset/...``, ``space/...``
    (and their plurals), the way ``hf cache`` prints them. A plain id is a model."""
    text = text.strip()
    for prefix in REPO_TYPES:
        for lead in (f"{prefix}/", f"{prefix}s/"):
            if text.startswith(lead) and text.count("/") >= 2:
                return prefix, text[len(lead) :]
    return "model", text


def repo_label(repo_type: str, repo_id: str) -> str:
    """How a repo is named to a user: ``org/name`` for a model, ``dataset/org/name`` for the others."""
    return repo_id if repo_type == "model" else f"{repo_type}/{repo_id}"


def repo_folder_name(repo_id: str, repo_type: str = "model") -> str:
    """The cache folder of a repo: ``models--org--name`` (``datasets--...``, ``spaces--...``)."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


def _parse_folder_name(name: str) -> tuple[str, str] | None:
    prefix, sep, rest = name.partition("--")
    repo_type = prefix[:-1] if prefix.endswith("s") else ""
    if not sep or not rest or repo_type not in REPO_TYPES:
        return None
    return repo_type, rest.replace("--", "/")


def repo_folders(hub_cache: Path) -> list[tuple[str, str, Path]]:
    """``(repo_type, repo_id, folder)`` of every repo folder in the cache, sorted by folder name."""
    try:
        entries = sorted(Path(hub_cache).iterdir())
    except OSError:
        return []
    out = []
    for folder in entries:
        parsed = _parse_folder_name(folder.name)
        if parsed is not None and folder.is_dir():
            out.append((*parsed, folder))
    return out


# --- paths ------------------------------------------------------------------------------------------
def hub_cache_dir(settings: Settings) -> Path:
    """The shared cache folder (``HF_HUB_CACHE``, or ``$HF_HOME/hub``)."""
    return Path(settings.hub_cache).expanduser()


def repo_dir(settings: Settings, repo_id: str, repo_type: str = "model") -> Path:
    """``$HF_HUB_CACHE/models--org--name`` (it may not exist)."""
    return hub_cache_dir(settings) / repo_folder_name(repo_id, repo_type)


def snapshot_dir(storage: Path, commit: str) -> Path:
    """``{repo folder}/snapshots/{commit}``: the folder ``from_pretrained`` reads."""
    return storage / "snapshots" / commit


def tree_cache_path(storage: Path, commit: str) -> Path:
    """``{repo folder}/trees/{commit}.json``: a commit's listing, in huggingface_hub's format."""
    return storage / "trees" / f"{commit}.json"


def manifest_path(storage: Path, commit: str) -> Path:
    """``{repo folder}/hubmgr/{commit}.json``: the files hubmgr's downloads of that commit asked for."""
    return storage / MANIFEST_DIR / f"{commit}.json"


def locks_dir(hub_cache: Path, folder: str) -> Path:
    """``$HF_HUB_CACHE/.locks/{repo folder}`` (huggingface_hub's place for the blob locks)."""
    return Path(hub_cache) / ".locks" / folder


def check_safe_name(name: str, snapshot: str | Path) -> Path:
    """Where a repo file lands in a snapshot folder, refusing any name that would escape it.

    Args:
        name: the file name the Hub gives (``/``-separated).
        snapshot: the snapshot folder.

    Returns:
        The absolute path inside ``snapshot`` (symlinks not resolved).

    Raises:
        UnsafePathError: the name is empty, absolute, has ``..`` segments, a backslash, a NUL, a drive
            letter, or otherwise resolves outside the snapshot folder.
    """

    def refuse(why: str) -> UnsafePathError:
        return UnsafePathError(f"Refusing the remote file name {name!r}: {why}; nothing was written.")

    if not isinstance(name, str) or not name:
        raise refuse("it is empty")
    if "\x00" in name:
        raise refuse("it contains a NUL byte")
    if "\\" in name:
        raise refuse("it contains a backslash")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise refuse("it is an absolute path")
    parts = name.split("/")
    if any(part == ".." for part in parts):
        raise refuse("it contains '..'")
    if any(part in ("", ".") for part in parts):
        raise refuse("it has an empty or '.' segment")
    base = os.path.abspath(os.fspath(snapshot))
    target = os.path.abspath(os.path.join(base, *parts))
    if target == base or os.path.commonpath([base, target]) != base:
        raise refuse("it would land outside the snapshot folder")
    return Path(target)


def cached_paths(storage: Path, commit: str, paths: Iterable[str]) -> set[str]:
    """Which of a commit's repo files are in its snapshot folder with their blob present (a pointer whose
    blob is gone, or a name that would escape the folder, does not count)."""
    snap = snapshot_dir(storage, commit)
    out: set[str] = set()
    for path in paths:
        try:
            pointer = check_safe_name(path, snap)
        except UnsafePathError:
            continue
        if pointer.is_file():  # follows the symlink: the blob must be there
            out.add(path)
    return out


# --- refs and revisions -----------------------------------------------------------------------------
def is_commit(text: str) -> bool:
    """A full commit hash (40 lower-case hex digits)."""
    return bool(_COMMIT_RE.match(text))


def ref_path(storage: Path, revision: str) -> Path | None:
    """``refs/{revision}``, or None when the name would leave ``refs/`` (``../x``)."""
    root = os.path.abspath(storage / "refs")
    ref = os.path.abspath(os.path.join(root, revision))
    try:
        inside = os.path.commonpath([ref, root]) == root and ref != root
    except ValueError:
        return None
    return Path(ref) if inside else None


def read_ref(storage: Path, revision: str) -> str | None:
    """The commit a branch or tag points to in the cache, or None (no such ref, or not a commit)."""
    ref = ref_path(storage, revision)
    try:
        text = ref.read_text().strip() if ref is not None and ref.is_file() else ""
    except OSError:
        return None
    return text if is_commit(text) else None


def write_ref(storage: Path, revision: str, commit: str) -> None:
    """Point ``refs/{revision}`` at ``commit`` (atomically). A revision that is the commit itself gets no ref.

    Raises:
        UsageError: the revision name would leave ``refs/``.
        DiskFullError: no space left; OSError for other failures.
    """
    if revision == commit:
        return
    ref = ref_path(storage, revision)
    if ref is None:
        raise UsageError(f"'{revision}' is not a valid revision name.")
    try:
        ref.parent.mkdir(parents=True, exist_ok=True)
        if ref.is_file() and ref.read_text().strip() == commit:
            return
        tmp = ref.with_name(f"{ref.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(commit)
        os.replace(tmp, ref)
    except OSError as exc:
        raise disk_full_from(exc, str(ref)) or exc


def cached_commit(storage: Path, revision: str | None = None) -> str | None:
    """The commit of the cached snapshot that ``revision`` names, or None when the cache holds none.

    The one rule, in this order:

    1. a full commit names itself;
    2. a branch or tag names the commit its ``refs/`` file holds;
    3. a commit prefix (4 hex digits or more) names the one snapshot whose commit starts with it;
    4. no revision at all means ``main``, and when the cache has no ``refs/main``, the only snapshot if
       there is exactly one (a repo downloaded by commit has no ref).

    Only a commit whose snapshot folder exists counts.

    Args:
        storage: the repo folder (:func:`repo_dir`).
        revision: branch, tag, commit or commit prefix; None for the default.

    Raises:
        UsageError: the prefix matches several cached snapshots.
    """
    snaps = storage / "snapshots"
    rev = (revision or DEFAULT_REVISION).strip()
    if is_commit(rev):
        return rev if (snaps / rev).is_dir() else None
    commit = read_ref(storage, rev)
    if commit is not None:
        return commit if (snaps / commit).is_dir() else None
    try:
        names = sorted(p.name for p in snaps.iterdir() if p.is_dir() and is_commit(p.name))
    except OSError:
        return None
    if _PREFIX_RE.match(rev):
        hits = [name for name in names if name.startswith(rev)]
        if len(hits) > 1:
            parsed = _parse_folder_name(storage.name)
            repo = repo_label(*parsed) if parsed else storage.name
            raise UsageError(f"'{rev}' matches {len(hits)} cached revisions of {repo}; give more characters.")
        if hits:
            return hits[0]
    if revision is None and len(names) == 1:
        return names[0]
    return None


# --- where the cache is, and what is wrong with it --------------------------------------------------
def _cache_source(settings: Settings) -> str | None:
    """The environment variable that put the cache where it is (for messages), if any."""
    cache = hub_cache_dir(settings)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(name)
        if value and Path(value).expanduser() == cache:
            return name
    home = os.environ.get("HF_HOME")
    if home and Path(home).expanduser() / "hub" == cache:
        return "HF_HOME"
    return None


def cache_label(settings: Settings) -> str:
    """The cache folder for a message, with the variable that set it: ``/x/hub (HF_HOME=/x)``."""
    source = _cache_source(settings)
    cache = hub_cache_dir(settings)
    if source == "HF_HOME":
        return f"{cache} (HF_HOME={os.environ['HF_HOME']})"
    return f"{cache} ({source})" if source else str(cache)


def cache_path_error(exc: OSError, settings: Settings) -> HubmgrError:
    """The one-line error for an OSError on the cache: disk full, read-only, a file in the way."""
    return local_path_error(exc, cache_label(settings), "The Hugging Face cache")


def cache_write_error(exc: OSError, settings: Settings) -> BaseException:
    """The one-line error for a failed write in the cache (disk full, read-only, a file in the way), or
    ``exc`` itself when it is something else."""
    if getattr(exc, "errno", None) in (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOTDIR,
        errno.EEXIST,
    ):
        return cache_path_error(exc, settings)
    return exc


def check_cache_root(settings: Settings) -> None:
    """Refuse a cache folder that is a file or sits under one (``HF_HOME`` pointing at a file, say).

    An absent cache is fine (it is created on the first download).

    Raises:
        LocalPathError: the cache path, or one of its parents, is a file.
    """
    cache = hub_cache_dir(settings)
    source = _cache_source(settings)
    for path in (cache, *cache.parents):
        if path.exists() or path.is_symlink():
            if path.is_dir():
                return
            fix = f"; point {source} at a folder" if source else ""
            where = "is" if path == cache else f"would be under {path}, which is"
            raise LocalPathError(f"The Hugging Face cache {cache_label(settings)} {where} a file, not a folder{fix}.")
