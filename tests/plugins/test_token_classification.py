"""token-classification with the tiny BERT: tag alignment, a forward pass, seqeval metrics, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from hubmgr.errors import DataError, ModelError
from hubmgr.plugins import get_task
from hubmgr.task import DataSource

ROWS = [
    {"tokens": ["john", "lives", "in", "paris"], "ner_tags": ["B-PER", "O", "O", "B-LOC"]},
    {"tokens": ["mary", "went", "to", "new-york"], "ner_tags": ["B-PER", "O", "O", "B-LOC"]},
    {"tokens": ["google", "is", "in", "london"], "ner_tags": ["B-ORG", "O", "O", "B-LOC"]},
    {"tokens": ["john", "smith", "left"], "ner_tags": ["B-PER", "I-PER", "O"]},
]


@pytest.fixture
def task():
    return get_task("token-classification")


@pytest.fixture
def ner_jsonl(write_jsonl):
    return write_jsonl("ner.jsonl", ROWS * 2)


def _load(task, source, **options):
    opts = task.make_options(options)
    return opts, task.load_data(source, opts)


def test_tag_names_from_strings(task, ner_jsonl):
    _, data = _load(task, DataSource(train=str(ner_jsonl), eval_fraction=0.25))
    assert data.info["label_names"] == ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"]
    assert (len(data.train), len(data.eval)) == (6, 2)


def test_integer_tags_need_names(task, write_jsonl):
    path = write_jsonl("ints.jsonl", [{"tokens": ["john", "left"], "ner_tags": [1, 0]}] * 3)
    with pytest.raises(DataError, match="integer tags; give their names"):
        _load(task, DataSource(train=str(path)))
    _, data = _load(task, DataSource(train=str(path), eval_fraction=0), label_names="O,B-PER,I-PER")
    assert data.info["label_names"] == ["O", "B-PER", "I-PER"] and data.info["int_tags"]
    with pytest.raises(DataError, match="Tag id 1 .* has no name"):
        _load(task, DataSource(train=str(path)), label_names="O")


def test_class_label_feature_names(task, tiny_bert):
    from datasets import ClassLabel, Dataset, Features, List, Value

    from hubmgr_tasks.token_classification import _tag_names

    names = ["O", "B-PER", "I-PER"]
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    ds = Dataset.from_dict({"tokens": [["john", "smith"]], "ner_tags": [[1, 2]]}, features=features)
    assert _tag_names(ds, "ner_tags", None, source="x") == (names, True)


def test_alignment_forward_and_metrics(task, ner_jsonl, tiny_bert):
    opts, data = _load(task, DataSource(train=str(ner_jsonl), eval_fraction=0))
    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    assert type(model).__name__ == "BertForTokenClassification"
    defaults = task.lora_defaults(model, opts)
    assert (defaults.task_type, defaults.modules_to_save) == ("TOKEN_CLS", ["classifier"])

    ids = data.info["label2id"]
    features = task.preprocess(data.train, tokenizer, opts, 32, data)
    # [CLS] mary went to new - york [SEP]: "new-york" is three sub-words, only the first is labelled
    assert features[1]["labels"] == [-100, ids["B-PER"], ids["O"], ids["O"], ids["B-LOC"], -100, -100, -100]
    assert features[1]["length"] == 8

    all_sub = task.make_options({"label_all_subtokens": True})
    data.info["label2id"]["I-LOC"] = len(data.info["label_names"])  # B- becomes I- where I- exists
    data.info["label_names"].append("I-LOC")
    again = task.preprocess(data.train.select([1]), tokenizer, all_sub, 32, data)
    assert again[0]["labels"][4:7] == [ids["B-LOC"], ids["I-LOC"], ids["I-LOC"]]
    data.info["label_names"].pop()
    del data.info["label2id"]["I-LOC"]

    batch = task.collator(tokenizer, opts)([features[i] for i in range(3)])
    assert "length" not in batch and batch["labels"].shape == batch["input_ids"].shape
    assert (batch["labels"][0, -1] == -100).item()  # padded labels are ignored
    out = model(**batch)
    preds = task.reduce_logits(out.logits, batch["labels"]).numpy()
    metrics = task.compute_metrics(preds, batch["labels"].numpy(), data)
    assert set(metrics) == {"f1", "precision", "recall", "accuracy"}

    tagged = task.predict(model, tokenizer, ["john lives in paris"], opts, data)
    assert len(tagged) == 1 and tagged[0].replace("/", " ").split()[0] == "john"


def test_compute_metrics_entity_level(task):
    from hubmgr.task import TaskData

    names = ["O", "B-PER", "I-PER", "B-LOC"]
    data = TaskData(train=None, eval=None, info={"label_names": names})
    labels = np.array([[-100, 1, 2, 0, 3, -100], [-100, 3, 0, -100, -100, -100]])
    perfect = task.compute_metrics(np.where(labels == -100, 0, labels), labels, data)
    assert perfect == {"f1": 1.0, "precision": 1.0, "recall": 1.0, "accuracy": 1.0}
    # the PER entity is cut short (B-PER O): one of three entities wrong
    preds = np.array([[0, 1, 0, 0, 3, 0], [0, 3, 0, 0, 0, 0]])
    metrics = task.compute_metrics(preds, labels, data)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(5 / 6)


def test_token_and_tag_counts_must_match(task, write_jsonl):
    path = write_jsonl("bad.jsonl", [{"tokens": ["a", "b"], "ner_tags": ["O"]}])
    with pytest.raises(DataError, match="Row 1 of bad.jsonl has 2 tokens but 1 tags"):
        _load(task, DataSource(train=str(path)))


def test_missing_column(task, ner_jsonl):
    with pytest.raises(DataError) as err:
        _load(task, DataSource(train=str(ner_jsonl)), tags_column="tags")
    assert str(err.value) == "Column 'tags' (tags_column) is not in ner.jsonl; columns are: tokens, ner_tags."


def test_eval_tags_not_in_training(task, ner_jsonl, write_jsonl):
    eval_path = write_jsonl("eval.jsonl", [{"tokens": ["monday"], "ner_tags": ["B-DATE"]}])
    with pytest.raises(DataError, match=r"not in the training data: B-DATE"):
        _load(task, DataSource(train=str(ner_jsonl), eval=str(eval_path)))


def test_space_separated_csv_cells(task, write_csv):
    path = write_csv("ner.csv", ["tokens", "ner_tags"], [("john lives in paris", "B-PER O O B-LOC")] * 2)
    _, data = _load(task, DataSource(train=str(path), eval_fraction=0))
    assert data.info["label_names"] == ["O", "B-LOC", "B-PER"]


def test_architecture_that_cannot_tag(task, ner_jsonl, tiny_vit):
    opts, data = _load(task, DataSource(train=str(ner_jsonl)))
    with pytest.raises(ModelError, match="cannot be used for token classification"):
        task.load_model(str(tiny_vit), opts, data, {})
