"""``hubmgr plugins`` (a group: lists plugins with no subcommand, and ``plugins list``) and ``hubmgr tasks``."""

from __future__ import annotations

import json

import click

from hubmgr.cli.output import emit_json, print_table


def _show_plugins(as_json: bool) -> None:
    from hubmgr.plugins import list_plugins

    plugins = list_plugins()
    if as_json:
        emit_json(plugins)
        return
    if not plugins:
        click.echo("No plugins are loaded (HUBMGR_LOAD_PLUGINS may exclude them).", err=True)
        return
    print_table(
        ("name", "version", "hooks", "tasks", "error"),
        [(p.name, p.version or "-", ", ".join(p.hooks), ", ".join(p.tasks), p.error or "") for p in plugins],
        title="Plugins",
    )


def _show_tasks(as_json: bool) -> None:
    from hubmgr.plugins import describe_task, get_tasks

    infos = [describe_task(cls) for cls in get_tasks().values()]
    if as_json:
        emit_json(infos)
        return
    if not infos:
        click.echo("No tasks are registered (see `hubmgr plugins`).", err=True)
        return
    print_table(
        ("task", "description", "pipeline tags", "metric"),
        [(t.name, t.description, ", ".join(t.pipeline_tags), t.main_metric) for t in infos],
        title="Tasks",
    )
    rows = [(t.name, o.name, o.type, json.dumps(o.default), o.help) for t in infos for o in t.options]
    if rows:  # one table with the task in each row, so piped output still says whose option it is
        print_table(("task", "option", "type", "default", "help"), rows, title="Task options (-o name=value)")


@click.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins: name, version, hooks, tasks and any error."""
    if ctx.invoked_subcommand is None:
        _show_plugins(as_json)


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_list(as_json: bool) -> None:
    """List installed plugins: name, version, hooks, tasks and any error."""
    _show_plugins(as_json)


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks(as_json: bool) -> None:
    """List the tasks plugins provide, with their options (type, default, help)."""
    _show_tasks(as_json)


def register(cli: click.Group) -> None:
    """Add ``plugins`` and ``tasks`` to the ``hubmgr`` group."""
    for command in (plugins, tasks):
        cli.add_command(command)
