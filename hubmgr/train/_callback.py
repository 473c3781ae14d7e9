"""The TrainerCallback that turns transformers' logs into hubmgr events, and stops on cancel or NaN.

Imported by :mod:`hubmgr.train.runner` inside ``train()`` only (it imports transformers).
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any, Callable

from transformers import TrainerCallback

from hubmgr.errors import TrainingError
from hubmgr.train.events import CheckpointSaved, EvalLogged, StepLogged, TrainStarted

_EVAL_DROP = {"runtime", "samples_per_second", "steps_per_second", "epoch"}


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f


class EventCallback(TrainerCallback):
    """Emits TrainStarted / StepLogged / EvalLogged / CheckpointSaved, checks ``cancel`` and NaN loss.

    StepLogged comes on every logging step (``logging_steps``) with the mean loss since the previous one,
    the learning rate and the grad norm, and in between at most every ``min_interval`` seconds with
    those three set to None (progress, speed and ETA only).

    Args:
        emit: called with each event (the runner only passes a real one on the main process).
        cancel: set it to stop after the current step (a checkpoint is saved so ``--resume`` works).
        started: the fixed fields of :class:`TrainStarted` other than the step counts.
        samples_per_step: examples consumed per optimizer step over all processes.
        world_size: processes; above 1 the cancel flag is agreed on by all of them each step.
        min_interval: seconds between two StepLogged events on steps that do not log a loss.
        stop_requested: called each step; True stops like ``cancel`` (``hubmgr runs stop``, from another
            process).
    """

    def __init__(
        self,
        *,
        emit: Callable[[Any], None],
        cancel: threading.Event,
        started: dict[str, Any],
        samples_per_step: int,
        world_size: int = 1,
        min_interval: float = 0.25,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        self.emit = emit
        self.stop_requested = stop_requested
        self.cancel = cancel
        self.started = started
        self.samples_per_step = samples_per_step
        self.world_size = world_size
        self.min_interval = min_interval
        self.start_step = 0
        self.t_start = time.perf_counter()
        self.last_emit = 0.0
        self.last_loss: float | None = None
        self.last_lr: float | None = None
        self.last_grad_norm: float | None = None
        self.cancelled = False
        self.last_eval_step: int | None = None
        self.last_eval: dict[str, float] = {}
        self.train_summary: dict[str, float] = {}
        self.max_steps = 0

    # -- helpers -------------------------------------------------------------------------------------
    def _speed(self, step: int) -> tuple[float | None, float | None]:
        done = step - self.start_step
        elapsed = time.perf_counter() - self.t_start
        if done <= 0 or elapsed <= 0:
            return None, None
        sps = done * self.samples_per_step / elapsed
        eta = max(0.0, (self.max_steps - step) * elapsed / done)
        return sps, eta

    def _step_event(self, state: Any, *, fresh: bool) -> StepLogged:
        """A step event; loss, learning rate and grad norm only on steps that logged them (``fresh``)."""
        sps, eta = self._speed(state.global_step)
        return StepLogged(
            step=state.global_step,
            total_steps=self.max_steps,
            epoch=float(state.epoch or 0.0),
            loss=self.last_loss if fresh else None,
            learning_rate=self.last_lr if fresh else None,
            samples_per_second=sps,
            eta_seconds=eta,
            grad_norm=self.last_grad_norm if fresh else None,
        )

    def _cancel_requested(self, args: Any) -> bool:
        local = self.cancel.is_set()
        if not local and self.stop_requested is not None and self.stop_requested():
            self.cancel.set()
            local = True
        if self.world_size <= 1:
            return local
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return local
        flag = torch.tensor([1 if local else 0], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    # -- hooks ---------------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start_step = state.global_step
        self.max_steps = state.max_steps
        self.t_start = time.perf_counter()
        self.emit(TrainStarted(total_steps=state.max_steps, resumed_from_step=state.global_step, **self.started))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._cancel_requested(args):
            self.cancelled = True
            control.should_training_stop = True
            if str(getattr(args.save_strategy, "value", args.save_strategy)) != "no":
                control.should_save = True
        if control.should_log:
            return  # on_log follows with the fresh loss
        now = time.perf_counter()
        if now - self.last_emit >= self.min_interval or state.global_step >= state.max_steps:
            self.last_emit = now
            self.emit(self._step_event(state, fresh=False))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            loss = _finite(logs.get("loss"))
            grad = _finite(logs.get("grad_norm"))
            # (an infinite grad norm alone is normal with float16 loss scaling: that step is skipped)
            if loss is None or not math.isfinite(loss):
                lr = _finite(logs.get("learning_rate"))
                raise TrainingError(
                    f"Loss became NaN at step {state.global_step}; lower the learning rate"
                    f" (it was {lr if lr is not None else args.learning_rate:g}) or check the data."
                )
            self.last_loss = loss
            self.last_lr = _finite(logs.get("learning_rate"))
            grad = grad if grad is not None and math.isfinite(grad) else None
            self.last_grad_norm = grad
            self.last_emit = time.perf_counter()
            self.emit(self._step_event(state, fresh=True))  # the run registry records it from the event
        elif "train_runtime" in logs:
            self.train_summary = {k: v for k, v in logs.items() if isinstance(v, (int, float))}

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        metrics = metrics or {}
        clean: dict[str, float] = {}
        for key, value in metrics.items():
            name = key[5:] if key.startswith("eval_") else key
            if name in _EVAL_DROP:
                continue
            f = _finite(value)
            if f is not None:
                clean[name] = f
        loss = clean.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise TrainingError(
                f"Evaluation loss became NaN at step {state.global_step}; lower the learning rate"
                f" (it was {args.learning_rate:g}) or check the data."
            )
        self.last_eval_step = state.global_step
        self.last_eval = clean
        self.emit(EvalLogged(step=state.global_step, epoch=float(state.epoch or 0.0), metrics=clean))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        self.emit(CheckpointSaved(step=state.global_step, path=path))


class BudgetCallback(TrainerCallback):
    """Carries out an automatic budget (:mod:`hubmgr.train.budget`): cools the learning rate down when the
    main metric plateaus or the budget is nearly spent, then stops after one more evaluation.

    Args:
        plan: the run's :class:`hubmgr.train.budget.BudgetPlan` (``auto`` True).
        schedule: the :class:`hubmgr.train.budget.Schedule` the learning-rate scheduler follows.
        metric: the main metric's name (without ``eval_``); greater_is_better its direction.
        sample: examples scored per evaluation (for the noise of the metric).

    After training, ``reason`` is one of ``plateau``, ``max_epochs``, ``time``, and ``history`` holds
    ``(step, epoch, value)`` per evaluation.
    """

    def __init__(
        self, *, plan: Any, schedule: Any, metric: str, greater_is_better: bool, sample: int, world_size: int = 1
    ) -> None:
        self.plan = plan
        self.world_size = world_size
        self.schedule = schedule
        self.metric = metric
        self.greater = greater_is_better
        self.sample = sample
        self.best: float | None = None
        self.bad = 0
        self.reason: str | None = None
        self.cooldown_epoch: float | None = None
        self.plateau_epoch: float | None = None
        self.improving_at_cooldown = False
        self.history: list[tuple[int, float, float]] = []
        self.t_start = time.perf_counter()
        self.sec_per_step: float | None = None
        self._t_step0: tuple[int, float] | None = None

    def _start_cooldown(self, state: Any, reason: str) -> None:
        from hubmgr.train.budget import cooldown_steps

        if self.schedule.cooling:
            return
        step = state.global_step
        length = cooldown_steps(step, self.plan.eval_steps)
        if reason == "max_epochs":
            length = max(1, self.plan.max_steps - step)
        elif reason == "time" and self.plan.time_budget and self.sec_per_step:
            left = self.plan.time_budget - (time.perf_counter() - self.t_start)
            length = max(1, int(left / self.sec_per_step))
        self.schedule.cool_down(step, length)
        self.reason = reason
        self.cooldown_epoch = float(state.epoch or 0.0)
        if self.history:
            pick = max if self.greater else min
            self.plateau_epoch = pick(self.history, key=lambda h: h[2])[1]
        self.improving_at_cooldown = self.bad == 0 and len(self.history) > 1

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.t_start = time.perf_counter()
        self._t_step0 = (state.global_step, self.t_start)

    def _agreed_elapsed(self, args: Any, elapsed: float) -> float:
        """Under DDP with a time budget, the largest elapsed time of all processes, so they all decide alike
        (evaluation metrics are gathered, so decisions on them agree already)."""
        if self.world_size <= 1 or not self.plan.time_budget:
            return elapsed
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return elapsed
        value = torch.tensor([elapsed], dtype=torch.float64, device=args.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return float(value.item())

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        from hubmgr.train.budget import improvement_threshold

        value = _finite((metrics or {}).get(f"eval_{self.metric}"))
        if value is None or not math.isfinite(value):
            return
        self.history.append((state.global_step, float(state.epoch or 0.0), value))
        if self.best is None:
            self.best = value
        else:
            stderr = _finite((metrics or {}).get(f"eval_{self.metric}_stderr"))
            delta = improvement_threshold(self.best, greater_is_better=self.greater, sample=self.sample, stderr=stderr)
            better = value > self.best + delta if self.greater else value < self.best - delta
            if better:
                self.best, self.bad = value, 0
            else:
                self.bad += 1
                if (value > self.best) if self.greater else (value < self.best):
                    self.best = value  # a small gain still raises the bar, without resetting patience
        if self.schedule.cooling:
            end = self.schedule.cooldown_end
            if end is not None and state.global_step >= end:
                control.should_training_stop = True
            return
        if self.bad >= self.plan.patience:
            self._start_cooldown(state, "plateau")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from hubmgr.train.budget import COOLDOWN_FRACTION, TIME_COOLDOWN_AT

        step = state.global_step
        now = time.perf_counter()
        if self._t_step0 is not None and step > self._t_step0[0]:
            self.sec_per_step = (now - self._t_step0[1]) / (step - self._t_step0[0])
        elapsed = self._agreed_elapsed(args, now - self.t_start)
        if not self.schedule.cooling:
            if step + max(self.plan.eval_steps, COOLDOWN_FRACTION * step) >= self.plan.max_steps:
                self._start_cooldown(state, "max_epochs")
            elif self.plan.time_budget and elapsed >= TIME_COOLDOWN_AT * self.plan.time_budget:
                self._start_cooldown(state, "time")
        end = self.schedule.cooldown_end
        over_time = bool(self.plan.time_budget) and elapsed >= self.plan.time_budget
        if (end is not None and step >= end) or over_time:
            if over_time and self.reason != "time":
                self.reason = "time"
            control.should_evaluate = True
            control.should_save = True
            control.should_training_stop = True


class StepTimer(TrainerCallback):
    """Times each optimizer step, begin to end (the optimizer's update included): :func:`hubmgr.train.runner.trial`."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.ready: float | None = None
        self.first_begin: float | None = None
        self._begin = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._begin = time.perf_counter()
        if self.first_begin is None:
            self.first_begin = self._begin

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds.append(time.perf_counter() - self._begin)
