"""Built-in task: token classification (NER, BIO tags) with entity-level F1 from seqeval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hubmgr.data import column_values_as_list
from hubmgr.errors import DataError, ModelError, UsageError
from hubmgr.hookspecs import hookimpl
from hubmgr.task import DataSource, LoraDefaults, Task, TaskData

from hubmgr_tasks import _common

CASE_FEATURES = ("auto", "on", "off")


@dataclass
class TokenClassificationOptions:
    """Options of the token-classification task."""

    tokens_column: str = field(
        default="tokens",
        metadata={"help": "Column holding the words of each sentence (a list, or a space-separated string)."},
    )
    tags_column: str = field(
        default="ner_tags", metadata={"help": "Column holding one BIO tag per word (names like B-PER, or integers)."}
    )
    label_names: str | None = field(
        default=None,
        metadata={"help": "Comma-separated tag names for integer tags, in id order (e.g. 'O,B-PER,I-PER')."},
    )
    label_all_subtokens: bool = field(
        default=False,
        metadata={
            "help": "Train on every sub-word token of a word (B- becomes I- after the first), not only the first."
        },
    )
    case_feature: str = field(
        default="auto",
        metadata={
            "help": "Mark capitalised words in the token type ids, for a model whose tokenizer lowercases"
            " (an uncased BERT loses the case that names are spotted by). 'auto': on when the tokenizer"
            " lowercases and the model has two token types.",
            "choices": CASE_FEATURES,
        },
    )

    def __post_init__(self) -> None:
        if isinstance(self.case_feature, bool):
            self.case_feature = "on" if self.case_feature else "off"
        self.case_feature = str(self.case_feature).lower()
        if self.case_feature not in CASE_FEATURES:
            raise UsageError(f"case_feature must be one of {', '.join(CASE_FEATURES)}, not {self.case_feature!r}.")


def _feature_names(dataset: Any, column: str) -> list[str] | None:
    feature = dataset.features.get(column)
    inner = getattr(feature, "feature", None)  # List(ClassLabel) / Sequence(ClassLabel)
    names = getattr(inner, "names", None)
    return list(names) if names else None


def _tag_names(dataset: Any, column: str, given: list[str] | None, *, source: str) -> tuple[list[str], bool]:
    """Tag names and whether the column holds integer ids."""
    feature_names = _feature_names(dataset, column)
    values: set[Any] = set()
    for row in dataset[column]:
        for tag in column_values_as_list(row):
            values.add(tag)
    ints = bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if ints:
        names = given or feature_names
        if not names:
            raise DataError(
                f"Column {column!r} in {source} holds integer tags; give their names in id order with"
                " the label_names option (e.g. 'O,B-PER,I-PER')."
            )
        too_big = sorted(v for v in values if v < 0 or v >= len(names))
        if too_big:
            raise DataError(f"Tag id {too_big[0]} in {source} has no name; {len(names)} label names were given.")
        return names, True
    if not all(isinstance(v, str) for v in values):
        raise DataError(f"Column {column!r} in {source} must hold tag names or integers.")
    if given:
        return given, False
    found = sorted(values, key=lambda t: (t != "O", t[2:] if len(t) > 2 else t, t))
    if "O" not in found:
        found.insert(0, "O")
    return found, False


def _check_rows(dataset: Any, options: TokenClassificationOptions, *, source: str) -> None:
    for i, (tokens, tags) in enumerate(zip(dataset[options.tokens_column], dataset[options.tags_column])):
        tokens, tags = column_values_as_list(tokens), column_values_as_list(tags)
        if not tokens:
            raise DataError(f"Row {i + 1} of {source} has no tokens in column {options.tokens_column!r}.")
        if len(tokens) != len(tags):
            raise DataError(
                f"Row {i + 1} of {source} has {len(tokens)} tokens but {len(tags)} tags"
                f" (columns {options.tokens_column!r} and {options.tags_column!r})."
            )


def lowercases(tokenizer: Any) -> bool:
    """True when the tokenizer lowercases its input (uncased BERT): its normalizer turns "Paris" into "paris",
    or, without one it can show, a capitalised word gets the same (known) ids as its lowercase form."""
    words = ["Paris", "London", "Obama"]
    normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    if normalizer is not None:
        try:
            return all(normalizer.normalize_str(w) == normalizer.normalize_str(w.lower()) for w in words)
        except Exception:  # noqa: BLE001 - fall back to comparing ids
            pass
    try:
        upper = tokenizer(words, is_split_into_words=True, add_special_tokens=False)["input_ids"]
        lower = tokenizer([w.lower() for w in words], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    except Exception:  # noqa: BLE001 - a tokenizer that cannot say: treat it as cased
        return False
    unk = getattr(tokenizer, "unk_token_id", None)
    return bool(upper) and list(upper) == list(lower) and unk not in list(lower)


def case_feature_applies(option: str, tokenizer: Any, model: Any) -> bool:
    """Whether capitalised words are marked in ``token_type_ids``: ``on``/``off`` as given; ``auto`` when the
    tokenizer lowercases and the model has (at least) two token types and takes ``token_type_ids``.

    Raises:
        ModelError: ``on`` for a model without two token types.
    """
    import inspect

    types = int(getattr(getattr(model, "config", None), "type_vocab_size", 0) or 0)
    try:
        takes = "token_type_ids" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        takes = False
    usable = types >= 2 and takes
    if option == "off":
        return False
    if option == "on":
        if not usable:
            raise ModelError(
                "case_feature=on needs a model with two token types (BERT-like); this one has"
                f" {types}. Leave case_feature at auto or off."
            )
        return True
    return usable and lowercases(tokenizer)


def case_type_ids(words: Sequence[str], word_ids: Sequence[int | None]) -> list[int]:
    """1 for the sub-words of a word that starts with a capital letter, 0 elsewhere (special tokens too)."""
    return [1 if w is not None and words[w][:1].isupper() else 0 for w in word_ids]


class TokenClassificationTask(Task):
    """Tag each word of a sentence (named entities with BIO tags)."""

    name = "token-classification"
    description = "Tag each word (named entities, BIO tags) with sub-word alignment; entity-level F1 (seqeval)."
    pipeline_tags = ("token-classification", "fill-mask", "feature-extraction")
    options_class = TokenClassificationOptions
    main_metric = "f1"
    auto_model_class = "AutoModelForTokenClassification"
    greater_is_better = True

    def required_columns(self, options: TokenClassificationOptions, columns: Sequence[str]) -> dict[str, str | None]:
        """The tokens and tags columns."""
        return {"tokens_column": options.tokens_column, "tags_column": options.tags_column}

    def load_data(self, source: DataSource, options: TokenClassificationOptions) -> TaskData:
        """Load the splits, check columns and row lengths, learn the tag names.

        Raises:
            DataError: missing file or column, a row whose tokens and tags differ in count, integer tags
                without names, or eval tags unseen in training.
        """
        from hubmgr.data import load_splits, split_train_eval

        required = self.required_columns(options, ())
        train, eval_ds = load_splits(source, required=required, hold_out=False)
        train_name = _common.source_name(source.train)
        eval_name = _common.source_name(source.eval) if source.eval else f"the eval split of {train_name}"
        given = [n.strip() for n in options.label_names.split(",") if n.strip()] if options.label_names else None
        _check_rows(train, options, source=train_name)
        names, ints = _tag_names(train, options.tags_column, given, source=train_name)
        if eval_ds is not None:
            _check_rows(eval_ds, options, source=eval_name)
            eval_names, eval_ints = _tag_names(
                eval_ds, options.tags_column, given or (names if ints else None), source=eval_name
            )
            if eval_ints != ints:
                raise DataError(
                    f"Tags in {eval_name} are {'integers' if eval_ints else 'names'}, unlike the training data."
                )
            if not ints:
                used = {t for row in eval_ds[options.tags_column] for t in column_values_as_list(row)}
                _common.check_eval_labels(names, used, source=eval_name)
        if eval_ds is None:
            train, eval_ds = split_train_eval(train, source.eval_fraction, source.seed)
        label2id = {n: i for i, n in enumerate(names)}
        info = {
            "label_names": names,
            "label2id": label2id,
            "id2label": {str(i): n for i, n in enumerate(names)},
            "num_labels": len(names),
            "int_tags": ints,
        }
        return TaskData(train=train, eval=eval_ds, info=info)

    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """AutoModelForTokenClassification plus a fast tokenizer (sub-word alignment needs ``word_ids``).

        Raises:
            ModelError: no token-classification head for the architecture, or no fast tokenizer.
        """
        from transformers import AutoModelForTokenClassification

        info = data.info
        model = _common.load_auto_model(
            AutoModelForTokenClassification,
            model_path,
            "token classification",
            load_kwargs,
            id2label={int(k): v for k, v in info["id2label"].items()},
            label2id=dict(info["label2id"]),
            ignore_mismatched_sizes=True,
        )
        tokenizer = _common.load_tokenizer(model_path, load_kwargs)
        if getattr(tokenizer, "add_prefix_space", None) is False:  # byte-level BPE (GPT-2, RoBERTa) on pre-split words
            tokenizer = _common.load_tokenizer(model_path, load_kwargs, add_prefix_space=True)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(
                f"Model {_common.model_label(model_path)} has no fast tokenizer; token classification needs one to align tags to sub-words."
            )
        _common.ensure_pad_token(tokenizer, model)
        if "case_feature" not in info:  # an adapter's saved decision stands (eval, predict)
            info["case_feature"] = case_feature_applies(options.case_feature, tokenizer, model)
        return model, tokenizer

    def lora_defaults(self, model: Any, options: Any) -> LoraDefaults:
        return LoraDefaults(
            task_type="TOKEN_CLS",
            target_modules=_common.target_modules(model),
            modules_to_save=_common.head_modules(model),
        )

    def preprocess(
        self, dataset: Any, processor: Any, options: TokenClassificationOptions, max_length: int, data: TaskData
    ) -> Any:
        """Tokenize pre-split words and align tags: the first sub-word of a word gets its tag, the rest
        and the special tokens get -100 (unless ``label_all_subtokens``). Adds ``length``, and
        ``token_type_ids`` marking capitalised words when :func:`case_feature_applies` (decided in
        :meth:`load_model`, kept in ``data.info``).

        Raises:
            DataError: a tag that the training data did not have.
        """
        info = data.info
        max_length = _common.effective_max_length(processor, max_length)
        names: list[str] = info["label_names"]
        label2id: dict[str, int] = info["label2id"]
        ints = bool(info.get("int_tags"))
        # B-X -> I-X for the non-first sub-words when label_all_subtokens
        b_to_i = [label2id.get("I-" + n[2:], i) if n.startswith("B-") else i for i, n in enumerate(names)]
        tok_col, tag_col = options.tokens_column, options.tags_column
        cased = bool(info.get("case_feature"))

        def tag_id(tag: Any) -> int:
            if ints:
                return int(tag)
            if tag not in label2id:
                raise DataError(f"Tag {tag!r} is not one of the training tags: {', '.join(names)}.")
            return label2id[tag]

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            words = [[str(w) for w in column_values_as_list(row)] for row in batch[tok_col]]
            enc = processor(words, is_split_into_words=True, truncation=True, max_length=max_length)
            if cased:
                enc["token_type_ids"] = [
                    case_type_ids(words[i], enc.word_ids(batch_index=i)) for i in range(len(words))
                ]
            all_labels = []
            for i, row_tags in enumerate(batch[tag_col]):
                tags = [tag_id(t) for t in column_values_as_list(row_tags)]
                labels, previous = [], None
                for word in enc.word_ids(batch_index=i):
                    if word is None:
                        labels.append(-100)
                    elif word != previous:
                        labels.append(tags[word])
                    else:
                        labels.append(b_to_i[tags[word]] if options.label_all_subtokens else -100)
                    previous = word
                all_labels.append(labels)
            enc["labels"] = all_labels
            enc["length"] = [len(ids) for ids in enc["input_ids"]]
            return dict(enc)

        return _common.map_rows(dataset, encode)

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        from transformers import DataCollatorForTokenClassification

        return _common.PadCollator.for_tokenizer(
            processor, DataCollatorForTokenClassification(processor), label_pad=-100
        )

    def compute_metrics(self, predictions: Any, labels: Any, data: TaskData) -> dict[str, float]:
        """Entity-level precision/recall/F1 (seqeval) and token accuracy.

        Args:
            predictions: predicted tag ids ``[examples, tokens]`` (argmax), padded with anything.
            labels: gold ids of the same shape, ``-100`` where there is nothing to score.
        """
        import numpy as np
        from seqeval.metrics import f1_score, precision_score, recall_score

        names: list[str] = data.info["label_names"]
        true_seqs: list[list[str]] = []
        pred_seqs: list[list[str]] = []
        for pred_row, gold_row in zip(np.asarray(predictions), np.asarray(labels)):
            keep = gold_row != -100
            gold = [names[int(g)] for g in gold_row[keep]]
            pred = [names[int(p)] if 0 <= int(p) < len(names) else "O" for p in pred_row[keep]]
            true_seqs.append(gold)
            pred_seqs.append(pred)
        total = sum(len(s) for s in true_seqs)
        if total == 0:
            return {"f1": float("nan"), "precision": float("nan"), "recall": float("nan"), "accuracy": float("nan")}
        correct = sum(t == p for ts, ps in zip(true_seqs, pred_seqs) for t, p in zip(ts, ps))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns about non-BIO tags and empty entity sets
            return {
                "f1": float(f1_score(true_seqs, pred_seqs, zero_division=0)),
                "precision": float(precision_score(true_seqs, pred_seqs, zero_division=0)),
                "recall": float(recall_score(true_seqs, pred_seqs, zero_division=0)),
                "accuracy": correct / total,
            }

    def predict(self, model: Any, processor: Any, inputs: Sequence[Any], options: Any, data: TaskData) -> list[str]:
        """Tag the words of each input (a string split on spaces, or a list of words):
        ``"John/B-PER lives in Paris/B-LOC"`` (words tagged ``O`` are shown bare)."""
        import torch

        if not inputs:
            return []
        words = [str(x).split() if isinstance(x, str) else [str(w) for w in x] for x in inputs]
        enc = processor(words, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt")
        if data and data.info and data.info.get("case_feature"):
            enc["token_type_ids"] = torch.tensor(
                [case_type_ids(words[i], enc.word_ids(batch_index=i)) for i in range(len(words))]
            )
        device = _common.model_device(model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = model(**{k: v.to(device) for k, v in enc.items()}).logits
        finally:
            model.train(was_training)
        ids = logits.argmax(-1).cpu().tolist()
        names = data.info.get("label_names") if data and data.info else None
        id2label = getattr(model.config, "id2label", None) or {}
        out = []
        for i, row_words in enumerate(words):
            tags: dict[int, str] = {}
            for pos, word in enumerate(enc.word_ids(batch_index=i)):
                if word is not None and word not in tags:
                    idx = ids[i][pos]
                    tags[word] = names[idx] if names and idx < len(names) else id2label.get(idx, str(idx))
            out.append(" ".join(f"{w}/{tags[j]}" if tags.get(j, "O") != "O" else w for j, w in enumerate(row_words)))
        return out


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(TokenClassificationTask)
