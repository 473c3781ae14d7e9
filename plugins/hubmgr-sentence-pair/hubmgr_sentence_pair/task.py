"""The ``sentence-pair`` task: classify the relation between two sentences.

Paraphrase detection (MRPC, PAWS), duplicate questions (QQP), natural language inference (SNLI, MNLI,
RTE: entailment / neutral / contradiction), semantic relatedness buckets. The two sentences are encoded
together (``[CLS] first [SEP] second [SEP]`` for BERT-like models), so the model attends across them.

What it adds to a plain text classifier:

* named columns for both sides (``sentence1_column``, ``sentence2_column``) checked up front;
* rows without a gold label are dropped (SNLI and MNLI mark them ``-1``), instead of becoming a class;
* truncation that shortens the longer sentence first, so neither side is cut away entirely;
* ``f1`` of the positive class for two-label data (the metric MRPC and QQP report; ``positive_label``
  names it), beside accuracy and macro-F1;
* ``calibration_error``: how far the model's confidence is from its accuracy (lower is better, declared
  in ``metric_directions``), from the probabilities ``reduce_logits`` keeps, and ``mean_confidence``
  beside it (auxiliary: declared with direction ``None``, reported but never "best");
* ``f1_per_label``: one F1 per label, a table in ``hubmgr eval`` and in the run record;
* ``label_smoothing`` through ``compute_loss``, and a confusion matrix in the run record (``extra_eval``,
  from the predictions just scored);
* ``predict`` takes ``(first, second)`` pairs, dicts, or ``"first ||| second"`` strings (CLI friendly).

Only hubmgr's public API is used. torch, transformers, numpy and scikit-learn load inside the methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hubmgr import DataError, DataSource, LoraDefaults, ModelError, Task, TaskData, hookimpl
from hubmgr.data import load_splits, split_train_eval

#: separators accepted between the two sentences of a ``predict`` input given as one string
PAIR_SEPARATORS = ("|||", "\t")
#: classification heads kept fully trainable beside the LoRA layers
HEAD_NAMES = ("classifier", "score", "classification_head", "head")
#: confidence bins of the expected calibration error
CALIBRATION_BINS = 10


@dataclass
class SentencePairOptions:
    """Options of the ``sentence-pair`` task."""

    sentence1_column: str = field(
        default="sentence1", metadata={"help": "Column holding the first sentence (premise, question 1)."}
    )
    sentence2_column: str = field(
        default="sentence2", metadata={"help": "Column holding the second sentence (hypothesis, question 2)."}
    )
    label_column: str = field(
        default="label", metadata={"help": "Column holding the label (a name such as entailment, or an integer)."}
    )
    unlabeled_value: str = field(
        default="-1",
        metadata={
            "help": "Rows whose label is this value are dropped (SNLI/MNLI mark pairs without a gold label -1); empty keeps all rows."
        },
    )
    positive_label: str = field(
        default="",
        metadata={
            "help": "With two labels, the one whose F1 is reported as f1 (MRPC: the paraphrase label); empty: the second label."
        },
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "Label smoothing of the training loss (0 to 1; 0.1 is common)."}
    )


class SentencePairTask(Task):
    """Classify sentence pairs: paraphrase, duplicate questions, entailment."""

    name = "sentence-pair"
    description = "Classify the relation of two sentences (paraphrase, duplicate, NLI); accuracy, macro-F1 and F1."
    pipeline_tags = (
        "text-classification",
        "sentence-similarity",
        "zero-shot-classification",
        "fill-mask",
        "feature-extraction",
    )
    options_class = SentencePairOptions
    main_metric = "accuracy"
    greater_is_better = True
    metric_directions = {"calibration_error": False, "mean_confidence": None}
    auto_model_class = "AutoModelForSequenceClassification"

    # -- data ----------------------------------------------------------------------------------------
    def required_columns(self, options: SentencePairOptions, columns: Sequence[str]) -> dict[str, str | None]:
        """The two sentence columns and the label column."""
        return {
            "sentence1_column": options.sentence1_column,
            "sentence2_column": options.sentence2_column,
            "label_column": options.label_column,
        }

    def load_data(self, source: DataSource, options: SentencePairOptions) -> TaskData:
        """Load the splits, drop unlabeled rows and learn the label names from the training data.

        Raises:
            DataError: a missing file or column, an empty split, fewer than two labels, or eval labels
                that the training data does not have.
        """
        required = self.required_columns(options, ())
        train, eval_ds = load_splits(source, required=required, hold_out=False)
        train = _drop_unlabeled(train, options, what="training")
        names = _label_names(train, options.label_column)
        if len(names) < 2:
            raise DataError(
                f"The training data has only one label ({names[0]}); a sentence-pair classifier needs at least two."
            )
        if eval_ds is not None:
            eval_ds = _drop_unlabeled(eval_ds, options, what="eval")
            class_names = _class_names(eval_ds, options.label_column)
            unseen = sorted({_label_key(v, class_names) for v in eval_ds[options.label_column]} - set(names))
            if unseen:
                raise DataError(
                    f"Labels in the eval data are not in the training data: {', '.join(unseen[:10])};"
                    f" training labels are: {', '.join(names)}."
                )
        else:  # the labels were learned from every row, so the held-out part holds no surprise
            train, eval_ds = split_train_eval(train, source.eval_fraction, source.seed)
        info = {
            "label_names": names,
            "label2id": {n: i for i, n in enumerate(names)},
            "id2label": {str(i): n for i, n in enumerate(names)},
            "num_labels": len(names),
        }
        if len(names) == 2:
            _positive_index(info, options)  # a positive_label that is not a label: say so before training
        return TaskData(train=train, eval=eval_ds, info=info)

    # -- model ---------------------------------------------------------------------------------------
    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """A sequence-classification model with one output per label, and its tokenizer.

        Raises:
            ModelError: the architecture has no sequence-classification head, or there is no tokenizer.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        names = list(data.info["label_names"])
        tokenizer_kwargs = {
            k: v
            for k, v in load_kwargs.items()
            if k in ("revision", "trust_remote_code", "local_files_only", "cache_dir", "token")
        }
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                model_path,
                num_labels=len(names),
                id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)},
                ignore_mismatched_sizes=True,
                **load_kwargs,
            )
        except (ValueError, OSError) as exc:
            raise ModelError(f"Cannot load {model_path} for sentence-pair classification: {_first_line(exc)}") from None
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_path, **tokenizer_kwargs)
        except (ValueError, OSError, TypeError) as exc:
            raise ModelError(f"Model {model_path} has no usable tokenizer: {_first_line(exc)}") from None
        if tokenizer.pad_token is None:  # GPT-style tokenizers
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer

    def lora_defaults(self, model: Any, options: Any) -> LoraDefaults:
        """LoRA on the attention projections (from the architecture); the new head trains fully."""
        defaults = super().lora_defaults(model, options)
        children = dict(model.named_children())
        heads = [name for name in HEAD_NAMES if name in children][:1]
        return LoraDefaults(task_type="SEQ_CLS", target_modules=defaults.target_modules, modules_to_save=heads)

    # -- features ------------------------------------------------------------------------------------
    def preprocess(
        self, dataset: Any, processor: Any, options: SentencePairOptions, max_length: int, data: TaskData
    ) -> Any:
        """Encode each pair together (the longer side is truncated first); label ids and ``length``.

        Raises:
            DataError: a label the training data did not have.
        """
        label2id: dict[str, int] = data.info["label2id"]
        class_names = _class_names(dataset, options.label_column)
        s1, s2, lab = options.sentence1_column, options.sentence2_column, options.label_column
        limit = getattr(processor, "model_max_length", None)
        if isinstance(limit, int) and 0 < limit < 1_000_000:
            max_length = min(max_length, limit)

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            first = ["" if t is None else str(t) for t in batch[s1]]
            second = ["" if t is None else str(t) for t in batch[s2]]
            enc = processor(first, second, truncation="longest_first", max_length=max_length)
            labels = []
            for value in batch[lab]:
                key = _label_key(value, class_names)
                if key not in label2id:
                    raise DataError(f"Label {key!r} is not one of the training labels: {', '.join(label2id)}.")
                labels.append(label2id[key])
            enc["labels"] = labels
            enc["length"] = [len(ids) for ids in enc["input_ids"]]
            return dict(enc)

        return dataset.map(encode, batched=True, remove_columns=dataset.column_names, load_from_cache_file=False)

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        """Pad each batch to its longest pair (hubmgr drops the ``length`` column before calling it)."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(processor)

    # -- training ------------------------------------------------------------------------------------
    def compute_loss(self, outputs: Any, labels: Any, data: TaskData, options: Any) -> Any:
        """Cross-entropy with ``label_smoothing``; None (the model's own loss) without it."""
        smoothing = float(getattr(options, "label_smoothing", 0.0) or 0.0)
        if smoothing <= 0:
            return None
        import torch.nn.functional as F

        logits = outputs.logits.float()
        return F.cross_entropy(
            logits.view(-1, logits.shape[-1]), labels.view(-1), label_smoothing=smoothing, ignore_index=-100
        )

    # -- metrics -------------------------------------------------------------------------------------
    def reduce_logits(self, logits: Any, labels: Any, options: Any = None, data: TaskData | None = None) -> Any:
        """Class probabilities (float32), so that the metrics can judge calibration as well as accuracy."""
        import torch

        if isinstance(logits, tuple):
            logits = logits[0]
        return torch.softmax(logits.float(), dim=-1)

    def compute_metrics(self, predictions: Any, labels: Any, data: TaskData, options: Any = None) -> dict[str, float]:
        """Accuracy, macro-F1 and F1 per label (a table); with two labels also ``f1`` of the positive label;
        from probabilities also ``calibration_error`` and ``mean_confidence``. ``predictions`` may be
        probabilities (``[n, labels]``) or label ids."""
        import numpy as np
        from sklearn.metrics import accuracy_score, f1_score

        raw = np.asarray(predictions)
        probs = raw.reshape(-1, raw.shape[-1]) if raw.ndim >= 2 else None
        preds = probs.argmax(axis=1) if probs is not None else raw.reshape(-1)
        refs = np.asarray(labels).reshape(-1)
        keep = refs != -100
        preds, refs = preds[keep], refs[keep]
        if refs.size == 0:
            return {"accuracy": float("nan"), "macro_f1": float("nan")}
        out = {
            "accuracy": float(accuracy_score(refs, preds)),
            "macro_f1": float(f1_score(refs, preds, average="macro", zero_division=0)),
        }
        info = (data.info or {}) if data is not None else {}
        num_labels = int(info.get("num_labels") or len(info.get("label_names") or []) or 0)
        if num_labels:  # in label-id order: hubmgr names the entries by data.info["label_names"]
            out["f1_per_label"] = f1_score(refs, preds, labels=list(range(num_labels)), average=None, zero_division=0)
        if int(info.get("num_labels", 0)) == 2:
            out["f1"] = float(
                f1_score(refs, preds, pos_label=_positive_index(info, options), average="binary", zero_division=0)
            )
        if probs is not None:
            out["calibration_error"] = _calibration_error(probs[keep], refs)
            out["mean_confidence"] = float(probs[keep].max(axis=1).mean())
        return out

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
        """The confusion matrix of the predictions just scored: ``{"labels": [...], "confusion": rows of
        counts, one row per true label}``."""
        import numpy as np

        if predictions is None or labels is None:
            return {}
        raw = np.asarray(predictions)
        preds = raw.reshape(-1, raw.shape[-1]).argmax(axis=1) if raw.ndim >= 2 else raw.reshape(-1)
        refs = np.asarray(labels).reshape(-1)
        names = list((data.info or {}).get("label_names") or []) if data is not None else []
        size = max(len(names), int(max(preds.max(initial=0), refs.max(initial=0))) + 1)
        matrix = np.zeros((size, size), dtype=int)
        for true, guess in zip(refs[refs != -100], preds[refs != -100]):
            matrix[int(true), int(guess)] += 1
        return {"labels": names or [str(i) for i in range(size)], "confusion": matrix.tolist()}

    # -- use -----------------------------------------------------------------------------------------
    def predict(self, model: Any, processor: Any, inputs: Sequence[Any], options: Any, data: TaskData) -> list[str]:
        """Label each pair: ``"paraphrase (0.91)"``.

        Args:
            inputs: ``(first, second)`` tuples, dicts with the two sentence columns, or strings
                ``"first ||| second"`` (a tab works too).

        Raises:
            DataError: an input that is not a pair.
        """
        import torch

        if not inputs:
            return []
        opts = options if isinstance(options, SentencePairOptions) else SentencePairOptions()
        pairs = [_as_pair(x, opts) for x in inputs]
        enc = processor(
            [a for a, _ in pairs], [b for _, b in pairs], truncation="longest_first", padding=True, return_tensors="pt"
        )
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = model(**{k: v.to(device) for k, v in enc.items()}).logits
        finally:
            model.train(was_training)
        probs = torch.softmax(logits.float(), dim=-1)
        names = list((data.info or {}).get("label_names") or []) if data is not None else []
        id2label = getattr(model.config, "id2label", None) or {}
        out = []
        for row in probs:
            idx = int(row.argmax())
            label = names[idx] if idx < len(names) else id2label.get(idx, str(idx))
            out.append(f"{label} ({float(row[idx]):.2f})")
        return out


# -- helpers ----------------------------------------------------------------------------------------
def _positive_index(info: dict[str, Any], options: Any) -> int:
    """The label id whose F1 is ``f1``: the ``positive_label`` option (a name or an id), else 1."""
    wanted = str(getattr(options, "positive_label", "") or "").strip()
    if not wanted:
        return 1
    names = [str(n) for n in info.get("label_names") or []]
    if wanted in names:
        return names.index(wanted)
    if _is_int(wanted) and 0 <= int(wanted) < max(2, len(names)):
        return int(wanted)
    raise DataError(f"positive_label {wanted!r} is not one of the labels: {', '.join(names) or '0, 1'}.")


def _calibration_error(probs: Any, refs: Any, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over equal-width
    confidence bins weighted by how many examples fall in each (Guo et al. 2017)."""
    import numpy as np

    if len(refs) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == refs).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def _class_names(dataset: Any, column: str) -> list[str] | None:
    """The names of a ``datasets.ClassLabel`` column (Hub datasets such as GLUE), else None."""
    names = getattr(dataset.features.get(column), "names", None)
    return list(names) if names else None


def _label_key(value: Any, class_names: list[str] | None) -> str:
    """One label cell as its name: ClassLabel ids through their names, ``1.0`` as ``1``, text stripped."""
    if isinstance(value, bool):
        value = int(value)
    if class_names is not None and isinstance(value, int) and 0 <= value < len(class_names):
        return class_names[value]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def _is_unlabeled(value: Any, unlabeled: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return bool(unlabeled) and _label_key(value, None) == unlabeled.strip()


def _drop_unlabeled(dataset: Any, options: SentencePairOptions, *, what: str) -> Any:
    column = options.label_column
    keep = [i for i, v in enumerate(dataset[column]) if not _is_unlabeled(v, options.unlabeled_value)]
    if not keep:
        raise DataError(f"The {what} data has no labelled rows in column {column!r}.")
    if len(keep) == len(dataset):
        return dataset
    return dataset.select(keep).flatten_indices()


def _label_names(dataset: Any, column: str) -> list[str]:
    """Label names in a stable order: ClassLabel order, integers by value, else alphabetical."""
    class_names = _class_names(dataset, column)
    keys = {_label_key(v, class_names) for v in dataset[column]}
    if class_names is not None:
        return [n for n in class_names if n in keys]
    if all(_is_int(k) for k in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _as_pair(value: Any, options: SentencePairOptions) -> tuple[str, str]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return str(value[0]), str(value[1])
    if isinstance(value, dict):
        for a, b in ((options.sentence1_column, options.sentence2_column), ("sentence1", "sentence2")):
            if a in value and b in value:
                return str(value[a]), str(value[b])
    if isinstance(value, str):
        for sep in PAIR_SEPARATORS:
            if sep in value:
                a, b = value.split(sep, 1)
                return a.strip(), b.strip()
    raise DataError(
        f"Input {value!r} is not a sentence pair; give (first, second), a dict with"
        f" {options.sentence1_column!r} and {options.sentence2_column!r}, or 'first ||| second'."
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__).rstrip(".") + "."


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    """Register the sentence-pair task with hubmgr."""
    register(SentencePairTask)
