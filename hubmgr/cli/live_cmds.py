"""``hubmgr runs follow``, ``runs stop`` and ``runs resume``: runs as their own processes.

The work is done by :mod:`hubmgr.runs.live`; this module parses flags and prints, with the same live view
as ``hubmgr train`` (its renderer). Registered after :mod:`hubmgr.cli.run_cmds`, on its ``runs`` group.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from hubmgr.cli.output import emit_json_line
from hubmgr.cli.run_cmds import runs
from hubmgr.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.runs.store import RunStore


def _store() -> RunStore:
    from hubmgr.runs.store import RunStore

    return RunStore()


def follow_run(run_id: str, *, as_json: bool) -> int:
    """Show a run's events so far, then live until it ends; returns the exit code its end means.

    Ctrl-C detaches (the run goes on) and returns 0, even when this process was started with SIGINT
    ignored (as a parent that ignores it, such as a shell's background job or a test runner, leaves it).
    """
    from hubmgr.cli.train_cmds import _Renderer, _say, _summary
    from hubmgr.runs.live import follow, log_path
    from hubmgr.train.events import event_from_dict

    store = _store()
    record = store.get_run(run_id)
    renderer = _Renderer(as_json=as_json, quiet=False)
    finished: Any = None
    if not as_json:
        if record.status == "running":
            _say(f"Following run {record.id} (Ctrl-C detaches; the run goes on).")
        renderer.start()
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for data in follow(record.id, store=store):
            if as_json:
                emit_json_line(data)
                if data.get("kind") == "train_finished":
                    finished = event_from_dict(data)
                continue
            event = event_from_dict(data)
            if event is None:
                continue
            renderer(event)
            if getattr(event, "kind", "") == "train_finished":
                finished = event
    except KeyboardInterrupt:
        renderer.close()
        if not as_json:
            _say(f"Detached from run {record.id}; it goes on. `hubmgr runs follow {record.id}` attaches again.")
        return 0
    finally:
        renderer.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    record = store.get_run(record.id, exact=True)
    status = finished.status if finished is not None else record.status
    if as_json:
        if finished is None:
            emit_json_line({"kind": "run_ended", "run_id": record.id, "status": record.status, "error": record.error})
    elif status == "completed":
        _summary(finished if finished is not None else record)
    elif status == "cancelled":
        hint = _resume_hint(record)
        _say(f"Run {record.id} stopped at step {_step_of(finished, record)}.{hint}")
    elif status == "interrupted":
        hint = _resume_hint(record)
        _say(
            f"Run {record.id} was interrupted: its process ended without finishing.{hint}"
            f" Its output was logged to {log_path(record.id)}."
        )
    else:
        _say(
            f"Run {record.id} failed: {(finished.error if finished is not None else None) or record.error or 'see its log'}"
            f" (log: {log_path(record.id)})."
        )
    return {"completed": 0, "cancelled": 130, "interrupted": 1}.get(status, 1)


def _step_of(finished: Any, record: Any) -> int:
    metrics = getattr(finished, "metrics", None) or record.metrics or {}
    try:
        return int(metrics.get("step", 0))
    except (TypeError, ValueError):
        return 0


def _resume_hint(record: Any) -> str:
    from hubmgr.runs.live import resume_config_of

    try:
        resume_config_of(_as_stopped(record))
    except UsageError:
        return " It saved no checkpoint to resume from."
    return f" Resume it: hubmgr runs resume {record.id}"


def _as_stopped(record: Any) -> Any:
    import dataclasses

    return dataclasses.replace(record, status="cancelled") if record.status == "running" else record


@click.command("follow")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Stream the run's events as JSON lines (from the start).")
def runs_follow(run_id: str, as_json: bool) -> None:
    """Attach to a run: what happened so far, then live until it ends.

    Works for any run, started by `hubmgr train` (with or without --detach), the TUI or a script, on one
    process or several. Ctrl-C detaches and leaves the run going. The exit code is the run's: 0
    completed, 130 stopped, 1 failed or interrupted. RUN_ID may be a unique prefix.
    """
    sys.exit(follow_run(run_id, as_json=as_json))


@click.command("stop")
@click.argument("run_id")
@click.option("--no-wait", is_flag=True, help="Ask and return at once, without waiting for the run to stop.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds to wait for the run to save its checkpoint and stop.",
)
def runs_stop(run_id: str, no_wait: bool, timeout: float) -> None:
    """Ask a running run to save a checkpoint and stop (`hubmgr runs resume ID` continues it)."""
    from hubmgr.cli.train_cmds import _say
    from hubmgr.runs.live import request_stop

    store = _store()
    record = store.get_run(run_id)
    if record.status != "running":
        raise UsageError(f"Run {record.id} is not running (it is {record.status}).")
    deadline = time.monotonic() + 30.0
    while not request_stop(record):  # a run that is still loading has no folder yet
        if time.monotonic() > deadline:
            raise UsageError(f"Run {record.id} has no run folder to ask in yet ({record.output_dir}); try again.")
        time.sleep(0.5)
        record = store.get_run(record.id, exact=True)
        if record.status != "running":
            raise UsageError(f"Run {record.id} is not running (it is {record.status}).")
    if no_wait:
        _say(f"Asked run {record.id} to save a checkpoint and stop.")
        return
    _say(f"Stopping run {record.id}: it saves a checkpoint after the current step...")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        record = store.get_run(record.id, exact=True)
        if record.status != "running":
            break
        time.sleep(0.5)
    else:
        raise UsageError(f"Run {record.id} has not stopped after {timeout:g} s; it will when its current step ends.")
    if record.status == "cancelled":
        _say(f"Stopped run {record.id}.{_resume_hint(record)}")
    else:
        _say(f"Run {record.id} ended: {record.status}" + (f" ({record.error})" if record.error else "") + ".")


@click.command("resume")
@click.argument("run_id")
@click.option("--detach", is_flag=True, help="Resume in the background and return at once.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event on stdout, then the result.")
def runs_resume(run_id: str, detach: bool, as_json: bool) -> None:
    """Continue a stopped or interrupted run from its last checkpoint, from any folder.

    Everything it needs (task, model, data paths, options) is in the run itself.
    """
    from hubmgr.cli.train_cmds import run_foreground, start_detached
    from hubmgr.runs.live import resume_config_of

    record = _store().get_run(run_id)
    config = resume_config_of(record).validate()
    if detach:
        start_detached(config, as_json=as_json, resume=True)
        return
    run_foreground(config, as_json=as_json)


def register(cli: click.Group) -> None:
    """Add ``follow``, ``stop`` and ``resume`` to the ``runs`` group."""
    for command in (runs_follow, runs_stop, runs_resume):
        runs.add_command(command)
