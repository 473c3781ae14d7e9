"""Typed training/evaluation events. Core code calls ``on_event(event)``; the CLI renders them (rich
progress, or one JSON object a line with ``--json``), the TUI posts them as messages, and the run
lifecycle hooks receive them too."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Union


@dataclass(frozen=True)
class TrainStarted:
    run_id: str
    task: str
    model: str
    output_dir: str
    total_steps: int
    num_train_examples: int
    num_eval_examples: int
    trainable_params: int
    total_params: int
    device: str
    resumed_from_step: int = 0
    precision: str = "float32"
    budget: str = "fixed"           # "auto" (the tool decides when to stop) | "fixed"
    main_metric: str | None = None  # the task's main metric on this data (leads the eval tables)
    kind: str = "train_started"


@dataclass(frozen=True)
class StepLogged:
    step: int
    total_steps: int
    epoch: float
    loss: float | None
    learning_rate: float | None
    samples_per_second: float | None
    eta_seconds: float | None
    grad_norm: float | None = None
    kind: str = "step"


@dataclass(frozen=True)
class EvalLogged:
    step: int
    epoch: float
    metrics: dict[str, float] = field(default_factory=dict)
    kind: str = "eval"


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str
    kind: str = "checkpoint"


@dataclass(frozen=True)
class TrainFinished:
    run_id: str
    status: str                     # "completed" | "failed" | "cancelled"
    output_dir: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    main_metric: str | None = None  # the task's main metric, without ``eval_``
    kind: str = "train_finished"


@dataclass(frozen=True)
class EvalProgress:
    """Evaluation of one model (base or adapter) on a split."""

    name: str
    done: int
    total: int
    kind: str = "eval_progress"


TrainEvent = Union[TrainStarted, StepLogged, EvalLogged, CheckpointSaved, TrainFinished, EvalProgress]
TrainCallback = Callable[[TrainEvent], None]


def event_to_dict(event: TrainEvent) -> dict[str, Any]:
    return asdict(event)


_BY_KIND = {cls.__dataclass_fields__["kind"].default: cls
            for cls in (TrainStarted, StepLogged, EvalLogged, CheckpointSaved, TrainFinished, EvalProgress)}


def event_from_dict(data: dict[str, Any]) -> TrainEvent | None:
    """The event that :func:`event_to_dict` turned into ``data`` (fields a newer hubmgr added are dropped);
    None for an unknown kind."""
    cls = _BY_KIND.get(str(data.get("kind", "")))
    if cls is None:
        return None
    known = cls.__dataclass_fields__
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return None
