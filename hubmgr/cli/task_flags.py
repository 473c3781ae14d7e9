"""A task's own options as flags of ``train``, ``eval`` and ``predict`` (``--text-column sentence``,
``--threshold 0.3``), and listed by ``hubmgr train TASK --help`` / ``hubmgr eval TASK --help``.

The options come from the task's options dataclass (:func:`hubmgr.fields.field_specs`), the same
definition as ``-o KEY=VALUE``, TOML ``[options]`` and the TUI form. Nothing heavy is imported here.
"""

from __future__ import annotations

from typing import Any

import click

from hubmgr.errors import UsageError
from hubmgr.fields import field_specs, parse_field_value


_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "list": "A,B,...", "path": "PATH"}


def _specs(task_name: str | None) -> tuple[str, dict[str, Any]]:
    """The task's display name and ``{option name: FieldSpec}`` (empty without a task)."""
    if not task_name:
        return "?", {}
    from hubmgr.plugins import get_task

    task = get_task(task_name)
    cls = task.options_class
    return task.name, ({s.name: s for s in field_specs(cls)} if hasattr(cls, "__dataclass_fields__") else {})


def parse_task_flags(task_name: str | None, extra: list[str], *, command: str) -> dict[str, Any]:
    """Parse leftover ``--name value`` / ``--name=value`` / ``--flag`` / ``--no-flag`` arguments as the
    options of the task ``task_name``, typed by its options dataclass.

    Raises:
        UsageError: a stray argument, an option the task does not have (naming the ones it has), or a
            missing value.
    """
    if not extra:
        return {}
    label, specs = _specs(task_name)
    known = ", ".join("--" + n.replace("_", "-") for n in specs) or "none"
    values: dict[str, Any] = {}
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--") or arg == "--":
            raise UsageError(f"Unexpected argument {arg!r} (see `hubmgr {command} --help`).")
        name, eq, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        negated = False
        if key not in specs and key.startswith("no_") and key[3:] in specs and specs[key[3:]].kind == "bool":
            key, negated = key[3:], True
        spec = specs.get(key)
        if spec is None:
            raise UsageError(
                f"Unknown option --{name} (see `hubmgr {command} --help`); options of task {label!r}: {known}."
            )
        if spec.kind == "bool" and not eq:
            values[key] = not negated
            i += 1
            continue
        if not eq:
            if i + 1 >= len(extra):
                raise UsageError(f"Option --{name} needs a value.")
            value = extra[i + 1]
            i += 1
        values[key] = parse_field_value(spec, value) if spec.kind != "str" else value
        i += 1
    return values


def adapters_task(refs: list[str] | tuple[str, ...]) -> str | None:
    """The task the first of these adapters was trained for, from its run record (None if unknown)."""
    from hubmgr.eval.adapters import read_adapter_info, resolve_adapter_ref

    for ref in refs or []:
        try:
            folder, reg_id = resolve_adapter_ref(ref)
            task = read_adapter_info(folder, name=reg_id or str(ref)).task
        except Exception:  # noqa: BLE001 - the command itself reports a bad adapter with one clear line
            continue
        if task:
            return str(task)
    return None


class TaskOptionsCommand(click.Command):
    """A command that takes the task's options as flags (``--text-column sentence``) beside its own, and
    lists them in ``--help`` when the command line names a task (``hubmgr train text-classification
    --help``) or, with ``task_from_adapter``, an adapter whose run record names one (``hubmgr predict
    ADAPTER --help``).

    Before click parses, every ``--name`` that is not one of the command's own options is taken out (with
    its value) into ``ctx.meta["hubmgr_task_args"]``, for :func:`parse_task_flags` once the task is known:
    so a task flag never becomes a positional argument, and a bad one gets hubmgr's one-line message.
    """

    task_from_adapter = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        task = _named_task(args)
        if task is None and self.task_from_adapter:
            positional = [a for a in args if a and not a.startswith("-")]
            task = adapters_task(positional[:1]) if positional else None
        ctx.meta["hubmgr_task"] = task
        try:
            specs = _specs(task)[1] if task else {}
        except Exception:  # noqa: BLE001 - an unknown task is reported by the command itself
            specs = {}
        rest, extra = self._split(ctx, args, specs)
        ctx.meta["hubmgr_task_args"] = extra
        return super().parse_args(ctx, rest)

    def _split(self, ctx: click.Context, args: list[str], specs: dict[str, Any]) -> tuple[list[str], list[str]]:
        own: dict[str, bool] = {}  # option string -> takes a value
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                for opt in [*param.opts, *param.secondary_opts]:
                    own[opt] = not (param.is_flag or param.count)
        rest: list[str] = []
        extra: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                rest += args[i:]
                break
            name = arg.partition("=")[0]
            if not arg.startswith("--") or name in own:
                rest.append(arg)
                if name in own and own[name] and "=" not in arg and i + 1 < len(args):
                    rest.append(args[i + 1])  # the option's value, whatever it looks like
                    i += 1
                i += 1
                continue
            extra.append(arg)
            key = name[2:].replace("-", "_")
            spec = specs.get(key)
            takes_value = spec.kind != "bool" if spec is not None else not (key.startswith("no_") and key[3:] in specs)
            if takes_value and "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("-"):
                extra.append(args[i + 1])
                i += 1
            i += 1
        return rest, extra

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        task_name = ctx.meta.get("hubmgr_task")
        if not task_name:
            formatter.write_paragraph()
            where = "ADAPTER" if self.task_from_adapter else "a task"
            formatter.write_text(
                f"Give {where} before --help to list the task's options here; `hubmgr tasks`"
                " lists every task's options."
            )
            return
        try:
            label, specs = _specs(task_name)
        except Exception:  # noqa: BLE001 - help never fails
            return
        rows = []
        for spec in specs.values():
            flag = "--" + spec.name.replace("_", "-")
            if spec.kind == "bool":
                flag = f"{flag} / --no-{spec.name.replace('_', '-')}"
            else:
                flag += " " + ("|".join(spec.choices) if spec.choices else _METAVARS.get(spec.kind, spec.kind.upper()))
            default = "" if spec.default in (None, "", [], ()) else f" [default: {spec.default}]"
            rows.append((flag, f"{spec.help}{default}"))
        with formatter.section(f"Options of task {label!r} (also as -o KEY=VALUE)"):
            if rows:
                formatter.write_dl(rows)
            else:
                formatter.write_text("This task has no options.")


def _named_task(args: list[str]) -> str | None:
    """The first argument that is the name of a registered task, if any."""
    candidates = [a for a in args if a and not a.startswith("-")]
    if not candidates:
        return None
    try:
        from hubmgr.plugins import get_tasks, normalize_task_name

        names = {normalize_task_name(n): n for n in get_tasks()}
    except Exception:  # noqa: BLE001 - help never fails
        return None
    for arg in candidates:
        if normalize_task_name(arg) in names:
            return names[normalize_task_name(arg)]
    return None


class AdapterTaskOptionsCommand(TaskOptionsCommand):
    """:class:`TaskOptionsCommand` whose task comes from the ADAPTER argument's run record."""

    task_from_adapter = True
