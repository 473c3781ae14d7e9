"""Helpers shared by the built-in tasks: loading models with one clear error, label mappings, collators.

Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from hubmgr.errors import DataError, ModelError

#: keys of ``load_kwargs`` that tokenizers and processors understand too
_PROCESSOR_KEYS = ("revision", "trust_remote_code", "local_files_only", "cache_dir", "token", "gguf_file")
#: names of classification heads, in the order we look for them
HEAD_NAMES = ("classifier", "score", "classification_head", "head", "fc")
#: keys that collators drop before padding (the ``length`` column is for length-grouped sampling)
NON_MODEL_KEYS = ("length",)


def processor_kwargs(load_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The subset of the model's ``load_kwargs`` that also applies to its tokenizer or processor."""
    return {k: v for k, v in (load_kwargs or {}).items() if k in _PROCESSOR_KEYS and v is not None}


def model_label(model_path: str) -> str:
    path = Path(model_path)
    return path.name if path.exists() else model_path


def load_config(model_path: str, load_kwargs: dict[str, Any] | None) -> Any:
    """``AutoConfig.from_pretrained`` with a ModelError for a folder that is not a model."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_path, **processor_kwargs(load_kwargs))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"Cannot read a model configuration from {model_path}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".") + "."


def check_architecture(auto_cls: Any, config: Any, model_path: str, what: str) -> None:
    """Raise ModelError when ``auto_cls`` (e.g. AutoModelForSequenceClassification) has no class for ``config``.

    Remote-code models (``auto_map`` in the config) are let through: only loading them can tell.
    """
    if getattr(config, "auto_map", None):
        return
    mapping = getattr(auto_cls, "_model_mapping", None)
    if mapping is None:
        return
    try:
        known = type(config) in mapping
    except Exception:  # pragma: no cover - lazy mappings that cannot be asked
        return
    if not known:
        raise ModelError(_cannot(model_path, config, what))


def _cannot(model_path: str, config: Any, what: str) -> str:
    model_type = getattr(config, "model_type", None) or type(config).__name__
    return (
        f"Model {model_label(model_path)} (architecture {model_type!r}) cannot be used for {what}:"
        f" transformers has no {what} head for it."
    )


def load_auto_model(
    auto_cls: Any, model_path: str, what: str, load_kwargs: dict[str, Any] | None, **kwargs: Any
) -> Any:
    """``auto_cls.from_pretrained`` with ModelError for an architecture that cannot do the task.

    Args:
        auto_cls: a transformers ``AutoModelFor...`` class.
        model_path: a local folder (or Hub id).
        what: the task in words, for the message ("text classification").
        load_kwargs: passed to ``from_pretrained`` (revision, dtype, ...).
        **kwargs: task-specific ``from_pretrained`` arguments (num_labels, id2label, ...).

    Raises:
        ModelError: unknown architecture for the task, or weights that cannot be loaded.
    """
    config = load_config(model_path, load_kwargs)
    check_architecture(auto_cls, config, model_path, what)
    try:
        return auto_cls.from_pretrained(model_path, **{**(load_kwargs or {}), **kwargs})
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelError(_cannot(model_path, config, what)) from None
        raise ModelError(f"Cannot load {model_label(model_path)} for {what}: {_first_line(exc)}") from None
    except OSError as exc:
        raise ModelError(f"Cannot load the weights of {model_label(model_path)}: {_first_line(exc)}") from None


def load_tokenizer(model_path: str, load_kwargs: dict[str, Any] | None, **kwargs: Any) -> Any:
    """``AutoTokenizer.from_pretrained`` with ModelError when the folder has no usable tokenizer."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, **processor_kwargs(load_kwargs), **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"Model {model_label(model_path)} has no usable tokenizer: {_first_line(exc)}") from None
    if tokenizer is None or not callable(tokenizer):
        raise ModelError(f"Model {model_label(model_path)} has no tokenizer.")
    return tokenizer


def ensure_pad_token(tokenizer: Any, model: Any | None = None) -> None:
    """Give the tokenizer a pad token (its eos, else unk) and tell the model config its id."""
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ModelError("The tokenizer has no pad, end-of-sequence or unknown token to pad with.")
        tokenizer.pad_token = fallback
    if model is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id


def target_modules(model: Any) -> list[str]:
    """LoRA target modules for ``model`` (the attention projections), from hubmgr.train.lora."""
    from hubmgr.train.lora import find_target_modules

    return list(find_target_modules(model))


def head_modules(model: Any) -> list[str]:
    """Names of the classification head modules to keep fully trainable (``classifier``, ``score``...)."""
    children = dict(model.named_children())
    return [name for name in HEAD_NAMES if name in children][:1]


# -- labels -----------------------------------------------------------------------------------------
def _class_label_names(feature: Any) -> list[str] | None:
    names = getattr(feature, "names", None)
    return list(names) if names else None


def label_names_from(values: Iterable[Any], feature: Any = None, *, column: str, source: str) -> list[str]:
    """Sorted label names from a column's values: strings as they are, integers by value.

    A ``datasets.ClassLabel`` feature gives its own names (ids are kept as they are).

    Raises:
        DataError: empty labels, or values that are neither names nor integers.
    """
    names = _class_label_names(feature)
    if names:
        return names
    seen: set[Any] = set()
    kinds: set[str] = set()
    for value in values:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(f"Column {column!r} in {source} has empty labels.")
        if isinstance(value, bool) or isinstance(value, int):
            kinds.add("int")
            seen.add(int(value))
        elif isinstance(value, float) and value.is_integer():
            kinds.add("int")
            seen.add(int(value))
        elif isinstance(value, str):
            kinds.add("str")
            seen.add(value.strip())
        else:
            raise DataError(
                f"Column {column!r} in {source} holds {type(value).__name__} values; labels must be names or integers."
            )
    if not seen:
        raise DataError(f"Column {column!r} in {source} has no labels.")
    if kinds == {"int", "str"}:
        seen = {str(v) for v in seen}
    return [str(v) for v in sorted(seen)]


def label_key(value: Any, names: Sequence[str] | None = None, class_label: bool = False) -> str:
    """The label name of one cell value (ClassLabel ids map through ``names``)."""
    if class_label and names is not None and isinstance(value, int) and not isinstance(value, bool):
        return names[value]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool):
        value = int(value)
    return str(value).strip()


def check_eval_labels(train_names: Sequence[str], eval_names: Iterable[str], *, source: str) -> None:
    """Raise DataError naming the eval labels that training never saw."""
    known = set(train_names)
    unseen = sorted(set(eval_names) - known)
    if unseen:
        shown = ", ".join(unseen[:10]) + (", ..." if len(unseen) > 10 else "")
        raise DataError(
            f"Labels in the eval data ({source}) are not in the training data: {shown};"
            f" training labels are: {', '.join(train_names)}."
        )


def label_info(train: Any, eval_ds: Any, column: str, *, train_source: str, eval_source: str) -> dict[str, Any]:
    """Label names from the training data; eval labels must be among them.

    Returns:
        ``{"label_names", "label2id", "id2label", "num_labels", "class_label"}`` (JSON-friendly).

    Raises:
        DataError: empty or non-label values, or eval labels unseen in training.
    """
    feature = train.features.get(column)
    names = label_names_from(train[column], feature, column=column, source=train_source)
    class_label = bool(getattr(feature, "names", None))
    if eval_ds is not None:
        eval_feature = eval_ds.features.get(column)
        if class_label and getattr(eval_feature, "names", None):
            eval_names = [eval_feature.names[v] for v in set(eval_ds[column])]
        else:
            label_names_from(eval_ds[column], None, column=column, source=eval_source)
            eval_names = [label_key(v) for v in eval_ds[column]]
        check_eval_labels(names, eval_names, source=eval_source)
    label2id = {name: i for i, name in enumerate(names)}
    return {
        "label_names": names,
        "label2id": label2id,
        "id2label": {str(i): name for i, name in enumerate(names)},
        "num_labels": len(names),
        "class_label": class_label,
    }


def source_name(path: str | None) -> str:
    if path is None:
        return "the data"
    return Path(path).name if Path(path).exists() else path


# -- collation --------------------------------------------------------------------------------------
def strip_keys(features: list[dict[str, Any]], keys: Sequence[str] = NON_MODEL_KEYS) -> list[dict[str, Any]]:
    """Copies of the examples without the non-model keys (``length``)."""
    return [{k: v for k, v in f.items() if k not in keys} for f in features]


class TokenizerCollator:
    """Wrap a transformers collator: drop ``length`` and other non-model keys, then pad.

    A top-level class (not a closure) so that DataLoader workers can pickle it.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return self.inner(strip_keys(features))


class PadCollator:
    """Pad a batch of tokenised examples to its longest one, in plain Python and one tensor per key.

    What transformers' ``DataCollatorWithPadding`` and ``DataCollatorForTokenClassification`` do for these
    tasks, without ``tokenizer.pad``: that walks each example through the tokenizer's generic padding code,
    about a tenth of a step on a small model (measured by benchmarks/bench_step_overhead.py).

    Args:
        pad_token_id: the tokenizer's pad id (``input_ids``).
        padding_side: ``"right"`` or ``"left"`` (the tokenizer's ``padding_side``).
        pad_token_type_id: the tokenizer's pad value of ``token_type_ids``.
        label_pad: pad ``labels`` as a sequence with this value (-100 for token labels); None stacks them
            as they are (one label id, or a multi-hot row, per example).
        fallback: a collator for batches this one does not handle (keys it does not know), or None.
    """

    #: key -> pad value (None: the pad token id / token type id given)
    SEQUENCE_KEYS = {"input_ids": None, "attention_mask": 0, "token_type_ids": None, "special_tokens_mask": 1}

    def __init__(
        self,
        pad_token_id: int,
        *,
        padding_side: str = "right",
        pad_token_type_id: int = 0,
        label_pad: int | None = None,
        fallback: Any = None,
    ) -> None:
        self.pad_token_id = int(pad_token_id)
        self.left = padding_side == "left"
        self.pad_token_type_id = int(pad_token_type_id)
        self.label_pad = label_pad
        self.fallback = fallback

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, inner: Any, *, label_pad: int | None = None) -> Any:
        """A PadCollator for ``tokenizer`` (``inner`` for batches it cannot pad), or ``inner`` wrapped as before
        when the tokenizer has no pad id."""
        pad_id = getattr(tokenizer, "pad_token_id", None)
        if not isinstance(pad_id, int):
            return TokenizerCollator(inner)
        return cls(
            pad_id,
            padding_side=str(getattr(tokenizer, "padding_side", "right") or "right"),
            pad_token_type_id=int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
            label_pad=label_pad,
            fallback=TokenizerCollator(inner),
        )

    def _pad(self, rows: list[Any], value: int, longest: int) -> list[list[Any]]:
        if self.left:
            return [[value] * (longest - len(r)) + list(r) for r in rows]
        return [list(r) + [value] * (longest - len(r)) for r in rows]

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        features = strip_keys(features)
        keys = list(features[0])
        sequence = [k for k in keys if k in self.SEQUENCE_KEYS]
        if (
            "input_ids" not in sequence
            or any(set(f) != set(keys) for f in features)
            or any(k not in self.SEQUENCE_KEYS and k != "labels" for k in keys)
        ):
            if self.fallback is None:
                raise ValueError(f"Cannot pad a batch with keys {sorted(keys)}.")
            return self.fallback(features)
        longest = max(len(f["input_ids"]) for f in features)
        batch: dict[str, Any] = {}
        for key in sequence:
            value = self.SEQUENCE_KEYS[key]
            if value is None:
                value = self.pad_token_id if key == "input_ids" else self.pad_token_type_id
            batch[key] = torch.tensor(self._pad([f[key] for f in features], value, longest), dtype=torch.long)
        if "labels" in keys:
            labels = [f["labels"] for f in features]
            if self.label_pad is not None:
                batch["labels"] = torch.tensor(self._pad(labels, self.label_pad, longest), dtype=torch.long)
            else:
                batch["labels"] = torch.tensor(labels)
        return batch


def effective_max_length(tokenizer: Any, max_length: int) -> int:
    """``max_length``, lowered to what the tokenizer declares its model takes (when it declares it)."""
    if max_length <= 0:
        raise DataError(f"max_length must be positive, not {max_length}.")
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return min(max_length, limit)
    return max_length


def map_rows(dataset: Any, fn: Callable[[dict[str, list[Any]]], dict[str, list[Any]]], **kwargs: Any) -> Any:
    """``dataset.map(fn, batched=True)`` replacing every column, quietly and without a cache file."""
    from hubmgr.data import quiet_datasets

    with quiet_datasets():
        return dataset.map(fn, batched=True, remove_columns=dataset.column_names, load_from_cache_file=False, **kwargs)


def model_device(model: Any) -> Any:
    import torch

    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def softmax_rows(logits: Any) -> Any:
    import torch

    return torch.softmax(logits.float(), dim=-1)


# -- multi-label data -------------------------------------------------------------------------------
def is_list_feature(feature: Any) -> bool:
    """Whether a ``datasets`` feature holds a list per row (``List``, ``Sequence``, ``LargeList``)."""
    if feature is None:
        return False
    if isinstance(feature, (list, tuple)):
        return True
    return type(feature).__name__ in ("List", "Sequence", "LargeList")


def list_class_names(feature: Any) -> list[str] | None:
    """The names of a ``Sequence(ClassLabel(...))`` feature (the ids in its cells map through them)."""
    if not is_list_feature(feature):
        return None
    inner = feature[0] if isinstance(feature, (list, tuple)) and feature else getattr(feature, "feature", None)
    return _class_label_names(inner)


def label_list(
    value: Any,
    *,
    separator: str | None = None,
    class_names: Sequence[str] | None = None,
    column: str = "label",
    source: str = "the data",
) -> list[str]:
    """The label names of one multi-label cell: a list (JSON), a string split on ``separator`` (CSV),
    a single name or integer; None and empty cells are no label. Blank items are dropped, duplicates
    kept once, order kept.

    Raises:
        DataError: a value that is neither a name nor an integer, or a ClassLabel id out of range.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = value.split(separator) if separator else [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif hasattr(value, "tolist") and not isinstance(value, (int, float, bool)):
        items = list(value.tolist())
    else:
        items = [value]
    out: list[str] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, float) and item != item:  # NaN from pandas
            continue
        if class_names is not None and isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(class_names):
                raise DataError(
                    f"Column {column!r} in {source} holds label id {item}, outside its {len(class_names)} class names."
                )
            name = str(class_names[item])
        elif isinstance(item, (str, int, bool)) or (isinstance(item, float) and item.is_integer()):
            name = label_key(item)
        else:
            raise DataError(
                f"Column {column!r} in {source} holds {type(item).__name__} values; labels must be names or integers."
            )
        if name and name not in out:
            out.append(name)
    return out


def _name_order(name: str) -> tuple[int, int, str]:
    """Sort integer-like names by value, after them the others alphabetically."""
    text = name.strip()
    if text.lstrip("-").isdigit():
        return (0, int(text), "")
    return (1, 0, text)


def multi_label_info(
    train: Any, eval_ds: Any, column: str, *, separator: str | None, train_source: str, eval_source: str
) -> dict[str, Any]:
    """Label names of multi-label data (the sorted union of the training rows' labels, or the names of a
    ``Sequence(ClassLabel)`` feature); eval labels must be among them.

    Returns:
        ``{"multi_label": True, "label_names", "label2id", "id2label", "num_labels", "class_label",
        "present_labels"}`` (``present_labels``: how many distinct labels the training rows use).

    Raises:
        DataError: bad values, or eval labels unseen in training.
    """
    feature = train.features.get(column)
    class_names = list_class_names(feature)
    seen: set[str] = set()
    for value in train[column]:
        seen.update(label_list(value, separator=separator, class_names=class_names, column=column, source=train_source))
    names = list(class_names) if class_names else sorted(seen, key=_name_order)
    if eval_ds is not None:
        eval_names_cls = list_class_names(eval_ds.features.get(column))
        eval_seen: set[str] = set()
        for value in eval_ds[column]:
            eval_seen.update(
                label_list(value, separator=separator, class_names=eval_names_cls, column=column, source=eval_source)
            )
        check_eval_labels(names, eval_seen, source=eval_source)
    return {
        "multi_label": True,
        "label_names": names,
        "label2id": {name: i for i, name in enumerate(names)},
        "id2label": {str(i): name for i, name in enumerate(names)},
        "num_labels": len(names),
        "class_label": bool(class_names),
        "present_labels": sorted(seen, key=_name_order),
    }


# -- metrics shared by classification tasks ---------------------------------------------------------
#: the decision thresholds tried when tuning a multi-label threshold
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _micro_counts(probs: Any, refs: Any, threshold: float) -> tuple[float, float, float]:
    import numpy as np

    pred = probs >= threshold
    true = refs > 0.5
    tp = float(np.logical_and(pred, true).sum())
    fp = float(np.logical_and(pred, ~true).sum())
    fn = float(np.logical_and(~pred, true).sum())
    return tp, fp, fn


def _f1(tp: float, fp: float, fn: float) -> float:
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 0.0


def tune_threshold(probs: Any, refs: Any, grid: Sequence[float] = THRESHOLD_GRID) -> float:
    """The threshold of ``grid`` with the best micro-F1 of ``probs >= t`` against the multi-hot ``refs``;
    ties go to the threshold closest to 0.5 (then the lower one)."""
    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    refs = np.asarray(refs)
    best, best_key = 0.5, None
    for t in grid:
        key = (round(_f1(*_micro_counts(probs, refs, t)), 12), -abs(t - 0.5), -t)
        if best_key is None or key > best_key:
            best, best_key = float(t), key
    return best


def multi_label_metrics(probs: Any, refs: Any, threshold: float) -> dict[str, float]:
    """micro-F1, macro-F1 (over the labels that occur in ``refs`` or in the predictions) and subset
    accuracy (exact match) of ``probs >= threshold`` against the multi-hot ``refs``."""
    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    true = np.asarray(refs) > 0.5
    pred = probs >= threshold
    tp = np.logical_and(pred, true).sum(axis=0).astype(np.float64)
    fp = np.logical_and(pred, ~true).sum(axis=0).astype(np.float64)
    fn = np.logical_and(~pred, true).sum(axis=0).astype(np.float64)
    denom = 2 * tp + fp + fn
    used = denom > 0
    per_label = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=used)
    exact = float(np.all(pred == true, axis=1).mean()) if len(true) else float("nan")
    return {
        "micro_f1": _f1(float(tp.sum()), float(fp.sum()), float(fn.sum())) if used.any() else exact,
        "macro_f1": float(per_label[used].mean()) if used.any() else exact,
        "subset_accuracy": exact,
        "threshold": float(threshold),
    }


def per_label_report(pred: Any, true: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per label with scikit-learn.

    ``pred`` and ``true`` are either 1-D class ids (single-label) or 2-D boolean/multi-hot arrays
    (multi-label) with one column per name.
    """
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    pred = np.asarray(pred)
    true = np.asarray(true)
    ids = list(range(len(names)))
    if true.ndim == 2:
        pred, true = pred.astype(int), true.astype(int)
        p, r, f, s = precision_recall_fscore_support(true, pred, average=None, zero_division=0)
    else:
        p, r, f, s = precision_recall_fscore_support(true, pred, labels=ids, average=None, zero_division=0)
    return [
        {"label": str(name), "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(names)
    ]
