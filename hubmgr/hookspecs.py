"""Hook specifications: everything a hubmgr plugin can implement.

A plugin is any module or object with functions decorated by :data:`hookimpl`, registered through the
``hubmgr`` entry point group (the built-in tasks use exactly the same route)::

    from hubmgr.hookspecs import hookimpl

    @hookimpl
    def register_tasks(register):
        register(MyTask)

Every hook is documented in docs/plugins.md. Nothing here imports a heavy library or a UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from hubmgr.task import Task
    from hubmgr.train.events import TrainEvent

PROJECT = "hubmgr"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class RunInfo:
    """What the run lifecycle hooks learn about a training run.

    Attributes:
        run_id: the run's id in the run registry.
        task: the task name (``text-classification``...).
        model: the base model (Hub id or local path).
        output_dir: where the adapter and the run files are written.
        config: the run's TrainConfig as a plain dict (no token in it).
    """

    run_id: str
    task: str
    model: str
    output_dir: str
    config: dict[str, Any] = field(default_factory=dict)


@hookspec
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    """Register task classes by calling ``register(TaskSubclass)`` once for each."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``hubmgr`` command line group ``cli``."""


@hookspec
def on_run_start(run: RunInfo) -> None:
    """Called once when a training run starts (on the main process only)."""


@hookspec
def on_run_log(run: RunInfo, event: TrainEvent) -> None:
    """Called for each progress event of a run (steps, evaluations, checkpoints)."""


@hookspec
def on_run_end(run: RunInfo, result: Any) -> None:
    """Called once when a run ends, with its TrainResult (completed, failed or cancelled)."""
