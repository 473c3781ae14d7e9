"""``hubmgr search``, ``hubmgr info`` and ``hubmgr fit``: read-only views of the Hub.

The Hub client modules are imported inside the commands, so ``hubmgr --help`` stays light.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from hubmgr.cli.output import emit_json, human_bytes, human_count, info, is_tty, print_table, to_jsonable
from hubmgr.errors import UsageError
from hubmgr.hub.fit import TRAIN_BATCH, TRAIN_RANK, TRAIN_SEQ_LEN

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.hub.fit import FitReport

SORT_CHOICES = ("downloads", "likes", "trending", "last_modified")
DTYPE_CHOICES = ("float32", "float16", "bfloat16", "int8", "int4")


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


def _gated(value: bool | str) -> str:
    if not value:
        return "no"
    return "yes" if value is True else str(value)


def _escape(text: str) -> str:
    """Text for rich: markup-escaped on a terminal (where cells are rendered as markup), as is when piped."""
    if not is_tty():
        return text
    from rich.markup import escape

    return escape(text)


def _rows(rows: Iterable[Iterable[object]]) -> list[list[str]]:
    return [[_escape("" if v is None else str(v)) for v in row] for row in rows]


_VERDICT_STYLE = {"fits": "green", "tight": "yellow", "won't fit": "red"}


def _verdict(value: str) -> str:
    """A verdict, coloured on a terminal (the cell is already escaped)."""
    return f"[{_VERDICT_STYLE[value]}]{value}[/]" if is_tty() and value in _VERDICT_STYLE else value


def card_summary(text: str, *, limit: int = 400) -> str:
    """The first paragraph of prose in a model card (headings, HTML, images and tables skipped)."""
    para: list[str] = []
    in_code = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if not line:
            if para:
                break
            continue
        if line.startswith(("#", "<", "!", "|", "[!", "---", ">")):
            if para:
                break
            continue
        para.append(line)
    summary = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", " ".join(para))  # [text](url) -> text
    summary = re.sub(r"(\*\*|__|`)", "", summary)
    return summary if len(summary) <= limit else summary[: limit - 1].rstrip() + "…"


def _fit_line(report: FitReport) -> str:
    parts = [f"{d.name}: {d.verdict} ({human_bytes(d.free_bytes)} free)" for d in report.devices]
    return (
        f"needs ~{human_bytes(report.required_bytes)} ({report.dtype}, LoRA r={report.lora_rank}, "
        f"batch {report.batch_size}, seq {report.seq_len}) - " + "; ".join(parts)
    )


def _print_fit(report: FitReport) -> None:
    shape = f"{report.hidden_size} x {report.num_layers}" + (" (estimated)" if report.estimated_shape else "")
    rows = [
        ("parameters", f"{human_count(report.param_count)} ({report.param_count:,})"),
        ("trainable (LoRA)", f"{human_count(report.trainable_params)} ({report.trainable_params:,})"),
        ("setting", f"{report.dtype}, LoRA r={report.lora_rank}, batch {report.batch_size}, seq {report.seq_len}"),
        ("hidden x layers", shape),
    ]
    rows += [(name, human_bytes(value)) for name, value in report.breakdown.items()]
    rows.append(("total", human_bytes(report.required_bytes)))
    print_table(["estimate", "value"], _rows(rows), title="LoRA training memory", justify={"value": "right"})
    device_rows = _rows((d.name, d.kind, human_bytes(d.free_bytes), human_bytes(d.total_bytes)) for d in report.devices)
    print_table(
        ["device", "kind", "free", "total", "verdict"],
        [row + [_verdict(d.verdict)] for row, d in zip(device_rows, report.devices)],
        title="Fit",
    )


@click.command()
@click.argument("query", required=False)
@click.option("--task", help="Pipeline tag, e.g. text-classification.")
@click.option("--library", help="Library, e.g. transformers, peft.")
@click.option("--author", help="User or organisation.")
@click.option(
    "--sort", type=click.Choice(SORT_CHOICES), default="downloads", show_default=True, help="Sort key (descending)."
)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Results per page.")
@click.option(
    "--page",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Page to show (earlier pages are fetched to find it).",
)
@click.option("--cursor", help="Continue from the cursor an earlier search printed (other filters are ignored).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def search(
    query: str | None,
    task: str | None,
    library: str | None,
    author: str | None,
    sort: str,
    limit: int,
    page: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """Search models on the Hub by QUERY (part of the model id) and filters."""
    from hubmgr.config import get_settings
    from hubmgr.hub.search import search_models

    settings = get_settings()
    result = search_models(
        query, task=task, library=library, author=author, sort=sort, limit=limit, cursor=cursor, settings=settings
    )
    shown = 1
    while shown < page:
        if result.next_cursor is None:
            raise UsageError(f"There is no page {page}: the results end on page {shown}.")
        result = search_models(cursor=result.next_cursor, settings=settings)
        shown += 1
    if as_json:
        emit_json({"results": result.results, "next_cursor": result.next_cursor, "page": page})
        return
    if not result.results:
        info("No models found.")
        return
    print_table(
        ["model", "task", "library", "downloads", "likes", "modified", "gated"],
        _rows(
            (
                m.id,
                m.task or "-",
                m.library or "-",
                human_count(m.downloads),
                human_count(m.likes),
                _date(m.last_modified),
                _gated(m.gated),
            )
            for m in result.results
        ),
        justify={"downloads": "right", "likes": "right"},
    )
    if result.next_cursor:
        info(f"More results: add --page {page + 1} (with --json, next_cursor resumes from here).")


@click.command(name="info")
@click.argument("repo")
@click.option("--revision", help="Branch, tag or commit (default: main).")
@click.option("--files/--no-files", "show_files", default=True, show_default=True, help="List the files.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def info_cmd(repo: str, revision: str | None, show_files: bool, as_json: bool) -> None:
    """Show a model repo: card summary, files and sizes, license, gating, parameters, and whether
    LoRA training fits here. The weights are not downloaded (their headers are read by HTTP range)."""
    from hubmgr.config import get_settings
    from hubmgr.errors import HubmgrError
    from hubmgr.hub.fit import estimate_fit_for_model
    from hubmgr.hub.info import get_model_info

    settings = get_settings()
    details = get_model_info(repo, revision=revision, settings=settings)
    fit = None
    if details.param_count:
        try:
            fit = estimate_fit_for_model(details)
        except HubmgrError:
            fit = None
    if as_json:
        data = to_jsonable(details)
        if not show_files:
            data.pop("files", None)
        data["fit"] = to_jsonable(fit) if fit is not None else None
        emit_json(data)
        return
    dtypes = ", ".join(f"{k} {human_count(v)}" for k, v in details.dtypes.items()) or "-"
    params = f"{human_count(details.param_count)} ({details.param_count:,})" if details.param_count else "-"
    rows = [
        ("model", details.id),
        ("revision", details.revision),
        ("commit", details.sha or "-"),
        ("source", "local cache" if details.from_cache else settings.endpoint),
        ("task", details.pipeline_tag or "-"),
        ("library", details.library or "-"),
        ("license", details.license or "-"),
        ("gated", _gated(details.gated)),
        ("parameters", params),
        ("dtypes", dtypes),
        ("files", f"{len(details.files)} ({human_bytes(details.total_size)})"),
        ("downloads", human_count(details.downloads) if details.downloads is not None else "-"),
        ("likes", human_count(details.likes) if details.likes is not None else "-"),
        ("modified", _date(details.last_modified)),
    ]
    if fit is not None:
        rows.append(("LoRA fit", _fit_line(fit)))
    summary = card_summary(details.card_text)
    if summary:
        rows.append(("card", summary))
    print_table(["field", "value"], _rows(rows), title=_escape(details.id))
    if show_files and details.files:
        print_table(
            ["file", "size", "sha256"],
            _rows(
                [(f.path, human_bytes(f.size), (f.lfs_sha256 or "")[:12]) for f in details.files]
                + [("total", human_bytes(details.total_size), "")]
            ),
            title="Files",
            justify={"size": "right"},
        )
    for note in details.warnings:
        info(f"note: {_escape(note)}")


@click.command()
@click.argument("repo", required=False)
@click.option("--params", "params", help="Parameter count instead of a repo (110M, 7B, 125000000).")
@click.option("--revision", help="Revision of REPO (default: main).")
@click.option(
    "--dtype", type=click.Choice(DTYPE_CHOICES), help="Dtype of the frozen weights (default: the repo's, or float32)."
)
@click.option(
    "--rank",
    type=click.IntRange(1, 4096),
    default=TRAIN_RANK,
    show_default=True,
    help="LoRA rank (default: training's).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=TRAIN_BATCH,
    show_default=True,
    help="Sequences per step (default: the largest batch training chooses by itself).",
)
@click.option(
    "--seq-len",
    type=click.IntRange(1),
    default=TRAIN_SEQ_LEN,
    show_default=True,
    help="Tokens per sequence (default: training's --max-length).",
)
@click.option(
    "--hidden-size", type=click.IntRange(1), help="Model width (with --params; read from config.json for a repo)."
)
@click.option("--layers", type=click.IntRange(1), help="Transformer blocks (with --params).")
@click.option(
    "--trial",
    is_flag=True,
    help="Measure instead of estimating: train a few real steps of REPO on --data for --task here and predict"
    " the run's peak memory and time (what `hubmgr train --dry-run` does).",
)
@click.option("--task", "task", help="With --trial: the task to train (see `hubmgr tasks`).")
@click.option("--data", "data", type=click.Path(dir_okay=False), help="With --trial: the training data file.")
@click.option("--eval-data", "eval_data", type=click.Path(dir_okay=False), help="With --trial: evaluation data.")
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
@click.pass_context
def fit(
    ctx: click.Context,
    /,
    repo: str | None,
    params: str | None,
    revision: str | None,
    dtype: str | None,
    rank: int,
    batch_size: int,
    seq_len: int,
    hidden_size: int | None,
    layers: int | None,
    trial: bool,
    task: str | None,
    data: str | None,
    eval_data: str | None,
    as_json: bool,
) -> None:
    """Estimate the memory LoRA training of REPO (or a model of --params parameters) needs, against
    this machine's RAM and each GPU: fits / tight / won't fit. With --trial, measure it on a few real steps."""
    from hubmgr.hub.fit import estimate_fit, estimate_fit_for_model, parse_param_count

    if trial:
        _fit_trial(ctx, repo, revision, dtype, rank, batch_size, seq_len, task, data, eval_data, as_json)
        return
    if task or data or eval_data:
        raise UsageError("--task, --data and --eval-data go with --trial.")
    if bool(repo) == bool(params):
        raise UsageError("Give either a REPO or --params N (not both).")
    if repo:
        from hubmgr.config import get_settings
        from hubmgr.hub.info import get_model_info

        details = get_model_info(repo, revision=revision, settings=get_settings())
        for note in details.warnings:
            info(f"note: {_escape(note)}")
        if hidden_size or layers:
            from dataclasses import replace

            config = dict(details.config or {})
            if hidden_size:
                config["hidden_size"] = hidden_size
            if layers:
                config["num_hidden_layers"] = layers
            details = replace(details, config=config)
        report = estimate_fit_for_model(details, dtype=dtype, lora_rank=rank, batch_size=batch_size, seq_len=seq_len)
    else:
        assert params is not None  # checked above: exactly one of REPO and --params
        report = estimate_fit(
            parse_param_count(params),
            dtype=dtype or "float32",
            lora_rank=rank,
            batch_size=batch_size,
            seq_len=seq_len,
            hidden_size=hidden_size,
            num_layers=layers,
        )
    if as_json:
        result = to_jsonable(report)
        result["best_verdict"] = report.best_verdict
        emit_json(result)
        return
    _print_fit(report)


def _fit_trial(
    ctx: click.Context,
    repo: str | None,
    revision: str | None,
    dtype: str | None,
    rank: int,
    batch_size: int,
    seq_len: int,
    task: str | None,
    data: str | None,
    eval_data: str | None,
    as_json: bool,
) -> None:
    """``fit --trial``: the training defaults, with the flags given on the command line."""
    from click.core import ParameterSource

    from hubmgr.cli.train_cmds import print_trial
    from hubmgr.train.config import TrainConfig

    if not repo or not task or not data:
        raise UsageError("--trial needs a REPO, --task and --data (it trains a few steps on them).")

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE

    values: dict[str, Any] = {"task": task, "model": repo, "data": data, "eval_data": eval_data, "revision": revision}
    if given("rank"):
        values["lora_r"] = rank
    if given("batch_size"):  # else the batch size training would choose
        values["batch_size"] = batch_size
    if given("seq_len"):
        values["max_length"] = seq_len
    if dtype == "int4":
        values["qlora"] = True
    elif dtype == "int8":
        raise UsageError("Training has no 8-bit mode; --trial takes --dtype int4 (QLoRA) or a float dtype.")
    elif dtype:
        values["dtype"] = dtype
    config = TrainConfig(**{k: v for k, v in values.items() if v is not None})
    config.validate()
    print_trial(config, as_json=as_json)


def register(cli: click.Group) -> None:
    """Add ``search``, ``info`` and ``fit`` to the ``hubmgr`` group.

    Args:
        cli: the top-level group.
    """
    for command in (search, info_cmd, fit):
        cli.add_command(command)
