"""Small formatting helpers for the TUI (sizes, counts, dates, durations). Deterministic: dates are
shown as absolute values, never "3 minutes ago", so screenshots and snapshots stay stable."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any


def human_bytes(n: int | float | None) -> str:
    """1536 -> '1.5 KB'. None -> '-'."""
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def human_count(n: int | float | None) -> str:
    """1234567 -> '1.2M'."""
    if n is None:
        return "-"
    n = float(n)
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


def to_datetime(value: Any) -> _dt.datetime | None:
    """A datetime, an ISO string or epoch seconds to a datetime (None when unknown)."""
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, (int, float)):
        try:
            return _dt.datetime.fromtimestamp(float(value))
        except (OverflowError, OSError, ValueError):
            return None
    try:
        return _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def date(value: Any) -> str:
    d = to_datetime(value)
    return d.strftime("%Y-%m-%d") if d else "-"


def date_time(value: Any) -> str:
    d = to_datetime(value)
    if d is None:
        return "-"
    if d.tzinfo is not None:
        d = d.astimezone()
    return d.strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """ETA-style duration: 75 -> '1:15', 3700 -> '1:01:40'; None -> '-'."""
    if seconds is None or (isinstance(seconds, float) and (math.isnan(seconds) or math.isinf(seconds))):
        return "-"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def speed(bytes_per_s: float | None) -> str:
    if not bytes_per_s:
        return "-"
    return f"{human_bytes(bytes_per_s)}/s"


def number(value: Any, digits: int = 4) -> str:
    """Metrics: floats with a few significant digits, the rest as str."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def one_line(text: Any, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def plain(value: Any, *, style: str = "", right: bool = False) -> "Text":
    """A table cell that is never parsed as markup (repo ids and paths may hold brackets)."""
    from rich.text import Text

    return Text("-" if value is None else str(value), style=style, justify="right" if right else "left")
