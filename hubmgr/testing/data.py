"""Data a tiny test model can learn: each label has its own keywords, so a "does it learn" test can ask
for a high score after a few dozen steps (see :func:`hubmgr.testing.learnable_bert_dir`).

The keywords and filler words are words of the tiny tokenizer's vocabulary (:data:`VOCAB_WORDS`), so
every word is one known token. Nothing here imports torch.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any, Sequence

from hubmgr.testing.models import VOCAB_WORDS

__all__ = ["keyword_rows", "write_rows", "LEARNING_SETTINGS"]

#: keywords per label
KEYWORDS_PER_LABEL = 4
#: what a test trains with, beside the model and data of this module: the loss falls within these steps
LEARNING_SETTINGS: dict[str, Any] = {"max_steps": 100, "batch_size": 8, "learning_rate": 5e-3, "warmup": 0.0}

_POOL = [w for w in VOCAB_WORDS if w.isalpha() and len(w) > 2]
random.Random(1234).shuffle(_POOL)


def _keywords(index: int) -> list[str]:
    start = index * KEYWORDS_PER_LABEL
    if start + KEYWORDS_PER_LABEL > len(_POOL) // 2:
        raise ValueError(f"At most {len(_POOL) // 2 // KEYWORDS_PER_LABEL} labels have their own keywords.")
    return _POOL[start : start + KEYWORDS_PER_LABEL]


def keyword_rows(
    n: int = 96,
    *,
    labels: Sequence[str] = ("sports", "politics", "music"),
    multi_label: bool = False,
    seed: int = 0,
    filler_words: int = 3,
) -> list[dict[str, Any]]:
    """``n`` rows ``{"text": ..., "label": ...}`` whose label can be read off the words.

    Args:
        n: rows.
        labels: label names; each gets its own keywords.
        multi_label: each row has one or two labels (``"label"`` is then a list), else exactly one
            (balanced: the labels take turns).
        seed: the same seed gives the same rows.
        filler_words: words shared by all labels added to each text.

    Returns:
        The rows, for :func:`write_rows` or a ``datasets.Dataset``.
    """
    if len(labels) < 2:
        raise ValueError("Give at least two labels.")
    rng = random.Random(seed)
    keywords = {label: _keywords(i) for i, label in enumerate(labels)}
    filler = _POOL[len(_POOL) // 2 :]
    rows = []
    for i in range(n):
        if multi_label:
            chosen = sorted(rng.sample(list(labels), rng.randint(1, 2)), key=list(labels).index)
        else:
            chosen = [labels[i % len(labels)]]
        words = [rng.choice(keywords[label]) for label in chosen for _ in range(2)]
        words += rng.sample(filler, filler_words)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": chosen if multi_label else chosen[0]})
    return rows


def write_rows(path: str | Path, rows: list[dict[str, Any]], *, label_separator: str = "|") -> Path:
    """Write rows as JSONL (``.jsonl``), a JSON list (``.json``) or CSV (anything else; list labels are
    joined with ``label_separator``). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["text", "label"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: label_separator.join(v) if isinstance(v, list) else v for k, v in row.items()})
    return path
