"""The task contract: what a task plugin provides, written once and used by the CLI, the TUI and scripts.

A task plugin subclasses :class:`Task` and registers the class through the ``register_tasks(register)``
hook. The training engine (``hubmgr.train``) and the evaluator (``hubmgr.eval``) drive it:

1. ``options_class`` - a dataclass of the task's own options. Every field has a default and
   ``metadata={"help": "..."}``; the same definition becomes CLI flags (``--text-column``), TOML keys
   (``[options] text_column = ...``) and the TUI form.
2. ``load_data(source, options)`` -> :class:`TaskData` (``datasets.Dataset`` splits plus ``info`` such
   as label names). Column mapping is checked up front: a missing column raises
   :class:`hubmgr.errors.DataError` naming the column and the columns that exist.
3. ``load_model(model_path, options, data, load_kwargs)`` -> ``(model, processor)``. Raises
   :class:`hubmgr.errors.ModelError` when the architecture cannot do the task.
4. ``lora_defaults(model, options)`` -> :class:`LoraDefaults` (peft task type, target modules found from
   the architecture, heads kept trainable).
5. ``preprocess(dataset, processor, options, max_length)`` -> a tokenized ``datasets.Dataset`` with the
   model's input columns, ``labels`` and an integer ``length`` column (length-grouped batching uses it).
6. ``collator(processor, options)`` -> a callable that pads a list of examples dynamically.
7. ``compute_metrics(predictions, labels, data)`` -> ``{"accuracy": ...}``. ``predictions`` are what
   ``reduce_logits`` returned, gathered over the whole split as numpy arrays.
8. ``predict(model, processor, inputs, options, data)`` -> one human-readable prediction per input.

Heavy libraries (torch, transformers, datasets) are imported inside the methods, never at module import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import numpy as np


@dataclass
class NoOptions:
    """A task without options of its own."""


@dataclass
class DataSource:
    """Where the data comes from.

    Attributes:
        train: path to a CSV/JSON/JSONL/Parquet file, a folder (image class folders, text files), or a
            Hub dataset id (``user/name``, optionally ``user/name:config``) when the Hub is reachable.
        eval: same for the evaluation split; ``None`` splits ``eval_fraction`` off ``train`` (seeded).
        train_split / eval_split: split names inside a Hub dataset or a multi-split folder.
        eval_fraction: fraction held out when no eval data is given (0 disables evaluation).
        max_train_samples / max_eval_samples: take the first N examples (after shuffling with ``seed``).
        seed: for the held-out split and sampling.
    """

    train: str
    eval: str | None = None
    train_split: str = "train"
    eval_split: str = "validation"
    eval_fraction: float = 0.1
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    seed: int = 42


@dataclass
class TaskData:
    """The loaded splits plus what the task learned from them (label names, ...)."""

    train: "datasets.Dataset | None"
    eval: "datasets.Dataset | None"
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoraDefaults:
    """What the task suggests for peft's LoraConfig; the user's TrainConfig can override targets."""

    task_type: str | None                       # peft TaskType name: "SEQ_CLS", "TOKEN_CLS", "CAUSAL_LM" or None
    target_modules: list[str] = field(default_factory=list)
    modules_to_save: list[str] = field(default_factory=list)


class Task:
    """Base class of task plugins. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Hub pipeline tags this task fits; the browser filters on them.
    pipeline_tags: ClassVar[tuple[str, ...]] = ()
    options_class: ClassVar[type] = NoOptions
    #: The metric that decides "best" for early stopping and for the run summary.
    main_metric: ClassVar[str] = "loss"
    greater_is_better: ClassVar[bool] = False

    # -- data ----------------------------------------------------------------------------------------
    def load_data(self, source: DataSource, options: Any) -> TaskData:
        """Load and check the data. Raises DataError with one clear sentence."""
        raise NotImplementedError

    # -- model ---------------------------------------------------------------------------------------
    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """Return ``(model, processor)``. ``load_kwargs`` holds revision, dtype, trust_remote_code,
        use_safetensors, gguf_file, local_files_only... to pass to ``from_pretrained``."""
        raise NotImplementedError

    def lora_defaults(self, model: Any, options: Any) -> LoraDefaults:
        from hubmgr.train.lora import find_target_modules

        return LoraDefaults(task_type=None, target_modules=find_target_modules(model))

    # -- features ------------------------------------------------------------------------------------
    def preprocess(self, dataset: "datasets.Dataset", processor: Any, options: Any, max_length: int, data: TaskData) -> "datasets.Dataset":
        raise NotImplementedError

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        raise NotImplementedError

    # -- metrics -------------------------------------------------------------------------------------
    def reduce_logits(self, logits: Any, labels: Any) -> Any:
        """Shrink logits before they are gathered (default: argmax over the last axis)."""
        import torch

        if isinstance(logits, tuple):
            logits = logits[0]
        return torch.argmax(logits, dim=-1)

    def compute_metrics(self, predictions: "np.ndarray", labels: "np.ndarray", data: TaskData) -> dict[str, float]:
        raise NotImplementedError

    def extra_eval(self, model: Any, processor: Any, options: Any, data: TaskData) -> dict[str, Any]:
        """Anything else worth keeping in the run record after evaluation (sample generations...)."""
        return {}

    # -- use -----------------------------------------------------------------------------------------
    def predict(self, model: Any, processor: Any, inputs: Sequence[Any], options: Any, data: TaskData) -> list[Any]:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------------
    @classmethod
    def option_fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls.options_class))

    @classmethod
    def make_options(cls, values: dict[str, Any] | None = None) -> Any:
        """Build the options dataclass from a dict, refusing unknown keys with one clear sentence."""
        from hubmgr.errors import UsageError

        values = dict(values or {})
        known = {f.name for f in cls.option_fields()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(
                f"Unknown option(s) for task {cls.name!r}: {', '.join(unknown)}."
                f" Known: {', '.join(sorted(known)) or 'none'}."
            )
        return cls.options_class(**values)
