"""Precision: ``--dtype auto`` picks bfloat16 mixed precision on a CPU that computes in bfloat16 natively and
float32 elsewhere; the choice is reported in the train_started event, on the CLI and in the TUI's state.
Also: the evaluation set is sorted longest first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubmgr.errors import UsageError
from hubmgr.train import runner
from hubmgr.train.config import TrainConfig

from .test_train import _config, write_reviews


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("0", False), ("off", False)])
def test_cpu_bf16_detection_can_be_forced(monkeypatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("HUBMGR_CPU_BF16", value)
    assert runner.cpu_has_native_bf16() is expected


def test_cpu_bf16_detection_follows_the_cpu(monkeypatch) -> None:
    import torch

    monkeypatch.delenv("HUBMGR_CPU_BF16", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert runner.cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert runner.cpu_has_native_bf16() is True

    def broken() -> bool:
        raise RuntimeError("no such helper in this torch")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken)
    assert runner.cpu_has_native_bf16() is False


@pytest.mark.parametrize(
    ("native", "dtype", "mixed"),
    [
        ("1", "auto", "bf16"),
        ("0", "auto", None),
        ("1", "float32", None),
        ("0", "bfloat16", "bf16"),
    ],
)
def test_pick_dtype_on_a_cpu(monkeypatch, native: str, dtype: str, mixed: str | None) -> None:
    import torch

    monkeypatch.setenv("HUBMGR_CPU_BF16", native)
    config = TrainConfig(task="text-classification", model="m", data="d", dtype=dtype)
    load, got = runner._pick_dtype(config, "cpu")
    assert load == torch.float32  # frozen weights stay float32 on a CPU; autocast does the rest
    assert got == mixed


def test_float16_on_a_cpu_is_a_usage_error(monkeypatch) -> None:
    monkeypatch.setenv("HUBMGR_CPU_BF16", "1")
    with pytest.raises(UsageError, match="float16 training needs a GPU"):
        runner._pick_dtype(TrainConfig(task="text-classification", model="m", data="d", dtype="float16"), "cpu")


@pytest.mark.parametrize(("native", "label"), [("1", "bfloat16 mixed"), ("0", "float32")])
def test_the_run_reports_its_precision(
    hf_env, tiny_bert: Path, tmp_path: Path, monkeypatch, native: str, label: str
) -> None:
    import hubmgr

    monkeypatch.setenv("HUBMGR_CPU_BF16", native)
    data = write_reviews(tmp_path / "train.csv", 32)
    seen: list = []
    hubmgr.train(_config(tiny_bert, data, tmp_path / "out", max_steps=2, eval_strategy="no"), on_event=seen.append)
    started = [e for e in seen if e.kind == "train_started"]
    assert started and started[0].precision == label


def test_cli_says_the_precision(hf_env, tiny_bert: Path, tmp_path: Path, cli_runner) -> None:
    data = write_reviews(tmp_path / "train.csv", 32)
    args = [
        "train",
        "text-classification",
        "--model",
        str(tiny_bert),
        "--data",
        str(data),
        "--max-steps",
        "2",
        "--batch-size",
        "8",
        "--eval-strategy",
        "no",
        "--output",
        str(tmp_path / "out"),
    ]
    result = cli_runner(*args, env={"HUBMGR_CPU_BF16": "1"})
    assert result.exit_code == 0, result.output
    assert "on cpu (bfloat16 mixed precision)" in result.output
    result = cli_runner(*args[:-1], str(tmp_path / "out2"), "--json", env={"HUBMGR_CPU_BF16": "0"})
    assert result.exit_code == 0, result.output
    first = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert first["kind"] == "train_started" and first["precision"] == "float32"


def test_evaluation_set_is_sorted_longest_first_and_keeps_its_rows() -> None:
    from datasets import Dataset

    ids = [[1] * n for n in (3, 9, 1, 5, 9, 2)]
    ds = Dataset.from_dict({"input_ids": ids, "labels": [3, 9, 1, 5, 9, 2]})
    out = runner._longest_first(ds)
    lengths = out["length"]
    assert lengths == sorted(lengths, reverse=True)
    assert [len(x) for x in out["input_ids"]] == out["labels"]  # each row kept its own label
    assert runner._longest_first(None) is None
