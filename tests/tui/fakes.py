"""A backend with fixed data for fast, deterministic TUI tests and snapshots (no network, no torch).

It returns the core's real dataclasses where they exist, so a field the screens read that the core
lacks fails here too.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

from hubmgr.config import Settings
from hubmgr.errors import HubUnreachableError
from hubmgr.hub import events as hev
from hubmgr.train import events as tev
from hubmgr.tui.backend import Backend

FIXED = dt.datetime(2025, 3, 14, 9, 26)


def _search_mod():
    from hubmgr.hub import search

    return search


class FakeBackend(Backend):
    """Fixed models, cache, runs and plugins. ``unreachable=True`` makes every Hub call fail."""

    def __init__(
        self,
        *,
        unreachable: bool = False,
        offline: bool = False,
        tmp: Path | None = None,
        n_models: int = 75,
        fixed_plugins: bool = False,
    ) -> None:
        root = tmp or Path("/tmp/hubmgr-fake")
        # hubmgr's own data (the download queue, ...) goes to the test's HUBMGR_HOME when there is one, so that
        # what one test leaves (snapshot tests share a fixed root) never shows in another
        home = os.environ.get("HUBMGR_HOME")
        super().__init__(
            Settings(
                endpoint="http://hub.invalid",
                offline=offline,
                hub_cache=root / "hub",
                data_dir=Path(home) if home else root / "data",
            )
        )
        self.unreachable = unreachable
        self.n_models = n_models
        self.searches: list[dict[str, Any]] = []
        self.downloads: list[str] = []
        self.deleted: list[str] = []
        #: (repo, [(commit, path)]) of each repair asked for
        self.repairs: list[tuple[str, list[tuple[str, str]]]] = []
        self.cached = ["acme/tiny-bert", "acme/tiny-gpt2"]
        #: repo -> (missing files, missing bytes, resumable bytes): its revision is listed as incomplete
        self.incomplete: dict[str, tuple[list[str], int, int]] = {}
        #: downloads handed to "background processes" (this test process's pid stands in for theirs)
        self.background: list[dict[str, Any]] = []
        self.download_gate: threading.Event | None = None
        self.train_gate: threading.Event | None = None
        #: configs estimated; a gate holds the estimate until set (or cancelled); an error makes it fail
        self.estimated: list[Any] = []
        self.estimate_gate: threading.Event | None = None
        self.estimate_error: str | None = None
        self.started_runs: list[Any] = []
        self.followed: list[str] = []
        self.live_status: dict[str, str] = {}
        self.stop_requested = threading.Event()
        self.evaluated: list[tuple] = []
        self.predicted: list[tuple] = []
        self.fixed_plugins = fixed_plugins
        self.deleted_runs: list[str] = []
        self.deleted_adapters: list[str] = []
        self.merged: list[tuple] = []
        self.resumed: list[str] = []
        #: run id -> its last checkpoint's step, for the runs that can resume
        self.checkpoints: dict[str, int] = {"20250314-cccc": 3}

    # -- plugins: the built-in ones only (snapshots must not change when another plugin is installed) ------
    BUILTIN_TASKS = ("causal-lm", "image-classification", "text-classification", "token-classification")

    def tasks(self):
        tasks = super().tasks()
        if not self.fixed_plugins:
            return tasks
        return {name: cls for name, cls in tasks.items() if name in self.BUILTIN_TASKS}

    def plugins(self):
        if not self.fixed_plugins:
            return super().plugins()
        from hubmgr.plugins import PluginInfo

        return [
            PluginInfo("text_classification", "0.1.0", ["register_tasks"], ["text-classification"], package="hubmgr"),
            PluginInfo("token_classification", "0.1.0", ["register_tasks"], ["token-classification"], package="hubmgr"),
            PluginInfo("causal_lm", "0.1.0", ["register_tasks"], ["causal-lm"], package="hubmgr"),
            PluginInfo("image_classification", "0.1.0", ["register_tasks"], ["image-classification"], package="hubmgr"),
            PluginInfo(
                "hubmgr-broken",
                "2.0",
                [],
                [],
                "ImportError: No module named 'missing_dependency'",
                package="hubmgr-broken",
            ),
        ]

    # -- hub -------------------------------------------------------------------------------------------
    def _hub(self) -> None:
        if self.unreachable:
            raise HubUnreachableError("The Hub at http://hub.invalid is unreachable (connection refused).")

    def search(self, query=None, *, task=None, library=None, sort="downloads", limit=30, cursor=None):
        self._hub()
        self.searches.append({"query": query, "task": task, "library": library, "sort": sort, "cursor": cursor})
        s = _search_mod()
        start = int(cursor or 0)
        models = [
            s.ModelSummary(
                id=f"acme/model-{i:03d}",
                task=task or ("text-classification" if i % 2 else "text-generation"),
                library=library or "transformers",
                downloads=100000 - i * 1000,
                likes=500 - i,
                last_modified=FIXED - dt.timedelta(days=i),
                gated=(i == 3),
                tags=["en"],
            )
            for i in range(self.n_models)
            if not query or query in f"acme/model-{i:03d}"
        ]
        page = models[start : start + limit]
        nxt = str(start + limit) if start + limit < len(models) else None
        return s.SearchPage(results=page, next_cursor=nxt)

    def _from_cache_only(self, repo_id: str) -> bool:
        """Offline or unreachable: True when the cache answers for ``repo_id``, else the Hub error."""
        if not (self.unreachable or self.offline()):
            return False
        if repo_id in self.cached:
            return True
        self._hub()
        raise HubUnreachableError(f"The Hub is unreachable: HF_HUB_OFFLINE is set and {repo_id} is not in the cache.")

    def model_info(self, repo_id, *, revision=None):
        from_cache = self._from_cache_only(repo_id)
        from hubmgr.hub.info import ModelDetails, RepoFile

        files = [
            RepoFile("README.md", 1200),
            RepoFile("config.json", 650),
            RepoFile("model.safetensors", 17_600_000, "a" * 64),
            RepoFile("pytorch_model.bin", 17_700_000, "b" * 64),
            RepoFile("tokenizer.json", 466_000),
        ]
        return ModelDetails(
            id=repo_id,
            sha="0123456789abcdef0123456789abcdef01234567",
            revision="main",
            card_text="# Tiny model\n\nA **tiny** model for tests.\n\n- fast\n- small\n",
            card_data={"license": "apache-2.0"},
            files=files,
            total_size=sum(f.size for f in files),
            license="apache-2.0",
            gated=False,
            pipeline_tag="text-classification",
            library="transformers",
            param_count=4_400_000,
            dtypes={"F32": 4_400_000},
            tags=["text-classification", "en"],
            downloads=12345,
            likes=67,
            last_modified=FIXED,
            from_cache=from_cache,
        )

    def estimate_fit(self, details, **kwargs):
        from hubmgr.hub.fit import DeviceFit, FitReport

        return FitReport(
            required_bytes=620_000_000,
            breakdown={"weights": 17_600_000, "activations": 80_000_000, "overhead": 524_288_000},
            devices=[
                DeviceFit("RAM", "cpu", 16 * 2**30, 9 * 2**30, "fits"),
                DeviceFit("Tiny GPU", "cuda", 2**30, 700_000_000, "tight"),
            ],
            param_count=details.param_count,
        )

    def download(
        self, repo_id, *, revision=None, include=None, exclude=None, allow_pickle=False, on_event=None, cancel=None
    ):
        from hubmgr.hub.download import DownloadResult

        emit = on_event or (lambda e: None)
        if self._from_cache_only(repo_id):  # what download_repo does offline: the cache answers
            path = f"/cache/{repo_id}/snapshots/ccc"
            emit(hev.DownloadFinished(repo_id, "c" * 40, path, 0, 0.0))
            return DownloadResult(repo_id, "c" * 40, Path(path), ["config.json"], 0, from_cache=True)
        self._hub()
        self.downloads.append(repo_id)
        emit(hev.DownloadStarted(repo_id, revision or "main", "c" * 40, 2, 2000, 0))
        emit(hev.FileStarted("config.json", 1000))
        emit(hev.FileProgress("config.json", 500, 1000))
        emit(hev.DownloadProgress(500, 2000, 0, 2, 1000.0, 1.5))
        if self.download_gate is not None:
            while not self.download_gate.wait(0.05):
                if cancel is not None and cancel.is_set():
                    from hubmgr.errors import HubError

                    raise HubError("Download cancelled.")
        emit(hev.FileDone("config.json", 1000))
        emit(hev.FileDone("model.safetensors", 1000))
        emit(hev.DownloadProgress(2000, 2000, 2, 2, 1000.0, 0.0))
        emit(hev.DownloadFinished(repo_id, "c" * 40, f"/cache/{repo_id}/snapshots/ccc", 2000, 2.0))
        if repo_id not in self.cached:
            self.cached.append(repo_id)
        return DownloadResult(
            repo_id, "c" * 40, Path(f"/cache/{repo_id}/snapshots/ccc"), ["config.json", "model.safetensors"], 2000
        )

    def download_in_background(self, repo_id, *, revision=None, include=None, exclude=None, allow_pickle=False, name):
        self.background.append(
            {
                "repo_id": repo_id,
                "revision": revision,
                "include": include,
                "exclude": exclude,
                "allow_pickle": allow_pickle,
                "name": name,
            }
        )
        return os.getpid(), Path(self.settings().data_dir) / "launch" / f"{name}.log"

    def finished_download(self, repo_id, *, revision=None, commit=None, include=None, exclude=None, allow_pickle=False):
        return f"/cache/{repo_id}/snapshots/ccc" if repo_id in self.cached and repo_id not in self.incomplete else None

    # -- cache -----------------------------------------------------------------------------------------
    def cached_files(self, repo_id, commit, paths):
        if repo_id not in self.cached:
            return set()
        return set(paths) - set(self.incomplete.get(repo_id, ([], 0, 0))[0])

    def list_cached(self):
        from hubmgr.hub.cache import CachedRepo, CachedRevision

        out = []
        for i, rid in enumerate(self.cached):
            rev = CachedRevision(
                commit=f"{i}" * 40,
                refs=["main"],
                size_on_disk=(i + 1) * 10_000_000,
                path=Path(f"/cache/{rid}"),
                last_modified=FIXED,
                nb_files=5,
            )
            if rid in self.incomplete:
                missing, missing_bytes, resumable = self.incomplete[rid]
                rev.refs = []
                rev.complete, rev.missing_files = False, list(missing)
                rev.missing_bytes, rev.resumable_bytes = missing_bytes, resumable
            out.append(
                CachedRepo(
                    rid,
                    "model",
                    (i + 1) * 10_000_000,
                    FIXED - dt.timedelta(hours=i),
                    FIXED,
                    Path(f"/cache/{rid}"),
                    [rev],
                )
            )
        return out

    def delete_repo(self, repo_id):
        self.deleted.append(repo_id)
        self.cached.remove(repo_id)
        return 10_000_000

    def verify(self, repo_id=None, *, on_event=None):
        from hubmgr.hub.cache import VerifyResult

        results = [
            VerifyResult(repo_id or "acme/tiny-bert", "0" * 40, "config.json", True, ""),
            VerifyResult(repo_id or "acme/tiny-bert", "0" * 40, "model.safetensors", False, "sha256 mismatch"),
        ]
        for r in results:
            if on_event:
                on_event(hev.VerifyProgress(r.repo_id, r.path, r.ok, r.detail))
        return results

    def prepare_repair(self, repo_id, damaged):
        from hubmgr.hub.cache import RepairPlan

        if self.offline():
            raise HubUnreachableError(
                f"Repairing {repo_id} needs the Hub, but HF_HUB_OFFLINE is set; nothing was removed."
            )
        if self.unreachable:  # the words of hubmgr.hub.cache.prepare_repair
            raise HubUnreachableError(
                f"Repairing {repo_id} needs the Hub, which is unreachable at http://hub.invalid; nothing was removed."
            )
        self.repairs.append((repo_id, [(r.commit, r.path) for r in damaged]))
        files: dict[str, list[str]] = {}
        for r in damaged:
            if not r.ok:
                files.setdefault(r.commit, []).append(r.path)
        return RepairPlan(repo_id, {c: sorted(p) for c, p in files.items()})

    # -- runs ------------------------------------------------------------------------------------------
    def list_runs(self):
        return [r for r in self._fixed_runs() if r.id not in self.deleted_runs]

    def _fixed_runs(self):
        from hubmgr.runs.store import RunRecord

        return [
            RunRecord(
                id="20250314-aaaa",
                task="text-classification",
                model="acme/tiny-bert",
                revision="0" * 40,
                status="completed",
                config={"data": "/data/train.csv", "lora_r": 8, "options": {"text_column": "text"}},
                output_dir="/runs/20250314-aaaa",
                adapter_path="/runs/20250314-aaaa",
                metrics={"accuracy": 0.875, "f1": 0.86, "loss": 0.41},
                created="2025-03-14T09:26:00",
                updated="2025-03-14T09:30:00",
                finished="2025-03-14T09:30:00",
                stop_reason="eval accuracy stopped improving after epoch 2.0 (no real gain in 2 evaluations);"
                " cooled the learning rate down until epoch 2.9; kept the best, epoch 2.5 (accuracy 0.8750)",
                notes=["Eval accuracy was still improving when the budget ran out."],
            ),
            RunRecord(
                id="20250314-bbbb",
                task="text-classification",
                model="acme/tiny-bert",
                revision="0" * 40,
                status="completed",
                config={"data": "/data/train.csv", "lora_r": 16},
                output_dir="/runs/20250314-bbbb",
                adapter_path="/runs/20250314-bbbb",
                metrics={"accuracy": 0.9, "f1": 0.89, "loss": 0.35},
                created="2025-03-14T10:00:00",
                updated="2025-03-14T10:04:00",
                finished="2025-03-14T10:04:00",
            ),
            RunRecord(
                id="20250314-cccc",
                task="causal-lm",
                model="acme/tiny-gpt2",
                revision=None,
                status="failed",
                config={"data": "/data/chat.jsonl"},
                output_dir="/runs/20250314-cccc",
                error="Loss became NaN at step 3.",
                created="2025-03-14T11:00:00",
                updated="2025-03-14T11:01:00",
                finished="2025-03-14T11:01:00",
            ),
        ]

    def metric_tables(self, run):
        if run.id == "20250314-aaaa":
            return {
                "f1_per_label": {"negative": 0.84, "positive": 0.88},
                "support": {"negative": 40.0, "positive": 60.0},
            }
        return {}

    def get_run(self, run_id):
        if run_id in self.live_status:
            return self._live_record(run_id, self.live_status[run_id], f"/runs/{run_id}")
        found = next((r for r in self.list_runs() if r.id == run_id), None)
        if found is None:
            from hubmgr.errors import RunNotFoundError

            raise RunNotFoundError(f"No run with id {run_id!r} in the run registry.")
        return found

    def list_adapters(self):
        return [a for a in (self.adapter_of(r) for r in self.list_runs()) if a is not None]

    def adapter_of(self, run):
        from hubmgr.runs.store import AdapterRecord

        if not run.adapter_path or run.adapter_path in self.deleted_adapters:
            return None
        return AdapterRecord(
            run.id,
            run.id,
            run.adapter_path,
            run.model,
            run.revision,
            run.task,
            run.created,
            dict(run.metrics),
            None,
            True,
        )

    def delete_run(self, run_id, *, forget_run=True, delete_adapter=False):
        from hubmgr.errors import UsageError

        run = self.get_run(run_id)
        if run.status == "running":
            raise UsageError(f"Run {run_id} is still running; stop it first (s).")
        if delete_adapter and run.adapter_path:
            self.deleted_adapters.append(run.adapter_path)
        if forget_run:
            self.deleted_runs.append(run_id)

    def resume_point(self, run_id):
        from hubmgr.errors import UsageError

        run = self.get_run(run_id)
        if run.status == "completed":
            raise UsageError(f"Run {run_id} is complete; there is nothing to resume.")
        if run_id not in self.checkpoints:
            raise UsageError(f"Run {run_id} saved no checkpoint before it stopped, so it cannot be resumed.")
        return f"checkpoint-{self.checkpoints[run_id]} in {run.output_dir}.partial"

    def resume_run(self, run_id):
        self.resume_point(run_id)
        self.resumed.append(run_id)
        return run_id

    def merge_adapter(self, adapter, output, *, trust_remote_code=False):
        from hubmgr.errors import UsageError
        from hubmgr.eval.merge import MergeResult

        if Path(output).exists():
            raise UsageError(f"{output} already exists and is not empty; choose another --output.")
        self.merged.append((adapter, output, trust_remote_code))
        return MergeResult(output, adapter, "acme/tiny-bert", "/base", 4_400_000, 17_600_000)

    def metrics_history(self, run_id):
        from hubmgr.runs.store import MetricPoint

        pts = [MetricPoint(step, "train", "loss", 1.0 / step, 0.0) for step in range(1, 11)]
        pts += [MetricPoint(step, "eval", "accuracy", 0.5 + step / 40, 0.0) for step in (5, 10)]
        pts += [MetricPoint(step, "eval", "loss", 0.9 / step * 3, 0.0) for step in (5, 10)]
        return pts

    def evaluate(self, base_model, adapters, *, task, data, options=None, split="eval", on_event=None, cancel=None):
        from hubmgr.eval.runner import EvalReport, EvalRow

        self.evaluated.append((base_model, tuple(adapters), task, data, split))
        if on_event:
            on_event(tev.EvalProgress("base", 10, 10))
        rows = [EvalRow("base", "/base", {"accuracy": 0.5, "f1": 0.33})]
        rows += [EvalRow(Path(a).name, a, {"accuracy": 0.8 + i / 20, "f1": 0.79}) for i, a in enumerate(adapters)]
        return EvalReport(
            task=task,
            base_model=base_model,
            base_path="/base",
            split=split,
            num_examples=10,
            rows=rows,
            warnings=[],
            main_metric="accuracy",
        )

    def predict(self, adapter, inputs, *, compare=True):
        from hubmgr.errors import ModelError
        from hubmgr.eval.predict import Prediction

        self.predicted.append((adapter, tuple(inputs), compare))
        if any("crash" in str(x) for x in inputs):
            raise ModelError("Adapter 20250314-aaaa does not fit the base model acme/tiny-bert.")
        return [
            Prediction(x, f"positive ({0.9 + i / 100:.2f})", "negative (0.51)" if compare else None)
            for i, x in enumerate(inputs)
        ]

    def estimate_run(self, config, *, cancel=None):
        from hubmgr.errors import TrainingError
        from hubmgr.train.trial import TrialReport

        self.estimated.append(config)
        if self.estimate_gate is not None:
            while not self.estimate_gate.wait(0.05):
                if cancel is not None and cancel.is_set():
                    return None
        if self.estimate_error:
            raise TrainingError(self.estimate_error)
        return TrialReport(
            task=config.task,
            model=config.model,
            device="cpu",
            precision="float32",
            batch_size=8,
            steps_per_epoch=12,
            n_train=96,
            n_eval=40,
            auto=False,
            steps_low=36,
            steps_high=36,
            trial_steps=8,
            trial_seconds=9.0,
            startup_seconds=3.0,
            step_seconds=0.5,
            epoch_train_seconds=6.0,
            epoch_eval_seconds=1.0,
            final_eval_seconds=0.0,
            seconds_low=24.0,
            seconds_high=24.0,
            peak_memory_bytes=1_200_000_000,
            memory_kind="RAM",
            available_memory_bytes=8_000_000_000,
            verdict="fits",
        )

    # -- training: a run is "a process of its own" (a thread here), followed through its events ----------
    def start_run(self, config):
        self.started_runs.append(config)
        self.live_status["20250314-dddd"] = "running"
        self.stop_requested = threading.Event()
        return "20250314-dddd"

    def stop_run(self, run_id):
        if self.live_status.get(run_id) != "running":
            return False
        self.stop_requested.set()
        return True

    def _live_record(self, run_id, status, output_dir):
        from hubmgr.runs.store import RunRecord

        return RunRecord(
            id=run_id,
            task="text-classification",
            model="/models/tiny",
            revision=None,
            status=status,
            output_dir=output_dir,
            metrics={"accuracy": 0.75} if status == "completed" else {},
        )

    def follow_run(self, run_id, *, on_event, should_stop=None):
        self.followed.append(run_id)
        emit = on_event
        partial = f"/runs/{run_id}.partial"
        emit(
            tev.TrainStarted(
                run_id, "text-classification", "/models/tiny", f"/runs/{run_id}", 4, 40, 4, 1000, 100000, "cpu"
            )
        )
        for step in range(1, 5):
            emit(tev.StepLogged(step, 4, step / 4, 1.0 / step, 1e-3, 50.0, 4.0 - step))
            if self.train_gate is not None:
                while not self.train_gate.wait(0.05):
                    if should_stop is not None and should_stop():
                        return self._live_record(run_id, "running", f"/runs/{run_id}")
                    if self.stop_requested.is_set():
                        emit(tev.CheckpointSaved(step, f"{partial}/checkpoint-{step}"))
                        emit(tev.TrainFinished(run_id, "cancelled", partial, {"step": float(step)}, 1.0))
                        self.live_status[run_id] = "cancelled"
                        return self._live_record(run_id, "cancelled", f"/runs/{run_id}")
        emit(tev.EvalLogged(4, 1.0, {"accuracy": 0.75, "loss": 0.5}))
        emit(tev.CheckpointSaved(4, f"/runs/{run_id}/checkpoint-4"))
        emit(tev.TrainFinished(run_id, "completed", f"/runs/{run_id}", {"accuracy": 0.75}, 3.0))
        self.live_status[run_id] = "completed"
        return self._live_record(run_id, "completed", f"/runs/{run_id}")


async def settle(app, pilot, rounds: int = 3) -> None:
    """Let workers finish and the messages they posted be handled."""
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        await pilot.pause(0.05)
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # an exclusive worker replaced by a newer one: wait for that one instead
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
    await pilot.pause(0.1)


def plain_text(widget) -> str:
    """The text a Static shows, whatever it holds (str, rich Text, a rich Table)."""
    import io

    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=200, file=io.StringIO(), record=True, color_system=None)
    console.print(content)
    return console.export_text()


async def wait_until(pilot, condition, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``condition()`` while the app runs; fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
