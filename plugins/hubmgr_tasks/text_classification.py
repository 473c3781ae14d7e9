"""Built-in task: text classification (single texts or text pairs) with accuracy and macro-F1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hubmgr.errors import DataError
from hubmgr.hookspecs import hookimpl
from hubmgr.task import DataSource, LoraDefaults, Task, TaskData

from hubmgr_tasks import _common


@dataclass
class TextClassificationOptions:
    """Options of the text-classification task."""

    text_column: str = field(default="text", metadata={"help": "Column holding the text to classify."})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Optional second text column (sentence pairs: NLI, paraphrase)."}
    )
    label_column: str = field(default="label", metadata={"help": "Column holding the label (a name or an integer)."})


class TextClassificationTask(Task):
    """Classify texts (or text pairs) into labels taken from the data."""

    name = "text-classification"
    description = "Classify texts or text pairs into labels (sentiment, topic, NLI); accuracy and macro-F1."
    pipeline_tags = ("text-classification", "zero-shot-classification", "sentence-similarity", "fill-mask", "feature-extraction")
    options_class = TextClassificationOptions
    main_metric = "accuracy"
    greater_is_better = True

    # -- data ----------------------------------------------------------------------------------------
    def load_data(self, source: DataSource, options: TextClassificationOptions) -> TaskData:
        """Load the splits, check the columns and learn the label names from the training data.

        Raises:
            DataError: missing file or column, empty split, or eval labels unseen in training.
        """
        from hubmgr.data import load_splits, split_train_eval

        required = {
            "text_column": options.text_column,
            "text_pair_column": options.text_pair_column,
            "label_column": options.label_column,
        }
        train, eval_ds = load_splits(source, required=required, hold_out=False)
        train_name = _common.source_name(source.train)
        eval_name = _common.source_name(source.eval) if source.eval else f"the eval split of {train_name}"
        info = _common.label_info(train, eval_ds, options.label_column, train_source=train_name, eval_source=eval_name)
        if eval_ds is None:  # labels were learned from all rows, so the held-out part cannot surprise
            train, eval_ds = split_train_eval(train, source.eval_fraction, source.seed)
        return TaskData(train=train, eval=eval_ds, info=info)

    # -- model ---------------------------------------------------------------------------------------
    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """AutoModelForSequenceClassification with a head sized to the data's labels.

        Raises:
            ModelError: the architecture has no sequence-classification head, or no tokenizer.
        """
        from transformers import AutoModelForSequenceClassification

        info = data.info
        id2label = {int(k): v for k, v in info["id2label"].items()}
        model = _common.load_auto_model(
            AutoModelForSequenceClassification,
            model_path,
            "text classification",
            load_kwargs,
            id2label=id2label,
            label2id=dict(info["label2id"]),
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
    def preprocess(self, dataset: Any, processor: Any, options: TextClassificationOptions, max_length: int, data: TaskData) -> Any:
        """Tokenize (truncated to ``max_length``, not padded) and map labels to ids; adds ``length``.

        Raises:
            DataError: a label that the training data did not have.
        """
        info = data.info
        max_length = _common.effective_max_length(processor, max_length)
        label2id: dict[str, int] = info["label2id"]
        names = info["label_names"]
        feature = dataset.features.get(options.label_column)
        class_label = bool(getattr(feature, "names", None))
        text_col, pair_col, label_col = options.text_column, options.text_pair_column, options.label_column

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            texts = [("" if t is None else str(t)) for t in batch[text_col]]
            pairs = [("" if t is None else str(t)) for t in batch[pair_col]] if pair_col else None
            enc = processor(texts, pairs, truncation=True, max_length=max_length)
            labels = []
            for value in batch[label_col]:
                key = _common.label_key(value, names, class_label)
                if key not in label2id:
                    raise DataError(f"Label {key!r} is not one of the training labels: {', '.join(names)}.")
                labels.append(label2id[key])
            enc["labels"] = labels
            enc["length"] = [len(ids) for ids in enc["input_ids"]]
            return dict(enc)

        return _common.map_rows(dataset, encode)

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        from transformers import DataCollatorWithPadding

        return _common.TokenizerCollator(DataCollatorWithPadding(processor))

    # -- metrics -------------------------------------------------------------------------------------
    def compute_metrics(self, predictions: Any, labels: Any, data: TaskData) -> dict[str, float]:
        """Accuracy and macro-F1 from predicted class ids (``reduce_logits``' argmax) and label ids."""
        import numpy as np
        from sklearn.metrics import accuracy_score, f1_score

        preds = np.asarray(predictions).reshape(-1)
        refs = np.asarray(labels).reshape(-1)
        keep = refs != -100
        preds, refs = preds[keep], refs[keep]
        if refs.size == 0:
            return {"accuracy": float("nan"), "macro_f1": float("nan")}
        return {
            "accuracy": float(accuracy_score(refs, preds)),
            "macro_f1": float(f1_score(refs, preds, average="macro", zero_division=0)),
        }

    # -- use -----------------------------------------------------------------------------------------
    def predict(self, model: Any, processor: Any, inputs: Sequence[Any], options: Any, data: TaskData) -> list[str]:
        """Label each input text (or ``(text, pair)`` tuple): ``"positive (0.93)"``."""
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
        probs = _common.softmax_rows(logits)
        id2label = getattr(model.config, "id2label", None) or {}
        names = data.info.get("label_names") if data and data.info else None
        out = []
        for row in probs:
            idx = int(row.argmax())
            label = names[idx] if names and idx < len(names) else id2label.get(idx, str(idx))
            out.append(f"{label} ({float(row[idx]):.2f})")
        return out


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(TextClassificationTask)
