"""The run's folders and files: ``OUT.partial`` while training, ``OUT`` only once complete.

A run trains in ``<output>.partial/`` (checkpoints, ``hubmgr_run.json`` with status ``running``,
``train_config.toml``). At the very end the adapter, tokenizer, config, metrics and model card are
written into a temporary folder inside it, which is renamed to ``<output>`` in one step; then the
partial folder is removed. A killed run therefore never leaves a folder that looks complete: ``<output>``
either does not exist or holds everything.

No heavy imports here.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from hubmgr.errors import DiskFullError, UsageError, disk_full_from
from hubmgr.fields import atomic_write_text
from hubmgr.train.config import TrainConfig

RUN_FILE = "hubmgr_run.json"
CONFIG_FILE = "train_config.toml"
METRICS_FILE = "metrics.json"
PARTIAL_SUFFIX = ".partial"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
_SNAPSHOT_RE = re.compile(r"[/\\]snapshots[/\\]([0-9a-f]{40})[/\\]?$")


def partial_dir(out: Path) -> Path:
    """``OUT.partial``: where a run lives until it is complete."""
    return out.parent / (out.name + PARTIAL_SUFFIX)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_run_file(folder: Path) -> dict[str, Any] | None:
    """The ``hubmgr_run.json`` of a folder, or None."""
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def metric_tables(adapter_path: str | os.PathLike[str] | None) -> dict[str, dict[str, float]]:
    """The per-label metrics of an adapter's final evaluation (``metric_tables`` in its run record), or
    ``{}``: what ``hubmgr runs show`` and the TUI's run details show."""
    if not adapter_path:
        return {}
    tables = (read_run_file(Path(adapter_path)) or {}).get("metric_tables")
    return {str(k): dict(v) for k, v in tables.items() if isinstance(v, dict)} if isinstance(tables, dict) else {}


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf become None, paths and unknown objects strings."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if hasattr(obj, "item"):
        try:
            return jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")


def is_complete_checkpoint(folder: Path) -> bool:
    """A checkpoint the Trainer finished writing (``trainer_state.json`` is written last)."""
    return (folder / "trainer_state.json").is_file() and any(
        (folder / name).is_file() for name in ("adapter_model.safetensors", "model.safetensors", "adapter_model.bin")
    )


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``checkpoint-N`` sub-folders by step (complete or not)."""
    found = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = _CHECKPOINT_RE.match(entry.name)
        if m and entry.is_dir():
            found.append((int(m.group(1)), entry))
    return sorted(found)


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (a half-written one from a kill is skipped)."""
    for _step, path in reversed(checkpoints(folder)):
        if is_complete_checkpoint(path):
            return path
    return None


def remove_incomplete_checkpoints(folder: Path) -> None:
    for _step, path in checkpoints(folder):
        if not is_complete_checkpoint(path):
            shutil.rmtree(path, ignore_errors=True)


def check_output(out: Path, *, resume: bool) -> None:
    """Refuse to overwrite a folder, or to resume something that is not there.

    Raises:
        UsageError: ``out`` is not empty (new run), or there is no unfinished run to resume.
    """
    partial = partial_dir(out)
    if resume:
        if out.exists() and not out.is_dir():
            raise UsageError(f"--output {out} is a file, not a folder; there is nothing to resume there.")
        meta = read_run_file(out) if out.is_dir() else None
        if meta and meta.get("status") == "completed":
            raise UsageError(f"{out} holds a completed run; there is nothing to resume.")
        if not partial.is_dir():
            raise UsageError(f"Nothing to resume: {partial} does not exist (it holds an unfinished run).")
        return
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out} is a file, not a folder; choose a folder (it is created).")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"Output folder {out} already exists and is not empty; choose another --output or remove it.")
    if partial.exists():
        raise UsageError(f"{partial} holds an unfinished run; continue it with --resume --output {out}, or remove it.")


class OutputLock:
    """Holds ``OUT.lock`` (next to the output folder) for the length of a run, so that a second run into the
    same ``--output`` is refused with one clear line instead of interleaving checkpoints with the first.

    Raises (on enter):
        UsageError: another process holds the lock.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out.parent / (out.name + ".lock")
        self._lock: Any = None

    def __enter__(self) -> "OutputLock":
        from filelock import FileLock, Timeout

        from hubmgr.errors import local_path_error

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise local_path_error(exc, self.path.parent, "The output's folder") from None
        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise UsageError(
                f"Another run is training into {self.out} right now; wait for it, stop it"
                " (`hubmgr runs stop ID`), or choose another --output."
            ) from None
        except OSError as exc:
            raise local_path_error(exc, self.path.parent, "The output's folder") from None
        self._lock = lock
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            try:
                os.unlink(self.path)  # while still held: nobody else can be waiting (timeout 0)
            except OSError:
                pass
            self._lock.release()
            self._lock = None


def base_revision_of(path: Path) -> str | None:
    """The commit sha when ``path`` is a Hugging Face cache snapshot folder."""
    m = _SNAPSHOT_RE.search(str(path))
    return m.group(1) if m else None


def disk_full(exc: BaseException, where: str) -> DiskFullError | None:
    """A DiskFullError for ENOSPC/EDQUOT, and for torch's "file write failed" on a full disk; else None."""
    if isinstance(exc, OSError):
        return disk_full_from(exc, where)
    text = str(exc)
    if "No space left on device" in text or "file write failed" in text:
        return DiskFullError(f"No space left on the device while writing {where}.")
    return None


# --------------------------------------------------------------------------------------------------
# the model card
# --------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def model_card(
    *,
    config: TrainConfig,
    base_model: str,
    base_revision: str | None,
    task_name: str,
    task_description: str,
    auto_class: str,
    metrics: dict[str, Any],
    num_train: int,
    num_eval: int,
    target_modules: list[str],
    modules_to_save: list[str],
    trainable: int,
    total: int,
    steps: int,
    seconds: float,
    run_id: str,
    data_info: dict[str, Any],
) -> str:
    """The README.md of an adapter: base model and revision, data, metrics, how to load it."""
    revision_text = base_revision or "(local folder, no Hub revision)"
    tags = ["hubmgr", "lora", "peft", task_name]
    front = ["---", f"base_model: {json.dumps(base_model)}", "library_name: peft", "tags:"]
    front += [f"- {t}" for t in tags]
    front.append("---")
    eval_text = config.eval_data or (
        f"{config.eval_fraction:.0%} held out of the training data (seed {config.seed})"
        if config.eval_fraction
        else "none"
    )
    lines = front + [
        "",
        f"# LoRA adapter: {Path(base_model).name if os.sep in base_model else base_model} for {task_name}",
        "",
        f"A LoRA adapter trained with [hubmgr](https://pypi.org/project/hubmgr/) (run `{run_id}`).",
        "",
        "## Base model",
        "",
        f"- Model: `{base_model}`",
        f"- Revision: `{revision_text}`",
        "",
        "## Data",
        "",
        f"- Task: {task_name}: {task_description}",
        f"- Training data: `{config.data}` ({num_train} examples)",
        f"- Evaluation data: {('`' + eval_text + '`') if config.eval_data else eval_text} ({num_eval} examples)",
    ]
    labels = data_info.get("label_names") if isinstance(data_info, dict) else None
    if labels:
        shown = ", ".join(map(str, labels[:20])) + (", ..." if len(labels) > 20 else "")
        lines.append(f"- Labels: {shown}")
    if config.options:
        lines.append("- Task options: " + ", ".join(f"{k}={v}" for k, v in config.options.items()))
    lines += ["", "## Metrics", ""]
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numeric:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in numeric.items()]
    else:
        lines.append("No metrics were recorded.")
    pct = 100.0 * trainable / total if total else 0.0
    extra_args = f", num_labels={len(labels)}" if labels and auto_class.endswith("Classification") else ""
    lines += [
        "",
        "## Training",
        "",
        f"- LoRA: r={config.lora_r}, alpha={_fmt(config.lora_alpha)}, dropout={config.lora_dropout},"
        f" targets={', '.join(target_modules)}"
        + (f", trained in full: {', '.join(modules_to_save)}" if modules_to_save else "")
        + (", rsLoRA" if config.use_rslora else "")
        + (", DoRA" if config.use_dora else "")
        + (", QLoRA 4-bit" if config.qlora else ""),
        f"- Trainable parameters: {trainable:,} of {total:,} ({pct:.2f}%)",
        f"- Steps: {steps}, epochs: {_fmt(config.epochs)}, learning rate: {config.learning_rate:g},"
        f" batch size: {config.batch_size} x {config.grad_accum} accumulation, max length: {config.max_length},"
        f" seed: {config.seed}",
        f"- Wall time: {seconds:.0f} s",
        "",
        "## Use",
        "",
        "```python",
        "from peft import PeftModel",
        f"from transformers import {auto_class}",
        "",
        f"base = {auto_class}.from_pretrained({json.dumps(base_model)}"
        + (f", revision={json.dumps(base_revision)}" if base_revision else "")
        + extra_args
        + ")",
        'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
        "```",
        "",
        "Or with hubmgr: `hubmgr eval --model BASE --adapter THIS_FOLDER --data DATA`.",
        "",
    ]
    return "\n".join(lines)
