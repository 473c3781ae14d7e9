"""Runs as their own processes: the event log, following a run, asking it to stop, starting one detached.

A training run appends every event it emits (:mod:`hubmgr.train.events`, one JSON object a line) to
``events.jsonl`` in its run folder: ``OUT.partial`` while it trains, ``OUT`` once complete (the file is
hard-linked into the finished folder before the rename, so a reader that opened it keeps reading the same
file). Any process can follow a run from the registry's record alone: :func:`follow` yields what happened
so far, then what happens, until the run finishes or its process is gone.

Stopping goes the same way, through the file system rather than a signal, so it works for a run started by
any process, on any rank of a distributed run (all ranks agree on it each step): :func:`request_stop`
writes ``stop_requested`` in the run folder; the training loop sees it, saves a checkpoint and stops, and
the run can be resumed (``hubmgr runs resume ID``) from any folder, because everything it needs (task, data
paths made absolute, options) is in the run's saved config.

A detached run (:func:`spawn_detached`) is a ``hubmgr train`` child process in a new session, with its
config in a TOML file and its stdout/stderr in a log, both under ``HUBMGR_HOME/launch``.

Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.config import Settings
    from hubmgr.runs.store import RunRecord, RunStore
    from hubmgr.train.config import TrainConfig

EVENTS_FILE = "events.jsonl"
STOP_FILE = "stop_requested"
#: statuses after which a run writes nothing more
FINAL_STATUSES = ("completed", "failed", "cancelled", "interrupted")


# --- where things are -------------------------------------------------------------------------------
def partial_of(out: str | os.PathLike[str]) -> Path:
    from hubmgr.train._outputs import partial_dir

    return partial_dir(Path(out))


def run_folder(output_dir: str | os.PathLike[str] | None) -> Path | None:
    """The folder a run lives in now: ``OUT.partial`` while unfinished, else ``OUT`` (None if neither)."""
    if not output_dir:
        return None
    out = Path(output_dir)
    partial = partial_of(out)
    if partial.is_dir():
        return partial
    if out.is_dir():
        return out
    return None


def events_path(output_dir: str | os.PathLike[str] | None) -> Path | None:
    """The run's event log, where it is now (None when there is none)."""
    if not output_dir:
        return None
    for folder in (partial_of(output_dir), Path(output_dir)):
        path = folder / EVENTS_FILE
        if path.is_file():
            return path
    return None


def launch_dir(settings: Settings | None = None) -> Path:
    """Where detached runs keep their launch config and their log: ``HUBMGR_HOME/launch``."""
    if settings is None:
        from hubmgr.config import get_settings

        settings = get_settings()
    return Path(settings.data_dir) / "launch"


def log_path(run_id: str, settings: Settings | None = None) -> Path:
    """The stdout/stderr log of a detached run."""
    return launch_dir(settings) / f"{run_id}.log"


# --- writing the event log ----------------------------------------------------------------------------
class EventLog:
    """Appends events to ``folder/events.jsonl``, one flushed JSON line each (an append-only log).

    A resumed run appends to the log it left, so the run keeps one history.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / EVENTS_FILE
        self._fh: TextIO | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def write(self, event: Any) -> None:
        from hubmgr.train._outputs import jsonable
        from hubmgr.train.events import event_to_dict

        if self._fh is None:
            return
        data = event if isinstance(event, dict) else event_to_dict(event)
        data = {**jsonable(data), "time": time.time()}
        try:
            self._fh.write(json.dumps(data, ensure_ascii=False) + "\n")
            self._fh.flush()
        except (OSError, ValueError):  # a full disk must not end the run; the registry still has it
            pass

    def link_into(self, folder: Path) -> None:
        """Give the log a second name in ``folder`` (the finished run folder), same file."""
        target = Path(folder) / EVENTS_FILE
        try:
            os.link(self.path, target)
        except OSError:
            import shutil

            try:
                shutil.copyfile(self.path, target)
            except OSError:
                pass
            else:  # a copy, not a link: the rest of the events go to the copy
                self.close()
                self._fh = open(target, "a", encoding="utf-8")  # noqa: SIM115
                self.path = target

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete event in a log (a line cut short by a kill is skipped)."""
    out: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.endswith("\n"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
    except OSError:
        return []
    return out


# --- following --------------------------------------------------------------------------------------
def follow(
    run_id: str, *, store: RunStore | None = None, poll: float = 0.2, should_stop: Callable[[], bool] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield a run's events as dicts: all of them so far, then new ones as they are written.

    Ends at a ``train_finished`` event that is the last thing in the log (a resumed run's log holds the
    end of each attempt; the replay goes on through them), or when the run's process is gone (status no
    longer ``running``) and the log holds nothing more. Waits for the log to appear while the run starts.

    Args:
        run_id: a run id (or a unique prefix).
        store: a :class:`hubmgr.runs.store.RunStore` (default: the user's).
        poll: seconds between two looks at the log while nothing new comes.
        should_stop: called while waiting; True ends the iteration (a UI detaching).

    Raises:
        RunNotFoundError: no such run.
    """
    if store is None:
        from hubmgr.runs.store import RunStore

        store = RunStore()
    record = store.get_run(run_id)
    run_id = record.id
    fh = None
    buffer = ""
    ended = False
    last_status_check = 0.0
    try:
        while True:
            if fh is None:
                path = events_path(record.output_dir)
                if path is not None:
                    fh = open(path, encoding="utf-8")  # noqa: SIM115 - same inode across the final rename
            if fh is not None:
                chunk = fh.read()
                if chunk:
                    buffer += chunk
                    *lines, buffer = buffer.split("\n")
                    for line in lines:
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue
                        yield event
                        ended = event.get("kind") == "train_finished"
                    continue
                if ended:
                    return
            if should_stop is not None and should_stop():
                return
            now = time.monotonic()
            if now - last_status_check >= max(poll, 0.5):
                last_status_check = now
                record = store.get_run(run_id, exact=True)
                if record.status != "running":
                    # one last read: the process may have written its end just before it exited
                    if fh is None:
                        path = events_path(record.output_dir)
                        fh = open(path, encoding="utf-8") if path is not None else None  # noqa: SIM115
                    rest = buffer + (fh.read() if fh is not None else "")
                    for line in rest.split("\n"):
                        if line.strip():
                            try:
                                yield json.loads(line)
                            except ValueError:
                                continue
                    return
            time.sleep(poll)
    finally:
        if fh is not None:
            fh.close()


# --- stopping ---------------------------------------------------------------------------------------
def stop_file(output_dir: str | os.PathLike[str]) -> Path:
    return partial_of(output_dir) / STOP_FILE


def request_stop(record: RunRecord) -> bool:
    """Ask a running run to save a checkpoint and stop. False when it has no run folder to ask in yet."""
    if not record.output_dir:
        return False
    partial = partial_of(record.output_dir)
    if not partial.is_dir():
        return False
    try:
        (partial / STOP_FILE).write_text(f"{time.time()}\n", encoding="utf-8")
    except OSError:
        return False
    return True


def clear_stop(partial: Path) -> None:
    try:
        (Path(partial) / STOP_FILE).unlink()
    except OSError:
        pass


class StopWatcher:
    """Whether ``stop_requested`` exists in a run folder, looked at most every ``interval`` seconds."""

    def __init__(self, partial: Path, interval: float = 0.5) -> None:
        self.path = Path(partial) / STOP_FILE
        self.interval = interval
        self._next = 0.0
        self._seen = False

    def __call__(self) -> bool:
        if self._seen:
            return True
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self._seen = self.path.exists()
        return self._seen


# --- detaching --------------------------------------------------------------------------------------
def spawn_detached(
    args: list[str], *, run_id: str, settings: Settings | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``hubmgr ARGS`` as a process of its own session, its output in :func:`log_path`.

    It outlives the process that started it (a terminal closing, a TUI quitting).
    """
    log = log_path(run_id, settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ if env is None else env)
    child_env.pop("HUBMGR_DEBUG_DETACH", None)
    with open(log, "ab") as out:
        kwargs: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "stdout": out,
            "stderr": subprocess.STDOUT,
            "env": child_env,
            "close_fds": True,
        }
        if os.name == "posix":
            kwargs["start_new_session"] = True
        else:  # pragma: no cover - Windows
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(
                subprocess, "DETACHED_PROCESS", 0
            )
        return subprocess.Popen([sys.executable, "-m", "hubmgr", *args], **kwargs)


def launch_train(
    config: TrainConfig, *, resume: bool = False, settings: Settings | None = None, store: RunStore | None = None
) -> tuple[str, int, Path]:
    """Start a training run (or resume one) in the background and record it in the registry at once.

    Args:
        config: a validated :class:`hubmgr.train.config.TrainConfig`; for a resume, the run's saved config
            with ``output_dir`` set.
        resume: continue the unfinished run in ``config.output_dir``.

    Returns:
        ``(run_id, pid, output_dir)``.

    Raises:
        UsageError: the output folder is taken (new run) or holds nothing to resume.
    """
    import dataclasses

    from hubmgr.config import get_settings
    from hubmgr.runs.store import RunStore, new_run_id
    from hubmgr.train import _outputs as outputs

    settings = settings or get_settings()
    store = store or RunStore(settings.runs_db)
    config = config.with_absolute_paths()
    if resume:
        assert config.output_dir is not None  # a resume's config names its run folder (see resume_config_of)
        out = Path(config.output_dir).expanduser().resolve()
        outputs.check_output(out, resume=True)
        meta = outputs.read_run_file(outputs.partial_dir(out)) or {}
        run_id = meta.get("run_id") or new_run_id()
        args = ["train", "--resume", "--output", str(out), "--run-id", run_id]
    else:
        run_id = new_run_id()
        out = (
            Path(config.output_dir).expanduser().resolve()
            if config.output_dir
            else (Path(settings.runs_dir) / run_id).resolve()
        )
        outputs.check_output(out, resume=False)
        config = dataclasses.replace(config, output_dir=str(out))
        launch = launch_dir(settings) / f"{run_id}.toml"
        launch.parent.mkdir(parents=True, exist_ok=True)
        config.to_toml(launch)
        args = ["train", "--config", str(launch), "--run-id", run_id]
    proc = spawn_detached(args, run_id=run_id, settings=settings)
    store.create_run(
        run_id=run_id,
        task=config.task,
        model=config.model,
        revision=None,
        config=config.to_dict(),
        output_dir=str(out),
        pid=proc.pid,
    )
    return run_id, proc.pid, out


def resume_config_of(record: RunRecord) -> TrainConfig:
    """The config that resumes ``record``: the one saved in its ``.partial`` folder, else the registry's.

    Raises:
        UsageError: the run is finished or has no checkpoint to resume from.
    """
    from hubmgr.errors import UsageError
    from hubmgr.train import _outputs as outputs
    from hubmgr.train.config import TrainConfig

    if record.status == "completed":
        raise UsageError(f"Run {record.id} is complete; there is nothing to resume.")
    if record.status == "running":
        raise UsageError(f"Run {record.id} is still running (follow it with `hubmgr runs follow {record.id}`).")
    if not record.output_dir:
        raise UsageError(f"Run {record.id} has no output folder to resume from.")
    out = Path(record.output_dir)
    partial = outputs.partial_dir(out)
    if outputs.last_checkpoint(partial) is None:
        raise UsageError(
            f"Run {record.id} saved no checkpoint before it stopped, so it cannot be resumed;"
            " start it again with `hubmgr train`."
        )
    saved = partial / outputs.CONFIG_FILE
    if saved.is_file():
        config = TrainConfig.from_toml(saved)
    else:
        config = TrainConfig.from_dict(record.config)
    import dataclasses

    return dataclasses.replace(config, output_dir=str(out), resume=True)
