"""``hubmgr plugins new | install | uninstall``: the plugin authors' kit on the command line.

These are added to the ``plugins`` group that :mod:`hubmgr.cli.plugin_cmds` registers (``hubmgr plugins``
on its own lists the plugins). The work is done by :mod:`hubmgr.plugin_kit`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hubmgr.cli.output import emit_json
from hubmgr.cli.plugin_cmds import plugins

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.plugin_kit import PluginChanges


def _report(changes: PluginChanges, *, as_json: bool) -> None:
    """Print what an install/uninstall changed, after pip's output (JSON with ``--json``)."""
    if as_json:
        emit_json(changes)
        return

    def say(text: str) -> None:
        click.echo(text)

    for p in changes.plugins_added:
        say(f"Added plugin {p['name']} {p['version'] or ''}".rstrip())
    for p in changes.plugins_changed:
        say(f"Plugin {p['name']}: {p['old_version'] or '?'} -> {p['new_version'] or '?'}")
    for p in changes.plugins_removed:
        say(f"Removed plugin {p['name']} {p['version'] or ''}".rstrip())
    if changes.tasks_added:
        say(f"New task(s): {', '.join(changes.tasks_added)}")
    if changes.tasks_removed:
        say(f"Task(s) no longer available: {', '.join(changes.tasks_removed)}")
    for err in changes.errors:
        say(f"Plugin {err['name']} fails to load: {err['error']}")
    if not changes.changed and not changes.errors:
        if changes.action == "install":
            say(
                "pip finished, but no hubmgr plugin or task was added or changed (a hubmgr plugin declares an"
                " entry point in the 'hubmgr' group)."
            )
        else:
            say("pip finished; no hubmgr plugin or task was removed.")


@click.command("new", short_help="Scaffold a new task plugin package.")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to create the plugin package in.",
)
@click.option(
    "--task-name", default=None, help="Name of the task users type (default: NAME without a 'hubmgr-' prefix)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def new(name: str, parent: Path, task_name: str | None, as_json: bool) -> None:
    """Scaffold a task plugin package NAME/ (e.g. hubmgr-my-task) that installs and passes its tests.

    It holds pyproject.toml with the 'hubmgr' entry point, a working text-regression task built on
    hubmgr's public API, a README and tests that use hubmgr.testing. Edit the task, then:

    \b
        hubmgr plugins install --editable NAME
        cd NAME && python -m pytest
    """
    from hubmgr.plugin_kit import plugin_names, scaffold_plugin

    names = plugin_names(name, task_name=task_name)
    path = scaffold_plugin(name, parent=parent, task_name=names.task)
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    if as_json:
        emit_json(
            {
                "path": str(path),
                "dist": names.dist,
                "package": names.package,
                "task": names.task,
                "entry_point": names.entry_point,
                "class_name": names.class_name,
                "files": files,
            }
        )
        return
    click.echo(f"Created {path}/ (package {names.package}, task {names.task!r}, class {names.class_name})")
    for f in files:
        click.echo(f"  {f}")
    click.echo("Next:")
    click.echo(f"  hubmgr plugins install --editable {path}")
    click.echo(f"  cd {path} && {Path(sys.executable).name} -m pytest")


@click.command("install", short_help="Install a plugin into hubmgr's environment (pip).")
@click.argument("target", metavar="NAME|PATH")
@click.option("-e", "--editable", is_flag=True, help="Install a project folder in editable (development) mode.")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade the plugin if it is already installed.")
@click.option("--no-deps", is_flag=True, help="Do not install the plugin's dependencies (offline installs).")
@click.option(
    "--no-build-isolation",
    is_flag=True,
    help="Build with the packages already installed instead of fetching build tools (offline installs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON (pip's output goes to stderr).")
def install(target: str, editable: bool, upgrade: bool, no_deps: bool, no_build_isolation: bool, as_json: bool) -> None:
    """Install a plugin with pip into hubmgr's own environment, then show what it added.

    NAME is a package on the index (hubmgr-foo, 'hubmgr-foo>=1.2') or a URL (git+https://...); PATH a
    project folder, wheel or sdist. pip runs with the interpreter hubmgr runs on, so a hubmgr installed with pipx or uv tool
    gets the plugin in the right place.
    """
    from hubmgr.plugin_kit import install_plugin

    changes = install_plugin(
        target,
        editable=editable,
        upgrade=upgrade,
        no_deps=no_deps,
        no_build_isolation=no_build_isolation,
        echo=lambda line: click.echo(line, err=as_json),
    )
    _report(changes, as_json=as_json)


@click.command("uninstall", short_help="Uninstall a plugin from hubmgr's environment.")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON (pip's output goes to stderr).")
def uninstall(name: str, yes: bool, as_json: bool) -> None:
    """Uninstall a plugin package (by package name or plugin name) from hubmgr's environment."""
    from hubmgr.plugin_kit import find_plugin_distribution, uninstall_plugin

    dist = find_plugin_distribution(name)
    if not yes:
        click.confirm(
            f"Uninstall {dist.name} {dist.version} (plugins: {', '.join(dist.entry_points)})?",
            abort=True,
            err=True,
        )
    changes = uninstall_plugin(dist.name, echo=lambda line: click.echo(line, err=as_json))
    _report(changes, as_json=as_json)


def register(cli: click.Group) -> None:
    """Add ``new``, ``install`` and ``uninstall`` to the ``plugins`` group.

    Args:
        cli: the top-level ``hubmgr`` group.
    """
    for command in (new, install, uninstall):
        plugins.add_command(command)
