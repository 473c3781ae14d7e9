"""The trial's prediction (hubmgr/train/trial.py): the step-cost fit and the arithmetic of a run's time."""

from __future__ import annotations

import pytest

from hubmgr.train.budget import plan_budget
from hubmgr.train.config import TrainConfig
from hubmgr.train.trial import TrialMeasurements, fit_step_cost, predict, shortest_auto_steps, summary_lines


def test_step_cost_fit_recovers_fixed_and_per_token_parts() -> None:
    tokens = [400.0, 900.0, 1500.0, 2200.0, 3000.0]
    seconds = [0.05 + 2e-4 * t for t in tokens]
    cost = fit_step_cost(seconds, tokens)
    assert cost.fixed == pytest.approx(0.05) and cost.per_token == pytest.approx(2e-4)
    # steps of one length: the whole cost is per token
    same = fit_step_cost([0.3, 0.31, 0.29], [1000.0, 1000.0, 1000.0])
    assert same.fixed == 0.0 and same.per_token == pytest.approx(0.3 / 1000)
    # a cost that does not grow with length is fixed
    flat = fit_step_cost([0.3, 0.3, 0.3, 0.3], [100.0, 1000.0, 2000.0, 4000.0])
    assert flat.per_token == 0.0 and flat.fixed == pytest.approx(0.3)
    with pytest.raises(ValueError):
        fit_step_cost([0.1], [])


def _measurements(**kw) -> TrialMeasurements:
    values = dict(
        startup_seconds=10.0,
        step_seconds=[0.05 + 2e-4 * t for t in (1000.0, 2000.0, 3000.0)],
        step_tokens=[1000.0, 2000.0, 3000.0],
        step_real_tokens=[800.0, 1600.0, 2400.0],  # 25% padding
        train_tokens=64_000.0,
        eval_seconds=[0.5 + 2.0 / 4_000 * 1_000, 0.5 + 2.0],  # 0.5 s a pass + 2 s per 4,000 tokens
        eval_tokens=[1_000.0, 4_000.0],
        eval_tokens_total=20_000.0,
        peak_memory_bytes=1_000_000_000,
        memory_kind="RAM",
        available_memory_bytes=10_000_000_000,
    )
    values.update(kw)
    return TrialMeasurements(**values)


def test_fixed_budget_prediction_is_the_sum_of_its_parts() -> None:
    config = TrainConfig(task="t", model="m", data="d", epochs=2, batch_size=32)
    plan = plan_budget(config, n_train=640, n_eval=100)  # 20 steps an epoch, 40 in all
    report = predict(
        _measurements(),
        plan,
        task="t",
        model="m",
        device="cpu",
        precision="float32",
        n_train=640,
        n_eval=100,
        trial_seconds=15.0,
    )
    epoch_train = 20 * 0.05 + 2e-4 * 64_000 * 1.25
    eval_pass = 0.5 + 2.0 / 4_000 * 20_000  # one evaluation of the whole split per epoch, the last one final
    assert report.epoch_train_seconds == pytest.approx(epoch_train)
    assert report.epoch_eval_seconds == pytest.approx(eval_pass) and report.final_eval_seconds == 0.0
    assert report.seconds_low == report.seconds_high == pytest.approx(10.0 + 2 * (epoch_train + eval_pass))
    assert (report.steps_low, report.steps_high, report.verdict) == (40, 40, "fits")
    text = "\n".join(summary_lines(report))
    assert "Whole run: about" in text and "Peak RAM: 1.0 GB of 10.0 GB available (fits)" in text
    # a run that ends inside an epoch is scored once more at its end
    part = plan_budget(TrainConfig(task="t", model="m", data="d", max_steps=30, batch_size=32), n_train=640, n_eval=100)
    part_report = predict(
        _measurements(),
        part,
        task="t",
        model="m",
        device="cpu",
        precision="float32",
        n_train=640,
        n_eval=100,
        trial_seconds=15.0,
    )
    assert part_report.final_eval_seconds == pytest.approx(eval_pass) and part_report.steps_high == 30


def test_automatic_budget_gives_the_range_it_may_stop_in() -> None:
    config = TrainConfig(task="t", model="m", data="d", batch_size=32)
    plan = plan_budget(config, n_train=6400, n_eval=500)
    assert plan.auto
    report = predict(
        _measurements(train_tokens=640_000.0),
        plan,
        task="t",
        model="m",
        device="cpu",
        precision="bf16",
        n_train=6400,
        n_eval=500,
        trial_seconds=15.0,
    )
    low = shortest_auto_steps(plan)
    assert plan.eval_steps < low < plan.max_steps
    assert (report.steps_low, report.steps_high) == (low, plan.max_steps)
    assert report.seconds_low < report.seconds_high
    per_step = (report.epoch_train_seconds + report.epoch_eval_seconds) / plan.steps_per_epoch
    assert report.seconds_high - report.seconds_low == pytest.approx((plan.max_steps - low) * per_step)
    assert "between" in "\n".join(summary_lines(report))
    # a time budget caps both ends
    capped = plan_budget(
        TrainConfig(task="t", model="m", data="d", batch_size=32, time_budget="1m"), n_train=6400, n_eval=500
    )
    report = predict(
        _measurements(train_tokens=640_000.0),
        capped,
        task="t",
        model="m",
        device="cpu",
        precision="bf16",
        n_train=6400,
        n_eval=500,
        trial_seconds=15.0,
    )
    assert report.seconds_high <= 10.0 + 60.0 + report.final_eval_seconds + 1e-9
