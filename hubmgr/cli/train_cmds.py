"""``hubmgr train TASK --model M --data D``: LoRA fine-tuning from the command line.

Every :class:`hubmgr.train.config.TrainConfig` field is a flag (generated from the dataclass), a TOML
file gives the same settings (``--config run.toml``; flags win), and task options come as
``--option KEY=VALUE`` or directly as flags (``--text-column sentence``). Progress is a rich bar on a
terminal, plain lines when piped, and one JSON object per event with ``--json``.

Nothing heavy is imported here: torch loads inside the command, when training starts.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any, Callable

import click

from hubmgr.cli.output import emit_json_line, err_console, info
from hubmgr.cli.task_flags import TaskOptionsCommand, parse_task_flags
from hubmgr.errors import UsageError
from hubmgr.format import duration
from hubmgr.fields import click_options_from_dataclass, merge
from hubmgr.train.config import TrainConfig

if TYPE_CHECKING:
    from types import FrameType
    from typing import TextIO

    from rich.progress import Progress, TaskID
    from rich.status import Status

_EPILOG = (
    "Task options (see `hubmgr tasks`) go as --option KEY=VALUE or as flags, e.g. --text-column sentence. "
    "A TOML file (--config) holds the same settings as top-level keys and task options under [options]; "
    "flags win over the file. Ctrl-C stops after the current step and keeps a checkpoint; "
    "`hubmgr runs resume ID` (or `hubmgr train --resume --output DIR`) continues it. --detach trains in the "
    "background; `hubmgr runs follow ID` attaches."
)


def build_config(
    task: str | None, *, config_file: str | None, extra_args: list[str], flags: dict[str, Any]
) -> TrainConfig:
    """Lay the flags over the TOML file (or the resumed run's saved config) over the defaults.

    Args:
        task: the TASK argument (None when the file or the resumed run names it).
        config_file: ``--config`` path.
        extra_args: leftover arguments, parsed as task option flags.
        flags: the TrainConfig flags as given (``None`` = not given; ``options`` from ``-o KEY=VALUE``).

    Returns:
        The merged TrainConfig (not yet validated).

    Raises:
        UsageError: unreadable file, unknown keys or options, bad values.
    """
    base = TrainConfig()
    if config_file:
        base = TrainConfig.from_toml(config_file)
    elif flags.get("resume"):
        if not flags.get("output_dir"):
            raise UsageError("--resume needs --output DIR (the run's output folder), or use `hubmgr runs resume ID`.")
        from hubmgr.train import _outputs as outputs
        from hubmgr.train.runner import resume_config

        saved = resume_config(flags["output_dir"])
        if saved is None:
            from pathlib import Path

            outputs.check_output(Path(flags["output_dir"]).expanduser().resolve(), resume=True)
            raise UsageError(f"Nothing to resume in {flags['output_dir']}: its unfinished run kept no config.")
        base = saved
    options: dict[str, Any] = dict(flags.get("options") or {})
    options.update(parse_task_flags(task or base.task or None, extra_args, command="train"))
    overrides = dict(flags)
    overrides["task"] = task
    overrides["options"] = options or None
    return merge(base, overrides)


class _Renderer:
    """Turns training events into a rich progress bar (terminal), plain lines (piped) or JSON lines."""

    def __init__(self, *, as_json: bool, quiet: bool) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.tty = (not as_json) and sys.stderr.isatty()
        self.progress: Progress | None = None
        self.task_id: TaskID | None = None
        self.status: Status | None = None
        self.last_plain_step = -1
        self.loss_text = "loss -"
        self.lr_text = ""
        self.auto = False

    def start(self) -> None:
        if self.quiet or self.as_json or not self.tty:
            return
        self.status = err_console().status("Loading the model and the data...")
        self.status.start()

    def _stop_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def close(self) -> None:
        self._stop_status()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, highlight=False)
        elif self.tty:
            info(text)
        else:
            click.echo(_plain(text), err=True)

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if self.as_json:
            from hubmgr.train.events import event_to_dict

            emit_json_line(event_to_dict(event))
            return
        kind = getattr(event, "kind", "")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)

    # -- events --------------------------------------------------------------------------------------
    def _on_train_started(self, e: Any) -> None:
        from rich.markup import escape

        self._stop_status()
        resumed = f", resuming at step {e.resumed_from_step}" if e.resumed_from_step else ""
        self.auto = getattr(e, "budget", "fixed") == "auto"
        steps = (
            f"at most {e.total_steps} steps (the tool stops when the eval metric plateaus)"
            if self.auto
            else f"{e.total_steps} steps"
        )
        pct = 100.0 * e.trainable_params / e.total_params if e.total_params else 0.0
        self.print(
            f"Training {escape(e.model)} for {e.task} on {e.device} ({e.precision} precision):"
            f" {e.num_train_examples} examples"
            f" ({e.num_eval_examples} for evaluation), {steps}, {e.trainable_params:,} trainable"
            f" parameters ({pct:.2f}%){resumed}."
        )
        if not self.tty:
            return
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(
            TextColumn("[bold]train[/bold]"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("step {task.completed:.0f}/{task.total:.0f}"),
            TextColumn("{task.fields[loss]}"),
            TextColumn("{task.fields[lr]}"),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[eta]}"),
            console=err_console(),
            transient=False,
        )
        self.progress.start()
        self.task_id = self.progress.add_task(
            "train", total=e.total_steps, completed=e.resumed_from_step, loss="loss -", lr="", speed="", eta=""
        )

    def _on_step(self, e: Any) -> None:
        if e.loss is not None:
            self.loss_text = f"loss {e.loss:.4f}"
        if e.learning_rate is not None:
            self.lr_text = f"lr {e.learning_rate:.1e}"
        loss, lr = self.loss_text, self.lr_text
        speed = f"{e.samples_per_second:.1f} samples/s" if e.samples_per_second else ""
        eta = f"ETA {'<= ' if self.auto else ''}{duration(e.eta_seconds)}" if e.eta_seconds is not None else ""
        if self.progress is not None and self.task_id is not None:
            self.progress.update(
                self.task_id, completed=e.step, total=e.total_steps, loss=loss, lr=lr, speed=speed, eta=eta
            )
            return
        if e.loss is None or e.step == self.last_plain_step:
            return
        self.last_plain_step = e.step
        self.print(f"step {e.step}/{e.total_steps}  {loss}  {lr}  {speed}  {eta}".rstrip())

    def _on_eval(self, e: Any) -> None:
        shown = "  ".join(f"{k} {_num(v)}" for k, v in e.metrics.items())
        self.print(f"eval at step {e.step} (epoch {e.epoch:.2f}): {shown}")

    def _on_checkpoint(self, e: Any) -> None:
        if self.tty:
            self.print(f"[dim]checkpoint saved at step {e.step}[/dim]")

    def _on_train_finished(self, e: Any) -> None:
        self.close()


def _plain(text: str) -> str:
    """Rich markup removed, for piped output."""
    from rich.text import Text

    return Text.from_markup(text).plain


def _say(text: str) -> None:
    """A human line on stderr: rich on a terminal, plain (never wrapped) when piped."""
    if sys.stderr.isatty():
        info(text)
    else:
        click.echo(_plain(text), err=True)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    from rich.markup import escape

    text = " ".join(str(message).split())
    _say(f"[yellow]warning:[/yellow] {escape(text)}")


class _Interrupts:
    """First Ctrl-C sets ``cancel`` (stop after this step, keep a checkpoint); the second one aborts."""

    def __init__(self, cancel: threading.Event, say: Callable[[str], None]) -> None:
        self.cancel = cancel
        self.say = say
        self.previous: Callable[[int, FrameType | None], Any] | int | None = None
        self.installed = False

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
            self.installed = True
        return self

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.cancel.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.cancel.set()
        self.say("Stopping after the current step and saving a checkpoint (Ctrl-C again to abort)...")

    def __exit__(self, *exc: Any) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None else signal.default_int_handler)


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


@click.command(
    "train",
    cls=TaskOptionsCommand,
    epilog=_EPILOG,
    short_help="Fine-tune a model with LoRA.",
)
@click.argument("task", required=False, metavar="TASK")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.toml",
    help="Read settings from a TOML file (flags win over it).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event on stdout, then the result.")
@click.option(
    "--detach",
    is_flag=True,
    help="Train in the background: print the run id at once and return. Follow it with"
    " `hubmgr runs follow ID`, stop it with `hubmgr runs stop ID`.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Do not train: time a few real steps and one evaluation here, and predict the run's time and peak"
    " memory. Writes nothing.",
)
@click.option("--run-id", "run_id", default=None, hidden=True)
@click_options_from_dataclass(TrainConfig, exclude=("task",))
@click.pass_context
def train_cmd(
    ctx: click.Context,
    /,
    task: str | None,
    config_file: str | None,
    as_json: bool,
    detach: bool,
    dry_run: bool,
    run_id: str | None,
    **flags: Any,
) -> None:
    """Fine-tune MODEL with LoRA for TASK on DATA and write a standard peft adapter.

    TASK is a task name such as text-classification (see `hubmgr tasks`).
    """
    config = build_config(
        task, config_file=config_file, extra_args=list(ctx.meta.get("hubmgr_task_args") or []), flags=flags
    )
    config.validate()
    if dry_run:
        if detach:
            raise UsageError("--dry-run trains nothing, so it cannot --detach.")
        print_trial(config, as_json=as_json)
        return
    if detach:
        start_detached(config, as_json=as_json)
        return
    run_foreground(config, as_json=as_json, run_id=run_id)


def print_trial(config: TrainConfig, *, as_json: bool, steps: int | None = None) -> None:
    """Run :func:`hubmgr.train.runner.trial` for ``config`` and print its prediction (JSON with ``as_json``)."""
    from hubmgr.train.runner import trial
    from hubmgr.train.trial import summary_lines

    if not as_json:
        info("Timing a few training steps on this machine (nothing is written)...")
    report = trial(config, steps=steps)
    if as_json:
        from hubmgr.cli.output import emit_json

        emit_json(report.to_dict())
        return
    for line in summary_lines(report):
        click.echo(line)


def register(cli: click.Group) -> None:
    """Add ``hubmgr train`` to the command group.

    Args:
        cli: the top-level ``hubmgr`` group.
    """
    cli.add_command(train_cmd)


def start_detached(config: TrainConfig, *, as_json: bool, resume: bool = False) -> None:
    """Start (or resume) a run in the background, print its id on stdout and how to follow it on stderr."""
    from hubmgr.runs.live import launch_train, log_path

    run_id, pid, out = launch_train(config, resume=resume)
    if as_json:
        emit_json_line(
            {"kind": "detached", "run_id": run_id, "pid": pid, "output_dir": str(out), "log": str(log_path(run_id))}
        )
        return
    _say(
        f"{'Resumed' if resume else 'Started'} run {run_id} in the background (pid {pid})."
        f" Follow it: hubmgr runs follow {run_id}   Stop it: hubmgr runs stop {run_id}"
    )
    click.echo(run_id)


def run_foreground(config: TrainConfig, *, as_json: bool, run_id: str | None = None) -> None:
    """Train in this process with the live view (or JSON events), then the summary; exit 130 if cancelled."""
    main = _is_main_process()
    renderer = _Renderer(as_json=as_json, quiet=not main)
    cancel = threading.Event()

    from hubmgr.train.runner import train

    old_show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        renderer.start()
        with _Interrupts(cancel, renderer.print):
            result = train(config, on_event=renderer, cancel=cancel, run_id=run_id)
    finally:
        renderer.close()
        warnings.showwarning = old_show

    if not main:
        return
    if as_json:
        from hubmgr.cli.output import to_jsonable

        emit_json_line({"kind": "result", **to_jsonable(result)})
    if result.status == "cancelled":
        if not as_json:
            hint = (
                f" Resume with: {result.resume_command}" if result.resume_command else " No checkpoint was saved yet."
            )
            _say(f"Cancelled at step {result.global_step}.{hint}")
        sys.exit(130)
    if not as_json:
        _summary(result)


def _summary(result: Any) -> None:
    """The end of a completed run, from a TrainResult, a TrainFinished event or a RunRecord."""
    from rich.markup import escape

    metrics = {k: v for k, v in result.metrics.items() if k.startswith("eval_")}
    if result.stop_reason:
        _say(f"Stopped: {escape(result.stop_reason)}.")
    if metrics:
        from hubmgr.metrics import ordered

        names = ordered(metrics, getattr(result, "main_metric", None))
        _say("Final evaluation: " + "  ".join(f"{k[5:]} {_num(metrics[k])}" for k in names))
    for note in result.notes or []:
        _say(f"[yellow]note:[/yellow] {escape(note)}")
    speed = result.metrics.get("train_samples_per_second")
    seconds = getattr(result, "seconds", None) or getattr(result, "duration_seconds", None)
    run_id = getattr(result, "run_id", None) or getattr(result, "id", "")
    took = f"{duration(seconds)}" + (f", {speed:.1f} samples/s" if speed else "")
    _say(f"Done in {took}. Run {run_id} (see `hubmgr runs show {run_id}`).")
    # stdout holds the adapter folder and nothing else: ADAPTER=$(hubmgr train ...) works in scripts
    click.echo(str(getattr(result, "adapter_path", None) or getattr(result, "output_dir", None)))
