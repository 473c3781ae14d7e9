"""Shared CLI output: rich on a terminal, plain lines when piped, JSON with ``--json``.

Every command module uses these helpers so that the look and the error handling stay uniform.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Sequence, cast

import click

from rich.console import Console

from hubmgr.format import human_bytes as human_bytes  # the commands format sizes through here
from hubmgr.format import human_count as human_count

_console: Console | None = None
_err_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        _console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    return _console


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        _err_console = Console(stderr=True, highlight=False)
    return _err_console


def is_tty() -> bool:
    return sys.stdout.isatty()


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, datetimes and enums to plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False))


def emit_json_line(obj: Any) -> None:
    """Print one JSON object on one line (streams of events)."""
    click.echo(json.dumps(to_jsonable(obj), ensure_ascii=False))
    sys.stdout.flush()


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    justify: dict[str, str] | None = None,
) -> None:
    """A rich table on a terminal; tab-separated plain lines (with a header) when piped."""
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    if is_tty():
        from rich.console import JustifyMethod
        from rich.table import Table

        table = Table(title=title, header_style="bold")
        for col in columns:
            table.add_column(col, justify=cast(JustifyMethod, (justify or {}).get(col, "left")), overflow="fold")
        for row in rows:
            table.add_row(*row)
        console().print(table)
    else:
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(row))


def info(message: str) -> None:
    """A human note on stderr (keeps stdout clean for data); never wrapped when stderr is not a terminal,
    so that a log holds one line per note whatever COLUMNS says."""
    console = err_console()
    console.print(message, soft_wrap=not console.is_terminal)
