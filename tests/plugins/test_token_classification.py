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


CASED_ROWS = [
    {"tokens": ["John", "lives", "in", "Paris"], "ner_tags": ["B-PER", "O", "O", "B-LOC"]},
    {"tokens": ["mary", "went", "to", "New-york"], "ner_tags": ["B-PER", "O", "O", "B-LOC"]},
]


def test_lowercasing_tokenizer_is_detected(tiny_bert):
    from tokenizers import normalizers
    from transformers import AutoTokenizer

    from hubmgr_tasks.token_classification import lowercases

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    assert lowercases(tokenizer)  # the tiny tokenizer lowercases, like uncased BERT
    tokenizer.backend_tokenizer.normalizer = normalizers.NFD()  # a cased one
    assert not lowercases(tokenizer)


def test_case_feature_marks_capitalised_words(task, write_jsonl, tiny_bert):
    path = write_jsonl("cased.jsonl", CASED_ROWS)
    opts, data = _load(task, DataSource(train=str(path), eval_fraction=0))
    _, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    assert data.info["case_feature"] is True  # auto: lowercasing tokenizer, two token types
    features = task.preprocess(data.train, tokenizer, opts, 32, data)
    # [CLS] john lives in paris [SEP]
    assert features[0]["token_type_ids"] == [0, 1, 0, 0, 1, 0]
    # [CLS] mary went to new - york [SEP]: every sub-word of "New-york" is marked
    assert features[1]["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1, 0]

    off = task.make_options({"case_feature": "off"})
    _, data_off = _load(task, DataSource(train=str(path), eval_fraction=0))
    _, tokenizer = task.load_model(str(tiny_bert), off, data_off, {})
    assert data_off.info["case_feature"] is False
    plain = task.preprocess(data_off.train, tokenizer, off, 32, data_off)
    assert set(plain[0].get("token_type_ids") or [0]) == {0}


def test_case_feature_saved_decision_stands(task, write_jsonl, tiny_bert):
    """An adapter's data info says whether it was trained with the case marks; loading keeps that."""
    path = write_jsonl("cased.jsonl", CASED_ROWS)
    opts, data = _load(task, DataSource(train=str(path), eval_fraction=0))
    data.info["case_feature"] = False  # as read back from an adapter trained without it
    task.load_model(str(tiny_bert), opts, data, {})
    assert data.info["case_feature"] is False


def test_case_feature_on_needs_token_types(task, write_jsonl, tiny_gpt2):
    from hubmgr_tasks.token_classification import case_feature_applies

    path = write_jsonl("cased.jsonl", CASED_ROWS)
    opts, data = _load(task, DataSource(train=str(path), eval_fraction=0))
    model, tokenizer = task.load_model(str(tiny_gpt2), opts, data, {})
    assert data.info["case_feature"] is False  # auto: GPT-2 has no token types
    with pytest.raises(ModelError, match="two token types"):
        case_feature_applies("on", tokenizer, model)
    with pytest.raises(Exception, match="case_feature must be one of"):
        task.make_options({"case_feature": "sometimes"})


def test_predict_passes_case_marks(task, tiny_bert, write_jsonl):
    import torch

    path = write_jsonl("cased.jsonl", CASED_ROWS)
    opts, data = _load(task, DataSource(train=str(path), eval_fraction=0))
    model, tokenizer = task.load_model(str(tiny_bert), opts, data, {})
    seen = {}
    forward = model.forward

    def spy(**kwargs):
        seen.update(kwargs)
        return forward(**kwargs)

    model.forward = spy
    out = task.predict(model, tokenizer, ["John left Paris", "mary left"], opts, data)
    assert len(out) == 2
    assert seen["token_type_ids"].tolist() == [[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]
    data.info["case_feature"] = False
    seen.clear()
    task.predict(model, tokenizer, ["John left Paris"], opts, data)
    assert "token_type_ids" not in seen or not torch.any(seen["token_type_ids"])


@pytest.mark.parametrize("option,expected", [("auto", True), ("off", False)])
def test_adapter_keeps_case_decision_for_predict(hf_env, tiny_bert, write_jsonl, tmp_path, option, expected):
    import json

    import hubmgr
    from hubmgr.eval.predict import Predictor

    path = write_jsonl("cased.jsonl", CASED_ROWS * 4)
    result = hubmgr.train(
        hubmgr.TrainConfig(
            task="token-classification",
            model=str(tiny_bert),
            data=str(path),
            output_dir=str(tmp_path / "out"),
            max_steps=2,
            batch_size=4,
            options={"case_feature": option},
        )
    )
    meta = json.loads((result.adapter_path / "hubmgr_run.json").read_text())
    assert meta["data_info"]["case_feature"] is expected
    predictor = Predictor(result.adapter_path)
    assert predictor.data.info["case_feature"] is expected
