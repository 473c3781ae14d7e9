"""hubmgr.testing's "does it learn" kit: learnable_bert_dir + keyword_rows + LEARNING_SETTINGS make a
task that works reach a high score in seconds, so a plugin's test can tell learning from a broken task."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="module")
def learnable(tmp_path_factory):
    from hubmgr.testing import learnable_bert_dir

    return learnable_bert_dir(tmp_path_factory.mktemp("learnable") / "model")


@pytest.mark.parametrize("multi_label", [False, True], ids=["single-label", "multi-label"])
def test_text_classification_learns_keyword_data_quickly(hf_env, learnable, tmp_path, multi_label):
    import hubmgr
    from hubmgr.testing import LEARNING_SETTINGS, keyword_rows, write_rows

    train = write_rows(tmp_path / "train.jsonl", keyword_rows(160, multi_label=multi_label, seed=0))
    held = write_rows(tmp_path / "eval.jsonl", keyword_rows(60, multi_label=multi_label, seed=1))
    start = time.perf_counter()
    result = hubmgr.train(
        hubmgr.TrainConfig(
            task="text-classification",
            model=str(learnable),
            data=str(train),
            eval_data=str(held),
            output_dir=str(tmp_path / "out"),
            **LEARNING_SETTINGS,
        )
    )
    seconds = time.perf_counter() - start
    metric = "eval_micro_f1" if multi_label else "eval_accuracy"
    assert result.metrics[metric] >= 0.9, (metric, result.metrics, seconds)


def test_keyword_rows_are_reproducible_and_readable() -> None:
    from hubmgr.testing import keyword_rows
    from hubmgr.testing.models import VOCAB_WORDS

    rows = keyword_rows(12, labels=("a", "b", "c"), seed=3)
    assert rows == keyword_rows(12, labels=("a", "b", "c"), seed=3)
    assert [r["label"] for r in rows[:3]] == ["a", "b", "c"]  # balanced, in turns
    assert all(w in VOCAB_WORDS for r in rows for w in r["text"].split())
    multi = keyword_rows(40, labels=("x", "y"), multi_label=True, seed=0)
    assert all(isinstance(r["label"], list) and 1 <= len(r["label"]) <= 2 for r in multi)
    with pytest.raises(ValueError):
        keyword_rows(4, labels=("only",))
