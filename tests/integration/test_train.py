"""The training engine end to end on tiny random models: adapter output, events, registry, resume after a
SIGKILL, cancel, and one clear line for every bad input (through the CLI).

Every run is a few steps of a 2-layer BERT with hidden size 32, so the file stays well under a minute or
two on two busy cores.
"""

from __future__ import annotations

import csv
import errno
import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from hubmgr.errors import DataError, ModelError, NotCachedError, TrainingError, UsageError
from hubmgr.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]

POSITIVE = [
    "a wonderful movie",
    "excellent acting and a funny story",
    "i loved this film",
    "what a great story",
    "really fun and very nice",
    "the best film ever",
    "wonderful music and excellent actors",
    "a funny and nice movie",
]
NEGATIVE = [
    "an awful movie",
    "boring plot and bad acting",
    "i hated this film",
    "what a terrible story",
    "really bad and very boring",
    "the worst film ever",
    "awful music and bad actors",
    "a boring and awful movie",
]


def write_reviews(
    path: Path, n: int = 64, *, labels: tuple[str, str] = ("positive", "negative"), text_column: str = "text"
) -> Path:
    rows = []
    for i in range(n):
        if i % 2 == 0:
            rows.append((POSITIVE[(i // 2) % len(POSITIVE)], labels[0]))
        else:
            rows.append((NEGATIVE[(i // 2) % len(NEGATIVE)], labels[1]))
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([text_column, "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_reviews(tmp_path / "train.csv")


def _config(model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    values = dict(
        task="text-classification",
        model=str(model),
        data=str(data),
        output_dir=str(out),
        max_steps=6,
        batch_size=8,
        logging_steps=2,
        save_steps=3,
        learning_rate=5e-3,
    )
    values.update(kw)
    return TrainConfig(**values)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -- the happy path ------------------------------------------------------------------------------------
def test_train_writes_a_standard_adapter(hf_env, tiny_bert: Path, data: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from hubmgr.config import get_settings
    from hubmgr.runs.store import RunStore
    from hubmgr.train.runner import train

    events = []
    out = tmp_path / "adapter"
    result = train(_config(tiny_bert, data, out), on_event=events.append)

    assert result.status == "completed" and result.adapter_path == out and result.global_step == 6
    kinds = [e.kind for e in events]
    assert kinds[0] == "train_started" and kinds[-1] == "train_finished"
    assert {"step", "eval", "checkpoint"} <= set(kinds)
    started = events[0]
    assert started.total_steps == 6 and 0 < started.trainable_params < started.total_params
    assert started.num_train_examples + started.num_eval_examples == 64
    steps = [e for e in events if e.kind == "step"]
    assert any(e.loss is not None and e.learning_rate is not None for e in steps)
    assert all(e.samples_per_second is None or e.samples_per_second > 0 for e in steps)
    assert "eval_accuracy" in result.metrics and "train_loss" in result.metrics

    names = {p.name for p in out.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "train_config.toml",
        "metrics.json",
        "README.md",
        "hubmgr_run.json",
    } <= names
    assert not any(n.startswith("checkpoint-") for n in names)
    assert not (tmp_path / "adapter.partial").exists()
    meta = json.loads((out / "hubmgr_run.json").read_text())
    assert meta["status"] == "completed" and meta["task"] == "text-classification"
    assert meta["data_info"]["label_names"] == ["negative", "positive"]
    card = (out / "README.md").read_text()
    assert str(tiny_bert.resolve()) in card and "eval_accuracy" in card and str(data) in card
    assert TrainConfig.from_toml(out / "train_config.toml").max_steps == 6

    # Plain peft loads it, and the adapter changes the outputs.
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model = PeftModel.from_pretrained(base, out)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)
    with torch.no_grad():
        model(input_ids=torch.tensor([[2, 10, 11, 3]]))

    # The run registry knows the run and its adapter.
    store = RunStore(get_settings().runs_db)
    record = store.get_run(result.run_id)
    assert record.status == "completed" and Path(record.adapter_path) == out.resolve()
    assert any(Path(a.path) == out.resolve() for a in store.list_adapters())
    assert store.metrics_history(result.run_id)
    # ... with the task's main metric and the direction of every evaluation metric
    assert record.main_metric == result.main_metric == "accuracy"
    assert record.metric_directions["eval_accuracy"] is True and record.metric_directions["eval_loss"] is False
    run_file = json.loads((out / "hubmgr_run.json").read_text())
    assert run_file["main_metric"] == "accuracy" and run_file["metric_directions"] == record.metric_directions


def test_cli_json_lines_and_base_revision_from_the_hub(
    hub_server, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner
) -> None:
    sha = hub_server.add_repo("org/tiny-bert", folder=tiny_bert)
    out = tmp_path / "out"
    result = cli_runner(
        "train",
        "text-classification",
        "--model",
        "org/tiny-bert",
        "--data",
        data,
        "--output",
        out,
        "--max-steps",
        "2",
        "--batch-size",
        "8",
        "--json",
    )
    assert result.exit_code == 0, result.output + result.stderr
    lines = _json_lines(result.stdout)
    assert lines[0]["kind"] == "train_started" and lines[-1]["kind"] == "result"
    assert lines[-2]["kind"] == "train_finished" and lines[-2]["status"] == "completed"
    final = lines[-1]
    assert final["status"] == "completed" and final["base_revision"] == sha
    assert final["adapter_path"] == str(out)
    assert sha in (out / "README.md").read_text()
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "org/tiny-bert" and cfg["revision"] == sha


# -- resume -----------------------------------------------------------------------------------------------
_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from hubmgr.train.config import TrainConfig
    from hubmgr.train.runner import train

    model, data, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    KILL_AT = 6

    def on_event(event):
        # At no point may the output folder look complete.
        if out.exists():
            print("OUTPUT EXISTS", flush=True)
            os._exit(3)
        if event.kind == "step" and event.loss is not None and event.step == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)  # steps after the checkpoint at 4 were recorded

    train(TrainConfig(task="text-classification", model=model, data=data, output_dir=str(out), max_steps=10,
                      save_steps=2, batch_size=4, logging_steps=1), on_event=on_event)
    """
)


def test_resume_after_sigkill(hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(tiny_bert), str(data), str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr

    partial = tmp_path / "run.partial"
    assert not out.exists(), "a killed run must not leave a folder that looks complete"
    meta = json.loads((partial / "hubmgr_run.json").read_text())
    assert meta["status"] == "running"
    assert (partial / "checkpoint-4" / "trainer_state.json").is_file()
    assert not (partial / "adapter_config.json").exists()

    result = cli_runner("train", "--resume", "--output", out, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    lines = _json_lines(result.stdout)
    assert lines[0]["kind"] == "train_started" and lines[0]["resumed_from_step"] == 4
    assert lines[0]["run_id"] == meta["run_id"]
    final = lines[-1]
    assert final["status"] == "completed" and final["global_step"] == 10 and final["resumed_from_step"] == 4
    assert (out / "adapter_model.safetensors").is_file() and not partial.exists()
    assert json.loads((out / "hubmgr_run.json").read_text())["status"] == "completed"
    # one history: no step recorded twice in the registry
    from hubmgr.runs.store import RunStore

    points = [(p.step, p.split, p.name) for p in RunStore().metrics_history(meta["run_id"])]
    assert len(points) == len(set(points)), sorted(p for p in points if points.count(p) > 1)


def test_cancel_keeps_a_checkpoint_and_resume_finishes(hf_env, tiny_bert: Path, data: Path, tmp_path: Path) -> None:
    from hubmgr.train.runner import train

    out = tmp_path / "run"
    cancel = threading.Event()

    def on_event(event):
        if event.kind == "step" and event.step >= 2:
            cancel.set()

    result = train(_config(tiny_bert, data, out, max_steps=12, save_steps=None), on_event=on_event, cancel=cancel)
    assert result.status == "cancelled" and result.adapter_path is None
    assert result.resume_command == f"hubmgr runs resume {result.run_id}"
    assert not out.exists()
    partial = tmp_path / "run.partial"
    assert json.loads((partial / "hubmgr_run.json").read_text())["status"] == "cancelled"
    step = result.global_step
    assert (partial / f"checkpoint-{step}" / "trainer_state.json").is_file()

    events = []
    again = train(_config(tiny_bert, data, out, max_steps=12, save_steps=None, resume=True), on_event=events.append)
    assert again.status == "completed" and again.run_id == result.run_id
    assert events[0].resumed_from_step == step and again.global_step == 12


def test_cancel_before_training_starts(hf_env, tiny_bert: Path, data: Path, tmp_path: Path) -> None:
    from hubmgr.train.runner import train

    cancel = threading.Event()
    cancel.set()
    result = train(_config(tiny_bert, data, tmp_path / "run"), cancel=cancel)
    assert result.status == "cancelled" and result.output_dir is None
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


# -- bad input: one line, a non-zero exit, nothing half-written ---------------------------------------------
def _fails(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    assert "Traceback" not in result.output + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last


def _nothing_written(out: Path) -> None:
    assert not out.exists()
    partial = out.parent / (out.name + ".partial")
    if partial.exists():  # kept only when it holds a checkpoint to resume, and marked as not complete
        assert json.loads((partial / "hubmgr_run.json").read_text())["status"] in ("failed", "cancelled")
        assert not (partial / "adapter_config.json").exists()


def test_missing_data_file_through_a_real_subprocess(hf_env, tiny_bert: Path, tmp_path: Path, run_cli) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "train", "text-classification", "--model", tiny_bert, "--data", tmp_path / "nope.csv", "--output", out
    )
    assert proc.returncode == DataError.exit_code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope.csv" in lines[0], proc.stderr
    _nothing_written(out)


@pytest.mark.parametrize(
    "make_args, code, fragments",
    [
        (lambda d, m, t: ["--data", d, "--model", m, "--text-column", "review"], DataError.exit_code, ["review"]),
        (lambda d, m, t: ["--data", write_reviews(t / "empty.csv", 0), "--model", m], DataError.exit_code, []),
        (
            lambda d, m, t: [
                "--data",
                d,
                "--eval-data",
                write_reviews(t / "ev.csv", 8, labels=("good", "bad")),
                "--model",
                m,
            ],
            DataError.exit_code,
            ["good"],
        ),
        (
            lambda d, m, t: ["--data", d, "--model", m, "--target-modules", "q_proj,value"],
            ModelError.exit_code,
            ["q_proj", "query"],
        ),
        (lambda d, m, t: ["--data", d, "--model", m, "--qlora"], UsageError.exit_code, ["CUDA"]),
        (lambda d, m, t: ["--data", d, "--model", t / "no-such-model"], ModelError.exit_code, ["does not exist"]),
    ],
    ids=["missing-column", "empty-split", "labels-mismatch", "target-modules", "qlora-on-cpu", "missing-model"],
)
def test_bad_input_is_one_line(
    hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner, make_args, code: int, fragments: list[str]
) -> None:
    out = tmp_path / "out"
    args = make_args(data, tiny_bert, tmp_path)
    result = cli_runner("train", "text-classification", *args, "--output", out, "--max-steps", "2")
    _fails(result, code, *fragments)
    _nothing_written(out)


def test_unknown_task(hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner) -> None:
    result = cli_runner("train", "no-such-task", "--model", tiny_bert, "--data", data, "--output", tmp_path / "o")
    _fails(result, 11, "no-such-task")


def test_architecture_the_task_cannot_use(hf_env, tiny_vit: Path, data: Path, tmp_path: Path, cli_runner) -> None:
    result = cli_runner(
        "train",
        "text-classification",
        "--model",
        tiny_vit,
        "--data",
        data,
        "--output",
        tmp_path / "o",
        "--max-steps",
        "2",
    )
    _fails(result, ModelError.exit_code)
    _nothing_written(tmp_path / "o")


def test_nan_loss(hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner) -> None:
    out = tmp_path / "out"
    result = cli_runner(
        "train",
        "text-classification",
        "--model",
        tiny_bert,
        "--data",
        data,
        "--output",
        out,
        "--max-steps",
        "12",
        "--learning-rate",
        "1e30",
        "--logging-steps",
        "2",
        "--batch-size",
        "8",
        "--warmup",
        "0",
    )
    _fails(result, TrainingError.exit_code, "NaN", "learning rate")
    _nothing_written(out)


def test_full_disk(hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner, monkeypatch) -> None:
    import peft.peft_model

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(peft.peft_model, "safe_save_file", no_space)
    out = tmp_path / "out"
    result = cli_runner(
        "train",
        "text-classification",
        "--model",
        tiny_bert,
        "--data",
        data,
        "--output",
        out,
        "--max-steps",
        "4",
        "--save-steps",
        "2",
        "--batch-size",
        "8",
    )
    _fails(result, 7, "No space left")
    _nothing_written(out)
    assert not (tmp_path / "out.partial").exists(), "no complete checkpoint, so nothing is kept"


def test_offline_and_not_cached(hf_env, data: Path, tmp_path: Path, cli_runner, monkeypatch) -> None:
    from tests.conftest import set_offline

    set_offline(monkeypatch)
    result = cli_runner(
        "train", "text-classification", "--model", "someone/not-downloaded", "--data", data, "--output", tmp_path / "o"
    )
    _fails(result, NotCachedError.exit_code, "someone/not-downloaded", "offline", "hubmgr download")
    _nothing_written(tmp_path / "o")


def test_pickle_only_weights_are_refused(hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert, folder)
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")
    weights.unlink()
    result = cli_runner("train", "text-classification", "--model", folder, "--data", data, "--output", tmp_path / "o")
    _fails(result, ModelError.exit_code, "pickle", "--allow-pickle")


def test_output_folder_in_use(hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "something.txt").write_text("mine")
    result = cli_runner("train", "text-classification", "--model", tiny_bert, "--data", data, "--output", out)
    _fails(result, UsageError.exit_code, "not empty")
    assert (out / "something.txt").read_text() == "mine"
    result = cli_runner(
        "train", "--resume", "--output", tmp_path / "never", "--model", tiny_bert, "--data", data, "text-classification"
    )
    _fails(result, UsageError.exit_code, "Nothing to resume")


# -- LoRA targets --------------------------------------------------------------------------------------------
def test_target_modules_by_architecture(tiny_bert: Path, tiny_gpt2: Path, tiny_llama: Path, tiny_vit: Path) -> None:
    from transformers import AutoModel

    from hubmgr.task import LoraDefaults
    from hubmgr.train.lora import build_lora_config, check_target_modules, find_target_modules, list_linear_module_names

    # (transformers 5 names ViT's projections q_proj/v_proj; older releases query/value)
    expected = {
        tiny_bert: [["query", "key", "value", "dense"]],
        tiny_gpt2: [["c_attn"]],
        tiny_llama: [["q_proj", "v_proj"]],
        tiny_vit: [["query", "value"], ["q_proj", "v_proj"]],
    }
    for folder, choices in expected.items():
        model = AutoModel.from_pretrained(folder)
        found = find_target_modules(model)
        assert found in choices, folder
        assert set(found) <= set(list_linear_module_names(model))
    gpt2 = AutoModel.from_pretrained(tiny_gpt2)
    cfg = build_lora_config(_config(tiny_gpt2, Path("d"), Path("o")), LoraDefaults("CAUSAL_LM", ["c_attn"]), model=gpt2)
    assert cfg.fan_in_fan_out is True and cfg.task_type == "CAUSAL_LM"
    with pytest.raises(ModelError) as info:
        check_target_modules(gpt2, ["c_attn", "q_proj"])
    assert "'q_proj'" in str(info.value) and "c_attn" in str(info.value) and "c_fc" in str(info.value)
    # one order, decided in one place: the user's targets, else the task's, else the architecture's
    from hubmgr.train.lora import resolve_target_modules

    bert = AutoModel.from_pretrained(tiny_bert)
    assert resolve_target_modules(bert, ["value", " "], ["query"]) == ["value"]
    assert resolve_target_modules(bert, None, ["query"]) == ["query"]
    assert resolve_target_modules(bert, [], []) == find_target_modules(bert)
    with pytest.raises(ModelError):
        resolve_target_modules(bert, None, ["c_attn"])  # a task's targets are checked too


def test_ctrl_c_stops_gracefully_and_says_how_to_resume(hf_env, tiny_bert: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "hubmgr",
        "train",
        "text-classification",
        "--model",
        str(tiny_bert),
        "--data",
        str(data),
        "--output",
        str(out),
        "--max-steps",
        "100000",
        "--logging-steps",
        "1",
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        for line in proc.stdout:  # wait until training runs
            if '"kind": "step"' in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    final = _json_lines(rest)[-1]
    assert final["kind"] == "result" and final["status"] == "cancelled"
    assert final["resume_command"] == f"hubmgr runs resume {final['run_id']}"
    partial = tmp_path / "run.partial"
    assert (partial / f"checkpoint-{final['global_step']}" / "trainer_state.json").is_file()
    assert not out.exists()


def test_a_run_hook_that_raises_is_shown_and_the_run_goes_on(
    hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner
) -> None:
    """Training silences library warnings; what a plugin's run hook raised still reaches the user, once,
    on the CLI (``warning: Plugin ...``) and as a PluginWarning through the Python API."""
    import hubmgr
    from hubmgr.hookspecs import hookimpl
    from hubmgr.plugins import PluginWarning, registered

    class Loud:
        @hookimpl
        def on_run_log(self, run, event):
            raise RuntimeError("tracker unreachable")

    with registered(Loud(), name="loud"):
        result = cli_runner(
            "train",
            "text-classification",
            "--model",
            tiny_bert,
            "--data",
            data,
            "--output",
            tmp_path / "out",
            "--max-steps",
            "3",
            "--batch-size",
            "8",
        )
        assert result.exit_code == 0, result.output
        assert result.stderr.count("warning: Plugin 'loud': on_run_log raised RuntimeError: tracker unreachable") == 1
        with pytest.warns(PluginWarning, match="Plugin 'loud': on_run_log raised RuntimeError"):
            run = hubmgr.train(
                TrainConfig(
                    task="text-classification",
                    model=str(tiny_bert),
                    data=str(data),
                    output_dir=str(tmp_path / "out2"),
                    max_steps=2,
                    batch_size=8,
                )
            )
        assert run.status == "completed"
    # ... and stays with the run: a note in its record, which `runs show`, the TUI and a detached run's
    # follower all read
    note = "Plugin 'loud': on_run_log raised RuntimeError: tracker unreachable (the run went on without it)."
    assert run.notes.count(note) == 1
    from hubmgr.config import get_settings
    from hubmgr.runs.store import RunStore

    assert note in RunStore(get_settings().runs_db).get_run(run.run_id).notes


@pytest.mark.parametrize("where", ["load_data", "collator"])
def test_a_crash_inside_a_plugin_task_is_charged_to_the_plugin(
    hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner, where: str, monkeypatch
) -> None:
    """A third-party task that raises (in load_data, or in its collator at the third batch) gives one line
    naming the task, the plugin and the place, exit 11 (the plugin code), and no half-written output."""
    from hubmgr.hookspecs import hookimpl
    from hubmgr.plugins import registered
    from hubmgr_tasks.text_classification import TextClassificationTask

    class Crashy(TextClassificationTask):
        name = "crashy"

        def load_data(self, source, options):
            if where == "load_data":
                return {}["no such column"]
            return super().load_data(source, options)

        def collator(self, processor, options):
            inner = super().collator(processor, options)
            calls = []

            def collate(rows):
                calls.append(1)
                if where == "collator" and len(calls) == 3:
                    return len(rows) / 0
                return inner(rows)

            return collate

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(Crashy)

    out = tmp_path / "out"
    with registered(Plugin(), name="crashy_plugin"):
        result = cli_runner(
            "train",
            "crashy",
            "--model",
            tiny_bert,
            "--data",
            data,
            "--output",
            out,
            "--max-steps",
            "5",
            "--batch-size",
            "8",
            "-o",
            "text_column=text",
        )
    assert result.exit_code == 11, result.output
    line = result.stderr.strip().splitlines()[-1]
    kind = "KeyError: 'no such column'" if where == "load_data" else "ZeroDivisionError: division by zero"
    func = "load_data" if where == "load_data" else "collate"
    assert line.startswith(f"error: Task 'crashy' of plugin 'crashy_plugin' failed in {func} (test_train.py:")
    assert kind in line and "Traceback" not in result.output
    _nothing_written(out)
    monkeypatch.setenv("HUBMGR_DEBUG", "1")
    with registered(Plugin(), name="crashy_plugin"):
        result = cli_runner(
            "train",
            "crashy",
            "--model",
            tiny_bert,
            "--data",
            data,
            "--output",
            tmp_path / "o2",
            "--max-steps",
            "5",
            "--batch-size",
            "8",
        )
    assert result.exit_code == 11 and "Traceback" in result.stderr


def test_cli_stdout_is_the_bare_adapter_folder(hf_env, tiny_bert: Path, data: Path, tmp_path: Path, cli_runner) -> None:
    """ADAPTER=$(hubmgr train ...) gets the folder and nothing else; the summary goes to stderr, main metric first."""
    out = tmp_path / "out"
    result = cli_runner(
        "train",
        "text-classification",
        "--model",
        tiny_bert,
        "--data",
        data,
        "--output",
        out,
        "--max-steps",
        "2",
        "--batch-size",
        "8",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out.resolve())
    final = next(line for line in result.stderr.splitlines() if line.startswith("Final evaluation:"))
    assert final.startswith("Final evaluation: accuracy ")
