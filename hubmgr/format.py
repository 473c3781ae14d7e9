"""One way to say a thing: sizes, counts, durations and one-line errors, for the CLI, the TUI and the
benchmarks alike.

Sizes are decimal (1 KB = 1000 bytes), as the ``hf`` CLI and the Hub's web pages show them, so the same
repo reads the same everywhere. Nothing here imports anything heavy.
"""

from __future__ import annotations

import math
from typing import Any

#: the longest error sentence :func:`first_line` keeps
FIRST_LINE_LIMIT = 200


def human_bytes(n: int | float | None) -> str:
    """Decimal units: 1536 -> '1.5 KB', 93_200 -> '93.2 KB', 512 -> '512 B'; None -> '-'."""
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def human_count(n: int | float | None) -> str:
    """1_234_567 -> '1.2M', 22_700_000 -> '22.7M', 950 -> '950'; None -> '-'."""
    if n is None:
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


def duration(seconds: float | None) -> str:
    """75 -> '1:15', 3700 -> '1:01:40', 5 -> '0:05'; None, NaN and infinity -> '-'."""
    if seconds is None or (isinstance(seconds, float) and (math.isnan(seconds) or math.isinf(seconds))):
        return "-"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 evaluation"``, ``"2 evaluations"`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def one_line(text: Any, limit: int = 200) -> str:
    """``text`` on one line (runs of whitespace become one space), cut to ``limit`` with '…'."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message as one sentence (ending with a period, at most
    ``FIRST_LINE_LIMIT`` characters); the exception's type when the message is empty."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    if len(text) > FIRST_LINE_LIMIT:
        text = text[: FIRST_LINE_LIMIT - 3] + "..."
    return text if text.endswith(".") else text + "."


def error_summary(exc: BaseException) -> str:
    """``'ValueError: the message on one line'`` (the type, for errors not raised by hubmgr)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
