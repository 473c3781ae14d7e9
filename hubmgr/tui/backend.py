"""The TUI's single door to the core.

Screens never import ``hubmgr.hub``, ``hubmgr.train`` & co. directly: they call a backend that the app
receives at construction. :class:`BackendProtocol` is what they may call (the app and the screens are
typed against it); :class:`Backend` is the real one. Tests pass a backend of their own (pointing at the Hub
double, or one that fails on purpose). Every core module is imported lazily inside the method that needs
it, so opening the app stays light (no torch).

All methods are synchronous and are called from worker threads.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar, Unpack

from hubmgr.errors import HubmgrError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    import subprocess

    from hubmgr.config import Settings
    from hubmgr.eval.merge import MergeResult
    from hubmgr.eval.predict import Prediction, Predictor
    from hubmgr.eval.runner import EvalReport
    from hubmgr.fields import FieldSpec
    from hubmgr.hub.cache import CachedRepo, RepairPlan, VerifyResult
    from hubmgr.hub.download import DownloadResult
    from hubmgr.hub.events import EventCallback, VerifyProgress
    from hubmgr.hub.fit import DeviceFit, FitReport
    from hubmgr.hub.info import ModelDetails
    from hubmgr.hub.search import SearchPage
    from hubmgr.plugins import PluginInfo
    from hubmgr.runs.store import AdapterRecord, MetricPoint, RunRecord, RunStore
    from hubmgr.task import Task
    from hubmgr.train.config import TrainConfig
    from hubmgr.train.events import EvalProgress, TrainEvent
    from hubmgr.train.trial import TrialReport

#: Fields of TrainConfig that the Train screen asks for with its own widgets (not the generic form).
TRAIN_FIELDS_HANDLED_BY_SCREEN = frozenset({"model", "task", "data", "eval_data", "options"})
#: Fields of the generic form that the Train screen shows under Basic, next to model, task and data; the
#: rest go under Advanced.
TRAIN_BASIC_FIELDS = ("epochs", "max_epochs", "time_budget", "learning_rate", "output_dir")


class FitOptions(TypedDict, total=False):
    """The settings :meth:`Backend.estimate_fit` passes on to ``hubmgr.hub.fit.estimate_fit_for_model``."""

    dtype: str | None
    lora_rank: int
    batch_size: int
    seq_len: int
    devices: list[DeviceFit] | None


class HasPath(Protocol):
    """A repo file as :meth:`Backend.download_selection` needs it (``hubmgr.hub.info.RepoFile`` is one)."""

    @property
    def path(self) -> str: ...


_FileT = TypeVar("_FileT", bound=HasPath)


class BackendProtocol(Protocol):
    """Every backend call the app and its screens make; what a backend for the TUI must provide.

    :class:`Backend` is the real one; a test double (``tests.tui.fakes.FakeBackend``) subclasses it. The
    results are the core's own types. See :class:`Backend` for what each method does.
    """

    # -- settings
    def settings(self) -> Settings: ...

    def offline(self) -> bool: ...

    # -- Hub
    def search(
        self,
        query: str | None = None,
        *,
        task: str | None = None,
        library: str | None = None,
        sort: str = "downloads",
        limit: int = 30,
        cursor: str | None = None,
    ) -> SearchPage: ...

    def model_info(self, repo_id: str, *, revision: str | None = None) -> ModelDetails: ...

    def estimate_fit(self, details: ModelDetails, **kwargs: Unpack[FitOptions]) -> FitReport | None: ...

    def download(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> DownloadResult: ...

    def download_selection(
        self,
        files: list[_FileT],
        *,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
    ) -> tuple[list[_FileT], bool]: ...

    def downloads_file(self) -> Path: ...

    def train_form_file(self) -> Path: ...

    def download_in_background(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
        name: str,
    ) -> tuple[int, Path]: ...

    def finished_download(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        commit: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
    ) -> str | None: ...

    def cached_files(self, repo_id: str, commit: str, paths: list[str]) -> set[str]: ...

    # -- cache
    def list_cached(self) -> list[CachedRepo]: ...

    def delete_repo(self, repo_id: str) -> int: ...

    def verify(
        self, repo_id: str | None = None, *, on_event: Callable[[VerifyProgress], None] | None = None
    ) -> list[VerifyResult]: ...

    def prepare_repair(self, repo_id: str, damaged: list[VerifyResult]) -> RepairPlan: ...

    # -- plugins
    def tasks(self) -> dict[str, type[Task]]: ...

    def plugins(self) -> list[PluginInfo]: ...

    def pipeline_tags(self) -> list[str]: ...

    # -- training
    def train_specs(self) -> list[FieldSpec]: ...

    def option_specs(self, task_name: str) -> list[FieldSpec]: ...

    def parse_field(self, spec: FieldSpec, text: str) -> Any: ...

    def make_train_config(self, values: dict[str, Any]) -> TrainConfig: ...

    def check_train_inputs(self, config: TrainConfig) -> dict[str, str]: ...

    def form_message(self, error: BaseException, task_name: str | None = None) -> str: ...

    def estimate_run(self, config: TrainConfig, *, cancel: threading.Event | None = None) -> TrialReport | None: ...

    def start_run(self, config: TrainConfig) -> str: ...

    def resume_run(self, run_id: str) -> str: ...

    def follow_run(
        self,
        run_id: str,
        *,
        on_event: Callable[[TrainEvent], None],
        should_stop: Callable[[], bool] | None = None,
    ) -> RunRecord: ...

    def stop_run(self, run_id: str) -> bool: ...

    # -- runs
    def list_runs(self) -> list[RunRecord]: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def metrics_history(self, run_id: str) -> list[MetricPoint]: ...

    def metric_tables(self, run: RunRecord) -> dict[str, dict[str, float]]: ...

    def list_adapters(self) -> list[AdapterRecord]: ...

    def adapter_of(self, run: RunRecord) -> AdapterRecord | None: ...

    def adapters_on(self, repo_id: str) -> list[AdapterRecord]: ...

    def delete_run(self, run_id: str, *, forget_run: bool = True, delete_adapter: bool = False) -> None: ...

    def resume_point(self, run_id: str) -> str: ...

    def merge_adapter(self, adapter: str, output: str, *, trust_remote_code: bool = False) -> MergeResult: ...

    def run_folder(self, run: RunRecord) -> tuple[Path, bool] | None: ...

    def evaluate(
        self,
        base_model: str,
        adapters: list[str],
        *,
        task: str,
        data: str,
        options: dict[str, Any] | None = None,
        split: str = "eval",
        on_event: Callable[[EvalProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> EvalReport: ...

    def predict(self, adapter: str, inputs: list[Any], *, compare: bool = True) -> list[Prediction]: ...


class Backend:
    """Wraps the core calls the TUI makes (it satisfies :class:`BackendProtocol`).

    Args:
        settings: fixed settings; default: read from the environment on each call
            (``hubmgr.config.get_settings``), as the CLI does.
    """

    def __init__(self, settings: "Settings | None" = None) -> None:
        self._settings = settings
        self._predictor: "Predictor | None" = None  # the adapter last tried (Run detail, Try tab), kept loaded

    # -- settings ------------------------------------------------------------------------------------
    def settings(self) -> "Settings":
        """The settings in force now."""
        if self._settings is not None:
            return self._settings
        from hubmgr.config import get_settings

        return get_settings()

    def offline(self) -> bool:
        """True when the user asked for offline mode (HF_HUB_OFFLINE)."""
        try:
            return bool(self.settings().offline)
        except Exception:  # settings unreadable: let the Hub calls say what is wrong
            return False

    def endpoint(self) -> str:
        return self.settings().endpoint

    # -- Hub -----------------------------------------------------------------------------------------
    def search(
        self,
        query: str | None = None,
        *,
        task: str | None = None,
        library: str | None = None,
        sort: str = "downloads",
        limit: int = 30,
        cursor: str | None = None,
    ) -> "SearchPage":
        """One page of search results."""
        from hubmgr.hub.search import search_models

        return search_models(
            query or None,
            task=task or None,
            library=library or None,
            sort=sort,
            limit=limit,
            cursor=cursor,
            settings=self._settings,
        )

    def model_info(self, repo_id: str, *, revision: str | None = None) -> "ModelDetails":
        """Details of one repo."""
        from hubmgr.hub.info import get_model_info

        return get_model_info(repo_id, revision=revision, settings=self._settings)

    def estimate_fit(self, details: "ModelDetails", **kwargs: Unpack[FitOptions]) -> "FitReport | None":
        """Memory estimate for LoRA training of a repo, or None when its size is unknown."""
        if not getattr(details, "param_count", None):
            return None
        from hubmgr.hub.fit import estimate_fit_for_model

        return estimate_fit_for_model(details, **kwargs)

    def download(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
        on_event: "EventCallback | None" = None,
        cancel: threading.Event | None = None,
    ) -> "DownloadResult":
        """Download (or resume) a repo into the shared cache."""
        from hubmgr.hub.download import download_repo

        return download_repo(
            repo_id,
            revision=revision,
            include=include or None,
            exclude=exclude or None,
            allow_pickle=allow_pickle,
            on_event=on_event,
            cancel=cancel,
            settings=self._settings,
        )

    def download_selection(
        self,
        files: list[_FileT],
        *,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
    ) -> tuple[list[_FileT], bool]:
        """What :meth:`download` with these filters fetches of ``files`` (objects with a ``path``, such as
        ``RepoFile``), by the rule the download itself follows (``hubmgr.hub.files.select_files``).

        Returns:
            ``(the files it fetches, in the given order; True when it would refuse to download because only
            pickle weights are left)``.
        """
        from hubmgr.hub.files import pickle_only_error, select_files

        by_path = {f.path: f for f in files}
        selected, skipped = select_files(
            list(by_path), include=include or None, exclude=exclude or None, allow_pickle=allow_pickle
        )
        refused = pickle_only_error("the repo", selected, skipped) is not None
        return [by_path[p] for p in selected], refused

    def train_form_file(self) -> Path:
        """Where the TUI keeps the Train form's last values between launches (``train-form.json``)."""
        return Path(self.settings().data_dir) / "train-form.json"

    def downloads_file(self) -> Path:
        """Where the TUI keeps its download queue between launches (``downloads.json`` in hubmgr's data)."""
        return Path(self.settings().data_dir) / "downloads.json"

    def download_in_background(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
        name: str,
    ) -> tuple[int, Path]:
        """Start ``hubmgr download REPO ...`` as a detached process that outlives the TUI.

        It resumes what an in-process download of the same repo left (waiting on each file's lock while
        that one still holds it). Its output goes to ``HUBMGR_HOME/launch/{name}.log``.

        Returns:
            ``(pid, log path)``.

        Raises:
            OSError: the process could not be started.
        """

        from hubmgr.runs import live

        args = ["download", repo_id]
        if revision:
            args.append(f"--revision={revision}")
        args += [f"--include={g}" for g in include or ()]
        args += [f"--exclude={g}" for g in exclude or ()]
        if allow_pickle:
            args.append("--allow-pickle")
        proc = live.spawn_detached(args, run_id=name, settings=self.settings(), env=self._child_env())
        return proc.pid, live.log_path(name, self.settings())

    def _child_env(self) -> dict[str, str] | None:
        """The environment of a ``hubmgr`` child process: with fixed settings, those (not the environment's);
        None (inherit the environment) otherwise."""
        import os

        if self._settings is None:
            return None
        s = self._settings
        env = dict(os.environ, HF_ENDPOINT=s.endpoint, HF_HUB_CACHE=str(s.hub_cache), HUBMGR_HOME=str(s.data_dir))
        if s.offline:
            env["HF_HUB_OFFLINE"] = "1"
        else:
            env.pop("HF_HUB_OFFLINE", None)
        return env

    def finished_download(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        commit: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
    ) -> str | None:
        """The snapshot folder when this download is complete in the cache (nothing asked from the Hub), else None."""
        from hubmgr.hub.cache import snapshot_status
        from hubmgr.hub.download import cached_snapshot

        result = cached_snapshot(
            repo_id,
            revision=commit or revision,
            include=include or None,
            exclude=exclude or None,
            allow_pickle=allow_pickle,
            settings=self._settings,
        )
        if result is None:
            return None
        try:
            if not snapshot_status(repo_id, result.commit, settings=self._settings).complete:
                return None
        except HubmgrError:
            return None
        return str(result.path)

    # -- cache ---------------------------------------------------------------------------------------
    def cached_files(self, repo_id: str, commit: str, paths: list[str]) -> set[str]:
        """Which of a commit's repo files are in the cache already (their blob present)."""
        from hubmgr.hub import layout

        return layout.cached_paths(layout.repo_dir(self.settings(), repo_id), commit, paths)

    def list_cached(self) -> "list[CachedRepo]":
        from hubmgr.hub.cache import list_cached

        return list(list_cached(settings=self._settings))

    def delete_repo(self, repo_id: str) -> int:
        from hubmgr.hub.cache import delete_repo

        return delete_repo(repo_id, settings=self._settings)

    def verify(
        self, repo_id: str | None = None, *, on_event: "Callable[[VerifyProgress], None] | None" = None
    ) -> "list[VerifyResult]":
        from hubmgr.hub.cache import verify

        return list(verify(repo_id, on_event=on_event, settings=self._settings))

    def prepare_repair(self, repo_id: str, damaged: "list[VerifyResult]") -> "RepairPlan":
        """Remove the damaged files verify found (``hubmgr.hub.cache.prepare_repair``: the Hub is asked
        first, nothing is removed without it), so that a download of ``plan.files`` fetches them again."""
        from hubmgr.hub.cache import prepare_repair

        return prepare_repair(repo_id, damaged, settings=self._settings)

    def resolve_local(self, repo_id_or_path: str) -> Path:
        from hubmgr.hub.cache import resolve_local

        return resolve_local(repo_id_or_path, settings=self._settings)

    # -- plugins -------------------------------------------------------------------------------------
    def tasks(self) -> "dict[str, type[Task]]":
        """Registered task classes by name."""
        from hubmgr.plugins import get_tasks

        return dict(get_tasks())

    def plugins(self) -> "list[PluginInfo]":
        """Loaded plugins with their hooks and errors."""
        from hubmgr.plugins import list_plugins

        return list(list_plugins())

    def pipeline_tags(self) -> list[str]:
        """Hub pipeline tags of every registered task, sorted, no duplicates."""
        tags: set[str] = set()
        for task in self.tasks().values():
            tags.update(getattr(task, "pipeline_tags", ()) or ())
        return sorted(tags)

    # -- training ------------------------------------------------------------------------------------
    def all_train_specs(self) -> "list[FieldSpec]":
        """Field specs of every TrainConfig field, their help in the form's words (no flags)."""
        from hubmgr.fields import field_specs, form_text
        from hubmgr.train.config import TrainConfig

        specs = field_specs(TrainConfig)
        return [dataclasses.replace(s, help=form_text(s.help, specs)) for s in specs]

    def train_specs(self) -> "list[FieldSpec]":
        """Field specs of TrainConfig for the generic form (the screen asks for model/task/data itself)."""
        return [s for s in self.all_train_specs() if s.name not in TRAIN_FIELDS_HANDLED_BY_SCREEN]

    def option_specs(self, task_name: str) -> "list[FieldSpec]":
        """Field specs of a task's options dataclass (empty for a task without options)."""
        task = self.tasks().get(task_name)
        options_class: type | None = getattr(task, "options_class", None)
        if options_class is None or not dataclasses.is_dataclass(options_class):
            return []
        from hubmgr.fields import field_specs, form_text

        specs = field_specs(options_class)
        return [dataclasses.replace(s, help=form_text(s.help, specs)) for s in specs]

    def form_message(self, error: BaseException, task_name: str | None = None) -> str:
        """An error in the Train form's words: its labels instead of flags and config keys."""
        specs = self.all_train_specs()
        if task_name:
            specs += self.option_specs(task_name)
        from hubmgr.fields import form_message

        return str(form_message(error, specs))

    def parse_field(self, spec: "FieldSpec", text: str) -> Any:
        """What the user typed in a form input, typed by the field (same parser as the CLI): a value of the
        field's own type (int, float, str, list, ...), hence Any."""
        from hubmgr.fields import parse_field_value

        return parse_field_value(spec, text)

    def make_train_config(self, values: dict[str, Any]) -> "TrainConfig":
        """Build and check a TrainConfig from form values; a bad value raises UsageError."""
        from hubmgr.train.config import TrainConfig

        try:
            config = TrainConfig.from_dict(values, source="the form")
            return config.validate()
        except HubmgrError:
            raise
        except (TypeError, ValueError) as exc:
            raise UsageError(f"The training settings are not valid: {exc}.") from None

    def check_train_inputs(self, config: "TrainConfig") -> dict[str, str]:
        """What would make a run of ``config`` fail at once, checked before it starts, without torch and
        without loading the data or the model, by the rules the run applies: the data (and eval data)
        can be read (:func:`hubmgr.data.check_source`) and have the task's columns where the first rows
        show them, the model is on disk or can be downloaded (:func:`hubmgr.train.runner.locate_model`),
        the output folder is free (:func:`hubmgr.train._outputs.check_output`).

        Returns:
            ``{field: the problem in the form's words}``: ``model``, ``data``, ``eval_data``,
            ``output_dir``, ``options`` (or ``options.<name>``); empty when nothing is wrong.
        """
        from hubmgr import data, plugins
        from hubmgr.train import _outputs as outputs
        from hubmgr.train import runner

        settings = self.settings()
        problems: dict[str, BaseException] = {}
        task: Any = None
        options: Any = None
        try:
            task = plugins.get_task(config.task)
            options = task.make_options(runner.typed_options(task, config.options))
        except HubmgrError as exc:
            field = getattr(exc, "field", None)
            problems["task" if task is None else f"options.{field}" if field else "options"] = exc
            task = None
        for name, source, split in (
            ("data", config.data, config.train_split),
            ("eval_data", config.eval_data, config.eval_split),
        ):
            if not source:
                continue
            try:
                check = task.check_source if task is not None else data.check_source
                columns = check(source, split=split, settings=settings)
                if columns is not None and task is not None:
                    required = task.required_columns(options, columns)
                    data.check_column_names(columns, required, source=Path(source).name)
            except HubmgrError as exc:
                problems[name] = exc
        try:
            folder = runner.locate_model(config, settings=settings)
            if folder is not None:
                runner.check_model_folder(folder, config)
        except HubmgrError as exc:
            problems["model"] = exc
        if config.output_dir:
            try:
                outputs.check_output(Path(config.output_dir).expanduser().resolve(), resume=config.resume)
            except HubmgrError as exc:
                problems["output_dir"] = exc
        return {
            name: self.form_message(exc, config.task if task is not None else None) for name, exc in problems.items()
        }

    def estimate_run(self, config: "TrainConfig", *, cancel: threading.Event | None = None) -> "TrialReport | None":
        """Predict a run of ``config`` on this machine: ``hubmgr train --dry-run --json`` (a few real training
        steps and one evaluation, nothing written) in a process of its own, so that the TUI never imports
        torch. The config goes to it as the file a detached run reads (:meth:`TrainConfig.to_toml`).

        Args:
            config: a validated config (see :meth:`make_train_config`).
            cancel: set it to stop the trial; its process is killed.

        Returns:
            The prediction (:class:`hubmgr.train.trial.TrialReport`), or None when cancelled.

        Raises:
            TrainingError: the trial failed; the message is the one sentence the dry run printed.
        """
        import json
        import subprocess
        import sys
        import tempfile

        from hubmgr.errors import TrainingError
        from hubmgr.train.trial import TrialReport

        with tempfile.TemporaryDirectory(prefix="hubmgr-estimate-") as tmp:
            folder = Path(tmp)
            config_file = folder / "train.toml"
            config.with_absolute_paths().to_toml(config_file)
            args = [sys.executable, "-m", "hubmgr", "train", "--config", str(config_file), "--dry-run", "--json"]
            with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self._child_env(),
                    start_new_session=True,  # its own process group: killing it kills what it started
                )
                try:
                    while True:
                        try:
                            proc.wait(timeout=0.1)
                            break
                        except subprocess.TimeoutExpired:
                            if cancel is not None and cancel.is_set():
                                return None
                finally:
                    if proc.poll() is None:
                        _kill_group(proc)
            stdout = (folder / "stdout").read_text(encoding="utf-8", errors="replace")
            stderr = (folder / "stderr").read_text(encoding="utf-8", errors="replace")
        if cancel is not None and cancel.is_set():
            return None
        if proc.returncode == 0:
            try:
                data = json.loads(stdout)
                names = {f.name for f in dataclasses.fields(TrialReport)}
                return TrialReport(**{k: v for k, v in data.items() if k in names})
            except (ValueError, TypeError, AttributeError):
                raise TrainingError("The estimate printed no prediction that could be read.") from None
        raise TrainingError(_last_error(stderr) or f"The estimate failed (exit code {proc.returncode}).")

    # -- training runs: their own processes (hubmgr.runs.live) -----------------------------------------
    def start_run(self, config: "TrainConfig") -> str:
        """Start a training run as a background process (it outlives the TUI); returns its run id."""
        from hubmgr.runs.live import launch_train

        run_id, _pid, _out = launch_train(config, settings=self.settings(), store=self._store())
        return run_id

    def resume_run(self, run_id: str) -> str:
        """Resume a stopped or interrupted run in the background; returns its id."""
        from hubmgr.runs.live import launch_train, resume_config_of

        config = resume_config_of(self._store().get_run(run_id)).validate()
        new_id, _pid, _out = launch_train(config, resume=True, settings=self.settings(), store=self._store())
        return new_id

    def follow_run(
        self,
        run_id: str,
        *,
        on_event: "Callable[[TrainEvent], None]",
        should_stop: Callable[[], bool] | None = None,
    ) -> "RunRecord":
        """Feed ``on_event`` a run's events (so far, then live) until it ends or ``should_stop()``.

        Returns:
            The run's record as it stands at the end (status, metrics, error, stop reason).
        """
        from hubmgr.runs.live import follow
        from hubmgr.train.events import event_from_dict

        store = self._store()
        for data in follow(run_id, store=store, should_stop=should_stop):
            event = event_from_dict(data)
            if event is not None:
                on_event(event)
            if should_stop is not None and should_stop():
                break
        return store.get_run(run_id)

    def stop_run(self, run_id: str) -> bool:
        """Ask a running run to save a checkpoint and stop; False when it cannot be asked (not running)."""
        from hubmgr.runs.live import request_stop

        record = self._store().get_run(run_id)
        return record.status == "running" and request_stop(record)

    # -- runs ----------------------------------------------------------------------------------------
    def _store(self) -> "RunStore":
        from hubmgr.runs.store import RunStore

        path = self._settings.runs_db if self._settings is not None else None
        return RunStore(path)

    def list_runs(self) -> "list[RunRecord]":
        return list(self._store().list_runs())

    def get_run(self, run_id: str) -> "RunRecord":
        return self._store().get_run(run_id)

    def metrics_history(self, run_id: str) -> "list[MetricPoint]":
        return list(self._store().metrics_history(run_id))

    def metric_tables(self, run: "RunRecord") -> dict[str, dict[str, float]]:
        """The run's per-label metrics from its adapter's run record (``{}`` when it has none)."""
        from hubmgr.train._outputs import metric_tables

        return metric_tables(run.adapter_path)

    def list_adapters(self) -> "list[AdapterRecord]":
        return list(self._store().list_adapters())

    def adapter_of(self, run: "RunRecord") -> "AdapterRecord | None":
        """The registered adapter a run saved (``hubmgr adapters``), or None when it has none (any more)."""
        if not run.adapter_path:
            return None
        try:
            return self._store().get_adapter(run.adapter_path)
        except HubmgrError:
            return None

    def adapters_on(self, repo_id: str) -> "list[AdapterRecord]":
        """The saved adapters trained on a cached repo (by its id or a folder of it in the cache): they need
        it to be tried, evaluated or merged."""
        folder = "models--" + repo_id.replace("/", "--")
        return [
            a
            for a in self.list_adapters()
            if a.exists and a.base_model and (a.base_model == repo_id or folder in Path(a.base_model).parts)
        ]

    def delete_run(self, run_id: str, *, forget_run: bool = True, delete_adapter: bool = False) -> None:
        """Forget a run and its metric history (``hubmgr runs rm``) and/or delete its adapter with its folder
        (``hubmgr adapters rm``). Any run that is not running, one that failed before it started included.

        Raises:
            UsageError: the run is still running, or its adapter folder does not look like one.
        """
        store = self._store()
        record = store.get_run(run_id, exact=True)
        if record.status == "running":
            raise UsageError(f"Run {record.id} is still running; stop it first (s).")
        if delete_adapter:
            adapter = self.adapter_of(record)
            if adapter is not None:
                store.delete_adapter(adapter.id, delete_files=True)
        if forget_run:
            store.delete_run(record.id)

    def resume_point(self, run_id: str) -> str:
        """Where :meth:`resume_run` would continue the run from ('checkpoint-40 in /runs/x.partial').

        Raises:
            UsageError: the run cannot be resumed (complete, running, or no checkpoint), in one sentence.
        """
        from hubmgr.runs import live
        from hubmgr.train import _outputs as outputs

        record = self._store().get_run(run_id)
        config = live.resume_config_of(record)
        if not config.output_dir:
            raise UsageError(f"Run {record.id} has no output folder to resume in.")
        partial = outputs.partial_dir(Path(config.output_dir))
        checkpoint = outputs.last_checkpoint(partial)
        return f"{Path(checkpoint).name} in {partial}" if checkpoint is not None else str(partial)

    def merge_adapter(self, adapter: str, output: str, *, trust_remote_code: bool = False) -> "MergeResult":
        """Merge an adapter into its base model and save a full model (``hubmgr merge``); imports torch."""
        from hubmgr.eval.merge import merge_adapter

        return merge_adapter(
            adapter, output=Path(output).expanduser(), trust_remote_code=trust_remote_code, settings=self._settings
        )

    def run_folder(self, run: "RunRecord") -> "tuple[Path, bool] | None":
        """The folder a run's files are in now and whether it is the unfinished ``OUT.partial`` one (None when
        neither exists)."""
        from hubmgr.runs import live

        folder = live.run_folder(run.output_dir)
        if folder is None:
            return None
        return folder, folder != Path(run.output_dir or "")

    def evaluate(
        self,
        base_model: str,
        adapters: list[str],
        *,
        task: str,
        data: str,
        options: dict[str, Any] | None = None,
        split: str = "eval",
        on_event: "Callable[[EvalProgress], None] | None" = None,
        cancel: threading.Event | None = None,
    ) -> "EvalReport":
        """Evaluate the base model and adapters side by side; imports torch."""
        from hubmgr.eval.runner import evaluate

        return evaluate(
            base_model,
            adapters,
            task=task,
            data=data,
            options=options,
            split=split,
            on_event=on_event,
            cancel=cancel,
            settings=self._settings,
        )

    def predict(self, adapter: str, inputs: list[Any], *, compare: bool = True) -> "list[Prediction]":
        """The adapter's (and the base model's) predictions for ``inputs``; imports torch.
        The last adapter stays loaded, so trying several inputs in a row loads it once."""
        if self._predictor is None or self._predictor.adapter != adapter:
            self._predictor = None  # free the previous model first
            from hubmgr.eval.predict import Predictor

            self._predictor = Predictor(adapter, settings=self._settings)
        return self._predictor(inputs, compare=compare)


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """End ``proc`` and the processes it started (it leads its own process group), and reap it."""
    import os
    import signal
    import subprocess

    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except OSError:  # already gone
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process that SIGKILL did not end
        pass


def _last_error(stderr: str) -> str:
    """The sentence a failed ``hubmgr`` command printed: its last ``error: ...`` line, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:") :].strip()
    return lines[-1] if lines else ""
