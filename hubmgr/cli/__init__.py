"""The ``hubmgr`` command line: one click group; command modules register on it; plugins last.

Importing this module must stay light: no torch, transformers, peft or datasets (they load inside the
commands that train or evaluate).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from hubmgr.errors import HubmgrError, disk_full_from

# Modules that add commands to the group; each defines ``register(cli)``.
_COMMAND_MODULES = (
    "hubmgr.cli.hub_cmds",
    "hubmgr.cli.cache_cmds",
    "hubmgr.cli.plugin_cmds",
    "hubmgr.cli.train_cmds",
    "hubmgr.cli.run_cmds",
    "hubmgr.cli.live_cmds",  # after run_cmds: adds `runs follow/stop/resume`
    "hubmgr.cli.kit_cmds",  # after plugin_cmds: adds `plugins new/install/uninstall`
)


class HubmgrGroup(click.Group):
    """A click group that turns every user-caused error into one line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,  # accepted for click's signature; this group always handles errors itself
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            # with standalone_mode=False click returns the code of ctx.exit(code) instead of raising it
            if isinstance(rv, int) and rv != 0:
                sys.exit(rv)
            return rv
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except HubmgrError as exc:
            if os.environ.get("HUBMGR_DEBUG") and exc.__cause__ is not None:  # e.g. what a plugin raised
                traceback.print_exception(exc.__cause__)
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except OSError as exc:
            full = disk_full_from(exc, getattr(exc, "filename", None) or "files")
            if full is not None:
                click.echo(f"error: {full}", err=True)
                sys.exit(full.exit_code)
            _internal(exc)
        except Exception as exc:  # a bug: one line, traceback only on request
            _internal(exc)


def _internal(exc: BaseException) -> None:
    if os.environ.get("HUBMGR_DEBUG"):
        traceback.print_exc()
    click.echo(
        f"error: unexpected {type(exc).__name__}: {exc} (set HUBMGR_DEBUG=1 for the traceback)",
        err=True,
    )
    sys.exit(1)


@click.group(cls=HubmgrGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hubmgr")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """hubmgr: browse the Hugging Face Hub, download models, fine-tune them with LoRA, evaluate.

    With no command, opens the terminal UI (same as `hubmgr tui`).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui)


@cli.command()
def tui() -> None:
    """Open the terminal UI."""
    from hubmgr.tui.app import run_app

    run_app()


def _register_all() -> None:
    import importlib

    from hubmgr.plugins import register_plugin_commands

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(cli)
    register_plugin_commands(cli)


_register_all()


def main() -> None:
    cli.main(prog_name="hubmgr")
