"""``hubmgr train --dry-run`` / ``hubmgr.train.runner.trial``: a few real steps, a prediction, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubmgr.errors import DataError
from hubmgr.train.config import TrainConfig


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    from hubmgr.testing import keyword_rows, write_rows

    root = tmp_path_factory.mktemp("trial")
    return {
        "train": write_rows(root / "train.jsonl", keyword_rows(96, seed=0)),
        "eval": write_rows(root / "eval.jsonl", keyword_rows(40, seed=1)),
    }


def test_trial_predicts_and_writes_nothing(hf_env, tiny_bert: Path, kit, tmp_path: Path) -> None:
    from hubmgr.runs.store import RunStore
    from hubmgr.train.runner import trial

    out = tmp_path / "out"
    config = TrainConfig(
        task="text-classification",
        model=str(tiny_bert),
        data=str(kit["train"]),
        eval_data=str(kit["eval"]),
        output_dir=str(out),
        epochs=2,
    )
    report = trial(config, steps=4)
    assert report.trial_steps == 4 and report.batch_size == 8  # the batch training would choose (96 examples)
    assert report.steps_per_epoch == 12 and report.steps_low == report.steps_high == 24
    assert report.n_train == 96 and report.n_eval == 40 and not report.auto
    assert 0 < report.step_seconds and 0 < report.epoch_eval_seconds and 0 < report.startup_seconds
    assert report.seconds_high == pytest.approx(
        report.startup_seconds
        + 2 * (report.epoch_train_seconds + report.epoch_eval_seconds)
        + report.final_eval_seconds
    )
    assert report.peak_memory_bytes > 50_000_000 and report.memory_kind == "RAM"
    assert report.verdict in ("fits", "tight", "won't fit")
    assert not out.exists() and not Path(str(out) + ".partial").exists()
    assert RunStore().list_runs() == []


def test_cli_dry_run_text_json_and_errors(hf_env, tiny_bert: Path, kit, tmp_path: Path, cli_runner) -> None:
    args = ["train", "text-classification", "--model", tiny_bert, "--data", kit["train"], "--eval-data", kit["eval"]]
    result = cli_runner(*args, "--dry-run", "--json", "--output", tmp_path / "o")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["auto"] is True and data["steps_low"] < data["steps_high"]
    assert data["seconds_low"] < data["seconds_high"]
    assert not (tmp_path / "o").exists()

    result = cli_runner(*args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Whole run: between" in result.stdout and "Peak RAM:" in result.stdout

    result = cli_runner(*args, "--dry-run", "--detach")
    assert result.exit_code != 0 and "cannot --detach" in result.output

    missing = cli_runner(
        "train", "text-classification", "--model", tiny_bert, "--data", tmp_path / "nope.jsonl", "--dry-run"
    )
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    assert len(missing.output.strip().splitlines()) <= 2


def test_trial_refuses_bad_data_like_train(hf_env, tiny_bert: Path, tmp_path: Path) -> None:
    from hubmgr.testing import write_rows
    from hubmgr.train.runner import trial

    one_class = write_rows(tmp_path / "one.jsonl", [{"text": "a b", "label": "x"}] * 10)
    with pytest.raises(DataError):
        trial(TrainConfig(task="text-classification", model=str(tiny_bert), data=str(one_class)), steps=2)


def test_fit_trial_uses_the_training_defaults(hf_env, tiny_bert: Path, kit, cli_runner) -> None:
    result = cli_runner("fit", tiny_bert, "--trial", "--task", "text-classification", "--data", kit["train"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["batch_size"] == 8 and data["n_eval"] > 0  # training's choice, and its held-out split
    with_batch = cli_runner(
        "fit",
        tiny_bert,
        "--trial",
        "--task",
        "text-classification",
        "--data",
        kit["train"],
        "--batch-size",
        "4",
        "--json",
    )
    assert with_batch.exit_code == 0 and json.loads(with_batch.stdout)["batch_size"] == 4
    assert cli_runner("fit", tiny_bert, "--trial").exit_code != 0
    assert "go with --trial" in cli_runner("fit", tiny_bert, "--data", kit["train"]).output


def test_tui_backend_estimates_in_a_process_of_its_own(hf_env, tiny_bert: Path, kit, tmp_path: Path) -> None:
    """The TUI's estimate: ``hubmgr train --dry-run --json`` in a subprocess, its config written as a detached
    run's is; a failure comes back as the dry run's one sentence."""
    import threading

    from hubmgr.errors import TrainingError
    from hubmgr.train.trial import TrialReport
    from hubmgr.tui.backend import Backend

    backend = Backend()
    config = TrainConfig(
        task="text-classification",
        model=str(tiny_bert),
        data=str(kit["train"]),
        eval_data=str(kit["eval"]),
        epochs=2,
    ).validate()
    report = backend.estimate_run(config)
    assert isinstance(report, TrialReport)
    assert report.batch_size == 8 and report.steps_high == 24 and report.memory_kind == "RAM"

    missing = TrainConfig(task="text-classification", model=str(tiny_bert), data=str(tmp_path / "nope.jsonl"))
    with pytest.raises(TrainingError) as caught:
        backend.estimate_run(missing.validate())
    assert "nope.jsonl" in str(caught.value) and "\n" not in str(caught.value)
    assert "Traceback" not in str(caught.value)

    cancel = threading.Event()
    cancel.set()
    assert backend.estimate_run(config, cancel=cancel) is None
