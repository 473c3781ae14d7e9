"""Test helpers that ship with hubmgr so later issues and plugin authors can reuse them.

- :class:`HubServer`: a Hub-compatible HTTP server on 127.0.0.1 (search, model info, tree, resolve with
  Range, error codes, gated repos, fault injection, byte counters).
- Tiny random models built offline: :func:`tiny_bert_dir`, :func:`tiny_gpt2_dir`, :func:`tiny_llama_dir`,
  :func:`tiny_vit_dir`, :func:`tiny_tokenizer`.
- For "does my task learn" tests: :func:`learnable_bert_dir`, keyword data (:func:`keyword_rows`,
  :func:`write_rows`) and the settings to train them with (:data:`LEARNING_SETTINGS`).

Importing this package is light: names load on first use, and torch/transformers only inside the model
builders.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "HubServer",
    "tiny_tokenizer",
    "tiny_bert_dir",
    "tiny_gpt2_dir",
    "tiny_llama_dir",
    "tiny_vit_dir",
    "learnable_bert_dir",
    "keyword_rows",
    "write_rows",
    "LEARNING_SETTINGS",
    "smoke_test_task",
]

_LAZY = {
    "HubServer": "hubmgr.testing.hub_server",
    "tiny_tokenizer": "hubmgr.testing.models",
    "tiny_bert_dir": "hubmgr.testing.models",
    "tiny_gpt2_dir": "hubmgr.testing.models",
    "tiny_llama_dir": "hubmgr.testing.models",
    "tiny_vit_dir": "hubmgr.testing.models",
    "learnable_bert_dir": "hubmgr.testing.models",
    "keyword_rows": "hubmgr.testing.data",
    "write_rows": "hubmgr.testing.data",
    "LEARNING_SETTINGS": "hubmgr.testing.data",
    "smoke_test_task": "hubmgr.testing.smoke",
}

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.testing.data import LEARNING_SETTINGS, keyword_rows, write_rows
    from hubmgr.testing.hub_server import HubServer
    from hubmgr.testing.smoke import smoke_test_task
    from hubmgr.testing.models import (
        learnable_bert_dir,
        tiny_bert_dir,
        tiny_gpt2_dir,
        tiny_llama_dir,
        tiny_tokenizer,
        tiny_vit_dir,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hubmgr.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
