"""The built-in tasks pad batches with _common.PadCollator: the same tensors as transformers' collators
(DataCollatorWithPadding, DataCollatorForTokenClassification), on either padding side."""

from __future__ import annotations

import pytest

from hubmgr.testing.models import tiny_tokenizer

TEXTS = ["a wonderful movie", "what a great story and more of it", "bad"]
PAIRS = ["x y", "z", "a b c d"]


def _tok(side: str):
    tok = tiny_tokenizer("bert")
    tok.padding_side = side
    return tok


def _assert_same(ref, got) -> None:
    import torch

    assert set(ref) == set(got)
    for key in ref:
        assert ref[key].dtype == got[key].dtype, key
        assert torch.equal(ref[key], got[key]), key


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pairs", [False, True])
def test_sequence_labels_pad_like_data_collator_with_padding(side: str, pairs: bool) -> None:
    from hubmgr_tasks._common import PadCollator
    from transformers import DataCollatorWithPadding

    tok = _tok(side)
    enc = tok(TEXTS, PAIRS, return_token_type_ids=True) if pairs else tok(TEXTS)
    feats = [{k: enc[k][i] for k in enc} | {"labels": i % 2} for i in range(len(TEXTS))]
    ref = DataCollatorWithPadding(tok)(feats)
    got = PadCollator.for_tokenizer(tok, DataCollatorWithPadding(tok))([f | {"length": 3} for f in feats])
    _assert_same(ref, got)


def test_multi_hot_rows_are_stacked_and_made_float_by_the_classification_collator() -> None:
    from hubmgr.plugins import get_task

    tok = _tok("right")
    enc = tok(TEXTS)
    rows = [[1, 0, 1], [0, 0, 1], [1, 1, 0]]
    feats = [{k: enc[k][i] for k in enc} | {"labels": rows[i]} for i in range(3)]
    task = get_task("text-classification")
    batch = task.collator(tok, task.make_options({}))(feats)
    assert batch["labels"].dtype.is_floating_point and batch["labels"].tolist() == rows
    assert batch["input_ids"].shape == (3, max(len(x) for x in enc["input_ids"]))


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_labels_pad_like_data_collator_for_token_classification(side: str) -> None:
    from hubmgr_tasks._common import PadCollator
    from transformers import DataCollatorForTokenClassification

    tok = _tok(side)
    enc = tok(TEXTS)
    feats = [{k: enc[k][i] for k in enc} | {"labels": [i] * len(enc["input_ids"][i])} for i in range(3)]
    ref = DataCollatorForTokenClassification(tok)(feats)
    got = PadCollator.for_tokenizer(tok, DataCollatorForTokenClassification(tok), label_pad=-100)(feats)
    _assert_same(ref, got)


def test_keys_it_does_not_know_go_to_the_transformers_collator() -> None:
    from hubmgr_tasks._common import PadCollator

    calls = []

    def inner(features):
        calls.append(features)
        return {"ok": True}

    tok = _tok("right")
    enc = tok(TEXTS)
    feats = [{k: enc[k][i] for k in enc} | {"pixel_values": [0.0]} for i in range(3)]
    assert PadCollator.for_tokenizer(tok, inner)(feats) == {"ok": True} and len(calls) == 1
