"""The automatic budget's rules (hubmgr.train.budget) and its callback, without training anything."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hubmgr.errors import UsageError
from hubmgr.train.budget import (
    EVAL_SAMPLE_CAP,
    PATIENCE_BOUNDS,
    Schedule,
    cooldown_steps,
    default_batch_size,
    head_learning_rate,
    improvement_threshold,
    plan_budget,
)
from hubmgr.train.config import TrainConfig, parse_duration


def cfg(**kw) -> TrainConfig:
    return TrainConfig(task="text-classification", model="m", data="d.csv", **kw)


def test_auto_is_the_default_and_scales_the_interval_with_the_data():
    assert TrainConfig().epochs == "auto"
    small = plan_budget(cfg(batch_size=32), n_train=1000, n_eval=100)
    big = plan_budget(cfg(), n_train=40000, n_eval=5000)
    assert small.auto and big.auto
    assert small.steps_per_epoch == 32 and big.steps_per_epoch == 1250
    # the whole eval split when small, a bounded sample when large
    assert small.eval_sample is None and big.eval_sample == EVAL_SAMPLE_CAP
    # evaluations cost about a tenth of training: the interval holds at least 4x the sample
    assert big.eval_steps * 32 >= 4 * EVAL_SAMPLE_CAP
    # and never fewer than one evaluation per epoch, never more than eight
    for plan in (small, big):
        assert plan.steps_per_epoch / 8 <= plan.eval_steps <= plan.steps_per_epoch
        # patience: about half an epoch of evaluations, within the bounds
        lo, hi = PATIENCE_BOUNDS
        half_epoch = round(plan.steps_per_epoch / plan.eval_steps / 2)
        assert plan.patience == min(max(half_epoch, lo), hi)
    assert (small.patience, big.patience) == (1, 2)  # 1 and 5 evaluations an epoch
    assert big.max_steps == 10 * big.steps_per_epoch  # --max-epochs 10
    assert small.warmup_steps == 2  # 6% of the first epoch


def test_explicit_epochs_and_max_steps_mean_exactly_that():
    plan = plan_budget(cfg(epochs=3, batch_size=32), n_train=1000, n_eval=100)
    assert not plan.auto and plan.max_steps == 96 and plan.epochs == 3.0
    plan = plan_budget(cfg(max_steps=7), n_train=1000, n_eval=100)
    assert not plan.auto and plan.max_steps == 7
    # without evaluation data there is nothing to decide with: one epoch
    plan = plan_budget(cfg(batch_size=32), n_train=1000, n_eval=0)
    assert not plan.auto and plan.max_steps == 32 and "no evaluation data" in plan.why[0]


@pytest.mark.parametrize(
    "n_train, expected",
    [
        (100_000, 32),
        (2048, 32),
        (2047, 16),
        (1024, 16),
        (1023, 8),
        (300, 8),
        (1, 8),
    ],
)
def test_default_batch_size_leaves_enough_steps_an_epoch(n_train, expected):
    plan = plan_budget(cfg(), n_train=n_train, n_eval=100)
    assert plan.batch_size == expected
    assert any(f"batch size {expected} for" in line for line in plan.why)
    if n_train >= 8 * 64:
        assert plan.steps_per_epoch >= 64
    # processes and accumulation count: 4 processes x 2 steps of accumulation on 8,192 examples
    # leave 64 steps an epoch only at batch 16
    assert default_batch_size(8192, grad_accum=2, world_size=4) == 16


@pytest.mark.parametrize("explicit", [2, 8, 32, 64])
def test_an_explicit_batch_size_is_used_exactly(explicit):
    for n_train in (50, 1000, 100_000):
        plan = plan_budget(cfg(batch_size=explicit), n_train=n_train, n_eval=100)
        assert plan.batch_size == explicit
        assert plan.steps_per_epoch == -(-n_train // explicit)
        assert not any("batch size" in line for line in plan.why)


def test_head_learning_rate_defaults_to_a_multiple_of_lora_and_can_be_set():
    assert head_learning_rate(cfg()) == pytest.approx(2e-2)
    assert head_learning_rate(cfg(learning_rate=2e-4)) == pytest.approx(4e-3)
    assert head_learning_rate(cfg(head_learning_rate=0.02)) == 0.02


def test_schedule_warms_up_holds_and_cools_down_to_zero():
    s = Schedule(warmup_steps=4)
    assert s(0) == pytest.approx(0.2) and s(3) == pytest.approx(0.8) and s(4) == 1.0 and s(500) == 1.0
    s.cool_down(100, 20)
    assert s.cooling and s.cooldown_end == 120
    assert s(100) == 1.0 and s(110) == pytest.approx(0.5) and s(120) == 0.0 and s(130) == 0.0
    s.cool_down(110, 5)  # a second call does not restart it
    assert s.cooldown_end == 120
    assert (
        cooldown_steps(1000, 50) == 200 and cooldown_steps(100, 50) == 50
    )  # a fifth of the steps, at least one interval


def test_improvement_threshold_follows_the_noise_of_the_sample():
    # a proportion on 2,000 examples is noisier than on 20,000
    assert improvement_threshold(0.8, greater_is_better=True, sample=2000) > improvement_threshold(
        0.8, greater_is_better=True, sample=20000
    )
    assert improvement_threshold(0.8, greater_is_better=True, sample=2000) == pytest.approx(0.5 * (0.16 / 2000) ** 0.5)
    # losses and perplexities: a relative step
    assert improvement_threshold(40.0, greater_is_better=False, sample=2000) == pytest.approx(0.08)
    # ... unless the task measured the score's standard error: half of it
    assert improvement_threshold(40.0, greater_is_better=False, sample=57, stderr=1.6) == pytest.approx(0.8)
    assert improvement_threshold(40.0, greater_is_better=False, sample=57, stderr=float("nan")) == pytest.approx(0.08)


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10 minutes", "-5m", "0s"])
def test_parse_duration_refuses_nonsense(text):
    with pytest.raises(UsageError):
        parse_duration(text)


def test_config_checks_epochs_and_time_budget():
    cfg(epochs="auto", time_budget="10m").validate()
    with pytest.raises(UsageError, match="auto or a number"):
        cfg(epochs="lots").validate()
    with pytest.raises(UsageError, match="--time-budget goes with --epochs auto"):
        cfg(epochs=2, time_budget="10m").validate()
    assert TrainConfig.from_dict({"epochs": "auto"}).epochs == "auto"
    assert TrainConfig.from_dict({"epochs": 2}).epochs == 2.0


# -- the callback ---------------------------------------------------------------------------------------
transformers = pytest.importorskip("transformers")


def _run(values, *, greater=True, patience=2, eval_steps=10, max_steps=10_000, sample=100_000, extra=None):
    """Feed evaluations every ``eval_steps`` steps to a BudgetCallback; returns (callback, stop step).
    ``extra`` metrics go with every evaluation."""
    from hubmgr.train._callback import BudgetCallback

    plan = SimpleNamespace(eval_steps=eval_steps, patience=patience, max_steps=max_steps, time_budget=None)
    schedule = Schedule(0)
    cb = BudgetCallback(plan=plan, schedule=schedule, metric="accuracy", greater_is_better=greater, sample=sample)
    state = SimpleNamespace(global_step=0, epoch=0.0)
    cb.on_train_begin(None, state, None)
    values = list(values)
    for step in range(1, max_steps + 1):
        state.global_step, state.epoch = step, step / 100
        control = SimpleNamespace(should_evaluate=False, should_save=False, should_training_stop=False)
        cb.on_step_end(None, state, control)
        if step % eval_steps == 0 or control.should_evaluate:
            value = values.pop(0) if values else (cb.history[-1][2] if cb.history else 0.5)
            cb.on_evaluate(None, state, control, metrics={"eval_accuracy": value, **(extra or {})})
        if control.should_training_stop:
            return cb, step
    return cb, max_steps


def test_callback_cools_down_after_a_plateau_then_stops():
    cb, stop = _run([0.5, 0.7, 0.8, 0.8, 0.79, 0.8, 0.8, 0.8])
    # best at step 30, no real gain at 40 and 50: cool-down from step 50 for max(10, 15% of 50) steps
    assert cb.reason == "plateau" and cb.schedule.cooldown_start == 50 and stop == 60
    assert cb.plateau_epoch == pytest.approx(0.3)


def test_callback_ignores_gains_below_the_noise():
    # on 200 examples, +0.005 steps are noise: they do not reset the patience
    cb, stop = _run([0.5, 0.8, 0.805, 0.81, 0.9, 0.9, 0.9], sample=200)
    assert cb.reason == "plateau" and cb.schedule.cooldown_start == 40


def test_callback_lower_is_better():
    cb, stop = _run([50.0, 40.0, 30.0, 31.0, 32.0, 33.0], greater=False)
    assert cb.reason == "plateau" and cb.schedule.cooldown_start == 50


def test_callback_takes_the_noise_from_the_tasks_stderr_metric():
    # perplexity 30 -> 29.5 -> 29.2: steps of 1-2 %, real by the 0.2 % rule, noise when the task says
    # the score's standard error is 2.0 (half of it, 1.0, counts as real)
    values = [40.0, 30.0, 29.5, 29.2, 29.0, 28.9]
    cb, _ = _run(values, greater=False)
    # every step is real by 0.2 %; the plateau is the repeated 28.9 (steps 70 and 80)
    assert cb.reason == "plateau" and cb.schedule.cooldown_start == 80
    cb, _ = _run(values, greater=False, extra={"eval_accuracy_stderr": 2.0})
    assert cb.reason == "plateau" and cb.schedule.cooldown_start == 40


def test_callback_cools_down_before_max_epochs_and_says_it_was_still_improving():
    cb, stop = _run([0.1 * i for i in range(1, 11)], max_steps=100)
    assert cb.reason == "max_epochs" and stop == 100
    assert cb.improving_at_cooldown
    assert cb.schedule.cooldown_end == 100


# -- what training says at the end ------------------------------------------------------------------------
def test_weak_result_note_compares_with_the_tasks_trivial_predictor():
    import numpy as np

    from hubmgr.train.runner import _weak_result_notes

    class Stub:
        def baseline_metrics(self, labels, data, options):
            return {"accuracy": float(np.mean(labels == 0))}  # always the majority label 0

    labels = np.array([0] * 90 + [1] * 10)
    weak = _weak_result_notes(Stub(), None, None, {"accuracy": 0.9}, labels, "accuracy", True)
    assert len(weak) == 1 and "no better than a predictor that ignores its input" in weak[0] and "0.9000" in weak[0]
    assert _weak_result_notes(Stub(), None, None, {"accuracy": 0.97}, labels, "accuracy", True) == []
    # a task without a trivial predictor says nothing
    assert _weak_result_notes(object(), None, None, {"accuracy": 0.5}, labels, "accuracy", True) == []


def test_stop_reason_of_a_fixed_budget_says_when_the_metric_was_still_rising():
    from hubmgr.train.runner import _stop_reason

    config = cfg(epochs=2)
    plan = plan_budget(config, n_train=1000, n_eval=100)
    text, rising = _stop_reason(
        config, plan, None, [(32, 1.0, 0.70), (64, 2.0, 0.80)], "accuracy", True, best_step=None, epoch=2.0, step=64
    )
    assert text == "trained the 2 epochs asked for" and "still improving" in rising
    text, rising = _stop_reason(
        config, plan, None, [(32, 1.0, 0.80), (64, 2.0, 0.80)], "accuracy", True, best_step=None, epoch=2.0, step=64
    )
    assert rising is None
