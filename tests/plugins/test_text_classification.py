"""text-classification with the tiny BERT: data, model, features, a forward pass, metrics, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from hubmgr.errors import DataError, ModelError
from hubmgr.plugins import get_task
from hubmgr.task import DataSource

POS = ["good movie", "wonderful film", "i loved the acting", "excellent story", "a fun plot"]
NEG = ["bad movie", "awful film", "i hated the acting", "terrible story", "a boring plot"]


@pytest.fixture
def task():
    return get_task("text-classification")


@pytest.fixture
def sentiment_csv(write_csv):
    rows = [(t, "positive") for t in POS] + [(t, "negative") for t in NEG]
    return write_csv("sentiment.csv", ["text", "label"], rows)


def _load(task, source, **options):
    opts = task.make_options(options)
    return opts, task.load_data(source, opts)


def test_load_data_learns_label_names(task, sentiment_csv):
    _, data = _load(task, DataSource(train=str(sentiment_csv), eval_fraction=0.2, seed=3))
    assert data.info["label_names"] == ["negative", "positive"]
    assert data.info["label2id"] == {"negative": 0, "positive": 1}
    assert (len(data.train), len(data.eval)) == (8, 2)


def test_integer_labels(task, write_jsonl):
    path = write_jsonl("ints.jsonl", [{"text": f"row {i}", "label": i % 3} for i in range(9)])
    _, data = _load(task, DataSource(train=str(path), eval_fraction=0))
    assert data.info["label_names"] == ["0", "1", "2"] and data.eval is None


def test_model_features_forward_and_metrics(task, sentiment_csv, tiny_bert):
    opts, data = _load(task, DataSource(train=str(sentiment_csv), eval_fraction=0.2))
    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 2 and model.config.id2label == {0: "negative", 1: "positive"}

    defaults = task.lora_defaults(model, opts)
    assert defaults.task_type == "SEQ_CLS"
    assert defaults.target_modules == ["query", "key", "value", "dense"]
    assert defaults.modules_to_save == ["classifier"]

    features = task.preprocess(data.train, tokenizer, opts, 6, data)
    assert {"input_ids", "attention_mask", "labels", "length"} <= set(features.column_names)
    lengths = features["length"]
    assert max(lengths) <= 6 and lengths == [len(ids) for ids in features["input_ids"]]  # truncated, not padded
    assert len(set(lengths)) > 1

    batch = task.collator(tokenizer, opts)([features[i] for i in range(4)])
    assert "length" not in batch
    assert batch["input_ids"].shape == (4, max(lengths[:4]))
    out = model(**batch)
    assert out.loss is not None
    preds = task.reduce_logits(out.logits, batch["labels"])
    metrics = task.compute_metrics(preds.numpy(), batch["labels"].numpy(), data)
    assert set(metrics) == {"accuracy", "macro_f1", "minority_f1"} and 0 <= metrics["accuracy"] <= 1

    predictions = task.predict(model, tokenizer, ["good film", "bad film"], opts, data)
    assert len(predictions) == 2 and all(p.split(" (")[0] in ("negative", "positive") for p in predictions)


def test_text_pairs(task, write_jsonl, tiny_bert):
    rows = [
        {"premise": "the sun is hot", "hypothesis": h, "label": lab}
        for h, lab in [("the sun is cold", "contradiction"), ("the sun is hot", "entailment")] * 3
    ]
    path = write_jsonl("nli.jsonl", rows)
    opts, data = _load(
        task, DataSource(train=str(path), eval_fraction=0), text_column="premise", text_pair_column="hypothesis"
    )
    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    features = task.preprocess(data.train, tokenizer, opts, 32, data)
    assert features[0]["input_ids"].count(tokenizer.sep_token_id) == 2  # both segments are there
    out = model(**task.collator(tokenizer, opts)([features[0], features[1]]))
    assert out.logits.shape == (2, 2)


def test_compute_metrics_values(task):
    metrics = task.compute_metrics(np.array([0, 1, 1, 1]), np.array([0, 1, 0, 1]), None)
    assert metrics["accuracy"] == 0.75
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_missing_file(task, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        task.load_data(DataSource(train=str(tmp_path / "nope.csv")), task.make_options({}))


def test_missing_column_names_it_and_lists_columns(task, sentiment_csv):
    with pytest.raises(DataError) as err:
        task.load_data(DataSource(train=str(sentiment_csv)), task.make_options({"text_column": "review"}))
    assert str(err.value) == "Column 'review' (text_column) is not in sentiment.csv; columns are: text, label."


def test_empty_split(task, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("text,label\n")
    with pytest.raises(DataError, match="has no rows"):
        task.load_data(DataSource(train=str(path)), task.make_options({}))


def test_eval_labels_not_in_training(task, sentiment_csv, write_csv):
    eval_path = write_csv("eval.csv", ["text", "label"], [("so so", "neutral"), ("good", "positive")])
    with pytest.raises(DataError, match=r"Labels in the eval data \(eval.csv\) are not in the training data: neutral"):
        task.load_data(DataSource(train=str(sentiment_csv), eval=str(eval_path)), task.make_options({}))


def test_empty_labels(task, write_csv):
    path = write_csv("blank.csv", ["text", "label"], [("good", "positive"), ("bad", "")])
    with pytest.raises(DataError, match="empty labels"):
        task.load_data(DataSource(train=str(path)), task.make_options({}))


def test_architecture_that_cannot_classify_text(task, sentiment_csv, tiny_vit):
    opts, data = _load(task, DataSource(train=str(sentiment_csv)))
    with pytest.raises(ModelError) as err:
        task.load_model(str(tiny_vit), opts, data, {})
    message = str(err.value)
    assert "cannot be used for text classification" in message and "'vit'" in message
    assert "\n" not in message


def test_unknown_option(task):
    from hubmgr.errors import UsageError

    with pytest.raises(UsageError, match="Unknown option"):
        task.make_options({"txt_column": "x"})


def test_preprocess_refuses_unknown_label(task, sentiment_csv, write_csv, tiny_bert):
    from hubmgr.data import load_table

    opts, data = _load(task, DataSource(train=str(sentiment_csv)))
    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    other = load_table(write_csv("other.csv", ["text", "label"], [("meh", "neutral")]))
    with pytest.raises(DataError, match="Label 'neutral' is not one of the training labels: negative, positive"):
        task.preprocess(other, tokenizer, opts, 16, data)
