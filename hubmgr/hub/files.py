"""Which files of a repo: the one file-selection rule, and the suffixes that tell weights apart.

:func:`select_files` is what a download fetches, and every place that shows or counts that asks it: the
CLI and API download (:func:`hubmgr.hub.download.download_repo`), the TUI's download preview (through its
backend), what ``ls`` and ``verify`` expect a snapshot to hold (:mod:`hubmgr.hub.cache`). The weight
rules:

* pickle weights (:data:`PICKLE_SUFFIXES`: loading one can run code) are skipped unless ``allow_pickle``;
* even then, a selection that has ``.safetensors`` weights skips the pickle copies ("safetensors wins"),
  unless an ``include`` pattern names them;
* a selection left without usable weights because pickles were refused is refused whole
  (:func:`pickle_only_error`).

:func:`select_safetensors` picks, among those files, the ones that hold the model's weights: what the
parameter count of ``info`` (and so the fit estimate of :mod:`hubmgr.hub.fit`) is read from. Pickle files
never count: they are not fetched by default, and a count needs safetensors headers.

Pure functions on path strings; nothing here touches the network or the disk.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable

from hubmgr.errors import HubError, ModelError

__all__ = [
    "PICKLE_SUFFIXES",
    "SAFETENSORS_SUFFIX",
    "is_pickle",
    "pickle_only_error",
    "select_files",
    "select_safetensors",
    "shards_from_index",
]

#: Pickle-format weights: loading one can run code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
_PICKLE_REFUSED = "pickle weights are not downloaded unless you pass --allow-pickle"


def is_pickle(path: str) -> bool:
    """True for pickle-format weights (.bin .pt .pth .pkl .ckpt)."""
    return path.lower().endswith(PICKLE_SUFFIXES)


def _norm_patterns(patterns: str | Iterable[str] | None) -> list[str] | None:
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for p in patterns:
        p = p.replace("\\", "/")
        if p.endswith("/"):
            p += "*"
        out.append(p)
    return out


def _matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def select_files(
    paths: Iterable[str],
    *,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    allow_pickle: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """Choose which repo files to download.

    Globs match like huggingface_hub's ``filter_repo_objects`` (``fnmatch``, ``*`` crosses ``/``, a
    pattern ending in ``/`` means the whole folder). Then the weight rules:

    * pickle weights are skipped unless ``allow_pickle``;
    * with ``allow_pickle``, when the selection also has ``.safetensors`` weights, the pickle copies are
      still skipped ("safetensors only"), unless an ``include`` pattern names them explicitly.

    Args:
        paths: every file path of the repo.
        include: keep only paths matching one of these globs (None: all).
        exclude: drop paths matching one of these globs.
        allow_pickle: allow pickle weights.

    Returns:
        (selected paths in the given order, {skipped path: reason}) - paths dropped by the globs are in
        neither.
    """
    inc = _norm_patterns(include)
    exc = _norm_patterns(exclude)
    chosen = [p for p in paths if (inc is None or _matches(p, inc)) and not (exc and _matches(p, exc))]
    has_safetensors = any(p.lower().endswith(SAFETENSORS_SUFFIX) for p in chosen)
    selected: list[str] = []
    skipped: dict[str, str] = {}
    for p in chosen:
        if not is_pickle(p):
            selected.append(p)
        elif not allow_pickle:
            skipped[p] = _PICKLE_REFUSED
        elif has_safetensors and not (inc and any(_explicit(p, pat) for pat in inc)):
            skipped[p] = "the repo has safetensors weights; name the pickle file with --include to get it too"
        else:
            selected.append(p)
    return selected, skipped


def pickle_only_error(repo_id: str, selected: Iterable[str], skipped: dict[str, str]) -> ModelError | None:
    """The error for a selection that would leave the snapshot without usable weights: pickle weights were
    refused (no ``allow_pickle``) and no ``.safetensors`` file is selected. None when the selection is fine.

    A folder of a config and a tokenizer is not a model: ``MODEL=$(hubmgr download ...)`` must fail rather
    than hand a script an unusable folder.
    """
    refused = sorted(p for p, why in skipped.items() if why == _PICKLE_REFUSED)
    if not refused or any(p.lower().endswith(SAFETENSORS_SUFFIX) for p in selected):
        return None
    names = ", ".join(refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
    return ModelError(
        f"{repo_id} has only pickle weights ({names}) and hubmgr does not download them by default, because "
        "loading a pickle file can run code; nothing was downloaded. Pass --allow-pickle if you trust this repo."
    )


def _explicit(path: str, pattern: str) -> bool:
    """A pattern names a pickle file explicitly when it matches it and is not a bare catch-all."""
    return pattern not in ("*", "**", "*/*") and fnmatch.fnmatchcase(path, pattern)


def select_safetensors(paths: list[str]) -> tuple[str | None, list[str]]:
    """Which safetensors files hold the model's weights.

    Root-level ``model.safetensors.index.json`` (shards listed inside), else root ``model.safetensors``,
    else the other root ``*.safetensors`` (or their ``*.safetensors.index.json``), else every
    ``*.safetensors`` in sub-folders (pipelines made of several models).

    Args:
        paths: the repo's file paths.

    Returns:
        ``(index_path or None, weight files)``; with an index the weight files come from its ``weight_map``.
    """
    root = [p for p in paths if "/" not in p]
    if SAFETENSORS_INDEX in root:
        return SAFETENSORS_INDEX, []
    if SAFETENSORS_SINGLE in root:
        return None, [SAFETENSORS_SINGLE]
    indexes = sorted(p for p in root if p.endswith(".safetensors.index.json"))
    if indexes:
        return indexes[0], []
    root_files = sorted(p for p in root if p.endswith(SAFETENSORS_SUFFIX))
    if root_files:
        return None, root_files
    return None, sorted(p for p in paths if p.endswith(SAFETENSORS_SUFFIX))


def shards_from_index(index_path: str, index: Any) -> list[str]:
    """Shard paths (relative to the repo root) named by a safetensors index's ``weight_map``."""
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise HubError(f"{index_path} has no weight_map.")
    folder = index_path.rsplit("/", 1)[0] + "/" if "/" in index_path else ""
    return sorted({folder + str(v) for v in index["weight_map"].values()})
