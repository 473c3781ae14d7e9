"""Evaluate a base model and LoRA adapters side by side on one split.

The base is loaded once through the task plugin; the adapters are attached with peft
(``PeftModel.from_pretrained`` for the first, ``load_adapter`` for the rest) and switched with
``set_adapter``; the base row runs inside ``disable_adapter()``. The split is tokenized once, sorted by
length (dynamic padding then wastes little) and run in batches under ``torch.inference_mode``.

torch, transformers, peft and datasets are imported inside :func:`evaluate`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Callable

from hubmgr.errors import DataError, EvalCancelled, HubmgrError, ModelError, UsageError
from hubmgr.eval.adapters import AdapterInfo, normalize_model_ref, read_adapter_info, resolve_adapter_ref, same_base
from hubmgr.eval.loading import (  # noqa: F401 - resolve_model_path is part of this module's API
    load_kwargs,
    pick_device,
    resolve_base,
    resolve_model_path,
    resolve_options,
    resolve_task,
)
from hubmgr.format import first_line
from hubmgr.metrics import task_directions
from hubmgr.safety import check_remote_code
from hubmgr.train.events import EvalProgress

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.config import Settings
    from hubmgr.task import DataSource, Task

__all__ = ["EvalCancelled", "EvalReport", "EvalRow", "evaluate", "resolve_model_path"]

BASE_ROW = "base"
_LABEL_KEYS = ("labels", "label", "label_ids")
_SAMPLE_COUNT = 5
#: info keys that describe the training data rather than the label set (adapters may differ in them)
_NOT_LABEL_SET = ("label_counts",)


@dataclass(frozen=True)
class EvalRow:
    """One evaluated model: ``base`` or an adapter.

    Attributes:
        name: ``base`` or the adapter's display name (registry id or folder name).
        path: the adapter folder (the base model's folder for the base row).
        metrics: from the task's ``compute_metrics`` plus ``loss`` when the model returns one.
        extras: what the task's ``extra_eval`` returned (sample generations...).
        seconds: wall time of the inference loop.
        samples_per_second: examples per second of the inference loop.
        per_class: with ``per_class=True``, one ``{"label", "precision", "recall", "f1", "support"}``
            dict per label from the task's ``per_class``; None otherwise (or when the task has none).
        tables: the per-label metrics the task's ``compute_metrics`` returned (``{"f1_per_label":
            {"sports": 0.91, ...}}``; see :func:`hubmgr.metrics.split_tables`).
    """

    name: str
    path: str
    metrics: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    samples_per_second: float = 0.0
    per_class: list[dict[str, Any]] | None = None
    tables: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalReport:
    """The result of :func:`evaluate`.

    Attributes:
        task: task name.
        base_model: the base model as given (repo id or path).
        base_path: the local folder it was loaded from.
        split: the split that was evaluated.
        num_examples: examples evaluated.
        rows: the base row first, then one per adapter, in the order given.
        warnings: one sentence each (adapter equal to the base, another base model...).
        samples: a few examples with the label and each row's prediction (classification-like tasks).
        main_metric: the task's main metric name; greater_is_better its direction.
        directions: whether greater is better, for every metric in the rows (the task's word for it;
            ``None`` for an auxiliary metric, which is never compared).
        device: where it ran.
        seconds: total wall time including loading.
    """

    task: str
    base_model: str
    base_path: str
    split: str
    num_examples: int
    rows: list[EvalRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    main_metric: str = "loss"
    greater_is_better: bool = False
    directions: dict[str, bool | None] = field(default_factory=dict)
    device: str = "cpu"
    seconds: float = 0.0

    def metric_names(self) -> list[str]:
        """Every metric that appears in a row, the main metric first (:func:`hubmgr.metrics.ordered`)."""
        from hubmgr.metrics import ordered

        names: list[str] = []
        for row in self.rows:
            for key, value in row.metrics.items():
                if key not in names and isinstance(value, (int, float)):
                    names.append(key)
        return ordered(names, self.main_metric, self.directions)

    def table_names(self) -> list[str]:
        """Every per-label metric (:attr:`EvalRow.tables`) that appears in a row, in the task's order."""
        return list(dict.fromkeys(name for row in self.rows for name in row.tables))

    def best(self) -> EvalRow | None:
        """The row with the best main metric, or None when no row has it."""
        scored = [r for r in self.rows if isinstance(r.metrics.get(self.main_metric), (int, float))]
        if not scored:
            return None
        key = lambda r: r.metrics[self.main_metric]  # noqa: E731
        return max(scored, key=key) if self.greater_is_better else min(scored, key=key)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(_jsonable(self)))
        return data


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


# --- resolving inputs ------------------------------------------------------------------------------
def _data_source(data: "str | Path | DataSource", split: str) -> tuple["DataSource", str]:
    """The DataSource to load and which TaskData split to evaluate ("train" or "eval")."""
    from hubmgr.task import DataSource

    if isinstance(data, DataSource):
        return dataclasses.replace(data, purpose="eval"), ("train" if split == "train" else "eval")
    text = str(data)
    if Path(text).expanduser().exists():
        # One local file or folder: all of it is the evaluation data.
        return DataSource(train=str(Path(text).expanduser()), eval=None, eval_fraction=0.0, purpose="eval"), "train"
    # A Hub dataset id: ``split`` names the split inside it ("eval" means "validation").
    hub_split = "validation" if split in ("eval", "validation") else split
    return DataSource(train=text, eval=None, train_split=hub_split, eval_fraction=0.0, purpose="eval"), "train"


def _label_part(info: dict[str, Any]) -> dict[str, Any]:
    """The part of a data info that names the label set (label counts may differ between adapters)."""
    return {
        k: v
        for k, v in info.items()
        if any(w in k.lower() for w in ("label", "class", "tag")) and k not in _NOT_LABEL_SET
    }


def _same_labels(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two adapters' data infos agree on the label set (keys only one of them records, such as
    ``multi_label`` in adapters from older versions, are not compared)."""
    pa, pb = _label_part(a), _label_part(b)
    return all(pa[k] == pb[k] for k in pa.keys() & pb.keys())


# --- the loop --------------------------------------------------------------------------------------
def _concat(arrays: list[Any], pad: int = -100) -> Any:
    """Concatenate numpy arrays on axis 0, padding later axes to the largest size with ``pad``."""
    import numpy as np

    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        return np.zeros((0,))
    if arrays[0].ndim == 0:
        return np.stack(arrays)
    if all(a.shape[1:] == arrays[0].shape[1:] for a in arrays):
        return np.concatenate(arrays, axis=0)
    shape = [max(a.shape[d] for a in arrays) for d in range(1, arrays[0].ndim)]
    out = []
    for a in arrays:
        padded = np.full((a.shape[0], *shape), pad, dtype=a.dtype if a.dtype.kind in "iuf" else np.int64)
        padded[tuple(slice(0, s) for s in a.shape)] = a
        out.append(padded)
    return np.concatenate(out, axis=0)


@dataclass
class _Pass:
    predictions: Any
    labels: Any
    loss: float | None
    fingerprint: list[tuple[float, float]]
    seconds: float


def _run_pass(
    model: Any,
    batches: Callable[[], Any],
    *,
    task: "Task",
    device: str,
    total: int,
    name: str,
    on_event: Callable[[Any], None] | None,
    cancel: threading.Event | None,
    keep_keys: set[str],
    options: Any = None,
    data: Any = None,
) -> _Pass:
    import torch

    from hubmgr.task import call_reduce_logits

    preds, labels, fingerprint = [], [], []
    loss_sum, loss_n, done = 0.0, 0, 0
    start = time.perf_counter()
    _emit(on_event, EvalProgress(name=name, done=0, total=total))
    with torch.inference_mode():
        for batch in batches():
            if cancel is not None and cancel.is_set():
                raise EvalCancelled("Evaluation cancelled.")
            inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items() if k in keep_keys}
            label = next((inputs[k] for k in _LABEL_KEYS if k in inputs), None)
            outputs = model(**inputs)
            logits = outputs.get("logits") if hasattr(outputs, "get") else outputs[0]
            if logits is None:
                logits = outputs[1] if isinstance(outputs, (tuple, list)) else next(iter(outputs.values()))
            n = _batch_size(batch)
            loss = outputs.get("loss") if hasattr(outputs, "get") else None
            if loss is not None:
                value = float(loss.detach().float().mean().cpu())
                loss_sum += value * n
                loss_n += n
            first = logits[0] if isinstance(logits, (tuple, list)) else logits
            fingerprint.append(
                (float(first.sum(dtype=torch.float64)), float(torch.linalg.vector_norm(first, dtype=torch.float64)))
            )
            reduced = call_reduce_logits(task, logits, label, options, data)
            preds.append(_to_numpy(reduced))
            if label is not None:
                labels.append(_to_numpy(label))
            done += n
            _emit(on_event, EvalProgress(name=name, done=done, total=total))
    seconds = time.perf_counter() - start
    return _Pass(
        predictions=_concat(preds),
        labels=_concat(labels) if labels else None,
        loss=(loss_sum / loss_n) if loss_n else None,
        fingerprint=fingerprint,
        seconds=seconds,
    )


def _to_numpy(x: Any) -> Any:
    """A tensor (or the first of a tuple of tensors) as a numpy array; bf16/fp16 become float32."""
    import numpy as np
    import torch

    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        x = x[0]
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype.is_floating_point and x.dtype not in (torch.float32, torch.float64):
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def _batch_size(batch: dict[str, Any]) -> int:
    for v in batch.values():
        shape = getattr(v, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
        if isinstance(v, list):
            return len(v)
    return 1


def _emit(on_event: Callable[[Any], None] | None, event: Any) -> None:
    if on_event is not None:
        on_event(event)


def _same_outputs(a: _Pass, b: _Pass) -> bool:
    import numpy as np

    if a.predictions.shape != b.predictions.shape or not np.array_equal(a.predictions, b.predictions):
        return False
    for (s1, n1), (s2, n2) in zip(a.fingerprint, b.fingerprint):
        if abs(s1 - s2) > 1e-6 * max(1.0, abs(s1)) or abs(n1 - n2) > 1e-6 * max(1.0, abs(n1)):
            return False
    return True


def _unsort(array: Any, order: list[int]) -> Any:
    import numpy as np

    if array is None:
        return None
    inverse: Any = np.empty(len(order), dtype=np.int64)
    inverse[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    return array[inverse] if len(array) == len(order) else array


def _label_names(info: dict[str, Any]) -> Any:
    for key in ("label_names", "labels", "id2label", "classes", "label_list"):
        value = info.get(key)
        if isinstance(value, (list, dict)) and value:
            return value
    return None


def _name_of(value: Any, names: Any) -> Any:
    if names is None:
        return value
    try:
        idx = int(value)
    except (TypeError, ValueError):
        return value
    if isinstance(names, list):
        return names[idx] if 0 <= idx < len(names) else value
    return names.get(idx, names.get(str(idx), value))


def _metrics(task: "Task", p: _Pass, data: Any, options: Any = None) -> tuple[dict[str, float], dict[str, Any]]:
    """The pass's metrics as ``(scalars, per-label tables)``."""
    from hubmgr.task import compute_metric_values

    metrics: dict[str, float] = {}
    tables: dict[str, Any] = {}
    if p.labels is not None:
        try:
            scalars, tables = compute_metric_values(task, p.predictions, p.labels, data, options)
            metrics.update(scalars)
        except HubmgrError:
            raise
        except Exception as exc:  # a plugin bug names the plugin; otherwise one clear sentence
            from hubmgr.plugins import plugin_error

            error = plugin_error(exc, task)
            if error is not None:
                raise error from exc
            raise DataError(
                f"The task {task.name!r} could not compute its metrics: {type(exc).__name__}: {exc}."
            ) from None
    if p.loss is not None:
        metrics.setdefault("loss", float(p.loss))
    return metrics, tables


def _main_metric(task: "Task", data: Any) -> tuple[str, bool]:
    """``task.main_metric_for(data)``, or the class attributes for a task without the method."""
    fn = getattr(task, "main_metric_for", None)
    if callable(fn):
        try:
            name, greater = fn(data)
            return str(name), bool(greater)
        except HubmgrError:
            raise
        except Exception:  # noqa: BLE001 - a plugin bug: fall back to the declared metric
            pass
    return str(getattr(task, "main_metric", "loss")), bool(getattr(task, "greater_is_better", False))


def _per_class(task: "Task", p: _Pass, data: Any, options: Any) -> list[dict[str, Any]] | None:
    """The task's per-label breakdown of one pass (None when the task has none or there are no labels)."""
    if p.labels is None or not callable(getattr(task, "per_class", None)):
        return None
    try:
        rows = task.per_class(p.predictions, p.labels, data, options)
    except HubmgrError:
        raise
    except Exception as exc:  # a plugin bug must not lose the whole report
        raise DataError(
            f"The task {task.name!r} could not compute its per-class metrics: {type(exc).__name__}: {exc}."
        ) from None
    if rows is None:
        return None
    return [dict(_jsonable(row)) for row in rows]


# --- public entry ------------------------------------------------------------------------------------
def evaluate(
    base_model: str | Path | None,
    adapters: Sequence[str | Path],
    *,
    task: "str | Task | None",
    data: "str | Path | DataSource",
    options: Any = None,
    split: str = "eval",
    max_samples: int | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    device: str = "auto",
    dtype: str | None = None,
    on_event: Callable[[Any], None] | None = None,
    cancel: threading.Event | None = None,
    settings: "Settings | None" = None,
    trust_remote_code: bool = False,
    per_class: bool = False,
) -> EvalReport:
    """Evaluate the base model and each adapter on one split, loading the base once.

    Args:
        base_model: repo id (cached) or local folder; None takes it from the first adapter's run record.
        adapters: adapter folders, or run / adapter ids from the run registry (unique prefixes work).
        task: task name or instance; None takes it from the adapters' run record.
        data: a local file/folder (all of it is evaluated), a Hub dataset id, or a
            :class:`hubmgr.task.DataSource` (then ``split`` picks ``train`` or ``eval`` of it).
        options: task options (dict or the options dataclass); a dict is laid over the options the
            adapter was trained with.
        split: ``eval`` (default) or ``train`` for a DataSource; a split name for a Hub dataset.
        max_samples: evaluate only the first N examples.
        batch_size: examples per forward pass.
        max_length: truncation length; default the training max_length, else 128.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        dtype: load dtype (``float32``, ``bfloat16``, ``float16``); default the model's default.
        on_event: receives :class:`hubmgr.train.events.EvalProgress` events.
        cancel: set it to stop between batches (raises :class:`EvalCancelled`).
        settings: hubmgr settings (cache, registry); default from the environment.
        trust_remote_code: allow a base model whose ``config.json`` has an ``auto_map`` (its own Python
            code, which then runs); without it such a model is refused, as ``train`` does.
        per_class: also give each row's precision, recall, F1 and support per label
            (:attr:`EvalRow.per_class`), for tasks that offer it (a warning says when the task does not).

    Returns:
        :class:`EvalReport` with the base row first and one row per adapter.

    Raises:
        ModelError: an adapter folder is missing or not an adapter, or does not fit the base model; the
            base model is not available locally, or needs its own code and ``trust_remote_code`` is false.
        DataError: the data cannot be loaded, is empty, has no labels, or the adapters disagree on labels.
        UsageError: bad options, no task or base model known.
        PluginError: unknown task.
    """
    from hubmgr._quiet import quiet

    with quiet():
        return _evaluate(
            base_model,
            adapters,
            task=task,
            data=data,
            options=options,
            split=split,
            max_samples=max_samples,
            batch_size=batch_size,
            max_length=max_length,
            device=device,
            dtype=dtype,
            on_event=on_event,
            cancel=cancel,
            settings=settings,
            trust_remote_code=trust_remote_code,
            per_class=per_class,
        )


def _evaluate(
    base_model: Any,
    adapters: Sequence[str | Path],
    *,
    task: Any,
    data: Any,
    options: Any,
    split: str,
    max_samples: int | None,
    batch_size: int,
    max_length: int | None,
    device: str,
    dtype: str | None,
    on_event: Any,
    cancel: Any,
    settings: Any,
    trust_remote_code: bool,
    per_class: bool = False,
) -> EvalReport:
    import torch

    from hubmgr.config import get_settings

    t0 = time.perf_counter()
    settings = settings or get_settings()
    if batch_size < 1:
        raise UsageError("The batch size must be at least 1.")

    # -- adapters: folders, names, metadata ------------------------------------------------------------
    infos: list[AdapterInfo] = []
    used_names: set[str] = {BASE_ROW}
    for ref in adapters or []:
        folder, reg_id = resolve_adapter_ref(ref, settings=settings)
        name = reg_id or Path(folder).name
        base_name, i = name, 2
        while name in used_names:
            name, i = f"{base_name}-{i}", i + 1
        used_names.add(name)
        infos.append(read_adapter_info(folder, name=name))

    if base_model is None:
        base_model = next((i.base_model for i in infos if i.base_model), None)
        if base_model is None:
            raise UsageError("Name the base model (--model): the adapters do not record it.")
    base_revision = next((i.base_revision for i in infos if i.base_revision), None)
    base_path = resolve_base(base_model, base_revision, settings)
    check_remote_code(base_path, trust_remote_code=trust_remote_code, model=normalize_model_ref(base_model)[0])

    task_obj = resolve_task(task, infos)
    from hubmgr.plugins import errors_attributed_to

    with errors_attributed_to(task_obj):
        opts = resolve_options(task_obj, options, infos)
        if max_length is None:
            max_length = next((i.max_length for i in infos if i.max_length), None) or 128

        warnings: list[str] = []
        _, base_sha = normalize_model_ref(base_path)
        for info in infos:
            if info.task and task_obj.name and _norm_task(info.task) != _norm_task(task_obj.name):
                raise ModelError(f"Adapter {info.name} was trained for task {info.task!r}, not {task_obj.name!r}.")
            if info.base_model and not (
                same_base(info.base_model, base_model) or same_base(info.base_model, base_path)
            ):
                warnings.append(
                    f"Adapter {info.name} was trained on {normalize_model_ref(info.base_model)[0]},"
                    f" not {normalize_model_ref(base_model)[0]}; its results may mean little."
                )
            elif info.base_revision and base_sha and info.base_revision != base_sha and len(info.base_revision) == 40:
                warnings.append(
                    f"Adapter {info.name} was trained on revision {info.base_revision[:10]} of the base model,"
                    f" this is {base_sha[:10]}."
                )

        # -- data -------------------------------------------------------------------------------------------
        source, which = _data_source(data, split)
        task_data = task_obj.load_data(source, opts)
        saved_info = next((i.data_info for i in infos if i.data_info), None)
        for info in infos:
            if info.data_info and saved_info and not _same_labels(info.data_info, saved_info):
                raise DataError(
                    f"Adapters {infos[0].name} and {info.name} were trained with different labels; evaluate them separately."
                )
        if saved_info:
            task_data.info.update(saved_info)
        dataset = task_data.eval if which == "eval" else task_data.train
        if dataset is None:
            raise DataError(f"The data has no {split} split to evaluate.")
        if max_samples is not None:
            if max_samples < 1:
                raise UsageError("--max-samples must be at least 1.")
            dataset = dataset.select(range(min(max_samples, len(dataset))))
        if len(dataset) == 0:
            raise DataError(f"The {split} split is empty.")

        # -- model --------------------------------------------------------------------------------------------
        dev = pick_device(device)
        model_kwargs = load_kwargs(dtype, trust_remote_code)
        torch.manual_seed(0)  # a freshly initialised head (base row) is the same on every run
        model, processor = task_obj.load_model(str(base_path), opts, task_data, model_kwargs)
        processed = task_obj.preprocess(dataset, processor, opts, max_length, task_data)
        columns = set(processed.column_names)
        if not columns & set(_LABEL_KEYS):
            raise DataError("The evaluation data has no labels, so there is nothing to score.")

        forward = getattr(model, "forward", None)
        params = inspect.signature(forward).parameters if forward is not None else {}
        keep = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} | set(_LABEL_KEYS)
        model.eval()

        names = [BASE_ROW]
        peft_model = model
        if infos:
            from peft import PeftModel

            internal = [f"a{i}" for i in range(len(infos))]
            for i, info in enumerate(infos):
                try:
                    if i == 0:
                        peft_model = PeftModel.from_pretrained(
                            model, str(info.path), adapter_name=internal[0], is_trainable=False
                        )
                    else:
                        peft_model.load_adapter(str(info.path), adapter_name=internal[i], is_trainable=False)
                except HubmgrError:
                    raise
                except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
                    trained_on = normalize_model_ref(info.base_model)[0] or "another model"
                    raise ModelError(
                        f"Adapter {info.name} does not fit the base model {normalize_model_ref(base_model)[0]}"
                        f" (it was trained for {trained_on}): {first_line(exc)}"
                    ) from None
            names += [i.name for i in infos]
            peft_model.eval()
        peft_model.to(dev)

        # -- batches: sorted by length, collated on the fly ---------------------------------------------
        order = _length_order(processed)
        feed_cols = [c for c in processed.column_names if c != "length" and not _is_text_column(processed, c)]
        feed = processed.select_columns(feed_cols).select(order) if feed_cols else processed.select(order)
        collate = task_obj.collator(processor, opts)
        total = len(feed)

        def batches() -> Iterator[Any]:
            for startidx in range(0, total, batch_size):
                chunk = feed[startidx : startidx + batch_size]
                keys = list(chunk.keys())
                rows = [dict(zip(keys, vals)) for vals in zip(*(chunk[k] for k in keys))]
                yield collate(rows)

        run_kwargs = dict(
            task=task_obj,
            device=dev,
            total=total,
            on_event=on_event,
            cancel=cancel,
            keep_keys=keep,
            options=opts,
            data=task_data,
        )
        rows: list[EvalRow] = []
        passes: dict[str, _Pass] = {}

        # extra_eval sees what it sees in training: the scored raw rows as data.eval, and its predictions
        # with the preprocessed examples they belong to, row for row
        from hubmgr.task import TaskData, call_extra_eval

        extra_data = TaskData(train=None, eval=dataset, info=task_data.info)
        scored = processed.select(order)

        def finish_row(name: str, path: str, p: _Pass, model_for_extra: Any) -> None:
            try:
                extras = call_extra_eval(
                    task_obj,
                    model_for_extra,
                    processor,
                    opts,
                    extra_data,
                    predictions=p.predictions,
                    labels=p.labels,
                    split=scored,
                )
            except HubmgrError:
                raise
            except Exception as exc:  # extras are a bonus: a plugin bug there costs only the extras
                logger.debug("extra_eval failed: %s", exc)
                warnings.append(
                    f"Task {task_obj.name!r} could not compute its extras for {name}:"
                    f" {type(exc).__name__}: {first_line(exc)}"
                )
                extras = {}
            breakdown = _per_class(task_obj, p, task_data, opts) if per_class else None
            if per_class and breakdown is None and not any("per-class" in w for w in warnings):
                warnings.append(f"Task {task_obj.name!r} gives no per-class metrics.")
            scalars, tables = _metrics(task_obj, p, task_data, opts)
            rows.append(
                EvalRow(
                    name=name,
                    path=path,
                    metrics=scalars,
                    extras=dict(extras),
                    seconds=round(p.seconds, 4),
                    samples_per_second=round(total / p.seconds, 2) if p.seconds > 0 else 0.0,
                    per_class=breakdown,
                    tables=tables,
                )
            )

        if infos:
            with peft_model.disable_adapter():
                passes[BASE_ROW] = _run_pass(peft_model, batches, name=BASE_ROW, **run_kwargs)
                finish_row(BASE_ROW, str(base_path), passes[BASE_ROW], peft_model)
            for internal_name, info in zip(internal, infos):
                peft_model.set_adapter(internal_name)
                passes[info.name] = _run_pass(peft_model, batches, name=info.name, **run_kwargs)
                finish_row(info.name, str(info.path), passes[info.name], peft_model)
                if _same_outputs(passes[BASE_ROW], passes[info.name]):
                    warnings.append(f"Adapter {info.name} gives the same outputs as the base model: was it trained?")
        else:
            passes[BASE_ROW] = _run_pass(peft_model, batches, name=BASE_ROW, **run_kwargs)
            finish_row(BASE_ROW, str(base_path), passes[BASE_ROW], peft_model)

        samples = _samples(passes, names, order, task_data.info)
        main_metric, greater_is_better = _main_metric(task_obj, task_data)
        directions = task_directions(
            task_obj, task_data, (k for r in rows for k in r.metrics), main=(main_metric, greater_is_better)
        )
        return EvalReport(
            task=task_obj.name,
            base_model=str(base_model),
            base_path=str(base_path),
            split=split,
            num_examples=total,
            rows=rows,
            warnings=warnings,
            samples=samples,
            main_metric=main_metric,
            greater_is_better=greater_is_better,
            directions=directions,
            device=dev,
            seconds=round(time.perf_counter() - t0, 3),
        )


def _norm_task(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _is_text_column(ds: Any, column: str) -> bool:
    feature = ds.features.get(column) if getattr(ds, "features", None) else None
    dtype = getattr(feature, "dtype", None)
    return dtype in ("string", "large_string")


def _length_order(ds: Any) -> list[int]:
    """Indices sorted by decreasing length (the longest batch first: memory trouble shows at once)."""
    if "length" in ds.column_names:
        lengths = list(ds["length"])
    elif "input_ids" in ds.column_names:
        lengths = [len(x) for x in ds["input_ids"]]
    else:
        return list(range(len(ds)))
    return sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))


def _samples(
    passes: dict[str, _Pass], names: list[str], order: list[int], info: dict[str, Any]
) -> list[dict[str, Any]]:
    base = passes.get(BASE_ROW)
    if base is None or base.labels is None or base.labels.ndim != 1:
        return []

    def label_ids(p: Any) -> Any:  # class ids, or class probabilities (one row per example)
        if p.ndim == 2 and p.shape[0] == len(base.labels) and p.dtype.kind == "f":
            return p.argmax(axis=1)
        return p if p.ndim == 1 else None

    if label_ids(base.predictions) is None:
        return []
    label_names = _label_names(info)
    labels = _unsort(base.labels, order)
    preds = {n: _unsort(label_ids(passes[n].predictions), order) for n in names if n in passes}
    out = []
    for i in range(min(_SAMPLE_COUNT, len(labels))):
        out.append(
            {
                "index": i,
                "label": _jsonable(_name_of(labels[i].item(), label_names)),
                "predictions": {n: _jsonable(_name_of(p[i].item(), label_names)) for n, p in preds.items()},
            }
        )
    return out
