"""Typed training/evaluation events. Core code calls ``on_event(event)``; the CLI renders them (rich
progress, or one JSON object a line with ``--json``), the TUI posts them as messages, and the run
lifecycle hooks receive them too."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, ClassVar, Union, cast

_BY_KIND: dict[str, type["Event"]] = {}


@dataclass(frozen=True)
class Event:
    """The base of every event. ``kind`` (a class attribute) names it in JSON lines (``--json``, the
    run's event log) and in :func:`event_from_dict`; each subclass is registered under it."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _BY_KIND[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind}

    def history_point(self) -> tuple[str, int, dict[str, float]] | None:
        """``(split, step, values)`` for the run registry's metric history, or None when the event adds
        none. The registry records what the event stream says (:meth:`hubmgr.runs.store.RunStore.record_event`)."""
        return None


@dataclass(frozen=True)
class TrainStarted(Event):
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
    budget: str = "fixed"  # "auto" (the tool decides when to stop) | "fixed"
    main_metric: str | None = None  # the task's main metric on this data (leads the eval tables)
    kind: ClassVar[str] = "train_started"


@dataclass(frozen=True)
class StepLogged(Event):
    step: int
    total_steps: int
    epoch: float
    loss: float | None
    learning_rate: float | None
    samples_per_second: float | None
    eta_seconds: float | None
    grad_norm: float | None = None
    kind: ClassVar[str] = "step"

    def history_point(self) -> tuple[str, int, dict[str, float]] | None:
        if self.loss is None:  # a progress tick between two logging steps: nothing new to record
            return None
        point = {"loss": self.loss}
        if self.learning_rate is not None:
            point["learning_rate"] = self.learning_rate
        if self.grad_norm is not None:
            point["grad_norm"] = self.grad_norm
        point["epoch"] = float(self.epoch)
        return "train", int(self.step), point


@dataclass(frozen=True)
class EvalLogged(Event):
    step: int
    epoch: float
    metrics: dict[str, float] = field(default_factory=dict)
    kind: ClassVar[str] = "eval"

    def history_point(self) -> tuple[str, int, dict[str, float]] | None:
        return "eval", int(self.step), dict(self.metrics)


@dataclass(frozen=True)
class CheckpointSaved(Event):
    step: int
    path: str
    kind: ClassVar[str] = "checkpoint"


@dataclass(frozen=True)
class TrainFinished(Event):
    run_id: str
    status: str  # "completed" | "failed" | "cancelled"
    output_dir: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    main_metric: str | None = None  # the task's main metric, without ``eval_``
    kind: ClassVar[str] = "train_finished"


@dataclass(frozen=True)
class EvalProgress(Event):
    """Evaluation of one model (base or adapter) on a split."""

    name: str
    done: int
    total: int
    kind: ClassVar[str] = "eval_progress"


TrainEvent = Union[TrainStarted, StepLogged, EvalLogged, CheckpointSaved, TrainFinished, EvalProgress]
TrainCallback = Callable[[TrainEvent], None]


def event_to_dict(event: TrainEvent) -> dict[str, Any]:
    return event.to_dict()


def event_from_dict(data: dict[str, Any]) -> TrainEvent | None:
    """The event that :func:`event_to_dict` turned into ``data`` (fields a newer hubmgr added are dropped);
    None for an unknown kind."""
    cls = _BY_KIND.get(str(data.get("kind", "")))
    if cls is None:
        return None
    known = {f.name for f in fields(cls)}  # (``kind`` is a class attribute, not a field)
    try:
        return cast(TrainEvent, cls(**{k: v for k, v in data.items() if k in known}))
    except TypeError:
        return None
