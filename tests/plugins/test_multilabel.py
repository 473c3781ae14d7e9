"""Multi-label text classification and imbalanced data in the built-in text-classification task.

Hand-computed examples for the metrics (micro/macro-F1, subset accuracy, the tuned threshold, per-class
numbers, minority F1, baselines, class-weighted losses), then the data paths (JSON lists, CSV with a
separator, ClassLabel sequences, refusals), and a tiny BERT trained end to end: the tuned threshold is
saved with the adapter and used by evaluate, predict and the CLI, and ``threshold=`` overrides it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hubmgr.errors import DataError, UsageError
from hubmgr.plugins import get_task
from hubmgr.task import DataSource, TaskData

# -- data -------------------------------------------------------------------------------------------
WORDS = {"joy": ["good", "wonderful", "fun"], "love": ["loved", "love", "nice"], "anger": ["bad", "awful", "hate"]}
COMBOS = [("joy",), ("love",), ("anger",), ("joy", "love"), ("love", "anger"), ()]


def _rows(n: int, offset: int = 0) -> list[dict]:
    rows = []
    for i in range(offset, offset + n):
        labels = list(COMBOS[i % len(COMBOS)])
        words = [WORDS[name][(i // len(COMBOS) + k) % 3] for k, name in enumerate(labels)] or ["the", "day"]
        rows.append({"text": " ".join(words + ["the", "movie"][: 1 + i % 2]), "labels": labels})
    return rows


@pytest.fixture
def task():
    return get_task("text-classification")


def _opts(task, **values):
    return task.make_options({"label_column": "labels", **values})


def _data(names, counts=None, rows=None, multi=True, **extra) -> TaskData:
    info = {
        "label_names": list(names),
        "label2id": {n: i for i, n in enumerate(names)},
        "id2label": {str(i): n for i, n in enumerate(names)},
        "num_labels": len(names),
        "multi_label": multi,
    }
    if counts is not None:
        info["label_counts"] = dict(counts)
    if rows is not None:
        info["train_rows"] = rows
    info.update(extra)
    return TaskData(train=None, eval=None, info=info)


# -- metrics, by hand ---------------------------------------------------------------------------------
PROBS = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.3], [0.7, 0.4, 0.1], [0.2, 0.1, 0.05]], dtype=np.float32)
REFS = np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)


def test_multi_label_metrics_at_a_given_threshold(task):
    data = _data(["a", "b", "c"])
    m = task.compute_metrics(PROBS, REFS, data, _opts(task, threshold=0.5))
    # at 0.5: tp=3 (row 0 twice, row 1), fp=1 (row 2, a), fn=1 (row 2, b)
    assert m["micro_f1"] == pytest.approx(6 / 8)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["subset_accuracy"] == pytest.approx(3 / 4)
    assert m["threshold"] == 0.5
    assert task.main_metric_for(data) == ("micro_f1", True)
    assert task.main_metric_for(_data(["a", "b"], multi=False)) == ("accuracy", True)


def test_threshold_is_tuned_when_neither_given_nor_saved(task):
    data = _data(["a", "b", "c"])
    m = task.compute_metrics(PROBS, REFS, data, _opts(task))
    # 0.35 and 0.4 both give tp=4, fp=1, fn=0 (micro-F1 8/9); the tie goes to the one nearer 0.5
    assert m["threshold"] == pytest.approx(0.4)
    assert m["micro_f1"] == pytest.approx(8 / 9)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert task.calibrate(PROBS, REFS, data, _opts(task)) == {"threshold": pytest.approx(0.4)}
    assert task.calibrate(PROBS, REFS, data, _opts(task, threshold=0.7)) == {"threshold": 0.7}
    assert task.calibrate(np.array([0, 1]), np.array([0, 1]), _data(["a", "b"], multi=False), _opts(task)) == {}


def test_saved_threshold_is_used_and_the_option_overrides_it(task):
    data = _data(["a", "b", "c"], threshold=0.5)
    assert task.compute_metrics(PROBS, REFS, data, _opts(task))["micro_f1"] == pytest.approx(6 / 8)
    assert task.compute_metrics(PROBS, REFS, data)["threshold"] == 0.5  # the three-argument form too
    over = task.compute_metrics(PROBS, REFS, data, _opts(task, threshold=0.35))
    assert over["threshold"] == 0.35 and over["micro_f1"] == pytest.approx(8 / 9)


def test_per_class_multi_label(task):
    rows = task.per_class(PROBS, REFS, _data(["a", "b", "c"]), _opts(task, threshold=0.5))
    assert [r["label"] for r in rows] == ["a", "b", "c"]
    assert [r["support"] for r in rows] == [1, 2, 1]
    assert [r["precision"] for r in rows] == pytest.approx([0.5, 1.0, 1.0])
    assert [r["recall"] for r in rows] == pytest.approx([1.0, 0.5, 1.0])
    assert [r["f1"] for r in rows] == pytest.approx([2 / 3, 2 / 3, 1.0])


def test_per_class_single_label(task):
    preds, refs = np.array([0, 1, 1, 2, 2, 0]), np.array([0, 1, 2, 2, 2, 1])
    rows = task.per_class(preds, refs, _data(["a", "b", "c"], multi=False), _opts(task))
    assert [(r["label"], r["support"]) for r in rows] == [("a", 1), ("b", 2), ("c", 3)]
    assert [r["precision"] for r in rows] == pytest.approx([0.5, 0.5, 1.0])
    assert [r["recall"] for r in rows] == pytest.approx([1.0, 0.5, 2 / 3])
    assert [r["f1"] for r in rows] == pytest.approx([2 / 3, 0.5, 0.8])


def test_minority_f1_follows_the_training_counts(task):
    preds, refs = np.array([0, 1, 1, 0, 0]), np.array([0, 1, 0, 1, 0])
    pos_rare = task.compute_metrics(preds, refs, _data(["neg", "pos"], {"neg": 8, "pos": 2}, multi=False))
    assert pos_rare["minority_f1"] == pytest.approx(0.5)  # pos: tp 1, fp 1, fn 1
    neg_rare = task.compute_metrics(preds, refs, _data(["neg", "pos"], {"neg": 2, "pos": 8}, multi=False))
    assert neg_rare["minority_f1"] == pytest.approx(2 / 3)  # neg: tp 2, fp 1, fn 1
    assert pos_rare["accuracy"] == neg_rare["accuracy"] == pytest.approx(0.6)
    three = task.compute_metrics(
        np.array([0, 1, 2]), np.array([0, 1, 1]), _data(["a", "b", "c"], {"a": 1, "b": 1, "c": 5}, multi=False)
    )
    assert "minority_f1" not in three


def test_baseline_single_label_predicts_the_majority_training_label(task):
    data = _data(["a", "b", "c"], {"a": 5, "b": 3, "c": 2}, multi=False)
    m = task.baseline_metrics(np.array([0, 1, 2, 0]), data, _opts(task))
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((2 / 3) / 3)
    # binary: the majority (neg) always; minority pos never predicted
    b = task.baseline_metrics(np.array([0, 1, 0, 0]), _data(["neg", "pos"], {"neg": 7, "pos": 3}, multi=False))
    assert b["accuracy"] == pytest.approx(0.75) and b["minority_f1"] == 0.0


def test_baseline_multi_label_predicts_the_label_frequencies(task):
    data = _data(["x", "y", "z"], {"x": 6, "y": 2, "z": 0}, rows=8, threshold=0.9)  # a saved threshold is ignored
    refs = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32)
    m = task.baseline_metrics(refs, data, _opts(task))
    # probabilities (0.75, 0.25, 0): predicting x alone (thresholds 0.3..0.75, nearest 0.5) is best
    assert m["threshold"] == 0.5
    assert m["micro_f1"] == pytest.approx(6 / 9)
    assert m["subset_accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((6 / 7) / 3)


def test_class_weighted_losses(task):
    import torch
    import torch.nn.functional as F
    from transformers.modeling_outputs import SequenceClassifierOutput

    torch.manual_seed(0)
    logits = torch.randn(4, 2)
    labels = torch.tensor([0, 0, 0, 1])
    data = _data(["a", "b"], {"a": 9, "b": 1}, rows=10, multi=False)
    out = SequenceClassifierOutput(logits=logits)
    assert task.compute_loss(out, labels, data, _opts(task)) is None  # the model's own loss
    weighted = task.compute_loss(out, labels, data, _opts(task, class_weight="balanced"))
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([10 / (2 * 9), 10 / (2 * 1)]))
    assert float(weighted) == pytest.approx(float(expected), rel=1e-6)
    assert abs(float(weighted) - float(F.cross_entropy(logits, labels))) > 1e-3

    ml_logits = torch.randn(3, 2)
    ml_labels = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    ml = _data(["x", "y"], {"x": 8, "y": 2}, rows=10)
    ml_out = SequenceClassifierOutput(logits=ml_logits)
    got = task.compute_loss(ml_out, ml_labels, ml, _opts(task, class_weight="balanced"))
    want = F.binary_cross_entropy_with_logits(ml_logits, ml_labels, pos_weight=torch.tensor([2 / 8, 8 / 2]))
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    assert abs(float(got) - float(F.binary_cross_entropy_with_logits(ml_logits, ml_labels))) > 1e-3
    # clipped: a label in every row, and one in 1 of 1000
    clipped = _data(["x", "y"], {"x": 1000, "y": 1}, rows=1000)
    got = task.compute_loss(ml_out, ml_labels, clipped, _opts(task, class_weight="balanced"))
    want = F.binary_cross_entropy_with_logits(ml_logits, ml_labels, pos_weight=torch.tensor([0.1, 100.0]))
    assert float(got) == pytest.approx(float(want), rel=1e-6)


def test_bad_option_values_are_one_sentence(task):
    for values, needle in (
        ({"class_weight": "heavy"}, "class_weight must be one of none, balanced"),
        ({"threshold": 1.5}, "threshold must be a number between 0 and 1"),
        ({"threshold": "high"}, "threshold must be a number"),
        ({"label_separator": ""}, "label_separator must not be empty"),
    ):
        with pytest.raises(UsageError, match=needle) as err:
            task.make_options(values)
        assert "\n" not in str(err.value)


# -- data ---------------------------------------------------------------------------------------------
def test_json_lists_are_multi_label(task, write_jsonl):
    rows = [
        {"text": "a", "labels": ["joy", "love"]},
        {"text": "b", "labels": []},
        {"text": "c", "labels": ["anger"]},
        {"text": "d", "labels": ["joy"]},
    ]
    path = write_jsonl("ml.jsonl", rows)
    data = task.load_data(DataSource(train=str(path), eval_fraction=0), _opts(task))
    assert data.info["multi_label"] is True
    assert data.info["label_names"] == ["anger", "joy", "love"]
    assert data.info["label_counts"] == {"anger": 1, "joy": 2, "love": 1}
    assert data.info["train_rows"] == 4


def test_counts_are_of_the_training_rows_after_the_hold_out(task, write_jsonl):
    path = write_jsonl("ml.jsonl", _rows(30))
    data = task.load_data(DataSource(train=str(path), eval_fraction=0.2, seed=1), _opts(task))
    assert data.info["train_rows"] == len(data.train) == 24
    for name in data.info["label_names"]:
        assert data.info["label_counts"][name] == sum(name in r for r in data.train["labels"])


def test_csv_with_a_separator_is_multi_label(task, write_csv, tiny_bert):
    path = write_csv(
        "ml.csv",
        ["text", "tags"],
        [("good fun", "joy|love"), ("bad", "anger"), ("the day", ""), ("nice", " love | joy ")],
    )
    opts = task.make_options({"label_column": "tags", "label_separator": "|"})
    data = task.load_data(DataSource(train=str(path), eval_fraction=0), opts)
    assert data.info["multi_label"] and data.info["label_names"] == ["anger", "joy", "love"]
    assert data.info["label_counts"] == {"anger": 1, "joy": 2, "love": 2}

    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    assert model.config.problem_type == "multi_label_classification" and model.config.num_labels == 3
    features = task.preprocess(data.train, tokenizer, opts, 16, data)
    assert features["labels"] == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    batch = task.collator(tokenizer, opts)([features[i] for i in range(4)])
    assert batch["labels"].dtype.is_floating_point and tuple(batch["labels"].shape) == (4, 3)
    import torch

    out = model(**batch)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, batch["labels"])
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)  # the model's own loss is BCE
    probs = task.reduce_logits(out.logits, batch["labels"])
    assert probs.dtype == torch.float32 and torch.allclose(probs, torch.sigmoid(out.logits))
    assert (
        task.reduce_logits(out.logits[:, :2], torch.tensor([0, 1, 1, 0])).tolist()
        == out.logits[:, :2].argmax(-1).tolist()
    )


def test_sequence_of_class_labels_keeps_its_names(task, tmp_path):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features({"text": Value("string"), "labels": Sequence(ClassLabel(names=["sad", "joy", "love"]))})
    Dataset.from_dict({"text": ["x", "y", "z"], "labels": [[1, 2], [], [1]]}, features=features).to_parquet(
        str(tmp_path / "ml.parquet")
    )
    data = task.load_data(DataSource(train=str(tmp_path / "ml.parquet"), eval_fraction=0), _opts(task))
    assert data.info["label_names"] == ["sad", "joy", "love"] and data.info["class_label"] is True
    assert data.info["label_counts"] == {"sad": 0, "joy": 2, "love": 1}


def test_single_class_data_is_refused(task, write_csv, write_jsonl):
    one = write_csv("one.csv", ["text", "label"], [("good", "positive"), ("great", "positive"), ("fine", "positive")])
    with pytest.raises(DataError) as err:
        task.load_data(DataSource(train=str(one)), task.make_options({}))
    assert (
        str(err.value) == "The training data (one.csv) has only one label, 'positive'; a classifier needs at least two."
    )

    ml = write_jsonl("one.jsonl", [{"text": "a", "labels": ["joy"]}, {"text": "b", "labels": []}])
    with pytest.raises(DataError, match=r"fewer than two distinct labels \(only 'joy'\)"):
        task.load_data(DataSource(train=str(ml), eval_fraction=0), _opts(task))
    empty = write_jsonl("none.jsonl", [{"text": "a", "labels": []}, {"text": "b", "labels": []}])
    with pytest.raises(DataError, match=r"fewer than two distinct labels \(no row has a label\)"):
        task.load_data(DataSource(train=str(empty), eval_fraction=0), _opts(task))

    # scoring a one-label file is fine
    data = task.load_data(DataSource(train=str(one), eval_fraction=0, purpose="eval"), task.make_options({}))
    assert data.info["label_names"] == ["positive"]


def test_multi_label_eval_labels_must_be_seen_in_training(task, write_jsonl, tiny_bert):
    train = write_jsonl("train.jsonl", [{"text": "a", "labels": ["joy"]}, {"text": "b", "labels": ["love"]}])
    dev = write_jsonl("dev.jsonl", [{"text": "c", "labels": ["joy", "fear"]}])
    with pytest.raises(DataError, match=r"Labels in the eval data \(dev.jsonl\) are not in the training data: fear;"):
        task.load_data(DataSource(train=str(train), eval=str(dev)), _opts(task))
    opts = _opts(task)
    data = task.load_data(DataSource(train=str(train), eval_fraction=0), opts)
    _, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    from hubmgr.data import load_table

    with pytest.raises(DataError, match="Label 'fear' is not one of the training labels: joy, love"):
        task.preprocess(load_table(dev), tokenizer, opts, 16, data)


def test_predict_lists_the_labels_above_the_threshold(task, tiny_bert):
    data = _data(["anger", "joy", "love"], threshold=0.01)
    model, tokenizer = task.load_model(str(tiny_bert), _opts(task), data, {})
    got = task.predict(model, tokenizer, ["good fun", "bad"], _opts(task), data)
    for line in got:
        scores = [float(part.rsplit("(", 1)[1].rstrip(")")) for part in line.split(", ")]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)  # every label, highest first
    assert task.predict(model, tokenizer, ["good fun"], _opts(task, threshold=0.99), data) == ["(no label above 0.99)"]


# -- end to end -------------------------------------------------------------------------------------
def _train(model: Path, data: Path, out: Path, **kw):
    from hubmgr.train.config import TrainConfig
    from hubmgr.train.runner import train

    values = dict(
        task="text-classification",
        model=str(model),
        data=str(data),
        output_dir=str(out),
        max_steps=6,
        batch_size=8,
        logging_steps=2,
        learning_rate=5e-3,
        save_steps=0,
    )
    values.update(kw)
    return train(TrainConfig(**values))


def test_multi_label_trains_and_its_threshold_is_saved_and_used(hf_env, tiny_bert, write_jsonl, tmp_path, cli_runner):
    import hubmgr
    from hubmgr.eval.runner import evaluate

    train_file = write_jsonl("train.jsonl", _rows(48))
    dev = write_jsonl("dev.jsonl", _rows(12, offset=48))
    result = _train(tiny_bert, train_file, tmp_path / "adapter", eval_data=str(dev), options={"label_column": "labels"})
    assert result.status == "completed"
    assert {"eval_micro_f1", "eval_macro_f1", "eval_subset_accuracy"} <= set(result.metrics)
    record = json.loads((result.adapter_path / "hubmgr_run.json").read_text())
    info = record["data_info"]
    assert info["multi_label"] is True and info["label_names"] == ["anger", "joy", "love"]
    assert info["label_counts"] == {"anger": 16, "joy": 16, "love": 24} and info["train_rows"] == 48
    saved = info["threshold"]
    assert 0.05 <= saved <= 0.95
    assert result.metrics["eval_threshold"] == pytest.approx(saved)

    report = evaluate(None, [str(result.adapter_path)], task=None, data=str(dev))
    assert report.main_metric == "micro_f1" and report.greater_is_better
    assert [r.metrics["threshold"] for r in report.rows] == [pytest.approx(saved)] * 2
    assert 0 <= report.rows[1].metrics["micro_f1"] <= 1
    assert report.samples == []
    base_only = evaluate(
        str(tiny_bert), [], task="text-classification", data=str(dev), options={"label_column": "labels"}
    )
    assert base_only.main_metric == "micro_f1" and 0.05 <= base_only.rows[0].metrics["threshold"] <= 0.95

    over = evaluate(
        None, [str(result.adapter_path)], task=None, data=str(dev), options={"threshold": 0.3}, per_class=True
    )
    assert [r.metrics["threshold"] for r in over.rows] == [0.3, 0.3]
    breakdown = over.rows[1].per_class
    assert [c["label"] for c in breakdown] == ["anger", "joy", "love"]
    assert [c["support"] for c in breakdown] == [4, 4, 6]  # the labels of dev.jsonl

    cli = cli_runner(
        "eval",
        "--adapter",
        str(result.adapter_path),
        "--data",
        str(dev),
        "-o",
        "threshold=0.3",
        "--per-class",
        "--json",
    )
    assert cli.exit_code == 0, cli.output
    rows = json.loads(cli.output)["rows"]
    assert rows[1]["metrics"]["threshold"] == 0.3 and rows[1]["per_class"] == breakdown
    table = cli_runner("eval", "--adapter", str(result.adapter_path), "--data", str(dev), "--per-class")
    assert table.exit_code == 0, table.output
    assert "model\tlabel\tprecision\trecall\tf1\tsupport" in table.output

    # predict reads the saved threshold (set very low here: every label shows) and -o threshold= wins
    record["data_info"]["threshold"] = 0.01
    (result.adapter_path / "hubmgr_run.json").write_text(json.dumps(record))
    preds = hubmgr.predict(result.adapter_path, ["good fun the movie", "awful"])
    assert all(len(p.prediction.split(", ")) == 3 for p in preds)
    high = hubmgr.predict(result.adapter_path, ["good fun the movie"], options={"threshold": 0.99})
    assert high[0].prediction == "(no label above 0.99)"
    low_eval = evaluate(None, [str(result.adapter_path)], task=None, data=str(dev))
    assert low_eval.rows[1].metrics["threshold"] == 0.01
    cli = cli_runner("predict", str(result.adapter_path), "good fun", "-o", "threshold=0.99", "--json")
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)[0]["prediction"] == "(no label above 0.99)"

    # merged: a plain transformers model that knows it is multi-label
    from hubmgr.eval.merge import merge_adapter

    merged = merge_adapter(result.adapter_path, output=tmp_path / "merged")
    config = json.loads((Path(merged.output) / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {"0": "anger", "1": "joy", "2": "love"}


def test_multi_label_csv_with_class_weights_through_the_cli(
    hf_env, tiny_bert, write_csv, tmp_path, cli_runner, monkeypatch
):
    from hubmgr_tasks.text_classification import TextClassificationTask

    calls = []
    original = TextClassificationTask.compute_loss

    def spy(self, outputs, labels, data, options):
        loss = original(self, outputs, labels, data, options)
        calls.append(loss is not None and labels.ndim == 2)
        return loss

    monkeypatch.setattr(TextClassificationTask, "compute_loss", spy)
    rows = [(r["text"], "|".join(r["labels"])) for r in _rows(24)]
    path = write_csv("train.csv", ["text", "tags"], rows)
    out = tmp_path / "adapter"
    result = cli_runner(
        "train",
        "text-classification",
        "--model",
        str(tiny_bert),
        "--data",
        str(path),
        "--output",
        str(out),
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--eval-fraction",
        "0.25",
        "-o",
        "label_column=tags",
        "-o",
        "label_separator=|",
        "-o",
        "class_weight=balanced",
    )
    assert result.exit_code == 0, result.output
    assert calls and all(calls)  # the weighted BCE was the training loss
    record = json.loads((out / "hubmgr_run.json").read_text())
    info = record["data_info"]
    assert info["multi_label"] is True and "threshold" in info and info["train_rows"] == 18
    assert record["options"]["label_separator"] == "|"
    result = cli_runner("predict", str(out), "good fun", "--json")
    assert result.exit_code == 0, result.output
    prediction = json.loads(result.output)[0]["prediction"]
    assert prediction.startswith("(no label above") or prediction.split(" (")[0] in ("anger", "joy", "love")


def test_single_class_training_data_is_one_line_from_the_cli(hf_env, tiny_bert, write_csv, cli_runner):
    path = write_csv("one.csv", ["text", "label"], [("good", "positive")] * 6)
    result = cli_runner(
        "train", "text-classification", "--model", str(tiny_bert), "--data", str(path), "--max-steps", "1"
    )
    assert result.exit_code != 0
    assert "has only one label, 'positive'; a classifier needs at least two." in result.output
    assert "Traceback" not in result.output


def test_adapters_compare_label_sets_not_counts():
    from hubmgr.eval.runner import _same_labels

    old = {"label_names": ["neg", "pos"], "num_labels": 2}
    new = {"label_names": ["neg", "pos"], "num_labels": 2, "multi_label": False, "label_counts": {"neg": 5, "pos": 3}}
    assert _same_labels(old, new)
    assert _same_labels(new, {**new, "label_counts": {"neg": 1, "pos": 9}, "threshold": 0.3})
    assert not _same_labels(new, {**new, "multi_label": True})
    assert not _same_labels(old, {"label_names": ["neg", "neutral", "pos"], "num_labels": 3})
