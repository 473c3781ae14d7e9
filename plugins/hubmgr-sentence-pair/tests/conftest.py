"""Fixtures of the hubmgr-sentence-pair tests: an isolated hubmgr folder, a tiny model, generated pair data.

This package is tested like any third-party plugin: it relies on hubmgr.testing only, never on hubmgr's
own tests/conftest.py.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

POSITIVE = ["good", "great", "wonderful", "excellent", "nice", "fun", "loved", "best"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "hated", "worst", "dark", "cold"]
THINGS = ["movie", "film", "story", "music", "book", "song", "picture", "game"]


@pytest.fixture(autouse=True)
def _isolated_hubmgr(tmp_path, monkeypatch):
    """Runs and settings of a test stay in its tmp folder; nothing reaches the network."""
    monkeypatch.setenv("HUBMGR_HOME", str(tmp_path / "hubmgr-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random BERT with a word-level tokenizer, built offline by hubmgr.testing."""
    from hubmgr.testing import tiny_bert_dir

    return tiny_bert_dir(tmp_path_factory.mktemp("sp-tiny-bert"))


def _nli_rows(n: int, seed: int) -> list[dict[str, object]]:
    """Premise/hypothesis pairs: same opinion -> entailment, opposite -> contradiction, other thing -> neutral."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        thing = rng.choice(THINGS)
        good = rng.random() < 0.5
        word = rng.choice(POSITIVE if good else NEGATIVE)
        premise = f"the {thing} was very {word}"
        kind = ("entailment", "contradiction", "neutral")[i % 3]
        if kind == "entailment":
            hypothesis = f"the {thing} was {rng.choice(POSITIVE if good else NEGATIVE)}"
        elif kind == "contradiction":
            hypothesis = f"the {thing} was {rng.choice(NEGATIVE if good else POSITIVE)}"
        else:
            other = rng.choice([t for t in THINGS if t != thing])
            hypothesis = f"the {other} was {rng.choice(POSITIVE + NEGATIVE)}"
        rows.append({"premise": premise, "hypothesis": hypothesis, "label": kind})
    return rows


@pytest.fixture(scope="session")
def nli_data(tmp_path_factory) -> dict[str, Path]:
    """NLI-style JSONL files (``premise``, ``hypothesis``, ``label``): train (with two unlabeled ``-1`` rows) and eval."""
    folder = tmp_path_factory.mktemp("sp-nli")
    train = (
        _nli_rows(36, seed=1) + [{"premise": "the song was fun", "hypothesis": "the book was cold", "label": -1}] * 2
    )
    paths = {"train": folder / "train.jsonl", "eval": folder / "eval.jsonl"}
    for split, rows in (("train", train), ("eval", _nli_rows(9, seed=2))):
        paths[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


@pytest.fixture(scope="session")
def paraphrase_csv(tmp_path_factory) -> Path:
    """MRPC-style CSV (``sentence1``, ``sentence2``, integer ``label``: 1 paraphrase, 0 not)."""
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("sp-para") / "pairs.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sentence1", "sentence2", "label"])
        for i in range(24):
            thing, word = rng.choice(THINGS), rng.choice(POSITIVE)
            if i % 2:
                writer.writerow([f"the {thing} was {word}", f"that {thing} was really {word}", 1])
            else:
                writer.writerow([f"the {thing} was {word}", f"the {rng.choice(THINGS)} was {rng.choice(NEGATIVE)}", 0])
    return path
