"""hubmgr: terminal-first manager for pre-trained models.

The public API, for scripts and plugin authors. Names load lazily, so ``import hubmgr`` stays light
(no torch until you train or evaluate)::

    import hubmgr

    result = hubmgr.train(hubmgr.TrainConfig(task="text-classification", model="path/or/repo", data="train.csv"))
    report = hubmgr.evaluate("path/or/repo", [result.adapter_path], task="text-classification", data="eval.csv")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    # plugins
    "hookimpl": ("hubmgr.hookspecs", "hookimpl"),
    "hookspec": ("hubmgr.hookspecs", "hookspec"),
    "RunInfo": ("hubmgr.hookspecs", "RunInfo"),
    "get_tasks": ("hubmgr.plugins", "get_tasks"),
    "get_task": ("hubmgr.plugins", "get_task"),
    "list_plugins": ("hubmgr.plugins", "list_plugins"),
    # the task contract
    "Task": ("hubmgr.task", "Task"),
    "TaskData": ("hubmgr.task", "TaskData"),
    "DataSource": ("hubmgr.task", "DataSource"),
    "LoraDefaults": ("hubmgr.task", "LoraDefaults"),
    "NoOptions": ("hubmgr.task", "NoOptions"),
    "load_table": ("hubmgr.data", "load_table"),
    "check_columns": ("hubmgr.data", "check_columns"),
    "split_train_eval": ("hubmgr.data", "split_train_eval"),
    # training and evaluation
    "TrainConfig": ("hubmgr.train.config", "TrainConfig"),
    "TrainResult": ("hubmgr.train.runner", "TrainResult"),
    "evaluate": ("hubmgr.eval.runner", "evaluate"),
    "EvalReport": ("hubmgr.eval.runner", "EvalReport"),
    "predict": ("hubmgr.eval.predict", "predict"),
    "Prediction": ("hubmgr.eval.predict", "Prediction"),
    "RunStore": ("hubmgr.runs.store", "RunStore"),
    # the Hub
    "search_models": ("hubmgr.hub.search", "search_models"),
    "get_model_info": ("hubmgr.hub.info", "get_model_info"),
    "estimate_fit": ("hubmgr.hub.fit", "estimate_fit"),
    "download_repo": ("hubmgr.hub.download", "download_repo"),
    "list_cached": ("hubmgr.hub.cache", "list_cached"),
    # settings and errors
    "get_settings": ("hubmgr.config", "get_settings"),
    "Settings": ("hubmgr.config", "Settings"),
    "HubmgrError": ("hubmgr.errors", "HubmgrError"),
    "DataError": ("hubmgr.errors", "DataError"),
    "ModelError": ("hubmgr.errors", "ModelError"),
    "UsageError": ("hubmgr.errors", "UsageError"),
}

__all__ = sorted([*_EXPORTS, "train"]) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name == "train":  # the package is callable: hubmgr.train(config) runs hubmgr.train.runner.train
        return importlib.import_module("hubmgr.train")
    try:
        module_name, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'hubmgr' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover  (the same names as _EXPORTS: a test checks it)
    from hubmgr.config import get_settings, Settings
    from hubmgr.data import check_columns, load_table, split_train_eval
    from hubmgr.errors import DataError, HubmgrError, ModelError, UsageError
    from hubmgr.eval.predict import predict, Prediction
    from hubmgr.eval.runner import EvalReport, evaluate
    from hubmgr.hookspecs import hookimpl, hookspec, RunInfo
    from hubmgr.hub.cache import list_cached
    from hubmgr.hub.download import download_repo
    from hubmgr.hub.fit import estimate_fit
    from hubmgr.hub.info import get_model_info
    from hubmgr.hub.search import search_models
    from hubmgr.plugins import get_task, get_tasks, list_plugins
    from hubmgr.runs.store import RunStore
    from hubmgr.task import DataSource, LoraDefaults, NoOptions, Task, TaskData
    from hubmgr.train.config import TrainConfig
    from hubmgr.train.runner import TrainResult
