"""Inspect one model repo at a revision, without downloading its weights.

What :func:`get_model_info` gathers:

- the model info API (``/api/models/{repo}[/revision/{rev}]?blobs=1``): commit, files with sizes and LFS
  sha256, gated flag, tags, downloads, likes;
- ``README.md`` (fetched from ``/resolve``, not written to the cache), split into its YAML metadata and text;
- ``config.json`` when small (for ``hidden_size`` / ``num_hidden_layers``, used by the fit estimate);
- the parameter count and dtypes, summed from the **safetensors headers** read with HTTP ``Range``
  requests: bytes 0-7 give the header length N, bytes 8..8+N-1 the JSON header (dtype and shape of every
  tensor). A sharded checkpoint (``model.safetensors.index.json``) has each shard's header read. Only a few
  kilobytes cross the network, whatever the size of the weights.

Offline (``HF_HUB_OFFLINE``), when the endpoint is unreachable, or when it lacks the info API (a mirror), a
repo that is in the local Hugging Face cache is described from the cache instead (files and sizes from the
snapshot, the card from the cached README.md, parameters from the local safetensors headers), and
:attr:`ModelDetails.from_cache` says so.
"""

from __future__ import annotations

import json
import os
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from hubmgr.config import Settings
from hubmgr.errors import (
    AuthError,
    GatedRepoError,
    HubError,
    HubmgrError,
    HubUnreachableError,
    UnsupportedByMirrorError,
)
from hubmgr.hub import layout
from hubmgr.hub.files import select_safetensors, shards_from_index
from hubmgr.hub.client import (
    API_TIMEOUT,
    auth_headers,
    call_with_retries,
    get_api,
    hub_errors,
    http_get,
    raise_for_response,
    resolve_settings,
    resolve_url,
)

#: Largest safetensors header we accept (the format caps it well below this).
MAX_HEADER_BYTES = 100_000_000
#: config.json larger than this is not fetched for the fit estimate.
MAX_CONFIG_BYTES = 2_000_000
#: README.md larger than this is not fetched.
MAX_CARD_BYTES = 5_000_000

_YAML_BLOCK = re.compile(r"^\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.DOTALL)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo.

    Attributes:
        path: path inside the repo (``/``-separated).
        size: bytes, or None when the Hub did not say.
        lfs_sha256: the sha256 the Hub gives for an LFS file (what a download is checked against), else None.
    """

    path: str
    size: int | None = None
    lfs_sha256: str | None = None


@dataclass(frozen=True)
class ModelDetails:
    """Everything ``hubmgr info`` shows about one repo at one revision.

    Attributes:
        id: ``org/name``.
        sha: the commit the revision resolved to (None when unknown).
        revision: the revision asked for (``main`` by default).
        card_text: the model card without its YAML block ("" when there is no README.md).
        card_data: the card's YAML metadata.
        files: every file with its size.
        total_size: sum of the known file sizes.
        license: from the card metadata or a ``license:`` tag; None when unknown.
        gated: False, or the gating mode (``"auto"``/``"manual"``).
        pipeline_tag: the task, e.g. ``text-classification``.
        library: e.g. ``transformers``.
        param_count: parameters summed over the safetensors headers; None without safetensors weights.
        dtypes: parameters per safetensors dtype (``{"F32": 4385920}``).
        tags: the repo's tags.
        downloads: downloads (30 days) as the Hub counts them; None from the cache.
        likes: likes; None from the cache.
        last_modified: last commit time; None when unknown.
        config: ``config.json`` when it was small enough to read (for the fit estimate), else ``{}``.
        from_cache: True when this was read from the local cache, not the Hub.
        warnings: one-line notes on what could not be read (gated files, a bad header, the cache fallback).
    """

    id: str
    sha: str | None
    revision: str
    card_text: str = ""
    card_data: dict[str, Any] = field(default_factory=dict)
    files: list[RepoFile] = field(default_factory=list)
    total_size: int = 0
    license: str | None = None
    gated: bool | str = False
    pipeline_tag: str | None = None
    library: str | None = None
    param_count: int | None = None
    dtypes: dict[str, int] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    downloads: int | None = None
    likes: int | None = None
    last_modified: datetime | None = None
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    from_cache: bool = False
    warnings: list[str] = field(default_factory=list)


# --- pure helpers ----------------------------------------------------------------------------------
def split_card(text: str) -> tuple[dict[str, Any], str]:
    """Split a model card into its YAML metadata and its text.

    Args:
        text: the README.md content.

    Returns:
        ``(metadata, body)``; metadata is ``{}`` when there is no (valid) YAML block.
    """
    import yaml

    text = text.lstrip("\ufeff")
    match = _YAML_BLOCK.match(text)
    if not match:
        return {}, text.strip()
    body = text[match.end() :].strip()
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}, body
    return (data if isinstance(data, dict) else {}), body


def license_of(card_data: dict[str, Any], tags: list[str] | None = None) -> str | None:
    """The license from card metadata (``license``, or ``license_name`` for "other"), else a ``license:`` tag."""
    value = card_data.get("license") if card_data else None
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value) if value else None
    if value == "other" and card_data.get("license_name"):
        value = f"other ({card_data['license_name']})"
    if value:
        return str(value)
    for tag in tags or []:
        if isinstance(tag, str) and tag.startswith("license:"):
            return tag.split(":", 1)[1]
    return None


def parse_safetensors_header(raw: bytes, *, name: str = "the file") -> dict[str, int]:
    """Count parameters per dtype in a safetensors JSON header.

    Args:
        raw: the JSON header bytes (what follows the 8-byte length).
        name: the file name, for the error message.

    Returns:
        ``{dtype: number of elements}``, ``__metadata__`` skipped.

    Raises:
        HubError: the header is not a valid safetensors header.
    """
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HubError(f"The safetensors header of {name} is not valid JSON.") from exc
    if not isinstance(header, dict):
        raise HubError(f"The safetensors header of {name} is not a JSON object.")
    counts: dict[str, int] = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or "dtype" not in entry or not isinstance(entry.get("shape"), list):
            raise HubError(f"The safetensors header of {name} has a malformed entry '{key}'.")
        numel = 1
        for dim in entry["shape"]:
            numel *= int(dim)
        counts[str(entry["dtype"])] = counts.get(str(entry["dtype"]), 0) + numel
    return counts


def header_length(first8: bytes, *, name: str = "the file", file_size: int | None = None) -> int:
    """The header length encoded in the first 8 bytes of a safetensors file (little-endian u64).

    Raises:
        HubError: fewer than 8 bytes, or a length that cannot be right.
    """
    if len(first8) < 8:
        raise HubError(f"{name} is too short to be a safetensors file.")
    n: int
    (n,) = struct.unpack("<Q", first8[:8])
    limit = MAX_HEADER_BYTES if file_size is None else min(MAX_HEADER_BYTES, max(file_size - 8, 0))
    if n == 0 or n > limit:
        raise HubError(f"{name} does not start with a valid safetensors header (length {n}).")
    return n


def _merge(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def _param_count(
    paths: list[str],
    read_text: Callable[[str], str],
    read_header: Callable[[str], dict[str, int]],
) -> tuple[int | None, dict[str, int]]:
    index, files = select_safetensors(paths)
    if index is not None:
        try:
            files = shards_from_index(index, json.loads(read_text(index)))
        except json.JSONDecodeError as exc:
            raise HubError(f"{index} is not valid JSON.") from exc
    if not files:
        return None, {}
    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        counts = list(pool.map(read_header, files))
    dtypes = _merge(counts)
    return sum(dtypes.values()), dtypes


# --- remote ----------------------------------------------------------------------------------------
def read_remote_header(
    settings: Settings, repo_id: str, filename: str, revision: str | None, *, size: int | None = None
) -> dict[str, int]:
    """Read one safetensors header over HTTP with Range requests and count its parameters.

    Two small requests: bytes 0-7, then the header. A server that ignores ``Range`` (answers 200 with the
    whole file) is read only as far as the header, then the connection is closed.

    Raises:
        HubmgrError: the mapped Hub error, or HubError for a malformed header.
    """
    from huggingface_hub.utils import get_session

    url = resolve_url(settings, repo_id, filename, revision)
    headers = auth_headers(settings)
    session = get_session()
    with hub_errors(settings=settings, repo_id=repo_id, revision=revision, filename=filename):
        with session.stream("GET", url, headers={**headers, "Range": "bytes=0-7"}, timeout=API_TIMEOUT) as r:
            raise_for_response(r, settings=settings, repo_id=repo_id, revision=revision, filename=filename)
            if r.status_code == 206:
                first = r.read()
                n = header_length(first, name=filename, file_size=size)
            else:  # Range ignored: read the front of the full body only
                buf = bytearray()
                n = None
                for chunk in r.iter_bytes():
                    buf += chunk
                    if n is None and len(buf) >= 8:
                        n = header_length(bytes(buf[:8]), name=filename, file_size=size)
                    if n is not None and len(buf) >= 8 + n:
                        break
                if n is None:  # fewer than 8 bytes: this raises
                    n = header_length(bytes(buf), name=filename)
                if len(buf) < 8 + (n or 0):
                    raise HubError(f"{filename} ended inside its safetensors header.")
                return parse_safetensors_header(bytes(buf[8 : 8 + n]), name=filename)
        assert n is not None  # set by the 206 branch (the other one returns)
        r2 = session.get(url, headers={**headers, "Range": f"bytes=8-{8 + n - 1}"}, timeout=API_TIMEOUT)
        raise_for_response(r2, settings=settings, repo_id=repo_id, revision=revision, filename=filename)
        body = r2.content if r2.status_code == 206 else r2.content[8 : 8 + n]
    if len(body) < n:
        raise HubError(f"{filename} ended inside its safetensors header.")
    return parse_safetensors_header(body[:n], name=filename)


def _fetch_text(settings: Settings, repo_id: str, filename: str, revision: str | None) -> str:
    response = http_get(
        resolve_url(settings, repo_id, filename, revision),
        settings=settings,
        repo_id=repo_id,
        revision=revision,
        filename=filename,
    )
    return response.content.decode("utf-8", errors="replace")


def _gated_value(value: Any) -> bool | str:
    if value in (None, False, "false", ""):
        return False
    if value is True or value == "true":
        return True
    return str(value)


def _card_data_dict(card_data: Any) -> dict[str, Any]:
    if card_data is None:
        return {}
    if isinstance(card_data, dict):
        return dict(card_data)
    to_dict = getattr(card_data, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}


def _hub_files(settings: Settings, api: Any, repo_id: str, info: Any, rev: str | None) -> list[RepoFile]:
    siblings = info.siblings or []
    files = [
        RepoFile(path=s.rfilename, size=(s.lfs.size if s.lfs else s.size), lfs_sha256=(s.lfs.sha256 if s.lfs else None))
        for s in siblings
    ]
    if files and all(f.size is not None for f in files):
        return sorted(files, key=lambda f: f.path)
    # No sizes in the info answer: ask the tree route (it always has them).
    try:
        with hub_errors(settings=settings, repo_id=repo_id, revision=rev, route="tree"):
            tree = [
                item
                for item in api.list_repo_tree(repo_id, recursive=True, revision=rev)
                if hasattr(item, "size") and not hasattr(item, "tree_id")
            ]
    except HubmgrError:
        return sorted(files, key=lambda f: f.path)
    return sorted(
        (
            RepoFile(path=t.path, size=(t.lfs.size if t.lfs else t.size), lfs_sha256=(t.lfs.sha256 if t.lfs else None))
            for t in tree
        ),
        key=lambda f: f.path,
    )


def _from_hub(repo_id: str, revision: str | None, settings: Settings) -> ModelDetails:
    api = get_api(settings)
    with hub_errors(settings=settings, repo_id=repo_id, revision=revision, route="model_info"):
        info = call_with_retries(
            lambda: api.model_info(repo_id, revision=revision, files_metadata=True, timeout=API_TIMEOUT)
        )
    sha = info.sha
    rev = sha or revision
    files = _hub_files(settings, api, repo_id, info, rev)
    paths = [f.path for f in files]
    sizes = {f.path: f.size for f in files}
    warnings: list[str] = []
    gated = _gated_value(info.gated)

    def note(exc: HubmgrError, what: str) -> None:
        warnings.append(f"{what}: {exc}")

    # Files are what a gated repo guards: stop at the first refusal rather than repeat it for each file.
    refused: list[HubmgrError] = []

    def guarded(fn: Callable[[], Any], what: str) -> Any:
        if refused:
            return None
        try:
            return fn()
        except (GatedRepoError, AuthError) as exc:
            refused.append(exc)
            warnings.append(f"{str(exc).rstrip('.')} (the card, config and weight headers were not read).")
        except HubUnreachableError:
            raise
        except HubmgrError as exc:
            note(exc, what)
        return None

    card_data = _card_data_dict(info.card_data)
    card_text = ""
    readme = next((p for p in paths if p.lower() == "readme.md"), None)
    if readme and (sizes.get(readme) or 0) <= MAX_CARD_BYTES:
        text = guarded(lambda: _fetch_text(settings, repo_id, readme, rev), "model card not read")
        if text is not None:
            meta, card_text = split_card(text)
            card_data = meta or card_data

    config: dict[str, Any] = {}
    if "config.json" in paths and (sizes.get("config.json") or 0) <= MAX_CONFIG_BYTES:
        text = guarded(lambda: _fetch_text(settings, repo_id, "config.json", rev), "config.json not read")
        if text is not None:
            try:
                loaded = json.loads(text)
                config = loaded if isinstance(loaded, dict) else {}
            except json.JSONDecodeError:
                warnings.append("config.json is not valid JSON.")

    param_count, dtypes = None, {}
    counted = guarded(
        lambda: _param_count(
            paths,
            lambda p: _fetch_text(settings, repo_id, p, rev),
            lambda p: read_remote_header(settings, repo_id, p, rev, size=sizes.get(p)),
        ),
        "parameters not counted",
    )
    if counted is not None:
        param_count, dtypes = counted
    if param_count is None and getattr(info, "safetensors", None) is not None:
        # The Hub's own count (from the same headers), when we could not read them ourselves.
        dtypes = dict(info.safetensors.parameters or {})
        param_count = int(info.safetensors.total or sum(dtypes.values())) or None

    tags = [str(t) for t in (info.tags or [])]
    return ModelDetails(
        id=info.id or repo_id,
        sha=sha,
        revision=revision or "main",
        card_text=card_text,
        card_data=card_data,
        files=files,
        total_size=sum(f.size or 0 for f in files),
        license=license_of(card_data, tags),
        gated=gated,
        pipeline_tag=info.pipeline_tag or card_data.get("pipeline_tag"),
        library=info.library_name or card_data.get("library_name"),
        param_count=param_count,
        dtypes=dtypes,
        tags=tags,
        downloads=info.downloads,
        likes=info.likes,
        last_modified=info.last_modified,
        config=config,
        warnings=warnings,
    )


# --- local cache -----------------------------------------------------------------------------------
def read_local_header(path: Path) -> dict[str, int]:
    """Parameters per dtype from a local safetensors file's header (reads only the header).

    Raises:
        HubError: not a valid safetensors file.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        n = header_length(fh.read(8), name=path.name, file_size=size)
        raw = fh.read(n)
    if len(raw) < n:
        raise HubError(f"{path.name} ended inside its safetensors header.")
    return parse_safetensors_header(raw, name=path.name)


def details_from_cache(
    repo_id: str, *, revision: str | None = None, settings: Settings | None = None, reason: str | None = None
) -> ModelDetails | None:
    """Describe a repo from the local Hugging Face cache (no network).

    Args:
        repo_id: ``org/name``.
        revision: branch, tag, commit or commit prefix; ``main`` by default. It names the snapshot
            :func:`hubmgr.hub.layout.cached_commit` picks, the one ``train`` loads.
        settings: where the cache is.
        reason: why the cache is used (goes into ``warnings``).

    Returns:
        The details (``from_cache=True``), or None when that revision is not cached.

    Raises:
        UsageError: the revision is a commit prefix that matches several cached snapshots.
    """
    s = resolve_settings(settings)
    storage = layout.repo_dir(s, repo_id)
    commit = layout.cached_commit(storage, revision)
    if commit is None:
        return None
    snap = layout.snapshot_dir(storage, commit)
    files: list[RepoFile] = []
    for dirpath, _dirnames, filenames in os.walk(snap):
        for name in filenames:
            full = Path(dirpath) / name
            try:
                size = full.stat().st_size  # follows the symlink into blobs/
            except OSError:  # a dangling link: the blob is gone
                continue
            blob = os.path.basename(os.path.realpath(full))
            rel = full.relative_to(snap).as_posix()
            files.append(RepoFile(path=rel, size=size, lfs_sha256=blob if _HEX64.match(blob) else None))
    files.sort(key=lambda f: f.path)
    paths = [f.path for f in files]
    warnings = [f"Shown from the local cache{f' ({reason})' if reason else ''}; files not downloaded are not listed."]

    card_data: dict[str, Any] = {}
    card_text = ""
    readme = next((p for p in paths if p.lower() == "readme.md"), None)
    if readme:
        card_data, card_text = split_card((snap / readme).read_text(encoding="utf-8", errors="replace"))
    config: dict[str, Any] = {}
    if "config.json" in paths:
        try:
            loaded = json.loads((snap / "config.json").read_text(encoding="utf-8"))
            config = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            warnings.append("config.json is not valid JSON.")
    param_count: int | None = None
    dtypes: dict[str, int] = {}
    try:
        param_count, dtypes = _param_count(
            paths,
            lambda p: (snap / p).read_text(encoding="utf-8"),
            lambda p: read_local_header(snap / p),
        )
    except (HubmgrError, OSError) as exc:
        warnings.append(f"parameters not counted: {exc}")

    card_tags = card_data.get("tags")
    tags = card_tags if isinstance(card_tags, list) else []
    try:
        mtime = datetime.fromtimestamp(snap.stat().st_mtime, tz=timezone.utc)
    except OSError:
        mtime = None
    return ModelDetails(
        id=repo_id,
        sha=commit,
        revision=revision or "main",
        card_text=card_text,
        card_data=card_data,
        files=files,
        total_size=sum(f.size or 0 for f in files),
        license=license_of(card_data, tags),
        gated=False,
        pipeline_tag=card_data.get("pipeline_tag"),
        library=card_data.get("library_name"),
        param_count=param_count,
        dtypes=dtypes,
        tags=[str(t) for t in tags],
        downloads=None,
        likes=None,
        last_modified=mtime,
        config=config,
        from_cache=True,
        warnings=warnings,
    )


# --- public ----------------------------------------------------------------------------------------
def get_model_info(repo_id: str, *, revision: str | None = None, settings: Settings | None = None) -> ModelDetails:
    """Describe one model repo at a revision: card, files and sizes, license, gating, parameters.

    The weights are never downloaded: parameters come from safetensors headers read by HTTP range.
    Offline, when the Hub is unreachable, or when the endpoint lacks the info API, a cached repo is
    described from the cache (``from_cache=True``).

    Args:
        repo_id: ``org/name``.
        revision: branch, tag or commit (``main`` by default).
        settings: endpoint, token, cache; read from the environment when None.

    Returns:
        A :class:`ModelDetails`. Parts that cannot be read (files of a gated repo without access, a
        malformed header) are left empty and explained in ``warnings``.

    Raises:
        UsageError: the repo id is malformed.
        RepoNotFoundError: no such repo (or private without a token).
        RevisionNotFoundError: no such revision.
        GatedRepoError: the Hub refuses even the repo's metadata because it is gated.
        AuthError: the token is rejected.
        HubUnreachableError: offline / unreachable and the repo is not in the local cache.
        UnsupportedByMirrorError: the endpoint lacks the info API and the repo is not cached.
        RateLimitedError, HubError: other Hub failures.
    """
    repo_id = layout.validate_repo_id(repo_id)
    s = resolve_settings(settings)
    if s.offline:
        details = details_from_cache(repo_id, revision=revision, settings=s, reason="HF_HUB_OFFLINE is set")
        if details is None:
            raise HubUnreachableError(
                f"HF_HUB_OFFLINE is set and '{repo_id}'{_at(revision)} is not in the local cache."
            )
        return details
    try:
        return _from_hub(repo_id, revision, s)
    except (HubUnreachableError, UnsupportedByMirrorError) as exc:
        reason = (
            f"the Hub at {s.endpoint} is unreachable"
            if isinstance(exc, HubUnreachableError)
            else f"{s.endpoint} does not serve the model info API"
        )
        details = details_from_cache(repo_id, revision=revision, settings=s, reason=reason)
        if details is None:
            if isinstance(exc, HubUnreachableError):
                raise HubUnreachableError(
                    f"{exc.message.rstrip('.')} and '{repo_id}'{_at(revision)} is not in the local cache."
                ) from exc
            raise
        return details


def _at(revision: str | None) -> str:
    return f" at '{revision}'" if revision else ""


__all__ = [
    "ModelDetails",
    "RepoFile",
    "get_model_info",
    "details_from_cache",
    "split_card",
    "license_of",
    "parse_safetensors_header",
    "read_remote_header",
    "read_local_header",
]
