"""``hubmgr eval``, ``predict``, ``runs``, ``runs show``, ``runs rm``, ``adapters``, ``adapters rm`` and ``merge``.

The work is done by :mod:`hubmgr.eval.runner`, :mod:`hubmgr.eval.merge` and :mod:`hubmgr.runs.store`;
this module only parses flags and prints. torch and friends load inside ``eval`` and ``merge``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hubmgr.cli.output import emit_json, human_bytes, human_count, info, is_tty, print_table
from hubmgr.cli.task_flags import AdapterTaskOptionsCommand, TaskOptionsCommand, adapters_task, parse_task_flags
from hubmgr.errors import UsageError
from hubmgr.eval.config import EvalConfig, MergeConfig, PredictConfig
from hubmgr.format import duration
from hubmgr.fields import click_options_from_dataclass, merge, model_dtype

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.runs.store import RunStore


# --- helpers -----------------------------------------------------------------------------------------
def _read_inputs(path: Path) -> list[str]:
    """Non-empty lines of ``path`` ('-' is standard input), without their line ends."""
    from hubmgr.errors import DataError

    if str(path) == "-":
        # click 8.5 serves its deprecated get_text_stream through a module __getattr__ typed "object"
        stdin = click.get_text_stream("stdin")  # type: ignore[operator]
        return [line.rstrip("\r\n") for line in stdin if line.strip()]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"The input file {path} does not exist.") from None
    except UnicodeDecodeError:
        raise DataError(f"The input file {path} is not UTF-8 text.") from None
    except OSError as exc:
        raise DataError(f"Cannot read the input file {path}: {exc.strerror or exc}.") from None
    return [line for line in text.splitlines() if line.strip()]


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return _dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.4g}" if abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-3) else f"{value:.4f}"
    return str(value)


def _short_metrics(
    metrics: dict[str, Any], main: str | None = None, limit: int = 3, directions: dict[str, bool | None] | None = None
) -> str:
    """``accuracy=0.91 macro_f1=0.90`` with the main metric first (:func:`hubmgr.metrics.headline`)."""
    from hubmgr.metrics import headline

    return " ".join(f"{k}={_fmt(v)}" for k, v in headline(metrics, main, limit, directions)) or "-"


def _store() -> RunStore:
    from hubmgr.runs.store import RunStore

    return RunStore()


def _history_summary(points: list[Any]) -> list[dict[str, Any]]:
    """One entry per (split, name): count, first/last step, first/last/min/max value."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for p in points:
        groups.setdefault((p.split, p.name), []).append(p)
    out = []
    for (split, name), pts in groups.items():
        values = [p.value for p in pts if p.value is not None]
        out.append(
            {
                "split": split,
                "name": name,
                "count": len(pts),
                "first_step": pts[0].step,
                "last_step": pts[-1].step,
                "first": pts[0].value,
                "last": pts[-1].value,
                "min": min(values) if values else None,
                "max": max(values) if values else None,
            }
        )
    return out


# --- eval ----------------------------------------------------------------------------------------------
class _Progress:
    """Rich progress bars on stderr, one per evaluated model (nothing when stderr is not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self._progress = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from hubmgr.cli.output import err_console

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console(),
                transient=True,
            )

    def __enter__(self) -> "_Progress":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: Any) -> None:
        if self._progress is None or getattr(event, "kind", None) != "eval_progress":
            return
        task_id = self._tasks.get(event.name)
        if task_id is None:
            task_id = self._tasks[event.name] = self._progress.add_task(f"eval {event.name}", total=event.total)
        self._progress.update(task_id, completed=event.done, total=event.total)


def _print_report(report: Any) -> None:
    names = report.metric_names()
    best = report.best()
    if best is not None:  # mark the best row only when it is the only one with that value
        value = best.metrics[report.main_metric]
        if sum(1 for r in report.rows if r.metrics.get(report.main_metric) == value) > 1:
            best = None
    columns = ["model", *names, "examples/s"]
    rows = []
    for row in report.rows:
        cells = [row.name + (" *" if best is not None and row is best and len(report.rows) > 1 else "")]
        cells += [_fmt(row.metrics.get(n)) for n in names]
        cells.append(f"{row.samples_per_second:.1f}")
        rows.append(cells)
    justify = {n: "right" for n in [*names, "examples/s"]}
    print_table(
        columns, rows, title=f"{report.task} on {report.num_examples} examples ({report.split})", justify=justify
    )
    for warning in report.warnings:
        info(f"[yellow]warning:[/yellow] {warning}" if is_tty() else f"warning: {warning}")
    if best is not None and len(report.rows) > 1:
        info(f"best {report.main_metric}: {best.name} ({_fmt(best.metrics[report.main_metric])})")
    for row in report.rows[1:]:
        info(f"{row.name}: {row.path}")


def _print_tables(report: Any) -> None:
    """The task's per-label metrics: on a terminal one table per metric (a row per label, a column per
    model); piped, one tab-separated table with ``metric`` and ``label`` columns."""
    names = report.table_names()
    if not names:
        return
    models = [row.name for row in report.rows]

    def rows_of(name: str) -> list[list[str]]:
        from hubmgr.metrics import table_labels

        labels = table_labels(row.tables.get(name, {}) for row in report.rows)
        return [[label, *(_fmt(row.tables.get(name, {}).get(label)) for row in report.rows)] for label in labels]

    justify = {m: "right" for m in models}
    if is_tty():
        for name in names:
            print_table(["label", *models], rows_of(name), title=name, justify=justify)
    else:
        print_table(["metric", "label", *models], [[name, *cells] for name in names for cells in rows_of(name)])


def _print_per_class(report: Any) -> None:
    """Precision, recall, F1 and support per label: one table per model on a terminal; piped, one
    tab-separated table with a ``model`` column (so the lines stay machine-readable)."""
    rows_with = [row for row in report.rows if row.per_class]
    if not rows_with:
        return
    columns = ["label", "precision", "recall", "f1", "support"]
    justify = {c: "right" for c in columns[1:]}

    def cells(entry: dict[str, Any]) -> list[str]:
        return [
            str(entry.get("label", "")),
            _fmt(entry.get("precision")),
            _fmt(entry.get("recall")),
            _fmt(entry.get("f1")),
            str(entry.get("support", "")),
        ]

    if is_tty():
        for row in rows_with:
            print_table(columns, [cells(e) for e in row.per_class], title=f"per class: {row.name}", justify=justify)
    else:
        print_table(["model", *columns], [[row.name, *cells(e)] for row in rows_with for e in row.per_class])


@click.command("eval", cls=TaskOptionsCommand)
@click.argument("task", required=False)
@click_options_from_dataclass(EvalConfig, exclude=("task",))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def eval_cmd(ctx: click.Context, /, task: str | None, as_json: bool, **flags: Any) -> None:
    """Evaluate a base model and LoRA adapters side by side on one data set.

    The base model is loaded once; each adapter is switched in with peft. Labels and task options
    come from the adapter's saved run record when it has one.

    \b
        hubmgr eval text-classification --model sentence-transformers/all-MiniLM-L6-v2 \\
            --adapter ~/.local/share/hubmgr/runs/20261128-153012-ab12 --data dev.csv
        hubmgr eval --adapter 20261128-1530 --data dev.csv --json
        hubmgr eval --adapter 20261128-1530 --data dev.jsonl --per-class --threshold 0.3

    Task options go as flags (--threshold 0.3) or -o KEY=VALUE.
    """
    from hubmgr.eval.runner import evaluate

    config = merge(EvalConfig(), {**flags, "task": task}).validate()
    config = _with_task_flags(
        config,
        ctx.meta.get("hubmgr_task_args") or [],
        task=config.task or adapters_task(config.adapters),
        command="eval",
    )
    with _Progress(enabled=not as_json and is_tty()) as progress:
        report = evaluate(
            config.model,
            config.adapters,
            task=config.task,
            data=config.data,
            options=config.options or None,
            split=config.split,
            max_samples=config.max_samples,
            batch_size=config.batch_size,
            max_length=config.max_length,
            device=config.device,
            dtype=model_dtype(config.dtype),
            on_event=progress,
            trust_remote_code=config.trust_remote_code,
            per_class=config.per_class,
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report)
        _print_tables(report)
        if config.per_class:
            _print_per_class(report)


def _with_task_flags(config: Any, extra: list[str], *, task: str | None, command: str) -> Any:
    """``config`` with the task-option flags among ``extra`` merged into its options (flags win over -o)."""
    import dataclasses

    values = parse_task_flags(task, extra, command=command)
    if not values:
        return config
    return dataclasses.replace(config, options={**(config.options or {}), **values})


# -- predict ------------------------------------------------------------------------------------
@click.command("predict", cls=AdapterTaskOptionsCommand)
@click.argument("adapter")
@click.argument("inputs", nargs=-1)
@click.option(
    "--file",
    "-f",
    "input_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read inputs from this file, one per line ('-' for standard input).",
)
@click_options_from_dataclass(PredictConfig, exclude=("adapter",))
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
@click.pass_context
def predict_cmd(
    ctx: click.Context,
    /,
    adapter: str,
    inputs: tuple[str, ...],
    input_file: Path | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Try an adapter on a few inputs: texts, image paths or prompts, as its task takes them.

    ADAPTER is an adapter folder or a run / adapter id from `hubmgr adapters`; the base model, task,
    options and labels come from its run record. With no INPUTS and no --file, inputs are read from
    standard input, one per line. For tasks on text pairs, give --pair-separator.

    \b
        hubmgr predict 20261128-1530 "a wonderful film" "dull and far too long" --compare
        hubmgr predict adapters/nli "A man sleeps. ||| A person rests." --pair-separator " ||| "
        hubmgr predict adapters/ner --file sentences.txt --json
    """
    from hubmgr.eval.predict import predict

    config = merge(PredictConfig(), {**flags, "adapter": adapter}).validate()
    config = _with_task_flags(
        config, ctx.meta.get("hubmgr_task_args") or [], task=adapters_task([config.adapter]), command="predict"
    )
    items: list[Any] = list(inputs)  # texts, or (text, text) pairs once split
    if input_file is not None:
        items += _read_inputs(input_file)
    elif not items:
        # click 8.5 serves its deprecated get_text_stream through a module __getattr__ typed "object"
        if click.get_text_stream("stdin").isatty():  # type: ignore[operator]
            raise UsageError("Give inputs after the adapter, with --file, or on standard input.")
        items = _read_inputs(Path("-"))
    separator = config.pair_separator
    if separator:
        bad = [x for x in items if separator not in x]
        if bad:
            raise UsageError(f"Input {bad[0][:60]!r} has no {separator!r} to split it into a text pair.")
        items = [tuple(x.split(separator, 1)) for x in items]
    if not items:
        raise UsageError("There are no inputs to predict (empty lines are skipped).")
    if not as_json and is_tty():
        info(f"Predicting {len(items)} input{'s' if len(items) != 1 else ''} with {adapter}...")
    preds = predict(
        config.adapter,
        items,
        base_model=config.model,
        options=config.options or None,
        compare=config.compare,
        batch_size=config.batch_size,
        device=config.device,
        dtype=model_dtype(config.dtype),
        trust_remote_code=config.trust_remote_code,
    )
    if as_json:
        emit_json([p.to_dict() for p in preds])
        return

    def shown(x: Any) -> str:
        return " | ".join(map(str, x)) if isinstance(x, tuple) else str(x)

    if config.compare:
        print_table(
            ["input", "base model", "with the adapter"],
            [[shown(p.input), p.base_prediction, p.prediction] for p in preds],
        )
    else:
        print_table(["input", "prediction"], [[shown(p.input), p.prediction] for p in preds])


# -- runs ---------------------------------------------------------------------------------------
@click.group("runs", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Show at most N runs.")
@click.option(
    "--status",
    type=click.Choice(["running", "completed", "failed", "cancelled", "interrupted"]),
    default=None,
    help="Only runs with this status.",
)
@click.pass_context
def runs(ctx: click.Context, as_json: bool, limit: int | None, status: str | None) -> None:
    """List training runs, newest first (`hubmgr runs show ID` for one)."""
    if ctx.invoked_subcommand is not None:
        return
    records = _store().list_runs(limit=limit, status=status)
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        info("No runs yet: start one with `hubmgr train`.")
        return
    print_table(
        ["id", "status", "task", "model", "metrics", "started", "took"],
        [
            [
                r.id,
                r.status,
                r.task,
                r.model,
                _short_metrics(r.metrics, r.main_metric, directions=r.metric_directions),
                _when(r.created),
                duration(r.duration_seconds),
            ]
            for r in records
        ],
    )


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run, its summary and full metric history as JSON.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: status, config, metrics over time, adapter, base model and revision.

    RUN_ID may be a unique prefix of the id.
    """
    from hubmgr.train._outputs import metric_tables

    store = _store()
    record = store.get_run(run_id)
    history = store.metrics_history(record.id)
    summary = _history_summary(history)
    tables = metric_tables(record.adapter_path)
    if as_json:
        emit_json(
            {
                **record.to_dict(),
                "duration_seconds": record.duration_seconds,
                "metrics_summary": summary,
                "metric_tables": tables,
                "history": [p.to_dict() for p in history],
            }
        )
        return
    adapter_note = ""
    if record.adapter_path and not (Path(record.adapter_path) / "adapter_config.json").is_file():
        adapter_note = " (missing)"
    pairs = [
        ("id", record.id),
        ("status", record.status + (f": {record.error}" if record.error else "")),
        ("task", record.task),
        ("base model", record.model),
        ("revision", record.revision or "-"),
        ("started", _when(record.created)),
        ("finished", _when(record.finished)),
        ("took", duration(record.duration_seconds)),
        ("output", record.output_dir or "-"),
        ("adapter", (record.adapter_path or "-") + adapter_note),
    ]
    if record.status in ("cancelled", "interrupted", "failed"):
        from hubmgr.runs.live import resume_config_of

        try:
            resume_config_of(record)
        except UsageError:
            pass
        else:
            pairs.append(("resume", f"hubmgr runs resume {record.id}"))
    elif record.status == "running":
        pairs.append(("follow", f"hubmgr runs follow {record.id}   (stop: hubmgr runs stop {record.id})"))
    if record.stop_reason:
        pairs.append(("stopped", record.stop_reason))
    pairs += [("note", note) for note in record.notes or []]
    print_table(["field", "value"], pairs, title=f"run {record.id}")
    if record.metrics:
        from hubmgr.metrics import ordered

        rows = [
            [k, _fmt(record.metrics[k])] for k in ordered(record.metrics, record.main_metric, record.metric_directions)
        ]
        print_table(["metric", "value"], rows, title="final metrics", justify={"value": "right"})
    if tables:  # the task's per-label metrics of the final evaluation, from the adapter's run record
        from hubmgr.metrics import table_labels

        names = list(tables)
        labels = table_labels(tables.values())
        print_table(
            ["label", *names],
            [[label, *(_fmt(tables[n].get(label)) for n in names)] for label in labels],
            title="final metrics per label",
            justify={n: "right" for n in names},
        )
    if summary:
        print_table(
            ["split", "metric", "points", "steps", "first", "last", "min", "max"],
            [
                [
                    s["split"],
                    s["name"],
                    s["count"],
                    f"{s['first_step']}-{s['last_step']}",
                    _fmt(s["first"]),
                    _fmt(s["last"]),
                    _fmt(s["min"]),
                    _fmt(s["max"]),
                ]
                for s in summary
            ],
            title="metrics over time",
        )
    if record.config:
        click.echo("config:")
        click.echo(json.dumps(record.config, indent=2, ensure_ascii=False, default=str))


@runs.command("rm")
@click.argument("run_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the removed run as JSON.")
def runs_rm(run_id: str, yes: bool, as_json: bool) -> None:
    """Forget a run and its metric history (its files and adapter are kept)."""
    store = _store()
    record = store.get_run(run_id)
    if not yes:
        click.confirm(f"Forget run {record.id} ({record.task}, {record.model})?", abort=True, err=True)
    store.delete_run(record.id)
    if as_json:
        emit_json(record.to_dict())
    else:
        info(f"Forgot run {record.id}.")


# -- adapters -----------------------------------------------------------------------------------
@click.group("adapters", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the adapters as JSON.")
@click.pass_context
def adapters_group(ctx: click.Context, as_json: bool) -> None:
    """List saved LoRA adapters (`hubmgr adapters rm ID` deletes one)."""
    if ctx.invoked_subcommand is not None:
        return
    records = _store().list_adapters()
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        info("No adapters yet: `hubmgr train` saves one per run.")
        return
    print_table(
        ["id", "task", "base model", "metrics", "created", "path"],
        [
            [
                a.id,
                a.task or "-",
                a.base_model or "-",
                _short_metrics(a.metrics, a.main_metric),
                _when(a.created),
                a.path + ("" if a.exists else " (missing)"),
            ]
            for a in records
        ],
    )


@adapters_group.command("rm")
@click.argument("adapter_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-files", is_flag=True, help="Only forget the record; leave the folder on disk.")
@click.option("--json", "as_json", is_flag=True, help="Print the removed adapter as JSON.")
def adapters_rm(adapter_id: str, yes: bool, keep_files: bool, as_json: bool) -> None:
    """Delete an adapter (by id, unique id prefix or folder path) and its folder."""
    store = _store()
    record = store.get_adapter(adapter_id)
    if not yes:
        what = "Forget" if keep_files or not record.exists else "Delete"
        where = "" if keep_files or not record.exists else f" and its folder {record.path}"
        click.confirm(f"{what} adapter {record.id}{where}?", abort=True, err=True)
    store.delete_adapter(record.id, delete_files=not keep_files)
    if as_json:
        emit_json(record.to_dict())
    else:
        gone = " and its folder" if record.exists and not keep_files else ""
        info(f"Deleted adapter {record.id}{gone}.")


# -- merge --------------------------------------------------------------------------------------
@click.command("merge")
@click.argument("adapter")
@click_options_from_dataclass(MergeConfig, exclude=("adapter",))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def merge_cmd(adapter: str, as_json: bool, **flags: Any) -> None:
    """Merge ADAPTER (a folder or an adapter/run id) into its base model and save a full model.

    The result is a normal transformers folder (safetensors weights, config, tokenizer) that loads
    without peft. A base model with its own code (auto_map in config.json) needs --trust-remote-code,
    and its code files are then copied into the merged folder.
    """
    from hubmgr.eval.merge import merge_adapter

    config = merge(MergeConfig(), {**flags, "adapter": adapter}).validate()
    result = merge_adapter(
        config.adapter,
        output=Path(config.output),
        base_model=config.model,
        dtype=model_dtype(config.dtype),
        trust_remote_code=config.trust_remote_code,
    )
    if as_json:
        emit_json(result)
    else:
        info(
            f"Merged {result.adapter} into {result.base_model}: {human_count(result.num_parameters)} parameters,"
            f" {human_bytes(result.size_bytes)}."
        )
        if result.code_files:
            info(f"Copied the base model's own code with it: {', '.join(result.code_files)}.")
        click.echo(result.output)


def register(cli: click.Group) -> None:
    """Add ``eval``, ``runs``, ``adapters`` and ``merge`` to the ``hubmgr`` group.

    Args:
        cli: the top-level group.
    """
    for command in (eval_cmd, predict_cmd, runs, adapters_group, merge_cmd):
        cli.add_command(command)
