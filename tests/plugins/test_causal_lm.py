"""causal-lm with the tiny GPT-2 and Llama: formats, answer-only loss, packing, perplexity, generations."""

from __future__ import annotations

import math

import pytest

from hubmgr.errors import DataError, ModelError
from hubmgr.plugins import get_task
from hubmgr.task import DataSource

INSTRUCTIONS = [{"prompt": f"what is {n} and {n}", "response": f"it is {n + n}"} for n in range(1, 9)]
CHATS = [
    {
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": f"hello {n}"},
            {"role": "assistant", "content": f"hi {n}"},
            {"role": "user", "content": "thanks"},
            {"role": "assistant", "content": "yes"},
        ]
    }
    for n in range(1, 7)
]


@pytest.fixture
def task():
    return get_task("causal-lm")


@pytest.fixture(params=["gpt2", "llama"])
def model_dir(request):
    return request.getfixturevalue(f"tiny_{request.param}")


def _load(task, source, **options):
    opts = task.make_options(options)
    return opts, task.load_data(source, opts)


def _trained_text(tokenizer, row):
    return tokenizer.decode([i for i, lab in zip(row["input_ids"], row["labels"]) if lab != -100])


def test_format_detection(task, write_jsonl, tmp_path):
    assert _load(task, DataSource(train=str(write_jsonl("i.jsonl", INSTRUCTIONS))))[1].info["format"] == "instruction"
    assert _load(task, DataSource(train=str(write_jsonl("c.jsonl", CHATS))))[1].info["format"] == "chat"
    (tmp_path / "corpus.txt").write_text("the sun is hot\n" * 5)
    assert _load(task, DataSource(train=str(tmp_path / "corpus.txt")))[1].info["format"] == "text"
    with pytest.raises(DataError, match=r"Cannot tell the format of q.jsonl: .*columns are: question, answer"):
        _load(task, DataSource(train=str(write_jsonl("q.jsonl", [{"question": "a", "answer": "b"}] * 3))))
    with pytest.raises(DataError, match=r"Column 'response' \(response_column\) is not in q.jsonl"):
        _load(task, DataSource(train=str(tmp_path / "q.jsonl")), format="instruction", prompt_column="question")


def test_instruction_loss_on_response_only(task, write_jsonl, model_dir):
    opts, data = _load(task, DataSource(train=str(write_jsonl("i.jsonl", INSTRUCTIONS)), eval_fraction=0.25))
    model, tokenizer = task.load_model(str(model_dir), opts, data, {})
    defaults = task.lora_defaults(model, opts)
    assert defaults.task_type == "CAUSAL_LM"
    assert defaults.target_modules == (["c_attn"] if model.config.model_type == "gpt2" else ["q_proj", "v_proj"])

    features = task.preprocess(data.train, tokenizer, opts, 64, data)
    row = features[0]
    answer = next(r["response"] for r in INSTRUCTIONS if r["prompt"] in tokenizer.decode(row["input_ids"]))
    assert _trained_text(tokenizer, row).replace(tokenizer.eos_token, "").strip() == answer
    assert row["labels"][0] == -100 and row["labels"][-1] == tokenizer.eos_token_id  # learns to stop
    assert row["length"] == len(row["input_ids"])

    batch = task.collator(tokenizer, opts)([features[i] for i in range(3)])
    out = model(**batch)
    reduced = task.reduce_logits(out.logits, batch["labels"])
    assert tuple(reduced.shape) == (3, 2)  # never the vocab-sized logits
    metrics = task.compute_metrics(reduced.numpy(), batch["labels"].numpy(), data)
    assert metrics["perplexity"] == pytest.approx(math.exp(out.loss.item()), rel=1e-4)


def test_chat_template_masks_all_but_assistant_turns(task, write_jsonl, tiny_gpt2):
    opts, data = _load(task, DataSource(train=str(write_jsonl("c.jsonl", CHATS)), eval_fraction=0))
    model, tokenizer = task.load_model(str(tiny_gpt2), opts, data, {})
    assert tokenizer.chat_template
    row = task.preprocess(data.train, tokenizer, opts, 128, data)[0]
    trained = _trained_text(tokenizer, row)
    assert "hi 1" in trained and "yes" in trained
    assert "hello" not in trained and "nice" not in trained and "thanks" not in trained


def test_chat_without_template_uses_plain_layout(task, write_jsonl, tiny_llama):
    opts, data = _load(task, DataSource(train=str(write_jsonl("c.jsonl", CHATS)), eval_fraction=0))
    model, tokenizer = task.load_model(str(tiny_llama), opts, data, {})
    tokenizer.chat_template = None
    row = task.preprocess(data.train, tokenizer, opts, 128, data)[0]
    assert row["input_ids"][0] == tokenizer.bos_token_id
    trained = _trained_text(tokenizer, row).replace(tokenizer.eos_token, " ").split()
    assert trained == ["hi", "1", "yes"]
    from hubmgr_tasks.causal_lm import prompt_ids

    prompt = tokenizer.decode(prompt_ids(tokenizer, [{"role": "user", "content": "hello"}]))
    assert "hello" in prompt


def test_truncation_drops_rows_without_answer(task, write_jsonl, tiny_gpt2):
    rows = [{"prompt": "the " * 40, "response": "yes"}, {"prompt": "hi", "response": "yes"}]
    opts, data = _load(task, DataSource(train=str(write_jsonl("long.jsonl", rows)), eval_fraction=0))
    model, tokenizer = task.load_model(str(tiny_gpt2), opts, data, {})
    assert len(task.preprocess(data.train, tokenizer, opts, 16, data)) == 1
    with pytest.raises(DataError, match="loses its answer"):
        task.preprocess(data.train.select([0]), tokenizer, opts, 16, data)


def test_text_is_packed_into_blocks(task, tmp_path, tiny_gpt2):
    (tmp_path / "corpus.txt").write_text("the sun is hot and the moon is cold\n" * 10)
    opts, data = _load(task, DataSource(train=str(tmp_path / "corpus.txt"), eval_fraction=0))
    model, tokenizer = task.load_model(str(tiny_gpt2), opts, data, {})
    features = task.preprocess(data.train, tokenizer, opts, 16, data)
    assert len(features) == math.ceil(90 / 16)  # 9 words a line, 10 lines
    assert all(r["labels"] == r["input_ids"] for r in features)
    assert features["length"][:-1] == [16] * (len(features) - 1)
    batch = task.collator(tokenizer, opts)([features[0], features[len(features) - 1]])
    short = features["length"][-1]
    assert batch["attention_mask"][1].tolist() == [1] * short + [0] * (16 - short)
    assert batch["labels"][1, short:].eq(-100).all()
    assert batch["input_ids"][1, short:].eq(tokenizer.pad_token_id).all()


def test_running_text_holds_out_its_last_stretch(task, tmp_path, write_jsonl):
    """Plain text is evaluated on a held-out stretch at its end, not on random lines of the passages it trains
    on (those kept improving while the model overfit them: Tiny Shakespeare's held-out perplexity got worse)."""
    lines = [f"line {i} of the play" for i in range(100)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    _, data = _load(task, DataSource(train=str(tmp_path / "corpus.txt"), eval_fraction=0.1))
    assert data.train["text"] == lines[:90] and data.eval["text"] == lines[90:]
    # instruction rows are independent examples: a seeded random sample, as before
    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(100)]
    _, data = _load(task, DataSource(train=str(write_jsonl("sft.jsonl", rows)), eval_fraction=0.1))
    assert len(data.eval) == 10 and data.eval["prompt"] != [f"q{i}" for i in range(90, 100)]


def test_extra_eval_and_predict(task, write_jsonl, tiny_llama):
    opts, data = _load(
        task,
        DataSource(train=str(write_jsonl("i.jsonl", INSTRUCTIONS)), eval_fraction=0.25),
        num_samples=2,
        max_new_tokens=4,
    )
    model, tokenizer = task.load_model(str(tiny_llama), opts, data, {})
    model.train()
    extra = task.extra_eval(model, tokenizer, opts, data)
    assert model.training  # put back as it was
    assert len(extra["samples"]) == 2
    sample = extra["samples"][0]
    assert set(sample) == {"prompt", "reference", "generated"} and sample["prompt"].startswith("what is")
    assert isinstance(sample["generated"], str)
    outs = task.predict(model, tokenizer, ["what is 2 and 2", [{"role": "user", "content": "hello"}]], opts, data)
    assert len(outs) == 2 and all(isinstance(o, str) for o in outs)


def test_perplexity_sums_over_batches(task):
    import numpy as np

    rows = np.array([[2.0, 2.0], [6.0, 2.0]])  # (nll sum, tokens) per example
    metrics = task.compute_metrics(rows, None, None)
    assert metrics["perplexity"] == pytest.approx(math.exp(2.0))
    # per-example losses 1 and 3 around the mean 2: standard error of the mean loss 1.0, carried to perplexity
    assert metrics["perplexity_stderr"] == pytest.approx(math.exp(2.0) * 1.0)
    assert math.isnan(task.compute_metrics(np.zeros((2, 2)), None, None)["perplexity"])


def test_bad_chat_rows(task, write_jsonl):
    path = write_jsonl("c.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}] * 2)
    with pytest.raises(DataError, match="Row 1 of c.jsonl has no assistant message"):
        _load(task, DataSource(train=str(path)))
    path = write_jsonl("d.jsonl", [{"messages": "not a list"}] * 2)
    with pytest.raises(DataError, match="messages must be a non-empty list"):
        _load(task, DataSource(train=str(path)))


def test_unknown_format(task, write_jsonl):
    with pytest.raises(DataError, match="Unknown causal-lm format 'poetry'"):
        _load(task, DataSource(train=str(write_jsonl("i.jsonl", INSTRUCTIONS))), format="poetry")


def test_architecture_that_cannot_generate(task, write_jsonl, tiny_vit):
    opts, data = _load(task, DataSource(train=str(write_jsonl("i.jsonl", INSTRUCTIONS))))
    with pytest.raises(ModelError, match="cannot be used for causal language modelling"):
        task.load_model(str(tiny_vit), opts, data, {})
