"""``hubmgr download | ls | rm | verify | prune``: getting models into the shared cache and managing it.

The work is done by :mod:`hubmgr.hub.download` and :mod:`hubmgr.hub.cache`, imported inside the
commands so that ``hubmgr --help`` stays light.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

import click

from hubmgr.cli.output import emit_json, human_bytes, info, print_table
from hubmgr.errors import IntegrityError, UsageError
from hubmgr.hub.files import PICKLE_SUFFIXES

if TYPE_CHECKING:
    from rich.progress import TaskID

    from hubmgr.hub.cache import PruneResult, VerifyResult
    from hubmgr.hub.events import DownloadRetry, HubEvent, VerifyProgress

_DATE_FMT = "%Y-%m-%d %H:%M"


def _progress_interval() -> float:
    """Seconds between two progress lines when stderr is not a terminal (``HUBMGR_PROGRESS_INTERVAL``)."""
    try:
        value = float(os.environ.get("HUBMGR_PROGRESS_INTERVAL", ""))
    except ValueError:
        return 5.0
    return value if value > 0 else 5.0


def _retry_line(event: DownloadRetry) -> str:
    what = event.path or "the file listing"
    wait = f"trying again in {event.wait:.0f} s" if event.wait >= 1 else "trying again"
    return f"  retry {what}: {event.reason}; {wait} ({event.attempt} of {event.max_attempts})"


def _when(value: datetime | None) -> str:
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
class _RetryRenderer:
    """Only the retry lines, on stderr (``--json``: stdout carries the result)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: HubEvent) -> None:
        from hubmgr.hub import events as ev

        if isinstance(event, ev.DownloadRetry):
            info(_retry_line(event))


class _PlainRenderer:
    """One line per file on stderr (piped output), a retry line for each retry, and the totals every
    :func:`_progress_interval` seconds, stalled or not, so a log shows the download is alive."""

    def __init__(self) -> None:
        self.last_total = time.monotonic()
        self.interval = _progress_interval()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: HubEvent) -> None:
        from hubmgr.hub import events as ev

        if isinstance(event, ev.DownloadStarted):
            cached = f", {human_bytes(event.bytes_cached)} already cached" if event.bytes_cached else ""
            info(
                f"Downloading {event.repo_id} at {event.revision} ({event.commit[:12]}): "
                f"{event.total_files} files, {human_bytes(event.total_bytes)}{cached}"
            )
        elif isinstance(event, ev.FileStarted):
            resumed = f", resuming at {human_bytes(event.resumed_from)}" if event.resumed_from else ""
            info(f"  get  {event.path} ({human_bytes(event.size)}{resumed})")
        elif isinstance(event, ev.FileDone):
            info(f"  {'have' if event.cached else 'done'} {event.path} ({human_bytes(event.size)})")
        elif isinstance(event, ev.DownloadRetry):
            info(_retry_line(event))
        elif isinstance(event, ev.DownloadProgress):
            now = time.monotonic()
            if now - self.last_total >= self.interval and event.done_bytes < event.total_bytes:
                self.last_total = now
                eta = f", ETA {event.eta:.0f} s" if event.eta is not None else ""
                stalled = f", no data for {event.stalled_for:.0f} s" if event.stalled_for else ""
                info(
                    f"  {human_bytes(event.done_bytes)} / {human_bytes(event.total_bytes)} "
                    f"at {human_bytes(event.speed)}/s{eta}{stalled}"
                )
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
        self.total_task: TaskID | None = None
        self.files: dict[str, TaskID] = {}

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: HubEvent) -> None:
        from rich.markup import escape

        from hubmgr.hub import events as ev

        p = self.progress
        if isinstance(event, ev.DownloadStarted):
            self.total_task = p.add_task(
                f"[bold]{escape(event.repo_id)}[/bold] ({event.total_files} files)",
                total=event.total_bytes or 1,
                completed=0,
            )
        elif isinstance(event, ev.FileStarted):
            name = event.path if len(event.path) <= 40 else "..." + event.path[-37:]
            self.files[event.path] = p.add_task(
                f"  {escape(name)}", total=event.size or 1, completed=event.resumed_from
            )
        elif isinstance(event, ev.FileProgress):
            task = self.files.get(event.path)
            if task is not None:
                p.update(task, completed=event.done)
        elif isinstance(event, ev.FileDone):
            task = self.files.pop(event.path, None)
            if task is not None:
                p.remove_task(task)
        elif isinstance(event, ev.DownloadRetry):
            p.console.print(escape(_retry_line(event)), highlight=False)
        elif isinstance(event, ev.DownloadProgress):
            if self.total_task is not None:
                p.update(self.total_task, completed=event.done_bytes, total=event.total_bytes or 1)


def _download_renderer(as_json: bool) -> "_RetryRenderer | _RichRenderer | _PlainRenderer":
    """How a download shows: with --json only its retries (on stderr; stdout is the JSON), else a live
    view on a terminal or plain lines."""
    if as_json:
        return _RetryRenderer()
    if sys.stderr.isatty():
        return _RichRenderer()
    return _PlainRenderer()


@click.command()
@click.argument("repo")
@click.option("--revision", "-r", default=None, help="Branch, tag or commit (default: main).")
@click.option("--include", "-i", multiple=True, metavar="GLOB", help="Download only matching files (repeatable).")
@click.option("--exclude", "-x", multiple=True, metavar="GLOB", help="Skip matching files (repeatable).")
@click.option("--allow-pickle", is_flag=True, help=f"Also download pickle weights ({' '.join(PICKLE_SUFFIXES)}).")
@click.option(
    "--workers", "-w", default=8, show_default=True, type=click.IntRange(1, 64), help="Files downloaded in parallel."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def download(
    repo: str,
    revision: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    allow_pickle: bool,
    workers: int,
    as_json: bool,
) -> None:
    """Download REPO into the shared Hugging Face cache (resumes an interrupted download).

    Prints the snapshot folder at the end; transformers and `hf` see the same files.
    """
    from hubmgr.hub.download import DownloadCancelled, download_repo

    cancel = threading.Event()
    renderer = _download_renderer(as_json)
    try:
        with renderer:
            result = download_repo(
                repo,
                revision=revision,
                include=list(include) or None,
                exclude=list(exclude) or None,
                allow_pickle=allow_pickle,
                max_workers=workers,
                on_event=renderer,
                cancel=cancel,
            )
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


@click.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def ls_cmd(as_json: bool) -> None:
    """List the models in the shared cache: revisions (incomplete ones marked), size on disk, partial
    downloads, last use."""
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
            text = f"{label}@{rev.commit[:7]}"
            if not rev.complete:
                text += (
                    f" (incomplete: {len(rev.missing_files)} file(s), {human_bytes(rev.missing_bytes)} "
                    f"missing, {human_bytes(rev.resumable_bytes)} resumable)"
                )
            revs.append(text)
        if repo.downloading:
            revs.append("(a download is running)")
        name = repo.repo_id if repo.repo_type == "model" else f"{repo.repo_type}/{repo.repo_id}"
        partial = human_bytes(repo.partial_bytes) if repo.partial_bytes else "-"
        rows.append(
            [
                name,
                " ".join(revs) or "-",
                human_bytes(repo.size_on_disk),
                partial,
                _when(repo.last_accessed),
                _when(repo.last_modified),
            ]
        )
    print_table(
        ["REPO", "REVISIONS", "SIZE", "PARTIAL", "LAST USED", "MODIFIED"],
        rows,
        justify={"SIZE": "right", "PARTIAL": "right"},
    )
    if any(not rev.complete for repo in repos for rev in repo.revisions):
        info(
            "An incomplete revision lacks files its download was asked for: `hubmgr download REPO "
            "--revision COMMIT` finishes it (resuming partial files); `hubmgr verify REPO` lists them."
        )


@click.command(name="rm")
@click.argument("repo")
@click.option(
    "--revision",
    "-r",
    default=None,
    metavar="SHA",
    help="Delete only this revision (commit, prefix or ref); blobs other revisions use are kept.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print what was freed as JSON.")
def rm_cmd(repo: str, revision: str | None, yes: bool, as_json: bool) -> None:
    """Delete REPO (or one revision of it) from the shared cache."""
    from hubmgr.hub import cache

    cached = {(r.repo_id if r.repo_type == "model" else f"{r.repo_type}/{r.repo_id}"): r for r in cache.list_cached()}
    target = cached.get(repo)
    if target is None:
        from hubmgr.errors import NotCachedError

        raise NotCachedError(f"{repo} is not in the cache.")
    if target.downloading:
        from hubmgr.errors import CacheError

        raise CacheError(
            f"{repo} is being downloaded right now; wait for the download to end or cancel it, "
            "then try again. Nothing was deleted."
        )
    if revision:
        rev = next((r for r in target.revisions if revision in r.refs or r.commit.startswith(revision)), None)
        if rev is None:
            from hubmgr.errors import NotCachedError

            raise NotCachedError(f"Revision '{revision}' of {repo} is not in the cache.")
        what = f"revision {rev.commit[:12]} of {repo}"
    else:
        partial = f", {human_bytes(target.partial_bytes)} of partial downloads" if target.partial_bytes else ""
        what = f"{repo} ({len(target.revisions)} revision(s), {human_bytes(target.size_on_disk)}{partial})"
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


@click.command(name="verify")
@click.argument("repo", required=False)
@click.option(
    "--repair",
    is_flag=True,
    help="Download the damaged or missing files again after verifying (needs the Hub; exactly those files, "
    "checked against the Hub's checksums); exit non-zero when damage remains.",
)
@click.option("--json", "as_json", is_flag=True, help="Print every file's result as JSON.")
def verify_cmd(repo: str | None, repair: bool, as_json: bool) -> None:
    """Re-hash cached files (one REPO or the whole cache) and check each snapshot against its revision's
    file list; exit non-zero when a file does not match or is missing.

    With --repair, the damaged files are removed and downloaded again (a blob that other files share is
    fetched once, for all of them); nothing is removed when the Hub cannot be reached.
    """
    from hubmgr.hub.cache import verify

    status = None
    if not as_json and sys.stderr.isatty():
        from hubmgr.cli.output import err_console

        status = err_console().status("Verifying...")
        status.start()

    def on_event(event: VerifyProgress) -> None:
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
    missing = [r for r in failed if r.missing]
    if repair and failed:
        _verify_repair(results, failed, as_json=as_json)
        return
    if as_json:
        emit_json(
            {
                "ok": not failed,
                "checked": len(results),
                "failed": len(failed),
                "missing": len(missing),
                "files": results,
            }
        )
        if failed:
            sys.exit(IntegrityError.exit_code)  # (ctx.exit's code is lost with standalone_mode=False)
        return
    if failed:
        print_table(
            ["REPO", "COMMIT", "FILE", "PROBLEM"], [[r.repo_id, r.commit[:12], r.path, r.detail] for r in failed]
        )
        if missing:
            names = ", ".join(sorted({r.path for r in missing})[:3])
            more = len({r.path for r in missing}) - 3
            names += f" and {more} more" if more > 0 else ""
            bad = len(failed) - len(missing)
            mismatch = f"; {bad} other file(s) failed verification" if bad else ""
            raise IntegrityError(
                f"{len(missing)} file(s) of the revision are missing from the cache ({names}){mismatch}; "
                f"run `hubmgr download {repo or 'REPO'}` to fetch them (it resumes partial files)."
            )
        raise IntegrityError(
            f"{len(failed)} of {len(results)} cached file(s) failed verification; "
            f"`hubmgr verify {repo or 'REPO'} --repair` downloads them again."
        )
    if not results:
        info("Nothing to verify: the cache is empty." if repo is None else f"{repo} has no cached files.")
        return
    info(f"All {len(results)} cached file(s) verified.")


def _verify_repair(results: list[VerifyResult], failed: list[VerifyResult], *, as_json: bool) -> None:
    """``verify --repair`` after a verify that found damage: repair each repo, then say what remains."""
    from hubmgr.errors import HubmgrError, HubUnreachableError
    from hubmgr.hub.cache import repair

    by_repo: dict[str, list[VerifyResult]] = {}
    for r in failed:
        by_repo.setdefault(r.repo_id, []).append(r)
    if not as_json:
        print_table(
            ["REPO", "COMMIT", "FILE", "PROBLEM"], [[r.repo_id, r.commit[:12], r.path, r.detail] for r in failed]
        )
    repaired: list[VerifyResult] = []
    remaining: list[VerifyResult] = []
    for repo_id, damaged in by_repo.items():
        renderer = _download_renderer(as_json)
        try:
            with renderer:
                outcome = repair(repo_id, damaged, on_event=renderer)
        except HubUnreachableError:
            raise  # nothing was removed; no other repo can be repaired either
        except HubmgrError as exc:
            if not as_json:
                info(f"could not repair {repo_id}: {exc}")
            remaining += damaged
            continue
        repaired += outcome.results
        remaining += outcome.plan.unrepairable + [r for r in outcome.results if not r.ok]
        if not as_json:
            for r in outcome.plan.unrepairable:
                info(f"cannot repair {r.repo_id} {r.path}: {r.detail}")
            good = sum(1 for r in outcome.results if r.ok)
            info(f"repaired {good} file(s) of {repo_id} ({human_bytes(outcome.transferred_bytes)} downloaded)")
    if as_json:
        emit_json(
            {
                "ok": not remaining,
                "checked": len(results),
                "failed": len(failed),
                "missing": sum(1 for r in failed if r.missing),
                "files": results,
                "repaired": repaired,
                "remaining": len(remaining),
            }
        )
        if remaining:
            sys.exit(IntegrityError.exit_code)
        return
    if remaining:
        raise IntegrityError(f"{len(remaining)} damaged file(s) remain after the repair (listed above).")
    info(f"Repaired all {len(failed)} damaged file(s); they verify again.")


@click.command(name="prune")
@click.option(
    "--incomplete",
    is_flag=True,
    help="Also delete partial downloads (blobs/*.incomplete) and detached revisions a download did not finish.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print what was (or would be) deleted as JSON.")
def prune_cmd(incomplete: bool, yes: bool, dry_run: bool, as_json: bool) -> None:
    """Delete cached revisions that no branch or tag points to; partial downloads stay unless --incomplete.

    A repo a download is running on is left alone.
    """
    from hubmgr.hub.cache import prune_cache

    plan = prune_cache(dry_run=True, incomplete=incomplete)
    if not plan.revisions and not plan.partials:
        if as_json:
            emit_json(_prune_json(plan, dry_run=dry_run))
        else:
            info("Nothing to prune: every complete cached revision has a ref.")
            _prune_notes(plan)
        return
    if dry_run:
        if as_json:
            emit_json(_prune_json(plan, dry_run=True))
        else:
            for r, c in plan.revisions:
                info(f"would delete {r} {c[:12]}")
            for part in plan.partials:
                info(f"would delete {part.repo_id} {part.path.name} ({human_bytes(part.size)} partial download)")
            info(f"Would free {human_bytes(plan.freed_bytes)}.")
            _prune_notes(plan)
        return
    what = f"{len(plan.revisions)} detached revision(s)"
    if plan.partials:
        what += f" and {len(plan.partials)} partial download(s)"
    if not _confirm(f"Delete {what}, freeing {human_bytes(plan.freed_bytes)}?", yes=yes):
        info("Nothing deleted.")
        sys.exit(1)
    done = prune_cache(incomplete=incomplete)
    if as_json:
        emit_json(_prune_json(done, dry_run=False))
        return
    for r, c in done.revisions:
        info(f"deleted {r} {c[:12]}")
    for part in done.partials:
        info(f"deleted {part.repo_id} {part.path.name} ({human_bytes(part.size)} partial download)")
    partial = f", of which {human_bytes(done.partial_bytes)} partial downloads" if done.partial_bytes else ""
    info(f"Freed {human_bytes(done.freed_bytes)}{partial}.")
    _prune_notes(done)


def register(cli: click.Group) -> None:
    """Add ``download``, ``ls``, ``rm``, ``verify`` and ``prune`` to the group.

    Args:
        cli: the top-level ``hubmgr`` group.
    """
    for command in (download, ls_cmd, rm_cmd, verify_cmd, prune_cmd):
        cli.add_command(command)


def _prune_json(result: PruneResult, *, dry_run: bool) -> dict[str, Any]:
    return {
        "deleted": [{"repo_id": r, "commit": c} for r, c in result.revisions],
        "partials": [
            {"repo_id": p.repo_id, "file": p.path.name, "bytes": p.size, "resumable": p.resumable}
            for p in result.partials
        ],
        "freed_bytes": result.freed_bytes,
        "partial_bytes": result.partial_bytes,
        "kept_partial_bytes": result.kept_partial_bytes,
        "kept_incomplete": [{"repo_id": r, "commit": c} for r, c in result.kept_incomplete],
        "busy": result.busy,
        "dry_run": dry_run,
    }


def _prune_notes(result: PruneResult) -> None:
    for repo in result.busy:
        info(f"left {repo} alone: a download is running on it.")
    if result.kept_incomplete or result.kept_partial_bytes:
        parts = []
        if result.kept_incomplete:
            parts.append(f"{len(result.kept_incomplete)} incomplete detached revision(s)")
        if result.kept_partial_bytes:
            parts.append(f"{human_bytes(result.kept_partial_bytes)} of partial downloads")
        info(f"Kept {' and '.join(parts)} for a later resume; `hubmgr prune --incomplete` deletes them.")
