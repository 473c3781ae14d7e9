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
7. ``compute_metrics(predictions, labels, data, options)`` -> ``{"accuracy": ...}``. ``predictions`` are
   what ``reduce_logits`` returned, gathered over the whole split as numpy arrays. A value may also be
   one number per label (a ``{label: number}`` dict, or a list or 1-D array in the order of
   ``data.info["label_names"]``): a table, shown as one in ``hubmgr eval`` and kept in the run record. (A plugin written
   for the older three-argument form still works: ``options`` is passed only when the method takes it.)
8. ``predict(model, processor, inputs, options, data)`` -> one human-readable prediction per input.

Optional, each with a default that keeps the behaviour of a task that does not define it:

- ``main_metric_for(data)`` -> ``(name, greater_is_better)``: the metric that decides "best" for this
  data (multi-label data is judged on micro-F1, single-label on accuracy); default the class attributes.
- ``metric_directions`` (class attribute) -> ``{"hamming_loss": False}``: the direction of any other
  metric that is not "greater is better" by the convention (``loss``, ``*_loss``, ``*_stderr`` lower);
  ``None`` marks an auxiliary metric (reported, never compared or marked best: a count, a mean
  confidence); ``greater_is_better_for(name, data)`` answers for any metric name.
- ``auto_model_class`` (class attribute) -> the transformers auto class named in the adapter's model card.
- ``compute_loss(outputs, labels, data, options)`` -> a mean-reduced loss tensor, or ``None`` for the
  model's own loss (class weights, focal loss, label smoothing).
- ``calibrate(predictions, labels, data, options)`` -> values tuned on the eval split once training
  ends (a decision threshold); they are merged into ``data.info``, saved with the adapter and seen by
  ``compute_metrics`` and ``predict`` in ``hubmgr eval`` and ``hubmgr predict``.
- ``per_class(predictions, labels, data, options)`` -> one ``{"label", "precision", "recall", "f1",
  "support"}`` dict per label (``hubmgr eval --per-class``); default ``None`` (not offered).
- ``baseline_metrics(labels, data, options)`` -> the metrics of a predictor that ignores its input
  (the majority class, the label frequencies); training says so when an adapter does no better.

Heavy libraries (torch, transformers, datasets) are imported inside the methods, never at module import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

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
        purpose: ``"train"`` when the data trains an adapter, ``"eval"`` when ``hubmgr eval`` only scores
            it (checks that matter only for training, such as "at least two classes", may be skipped).
    """

    train: str
    eval: str | None = None
    train_split: str = "train"
    eval_split: str = "validation"
    eval_fraction: float = 0.1
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    seed: int = 42
    purpose: str = "train"


@dataclass
class TaskData:
    """The loaded splits plus what the task learned from them (label names, ...)."""

    train: "datasets.Dataset | None"
    eval: "datasets.Dataset | None"
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoraDefaults:
    """What the task suggests for peft's LoraConfig; the user's TrainConfig can override targets."""

    task_type: str | None  # peft TaskType name: "SEQ_CLS", "TOKEN_CLS", "CAUSAL_LM" or None
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
    #: The direction of metrics (other than the main one) that do not follow the convention of
    #: :func:`hubmgr.metrics.conventional_direction` (``loss``, ``*_loss``, ``*_stderr`` lower, the rest
    #: higher is better): ``{"hamming_loss": False, "coverage_error": False}``. Used by the TUI's best-value
    #: marking and kept in run records and evaluation reports.
    metric_directions: ClassVar[dict[str, bool | None]] = {}
    #: The transformers auto class that loads the base model (named in the adapter's model card).
    auto_model_class: ClassVar[str] = "AutoModel"
    #: The model's loss is a sum over tokens normalised by the batch's token count (causal LM), so under
    #: DDP the Trainer averages tokens across processes; a mean over examples (classification) must not be.
    loss_sums_over_tokens: ClassVar[bool] = False

    # -- data ----------------------------------------------------------------------------------------
    def load_data(self, source: DataSource, options: Any) -> TaskData:
        """Load and check the data. Raises DataError with one clear sentence."""
        raise NotImplementedError

    def check_source(self, source: str, *, split: str = "train", settings: Any = None) -> list[str] | None:
        """Check, cheaply and without loading it, what :meth:`load_data` would refuse of ``source`` at once
        (a form runs it before a run starts); returns the column names of its first rows, or None when
        they cannot be told cheaply. The default is :func:`hubmgr.data.check_source` (tables and Hub ids);
        a task that reads other layouts (class folders of images) overrides it.

        Raises:
            HubmgrError: one sentence, as :meth:`load_data` would raise it.
        """
        from hubmgr.data import check_source

        return check_source(source, split=split, settings=settings)

    def required_columns(self, options: Any, columns: Sequence[str]) -> Mapping[str, str | None]:
        """The columns, by option (``{"text_column": "text"}``), that :meth:`load_data` requires of data
        whose first rows have ``columns``: a form checks them before a run starts (with
        :func:`hubmgr.data.check_column_names`). ``{}`` (the default) when the task cannot tell before it
        loads the data.

        Raises:
            DataError: the columns show already that the data does not fit the task.
        """
        return {}

    # -- model ---------------------------------------------------------------------------------------
    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """Return ``(model, processor)``. ``load_kwargs`` holds revision, dtype, trust_remote_code,
        use_safetensors, gguf_file, local_files_only... to pass to ``from_pretrained``."""
        raise NotImplementedError

    def lora_defaults(self, model: Any, options: Any) -> LoraDefaults:
        from hubmgr.train.lora import find_target_modules

        return LoraDefaults(task_type=None, target_modules=find_target_modules(model))

    # -- features ------------------------------------------------------------------------------------
    def preprocess(
        self, dataset: "datasets.Dataset", processor: Any, options: Any, max_length: int, data: TaskData
    ) -> "datasets.Dataset":
        raise NotImplementedError

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        raise NotImplementedError

    # -- metrics -------------------------------------------------------------------------------------
    def reduce_logits(self, logits: Any, labels: Any, options: Any = None, data: TaskData | None = None) -> Any:
        """Shrink one batch's logits before they are gathered (default: argmax over the last axis).
        ``options`` are the run's resolved options and ``data`` its :class:`TaskData` (label names and
        what ``calibrate`` saved are in ``data.info``)."""
        import torch

        if isinstance(logits, tuple):
            logits = logits[0]
        return torch.argmax(logits, dim=-1)

    def compute_metrics(
        self, predictions: "np.ndarray", labels: "np.ndarray", data: TaskData, options: Any = None
    ) -> dict[str, float]:
        raise NotImplementedError

    def main_metric_for(self, data: TaskData | None) -> tuple[str, bool]:
        """The metric that decides "best" on this data and whether greater is better (default: the class
        attributes ``main_metric`` and ``greater_is_better``)."""
        return type(self).main_metric, bool(type(self).greater_is_better)

    def greater_is_better_for(self, name: str, data: TaskData | None = None) -> bool | None:
        """Whether greater is better for the metric ``name`` (with or without its ``eval_`` prefix): the
        main metric's direction, else ``metric_directions`` (``None`` there: an auxiliary metric, never
        compared), else the convention."""
        from hubmgr.metrics import greater_is_better, is_auxiliary

        main, greater = self.main_metric_for(data)
        bare = name[5:] if name.startswith("eval_") else name
        if bare == main:
            return greater
        if is_auxiliary(bare, type(self).metric_directions):
            return None
        return greater_is_better(bare, type(self).metric_directions)

    def compute_loss(self, outputs: Any, labels: Any, data: TaskData, options: Any) -> Any:
        """The training loss from the model's ``outputs`` and the batch's ``labels``, mean-reduced over the
        batch; ``None`` (the default) keeps the model's own loss."""
        return None

    def calibrate(
        self, predictions: "np.ndarray", labels: "np.ndarray", data: TaskData, options: Any
    ) -> dict[str, Any]:
        """Values tuned on the eval split's predictions once training ends (JSON-able), merged into
        ``data.info`` and saved with the adapter. Default: nothing to tune."""
        return {}

    def per_class(
        self, predictions: "np.ndarray", labels: "np.ndarray", data: TaskData, options: Any = None
    ) -> list[dict[str, Any]] | None:
        """Precision, recall, F1 and support per label, or None when the task has no such breakdown."""
        return None

    def baseline_metrics(self, labels: "np.ndarray", data: TaskData, options: Any = None) -> dict[str, float]:
        """Metrics of a predictor that ignores its input, on these labels (default: none known)."""
        return {}

    def extra_eval(
        self,
        model: Any,
        processor: Any,
        options: Any,
        data: TaskData,
        predictions: Any = None,
        labels: Any = None,
        split: Any = None,
    ) -> dict[str, Any]:
        """Anything else worth keeping in the run record after evaluation (sample generations, the worst
        errors...). ``data.eval`` holds the raw rows that were scored (``--max-samples`` applied), in
        training and in ``hubmgr eval`` alike; ``predictions`` and ``labels`` are what ``compute_metrics``
        saw for this model, and ``split`` the preprocessed examples they belong to, row for row."""
        return {}

    # -- use -----------------------------------------------------------------------------------------
    def predict(self, model: Any, processor: Any, inputs: Sequence[Any], options: Any, data: TaskData) -> list[Any]:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------------
    @classmethod
    def option_fields(cls) -> list[dataclasses.Field[Any]]:
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


def _parameters(fn: Any) -> list[Any]:
    import inspect

    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins or odd callables
        return []


def _keywords_taken(fn: Any, offered: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``offered`` that ``fn`` accepts as keywords (all of them for ``**kwargs``)."""
    params = _parameters(fn)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return dict(offered)
    return {p.name: offered[p.name] for p in params if p.name in offered and p.kind is not p.POSITIONAL_ONLY}


def call_compute_metrics(task: Task, predictions: Any, labels: Any, data: TaskData, options: Any) -> dict[str, float]:
    """``task.compute_metrics`` with ``options`` when the method takes it (plugins written for the
    three-argument form keep working). The one place training and evaluation call it through."""
    fn = task.compute_metrics
    params = _parameters(fn)
    takes_options = (
        any(p.name == "options" or p.kind is p.VAR_KEYWORD for p in params)
        or sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)) >= 4
        or any(p.kind is p.VAR_POSITIONAL for p in params)
    )
    if takes_options:
        return fn(predictions, labels, data, options) or {}
    return fn(predictions, labels, data) or {}


def compute_metric_values(
    task: Task, predictions: Any, labels: Any, data: TaskData, options: Any
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """:func:`call_compute_metrics` as ``(scalar metrics, per-label tables)`` (:func:`hubmgr.metrics.split_tables`,
    the labels named by ``data.info["label_names"]``). Training and evaluation read a task's metrics
    through here, so a table never reaches the Trainer's logs and reads the same in both."""
    from hubmgr.metrics import split_tables

    values = call_compute_metrics(task, predictions, labels, data, options)
    info = getattr(data, "info", None) or {}
    return split_tables(values, info.get("label_names"))


def call_reduce_logits(task: Task, logits: Any, labels: Any, options: Any, data: TaskData | None) -> Any:
    """``task.reduce_logits`` with ``options`` and ``data`` passed when the method takes them (plugins written
    for the two-argument form keep working). Training and evaluation call it through here."""
    fn = task.reduce_logits
    return fn(logits, labels, **_keywords_taken(fn, {"options": options, "data": data}))


def call_extra_eval(
    task: Task, model: Any, processor: Any, options: Any, data: TaskData, *, predictions: Any, labels: Any, split: Any
) -> dict[str, Any]:
    """``task.extra_eval`` with the predictions, labels and scored split passed to the ones it takes (a
    plugin written for the four-argument form keeps working). Training and evaluation call it through here."""
    fn = task.extra_eval
    offered = {"predictions": predictions, "labels": labels, "split": split}
    return fn(model, processor, options, data, **_keywords_taken(fn, offered)) or {}
