"""EvalConfig, PredictConfig, MergeConfig and the eval / predict / merge flags made from them.

No torch here: the commands are invoked with the runners replaced by recorders.
"""

from __future__ import annotations

import dataclasses

import pytest

from hubmgr.errors import UsageError
from hubmgr.eval.config import EvalConfig, MergeConfig, PredictConfig
from hubmgr.fields import DEVICES, DTYPES, field_specs
from hubmgr.train.config import TrainConfig


@pytest.fixture()
def calls(monkeypatch):
    """Replace the runners the commands call; each call is recorded as (name, args, kwargs)."""
    import hubmgr.eval.merge
    import hubmgr.eval.predict
    import hubmgr.eval.runner

    recorded: list[tuple[str, tuple, dict]] = []

    def fake_evaluate(*args, **kwargs):
        recorded.append(("evaluate", args, kwargs))
        raise SystemExit(0)

    def fake_predict(*args, **kwargs):
        recorded.append(("predict", args, kwargs))
        return []

    def fake_merge(*args, **kwargs):
        recorded.append(("merge", args, kwargs))
        raise SystemExit(0)

    monkeypatch.setattr(hubmgr.eval.runner, "evaluate", fake_evaluate)
    monkeypatch.setattr(hubmgr.eval.predict, "predict", fake_predict)
    monkeypatch.setattr(hubmgr.eval.merge, "merge_adapter", fake_merge)
    return recorded


def test_shared_settings_have_one_definition() -> None:
    for cls in (TrainConfig, EvalConfig, PredictConfig):
        specs = {s.name: s for s in field_specs(cls)}
        assert specs["device"].choices == DEVICES and specs["device"].default == "auto"
        assert specs["dtype"].choices == DTYPES and specs["dtype"].default == "auto"
        assert specs["trust_remote_code"].kind == "bool" and specs["trust_remote_code"].flag == "--trust-remote-code"
        assert specs["options"].kind == "dict" and specs["options"].flag == "--option"
    merge_specs = {s.name: s for s in field_specs(MergeConfig)}
    assert merge_specs["dtype"].choices == DTYPES


def test_eval_flags_reach_the_runner(cli_runner, calls) -> None:
    result = cli_runner(
        "eval",
        "text-classification",
        "-m",
        "org/base",
        "-a",
        "one",
        "--adapter",
        "two",
        "-d",
        "dev.csv",
        "--batch-size",
        "4",
        "--max-samples",
        "9",
        "--device",
        "cpu",
        "--dtype",
        "bfloat16",
        "--trust-remote-code",
        "--per-class",
        "-o",
        "text_column=1",
    )
    assert result.exit_code == 0, result.output
    name, args, kwargs = calls[0]
    assert name == "evaluate" and args == ("org/base", ["one", "two"])
    assert kwargs["task"] == "text-classification" and kwargs["data"] == "dev.csv" and kwargs["split"] == "eval"
    assert (kwargs["batch_size"], kwargs["max_samples"], kwargs["max_length"]) == (4, 9, None)
    assert (kwargs["device"], kwargs["dtype"], kwargs["trust_remote_code"], kwargs["per_class"]) == (
        "cpu",
        "bfloat16",
        True,
        True,
    )
    # -o values stay text until the task types them: a text option given "1" is the text "1"
    assert kwargs["options"] == {"text_column": "1"}


def test_eval_defaults(cli_runner, calls) -> None:
    assert cli_runner("eval", "--adapter", "one", "--data", "dev.csv").exit_code == 0
    kwargs = calls[0][2]
    assert (kwargs["batch_size"], kwargs["device"], kwargs["dtype"], kwargs["options"]) == (32, "auto", None, None)
    assert kwargs["trust_remote_code"] is False and kwargs["per_class"] is False


def test_eval_option_no_is_false_for_a_boolean_task_option(cli_runner, calls) -> None:
    """`-o label_all_subtokens=no` once reached the task as the (truthy) text "no"."""
    from hubmgr.eval.loading import resolve_options
    from hubmgr.plugins import get_task

    result = cli_runner(
        "eval",
        "token-classification",
        "--adapter",
        "one",
        "--data",
        "dev.jsonl",
        "-o",
        "label_all_subtokens=no",
        "-o",
        "tokens_column=1",
    )
    assert result.exit_code == 0, result.output
    kwargs = calls[0][2]
    options = resolve_options(get_task(kwargs["task"]), kwargs["options"], [])
    assert options.label_all_subtokens is False
    assert options.tokens_column == "1"


def test_eval_device_has_train_choices(cli_runner, calls) -> None:
    result = cli_runner("eval", "--adapter", "one", "--data", "dev.csv", "--device", "gpu0")
    assert result.exit_code == 2
    assert "'gpu0' is not one of 'auto', 'cpu', 'cuda', 'mps'" in result.output
    assert calls == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--adapter", "one"], "Missing --data."),
        (["--data", "dev.csv"], "Give --model, or at least one --adapter"),
        (["--adapter", "one", "--data", "dev.csv", "--batch-size", "0"], "0 is not in the range x>=1"),
        (["--adapter", "one", "--data", "dev.csv", "-o", "novalue"], "--option takes KEY=VALUE"),
    ],
)
def test_eval_usage_errors(cli_runner, calls, args, message) -> None:
    result = cli_runner("eval", *args)
    assert result.exit_code == 2 and message in result.output
    assert calls == []


def test_predict_flags_reach_the_runner(cli_runner, calls) -> None:
    result = cli_runner(
        "predict",
        "run-1",
        "a ||| b",
        "--pair-separator",
        " ||| ",
        "-c",
        "-m",
        "org/base",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "-o",
        "max_new_tokens=5",
        "--json",
    )
    assert result.exit_code == 0, result.output
    name, args, kwargs = calls[0]
    assert name == "predict" and args == ("run-1", [("a", "b")])
    assert kwargs == {
        "base_model": "org/base",
        "options": {"max_new_tokens": "5"},
        "compare": True,
        "batch_size": 2,
        "device": "cpu",
        "dtype": None,
        "trust_remote_code": False,
    }


def test_merge_flags_reach_the_runner(cli_runner, calls, tmp_path) -> None:
    result = cli_runner("merge", "run-1", "-o", tmp_path / "out", "--dtype", "float16", "--trust-remote-code")
    assert result.exit_code == 0, result.output
    name, args, kwargs = calls[0]
    assert name == "merge" and args == ("run-1",)
    assert kwargs == {"output": tmp_path / "out", "base_model": None, "dtype": "float16", "trust_remote_code": True}
    missing = cli_runner("merge", "run-1")
    assert missing.exit_code == 2 and "Missing --output." in missing.output


def test_configs_round_trip_through_toml(tmp_path) -> None:
    config = EvalConfig(adapters=["a", "b"], data="dev.csv", options={"threshold": 0.3}, device="cpu", per_class=True)
    path = tmp_path / "eval.toml"
    config.to_toml(path)
    assert EvalConfig.from_toml(path) == config
    assert MergeConfig.from_dict({"adapter": "a", "output": "out", "dtype": "bfloat16"}).validate().dtype == "bfloat16"
    with pytest.raises(UsageError, match="batch_size must be at least 1"):
        dataclasses.replace(config, batch_size=0).validate()
    with pytest.raises(UsageError, match="device in config must be one of auto, cpu, cuda, mps"):
        PredictConfig.from_dict({"adapter": "a", "device": "gpu0"})
