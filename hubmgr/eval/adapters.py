"""Finding adapters and what they were trained with: folder checks, registry ids, saved run metadata.

An adapter folder written by ``hubmgr train`` holds peft's ``adapter_config.json`` and
``adapter_model.safetensors`` plus ``hubmgr_run.json`` (task, base model and revision, task options,
``data_info`` with the label mapping, max_length). The file may also sit one level up (the run's output
folder when the adapter is a sub-folder). Adapters from elsewhere only have ``adapter_config.json``;
then the base model comes from its ``base_model_name_or_path`` and the labels from the data.

No heavy imports here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubmgr.errors import ModelError, RunNotFoundError
from hubmgr.train._outputs import RUN_FILE as RUN_META_FILE  # the one home of the run record's name

ADAPTER_CONFIG = "adapter_config.json"
_SNAPSHOT_RE = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\](?P<sha>[0-9a-f]{40})")


@dataclass(frozen=True)
class AdapterInfo:
    """What is known about one adapter folder.

    Attributes:
        path: the folder (resolved).
        name: display name (the registry id, or the folder name).
        base_model: the base model it was trained on (repo id or path), if known.
        base_revision: the base model's commit sha, if known.
        task: task name, if known.
        options: the task options used in training (may be empty).
        data_info: ``TaskData.info`` saved at training (label names / mapping...); empty when unknown.
        max_length: the training max length, if saved.
        run_id: the run that produced it, if known.
        peft_config: the parsed ``adapter_config.json``.
        task_provider: the plugin, package and version that provided the task at training
            (:func:`hubmgr.plugins.task_provider`); empty when not recorded.
    """

    path: Path
    name: str
    base_model: str | None = None
    base_revision: str | None = None
    task: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    data_info: dict[str, Any] = field(default_factory=dict)
    max_length: int | None = None
    run_id: str | None = None
    peft_config: dict[str, Any] = field(default_factory=dict)
    task_provider: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _first(*dicts: dict[str, Any] | None, keys: tuple[str, ...]) -> Any:
    for d in dicts:
        if not isinstance(d, dict):
            continue
        for key in keys:
            value = d.get(key)
            if value not in (None, "", {}):
                return value
    return None


def resolve_adapter_ref(ref: str | Path, *, settings: Any = None) -> tuple[Path, str | None]:
    """Turn what a user typed (a folder, a run id or an adapter id from the registry) into a folder.

    Args:
        ref: a folder path, or an id / unique id prefix known to the run registry.
        settings: hubmgr settings (for the registry location).

    Returns:
        ``(folder, registry_id_or_None)``.

    Raises:
        ModelError: neither a folder nor a known id.
    """
    path = Path(str(ref)).expanduser()
    if path.exists():
        return path.resolve(), None
    text = str(ref)
    looks_like_path = any(sep in text for sep in ("/", "\\")) or text.startswith(".")
    try:
        from hubmgr.runs.store import RunStore

        if settings is None:
            from hubmgr.config import get_settings

            settings = get_settings()
        if settings.runs_db.exists():
            store = RunStore(settings.runs_db)
            try:
                rec = store.get_adapter(text)
                return Path(rec.path), rec.id
            except RunNotFoundError:
                run = store.get_run(text)
                if run.adapter_path:
                    return Path(run.adapter_path), run.id
                raise ModelError(f"Run {run.id} has no adapter (status: {run.status}).") from None
    except RunNotFoundError:
        pass
    if looks_like_path:
        raise ModelError(f"Adapter folder {text} does not exist.")
    raise ModelError(f"{text!r} is neither an adapter folder nor a run or adapter id (see `hubmgr adapters`).")


def read_adapter_info(path: str | Path, *, name: str | None = None) -> AdapterInfo:
    """Check that ``path`` is a peft adapter folder and read what it was trained with.

    Args:
        path: the adapter folder.
        name: display name (default: the folder name).

    Returns:
        The :class:`AdapterInfo`.

    Raises:
        ModelError: the folder is missing, is not an adapter, or its config is unreadable.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelError(f"Adapter folder {folder} does not exist.")
    if not folder.is_dir():
        raise ModelError(f"{folder} is a file, not an adapter folder.")
    cfg_file = folder / ADAPTER_CONFIG
    if not cfg_file.is_file():
        raise ModelError(f"{folder} is not an adapter folder (no {ADAPTER_CONFIG}).")
    peft_cfg = _read_json(cfg_file)
    if peft_cfg is None:
        raise ModelError(f"{cfg_file} is not valid JSON.")
    if not any((folder / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ModelError(f"{folder} has an adapter config but no adapter weights (adapter_model.safetensors).")

    meta = _read_json(folder / RUN_META_FILE) or _read_json(folder.parent / RUN_META_FILE) or {}
    cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    base = _first(meta, cfg, keys=("model", "base_model", "model_name_or_path"))
    peft_base = peft_cfg.get("base_model_name_or_path")
    if not base or (_missing_local_path(base) and peft_base and Path(str(peft_base)).expanduser().is_dir()):
        base = peft_base or base  # a relative path in the run record (cwd changed): peft's copy is absolute
    revision = _first(meta, cfg, keys=("revision", "base_revision", "model_revision", "commit"))
    revision = revision or peft_cfg.get("revision")
    task = _first(meta, cfg, keys=("task",))
    options = _first(meta, cfg, keys=("options", "task_options")) or {}
    data_info = _first(meta, cfg, keys=("data_info", "label_info", "info")) or {}
    max_length = _first(meta, cfg, keys=("max_length", "max_seq_length"))
    run_id = _first(meta, cfg, keys=("run_id",))
    provider = meta.get("task_provider")
    return AdapterInfo(
        path=folder.resolve(),
        name=name or folder.name,
        base_model=str(base) if base else None,
        base_revision=str(revision) if revision else None,
        task=str(task) if task else None,
        options=dict(options) if isinstance(options, dict) else {},
        data_info=dict(data_info) if isinstance(data_info, dict) else {},
        max_length=int(max_length) if isinstance(max_length, (int, float)) else None,
        run_id=str(run_id) if run_id else None,
        peft_config=peft_cfg,
        task_provider=dict(provider) if isinstance(provider, dict) else {},
    )


_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def _missing_local_path(ref: Any) -> bool:
    """``ref`` reads as a file-system path (not a Hub repo id) and is not a folder here."""
    text = str(ref)
    if Path(text).expanduser().is_dir():
        return False
    return not _REPO_ID_RE.match(text) or text.startswith((".", "~"))


def normalize_model_ref(ref: str | Path | None) -> tuple[str, str | None]:
    """A comparable name for a model reference, and the commit sha when the path is a cache snapshot.

    ``.../models--org--name/snapshots/<sha>`` becomes ``("org/name", sha)``; other paths and repo ids
    are returned without a trailing slash.
    """
    if not ref:
        return "", None
    text = str(ref).rstrip("/\\")
    m = _SNAPSHOT_RE.search(text)
    if m:
        return f"{m['org']}/{m['name']}", m["sha"]
    return text, None


def same_base(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two model references name the same model, loosely (cache snapshot = repo id, same
    last path component = same model)."""
    na, _ = normalize_model_ref(a)
    nb, _ = normalize_model_ref(b)
    if not na or not nb:
        return True  # unknown: nothing to compare
    if na == nb:
        return True
    try:
        if Path(na).exists() and Path(nb).exists() and Path(na).resolve() == Path(nb).resolve():
            return True
    except OSError:
        pass
    return na.replace("\\", "/").rsplit("/", 1)[-1].lower() == nb.replace("\\", "/").rsplit("/", 1)[-1].lower()
