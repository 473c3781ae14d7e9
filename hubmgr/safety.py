"""The rule about a model repo's own Python code (``auto_map``), in one place for train, eval, predict and merge.

A repo whose ``config.json`` has an ``auto_map`` ships classes of its own: loading it the way its authors
meant runs that code, and loading it without the code silently gives the built-in class instead, which
may compute something else. So every command that loads a base model refuses such a repo unless the user
passed ``--trust-remote-code`` for that one run (:func:`check_remote_code`), and ``merge`` never writes a
folder whose ``auto_map`` names code it did not copy (:func:`local_code_modules` tells which files that is).

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hubmgr.errors import ModelError

__all__ = ["auto_map_of", "check_remote_code", "local_code_modules", "remote_code_refused"]


def auto_map_of(config_file: str | Path) -> dict[str, Any]:
    """The ``auto_map`` of a JSON config file (``config.json``, ``tokenizer_config.json``...), ``{}`` if none.

    Raises:
        ModelError: the file exists but is not valid JSON.
    """
    path = Path(config_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise ModelError(f"{path} is not valid JSON.") from None
    auto_map = data.get("auto_map") if isinstance(data, dict) else None
    return auto_map if isinstance(auto_map, dict) else {}


def remote_code_refused(model: str) -> ModelError:
    """The error for a repo that needs its own code when ``--trust-remote-code`` was not given."""
    return ModelError(
        f"{model} needs its own Python code (auto_map in config.json); pass --trust-remote-code"
        " only if you trust this repo."
    )


def check_remote_code(folder: str | Path, *, trust_remote_code: bool, model: str | None = None) -> bool:
    """Refuse a model folder whose ``config.json`` has an ``auto_map`` unless remote code is trusted.

    Args:
        folder: the local model folder (a cache snapshot or a folder given by the user).
        trust_remote_code: the user's ``--trust-remote-code`` for this run.
        model: how the user named the model, for the message (default: the folder).

    Returns:
        Whether the model ships its own code (True only when it is trusted).

    Raises:
        ModelError: it needs its own code and ``trust_remote_code`` is false, or config.json is not JSON.
    """
    if not auto_map_of(Path(folder) / "config.json"):
        return False
    if not trust_remote_code:
        raise remote_code_refused(model or str(folder))
    return True


def local_code_modules(auto_map: dict[str, Any]) -> set[str]:
    """The module files (``modeling_x.py``) that an ``auto_map`` expects next to the config.

    Values are ``"module.Class"`` or, for tokenizers, ``["module.Slow", "module.Fast"]``; a value
    ``"org/repo--module.Class"`` names code in another Hub repo, not in this folder, and is left out.
    """
    out: set[str] = set()
    values: list[Any] = []
    for value in auto_map.values():
        values.extend(value if isinstance(value, (list, tuple)) else [value])
    for ref in values:
        if not isinstance(ref, str) or "--" in ref or "." not in ref:
            continue
        module = ref.rsplit(".", 1)[0]
        out.add(module.replace(".", "/") + ".py")
    return out
