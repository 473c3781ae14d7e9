"""The automatic budget end to end on a tiny random BERT: it stops on a plateau, keeps the best checkpoint
(not the last), says why it stopped (result, event, registry, CLI), and explicit budgets mean exactly that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubmgr.train.config import TrainConfig

from tests.integration.test_train import write_reviews


def _auto(model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    values = dict(
        task="text-classification",
        model=str(model),
        data=str(data),
        output_dir=str(out),
        batch_size=8,
        learning_rate=5e-3,
        logging_steps=5,
    )
    values.update(kw)
    return TrainConfig(**values)


def test_auto_budget_stops_on_a_plateau_and_keeps_the_best_checkpoint(hf_env, tiny_bert, tmp_path):
    import hubmgr
    from hubmgr.runs.store import RunStore

    data = write_reviews(tmp_path / "train.csv", n=400)
    events = []
    result = hubmgr.train(_auto(tiny_bert, data, tmp_path / "out"), on_event=events.append)
    assert result.status == "completed"
    started = next(e for e in events if e.kind == "train_started")
    assert started.budget == "auto"
    spe = started.total_steps // 10  # planned: --max-epochs 10
    # it stopped long before the ten epochs, on the plateau
    assert result.global_step < started.total_steps
    assert "stopped improving" in result.stop_reason and "cooled the learning rate down" in result.stop_reason
    evals = [e for e in events if e.kind == "eval"]
    assert len(evals) >= 3
    # evaluations came at a fixed interval within an epoch
    assert evals[1].step - evals[0].step <= spe
    # the kept weights are the best evaluation's (the Trainer keeps the first of equal scores), not
    # necessarily the last one's: the final evaluation (the eval split is small enough to be scored whole
    # during training too) reproduces the best step's numbers
    best = max(evals, key=lambda e: (e.metrics["accuracy"], -e.step))
    assert result.best_step == best.step
    first_at_best = next(e for e in evals if e.step == best.step)
    assert result.metrics["eval_loss"] == pytest.approx(first_at_best.metrics["loss"], rel=1e-4)
    assert result.metrics["eval_accuracy"] == pytest.approx(best.metrics["accuracy"])
    # the reason is recorded with the adapter and in the registry
    meta = json.loads((result.adapter_path / "hubmgr_run.json").read_text())
    assert meta["stop_reason"] == result.stop_reason and meta["budget"]["auto"] is True
    from hubmgr.config import get_settings

    record = RunStore(get_settings().runs_db).get_run(result.run_id)
    assert record.stop_reason == result.stop_reason


def test_explicit_epochs_are_honoured_exactly(hf_env, tiny_bert, tmp_path):
    import hubmgr

    data = write_reviews(tmp_path / "train.csv", n=80)  # 72 for training: 9 steps an epoch at batch 8
    result = hubmgr.train(_auto(tiny_bert, data, tmp_path / "out", epochs=2))
    assert result.global_step == 18 and result.epochs == pytest.approx(2.0)
    assert result.stop_reason == "trained the 2 epochs asked for"
    result = hubmgr.train(_auto(tiny_bert, data, tmp_path / "out2", max_steps=5))
    assert result.global_step == 5 and result.stop_reason == "trained --max-steps 5"


def test_time_budget_stops_the_run(hf_env, tiny_bert, tmp_path):
    import hubmgr

    data = write_reviews(tmp_path / "train.csv", n=4000)
    result = hubmgr.train(
        _auto(
            tiny_bert,
            data,
            tmp_path / "out",
            time_budget="3s",
            max_epochs=100,
            learning_rate=1e-6,
            head_learning_rate=1e-6,
        )
    )
    assert result.status == "completed"
    assert result.stop_reason.startswith("the time budget (3s) ran out")
    assert result.epochs < 100


def test_cli_says_why_it_stopped(hf_env, tiny_bert, tmp_path, run_cli):
    data = write_reviews(tmp_path / "train.csv", n=80)
    proc = run_cli(
        "train",
        "text-classification",
        "--model",
        str(tiny_bert),
        "--data",
        str(data),
        "--output",
        str(tmp_path / "out"),
        "--epochs",
        "1",
        "--batch-size",
        "8",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Stopped: trained the 1 epoch asked for." in proc.stderr
    runs = json.loads(run_cli("runs", "--json").stdout)
    shown = run_cli("runs", "show", runs[0]["id"])
    assert shown.returncode == 0 and "trained the 1 epoch asked for" in shown.stdout
    assert (
        json.loads(run_cli("runs", "show", runs[0]["id"], "--json").stdout)["stop_reason"]
        == "trained the 1 epoch asked for"
    )


def test_the_default_batch_size_follows_the_data_and_is_recorded(hf_env, tiny_bert, tmp_path):
    import hubmgr

    data = write_reviews(tmp_path / "train.csv", n=400)  # 360 for training: too few for batch 32 or 16
    result = hubmgr.train(_auto(tiny_bert, data, tmp_path / "out", batch_size=None, epochs=1))
    assert result.global_step == 45  # 360 / 8
    meta = json.loads((result.adapter_path / "hubmgr_run.json").read_text())
    assert meta["config"]["batch_size"] == 8 and meta["budget"]["batch_size"] == 8
    assert any(line.startswith("batch size 8 for 360 training examples") for line in meta["budget"]["why"])
    assert "batch size: 8 x 1" in (result.adapter_path / "README.md").read_text()
