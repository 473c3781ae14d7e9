"""``hubmgr download | ls | rm | verify | prune``: getting models into the shared cache and managing it.

The work is done by :mod:`hubmgr.hub.download` and :mod:`hubmgr.hub.cache`, imported inside the
commands so that ``hubmgr --help`` stays light.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click

from hubmgr.cli.output import emit_json, human_bytes, info, print_table
from hubmgr.errors import IntegrityError, UsageError

_DATE_FMT = "%Y-%m-%d %H:%M"


def _when(value) -> str:
    if value is None:
        return "-"
    try:
        return value.astimezone().strftime(_DATE_FMT)
    except (AttributeError, ValueError, OSError):
        return str(value)


def _confirm(question: str, *, yes: bool) -> bool:
    """Ask before deleting. Without a terminal and without an answer on stdin, refuse.

    Returns:
        True to go on.

    Raises:
        UsageError: nobody can be asked (stdin is not a terminal and gives no answer).
    """
    if yes:
        return True
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        return click.confirm(question, default=False, err=True)
    line = ""
    try:
        line = stdin.readline() if stdin is not None else ""
    except (OSError, ValueError):
        line = ""
    if not line.strip():
        raise UsageError("Nothing to confirm with (stdin is not a terminal): pass --yes to delete without asking.")
    click.echo(f"{question} [y/N]: {line.strip()}", err=True)
    return line.strip().lower() in ("y", "yes")


# --- download rendering ----------------------------------------------------------------------------
class _PlainRenderer:
    """One line per file on stderr (piped output)."""

    def __init__(self) -> None:
        self.last_total = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, event) -> None:
        from hubmgr.hub import events as ev

        if isinstance(event, ev.DownloadStarted):
            cached = f", {human_bytes(event.bytes_cached)} already cached" if event.bytes_cached else ""
            info(f"Downloading {event.repo_id} at {event.revision} ({event.commit[:12]}): "
                 f"{event.total_files} files, {human_bytes(event.total_bytes)}{cached}")
        elif isinstance(event, ev.FileStarted):
            resumed = f", resuming at {human_bytes(event.resumed_from)}" if event.resumed_from else ""
            info(f"  get  {event.path} ({human_bytes(event.size)}{resumed})")
        elif isinstance(event, ev.FileDone):
            info(f"  {'have' if event.cached else 'done'} {event.path} ({human_bytes(event.size)})")
        elif isinstance(event, ev.DownloadProgress):
            now = time.monotonic()
            if now - self.last_total >= 5.0 and event.done_bytes < event.total_bytes:
                self.last_total = now
                eta = f", ETA {event.eta:.0f} s" if event.eta is not None else ""
                info(f"  {human_bytes(event.done_bytes)} / {human_bytes(event.total_bytes)} "
                     f"at {human_bytes(event.speed)}/s{eta}")
        elif isinstance(event, ev.DownloadFinished):
            info(f"Finished in {event.seconds:.1f} s, {human_bytes(event.transferred_bytes)} transferred.")


class _RichRenderer:
    """A total bar and one bar per file in flight (a terminal)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from hubmgr.cli.output import err_console

        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=30),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console(),
            transient=False,
        )
        self.total_task = None
        self.files: dict[str, Any] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, event) -> None:
        from rich.markup import escape

        from hubmgr.hub import events as ev

        p = self.progress
        if isinstance(event, ev.DownloadStarted):
            self.total_task = p.add_task(
                f"[bold]{escape(event.repo_id)}[/bold] ({event.total_files} files)",
                total=event.total_bytes or 1, completed=0,
            )
        elif isinstance(event, ev.FileStarted):
            name = event.path if len(event.path) <= 40 else "..." + event.path[-37:]
            self.files[event.path] = p.add_task(f"  {escape(name)}", total=event.size or 1,
                                                completed=event.resumed_from)
        elif isinstance(event, ev.FileProgress):
            task = self.files.get(event.path)
            if task is not None:
                p.update(task, completed=event.done)
        elif isinstance(event, ev.FileDone):
            task = self.files.pop(event.path, None)
            if task is not None:
                p.remove_task(task)
        elif isinstance(event, ev.DownloadProgress):
            if self.total_task is not None:
                p.update(self.total_task, completed=event.done_bytes, total=event.total_bytes or 1)


def register(cli: click.Group) -> None:
    """Add ``download``, ``ls``, ``rm``, ``verify`` and ``prune`` to the group.

    Args:
        cli: the top-level ``hubmgr`` group.
    """

    @cli.command()
    @click.argument("repo")
    @click.option("--revision", "-r", default=None, help="Branch, tag or commit (default: main).")
    @click.option("--include", "-i", multiple=True, metavar="GLOB", help="Download only matching files (repeatable).")
    @click.option("--exclude", "-x", multiple=True, metavar="GLOB", help="Skip matching files (repeatable).")
    @click.option("--allow-pickle", is_flag=True, help="Also download pickle weights (.bin .pt .pth .pkl .ckpt).")
    @click.option("--workers", "-w", default=8, show_default=True, type=click.IntRange(1, 64),
                  help="Files downloaded in parallel.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def download(repo: str, revision: str | None, include: tuple[str, ...], exclude: tuple[str, ...],
                 allow_pickle: bool, workers: int, as_json: bool) -> None:
        """Download REPO into the shared Hugging Face cache (resumes an interrupted download).

        Prints the snapshot folder at the end; transformers and `hf` see the same files.
        """
        from hubmgr.hub.download import DownloadCancelled, download_repo

        cancel = threading.Event()
        if as_json:
            renderer: Any = None
        elif sys.stderr.isatty():
            renderer = _RichRenderer()
        else:
            renderer = _PlainRenderer()
        try:
            if renderer is None:
                result = download_repo(repo, revision=revision, include=list(include) or None,
                                       exclude=list(exclude) or None, allow_pickle=allow_pickle,
                                       max_workers=workers, cancel=cancel)
            else:
                with renderer:
                    result = download_repo(repo, revision=revision, include=list(include) or None,
                                           exclude=list(exclude) or None, allow_pickle=allow_pickle,
                                           max_workers=workers, on_event=renderer, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            raise DownloadCancelled("Download cancelled; run it again to resume.") from None
        if as_json:
            emit_json(result)
            return
        for path in result.skipped:
            info(f"skipped {path}: {result.skip_reasons.get(path, '')}")
        if result.from_cache:
            info(f"{result.repo_id} is in the cache (the Hub was not asked).")
        click.echo(str(result.path))

    @cli.command(name="ls")
    @click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
    def ls_cmd(as_json: bool) -> None:
        """List the models in the shared cache: revisions, size on disk, last use."""
        from hubmgr.hub.cache import list_cached

        repos = list_cached()
        if as_json:
            emit_json(repos)
            return
        if not repos:
            info("The cache is empty.")
            return
        rows = []
        for repo in repos:
            revs = []
            for rev in repo.revisions:
                label = ",".join(rev.refs) if rev.refs else "detached"
                revs.append(f"{label}@{rev.commit[:7]}")
            name = repo.repo_id if repo.repo_type == "model" else f"{repo.repo_type}/{repo.repo_id}"
            rows.append([name, " ".join(revs), human_bytes(repo.size_on_disk), _when(repo.last_accessed),
                         _when(repo.last_modified)])
        print_table(["REPO", "REVISIONS", "SIZE", "LAST USED", "MODIFIED"], rows,
                    justify={"SIZE": "right"})

    @cli.command(name="rm")
    @click.argument("repo")
    @click.option("--revision", "-r", default=None, metavar="SHA",
                  help="Delete only this revision (commit, prefix or ref); blobs other revisions use are kept.")
    @click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--json", "as_json", is_flag=True, help="Print what was freed as JSON.")
    def rm_cmd(repo: str, revision: str | None, yes: bool, as_json: bool) -> None:
        """Delete REPO (or one revision of it) from the shared cache."""
        from hubmgr.hub import cache

        cached = {r.repo_id: r for r in cache.list_cached()}
        target = cached.get(repo)
        if target is None:
            from hubmgr.errors import NotCachedError

            raise NotCachedError(f"{repo} is not in the cache.")
        if revision:
            rev = next((r for r in target.revisions if revision in r.refs or r.commit.startswith(revision)), None)
            if rev is None:
                from hubmgr.errors import NotCachedError

                raise NotCachedError(f"Revision '{revision}' of {repo} is not in the cache.")
            what = f"revision {rev.commit[:12]} of {repo}"
        else:
            what = f"{repo} ({len(target.revisions)} revision(s), {human_bytes(target.size_on_disk)})"
        if not _confirm(f"Delete {what}?", yes=yes):
            info("Nothing deleted.")
            sys.exit(1)
        if revision:
            freed = cache.delete_revision(repo, revision)
        else:
            freed = cache.delete_repo(repo)
        if as_json:
            emit_json({"repo_id": repo, "revision": revision, "freed_bytes": freed})
            return
        info(f"Deleted {what}: freed {human_bytes(freed)}.")

    @cli.command(name="verify")
    @click.argument("repo", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print every file's result as JSON.")
    def verify_cmd(repo: str | None, as_json: bool) -> None:
        """Re-hash cached files (one REPO or the whole cache); exit non-zero when one does not match."""
        from hubmgr.hub.cache import verify

        status = None
        if not as_json and sys.stderr.isatty():
            from hubmgr.cli.output import err_console

            status = err_console().status("Verifying...")
            status.start()

        def on_event(event) -> None:
            if status is not None:
                status.update(f"Verifying {event.repo_id}/{event.path}")
            elif not as_json and not event.ok:
                info(f"FAILED {event.repo_id} {event.path}: {event.detail}")

        try:
            results = verify(repo, on_event=on_event)
        finally:
            if status is not None:
                status.stop()
        failed = [r for r in results if not r.ok]
        if as_json:
            emit_json({"ok": not failed, "checked": len(results), "failed": len(failed), "files": results})
            if failed:
                sys.exit(IntegrityError.exit_code)  # (ctx.exit's code is lost with standalone_mode=False)
            return
        if failed:
            print_table(["REPO", "COMMIT", "FILE", "PROBLEM"],
                        [[r.repo_id, r.commit[:12], r.path, r.detail] for r in failed])
            raise IntegrityError(
                f"{len(failed)} of {len(results)} cached file(s) failed verification; "
                "delete the repo (`hubmgr rm REPO`) and download it again."
            )
        if not results:
            info("Nothing to verify: the cache is empty." if repo is None else f"{repo} has no cached files.")
            return
        info(f"All {len(results)} cached file(s) verified.")

    @cli.command(name="prune")
    @click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
    @click.option("--json", "as_json", is_flag=True, help="Print what was (or would be) deleted as JSON.")
    def prune_cmd(yes: bool, dry_run: bool, as_json: bool) -> None:
        """Delete cached revisions that no branch or tag points to."""
        from hubmgr.hub.cache import prune_detailed

        size, pairs = prune_detailed(dry_run=True)
        if not pairs:
            if as_json:
                emit_json({"deleted": [], "freed_bytes": 0, "dry_run": dry_run})
            else:
                info("Nothing to prune: every cached revision has a ref.")
            return
        listing = [{"repo_id": r, "commit": c} for r, c in pairs]
        if dry_run:
            if as_json:
                emit_json({"deleted": listing, "freed_bytes": size, "dry_run": True})
            else:
                for r, c in pairs:
                    info(f"would delete {r} {c[:12]}")
                info(f"Would free {human_bytes(size)}.")
            return
        if not _confirm(f"Delete {len(pairs)} detached revision(s), freeing {human_bytes(size)}?", yes=yes):
            info("Nothing deleted.")
            sys.exit(1)
        freed, pairs = prune_detailed()
        if as_json:
            emit_json({"deleted": [{"repo_id": r, "commit": c} for r, c in pairs], "freed_bytes": freed,
                       "dry_run": False})
            return
        for r, c in pairs:
            info(f"deleted {r} {c[:12]}")
        info(f"Freed {human_bytes(freed)}.")
