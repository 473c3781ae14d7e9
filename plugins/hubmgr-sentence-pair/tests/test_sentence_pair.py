"""Tests of the sentence-pair task plugin, using only hubmgr's public API and hubmgr.testing."""

from __future__ import annotations

import json

import pytest

from hubmgr import DataError, DataSource, TaskData, get_tasks
from hubmgr.testing import smoke_test_task

from hubmgr_sentence_pair.task import SentencePairOptions, SentencePairTask

NLI = {"sentence1_column": "premise", "sentence2_column": "hypothesis"}


def test_registered_through_its_entry_point():
    # Installed as a normal package (`pip install -e plugins/hubmgr-sentence-pair`), hubmgr finds it.
    assert get_tasks().get("sentence-pair") is SentencePairTask


def test_listed_by_the_cli_with_its_options():
    from click.testing import CliRunner

    from hubmgr.cli import cli

    result = CliRunner().invoke(cli, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    tasks = {t["name"]: t for t in json.loads(result.output)}
    options = {o["name"] for o in tasks["sentence-pair"]["options"]}
    assert options == {
        "sentence1_column",
        "sentence2_column",
        "label_column",
        "unlabeled_value",
        "positive_label",
        "label_smoothing",
    }


def test_load_data_drops_unlabeled_rows_and_learns_labels(nli_data):
    task = SentencePairTask()
    data = task.load_data(DataSource(train=str(nli_data["train"]), eval=str(nli_data["eval"])), task.make_options(NLI))
    assert data.info["label_names"] == ["contradiction", "entailment", "neutral"]
    assert len(data.train) == 36  # the two "-1" rows are gone
    assert len(data.eval) == 9


def test_held_out_split_when_no_eval_data(paraphrase_csv):
    task = SentencePairTask()
    data = task.load_data(DataSource(train=str(paraphrase_csv), eval_fraction=0.25), task.make_options())
    assert data.info["label_names"] == ["0", "1"]
    assert (len(data.train), len(data.eval)) == (18, 6)


def test_missing_column_names_it(nli_data):
    task = SentencePairTask()
    with pytest.raises(DataError, match="'sentence1'.*premise"):
        task.load_data(DataSource(train=str(nli_data["train"])), task.make_options())


def test_eval_labels_unseen_in_training_are_refused(tmp_path, paraphrase_csv):
    other = tmp_path / "eval.csv"
    other.write_text("sentence1,sentence2,label\na,b,2\n")
    task = SentencePairTask()
    with pytest.raises(DataError, match="not in the training data: 2"):
        task.load_data(DataSource(train=str(paraphrase_csv), eval=str(other)), task.make_options())


def test_a_single_label_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("sentence1,sentence2,label\na,b,yes\nc,d,yes\n")
    task = SentencePairTask()
    with pytest.raises(DataError, match="only one label"):
        task.load_data(DataSource(train=str(path)), task.make_options())


def test_preprocess_encodes_both_sentences_together(tiny_bert, paraphrase_csv):
    task = SentencePairTask()
    opts = task.make_options()
    data = task.load_data(DataSource(train=str(paraphrase_csv), eval_fraction=0.0), opts)
    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {"local_files_only": True})
    enc = task.preprocess(data.train.select(range(4)), tokenizer, opts, 8, data)
    assert set(enc.column_names) >= {"input_ids", "attention_mask", "labels", "length"}
    # both sentences in one sequence: [CLS] first [SEP] second [SEP], truncated to 8 tokens
    assert all(ids.count(tokenizer.sep_token_id) == 2 for ids in enc["input_ids"])
    assert all(n <= 8 for n in enc["length"])
    # hubmgr hands the collator the rows without their length column
    batch = task.collator(tokenizer, opts)([{k: v for k, v in r.items() if k != "length"} for r in enc])
    assert "length" not in batch and batch["input_ids"].shape[0] == 4


def test_predict_accepts_pairs_in_three_shapes(tiny_bert, paraphrase_csv):
    task = SentencePairTask()
    opts = task.make_options()
    data = task.load_data(DataSource(train=str(paraphrase_csv), eval_fraction=0.0), opts)
    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {"local_files_only": True})
    out = task.predict(
        model,
        tokenizer,
        [("a good film", "a great film"), "good ||| bad", {"sentence1": "fun", "sentence2": "boring"}],
        opts,
        data,
    )
    assert len(out) == 3 and all(o.split()[0] in ("0", "1") for o in out)
    with pytest.raises(DataError, match="not a sentence pair"):
        task.predict(model, tokenizer, ["just one sentence"], opts, data)


def test_metrics_add_binary_f1():
    data = TaskData(train=None, eval=None, info={"num_labels": 2})
    m = SentencePairTask().compute_metrics([1, 0, 1, 1], [1, 0, 0, 1], data)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.8)
    three = SentencePairTask().compute_metrics([0, 1, 2], [0, 1, 1], TaskData(None, None, {"num_labels": 3}))
    assert "f1" not in three and three["accuracy"] == pytest.approx(2 / 3)


def test_options_have_help():
    for f in SentencePairTask.option_fields():
        assert f.metadata.get("help"), f.name
    assert SentencePairOptions().unlabeled_value == "-1"


def test_smoke_trains_evaluates_and_loads_with_plain_peft(tiny_bert, nli_data, tmp_path):
    result = smoke_test_task(
        SentencePairTask,
        model_dir=tiny_bert,
        train_file=nli_data["train"],
        eval_file=nli_data["eval"],
        options=NLI,
        tmp_dir=tmp_path,
        predict_inputs=[("the film was good", "the film was great"), "the song was fun ||| the song was bad"],
    )
    assert result["task"] == "sentence-pair"
    assert 0.0 <= result["eval"]["adapter"]["accuracy"] <= 1.0
    assert result["peft"]["lora_tensors"] > 0
    assert [p.split()[0] in ("contradiction", "entailment", "neutral") for p in result["predictions"]] == [True, True]


def test_metrics_from_probabilities_add_calibration_error_and_follow_positive_label():
    import numpy as np

    info = {"num_labels": 2, "label_names": ["different", "paraphrase"]}
    data = TaskData(train=None, eval=None, info=info)
    probs = np.array([[0.05, 0.95], [0.75, 0.25], [0.45, 0.55], [0.35, 0.65]])
    labels = [1, 0, 0, 1]
    m = SentencePairTask().compute_metrics(probs, labels, data, SentencePairOptions())
    assert m["accuracy"] == pytest.approx(0.75) and m["f1"] == pytest.approx(0.8)
    # one example per confidence bin: 0.95 right, 0.75 right, 0.55 wrong, 0.65 right
    assert m["calibration_error"] == pytest.approx((0.05 + 0.25 + 0.55 + 0.35) / 4)
    other = SentencePairTask().compute_metrics(probs, labels, data, SentencePairOptions(positive_label="different"))
    assert other["f1"] == pytest.approx(2 / 3)  # tp 1, fp 0, fn 1 for "different"
    assert not SentencePairTask().greater_is_better_for("calibration_error")
    # per label: different (tp 1, fp 0, fn 1) 2/3, paraphrase (tp 2, fp 1, fn 0) 0.8; a table once hubmgr names it
    assert list(m["f1_per_label"]) == pytest.approx([2 / 3, 0.8])
    assert m["mean_confidence"] == pytest.approx((0.95 + 0.75 + 0.55 + 0.65) / 4)
    assert SentencePairTask().greater_is_better_for("mean_confidence") is None  # auxiliary: never "best"
    with pytest.raises(DataError, match="positive_label 'same'"):
        SentencePairTask().compute_metrics(probs, labels, data, SentencePairOptions(positive_label="same"))


def test_extra_eval_is_a_confusion_matrix_of_the_scored_predictions():
    import numpy as np

    data = TaskData(train=None, eval=None, info={"label_names": ["a", "b", "c"]})
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    extra = SentencePairTask().extra_eval(None, None, None, data, predictions=probs, labels=np.array([0, 1, 2, 2]))
    assert extra == {"labels": ["a", "b", "c"], "confusion": [[1, 0, 0], [0, 1, 0], [0, 1, 1]]}
    assert SentencePairTask().extra_eval(None, None, None, data) == {}


def test_label_smoothing_changes_the_training_loss(tiny_bert, nli_data, tmp_path):
    import hubmgr

    losses = []
    for smoothing in (0.0, 0.3):
        result = hubmgr.train(
            hubmgr.TrainConfig(
                task="sentence-pair",
                model=str(tiny_bert),
                data=str(nli_data["train"]),
                eval_data=str(nli_data["eval"]),
                max_steps=2,
                batch_size=8,
                output_dir=str(tmp_path / f"out-{smoothing}"),
                options={**NLI, "label_smoothing": smoothing},
            )
        )
        losses.append(result.metrics["train_loss"])
        run = json.loads((result.adapter_path / "hubmgr_run.json").read_text())
        assert len(run["extra"]["confusion"]) == len(run["extra"]["labels"]) == 3
        assert run["metric_directions"]["eval_calibration_error"] is False
        assert run["metric_directions"]["eval_mean_confidence"] is None
        assert set(run["metric_tables"]["f1_per_label"]) == {"contradiction", "entailment", "neutral"}
        assert "eval_f1_per_label" not in run["metrics"]  # tables stay out of the scalar metrics
    assert losses[0] != losses[1]
    # hubmgr eval shows sample predictions from the probabilities, and each row's confusion matrix
    report = hubmgr.evaluate(None, [str(result.adapter_path)], task=None, data=str(nli_data["eval"]))
    assert report.samples and {s["label"] for s in report.samples} <= {"contradiction", "entailment", "neutral"}
    assert all(len(row.extras["confusion"]) == 3 for row in report.rows)
    assert report.directions["calibration_error"] is False and "calibration_error" in report.rows[-1].metrics
    assert report.directions["mean_confidence"] is None
    assert report.table_names() == ["f1_per_label"]
    assert all(set(row.tables["f1_per_label"]) == {"contradiction", "entailment", "neutral"} for row in report.rows)
    # the CLI shows the table: one line per label with a value for the base model and the adapter
    from click.testing import CliRunner

    from hubmgr.cli import cli

    out = CliRunner().invoke(cli, ["eval", "--adapter", str(result.adapter_path), "--data", str(nli_data["eval"])])
    assert out.exit_code == 0, out.output
    lines = [line.split("\t") for line in out.stdout.splitlines()]
    assert ["metric", "label", "base", result.adapter_path.name] in lines or any(
        line[:2] == ["metric", "label"] for line in lines
    )
    per_label = [line for line in lines if line[0] == "f1_per_label"]
    assert sorted(line[1] for line in per_label) == ["contradiction", "entailment", "neutral"]
    assert all(len(line) == 4 for line in per_label)
    shown = CliRunner().invoke(cli, ["runs", "show", result.run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    assert set(json.loads(shown.stdout)["metric_tables"]["f1_per_label"]) == {"contradiction", "entailment", "neutral"}
    shown = CliRunner().invoke(cli, ["runs", "show", result.run_id])
    assert ["label", "f1_per_label"] in [line.split("\t") for line in shown.stdout.splitlines()]
