"""The TUI's single door to the core.

Screens never import ``hubmgr.hub``, ``hubmgr.train`` & co. directly: they call a :class:`Backend`
that the app receives at construction. Tests pass a backend of their own (pointing at the Hub double,
or one that fails on purpose). Every core module is imported lazily inside the method that needs it,
so opening the app stays light (no torch).

All methods are synchronous and are called from worker threads.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from hubmgr.errors import HubmgrError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.config import Settings
    from hubmgr.eval.predict import Prediction, Predictor
    from hubmgr.eval.runner import EvalReport
    from hubmgr.fields import FieldSpec
    from hubmgr.hub.cache import CachedRepo, VerifyResult
    from hubmgr.hub.download import DownloadResult
    from hubmgr.hub.fit import FitReport
    from hubmgr.hub.info import ModelDetails
    from hubmgr.hub.search import SearchPage
    from hubmgr.plugins import PluginInfo
    from hubmgr.runs.store import AdapterRecord, MetricPoint, RunRecord, RunStore
    from hubmgr.task import Task
    from hubmgr.train.config import TrainConfig

#: Fields of TrainConfig that the Train screen asks for with its own widgets (not the generic form).
TRAIN_FIELDS_HANDLED_BY_SCREEN = frozenset({"model", "task", "data", "eval_data", "options"})
#: Fields of the generic form that the Train screen shows under Basic, next to model, task and data; the
#: rest go under Advanced.
TRAIN_BASIC_FIELDS = ("epochs", "max_epochs", "time_budget", "learning_rate", "output_dir")


def mod_fields() -> Any:
    """:mod:`hubmgr.fields` (light: no click, no torch)."""
    return importlib.import_module("hubmgr.fields")


class Backend:
    """Wraps the core calls the TUI makes.

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
        mod = importlib.import_module("hubmgr.hub.search")
        return mod.search_models(
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
        mod = importlib.import_module("hubmgr.hub.info")
        return mod.get_model_info(repo_id, revision=revision, settings=self._settings)

    def estimate_fit(self, details: "ModelDetails", **kwargs: Any) -> "FitReport | None":
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
        on_event: Callable[[Any], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> "DownloadResult":
        """Download (or resume) a repo into the shared cache."""
        mod = importlib.import_module("hubmgr.hub.download")
        return mod.download_repo(
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
        files: list[Any],
        *,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        allow_pickle: bool = False,
    ) -> tuple[list[Any], bool]:
        """What :meth:`download` with these filters fetches of ``files`` (objects with a ``path``, such as
        ``RepoFile``), by the rule the download itself follows (``hubmgr.hub.files.select_files``).

        Returns:
            ``(the files it fetches, in the given order; True when it would refuse to download because only
            pickle weights are left)``.
        """
        mod = importlib.import_module("hubmgr.hub.files")
        by_path = {f.path: f for f in files}
        selected, skipped = mod.select_files(
            list(by_path), include=include or None, exclude=exclude or None, allow_pickle=allow_pickle
        )
        refused = mod.pickle_only_error("the repo", selected, skipped) is not None
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
        import os

        live = importlib.import_module("hubmgr.runs.live")
        args = ["download", repo_id]
        if revision:
            args.append(f"--revision={revision}")
        args += [f"--include={g}" for g in include or ()]
        args += [f"--exclude={g}" for g in exclude or ()]
        if allow_pickle:
            args.append("--allow-pickle")
        env = None
        if self._settings is not None:  # fixed settings: the child must use the same ones, not the environment's
            s = self._settings
            env = dict(os.environ, HF_ENDPOINT=s.endpoint, HF_HUB_CACHE=str(s.hub_cache), HUBMGR_HOME=str(s.data_dir))
            if s.offline:
                env["HF_HUB_OFFLINE"] = "1"
            else:
                env.pop("HF_HUB_OFFLINE", None)
        proc = live.spawn_detached(args, run_id=name, settings=self.settings(), env=env)
        return proc.pid, live.log_path(name, self.settings())

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
        dl = importlib.import_module("hubmgr.hub.download")
        cache = importlib.import_module("hubmgr.hub.cache")
        result = dl.cached_snapshot(
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
            if not cache.snapshot_status(repo_id, result.commit, settings=self._settings).complete:
                return None
        except HubmgrError:
            return None
        return str(result.path)

    # -- cache ---------------------------------------------------------------------------------------
    def list_cached(self) -> "list[CachedRepo]":
        mod = importlib.import_module("hubmgr.hub.cache")
        return list(mod.list_cached(settings=self._settings))

    def delete_repo(self, repo_id: str) -> int:
        mod = importlib.import_module("hubmgr.hub.cache")
        return mod.delete_repo(repo_id, settings=self._settings)

    def verify(
        self, repo_id: str | None = None, *, on_event: Callable[[Any], None] | None = None
    ) -> "list[VerifyResult]":
        mod = importlib.import_module("hubmgr.hub.cache")
        return list(mod.verify(repo_id, on_event=on_event, settings=self._settings))

    def resolve_local(self, repo_id_or_path: str) -> Path:
        mod = importlib.import_module("hubmgr.hub.cache")
        return mod.resolve_local(repo_id_or_path, settings=self._settings)

    # -- plugins -------------------------------------------------------------------------------------
    def tasks(self) -> "dict[str, type[Task]]":
        """Registered task classes by name."""
        mod = importlib.import_module("hubmgr.plugins")
        return dict(mod.get_tasks())

    def plugins(self) -> "list[PluginInfo]":
        """Loaded plugins with their hooks and errors."""
        mod = importlib.import_module("hubmgr.plugins")
        return list(mod.list_plugins())

    def pipeline_tags(self) -> list[str]:
        """Hub pipeline tags of every registered task, sorted, no duplicates."""
        tags: set[str] = set()
        for task in self.tasks().values():
            tags.update(getattr(task, "pipeline_tags", ()) or ())
        return sorted(tags)

    # -- training ------------------------------------------------------------------------------------
    def all_train_specs(self) -> "list[FieldSpec]":
        """Field specs of every TrainConfig field, their help in the form's words (no flags)."""
        mod = importlib.import_module("hubmgr.train.config")
        specs = mod.field_specs(mod.TrainConfig)
        return [dataclasses.replace(s, help=mod_fields().form_text(s.help, specs)) for s in specs]

    def train_specs(self) -> "list[FieldSpec]":
        """Field specs of TrainConfig for the generic form (the screen asks for model/task/data itself)."""
        return [s for s in self.all_train_specs() if s.name not in TRAIN_FIELDS_HANDLED_BY_SCREEN]

    def option_specs(self, task_name: str) -> "list[FieldSpec]":
        """Field specs of a task's options dataclass (empty for a task without options)."""
        task = self.tasks().get(task_name)
        options_class = getattr(task, "options_class", None)
        if options_class is None or not dataclasses.is_dataclass(options_class):
            return []
        specs = mod_fields().field_specs(options_class)
        return [dataclasses.replace(s, help=mod_fields().form_text(s.help, specs)) for s in specs]

    def form_message(self, error: BaseException, task_name: str | None = None) -> str:
        """An error in the Train form's words: its labels instead of flags and config keys."""
        specs = self.all_train_specs()
        if task_name:
            specs += self.option_specs(task_name)
        return str(mod_fields().form_message(error, specs))

    def parse_field(self, spec: "FieldSpec", text: str) -> Any:
        """What the user typed in a form input, typed by the field (same parser as the CLI)."""
        return importlib.import_module("hubmgr.fields").parse_field_value(spec, text)

    def make_train_config(self, values: dict[str, Any]) -> "TrainConfig":
        """Build and check a TrainConfig from form values; a bad value raises UsageError."""
        mod = importlib.import_module("hubmgr.train.config")
        try:
            config = mod.TrainConfig.from_dict(values, source="the form")
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
        data = importlib.import_module("hubmgr.data")
        runner = importlib.import_module("hubmgr.train.runner")
        outputs = importlib.import_module("hubmgr.train._outputs")
        plugins = importlib.import_module("hubmgr.plugins")
        settings = self.settings()
        problems: dict[str, BaseException] = {}
        task: Any = None
        options: Any = None
        try:
            task = plugins.get_task(config.task)
            options = task.make_options(runner._typed_options(task, config.options))  # noqa: SLF001
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
                columns = data.check_source(source, split=split, settings=settings)
                if columns is not None and task is not None:
                    required = task.required_columns(options, columns)
                    data.check_column_names(columns, required, source=Path(source).name)
            except HubmgrError as exc:
                problems[name] = exc
        try:
            folder = runner.locate_model(config, settings=settings)
            if folder is not None:
                runner._check_model_folder(folder, config)  # noqa: SLF001
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

    # -- training runs: their own processes (hubmgr.runs.live) -----------------------------------------
    def start_run(self, config: "TrainConfig") -> str:
        """Start a training run as a background process (it outlives the TUI); returns its run id."""
        live = importlib.import_module("hubmgr.runs.live")
        run_id, _pid, _out = live.launch_train(config, settings=self.settings(), store=self._store())
        return run_id

    def resume_run(self, run_id: str) -> str:
        """Resume a stopped or interrupted run in the background; returns its id."""
        live = importlib.import_module("hubmgr.runs.live")
        config = live.resume_config_of(self._store().get_run(run_id)).validate()
        new_id, _pid, _out = live.launch_train(config, resume=True, settings=self.settings(), store=self._store())
        return new_id

    def follow_run(
        self, run_id: str, *, on_event: Callable[[Any], None], should_stop: Callable[[], bool] | None = None
    ) -> "RunRecord":
        """Feed ``on_event`` a run's events (so far, then live) until it ends or ``should_stop()``.

        Returns:
            The run's record as it stands at the end (status, metrics, error, stop reason).
        """
        live = importlib.import_module("hubmgr.runs.live")
        events = importlib.import_module("hubmgr.train.events")
        store = self._store()
        for data in live.follow(run_id, store=store, should_stop=should_stop):
            event = events.event_from_dict(data)
            if event is not None:
                on_event(event)
            if should_stop is not None and should_stop():
                break
        return store.get_run(run_id)

    def stop_run(self, run_id: str) -> bool:
        """Ask a running run to save a checkpoint and stop; False when it cannot be asked (not running)."""
        live = importlib.import_module("hubmgr.runs.live")
        record = self._store().get_run(run_id)
        return record.status == "running" and live.request_stop(record)

    # -- runs ----------------------------------------------------------------------------------------
    def _store(self) -> "RunStore":
        mod = importlib.import_module("hubmgr.runs.store")
        path = self._settings.runs_db if self._settings is not None else None
        return mod.RunStore(path)

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

    def evaluate(
        self,
        base_model: str,
        adapters: list[str],
        *,
        task: str,
        data: str,
        options: dict[str, Any] | None = None,
        split: str = "eval",
        on_event: Callable[[Any], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> "EvalReport":
        """Evaluate the base model and adapters side by side; imports torch."""
        mod = importlib.import_module("hubmgr.eval.runner")
        return mod.evaluate(
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
            self._predictor = importlib.import_module("hubmgr.eval.predict").Predictor(adapter, settings=self._settings)
        return self._predictor(inputs, compare=compare)
