"""TrainConfig: TOML round trip, flag precedence, validation, field specs for forms, generated click flags.

No torch here: the `hubmgr train` command is invoked with the runner replaced by a recorder.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from hubmgr.errors import UsageError
from hubmgr.fields import FieldSpec, coerce_options, field_specs, merge, parse_field_value, parse_key_values
from hubmgr.train.config import TrainConfig


def _cfg(**kw) -> TrainConfig:
    base = dict(task="text-classification", model="org/model", data="train.csv")
    base.update(kw)
    return TrainConfig(**base)


# -- TOML ---------------------------------------------------------------------------------------------
def test_toml_round_trip_keeps_every_value(tmp_path: Path) -> None:
    cfg = _cfg(
        eval_data="eval.csv",
        revision="abc123",
        target_modules=["query", "value"],
        lora_r=16,
        lora_alpha=32,
        learning_rate=5e-4,
        epochs=2.5,
        max_steps=100,
        use_dora=True,
        device="cpu",
        early_stopping_patience=2,
        options={"text_column": "sentence", "label_column": "y"},
    )
    path = tmp_path / "run.toml"
    text = cfg.to_toml(path)
    assert "[options]" in text and 'text_column = "sentence"' in text
    assert "eval_batch_size" not in text  # None values are left out (TOML has no null)
    again = TrainConfig.from_toml(path)
    assert again == cfg
    assert not list(tmp_path.glob(".*.tmp")), "the write goes through a temp file that is renamed"


def test_toml_ints_for_floats_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('task = "text-classification"\nmodel = "m"\ndata = "d.csv"\nlearning_rate = 1\nepochs = 3\n')
    cfg = TrainConfig.from_toml(path)
    assert cfg.learning_rate == 1.0 and isinstance(cfg.learning_rate, float)
    assert cfg.epochs == 3.0


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("lora_rank = 8\n", "Unknown key(s)"),
        ('lora_r = "eight"\n', "lora_r"),
        ('use_dora = "maybe"\n', "use_dora"),
        ('device = "tpu"\n', "device"),
        ("target_modules = 3\n", "target_modules"),
        ("options = 3\n", "options"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_toml_errors_are_one_sentence(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        TrainConfig.from_toml(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_toml_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        TrainConfig.from_toml(tmp_path / "nope.toml")


# -- merge / precedence ---------------------------------------------------------------------------------
def test_merge_non_none_overrides_win_and_options_merge_by_key() -> None:
    base = _cfg(learning_rate=5e-4, batch_size=8, options={"text_column": "a", "label_column": "b"})
    merged = merge(base, {"learning_rate": 1e-3, "batch_size": None, "options": {"label_column": "c"}})
    assert merged.learning_rate == 1e-3
    assert merged.batch_size == 8
    assert merged.options == {"text_column": "a", "label_column": "c"}
    assert base.options == {"text_column": "a", "label_column": "b"}, "the base is not changed"


def test_merge_refuses_unknown_names_and_bad_types() -> None:
    with pytest.raises(UsageError):
        merge(_cfg(), {"lr": 1.0})
    with pytest.raises(UsageError):
        merge(_cfg(), {"lora_r": "x"})


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, cli_runner, hf_env):
    """Run `hubmgr train` in-process with the runner replaced: returns (invoke, list of configs)."""
    import hubmgr.train.runner as runner

    seen: list[TrainConfig] = []

    def fake_train(config, *, on_event=None, cancel=None, settings=None, run_id=None):
        seen.append(config)
        return runner.TrainResult(
            run_id="r1", status="completed", output_dir=Path("/x"), adapter_path=Path("/x"), base_model=config.model
        )

    monkeypatch.setattr(runner, "train", fake_train)
    return cli_runner, seen


def test_flags_win_over_toml_file(recorded, tmp_path: Path) -> None:
    invoke, seen = recorded
    path = tmp_path / "run.toml"
    _cfg(learning_rate=5e-4, batch_size=8, lora_r=4, options={"text_column": "sentence"}).to_toml(path)
    result = invoke(
        "train",
        "--config",
        path,
        "--learning-rate",
        "0.002",
        "--no-use-dora",
        "--option",
        "label_column=y",
        "--target-modules",
        "query, value",
    )
    assert result.exit_code == 0, result.output
    cfg = seen[-1]
    assert cfg.learning_rate == 0.002  # flag wins
    assert cfg.batch_size == 8 and cfg.lora_r == 4  # from the file
    assert cfg.use_dora is False
    assert cfg.target_modules == ["query", "value"]
    assert cfg.options == {"text_column": "sentence", "label_column": "y"}
    assert cfg.task == "text-classification" and cfg.model == "org/model"


def test_task_argument_and_task_option_flags(recorded) -> None:
    invoke, seen = recorded
    result = invoke(
        "train",
        "text-classification",
        "--model",
        "m",
        "--data",
        "d.csv",
        "--text-column",
        "sentence",
        "--text-pair-column=other",
        "--output",
        "/tmp/out",
        "--max-steps",
        "5",
    )
    assert result.exit_code == 0, result.output
    cfg = seen[-1]
    assert cfg.options == {"text_column": "sentence", "text_pair_column": "other"}
    assert cfg.output_dir == "/tmp/out" and cfg.max_steps == 5


def test_unknown_flag_is_one_line_with_the_task_options(recorded) -> None:
    invoke, _ = recorded
    result = invoke("train", "text-classification", "--model", "m", "--data", "d.csv", "--epoch", "3")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Unknown option --epoch")
    assert "--text-column" in lines[0]


def test_missing_task_model_or_data(recorded) -> None:
    invoke, seen = recorded
    result = invoke("train", "--model", "m", "--data", "d.csv")
    assert result.exit_code == 2 and "Missing TASK" in result.stderr
    result = invoke("train", "text-classification", "--data", "d.csv")
    assert result.exit_code == 2 and "--model" in result.stderr
    assert not seen


def test_bad_choice_is_a_usage_error(recorded) -> None:
    invoke, _ = recorded
    result = invoke("train", "text-classification", "--model", "m", "--data", "d", "--device", "tpu")
    assert result.exit_code == 2


def test_resume_takes_the_saved_config(recorded, tmp_path: Path) -> None:
    invoke, seen = recorded
    out = tmp_path / "run"
    partial = tmp_path / "run.partial"
    partial.mkdir()
    _cfg(lora_r=4, output_dir=str(out), options={"text_column": "s"}).to_toml(partial / "train_config.toml")
    result = invoke("train", "--resume", "--output", out, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    cfg = seen[-1]
    assert cfg.resume and cfg.lora_r == 4 and cfg.batch_size == 4 and cfg.options == {"text_column": "s"}


# -- validation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"lora_r": 0}, "lora_r"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_fraction": 1.0}, "eval_fraction"),
        ({"device": "tpu"}, "device"),
        ({"dtype": "int8"}, "dtype"),
        ({"early_stopping_patience": 2, "eval_fraction": 0.0}, "early_stopping_patience"),
        ({"eval_strategy": "steps"}, "--eval-steps"),
        ({"resume": True}, "--output"),
        ({"target_modules": [" "]}, "target_modules"),
        ({"model": ""}, "--model"),
    ],
)
def test_validate(changes: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        _cfg(**changes).validate()
    assert fragment in str(info.value)


def test_report_to_needs_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(UsageError, match="pip install mlflow"):
        _cfg(report_to="mlflow").validate()


def test_defaults_are_valid_and_fast() -> None:
    cfg = _cfg().validate()
    assert cfg.lora_r == 8 and cfg.epochs == "auto" and cfg.max_length == 128
    assert cfg.num_workers == 0 and cfg.report_to == "none"
    assert not cfg.trust_remote_code and not cfg.allow_pickle


# -- field specs (the TUI form) -----------------------------------------------------------------------
def test_field_specs_describe_every_field() -> None:
    specs = {s.name: s for s in field_specs(TrainConfig)}
    assert set(specs) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(isinstance(s, FieldSpec) and s.help for s in specs.values())
    assert specs["lora_r"].kind == "int" and specs["lora_r"].default == 8 and specs["lora_r"].group == "lora"
    assert specs["learning_rate"].kind == "float"
    assert specs["use_dora"].kind == "bool"
    assert specs["device"].kind == "choice" and specs["device"].choices == ("auto", "cpu", "cuda", "mps")
    assert specs["target_modules"].kind == "list" and specs["target_modules"].optional
    assert specs["data"].kind == "path" and specs["data"].required
    assert specs["options"].kind == "dict"
    assert specs["output_dir"].flag == "--output"
    assert specs["max_steps"].optional and specs["max_steps"].default is None


def test_field_specs_work_for_task_options() -> None:
    @dataclasses.dataclass
    class Opts:
        text_column: str = dataclasses.field(default="text", metadata={"help": "The text."})
        pair: str | None = dataclasses.field(default=None, metadata={"help": "Second text."})
        lowercase: bool = dataclasses.field(default=False, metadata={"help": "Lowercase."})
        k: int = dataclasses.field(default=3, metadata={"help": "K."})

    specs = {s.name: s for s in field_specs(Opts)}
    assert specs["pair"].optional and specs["pair"].kind == "str"
    assert coerce_options(Opts, {"lowercase": "yes", "k": "5", "text_column": "t", "other": "x"}) == {
        "lowercase": True,
        "k": 5,
        "text_column": "t",
        "other": "x",
    }
    with pytest.raises(UsageError, match="whole number"):
        coerce_options(Opts, {"k": "five"})


@pytest.mark.parametrize(
    "name, text, value",
    [
        ("lora_r", "16", 16),
        ("learning_rate", "2e-4", 2e-4),
        ("use_rslora", "true", True),
        ("use_rslora", "no", False),
        ("target_modules", "q_proj, v_proj", ["q_proj", "v_proj"]),
        ("max_steps", "", None),
        ("lora_r", "", 8),
        ("device", "cpu", "cpu"),
    ],
)
def test_parse_field_value(name: str, text: str, value) -> None:
    spec = {s.name: s for s in field_specs(TrainConfig)}[name]
    assert parse_field_value(spec, text) == value


def test_parse_field_value_errors() -> None:
    specs = {s.name: s for s in field_specs(TrainConfig)}
    with pytest.raises(UsageError):
        parse_field_value(specs["lora_r"], "1.5")
    with pytest.raises(UsageError):
        parse_field_value(specs["device"], "tpu")


def test_parse_key_values() -> None:
    assert parse_key_values(["text-column=a", "x=1=2"]) == {"text_column": "a", "x": "1=2"}
    with pytest.raises(UsageError):
        parse_key_values(["novalue"])


# -- the CLI surface ----------------------------------------------------------------------------------
def test_every_field_is_a_flag(cli_runner) -> None:
    result = cli_runner("train", "--help")
    assert result.exit_code == 0
    for spec in field_specs(TrainConfig):
        if spec.kind == "dict" or spec.name == "task":
            continue
        assert spec.flag in result.output, spec.flag
    assert "--json" in result.output and "--config" in result.output and "--option" in result.output


def test_cli_import_does_not_load_torch() -> None:
    code = (
        "import sys, hubmgr.cli, hubmgr.cli.train_cmds, hubmgr.train.config, hubmgr.train.lora, hubmgr.train.runner;"
        "bad = [m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_task_flags_never_become_the_task_argument(recorded, tmp_path: Path) -> None:
    """With the task in a TOML file, `--text-column s` is a task option, not TASK."""
    invoke, seen = recorded
    path = tmp_path / "run.toml"
    _cfg().to_toml(path)
    result = invoke("train", "--config", path, "--text-column", "sentence", "--class-weight", "balanced")
    assert result.exit_code == 0, result.output
    assert seen[-1].task == "text-classification"
    assert seen[-1].options == {"text_column": "sentence", "class_weight": "balanced"}


def test_train_task_help_lists_the_task_options(cli_runner) -> None:
    result = cli_runner("train", "text-classification", "--help")
    assert result.exit_code == 0
    section = result.stdout[result.stdout.index("Options of task 'text-classification'") :]
    assert "--text-column TEXT" in section and "--threshold FLOAT" in section
    assert "--class-weight none|balanced" in section
    plain = cli_runner("train", "--help").stdout
    assert "Options of task" not in plain and "Give a task before --help" in plain


def test_eval_and_predict_take_task_options_as_flags(cli_runner, monkeypatch, tmp_path: Path) -> None:
    """`hubmgr eval --threshold 0.3` and `hubmgr predict A text --threshold 0.3` reach the task's options,
    typed; the task comes from the argument or from the adapter's run record."""
    from hubmgr.cli import run_cmds
    from hubmgr.eval import predict as predict_mod
    from hubmgr.eval import runner as eval_runner

    seen: dict[str, object] = {}

    def fake_evaluate(model, adapters, *, task, options, **kwargs):
        seen["eval"] = (task, options)
        raise SystemExit(0)

    def fake_predict(adapter, items, *, options, **kwargs):
        seen["predict"] = (list(items), options)
        raise SystemExit(0)

    monkeypatch.setattr(eval_runner, "evaluate", fake_evaluate)
    monkeypatch.setattr(predict_mod, "predict", fake_predict)
    monkeypatch.setattr(run_cmds, "adapters_task", lambda refs: "text-classification")
    result = cli_runner(
        "eval", "--adapter", "some-run", "--data", "d.csv", "--threshold", "0.3", "-o", "class_weight=balanced"
    )
    assert result.exit_code == 0, result.output
    assert seen["eval"] == (None, {"class_weight": "balanced", "threshold": 0.3})
    result = cli_runner("predict", "some-run", "a fine film", "--threshold=0.25", "another one")
    assert result.exit_code == 0, result.output
    assert seen["predict"] == (["a fine film", "another one"], {"threshold": 0.25})
    result = cli_runner("eval", "text-classification", "--model", "m", "--data", "d.csv", "--treshold", "0.3")
    assert result.exit_code == 2 and "Unknown option --treshold" in result.stderr and "--threshold" in result.stderr
