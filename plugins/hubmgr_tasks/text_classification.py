"""Built-in task: text classification (single texts or text pairs), single- or multi-label.

Single-label data has one label per row (a name or an integer) and is judged on accuracy (and macro-F1,
and for two labels the F1 of the rarer one). Multi-label data has any number of labels per row, none
included: a list in JSON/JSONL (``{"text": "...", "labels": ["joy", "love"]}``), or a string cell split
on ``label_separator`` (CSV). It trains with a sigmoid per label (binary cross-entropy) and is judged on
micro-F1 (and macro-F1 and exact-match subset accuracy) at a decision threshold that is tuned on the
eval split at the end of training, saved with the adapter and used by ``hubmgr eval`` and
``hubmgr predict`` (``threshold`` overrides it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hubmgr.errors import DataError, UsageError
from hubmgr.hookspecs import hookimpl
from hubmgr.task import DataSource, LoraDefaults, Task, TaskData

from hubmgr_tasks import _common

CLASS_WEIGHTS = ("none", "balanced")
#: bounds of a multi-label pos_weight (negatives / positives of a label) with class_weight=balanced
POS_WEIGHT_RANGE = (0.1, 100.0)


@dataclass
class TextClassificationOptions:
    """Options of the text-classification task."""

    text_column: str = field(default="text", metadata={"help": "Column holding the text to classify."})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Optional second text column (sentence pairs: NLI, paraphrase)."}
    )
    label_column: str = field(
        default="label",
        metadata={"help": "Column holding the label (a name or an integer), or a list of labels for multi-label data."},
    )
    label_separator: str | None = field(
        default=None,
        metadata={
            "help": "Split each label cell on this text (e.g. '|'): multi-label data in CSV. JSON lists need none."
        },
    )
    threshold: float | None = field(
        default=None,
        metadata={
            "help": "Multi-label decision threshold on each label's probability (0 to 1); unset: tuned on the"
            " eval split at the end of training and saved with the adapter."
        },
    )
    class_weight: str = field(
        default="none",
        metadata={
            "help": "Weight the loss by class: 'balanced' weighs rare labels up (imbalanced data).",
            "choices": CLASS_WEIGHTS,
        },
    )

    def __post_init__(self) -> None:
        if self.label_separator is not None:
            if not isinstance(self.label_separator, str):
                self.label_separator = str(self.label_separator)
            if self.label_separator == "":
                raise UsageError("label_separator must not be empty; leave it unset for one label per cell.")
        if self.threshold is not None:
            try:
                value = float(self.threshold)
            except (TypeError, ValueError):
                raise UsageError(f"threshold must be a number between 0 and 1, not {self.threshold!r}.") from None
            if isinstance(self.threshold, bool) or not 0.0 < value < 1.0:
                raise UsageError(f"threshold must be a number between 0 and 1 (exclusive), not {self.threshold!r}.")
            self.threshold = value
        if self.class_weight is None:
            self.class_weight = "none"
        if self.class_weight not in CLASS_WEIGHTS:
            raise UsageError(f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}, not {self.class_weight!r}.")


def _is_multi(data: TaskData | None) -> bool:
    return bool(data is not None and data.info and data.info.get("multi_label"))


def _names(data: TaskData | None, count: int) -> list[str]:
    names = list(data.info.get("label_names") or []) if data is not None and data.info else []
    return names if len(names) == count else [names[i] if i < len(names) else str(i) for i in range(count)]


class _ClassificationCollator:
    """Padding (``_common.PadCollator``), and multi-hot label rows as float (BCE-with-logits wants float
    targets). A top-level class, so that DataLoader workers can pickle it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        labels = batch.get("labels") if hasattr(batch, "get") else None
        if labels is not None and getattr(labels, "ndim", 0) == 2 and not labels.is_floating_point():
            batch["labels"] = labels.float()
        return batch


class TextClassificationTask(Task):
    """Classify texts (or text pairs) into labels taken from the data: one per row, or any number."""

    name = "text-classification"
    description = (
        "Classify texts or text pairs into labels (sentiment, topic, NLI), one or several per text;"
        " accuracy or micro-F1."
    )
    pipeline_tags = (
        "text-classification",
        "zero-shot-classification",
        "sentence-similarity",
        "fill-mask",
        "feature-extraction",
    )
    options_class = TextClassificationOptions
    main_metric = "accuracy"
    auto_model_class = "AutoModelForSequenceClassification"
    greater_is_better = True

    # -- data ----------------------------------------------------------------------------------------
    def required_columns(self, options: TextClassificationOptions, columns: Sequence[str]) -> dict[str, str | None]:
        """The text, text pair (when set) and label columns."""
        return {
            "text_column": options.text_column,
            "text_pair_column": options.text_pair_column,
            "label_column": options.label_column,
        }

    def load_data(self, source: DataSource, options: TextClassificationOptions) -> TaskData:
        """Load the splits, check the columns and learn the label names from the training data.

        A list-valued label column (JSON lists) or ``label_separator`` makes the data multi-label.

        Raises:
            DataError: missing file or column, empty split, eval labels unseen in training, or training
                data with fewer than two distinct labels.
        """
        from hubmgr.data import load_splits, split_train_eval

        required = self.required_columns(options, ())
        train, eval_ds = load_splits(source, required=required, hold_out=False)
        train_name = _common.source_name(source.train)
        eval_name = _common.source_name(source.eval) if source.eval else f"the eval split of {train_name}"
        column = options.label_column
        separator = getattr(options, "label_separator", None)
        multi = (
            separator is not None
            or _common.is_list_feature(train.features.get(column))
            or (eval_ds is not None and _common.is_list_feature(eval_ds.features.get(column)))
        )
        if multi:
            info = _common.multi_label_info(
                train, eval_ds, column, separator=separator, train_source=train_name, eval_source=eval_name
            )
            present = info.pop("present_labels")
            if len(present) < 2 and source.purpose != "eval":
                shown = f" (only {present[0]!r})" if present else " (no row has a label)"
                raise DataError(
                    f"The training data ({train_name}) has fewer than two distinct labels{shown};"
                    " multi-label classification needs at least two."
                )
        else:
            info = _common.label_info(train, eval_ds, column, train_source=train_name, eval_source=eval_name)
            info["multi_label"] = False
        counts = self._count_labels(train, info, options)
        if not multi:
            present = [name for name, n in counts.items() if n]
            if len(present) < 2 and source.purpose != "eval":
                raise DataError(
                    f"The training data ({train_name}) has only one label, {present[0]!r};"
                    " a classifier needs at least two."
                )
        rows = len(train)
        if eval_ds is None:  # labels were learned from all rows, so the held-out part cannot surprise
            train, eval_ds = split_train_eval(train, source.eval_fraction, source.seed)
            if eval_ds is not None:  # the counts are of the training rows only
                held = self._count_labels(eval_ds, info, options)
                counts = {name: counts[name] - held.get(name, 0) for name in counts}
                rows = len(train)
        info["label_counts"] = counts
        info["train_rows"] = rows
        return TaskData(train=train, eval=eval_ds, info=info)

    def _count_labels(self, dataset: Any, info: dict[str, Any], options: Any) -> dict[str, int]:
        """``{label name: rows with that label}`` over ``dataset``, every label name included."""
        column = options.label_column
        counts = {name: 0 for name in info["label_names"]}
        feature = dataset.features.get(column)
        if info.get("multi_label"):
            class_names = _common.list_class_names(feature)
            separator = getattr(options, "label_separator", None)
            for value in dataset[column]:
                for name in _common.label_list(value, separator=separator, class_names=class_names, column=column):
                    if name in counts:
                        counts[name] += 1
        else:
            class_names = getattr(feature, "names", None)
            for value in dataset[column]:
                name = _common.label_key(value, class_names, bool(class_names))
                if name in counts:
                    counts[name] += 1
        return counts

    # -- model ---------------------------------------------------------------------------------------
    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """AutoModelForSequenceClassification with a head sized to the data's labels (and, for multi-label
        data, ``problem_type="multi_label_classification"``: the model's own loss is BCE with logits).

        Raises:
            ModelError: the architecture has no sequence-classification head, or no tokenizer.
        """
        from transformers import AutoModelForSequenceClassification

        info = data.info
        id2label = {int(k): v for k, v in info["id2label"].items()}
        multi = _is_multi(data)
        model = _common.load_auto_model(
            AutoModelForSequenceClassification,
            model_path,
            "text classification",
            load_kwargs,
            id2label=id2label,
            label2id=dict(info["label2id"]),
            problem_type="multi_label_classification" if multi else "single_label_classification",
            ignore_mismatched_sizes=True,
        )
        tokenizer = _common.load_tokenizer(model_path, load_kwargs)
        _common.ensure_pad_token(tokenizer, model)
        return model, tokenizer

    def lora_defaults(self, model: Any, options: Any) -> LoraDefaults:
        return LoraDefaults(
            task_type="SEQ_CLS",
            target_modules=_common.target_modules(model),
            modules_to_save=_common.head_modules(model),
        )

    # -- features ------------------------------------------------------------------------------------
    def preprocess(
        self, dataset: Any, processor: Any, options: TextClassificationOptions, max_length: int, data: TaskData
    ) -> Any:
        """Tokenize (truncated to ``max_length``, not padded) and map labels to ids (single-label) or to
        float multi-hot vectors (multi-label); adds ``length``.

        Raises:
            DataError: a label that the training data did not have.
        """
        info = data.info
        max_length = _common.effective_max_length(processor, max_length)
        label2id: dict[str, int] = info["label2id"]
        names = info["label_names"]
        multi = _is_multi(data)
        feature = dataset.features.get(options.label_column)
        class_label = bool(getattr(feature, "names", None))
        list_names = _common.list_class_names(feature)
        separator = getattr(options, "label_separator", None)
        text_col, pair_col, label_col = options.text_column, options.text_pair_column, options.label_column
        num_labels = len(names)

        def unknown(key: str) -> DataError:
            return DataError(f"Label {key!r} is not one of the training labels: {', '.join(names)}.")

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            texts = [("" if t is None else str(t)) for t in batch[text_col]]
            pairs = [("" if t is None else str(t)) for t in batch[pair_col]] if pair_col else None
            enc = processor(texts, pairs, truncation=True, max_length=max_length)
            labels: list[Any] = []
            for value in batch[label_col]:
                if multi:
                    row = [0.0] * num_labels
                    for key in _common.label_list(value, separator=separator, class_names=list_names, column=label_col):
                        if key not in label2id:
                            raise unknown(key)
                        row[label2id[key]] = 1.0
                    labels.append(row)
                    continue
                if isinstance(value, (list, tuple)):
                    raise DataError(
                        f"Column {label_col!r} holds lists of labels, but this model was trained with one label per row."
                    )
                key = _common.label_key(value, names, class_label)
                if key not in label2id:
                    raise unknown(key)
                labels.append(label2id[key])
            enc["labels"] = labels
            enc["length"] = [len(ids) for ids in enc["input_ids"]]
            return dict(enc)

        return _common.map_rows(dataset, encode)

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        from transformers import DataCollatorWithPadding

        return _ClassificationCollator(_common.PadCollator.for_tokenizer(processor, DataCollatorWithPadding(processor)))

    # -- training ------------------------------------------------------------------------------------
    def main_metric_for(self, data: TaskData | None) -> tuple[str, bool]:
        """micro-F1 for multi-label data, accuracy otherwise."""
        return ("micro_f1", True) if _is_multi(data) else ("accuracy", True)

    def compute_loss(self, outputs: Any, labels: Any, data: TaskData, options: Any) -> Any:
        """With ``class_weight=balanced``: cross-entropy weighted ``n_train / (n_classes * count)`` per class
        (single-label), or BCE with logits with ``pos_weight = negatives / positives`` per label, clipped
        to ``POS_WEIGHT_RANGE`` (multi-label). Otherwise None: the model's own loss."""
        if getattr(options, "class_weight", "none") != "balanced" or labels is None:
            return None
        import torch
        import torch.nn.functional as F

        logits = outputs["logits"] if isinstance(outputs, dict) else getattr(outputs, "logits", None)
        if logits is None:
            logits = outputs[1] if isinstance(outputs, (tuple, list)) and len(outputs) > 1 else outputs[0]
        logits = logits.float()
        info = data.info if data is not None and data.info else {}
        multi = bool(info.get("multi_label")) or (labels.ndim == 2 and labels.is_floating_point())
        if multi:
            pos_weight = torch.tensor(
                self._pos_weights(info, logits.shape[-1]), dtype=torch.float32, device=logits.device
            )
            return F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=pos_weight)
        weight = torch.tensor(self._class_weights(info, logits.shape[-1]), dtype=torch.float32, device=logits.device)
        return F.cross_entropy(
            logits.view(-1, logits.shape[-1]), labels.view(-1).long(), weight=weight, ignore_index=-100
        )

    @staticmethod
    def _counts_vector(info: dict[str, Any], count: int) -> list[int] | None:
        counts = info.get("label_counts")
        names = info.get("label_names") or []
        if not isinstance(counts, dict) or len(names) != count:
            return None
        return [int(counts.get(name, 0) or 0) for name in names]

    def _class_weights(self, info: dict[str, Any], count: int) -> list[float]:
        counts = self._counts_vector(info, count)
        if counts is None:
            return [1.0] * count
        total = sum(counts)
        return [total / (count * max(c, 1)) for c in counts]

    def _pos_weights(self, info: dict[str, Any], count: int) -> list[float]:
        counts = self._counts_vector(info, count)
        rows = info.get("train_rows")
        if counts is None or not isinstance(rows, int) or rows <= 0:
            return [1.0] * count
        low, high = POS_WEIGHT_RANGE
        return [min(high, max(low, (rows - c) / c)) if c > 0 else high for c in counts]

    # -- metrics -------------------------------------------------------------------------------------
    def reduce_logits(self, logits: Any, labels: Any, options: Any = None, data: TaskData | None = None) -> Any:
        """Sigmoid probabilities (float32) for multi-label data, argmax ids otherwise."""
        import torch

        if isinstance(logits, tuple):
            logits = logits[0]
        if data is not None and data.info and "multi_label" in data.info:
            multi = _is_multi(data)
        elif labels is not None:  # float multi-hot labels
            multi = labels.ndim == logits.ndim and labels.ndim >= 2 and labels.is_floating_point()
        else:
            multi = False
        if multi:
            return torch.sigmoid(logits.float())
        return torch.argmax(logits, dim=-1)

    @staticmethod
    def _threshold(data: TaskData | None, options: Any) -> float | None:
        """The decision threshold to use: the ``threshold`` option, else the one saved by calibrate."""
        value = getattr(options, "threshold", None) if options is not None else None
        if value is None and data is not None and data.info:
            value = data.info.get("threshold")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    @staticmethod
    def _multi_arrays(predictions: Any, labels: Any) -> tuple[Any, Any]:
        import numpy as np

        probs = np.asarray(predictions, dtype=np.float64)
        refs = np.asarray(labels, dtype=np.float64)
        if probs.ndim == 1:
            probs = probs.reshape(len(refs), -1) if len(refs) else probs.reshape(0, 0)
        keep = np.all(refs >= 0, axis=1) if refs.ndim == 2 else np.ones(len(refs), dtype=bool)
        return probs[keep], refs[keep]

    def compute_metrics(
        self, predictions: Any, labels: Any, data: TaskData | None, options: Any = None
    ) -> dict[str, float]:
        """Single-label: accuracy and macro-F1 from predicted class ids, and for two labels ``minority_f1``
        (the F1 of the label with fewer training rows). Multi-label: micro-F1, macro-F1 and subset
        accuracy of the probabilities at the ``threshold`` option, else the saved threshold, else the
        threshold of ``THRESHOLD_GRID`` that maximises micro-F1 on these predictions (reported as
        ``threshold``)."""
        import numpy as np

        preds = np.asarray(predictions)
        if _is_multi(data) or (preds.ndim == 2 and preds.dtype.kind == "f"):
            probs, refs = self._multi_arrays(predictions, labels)
            threshold = self._threshold(data, options)
            return self._multi_scores(probs, refs, threshold)
        return self._single_scores(preds, np.asarray(labels), data)

    def _multi_scores(self, probs: Any, refs: Any, threshold: float | None) -> dict[str, float]:
        if refs.size == 0:
            nan = float("nan")
            return {"micro_f1": nan, "macro_f1": nan, "subset_accuracy": nan}
        if threshold is None:
            threshold = _common.tune_threshold(probs, refs)
        return _common.multi_label_metrics(probs, refs, threshold)

    def _single_scores(self, preds: Any, refs: Any, data: TaskData | None) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        preds, refs = preds.reshape(-1), refs.reshape(-1)
        keep = refs != -100
        preds, refs = preds[keep], refs[keep]
        if refs.size == 0:
            return {"accuracy": float("nan"), "macro_f1": float("nan")}
        out = {
            "accuracy": float(accuracy_score(refs, preds)),
            "macro_f1": float(f1_score(refs, preds, average="macro", zero_division=0)),
        }
        minority = self._minority(data)
        if minority is not None:
            out["minority_f1"] = float(f1_score(refs, preds, labels=[minority], average="macro", zero_division=0))
        return out

    def _minority(self, data: TaskData | None) -> int | None:
        """The id of the label with fewer training rows, for binary single-label data (ties: the second)."""
        if data is None or not data.info or _is_multi(data):
            return None
        counts = self._counts_vector(data.info, len(data.info.get("label_names") or []))
        if counts is None or len(counts) != 2:
            return None
        return 0 if counts[0] < counts[1] else 1

    def calibrate(self, predictions: Any, labels: Any, data: TaskData, options: Any) -> dict[str, Any]:
        """Multi-label: ``{"threshold": t}``, the ``threshold`` option or the grid threshold with the best
        micro-F1 on these (eval split) predictions. Single-label: nothing to tune."""
        import numpy as np

        preds = np.asarray(predictions)
        if not (_is_multi(data) or (preds.ndim == 2 and preds.dtype.kind == "f")):
            return {}
        given = getattr(options, "threshold", None) if options is not None else None
        if given is not None:
            return {"threshold": float(given)}
        probs, refs = self._multi_arrays(predictions, labels)
        if refs.size == 0:
            return {}
        return {"threshold": _common.tune_threshold(probs, refs)}

    def per_class(
        self, predictions: Any, labels: Any, data: TaskData | None, options: Any = None
    ) -> list[dict[str, Any]]:
        """Precision, recall, F1 and support of every label (multi-label: at the threshold compute_metrics uses)."""
        import numpy as np

        preds = np.asarray(predictions)
        if _is_multi(data) or (preds.ndim == 2 and preds.dtype.kind == "f"):
            probs, refs = self._multi_arrays(predictions, labels)
            threshold = self._threshold(data, options)
            if threshold is None:
                threshold = _common.tune_threshold(probs, refs) if refs.size else 0.5
            width = refs.shape[1] if refs.ndim == 2 else 0
            return _common.per_label_report(probs >= threshold, refs > 0.5, _names(data, width))
        refs = np.asarray(labels).reshape(-1)
        preds = preds.reshape(-1)
        keep = refs != -100
        preds, refs = preds[keep], refs[keep]
        count = len(data.info.get("label_names") or []) if data is not None and data.info else 0
        if not count:
            count = int(max(refs.max(initial=-1), preds.max(initial=-1))) + 1
        return _common.per_label_report(preds, refs, _names(data, count))

    def baseline_metrics(self, labels: Any, data: TaskData | None, options: Any = None) -> dict[str, float]:
        """Single-label: the metrics of always predicting the majority training label. Multi-label: those
        of predicting each label's training frequency as its probability (threshold tuned on these labels)."""
        import numpy as np

        refs = np.asarray(labels)
        info = data.info if data is not None and data.info else {}
        if _is_multi(data) or (refs.ndim == 2 and refs.dtype.kind == "f"):
            probs, refs = self._multi_arrays(np.zeros_like(refs, dtype=np.float32), refs)
            width = refs.shape[1] if refs.ndim == 2 else 0
            counts = self._counts_vector(info, width)
            rows = info.get("train_rows")
            if counts is not None and isinstance(rows, int) and rows > 0:
                freq = np.asarray(counts, dtype=np.float64) / rows
            else:  # no training counts saved: the frequencies of these labels
                freq = refs.mean(axis=0) if len(refs) else np.zeros(width)
            probs = np.tile(freq, (len(refs), 1))
            return self._multi_scores(probs, refs, None)
        flat = refs.reshape(-1)
        counts = self._counts_vector(info, len(info.get("label_names") or []))
        if counts:
            majority = int(np.argmax(counts))
        else:
            known = flat[flat != -100]
            majority = int(np.bincount(known.astype(np.int64)).argmax()) if known.size else 0
        return self._single_scores(np.full(flat.shape, majority), flat, data)

    # -- use -----------------------------------------------------------------------------------------
    def predict(self, model: Any, processor: Any, inputs: Sequence[Any], options: Any, data: TaskData) -> list[str]:
        """Label each input text (or ``(text, pair)`` tuple): ``"positive (0.93)"``; multi-label: every label
        at or above the threshold, highest first (``"joy (0.91), love (0.64)"``) or
        ``"(no label above 0.50)"``."""
        import torch

        if not inputs:
            return []
        texts = [x[0] if isinstance(x, (tuple, list)) else str(x) for x in inputs]
        pairs = [x[1] for x in inputs] if all(isinstance(x, (tuple, list)) and len(x) > 1 for x in inputs) else None
        enc = processor(texts, pairs, truncation=True, padding=True, return_tensors="pt")
        device = _common.model_device(model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = model(**{k: v.to(device) for k, v in enc.items()}).logits
        finally:
            model.train(was_training)
        id2label = getattr(model.config, "id2label", None) or {}
        names = data.info.get("label_names") if data and data.info else None

        def label(idx: int) -> str:
            return names[idx] if names and idx < len(names) else id2label.get(idx, str(idx))

        multi = _is_multi(data) or (
            not (data and data.info and "multi_label" in data.info)
            and getattr(model.config, "problem_type", None) == "multi_label_classification"
        )
        out = []
        if multi:
            threshold = self._threshold(data, options)
            threshold = 0.5 if threshold is None else threshold
            for row in torch.sigmoid(logits.float()):
                picked = sorted(((float(p), i) for i, p in enumerate(row.tolist()) if p >= threshold), reverse=True)
                if picked:
                    out.append(", ".join(f"{label(i)} ({p:.2f})" for p, i in picked))
                else:
                    out.append(f"(no label above {threshold:.2f})")
            return out
        probs = _common.softmax_rows(logits)
        for row in probs:
            idx = int(row.argmax())
            out.append(f"{label(idx)} ({float(row[idx]):.2f})")
        return out


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(TextClassificationTask)
