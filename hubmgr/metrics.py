"""Which way a metric is better, and which metrics lead a summary: the one home of both rules.

A task says the direction of its main metric (``Task.main_metric_for``) and of any other metric that is
not "greater is better" (``Task.metric_directions``; ``None`` there marks an *auxiliary* metric: reported,
never compared, never "best"); :meth:`hubmgr.task.Task.greater_is_better_for` combines them with the
convention below. A metric may also be a *table*: one number per label (:func:`split_tables`). Run records and evaluation reports keep the directions the task
gave, so the run list, ``hubmgr runs``, the TUI's best-value marking and ``hubmgr eval``'s "best" agree,
even after the plugin that trained an adapter is uninstalled.

Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

#: metric names (and name endings) that are lower-is-better unless a task says otherwise
LOWER_IS_BETTER_SUFFIXES = ("loss", "_stderr")

#: the Trainer's bookkeeping values: never worth a place in a one-line summary
BOOKKEEPING = frozenset(
    {
        "epoch",
        "step",
        "runtime",
        "samples_per_second",
        "steps_per_second",
        "total_flos",
        "grad_norm",
        "learning_rate",
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_loss",
    }
)


def conventional_direction(name: str) -> bool:
    """Whether greater is better for ``name`` when no task declared it: ``loss``, ``*_loss`` and
    ``*_stderr`` are lower-is-better; every other metric (accuracy, F1, ...) is greater-is-better."""
    return not _bare(name).endswith(LOWER_IS_BETTER_SUFFIXES)


def _declared(name: str, directions: Mapping[str, bool | None] | None) -> tuple[bool, bool | None]:
    """(declared, value) of ``name`` (with or without its ``eval_`` prefix) in ``directions``."""
    for key in (name, _bare(name)):
        if directions and key in directions:
            return True, directions[key]
    return False, None


def greater_is_better(name: str, directions: Mapping[str, bool | None] | None = None) -> bool:
    """The direction of ``name`` (with or without its ``eval_`` prefix) from ``directions`` (what a task
    declared, as run records and reports keep it), else :func:`conventional_direction` (also for an
    auxiliary metric, which has none: see :func:`is_auxiliary`)."""
    declared, value = _declared(name, directions)
    return bool(value) if declared and value is not None else conventional_direction(name)


def is_auxiliary(name: str, directions: Mapping[str, bool | None] | None = None) -> bool:
    """Whether ``directions`` declares ``name`` auxiliary (direction ``None``): a number reported beside
    the metrics (a count, a rate, a mean confidence) that no value of is better than another."""
    declared, value = _declared(name, directions)
    return declared and value is None


def best_value(values: Iterable[float], name: str, directions: Mapping[str, bool | None] | None = None) -> float | None:
    """The best of ``values`` for metric ``name`` (NaN ignored); None when there is none or the metric is
    auxiliary."""
    if is_auxiliary(name, directions):
        return None
    finite = [
        float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v))
    ]
    if not finite:
        return None
    return max(finite) if greater_is_better(name, directions) else min(finite)


def ordered(
    names: Iterable[str], main: str | None = None, directions: Mapping[str, bool | None] | None = None
) -> list[str]:
    """``names`` in display order: the main metric first, then the task's other metrics, then losses,
    then auxiliary metrics, then bookkeeping; alphabetical within each group."""

    def rank(name: str) -> tuple[int, str]:
        bare = _bare(name)
        if main and bare == _bare(main):
            return (0, bare)
        if bare in BOOKKEEPING or name in BOOKKEEPING or "runtime" in bare or "per_second" in bare:
            return (4, bare)
        if is_auxiliary(name, directions):
            return (3, bare)
        if not conventional_direction(bare):
            return (2, bare)
        return (1, bare)

    return sorted(dict.fromkeys(names), key=rank)


def headline(
    metrics: Mapping[str, Any] | None,
    main: str | None = None,
    limit: int = 3,
    directions: Mapping[str, bool | None] | None = None,
) -> list[tuple[str, float]]:
    """The metrics worth a one-line summary of a run, at most ``limit``: numbers only, evaluation metrics
    (without their ``eval_`` prefix) when there are any, the main metric first; losses and standard errors
    only when nothing else is there, and auxiliary metrics and bookkeeping (epoch, runtime...) never."""
    numeric = {
        k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    evals = {k[5:]: v for k, v in numeric.items() if k.startswith("eval_") and k[5:] not in BOOKKEEPING}
    pool = evals or {k: v for k, v in numeric.items() if k not in BOOKKEEPING and not k.startswith("train_")}
    pool = {k: v for k, v in pool.items() if not is_auxiliary(k, directions) or (main and k == _bare(main))}
    names = ordered(pool, main)
    leading = [n for n in names if conventional_direction(n) or (main and n == _bare(main))]
    if not leading:  # only losses (or only bookkeeping): the loss says the most
        leading = names or [k for k in ordered(numeric) if "loss" in k][:1]
        pool = pool or numeric
    return [(n, pool[n]) for n in leading[: max(0, limit)]]


def task_directions(task: Any, data: Any, names: Iterable[str], *, main: tuple[str, bool]) -> dict[str, bool | None]:
    """``{name: greater_is_better}`` for each metric name as ``task`` says it (``Task.greater_is_better_for``;
    ``None`` for an auxiliary metric); ``main`` is the task's ``(main metric, greater_is_better)`` on this
    data. A task without the method, or whose method fails, gets the convention."""
    fn = getattr(task, "greater_is_better_for", None)
    out: dict[str, bool | None] = {}
    for name in dict.fromkeys(names):
        if _bare(name) == main[0]:
            out[name] = bool(main[1])
            continue
        try:
            value = fn(name, data) if callable(fn) else greater_is_better(name)
            out[name] = None if value is None else bool(value)
        except Exception:  # noqa: BLE001 - a plugin bug: the convention
            out[name] = greater_is_better(name)
    return out


def split_tables(
    values: Mapping[str, Any] | None, label_names: Sequence[str] | None = None
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """What a task's ``compute_metrics`` returned, as ``(scalars, tables)``.

    A number (or a NumPy/torch scalar) is a scalar metric. A mapping ``{label: number}``, or a 1-D list or
    array of numbers (one per label, in the order of ``label_names`` when the lengths agree, else numbered
    from 0), is a table: ``{"f1_per_label": {"sports": 0.91, ...}}``. Anything else is dropped: metrics are
    numbers, and a task's other results belong in ``extra_eval``.
    """
    scalars: dict[str, float] = {}
    tables: dict[str, dict[str, float]] = {}
    for key, value in (values or {}).items():
        number = _number(value)
        if number is not None:
            scalars[str(key)] = number
            continue
        if isinstance(value, Mapping):
            row = {str(k): _number(v) for k, v in value.items()}
        else:
            items = value.tolist() if hasattr(value, "tolist") else value
            if not isinstance(items, (list, tuple)) or any(isinstance(v, (list, tuple)) for v in items):
                continue
            names = [str(n) for n in label_names] if label_names and len(label_names) == len(items) else None
            row = {(names[i] if names else str(i)): _number(v) for i, v in enumerate(items)}
        if row and all(v is not None for v in row.values()):
            tables[str(key)] = cast("dict[str, float]", row)
    return scalars, tables


def table_labels(tables: Iterable[Mapping[str, float]]) -> list[str]:
    """The labels of several per-label tables, each once, in the order they first appear: the rows of a
    table that sets them side by side (models in ``hubmgr eval``, metrics in ``runs show`` and the TUI)."""
    return list(dict.fromkeys(label for table in tables for label in table))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    shape = getattr(value, "shape", None)
    if shape is not None and tuple(shape) in ((), (1,)) and hasattr(value, "item"):
        try:
            return float(value.item())
        except (TypeError, ValueError):
            return None
    return None


def _bare(name: str) -> str:
    return name[5:] if name.startswith("eval_") else name
