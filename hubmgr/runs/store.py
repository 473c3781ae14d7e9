"""The run registry: an embedded SQLite database of training runs, their metrics and their adapters.

One file (``get_settings().runs_db``) in hubmgr's data dir. It is safe to use from several processes and
threads at once: the training engine writes while the TUI reads. Every call opens its own short-lived
connection in WAL mode with a generous busy timeout, so there is no shared connection to guard and a
writer never blocks readers.

The schema is versioned with ``PRAGMA user_version``; :data:`_MIGRATIONS` is the one place where it
changes. A database written by a newer hubmgr is refused with one clear sentence rather than misread.

Timestamps in records are ISO-8601 strings in UTC (``2026-11-28T15:30:12.123456+00:00``); metric points
carry ``time`` as seconds since the epoch (a float), which is what a chart wants.

A run whose status is ``running`` but whose process is gone (the row keeps the pid, its start time and
the host) is reported as ``interrupted``; the stored status is left as it is, so a resumed run that calls
:meth:`RunStore.create_run` again with the same id simply goes back to ``running``.

Nothing here imports torch or a user interface.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import secrets
import shutil
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from hubmgr.errors import HubmgrError, LocalPathError, RunNotFoundError, RunStoreError, UsageError, local_path_error

__all__ = [
    "RUN_STATUSES",
    "AdapterRecord",
    "MetricPoint",
    "RunRecord",
    "RunStore",
    "RunStoreError",
    "new_run_id",
]

#: Statuses a caller may store. ``interrupted`` is only ever derived when reading.
RUN_STATUSES = ("running", "completed", "failed", "cancelled")
INTERRUPTED = "interrupted"

# Each entry moves the schema from version i to i+1. Append, never edit a released entry.
_MIGRATIONS: list[list[str]] = [
    [  # 1: runs, metrics, adapters
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            task TEXT NOT NULL,
            model TEXT NOT NULL,
            revision TEXT,
            config TEXT NOT NULL DEFAULT '{}',
            output_dir TEXT,
            status TEXT NOT NULL,
            error TEXT,
            metrics TEXT NOT NULL DEFAULT '{}',
            adapter_path TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            finished REAL,
            pid INTEGER,
            pid_started REAL,
            host TEXT
        )""",
        "CREATE INDEX runs_created ON runs (created)",
        """CREATE TABLE metrics (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            split TEXT NOT NULL,
            name TEXT NOT NULL,
            value REAL,
            time REAL NOT NULL
        )""",
        "CREATE INDEX metrics_run ON metrics (run_id, step)",
        """CREATE TABLE adapters (
            id TEXT PRIMARY KEY,
            run_id TEXT,
            path TEXT NOT NULL UNIQUE,
            base_model TEXT,
            base_revision TEXT,
            task TEXT,
            created REAL NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{}'
        )""",
    ],
    [  # 2: why a run stopped, and notes for the user
        "ALTER TABLE runs ADD COLUMN stop_reason TEXT",
        "ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'",
    ],
    [  # 3: the task's main metric and metric directions, so summaries need not guess them
        "ALTER TABLE runs ADD COLUMN main_metric TEXT",
        "ALTER TABLE runs ADD COLUMN metric_directions TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE adapters ADD COLUMN main_metric TEXT",
    ],
]
SCHEMA_VERSION = len(_MIGRATIONS)


# --- records -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRecord:
    """One training run as stored in the registry.

    Attributes:
        id: the run id (see :func:`new_run_id`).
        task: task plugin name.
        model: base model repo id or local path.
        revision: the base model's commit sha (or the revision asked for), if known.
        status: ``running``, ``completed``, ``failed``, ``cancelled`` or (derived) ``interrupted``.
        config: the run's full configuration as a JSON-able dict.
        output_dir: where the run writes its files.
        adapter_path: the saved adapter folder once the run finished with one.
        metrics: the final metrics given to :meth:`RunStore.finish`.
        error: the one-line error of a failed run.
        created / updated / finished: ISO-8601 UTC timestamps (``finished`` is None while running).
        pid / host: the process that runs (or ran) the training.
        stop_reason: why training stopped, one sentence (None while running or for older runs).
        notes: sentences worth the user's attention (a weak adapter, a metric still rising...).
        main_metric: the task's main metric (without ``eval_``), None for older or unfinished runs.
        metric_directions: ``{metric: greater_is_better}`` as the task said (``None``: auxiliary; see
            :mod:`hubmgr.metrics`).
    """

    id: str
    task: str
    model: str
    revision: str | None
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    output_dir: str | None = None
    adapter_path: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created: str = ""
    updated: str = ""
    finished: str | None = None
    pid: int | None = None
    host: str | None = None
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    main_metric: str | None = None
    metric_directions: dict[str, bool | None] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from creation to finish (or to the last update while running/interrupted)."""
        try:
            start = _dt.datetime.fromisoformat(self.created)
            end = _dt.datetime.fromisoformat(self.finished or self.updated)
        except (TypeError, ValueError):
            return None
        return max(0.0, (end - start).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricPoint:
    """One logged value: ``name`` at ``step`` on ``split`` (``train`` or ``eval``); ``time`` in epoch seconds.

    ``value`` is None for a value that was NaN or infinite when logged.
    """

    step: int
    split: str
    name: str
    value: float | None
    time: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AdapterRecord:
    """A saved LoRA adapter known to the registry.

    Attributes:
        id: adapter id (the run id for adapters saved by a run).
        run_id: the run that produced it, or None for an adapter added by hand.
        path: absolute path of the adapter folder.
        base_model / base_revision: what it was trained on.
        task: task plugin name.
        created: ISO-8601 UTC timestamp.
        metrics: the run's final metrics.
        main_metric: the task's main metric, when the run recorded it.
        exists: the folder still exists and holds ``adapter_config.json``.
    """

    id: str
    run_id: str | None
    path: str
    base_model: str | None
    base_revision: str | None
    task: str | None
    created: str
    metrics: dict[str, Any] = field(default_factory=dict)
    main_metric: str | None = None
    exists: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- helpers -------------------------------------------------------------------------------------
def new_run_id() -> str:
    """A short id that sorts by creation time: ``YYYYMMDD-HHMMSS-xxxx`` (UTC, 4 random hex digits)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat()


def _dumps(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, (_dt.datetime, _dt.date)):
            return o.isoformat()
        if hasattr(o, "__dataclass_fields__"):
            return asdict(o)
        if isinstance(o, (set, tuple)):
            return list(o)
        if hasattr(o, "item"):  # numpy / torch scalars
            try:
                return o.item()
            except Exception:
                pass
        return str(o)

    return json.dumps(_clean(obj), default=default, ensure_ascii=False, allow_nan=False)


def _clean(obj: Any) -> Any:
    """Replace NaN/inf floats with None so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _loads(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {}


def _as_float(value: Any) -> float | None | bool:
    """A metric value as a float (None for NaN/inf); False when it is not a number at all."""
    if isinstance(value, bool):
        return float(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except Exception:
            return False
    if isinstance(value, (int, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    return False


def _process_start_time(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def _process_alive(pid: int, started: float | None) -> bool:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False  # the pid was reused by another process
        return True
    except psutil.NoSuchProcess:
        return False
    except Exception:
        return True  # cannot tell: do not claim it died


def _adapter_exists(path: str) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


# --- the store -----------------------------------------------------------------------------------
class RunStore:
    """The SQLite run registry.

    Args:
        path: the database file; default ``get_settings().runs_db``. Parent folders are created.

    Raises:
        RunStoreError: the file is not a database hubmgr can use.
        LocalPathError: its folder cannot be created or written (read-only, no permission, a file in the
            way); the message names the path. Writing and reading alike need it writable (SQLite keeps its
            journal next to the database).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            from hubmgr.config import get_settings

            path = get_settings().runs_db
        self.path = Path(path).expanduser()
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            above = next((p for p in folder.parents if p.exists()), None)
            if isinstance(exc, PermissionError) and above is not None and above.is_dir():
                raise LocalPathError(
                    f"{self._folder_label()} {folder} cannot be created: {above} is not writable"
                    f" ({exc.strerror or exc})."
                ) from None
            raise local_path_error(exc, folder, self._folder_label()) from None
        self._host = socket.gethostname()
        self._migrate()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------------------
    def _folder_label(self) -> str:
        """How messages name the registry's folder: as ``HUBMGR_HOME`` when it is hubmgr's data folder."""
        try:
            from hubmgr.config import get_settings

            if get_settings().data_dir.expanduser().absolute() == self.path.parent.absolute():
                return "hubmgr's data folder (HUBMGR_HOME)"
        except Exception:  # noqa: BLE001 - only the wording depends on it
            pass
        return "The run registry's folder"

    def _unwritable(self) -> HubmgrError | None:
        """A clear error when the registry's folder or file cannot be written (SQLite only says "unable to
        open database file" or "attempt to write a readonly database"), else None."""
        import errno

        for target, label in ((self.path.parent, self._folder_label()), (self.path, "The run registry")):
            if not target.exists():
                continue
            try:
                read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
            except (OSError, AttributeError):  # no statvfs (Windows): os.access still tells
                read_only = False
            if read_only or not os.access(target, os.W_OK):
                code = errno.EROFS if read_only else errno.EACCES
                return local_path_error(OSError(code, os.strerror(code)), target, label)
        return None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._unwritable() or RunStoreError(f"Cannot open the run registry {self.path}: {exc}.") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise RunStoreError(
                    f"The run registry {self.path} stayed locked by another process; try again."
                ) from None
            if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                raise
            if isinstance(exc, sqlite3.OperationalError):
                unwritable = self._unwritable()
                if unwritable is not None:
                    raise unwritable from None
            raise RunStoreError(
                f"The run registry {self.path} cannot be used ({exc}); move it away to start a new one."
            ) from None
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one IMMEDIATE transaction (committed on success, rolled back on error)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._connect() as conn:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass  # some file systems refuse WAL; rollback journal still works
            conn.execute("PRAGMA synchronous = NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
                if version > SCHEMA_VERSION:
                    raise RunStoreError(
                        f"The run registry {self.path} was written by a newer hubmgr (schema {version},"
                        f" this one knows {SCHEMA_VERSION}); upgrade hubmgr."
                    )
                for target in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[target]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {target + 1}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- runs ----------------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        run_id: str,
        task: str,
        model: str,
        revision: str | None,
        config: dict[str, Any],
        output_dir: str | os.PathLike[str] | None,
        pid: int | None = None,
    ) -> RunRecord:
        """Record a new run as ``running`` in this process (or ``pid``).

        Calling it again with an existing id (a resumed run) sets the run back to ``running`` with the
        new process and config, and keeps its metrics history.

        Args:
            run_id: from :func:`new_run_id`.
            task / model / revision: task name, base model id or path, its commit sha if known.
            config: the full run configuration (JSON-able; paths and dataclasses are converted).
            output_dir: the run's output folder.
            pid: the training process (default: this one).

        Returns:
            The stored record.
        """
        if not run_id:
            raise UsageError("A run needs a non-empty id.")
        now = time.time()
        pid = os.getpid() if pid is None else int(pid)
        out = str(Path(output_dir).expanduser().resolve()) if output_dir else None
        with self._write() as conn:
            exists = conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            values = dict(
                id=run_id,
                task=task,
                model=str(model),
                revision=revision,
                config=_dumps(config or {}),
                output_dir=out,
                status="running",
                updated=now,
                pid=pid,
                pid_started=_process_start_time(pid),
                host=self._host,
            )
            if exists:
                conn.execute(
                    "UPDATE runs SET task=:task, model=:model, revision=:revision, config=:config,"
                    " output_dir=:output_dir, status=:status, error=NULL, finished=NULL, updated=:updated,"
                    " pid=:pid, pid_started=:pid_started, host=:host WHERE id=:id",
                    values,
                )
            else:
                conn.execute(
                    "INSERT INTO runs (id, task, model, revision, config, output_dir, status, created,"
                    " updated, pid, pid_started, host) VALUES (:id, :task, :model, :revision, :config,"
                    " :output_dir, :status, :updated, :updated, :pid, :pid_started, :host)",
                    values,
                )
        return self.get_run(run_id, exact=True)

    def set_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        """Change a run's status (``running``, ``completed``, ``failed``, ``cancelled``).

        Raises:
            UsageError: an unknown status.
            RunNotFoundError: no run with that id.
        """
        _check_status(status)
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status=?, error=?, updated=?,"
                " finished=CASE WHEN ?='running' THEN NULL ELSE COALESCE(finished, ?) END WHERE id=?",
                (status, _one_line(error), now, status, now, run_id),
            )
            if cur.rowcount == 0:
                raise RunNotFoundError(f"No run with id {run_id!r} in the run registry.")

    def record_event(self, run_id: str, event: Any) -> None:
        """Add what a training event says to the run's metric history (``event.history_point()``: a logged
        step's loss, learning rate and grad norm, an evaluation's metrics); other events add nothing. The
        runner passes every event of its stream here, so the history is the stream's."""
        point = getattr(event, "history_point", lambda: None)()
        if point is not None:
            split, step, values = point
            self.log_metrics(run_id, step, values, split=split)

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, Any], *, split: str = "train") -> None:
        """Append the numeric values of ``metrics`` at ``step``; other values are skipped.

        NaN and infinite values are stored as None (a NaN loss stays visible in the history).
        """
        now = time.time()
        rows = []
        for name, value in (metrics or {}).items():
            f = _as_float(value)
            if f is False:
                continue
            rows.append((run_id, int(step), split, str(name), f, now))
        if not rows:
            return
        with self._write() as conn:
            try:
                conn.executemany(
                    "INSERT INTO metrics (run_id, step, split, name, value, time) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
            except sqlite3.IntegrityError:
                raise RunNotFoundError(f"No run with id {run_id!r} in the run registry.") from None
            conn.execute("UPDATE runs SET updated=? WHERE id=?", (now, run_id))

    def drop_metrics_after(self, run_id: str, step: int) -> None:
        """Forget a run's metric points after ``step`` (a resumed run trains those steps again)."""
        with self._write() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id=? AND step>?", (run_id, int(step)))

    def finish(
        self,
        run_id: str,
        *,
        status: str,
        metrics: dict[str, Any] | None,
        adapter_path: str | os.PathLike[str] | None,
        error: str | None = None,
        stop_reason: str | None = None,
        notes: list[str] | None = None,
        main_metric: str | None = None,
        metric_directions: dict[str, bool | None] | None = None,
    ) -> RunRecord:
        """Close a run: final status and metrics, and register its adapter (id = the run id) if any.

        ``main_metric`` and ``metric_directions`` are the task's (see :mod:`hubmgr.metrics`).

        Returns:
            The updated record.

        Raises:
            RunNotFoundError: no run with that id.
        """
        _check_status(status)
        now = time.time()
        adapter = str(Path(adapter_path).expanduser().resolve()) if adapter_path else None
        with self._write() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"No run with id {run_id!r} in the run registry.")
            metrics_json = _dumps(metrics or {})
            conn.execute(
                "UPDATE runs SET status=?, error=?, metrics=?, adapter_path=?, updated=?, finished=?, stop_reason=?,"
                " notes=?, main_metric=?, metric_directions=? WHERE id=?",
                (
                    status,
                    _one_line(error),
                    metrics_json,
                    adapter,
                    now,
                    now,
                    _one_line(stop_reason),
                    _dumps(list(notes or [])),
                    main_metric,
                    _dumps({str(k): None if v is None else bool(v) for k, v in (metric_directions or {}).items()}),
                    run_id,
                ),
            )
            if adapter:
                conn.execute("DELETE FROM adapters WHERE path=? AND id<>?", (adapter, run_id))
                conn.execute(
                    "INSERT INTO adapters (id, run_id, path, base_model, base_revision, task, created, metrics,"
                    " main_metric) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                    " path=excluded.path, base_model=excluded.base_model, base_revision=excluded.base_revision,"
                    " task=excluded.task, created=excluded.created, metrics=excluded.metrics,"
                    " main_metric=excluded.main_metric",
                    (
                        run_id,
                        run_id,
                        adapter,
                        row["model"],
                        row["revision"],
                        row["task"],
                        now,
                        metrics_json,
                        main_metric,
                    ),
                )
        return self.get_run(run_id, exact=True)

    def list_runs(self, *, limit: int | None = None, status: str | None = None) -> list[RunRecord]:
        """All runs, newest first (``interrupted`` derived for dead ``running`` runs).

        Args:
            limit: at most this many.
            status: only runs with this (displayed) status.
        """
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM runs ORDER BY created DESC, id DESC").fetchall()
        records = [self._run_from_row(r) for r in rows]
        if status:
            records = [r for r in records if r.status == status]
        if limit is not None:
            records = records[: max(0, limit)]
        return records

    def get_run(self, run_id: str, *, exact: bool = False) -> RunRecord:
        """One run by id or by a unique prefix of its id.

        Raises:
            RunNotFoundError: no run matches.
            UsageError: the prefix matches several runs.
        """
        row = self._find(run_id, "runs", exact=exact)
        return self._run_from_row(row)

    def delete_run(self, run_id: str) -> RunRecord:
        """Forget a run and its metrics (its adapter record and files are kept)."""
        record = self.get_run(run_id)
        with self._write() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id=?", (record.id,))
            conn.execute("DELETE FROM runs WHERE id=?", (record.id,))
        return record

    def metrics_history(self, run_id: str, *, split: str | None = None, name: str | None = None) -> list[MetricPoint]:
        """Every logged value of a run in logging order (step, then time).

        Raises:
            RunNotFoundError: no run matches (prefixes accepted).
        """
        record = self.get_run(run_id)
        sql = "SELECT step, split, name, value, time FROM metrics WHERE run_id=?"
        args: list[Any] = [record.id]
        if split is not None:
            sql += " AND split=?"
            args.append(split)
        if name is not None:
            sql += " AND name=?"
            args.append(name)
        sql += " ORDER BY step, time, rowid"
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [MetricPoint(int(r["step"]), r["split"], r["name"], r["value"], float(r["time"])) for r in rows]

    # -- adapters ------------------------------------------------------------------------------------
    def add_adapter(
        self,
        path: str | os.PathLike[str],
        *,
        adapter_id: str | None = None,
        run_id: str | None = None,
        base_model: str | None = None,
        base_revision: str | None = None,
        task: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> AdapterRecord:
        """Register an adapter folder that no run recorded (or re-register one). Id default: a new run id."""
        resolved = str(Path(path).expanduser().resolve())
        adapter_id = adapter_id or new_run_id()
        with self._write() as conn:
            conn.execute("DELETE FROM adapters WHERE path=? OR id=?", (resolved, adapter_id))
            conn.execute(
                "INSERT INTO adapters (id, run_id, path, base_model, base_revision, task, created, metrics)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (adapter_id, run_id, resolved, base_model, base_revision, task, time.time(), _dumps(metrics or {})),
            )
        return self.get_adapter(adapter_id)

    def list_adapters(self) -> list[AdapterRecord]:
        """All registered adapters, newest first; ``exists`` tells whether the folder is still there.

        Runs that completed their output folder but died before recording it are reconciled first."""
        self.list_runs(status=INTERRUPTED)
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM adapters ORDER BY created DESC, id DESC").fetchall()
        return [_adapter_from_row(r) for r in rows]

    def get_adapter(self, id_or_path: str | os.PathLike[str]) -> AdapterRecord:
        """One adapter by id, unique id prefix, or folder path.

        Raises:
            RunNotFoundError: nothing matches.
            UsageError: the prefix matches several adapters.
        """
        text = str(id_or_path)
        resolved = str(Path(text).expanduser().resolve())
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM adapters WHERE path=? OR path=?", (text, resolved)).fetchone()
        if row is None:
            row = self._find(text, "adapters", what="adapter")
        return _adapter_from_row(row)

    def delete_adapter(self, id_or_path: str | os.PathLike[str], *, delete_files: bool = True) -> AdapterRecord:
        """Forget an adapter and (by default) delete its folder.

        The folder is deleted only when it holds ``adapter_config.json``, so a wrong path never removes
        unrelated files. The run that produced the adapter stays in the history.

        Returns:
            The record that was removed.

        Raises:
            RunNotFoundError: no adapter matches.
            UsageError: the folder exists but does not look like an adapter (nothing is deleted).
        """
        record = self.get_adapter(id_or_path)
        folder = Path(record.path)
        if delete_files and folder.exists():
            if not _adapter_exists(record.path):
                raise UsageError(
                    f"{folder} does not look like an adapter folder (no adapter_config.json); not deleting it."
                    " Use delete_files=False (--keep-files) to forget the record only."
                )
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                raise UsageError(f"Cannot delete {folder}: {exc.strerror or exc}.") from None
        with self._write() as conn:
            conn.execute("DELETE FROM adapters WHERE id=?", (record.id,))
        return record

    # -- internals -----------------------------------------------------------------------------------
    def _find(self, key: str, table: str, *, exact: bool = False, what: str = "run") -> sqlite3.Row:
        key = str(key).strip()
        if not key:
            raise RunNotFoundError(f"No {what} id given.")
        with self._connect() as conn:
            row: sqlite3.Row | None = conn.execute(f"SELECT * FROM {table} WHERE id=?", (key,)).fetchone()
            if row is not None or exact:
                if row is None:
                    raise RunNotFoundError(f"No {what} with id {key!r} in the run registry.")
                return row
            escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows: list[sqlite3.Row] = conn.execute(
                f"SELECT * FROM {table} WHERE id LIKE ? ESCAPE '\\' ORDER BY created DESC LIMIT 6",
                (escaped + "%",),
            ).fetchall()
        if not rows:
            raise RunNotFoundError(f"No {what} with id {key!r} in the run registry (see `hubmgr {what}s`).")
        if len(rows) > 1:
            shown = ", ".join(r["id"] for r in rows[:5])
            raise UsageError(f"The id prefix {key!r} matches several {what}s ({shown}); give more characters.")
        return rows[0]

    def _reconcile(self, row: sqlite3.Row) -> bool:
        """A run whose process died after its output folder became complete, but before the registry was told
        (a kill in that window): the folder is the truth. Records it as completed with its adapter."""
        data = _completed_output(row)
        if data is None:
            return False
        metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
        try:
            directions = data.get("metric_directions") if isinstance(data.get("metric_directions"), dict) else {}
            self.finish(
                row["id"],
                status="completed",
                metrics=metrics,
                adapter_path=row["output_dir"],
                stop_reason=data.get("stop_reason"),
                notes=list(data.get("notes") or []),
                main_metric=data.get("main_metric"),
                metric_directions=directions,
            )
        except HubmgrError:
            return False
        return True

    def _run_from_row(self, row: sqlite3.Row) -> RunRecord:
        status = row["status"]
        if status == "running" and row["pid"] and row["host"] == self._host:
            if not _process_alive(int(row["pid"]), row["pid_started"]):
                status = INTERRUPTED
                if self._reconcile(row):
                    return self.get_run(row["id"], exact=True)
        return RunRecord(
            id=row["id"],
            task=row["task"],
            model=row["model"],
            revision=row["revision"],
            status=status,
            config=_loads(row["config"]),
            output_dir=row["output_dir"],
            adapter_path=row["adapter_path"],
            metrics=_loads(row["metrics"]),
            error=row["error"],
            created=_iso(row["created"]) or "",
            updated=_iso(row["updated"]) or "",
            finished=_iso(row["finished"]),
            pid=row["pid"],
            host=row["host"],
            stop_reason=row["stop_reason"],
            notes=list(_loads(row["notes"]) or []),
            main_metric=row["main_metric"],
            metric_directions=dict(_loads(row["metric_directions"]) or {}),
        )


def _completed_output(row: sqlite3.Row) -> dict[str, Any] | None:
    """The ``hubmgr_run.json`` of a run's output folder when it says this run completed there."""
    if not row["output_dir"]:
        return None
    try:
        data = json.loads((Path(row["output_dir"]) / "hubmgr_run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("status") != "completed" or data.get("run_id") != row["id"]:
        return None
    if not _adapter_exists(row["output_dir"]):
        return None
    return data


def _adapter_from_row(row: sqlite3.Row) -> AdapterRecord:
    return AdapterRecord(
        id=row["id"],
        run_id=row["run_id"],
        path=row["path"],
        base_model=row["base_model"],
        base_revision=row["base_revision"],
        task=row["task"],
        created=_iso(row["created"]) or "",
        metrics=_loads(row["metrics"]),
        main_metric=row["main_metric"],
        exists=_adapter_exists(row["path"]),
    )


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise UsageError(f"Unknown run status {status!r}; use one of {', '.join(RUN_STATUSES)}.")


def _one_line(text: str | None) -> str | None:
    """``text`` on one line, whole (errors and reasons are stored in full); None for nothing."""
    from hubmgr.format import one_line

    return None if text is None else one_line(text, limit=1 << 20) or None
