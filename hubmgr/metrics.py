"""Which way a metric is better, and which metrics lead a summary: the one home of both rules.

A task says the direction of its main metric (``Task.main_metric_for``) and of any other metric that is
not "greater is better" (``Task.metric_directions``); :meth:`hubmgr.task.Task.greater_is_better_for`
combines them with the convention below. Run records and evaluation reports keep the directions the task
gave, so the run list, ``hubmgr runs``, the TUI's best-value marking and ``hubmgr eval``'s "best" agree,
even after the plugin that trained an adapter is uninstalled.

Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

#: metric names (and name endings) that are lower-is-better unless a task says otherwise
LOWER_IS_BETTER_SUFFIXES = ("loss", "_stderr")

#: the Trainer's bookkeeping values: never worth a place in a one-line summary
BOOKKEEPING = frozenset({
    "epoch", "step", "runtime", "samples_per_second", "steps_per_second", "total_flos", "grad_norm",
    "learning_rate", "train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss",
})


def conventional_direction(name: str) -> bool:
    """Whether greater is better for ``name`` when no task declared it: ``loss``, ``*_loss`` and
    ``*_stderr`` are lower-is-better; every other metric (accuracy, F1, ...) is greater-is-better."""
    return not _bare(name).endswith(LOWER_IS_BETTER_SUFFIXES)


def greater_is_better(name: str, directions: Mapping[str, bool] | None = None) -> bool:
    """The direction of ``name`` (with or without its ``eval_`` prefix) from ``directions`` (what a task
    declared, as run records and reports keep it), else :func:`conventional_direction`."""
    directions = directions or {}
    for key in (name, _bare(name)):
        if key in directions:
            return bool(directions[key])
    return conventional_direction(name)


def best_value(values: Iterable[float], name: str, directions: Mapping[str, bool] | None = None) -> float | None:
    """The best of ``values`` for metric ``name`` (NaN ignored); None when there is none."""
    finite = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
              and not math.isnan(float(v))]
    if not finite:
        return None
    return max(finite) if greater_is_better(name, directions) else min(finite)


def ordered(names: Iterable[str], main: str | None = None) -> list[str]:
    """``names`` in display order: the main metric first, then the task's other metrics, then losses,
    then bookkeeping; alphabetical within each group."""
    def rank(name: str) -> tuple[int, str]:
        bare = _bare(name)
        if main and bare == _bare(main):
            return (0, bare)
        if bare in BOOKKEEPING or name in BOOKKEEPING or "runtime" in bare or "per_second" in bare:
            return (3, bare)
        if not conventional_direction(bare):
            return (2, bare)
        return (1, bare)

    return sorted(dict.fromkeys(names), key=rank)


def headline(metrics: Mapping[str, Any] | None, main: str | None = None, limit: int = 3) -> list[tuple[str, float]]:
    """The metrics worth a one-line summary of a run, at most ``limit``: numbers only, evaluation metrics
    (without their ``eval_`` prefix) when there are any, the main metric first; losses and standard errors
    only when nothing else is there, and bookkeeping (epoch, runtime...) never."""
    numeric = {k: float(v) for k, v in (metrics or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    evals = {k[5:]: v for k, v in numeric.items() if k.startswith("eval_") and k[5:] not in BOOKKEEPING}
    pool = evals or {k: v for k, v in numeric.items() if k not in BOOKKEEPING and not k.startswith("train_")}
    names = ordered(pool, main)
    leading = [n for n in names if conventional_direction(n) or (main and n == _bare(main))]
    if not leading:  # only losses (or only bookkeeping): the loss says the most
        leading = names or [k for k in ordered(numeric) if "loss" in k][:1]
        pool = pool or numeric
    return [(n, pool[n]) for n in leading[: max(0, limit)]]


def task_directions(task: Any, data: Any, names: Iterable[str], *, main: tuple[str, bool]) -> dict[str, bool]:
    """``{name: greater_is_better}`` for each metric name as ``task`` says it (``Task.greater_is_better_for``);
    ``main`` is the task's ``(main metric, greater_is_better)`` on this data. A task without the method, or
    whose method fails, gets the convention."""
    fn = getattr(task, "greater_is_better_for", None)
    out: dict[str, bool] = {}
    for name in dict.fromkeys(names):
        if _bare(name) == main[0]:
            out[name] = bool(main[1])
            continue
        try:
            out[name] = bool(fn(name, data)) if callable(fn) else greater_is_better(name)
        except Exception:  # noqa: BLE001 - a plugin bug: the convention
            out[name] = greater_is_better(name)
    return out


def _bare(name: str) -> str:
    return name[5:] if name.startswith("eval_") else name
