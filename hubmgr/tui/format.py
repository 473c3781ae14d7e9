"""Small formatting helpers for the TUI (dates, metric numbers, table cells); sizes, counts and durations
are :mod:`hubmgr.format`'s, the same as the CLI's. Deterministic: dates are
shown as absolute values, never "3 minutes ago", so screenshots and snapshots stay stable."""

from __future__ import annotations

import datetime as _dt
import math
from typing import TYPE_CHECKING, Any

from hubmgr.format import duration, human_bytes, human_count, one_line

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

__all__ = [
    "column_numbers",
    "date",
    "date_time",
    "duration",
    "human_bytes",
    "human_count",
    "number",
    "one_line",
    "plain",
    "speed",
    "to_datetime",
]


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


def column_numbers(values: list[Any], decimals: int = 4) -> list[str]:
    """One table column of metric values, formatted so that, right-aligned, they line up on the decimal point:
    whole numbers when every number in it is whole (counts, support), else the same fixed ``decimals``.
    ``None`` is '-', non-numbers are shown as they are."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    whole = all(float(v).is_integer() for v in numbers)
    out = []
    for v in values:
        if v is None:
            out.append("-")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            out.append(str(v))
        elif not math.isfinite(v):
            out.append("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
        elif whole:
            out.append(f"{int(v)}")
        else:
            out.append(f"{v:.{decimals}f}")
    return out


def plain(value: Any, *, style: str = "", right: bool = False) -> "Text":
    """A table cell that is never parsed as markup (repo ids and paths may hold brackets)."""
    from rich.text import Text

    return Text("-" if value is None else str(value), style=style, justify="right" if right else "left")


def error_sentence(error: BaseException | None) -> str:
    """What the TUI shows for a failure: hubmgr's own sentence, or the unexpected error's type and text."""
    from hubmgr.errors import HubmgrError

    if isinstance(error, HubmgrError):
        return " ".join(str(error).split())
    return f"Unexpected {type(error).__name__}: {' '.join(str(error).split())}"
