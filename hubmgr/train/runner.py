"""Train a LoRA adapter: resolve the model, load data through the task plugin, run transformers' Trainer.

:func:`train` is the one entry point used by the CLI (``hubmgr train``), the TUI (from a worker thread)
and scripts (``hubmgr.train(config)``). It reports progress as typed events
(:mod:`hubmgr.train.events`), stops gracefully when ``cancel`` is set, and writes the adapter folder so
that a killed run never looks complete (see :mod:`hubmgr.train._outputs`).

Defaults are chosen for speed: batches are padded only to their longest example (the task's collator)
and examples of similar length are batched together (``train_sampling_strategy="group_by_length"``),
data loads in the training process on a CPU, and nothing is padded to ``max_length``.

Under ``torchrun``/``accelerate launch`` (``WORLD_SIZE`` > 1) the Trainer runs DDP; only rank 0 writes
files, talks to the run registry and emits events.

torch, transformers, peft and datasets are imported inside :func:`train`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import math
import os
import shutil
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

from hubmgr._quiet import quiet
from hubmgr.errors import (
    DataError,
    HubmgrError,
    ModelError,
    NotCachedError,
    TrainingError,
    UsageError,
)
from hubmgr.format import first_line, plural
from hubmgr.hub.files import SAFETENSORS_SUFFIX, is_pickle
from hubmgr.train import _outputs as outputs
from hubmgr.train.config import TrainConfig
from hubmgr.train.events import Event, TrainEvent, TrainFinished

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.config import Settings
    from hubmgr.task import Task

__all__ = ["TrainResult", "train", "resume_config", "resolve_model"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        run_id: the id in the run registry.
        status: ``completed`` or ``cancelled`` (failures raise instead).
        output_dir: the finished adapter folder; for a cancelled run the ``.partial`` folder that
            ``--resume`` continues.
        metrics: final metrics, flat: ``train_loss``, ``train_runtime``, ``train_samples_per_second``,
            ``eval_<metric>`` for each evaluation metric, ``step``, ``epoch``.
        adapter_path: the adapter folder (same as ``output_dir``) when completed, else None.
        base_model: the base model as given (repo id or path).
        base_revision: the base model's commit sha when it came from the Hub cache.
        seconds: wall time of the whole run.
        global_step: optimizer steps done (including those before a resume).
        resumed_from_step: the checkpoint step this run continued from (0 for a fresh run).
        num_train_examples / num_eval_examples: sizes of the splits.
        resume_command: for a cancelled run, the command that continues it.
        stop_reason: one sentence on why training stopped ("eval accuracy stopped improving after epoch
            4.0; kept the best, epoch 3.0"), for the CLI, the TUI and ``hubmgr runs show``.
        notes: sentences worth a user's attention (the adapter does no better than the majority class;
            the metric was still rising when the budget ran out) with what to try.
        best_step: the step whose weights were kept as the adapter (the best evaluation), if known.
        epochs: epochs actually trained.
        main_metric: the task's main metric on this data (without ``eval_``).
        metric_tables: the per-label metrics of the final evaluation (``{"f1_per_label": {"sports": 0.91}}``),
            for tasks whose ``compute_metrics`` returns them.
    """

    run_id: str
    status: str
    output_dir: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    adapter_path: Path | None = None
    base_model: str = ""
    base_revision: str | None = None
    seconds: float = 0.0
    global_step: int = 0
    resumed_from_step: int = 0
    num_train_examples: int = 0
    num_eval_examples: int = 0
    resume_command: str | None = None
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    best_step: int | None = None
    epochs: float = 0.0
    main_metric: str | None = None
    metric_tables: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _dist_info() -> _Dist:
    def env_int(*names: str, default: int) -> int:
        for name in names:
            value = os.environ.get(name)
            if value not in (None, ""):
                try:
                    return int(value)
                except ValueError:
                    pass
        return default

    world = env_int("WORLD_SIZE", default=1)
    rank = env_int("RANK", default=0)
    local = env_int("LOCAL_RANK", default=rank)
    return _Dist(rank=rank, local_rank=local, world_size=max(1, world))


# --------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------
def locate_model(config: TrainConfig, *, settings: "Settings") -> Path | None:
    """Find the base model on disk without downloading anything (what :func:`resolve_model` checks first).

    Args:
        config: the run's config (model, revision).
        settings: cache location and offline flag.

    Returns:
        The folder (a local one, or the cached snapshot with its weights); None when the run has to
        download the repo (not cached, or cached without weights, and the Hub may be asked).

    Raises:
        ModelError: the model names a local folder that does not exist.
        NotCachedError: offline and not in the cache.
        UsageError: the name is neither a folder nor a valid repo id.
    """
    from hubmgr.hub.cache import resolve_local
    from hubmgr.hub.layout import validate_repo_id

    text = config.model.strip()
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    if text.startswith(("/", "./", "../", "~")) or local.suffix in (".json", ".safetensors"):
        raise ModelError(f"Model folder {text} does not exist.")
    try:
        folder = resolve_local(text, revision=config.revision, settings=settings)
    except NotCachedError:
        if settings.offline:
            error = NotCachedError(
                f"{text} is not in the local cache and the Hub is offline (HF_HUB_OFFLINE is set);"
                f" download it first with `hubmgr download {text}` while online."
            )
            # what a form shows instead (hubmgr.fields.form_message): the TUI's way, not the CLI's
            error.form_message = (  # type: ignore[attr-defined]
                f"{text} is not in the local cache, and offline mode is on (HF_HUB_OFFLINE):"
                " download it from its model page (Browse, d) while online."
            )
            raise error from None
        validate_repo_id(text)
        return None
    if _has_weights(folder) or settings.offline:
        return folder
    # cached without weights (a config-only download, or safetensors-only from a pickle-only repo):
    # the run fetches what it needs, pickle weights too when --allow-pickle says so
    return None


def resolve_model(config: TrainConfig, *, settings: "Settings") -> tuple[Path, str | None]:
    """Find the base model's folder: a local folder, the cached snapshot of a repo, or a download.

    Args:
        config: the run's config (model, revision, allow_pickle).
        settings: cache location and offline flag.

    Returns:
        ``(folder, commit sha or None)``.

    Raises:
        NotCachedError: offline and not in the cache.
        HubError and subclasses: the download failed.
    """
    folder = locate_model(config, settings=settings)
    if folder is not None:
        return folder, outputs.base_revision_of(folder)
    from hubmgr.hub.download import download_repo

    text = config.model.strip()
    logger.info("%s is not cached with its weights; downloading it", text)
    result = download_repo(text, revision=config.revision, allow_pickle=config.allow_pickle, settings=settings)
    return Path(result.path), result.commit


def _has_weights(folder: Path) -> bool:
    try:
        return any(p.name.endswith(SAFETENSORS_SUFFIX) or is_pickle(p.name) for p in folder.iterdir())
    except OSError:
        return False


def check_model_folder(folder: Path, config: TrainConfig) -> bool:
    """Refuse pickle-only weights and remote code unless allowed. Returns whether safetensors exist."""
    try:
        names = [p.name for p in folder.iterdir() if p.is_file()]
    except OSError as exc:
        raise ModelError(f"Cannot read the model folder {folder}: {exc.strerror or exc}.") from None
    if "config.json" not in names:
        raise ModelError(f"{folder} is not a transformers model folder (no config.json).")
    has_safetensors = any(n.endswith(SAFETENSORS_SUFFIX) for n in names)
    pickles = sorted(n for n in names if is_pickle(n))
    if not has_safetensors:
        if not pickles:
            raise ModelError(
                f"{folder} has no model weights (no .safetensors file, no pickle .bin/.pt); if the repo has only"
                " pickle weights, pass --allow-pickle (train then fetches them), else check the model name."
            )
        if not config.allow_pickle:
            raise ModelError(
                f"{config.model} has only pickle weights ({', '.join(pickles[:3])}), which can run code when"
                " loaded; pass --allow-pickle if you trust this repo."
            )
    from hubmgr.safety import check_remote_code

    check_remote_code(folder, trust_remote_code=bool(config.trust_remote_code), model=config.model)
    return has_safetensors


def _pick_device(config: TrainConfig, dist: _Dist) -> str:
    from hubmgr.device import pick_device

    return pick_device(config.device, world_size=dist.world_size)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), so that bfloat16 autocast is faster.

    Elsewhere torch emulates bfloat16 on a CPU, which is slower than float32. ``HUBMGR_CPU_BF16=0`` (or ``1``)
    overrides the detection.
    """
    forced = os.environ.get("HUBMGR_CPU_BF16", "").strip().lower()
    if forced in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        return forced in ("1", "true", "yes", "on")
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:  # private helpers; an older or newer torch may lack them
        return False


def _pick_dtype(config: TrainConfig, device: str) -> tuple[Any, str | None]:
    """Returns (dtype to load the base weights in, mixed precision: "bf16" | "fp16" | None)."""
    import torch

    dtype = config.dtype
    if device == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if dtype == "auto":
            dtype = "bfloat16" if bf16_ok else "float16"
        if dtype == "bfloat16":
            if not bf16_ok:
                raise UsageError("This GPU does not support bfloat16; use --dtype float16 or float32.")
            return torch.bfloat16, "bf16"
        if dtype == "float16":
            return torch.float32, "fp16"
        return torch.float32, None
    if dtype == "float16" and device == "cpu":
        raise UsageError("float16 training needs a GPU; on a CPU use --dtype bfloat16 or float32.")
    if dtype == "auto" and device == "cpu" and cpu_has_native_bf16():
        dtype = "bfloat16"
    if dtype == "bfloat16":
        return torch.float32, "bf16"
    if dtype == "float16":
        return torch.float32, "fp16"
    return torch.float32, None


def _precision_label(mixed: str | None, *, qlora: bool = False) -> str:
    """What ``TrainStarted.precision`` says: ``float32``, ``bfloat16 mixed`` or ``float16 mixed`` (4-bit base for QLoRA)."""
    label = {"bf16": "bfloat16 mixed", "fp16": "float16 mixed"}.get(mixed or "", "float32")
    return f"4-bit base, {label}" if qlora else label


def _check_qlora(config: TrainConfig, device: str) -> None:
    if not config.qlora:
        return
    import torch

    if device != "cuda" or not torch.cuda.is_available():
        raise UsageError(
            "--qlora (4-bit) needs a CUDA GPU; this run is on the "
            + device
            + ". Drop --qlora to train in full precision."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UsageError("--qlora (4-bit) needs the bitsandbytes package: pip install bitsandbytes.")


# --------------------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------------------
def _set_threads(dist: _Dist) -> None:
    """Use the CPUs this process may run on, shared between the local processes of a DDP run."""
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size) or 1)
    wanted = max(1, cpus // max(1, local_world))
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


# --------------------------------------------------------------------------------------------------
# registry and hooks (main process only; never fatal)
# --------------------------------------------------------------------------------------------------
class _Registry:
    def __init__(self, settings: "Settings", enabled: bool) -> None:
        self.store = None
        self.warned = False
        if not enabled:
            return
        from hubmgr.runs.store import RunStore

        try:
            self.store = RunStore(settings.runs_db)
        except HubmgrError as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if not self.warned:
            self.warned = True
            warnings.warn(f"The run registry is not recording this run: {exc}", RuntimeWarning, stacklevel=3)

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self.store is None:
            return
        try:
            getattr(self.store, method)(*args, **kwargs)
        except Exception as exc:  # the registry must never stop a training run
            self._warn(exc)


def _hook(name: str, *, failures: list[str] | None = None, **kwargs: Any) -> None:
    """Call a run hook; each plugin failure (one sentence) is added to ``failures`` once."""
    from hubmgr.plugins import call_run_hook

    def failed(message: str) -> None:
        if failures is not None and message not in failures:
            failures.append(message)

    try:
        call_run_hook(name, on_failure=failed, **kwargs)
    except Exception as exc:  # call_run_hook isolates plugin errors; this guards the call itself
        logger.debug("run hook %s failed: %s", name, exc)


# --------------------------------------------------------------------------------------------------
# data collation wrapper
# --------------------------------------------------------------------------------------------------
class _DropLength:
    """Drop the ``length`` column (used only by the length-grouped sampler) before the task's collator."""

    def __init__(self, inner: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.inner = inner

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return self.inner([{k: v for k, v in f.items() if k != "length"} for f in features])


def _with_lengths(dataset: Any) -> tuple[Any, bool]:
    """Make sure the dataset has an integer ``length`` column when it has token ids. Returns (dataset, has_length)."""
    if dataset is None:
        return dataset, False
    columns = set(dataset.column_names)
    if "length" in columns:
        return dataset, True
    if "input_ids" in columns:
        return dataset.map(
            lambda b: {"length": [len(x) for x in b["input_ids"]]}, batched=True, load_from_cache_file=False
        ), True
    return dataset, False


def _longest_first(dataset: Any) -> Any:
    """The evaluation set sorted by length, longest first (when it has token ids), so that evaluation batches
    hold examples of similar lengths and waste little on padding; the longest batch comes first, so a
    batch too big for memory fails at once. Metrics do not depend on the order."""
    dataset, has_length = _with_lengths(dataset)
    if not has_length or len(dataset) < 2:
        return dataset
    return dataset.sort("length", reverse=True).flatten_indices()


def resume_config(output_dir: str | os.PathLike[str]) -> TrainConfig | None:
    """The config saved by an unfinished run in ``OUTPUT.partial`` (what ``--resume`` continues), or None."""
    out = Path(output_dir).expanduser().resolve()
    path = outputs.partial_dir(out) / outputs.CONFIG_FILE
    if not path.is_file():
        return None
    return TrainConfig.from_toml(path)


def _resume_command(out: Path, run_id: str | None = None) -> str:
    """What continues an unfinished run: ``hubmgr runs resume ID`` when the registry has it (from any
    folder), else ``hubmgr train --resume --output OUT``."""
    return f"hubmgr runs resume {run_id}" if run_id else f"hubmgr train --resume --output {out}"


# --------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    *,
    on_event: Callable[[TrainEvent], None] | None = None,
    cancel: threading.Event | None = None,
    settings: "Settings | None" = None,
    run_id: str | None = None,
) -> TrainResult:
    """Fine-tune ``config.model`` with LoRA on ``config.data`` for ``config.task``.

    Args:
        config: the run's TrainConfig (validated here).
        on_event: called with each :mod:`hubmgr.train.events` event, from the calling thread (main
            process only under DDP). Exceptions it raises propagate.
        cancel: set it (from any thread) to stop after the current step; a checkpoint is saved and the
            result has status ``cancelled`` and the command that resumes it.
        settings: cache, offline flag and data folders (default: from the environment).
        run_id: the id of a new run (default: a fresh one); a resumed run keeps its own. A detached run
            (:func:`hubmgr.runs.live.launch_train`) is recorded under it before this process starts.

    Returns:
        A :class:`TrainResult` (status ``completed`` or ``cancelled``).

    Raises:
        UsageError: a bad config value, an output folder that is not empty, nothing to resume,
            --qlora without CUDA and bitsandbytes.
        PluginError: unknown task.
        DataError: missing or unreadable data, a missing column, an empty split, labels that don't match.
        ModelError: a model the task can't use, pickle-only weights, target modules that don't exist.
        NotCachedError: the model is not downloaded and the Hub is offline.
        HubError: downloading the model failed.
        TrainingError: NaN loss, out of memory.
        DiskFullError: no space left while writing (the output folder is not created).
    """
    from hubmgr.config import get_settings

    t0 = time.perf_counter()
    settings = settings or get_settings()
    config = dataclasses.replace(
        config,
        options=dict(config.options or {}),
        target_modules=list(config.target_modules) if config.target_modules else None,
    )
    config.validate()
    # Everything the run needs to resume is in its saved config, valid from any working directory.
    config = config.with_absolute_paths()
    cancel = cancel or threading.Event()
    dist = _dist_info()
    emit_user = on_event if dist.is_main else None

    # -- where the run lives -------------------------------------------------------------------------
    resumed_meta: dict[str, Any] | None = None
    if config.output_dir:
        out = Path(config.output_dir).expanduser().resolve()
        outputs.check_output(out, resume=config.resume)
        if config.resume:
            resumed_meta = outputs.read_run_file(outputs.partial_dir(out))
    else:
        out = None  # decided once the run id is known

    with quiet():
        _set_threads(dist)
        device = _pick_device(config, dist)
        use_cpu = device == "cpu"
        given_id = run_id
        run_id = (resumed_meta or {}).get("run_id") or run_id or _new_run_id()
        state = None
        if dist.world_size > 1:
            from accelerate import PartialState
            from accelerate.utils import broadcast_object_list

            state = PartialState(cpu=use_cpu, backend="gloo" if use_cpu else None)
            box = [run_id]
            broadcast_object_list(box, from_process=0)
            run_id = box[0]
        if out is None:
            out = (Path(settings.runs_dir) / run_id).resolve()
            outputs.check_output(out, resume=False)
        partial = outputs.partial_dir(out)
        lock = outputs.OutputLock(out) if dist.is_main else contextlib.nullcontext()
        with lock:
            if dist.is_main:  # re-checked under the lock: another run may have just started there
                outputs.check_output(out, resume=config.resume)
            from hubmgr.hookspecs import RunInfo

            run = _Run(
                config=config,
                settings=settings,
                dist=dist,
                device=device,
                run_id=run_id,
                out=out,
                partial=partial,
                state=state,
                t0=t0,
                cancel=cancel,
                registry=_Registry(settings, enabled=dist.is_main),
                run_info=RunInfo(
                    run_id=run_id, task=config.task, model=config.model, output_dir=str(out), config=config.to_dict()
                ),
                emit_user=emit_user,
                registered=given_id is not None and given_id == run_id,  # a detached run's row exists already
            )
            return _train(run)


def _new_run_id() -> str:
    from hubmgr.runs.store import new_run_id

    return new_run_id()


@dataclass
class _Run:
    """One run's context: what every stage of :func:`_train` reads, and what its failure handler needs.

    ``config`` is the run's config as it stands (the budget stage fills in the batch size it chose);
    ``step``, ``base_revision``, ``registered``, ``log`` and ``task`` are filled in as the run gets there.
    """

    config: TrainConfig
    settings: "Settings"
    dist: _Dist
    device: str
    run_id: str
    out: Path
    partial: Path
    state: Any  # accelerate's PartialState under DDP, else None
    t0: float
    cancel: threading.Event
    registry: _Registry
    run_info: Any
    emit_user: Callable[[TrainEvent], None] | None = None
    step: int = 0
    base_revision: str | None = None
    registered: bool = False  # the registry has this run's row (a detached run's exists before it starts)
    log: Any = None  # the event log in the .partial folder
    task: Any = None
    hook_failures: list[str] = field(default_factory=list)  # plugins whose run hooks raised: notes of the run

    @property
    def final_tmp(self) -> Path:
        """Where the finished adapter folder is written before it is renamed into place."""
        return self.partial / f".final-{self.run_id}"

    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def emit(self, event: Any) -> None:
        """Send an event to the registry, the event log, the caller and the plugins' ``on_run_log``."""
        point = event.history_point() if isinstance(event, Event) else None
        if point is not None:
            self.step = point[1]
        if not self.dist.is_main:
            return
        if point is not None:  # the run registry records what the event stream says
            self.registry.call("record_event", self.run_id, event)
        if self.log is not None:
            self.log.write(event)
        if self.emit_user is not None:
            self.emit_user(event)
        _hook("on_run_log", run=self.run_info, event=event, failures=self.hook_failures)

    def main_first(self) -> Any:
        """Under DDP, the main process does a step first (it fills the caches the others then read)."""
        if self.state is not None:
            return self.state.main_process_first()
        return contextlib.nullcontext()


@dataclass
class _Model:
    """The model stage's output: the peft model, its processor, and what the adapter's card says of it."""

    model: Any
    processor: Any
    mixed: str | None
    targets: list[str]
    modules_to_save: list[str]
    trainable: int
    total: int


@dataclass
class _Features:
    """The data stage's output: the task's data and the preprocessed splits."""

    data: Any
    train_ds: Any
    eval_ds: Any
    has_length: bool

    @property
    def n_train(self) -> int:
        return len(self.train_ds)

    @property
    def n_eval(self) -> int:
        return len(self.eval_ds) if self.eval_ds is not None else 0


@dataclass
class _Fit:
    """The training stage's output."""

    trainer: Any
    args: Any
    plan: Any
    callback: Any
    budget_cb: Any
    metric: str
    greater: bool
    watch_ds: Any
    has_metrics: bool
    last_pass: dict[str, Any]
    train_output: Any
    step: int


@dataclass
class _Final:
    """What the finished adapter folder records besides the weights."""

    metrics: dict[str, Any]
    extra: dict[str, Any]
    budget: dict[str, Any]
    main_metric: str | None
    directions: dict[str, bool | None]
    tables: dict[str, dict[str, float]]


def _train(run: _Run) -> TrainResult:
    """The run in stages: resolve (task, options, model folder), open (marker file, registry), data, model,
    features, fit, finalize. Each stage reads the run's context and returns what the next ones need."""
    try:
        task, options, model_dir, has_safetensors = _resolve_stage(run)
        _open_stage(run)
        data = _data_stage(run, task, options)
        built = _model_stage(run, task, options, data, model_dir, has_safetensors)
        feats = _features_stage(run, task, options, data, built)
        fit = _fit_stage(run, task, options, feats, built)
        if fit.callback.cancelled:
            return _cancelled(run, resumed=fit.callback.start_step, n_train=feats.n_train, n_eval=feats.n_eval)
        return _finalize_stage(run, task, options, feats, built, fit)
    except _Cancelled:
        return _cancelled(run, resumed=0, n_train=0, n_eval=0)
    except BaseException as exc:  # noqa: BLE001 - turned into one clear error, then re-raised
        _fail(run, exc)
        raise
    finally:
        if run.log is not None:
            run.log.close()


def _resolve_stage(run: _Run) -> tuple[Any, Any, Path, bool]:
    """The task, its typed options and the base model's folder (downloaded if needed, checked for safety)."""
    from hubmgr.plugins import get_task

    config = run.config
    task = get_task(config.task)
    run.task = task
    options = task.make_options(typed_options(task, config.options))
    _check_qlora(config, run.device)
    model_dir, base_revision = resolve_model(config, settings=run.settings)
    run.base_revision = base_revision
    has_safetensors = check_model_folder(model_dir, config)
    return task, options, model_dir, has_safetensors


def _open_stage(run: _Run) -> None:
    """The .partial folder with its marker file, config and event log; the registry's row; ``on_run_start``."""
    from hubmgr.runs import live

    config = run.config
    if run.dist.is_main:
        run.partial.mkdir(parents=True, exist_ok=True)
        live.clear_stop(run.partial)  # a stop asked of an earlier attempt is not asked of this one
        run.log = live.EventLog(run.partial)
        outputs.write_json(
            run.partial / outputs.RUN_FILE,
            {
                "run_id": run.run_id,
                "status": "running",
                "task": config.task,
                "model": config.model,
                "base_model": config.model,
                "revision": run.base_revision,
                "base_revision": run.base_revision,
                "output_dir": str(run.out),
                "started": outputs.now_iso(),
                "pid": os.getpid(),
                "world_size": run.dist.world_size,
            },
        )
        config.to_toml(run.partial / outputs.CONFIG_FILE)
        run.registry.call(
            "create_run",
            run_id=run.run_id,
            task=config.task,
            model=config.model,
            revision=run.base_revision,
            config=config.to_dict(),
            output_dir=str(run.out),
        )
        run.registered = True
        _hook("on_run_start", run=run.run_info, failures=run.hook_failures)
    _stop_if_cancelled(run.cancel)


def _data_stage(run: _Run, task: Any, options: Any) -> Any:
    """The task's data: the training split and the evaluation split (given, or held out)."""
    from hubmgr.task import DataSource

    config = run.config
    source = DataSource(
        train=config.data,
        eval=config.eval_data,
        train_split=config.train_split,
        eval_split=config.eval_split,
        eval_fraction=config.eval_fraction if config.eval_strategy != "no" else 0.0,
        max_train_samples=config.max_train_samples,
        max_eval_samples=config.max_eval_samples,
        seed=config.seed,
    )
    with run.main_first():
        data = task.load_data(source, options)
    if data.train is None or len(data.train) == 0:
        raise DataError(f"The training data ({config.data}) is empty.")
    _stop_if_cancelled(run.cancel)
    return data


def _model_stage(run: _Run, task: Any, options: Any, data: Any, model_dir: Path, has_safetensors: bool) -> _Model:
    """The base model in the run's precision, with LoRA adapters on the layers the task and config choose."""
    import torch

    config, device = run.config, run.device
    load_dtype, mixed = _pick_dtype(config, device)
    load_kwargs: dict[str, Any] = {
        "dtype": load_dtype,
        "trust_remote_code": bool(config.trust_remote_code),
        "use_safetensors": bool(has_safetensors),
        "local_files_only": True,
    }
    if device == "cpu" and mixed == "bf16":
        # PyTorch's fused CPU attention is slow in bfloat16, its backward above all: with plain ("eager")
        # attention a LoRA step of all-MiniLM-L6-v2 ran 1.75x faster on SST-2 and 1.27x at 512 tokens.
        load_kwargs["attn_implementation"] = "eager"
    if config.qlora:
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if mixed == "bf16" else torch.float16
        load_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        load_kwargs["device_map"] = {"": run.dist.local_rank}
        load_kwargs.pop("dtype")
    torch.manual_seed(config.seed)
    model, processor = task.load_model(str(model_dir), options, data, load_kwargs)
    if not config.keep_model_dropout:  # the frozen base needs no dropout; it costs a lot on a CPU
        from hubmgr.train.lora import set_model_dropout

        set_model_dropout(model, 0.0)
    _stop_if_cancelled(run.cancel)

    from peft import get_peft_model

    from hubmgr.train.lora import build_lora_config, resolve_target_modules

    defaults = task.lora_defaults(model, options)
    targets = resolve_target_modules(model, config.target_modules, defaults.target_modules)
    lora_config = build_lora_config(config, defaults, target_modules=targets, model=model)
    if config.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    try:
        model = get_peft_model(model, lora_config)
    except ValueError as exc:
        raise ModelError(f"Cannot put LoRA adapters on {config.model}: {first_line(exc)}") from None
    for param in model.parameters():  # adapters and heads train in float32 (autocast handles the rest)
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    trainable, total = model.get_nb_trainable_parameters()
    return _Model(
        model=model,
        processor=processor,
        mixed=mixed,
        targets=list(targets),
        modules_to_save=list(defaults.modules_to_save or []),
        trainable=int(trainable),
        total=int(total),
    )


def _features_stage(run: _Run, task: Any, options: Any, data: Any, built: _Model) -> _Features:
    """The splits preprocessed by the task (training with lengths for grouping, evaluation longest first)."""
    config = run.config
    with run.main_first():
        train_ds = task.preprocess(data.train, built.processor, options, config.max_length, data)
        eval_ds = None
        if data.eval is not None and len(data.eval) > 0 and config.eval_strategy != "no":
            eval_ds = task.preprocess(data.eval, built.processor, options, config.max_length, data)
        train_ds, has_length = _with_lengths(train_ds)
        eval_ds = _longest_first(eval_ds)
    if len(train_ds) == 0:
        raise DataError(f"The training data ({config.data}) has no usable examples after preprocessing.")
    _stop_if_cancelled(run.cancel)
    return _Features(data=data, train_ds=train_ds, eval_ds=eval_ds, has_length=has_length)


def _fit_stage(run: _Run, task: Any, options: Any, feats: _Features, built: _Model) -> _Fit:
    """Plan the budget, build the Trainer with hubmgr's callbacks, and train (resuming where asked)."""
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from hubmgr.runs import live
    from hubmgr.task import call_reduce_logits, compute_metric_values
    from hubmgr.train._callback import BudgetCallback, EventCallback
    from hubmgr.train.budget import Schedule, plan_budget

    dist, data, eval_ds = run.dist, feats.data, feats.eval_ds
    metric, greater = task.main_metric_for(data)
    plan = plan_budget(run.config, n_train=feats.n_train, n_eval=feats.n_eval, world_size=dist.world_size)
    if run.config.batch_size is None:  # from here on the config says the batch the run uses
        run.config = dataclasses.replace(run.config, batch_size=plan.batch_size)
    config = run.config
    assert config.batch_size is not None  # set from the plan just above
    watch_ds = eval_ds
    if plan.eval_sample is not None and eval_ds is not None:
        watch_ds = _longest_first(eval_ds.shuffle(seed=config.seed).select(range(plan.eval_sample)))
    schedule = Schedule(plan.warmup_steps) if plan.auto else None

    args = _training_args(
        config,
        task=task,
        out_dir=run.partial,
        use_cpu=(run.device == "cpu"),
        mixed=built.mixed,
        has_eval=eval_ds is not None,
        has_length=feats.has_length,
        dist=dist,
        run_id=run.run_id,
        plan=plan,
        metric=metric,
        greater_is_better=greater,
    )
    callback = EventCallback(
        emit=run.emit,
        cancel=run.cancel,
        samples_per_step=config.batch_size * config.grad_accum * dist.world_size,
        stop_requested=live.StopWatcher(run.partial),
        world_size=dist.world_size,
        started=dict(
            run_id=run.run_id,
            task=config.task,
            model=config.model,
            output_dir=str(run.out),
            num_train_examples=feats.n_train,
            num_eval_examples=feats.n_eval,
            trainable_params=built.trainable,
            total_params=built.total,
            device=run.device if dist.world_size == 1 else f"{run.device} x{dist.world_size}",
            precision=_precision_label(built.mixed, qlora=bool(config.qlora)),
            budget="auto" if plan.auto else "fixed",
            main_metric=metric,
        ),
    )
    callbacks: list[Any] = [callback]
    budget_cb = None
    if plan.auto:
        budget_cb = BudgetCallback(
            plan=plan,
            schedule=schedule,
            metric=metric,
            greater_is_better=greater,
            sample=len(watch_ds) if watch_ds is not None else 0,
            world_size=dist.world_size,
        )
        callbacks.append(budget_cb)
    elif config.early_stopping_patience and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    has_metrics = type(task).compute_metrics is not _task_base().compute_metrics
    last_pass: dict[str, Any] = {}

    def metrics_fn(p: Any) -> dict[str, float]:
        last_pass["predictions"], last_pass["labels"] = p.predictions, p.label_ids
        scalars, last_pass["tables"] = compute_metric_values(task, p.predictions, p.label_ids, data, options)
        return scalars

    own_loss = type(task).compute_loss is not _task_base().compute_loss
    trainer = _make_trainer(
        model=built.model,
        args=args,
        train_dataset=feats.train_ds,
        eval_dataset=watch_ds,
        data_collator=_DropLength(task.collator(built.processor, options)),
        processing_class=built.processor,
        compute_metrics=metrics_fn if has_metrics else None,
        preprocess_logits_for_metrics=(lambda logits, labels: call_reduce_logits(task, logits, labels, options, data))
        if has_metrics
        else None,
        callbacks=callbacks,
        head_learning_rate=plan.head_learning_rate,
        schedule=schedule,
        task_loss=(lambda outputs, labels: task.compute_loss(outputs, labels, data, options)) if own_loss else None,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)

    resume_from = None
    if config.resume:
        if dist.is_main:
            outputs.remove_incomplete_checkpoints(run.partial)
        ckpt = outputs.last_checkpoint(run.partial)
        resume_from = str(ckpt) if ckpt else None
        if ckpt is not None and dist.is_main:
            # the steps after the checkpoint are trained again: their first record goes, so each step
            # is in the history once
            run.registry.call("drop_metrics_after", run.run_id, int(ckpt.name.rsplit("-", 1)[1]))

    tb_env = config.report_to == "tensorboard" and "TENSORBOARD_LOGGING_DIR" not in os.environ
    if tb_env:
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(run.settings.runs_dir) / "tensorboard" / run.run_id)
    try:
        train_output = trainer.train(resume_from_checkpoint=resume_from)
    finally:
        if tb_env:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
    step = int(trainer.state.global_step)
    run.step = step
    return _Fit(
        trainer=trainer,
        args=args,
        plan=plan,
        callback=callback,
        budget_cb=budget_cb,
        metric=metric,
        greater=greater,
        watch_ds=watch_ds,
        has_metrics=has_metrics,
        last_pass=last_pass,
        train_output=train_output,
        step=step,
    )


def _finalize_stage(run: _Run, task: Any, options: Any, feats: _Features, built: _Model, fit: _Fit) -> TrainResult:
    """The final evaluation on the whole eval split (with the kept weights), the task's calibration and extras,
    why the run stopped, the adapter folder, the registry's record and the end events."""
    from hubmgr.metrics import task_directions
    from hubmgr.task import call_extra_eval, compute_metric_values

    config, dist, data, eval_ds = run.config, run.dist, feats.data, feats.eval_ds
    trainer, callback, metric, greater, step, last_pass = (
        fit.trainer,
        fit.callback,
        fit.metric,
        fit.greater,
        fit.step,
        fit.last_pass,
    )
    metrics: dict[str, Any] = {}
    summary = dict(callback.train_summary)
    if fit.train_output is not None and getattr(fit.train_output, "metrics", None):
        summary.update({k: v for k, v in fit.train_output.metrics.items() if isinstance(v, (int, float))})
    for key in ("train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second"):
        if key in summary:
            metrics[key] = float(summary[key])
    best_step = getattr(trainer.state, "best_global_step", None) if fit.args.load_best_model_at_end else None
    history = _eval_history(trainer.state.log_history, metric)
    notes: list[str] = []
    if eval_ds is not None:
        if (
            fit.watch_ds is not eval_ds
            or callback.last_eval_step != step
            or (best_step and best_step != step)
            or (fit.has_metrics and not last_pass)
        ):
            # the whole eval split, with the weights kept (the best checkpoint, reloaded)
            trainer.evaluate(eval_dataset=eval_ds)
        final = dict(callback.last_eval)
        if fit.has_metrics and last_pass:
            tuned = task.calibrate(last_pass["predictions"], last_pass["labels"], data, options) or {}
            if tuned:
                data.info.update(tuned)
                scalars, last_pass["tables"] = compute_metric_values(
                    task, last_pass["predictions"], last_pass["labels"], data, options
                )
                final.update(scalars)
            notes += _weak_result_notes(task, data, options, final, last_pass["labels"], metric, greater)
        metrics.update({f"eval_{k}": v for k, v in final.items() if isinstance(v, (int, float))})
    metrics["step"] = step
    metrics["epoch"] = float(trainer.state.epoch or 0.0)
    stop_reason, rising = _stop_reason(
        config,
        fit.plan,
        fit.budget_cb,
        history,
        metric,
        greater,
        best_step=best_step,
        epoch=metrics["epoch"],
        step=step,
    )
    if rising:
        notes.append(rising)
    notes += [f"{message} (the run went on without it)." for message in run.hook_failures]
    train_loss = metrics.get("train_loss")
    if train_loss is not None and not math.isfinite(train_loss):
        raise TrainingError(
            f"Loss became NaN by step {step}; lower the learning rate (it was {config.learning_rate:g})."
        )

    extra: dict[str, Any] = {}
    if dist.is_main:
        try:
            extra = call_extra_eval(
                task,
                built.model,
                built.processor,
                options,
                data,
                predictions=last_pass.get("predictions"),
                labels=last_pass.get("labels"),
                split=eval_ds if last_pass else None,
            )
        except Exception as exc:  # extras are a bonus, never a failure
            logger.debug("extra_eval failed: %s", exc)

    # every metric measured, the main one and those the task declares (a run too short to evaluate still
    # records how its metrics read, for `hubmgr eval` and the TUI later)
    declared = dict(getattr(task, "metric_directions", None) or {})
    names = [k for k in metrics if k.startswith("eval_")] + [f"eval_{metric}"] + [f"eval_{k}" for k in declared]
    directions = task_directions(task, data, names, main=(metric, greater))
    tables = dict(last_pass.get("tables") or {}) if eval_ds is not None else {}
    if dist.is_main:
        _write_final(
            run,
            task,
            built,
            feats,
            _Final(
                metrics=metrics,
                extra=extra,
                main_metric=metric,
                directions=directions,
                tables=tables,
                budget={**fit.plan.to_dict(), "stop_reason": stop_reason, "notes": notes, "best_step": best_step},
            ),
        )
    result = TrainResult(
        run_id=run.run_id,
        status="completed",
        output_dir=run.out,
        metrics=_floats(metrics),
        adapter_path=run.out,
        base_model=config.model,
        base_revision=run.base_revision,
        seconds=run.seconds(),
        global_step=step,
        resumed_from_step=callback.start_step,
        num_train_examples=feats.n_train,
        num_eval_examples=feats.n_eval,
        stop_reason=stop_reason,
        notes=list(notes),
        best_step=best_step,
        epochs=metrics["epoch"],
        main_metric=metric,
        metric_tables=tables,
    )
    if dist.is_main:
        run.registry.call(
            "finish",
            run.run_id,
            status="completed",
            metrics=_floats(metrics),
            adapter_path=str(run.out),
            stop_reason=stop_reason,
            notes=notes,
            main_metric=metric,
            metric_directions=directions,
        )
        run.emit(
            TrainFinished(
                run_id=run.run_id,
                status="completed",
                output_dir=str(run.out),
                metrics=_floats(metrics),
                seconds=result.seconds,
                stop_reason=stop_reason,
                notes=list(notes),
                main_metric=metric,
            )
        )
        _hook("on_run_end", run=run.run_info, result=result)
    return result


def _fail(run: _Run, exc: BaseException) -> None:
    """A run that raised: record how it ended (marker file, registry, end event, ``on_run_end``), then raise
    one clear error for what a user can act on (the exception itself for programming errors)."""
    error = _as_user_error(exc, config=run.config, partial=run.partial, step=run.step)
    if error is None:
        from hubmgr.plugins import plugin_error

        error = plugin_error(exc, run.task)
    status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
    message = str(error) if error is not None else f"{type(exc).__name__}: {exc}"
    if run.dist.is_main:
        shutil.rmtree(run.final_tmp, ignore_errors=True)
        _mark_partial(run.partial, status=status, error=message)
        if run.registered:
            run.registry.call("set_status", run.run_id, status, error=message)
        try:
            run.emit(
                TrainFinished(run_id=run.run_id, status=status, output_dir=None, seconds=run.seconds(), error=message)
            )
        except Exception:  # pragma: no cover - a UI failing while we report a failure
            pass
        if run.registered:
            _hook(
                "on_run_end",
                run=run.run_info,
                result=TrainResult(
                    run_id=run.run_id,
                    status=status,
                    output_dir=None,
                    base_model=run.config.model,
                    base_revision=run.base_revision,
                    seconds=run.seconds(),
                    global_step=run.step,
                ),
            )
    if error is not None and error is not exc:
        if error.__cause__ is exc:  # a plugin's error: its traceback stays reachable (HUBMGR_DEBUG=1)
            raise error from exc
        raise error from None


def _task_base() -> type[Task]:
    from hubmgr.task import Task

    return Task


def typed_options(task: Any, options: dict[str, Any]) -> dict[str, Any]:
    from hubmgr.fields import coerce_options

    return coerce_options(task.options_class, options or {}, source=f"the options of task {task.name!r}")


class _Cancelled(Exception):
    """``cancel`` was set before training started."""


def _stop_if_cancelled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise _Cancelled


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def _as_user_error(exc: BaseException, *, config: TrainConfig, partial: Path, step: int) -> HubmgrError | None:
    """One clear HubmgrError for what a user can act on; None for programming errors and interrupts."""
    if isinstance(exc, HubmgrError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return None
    full = outputs.disk_full(exc, f"the training output ({partial})")
    if full is not None:
        return full
    try:
        import torch

        oom = isinstance(exc, torch.OutOfMemoryError)
    except (ImportError, AttributeError):  # pragma: no cover
        oom = False
    if oom or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
        return TrainingError(
            f"Out of memory at step {step}; lower --batch-size (now {config.batch_size}) or --max-length"
            f" (now {config.max_length}), and use --grad-accum to keep the effective batch."
        )
    if isinstance(exc, MemoryError):
        return TrainingError(f"The machine ran out of memory at step {step}; lower --batch-size or --max-length.")
    return None


def _mark_partial(partial: Path, *, status: str, error: str | None) -> None:
    """Record how an unfinished run ended; remove the folder when it holds nothing to resume."""
    if not partial.is_dir():
        return
    outputs.remove_incomplete_checkpoints(partial)
    if outputs.last_checkpoint(partial) is None:
        shutil.rmtree(partial, ignore_errors=True)
        return
    meta = outputs.read_run_file(partial) or {}
    meta.update(status=status, error=error, ended=outputs.now_iso())
    try:
        outputs.write_json(partial / outputs.RUN_FILE, meta)
    except (OSError, HubmgrError):
        pass


def _cancelled(run: _Run, *, resumed: int, n_train: int, n_eval: int) -> TrainResult:
    """A run stopped by ``cancel`` (or a stop asked from another process): resumable when a checkpoint exists."""
    step, partial = run.step, run.partial
    seconds = run.seconds()
    resumable = outputs.last_checkpoint(partial) is not None
    command = _resume_command(run.out, run.run_id if run.registry.store is not None else None) if resumable else None
    result = TrainResult(
        run_id=run.run_id,
        status="cancelled",
        output_dir=partial if resumable else None,
        metrics={"step": float(step)},
        adapter_path=None,
        base_model=run.config.model,
        base_revision=run.base_revision,
        seconds=seconds,
        global_step=step,
        resumed_from_step=resumed,
        num_train_examples=n_train,
        num_eval_examples=n_eval,
        resume_command=command,
    )
    if run.dist.is_main:
        message = f"Cancelled at step {step}." + (f" Resume with: {command}" if command else "")
        _mark_partial(partial, status="cancelled", error=message)
        run.registry.call("set_status", run.run_id, "cancelled", error=message)
        run.emit(
            TrainFinished(
                run_id=run.run_id,
                status="cancelled",
                output_dir=str(partial) if resumable else None,
                metrics={"step": float(step)},
                seconds=seconds,
                error=None,
            )
        )
        _hook("on_run_end", run=run.run_info, result=result)
    return result


def _training_args(
    config: TrainConfig,
    *,
    task: Any,
    out_dir: Path,
    use_cpu: bool,
    mixed: str | None,
    has_eval: bool,
    has_length: bool,
    dist: _Dist,
    run_id: str,
    plan: Any = None,
    metric: str | None = None,
    greater_is_better: bool | None = None,
) -> Any:
    from transformers import TrainingArguments

    auto = bool(plan is not None and plan.auto and has_eval)
    eval_steps = plan.eval_steps if auto else config.eval_steps
    if not has_eval:
        eval_strategy = "no"
    elif auto:
        eval_strategy = "steps"
    elif config.eval_strategy == "auto":
        eval_strategy = "steps" if config.eval_steps else "epoch"
    else:
        eval_strategy = config.eval_strategy
    if auto and config.save_steps == 0:
        raise UsageError(
            "--epochs auto keeps the best checkpoint, so it cannot run with --save-steps 0;"
            " give --epochs N to train without checkpoints."
        )
    if config.save_steps == 0:
        save_strategy, save_steps = "no", None
    elif config.save_steps:
        save_strategy, save_steps = "steps", config.save_steps
    elif eval_strategy == "steps":
        save_strategy, save_steps = "steps", eval_steps
    else:
        save_strategy, save_steps = "epoch", None
    early = (bool(config.early_stopping_patience) or auto) and eval_strategy != "no"
    if early:
        what = "The automatic budget" if auto else "Early stopping"
        if save_strategy == "no":
            raise UsageError("Early stopping keeps the best checkpoint, so it cannot run with --save-steps 0.")
        if save_strategy != eval_strategy:
            raise UsageError(
                f"{what} keeps the best checkpoint, so checkpoints must follow evaluations:"
                " drop --save-steps or give --eval-steps."
            )
        if eval_strategy == "steps" and cast(int, save_steps) % cast(int, eval_steps):
            raise UsageError(
                f"{what} keeps the best checkpoint: --save-steps must be a multiple of the evaluation interval ({eval_steps})."
            )
    warmup: float | int = config.warmup if config.warmup < 1 else int(config.warmup)
    if plan is not None:
        warmup = int(plan.warmup_steps)
    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir),
        run_name=run_id,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or cast(int, config.batch_size) * 2,  # set by the caller
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=plan.epochs if plan is not None else (1.0 if config.epochs == "auto" else config.epochs),
        max_steps=(plan.max_steps if auto else config.max_steps) or -1,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=warmup,
        weight_decay=config.weight_decay,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        logging_nan_inf_filter=False,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps if eval_strategy == "steps" else None,
        save_strategy=save_strategy,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=early,
        report_to=[] if config.report_to == "none" else [config.report_to],
        seed=config.seed,
        use_cpu=use_cpu,
        bf16=mixed == "bf16",
        fp16=mixed == "fp16",
        dataloader_num_workers=config.num_workers,
        dataloader_persistent_workers=config.num_workers > 0,
        dataloader_pin_memory=not use_cpu,
        remove_unused_columns=False,
        label_names=["labels"],
        train_sampling_strategy="group_by_length" if has_length else "random",
        length_column_name="length",
        disable_tqdm=True,
        log_level="passive",
        save_only_model=False,
        skip_memory_metrics=True,
    )
    if save_steps:
        kwargs["save_steps"] = save_steps
    if early:
        kwargs["metric_for_best_model"] = metric or task.main_metric
        kwargs["greater_is_better"] = bool(task.greater_is_better if greater_is_better is None else greater_is_better)
    if dist.world_size > 1:
        # transformers multiplies the loss by the number of processes when the model accepts loss kwargs,
        # which is right only for losses summed over tokens (causal LM); mean-reduced losses would get a
        # world-size-times larger gradient and logged loss.
        kwargs["average_tokens_across_devices"] = bool(getattr(task, "loss_sums_over_tokens", False))
        kwargs["ddp_find_unused_parameters"] = False
        if use_cpu:
            kwargs["ddp_backend"] = "gloo"
    try:
        return TrainingArguments(**kwargs)
    except ValueError as exc:
        raise UsageError(f"Invalid training settings: {first_line(exc)}") from None


def _write_final(run: _Run, task: Any, built: _Model, feats: _Features, final: _Final) -> None:
    """Write the adapter folder into ``run.final_tmp`` and rename it to ``run.out`` in one step; then drop
    ``run.partial``."""
    from hubmgr.plugins import task_provider

    config, model, processor = run.config, built.model, built.processor
    tmp, out, partial, base_revision = run.final_tmp, run.out, run.partial, run.base_revision
    metrics, seconds = final.metrics, run.seconds()
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # The adapter records the base model as the user named it (a repo id, or an absolute path).
    base_name = config.model
    if Path(config.model).expanduser().is_dir():
        base_name = str(Path(config.model).expanduser().resolve())
    peft_cfg = model.peft_config.get("default") if hasattr(model, "peft_config") else None
    if peft_cfg is not None:
        peft_cfg.base_model_name_or_path = base_name
        if base_revision:
            peft_cfg.revision = base_revision
    # LoRA never targets the embeddings here, so they are not saved; "auto" would ask the Hub (ignoring
    # HF_ENDPOINT and offline mode) whether the vocabulary changed.
    model.save_pretrained(str(tmp), save_embedding_layers=False)
    if processor is not None and hasattr(processor, "save_pretrained"):
        processor.save_pretrained(str(tmp))
    final_config = dataclasses.replace(config, output_dir=str(out), resume=False)
    final_config.to_toml(tmp / outputs.CONFIG_FILE)
    outputs.write_json(tmp / outputs.METRICS_FILE, metrics)
    data_info = dict(getattr(feats.data, "info", {}) or {})
    card = outputs.model_card(
        config=config,
        base_model=base_name if base_name != config.model else config.model,
        base_revision=base_revision,
        task_name=task.name,
        task_description=task.description,
        auto_class=str(getattr(task, "auto_model_class", "AutoModel") or "AutoModel"),
        metrics=metrics,
        num_train=feats.n_train,
        num_eval=feats.n_eval,
        target_modules=built.targets,
        modules_to_save=built.modules_to_save,
        trainable=built.trainable,
        total=built.total,
        steps=int(metrics.get("step", 0)),
        seconds=seconds,
        run_id=run.run_id,
        data_info=data_info,
    )
    (tmp / "README.md").write_text(card, encoding="utf-8")
    previous = outputs.read_run_file(partial) or {}
    outputs.write_json(
        tmp / outputs.RUN_FILE,
        {
            "run_id": run.run_id,
            "status": "completed",
            "task": task.name,
            "model": config.model,
            "base_model": config.model,
            "revision": base_revision,
            "base_revision": base_revision,
            "options": dict(config.options or {}),
            "data_info": data_info,
            "max_length": config.max_length,
            "metrics": metrics,
            "main_metric": final.main_metric,
            "metric_directions": dict(final.directions),
            "metric_tables": dict(final.tables),
            "extra": final.extra,
            "config": final_config.to_dict(),
            "started": previous.get("started"),
            "finished": outputs.now_iso(),
            "seconds": seconds,
            "world_size": run.dist.world_size,
            "hubmgr_version": _version(),
            "task_provider": task_provider(task.name),
            "budget": final.budget,
            "stop_reason": final.budget.get("stop_reason"),
            "notes": final.budget.get("notes") or [],
        },
    )
    if run.log is not None:  # the same log, so that a follower reading it sees the run's end
        run.log.link_into(tmp)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    out.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, out)
    shutil.rmtree(partial, ignore_errors=True)


def _version() -> str | None:
    try:
        import importlib.metadata

        return importlib.metadata.version("hubmgr")
    except Exception:  # pragma: no cover
        return None


def _make_trainer(**kwargs: Any) -> Any:
    from hubmgr.train._trainer import HubmgrTrainer

    return HubmgrTrainer(**kwargs)


def _eval_history(log_history: list[dict[str, Any]], metric: str) -> list[tuple[int, float, float]]:
    """``(step, epoch, value)`` of the main metric at each evaluation during training."""
    out = []
    for entry in log_history or []:
        value = entry.get(f"eval_{metric}")
        if isinstance(value, (int, float)) and math.isfinite(float(value)):
            out.append((int(entry.get("step", 0)), float(entry.get("epoch", 0.0) or 0.0), float(value)))
    return out


def _epoch_of(history: list[tuple[int, float, float]], step: int | None) -> float | None:
    for s, epoch, _ in history:
        if s == step:
            return epoch
    return None


def _stop_reason(
    config: TrainConfig,
    plan: Any,
    budget_cb: Any,
    history: list[tuple[int, float, float]],
    metric: str,
    greater: bool,
    *,
    best_step: int | None,
    epoch: float,
    step: int,
) -> tuple[str, str | None]:
    """Why training stopped, in one sentence, and a note when the metric was still rising at the end."""
    best_epoch = _epoch_of(history, best_step)
    kept = ""
    if best_step is not None and best_epoch is not None:
        value = next(v for s, _, v in history if s == best_step)
        kept = (
            f"; kept the best, epoch {best_epoch:.1f}" if best_step != step else "; the last evaluation was the best"
        ) + f" ({metric} {value:.4f})"
    rising = None
    if budget_cb is not None:
        reason = budget_cb.reason
        if reason == "plateau":
            since = (
                budget_cb.plateau_epoch if budget_cb.plateau_epoch is not None else (budget_cb.cooldown_epoch or epoch)
            )
            text = (
                f"eval {metric} stopped improving after epoch {since:.1f} (no real gain in"
                f" {plural(plan.patience, 'evaluation')}); cooled the learning rate down until epoch {epoch:.1f}{kept}"
            )
        elif reason == "time":
            text = f"the time budget ({config.time_budget}) ran out at epoch {epoch:.1f}{kept}"
        else:
            text = f"reached --max-epochs {config.max_epochs:g} (epoch {epoch:.1f}){kept}"
        if reason in ("time", "max_epochs") and budget_cb.improving_at_cooldown:
            rising = (
                f"Eval {metric} was still improving when the budget ran out; a longer"
                f" {'--time-budget' if reason == 'time' else '--max-epochs'} may give a better adapter."
            )
        return text, rising
    if plan is not None and "no evaluation data" in " ".join(plan.why):
        return (
            "trained one epoch: with no evaluation data there is nothing to decide the budget by (give --eval-data or --eval-fraction)",
            None,
        )
    if config.early_stopping_patience and best_step is not None and step < plan.max_steps:
        return (
            f"eval {metric} did not improve for {config.early_stopping_patience} evaluations (--early-stopping-patience){kept}",
            None,
        )
    what = f"--max-steps {config.max_steps}" if config.max_steps else f"the {_epochs_text(config.epochs)} asked for"
    text = f"trained {what}"
    if len(history) >= 2:
        last, before = (
            history[-1][2],
            max(v for _, _, v in history[:-1]) if greater else min(v for _, _, v in history[:-1]),
        )
        from hubmgr.train.budget import improvement_threshold

        delta = improvement_threshold(before, greater_is_better=greater, sample=1000)
        if (last > before + delta) if greater else (last < before - delta):
            rising = (
                f"Eval {metric} was still improving at the end; more epochs (or --epochs auto) may give a"
                " better adapter."
            )
    return text, rising


def _epochs_text(epochs: Any) -> str:
    n = 1.0 if epochs == "auto" else float(epochs)
    return f"{n:g} epoch" + ("" if n == 1 else "s")


def _weak_result_notes(
    task: Any, data: Any, options: Any, final: dict[str, Any], labels: Any, metric: str, greater: bool
) -> list[str]:
    """A note when the adapter does no better than a predictor that ignores its input."""
    try:
        baseline = task.baseline_metrics(labels, data, options) or {}
    except Exception as exc:  # a plugin's bonus, never a failure
        logger.debug("baseline_metrics failed: %s", exc)
        return []
    ours, trivial = final.get(metric), baseline.get(metric)
    if not isinstance(ours, (int, float)) or not isinstance(trivial, (int, float)):
        return []
    from hubmgr.train.budget import improvement_threshold

    n = len(labels) if hasattr(labels, "__len__") else 1000
    margin = improvement_threshold(float(trivial), greater_is_better=greater, sample=max(1, n))
    weak = ours <= trivial + margin if greater else ours >= trivial - margin
    if not weak:
        return []
    return [
        f"The adapter does no better than a predictor that ignores its input (the most common label, or each"
        f" label's frequency): eval {metric} {ours:.4f} against {trivial:.4f}; try"
        " more data, --epochs auto with a larger --max-epochs, or a higher --learning-rate."
    ]


# --------------------------------------------------------------------------------------------------
# trial: a few real steps, to predict a run's time and memory (hubmgr train --dry-run, hubmgr fit --trial)
# --------------------------------------------------------------------------------------------------
class _CountingCollator:
    """The run's collator, recording each batch's padded and real token counts (examples without token ids)."""

    def __init__(self, inner: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.inner = inner
        self.padded: list[float] = []
        self.real: list[float] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        ids = batch.get("input_ids") if isinstance(batch, dict) else None
        if ids is not None and hasattr(ids, "shape") and len(ids.shape) == 2:
            self.padded.append(float(ids.shape[0] * ids.shape[1]))
            self.real.append(float(sum(len(f["input_ids"]) for f in features if "input_ids" in f) or ids.numel()))
        else:
            self.padded.append(float(len(features)))
            self.real.append(float(len(features)))
        return batch


def _tokens(dataset: Any) -> float:
    """Tokens of a preprocessed split (its ``length`` column), else its examples."""
    if dataset is None:
        return 0.0
    if "length" in dataset.column_names:
        return float(sum(int(n) for n in dataset["length"]))
    return float(len(dataset))


def _peak_memory(device: str) -> tuple[int, str, int | None]:
    """(peak bytes, what they measure, bytes available now) for the trial's device."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        free, _total = torch.cuda.mem_get_info(index)
        return int(torch.cuda.max_memory_reserved(index)), "GPU memory", int(free)
    import resource
    import sys

    from hubmgr.hub.fit import cpu_device

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux
    try:
        available: int | None = int(cpu_device().free_bytes)
    except Exception:  # noqa: BLE001 - psutil missing or unreadable: no verdict
        available = None
    return peak, "RAM", available


def trial(
    config: TrainConfig,
    *,
    steps: int | None = None,
    settings: "Settings | None" = None,
) -> Any:
    """Predict what :func:`train` with ``config`` will cost here, from a few real steps.

    The run is built as :func:`train` builds it (model, data, LoRA layers, precision, batch size, budget
    plan); ``steps`` optimizer steps are timed (the first is a warm-up), an evaluation pass on a sample of the
    eval split is timed, and the process's peak memory is read. Nothing is written: no output folder, no
    run record, no checkpoint, no plugin run hooks.

    Args:
        config: the run's config (validated here; ``output_dir`` is not checked or created).
        steps: steps to time (default :data:`hubmgr.train.trial.TRIAL_STEPS`; at least 2).
        settings: cache, offline flag and data folders (default: from the environment).

    Returns:
        A :class:`hubmgr.train.trial.TrialReport`.

    Raises:
        The errors of :func:`train`'s stages before training (bad config, data, model).
    """
    import tempfile

    from hubmgr.config import get_settings
    from hubmgr.train import trial as trial_mod
    from hubmgr.train.budget import plan_budget

    t0 = time.perf_counter()
    steps = max(2, int(steps or trial_mod.TRIAL_STEPS))
    settings = settings or get_settings()
    config = dataclasses.replace(
        config,
        options=dict(config.options or {}),
        target_modules=list(config.target_modules) if config.target_modules else None,
        resume=False,
    )
    config.validate()
    config = config.with_absolute_paths()
    dist = _Dist(rank=0, local_rank=0, world_size=1)
    with quiet(), tempfile.TemporaryDirectory(prefix="hubmgr-trial-") as tmp:
        _set_threads(dist)
        device = _pick_device(config, dist)
        from hubmgr.hookspecs import RunInfo

        out = Path(tmp) / "run"
        run = _Run(
            config=config,
            settings=settings,
            dist=dist,
            device=device,
            run_id="trial",
            out=out,
            partial=outputs.partial_dir(out),
            state=None,
            t0=t0,
            cancel=threading.Event(),
            registry=_Registry(settings, enabled=False),
            run_info=RunInfo(run_id="trial", task=config.task, model=config.model, output_dir=str(out), config={}),
        )
        task, options, model_dir, has_safetensors = _resolve_stage(run)
        data = _data_stage(run, task, options)
        built = _model_stage(run, task, options, data, model_dir, has_safetensors)
        feats = _features_stage(run, task, options, data, built)
        plan = plan_budget(config, n_train=feats.n_train, n_eval=feats.n_eval, world_size=1)
        batch = int(config.batch_size or plan.batch_size)
        timed = dataclasses.replace(
            config,
            batch_size=batch,
            max_steps=steps,
            epochs=1.0,
            save_steps=0,
            eval_strategy="no",
            early_stopping_patience=None,
            report_to="none",
            logging_steps=steps,
        )
        args = _training_args(
            timed,
            task=task,
            out_dir=run.partial,
            use_cpu=(device == "cpu"),
            mixed=built.mixed,
            has_eval=False,
            has_length=feats.has_length,
            dist=dist,
            run_id="trial",
        )
        collator = _CountingCollator(_DropLength(task.collator(built.processor, options)))
        from hubmgr.train._callback import StepTimer

        timer = StepTimer()
        own_loss = type(task).compute_loss is not _task_base().compute_loss
        trainer = _make_trainer(
            model=built.model,
            args=args,
            train_dataset=feats.train_ds,
            data_collator=collator,
            processing_class=built.processor,
            callbacks=[timer],
            head_learning_rate=plan.head_learning_rate,
            task_loss=(lambda outputs, labels: task.compute_loss(outputs, labels, data, options)) if own_loss else None,
        )
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        timer.ready = time.perf_counter()
        trainer.train()
        startup = (timer.first_begin or timer.ready) - t0
        # the first step warms up kernels and allocators; the collator may have run a batch ahead
        n = min(len(timer.seconds), len(collator.padded))
        step_seconds, step_tokens, real = timer.seconds[1:n], collator.padded[1:n], collator.real[1:n]
        eval_seconds: list[float] = []
        eval_tokens: list[float] = []
        if feats.eval_ds is not None and len(feats.eval_ds) > 0:
            from hubmgr.task import call_reduce_logits, compute_metric_values

            has_metrics = type(task).compute_metrics is not _task_base().compute_metrics
            trainer.compute_metrics = (
                (lambda p: compute_metric_values(task, p.predictions, p.label_ids, data, options)[0])
                if has_metrics
                else None
            )
            trainer.preprocess_logits_for_metrics = (
                (lambda logits, labels: call_reduce_logits(task, logits, labels, options, data))
                if has_metrics
                else None
            )
            # two passes of different sizes: an evaluation's fixed cost and its cost per token
            count = min(len(feats.eval_ds), trial_mod.TRIAL_EVAL_EXAMPLES)
            shuffled = feats.eval_ds.shuffle(seed=config.seed)
            for size in sorted({max(1, count // 4), count}):
                sample = _longest_first(shuffled.select(range(size)))
                t_eval = time.perf_counter()
                trainer.evaluate(eval_dataset=sample)
                eval_seconds.append(time.perf_counter() - t_eval)
                eval_tokens.append(_tokens(sample))
        peak, kind, available = _peak_memory(device)
        measurements = trial_mod.TrialMeasurements(
            startup_seconds=startup,
            step_seconds=step_seconds,
            step_tokens=step_tokens,
            step_real_tokens=real,
            train_tokens=_tokens(feats.train_ds),
            eval_seconds=eval_seconds,
            eval_tokens=eval_tokens,
            eval_tokens_total=_tokens(feats.eval_ds),
            peak_memory_bytes=peak,
            memory_kind=kind,
            available_memory_bytes=available,
        )
        return trial_mod.predict(
            measurements,
            plan,
            task=config.task,
            model=config.model,
            device=device,
            precision=_precision_label(built.mixed, qlora=bool(config.qlora)),
            n_train=feats.n_train,
            n_eval=feats.n_eval,
            trial_seconds=time.perf_counter() - t0,
        )
