"""What a training run will cost, predicted from a trial of a few real steps (``hubmgr train --dry-run``,
``hubmgr fit --trial``).

:func:`hubmgr.train.runner.trial` builds the run exactly as :func:`hubmgr.train.runner.train` would (the
same model, data, LoRA layers, precision, batch size and budget plan), times a few optimizer steps and one
evaluation pass on a sample, and reads the process's peak memory. This module turns those measurements
into a prediction; it imports neither torch nor transformers.

The model of the cost:

* a training step costs ``fixed + per_token x padded tokens`` (fitted on the timed steps; the first step,
  which warms up kernels and allocators, is left out). An epoch's padded tokens are the training split's
  tokens times the padding the timed batches showed (batches are grouped by length);
* an evaluation costs its examples' tokens times the time per token of the timed evaluation;
* the run costs its start (measured: loading the model and data, preprocessing) plus its steps, its
  evaluations (one per interval under the automatic budget, one per epoch otherwise) and the final
  evaluation of the whole eval split;
* peak memory is the trial's: the length-grouped sampler puts the longest batch first, so the trial's first
  step is the run's most expensive one.

The automatic budget stops when the eval metric plateaus, which no trial can know in advance: its
prediction is a range, from the shortest run the budget allows (one evaluation, ``patience`` more without
progress, then the cool-down) to its bound (``max_epochs``, or the time budget).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from hubmgr.train.budget import BudgetPlan, cooldown_steps

#: optimizer steps a trial times by default (the first one is a warm-up and is not counted)
TRIAL_STEPS = 8
#: eval examples a trial scores to time an evaluation (at most)
TRIAL_EVAL_EXAMPLES = 64


@dataclass
class StepCost:
    """A fitted step cost: ``seconds = fixed + per_token * tokens``."""

    fixed: float
    per_token: float

    def seconds(self, tokens: float) -> float:
        return self.fixed + self.per_token * tokens


def fit_step_cost(seconds: list[float], tokens: list[float]) -> StepCost:
    """Least squares of ``seconds`` on ``tokens`` (padded tokens of each step), both parts kept >= 0.

    With steps of (nearly) one length the split is unknowable and the whole cost is charged per token.
    """
    if not seconds or len(seconds) != len(tokens):
        raise ValueError("need one token count per timed step")
    mean_t, mean_x = statistics.fmean(seconds), statistics.fmean(tokens)
    var = sum((x - mean_x) ** 2 for x in tokens)
    if len(seconds) >= 2 and var > (0.05 * mean_x) ** 2 * len(tokens):
        slope = sum((x - mean_x) * (t - mean_t) for x, t in zip(tokens, seconds)) / var
        fixed = mean_t - slope * mean_x
        if slope > 0 and fixed >= 0:
            return StepCost(fixed=fixed, per_token=slope)
        if slope > 0:  # a negative intercept: the steps are all per-token work
            return StepCost(fixed=0.0, per_token=mean_t / mean_x if mean_x else 0.0)
        return StepCost(fixed=mean_t, per_token=0.0)  # cost does not grow with length: fixed
    return StepCost(fixed=0.0, per_token=(mean_t / mean_x) if mean_x else 0.0) if mean_x else StepCost(mean_t, 0.0)


@dataclass
class TrialMeasurements:
    """What a trial measured, and the sizes it needs to scale them (from the run's own data).

    Attributes:
        startup_seconds: from the call to the first step (model, data, preprocessing, trainer).
        step_seconds: the timed steps (after the warm-up step).
        step_tokens: padded tokens of each timed step (examples for tasks without token ids).
        step_real_tokens: tokens of each timed step before padding.
        train_tokens: tokens of the whole training split (one epoch; examples when no token ids).
        eval_seconds: times of the timed evaluation passes (empty: no evaluation data).
        eval_tokens: tokens each timed evaluation pass scored.
        eval_tokens_total: tokens of the whole eval split.
        peak_memory_bytes: the process's peak resident memory (CPU) or peak reserved memory (GPU).
        memory_kind: ``"RAM"`` or ``"GPU memory"``.
        available_memory_bytes: what the device has free now (None when unknown).
    """

    startup_seconds: float
    step_seconds: list[float]
    step_tokens: list[float]
    step_real_tokens: list[float]
    train_tokens: float
    eval_seconds: list[float]
    eval_tokens: list[float]
    eval_tokens_total: float
    peak_memory_bytes: int
    memory_kind: str
    available_memory_bytes: int | None = None


@dataclass
class TrialReport:
    """A predicted run: its cost per epoch, its length, its peak memory, and the verdict on memory.

    ``seconds_low`` equals ``seconds_high`` for a fixed budget (``--epochs N``, ``--max-steps N``); the
    automatic budget gives the range it may stop in.
    """

    task: str
    model: str
    device: str
    precision: str
    batch_size: int
    steps_per_epoch: int
    n_train: int
    n_eval: int
    auto: bool
    steps_low: int
    steps_high: int
    trial_steps: int
    trial_seconds: float
    startup_seconds: float
    step_seconds: float  # a mean step of the epoch
    epoch_train_seconds: float
    epoch_eval_seconds: float
    final_eval_seconds: float
    seconds_low: float
    seconds_high: float
    peak_memory_bytes: int
    memory_kind: str
    available_memory_bytes: int | None
    verdict: str
    time_budget: float | None = None
    why: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verdict(peak: int, available: int | None) -> str:
    from hubmgr.hub.fit import verdict

    return verdict(peak, available) if available else "unknown"


def shortest_auto_steps(plan: BudgetPlan) -> int:
    """The fewest steps the automatic budget can take: the first evaluation, ``patience`` more without
    progress, then the cool-down (never past ``max_steps``)."""
    interval = int(plan.eval_steps or plan.steps_per_epoch)
    start = interval * (1 + max(0, int(plan.patience)))
    return min(plan.max_steps, start + cooldown_steps(start, interval))


def predict(
    m: TrialMeasurements,
    plan: BudgetPlan,
    *,
    task: str,
    model: str,
    device: str,
    precision: str,
    n_train: int,
    n_eval: int,
    trial_seconds: float,
) -> TrialReport:
    """The run's cost from a trial's measurements and the run's budget plan."""
    cost = fit_step_cost(m.step_seconds, m.step_tokens)
    padding = (sum(m.step_tokens) / sum(m.step_real_tokens)) if sum(m.step_real_tokens) else 1.0
    spe = max(1, int(plan.steps_per_epoch))
    epoch_tokens = m.train_tokens * padding
    epoch_train = spe * cost.fixed + cost.per_token * epoch_tokens
    # an evaluation pass: a fixed part (data loader, metrics) and a part per token, fitted like the steps
    eval_cost = fit_step_cost(m.eval_seconds, m.eval_tokens) if m.eval_seconds else StepCost(0.0, 0.0)
    eval_tokens_per_example = (m.eval_tokens_total / n_eval) if n_eval else 0.0
    whole_eval = eval_cost.seconds(m.eval_tokens_total) if n_eval else 0.0
    why: list[str] = []
    if plan.auto:
        interval = int(plan.eval_steps or spe)
        sample = plan.eval_sample or n_eval
        one_eval = eval_cost.seconds(eval_tokens_per_example * sample)
        epoch_eval = one_eval * spe / interval
        # the whole split is scored again at the end when the evaluations scored a sample of it
        final_eval = whole_eval if plan.eval_sample is not None else 0.0
        steps_low, steps_high = shortest_auto_steps(plan), int(plan.max_steps)
        why.append(
            f"the automatic budget stops when the eval metric plateaus: between {steps_low:,} and"
            f" {steps_high:,} steps ({steps_low / spe:.1f} to {steps_high / spe:.1f} epochs)"
        )
    else:
        steps_low = steps_high = int(plan.max_steps)
        if plan.eval_steps:  # an evaluation every eval_steps, and a final one unless the last fell on the end
            epoch_eval = whole_eval * spe / int(plan.eval_steps)
            final_eval = whole_eval if steps_high % int(plan.eval_steps) else 0.0
        else:  # one evaluation each epoch; the last one is the final evaluation when it falls on the end
            epoch_eval = whole_eval
            final_eval = whole_eval if steps_high % spe else 0.0
    per_step = (epoch_train + epoch_eval) / spe

    def run_seconds(steps: int) -> float:
        return m.startup_seconds + steps * per_step + final_eval

    low, high = run_seconds(steps_low), run_seconds(steps_high)
    if plan.time_budget is not None:
        cap = m.startup_seconds + float(plan.time_budget) + final_eval
        low, high = min(low, cap), min(high, cap)
        why.append(f"the time budget ({plan.time_budget:g} s of training) bounds the run")
    return TrialReport(
        task=task,
        model=model,
        device=device,
        precision=precision,
        batch_size=int(plan.batch_size),
        steps_per_epoch=spe,
        n_train=n_train,
        n_eval=n_eval,
        auto=bool(plan.auto),
        steps_low=steps_low,
        steps_high=steps_high,
        trial_steps=len(m.step_seconds) + 1,
        trial_seconds=trial_seconds,
        startup_seconds=m.startup_seconds,
        step_seconds=epoch_train / spe,
        epoch_train_seconds=epoch_train,
        epoch_eval_seconds=epoch_eval,
        final_eval_seconds=final_eval,
        seconds_low=low,
        seconds_high=high,
        peak_memory_bytes=int(m.peak_memory_bytes),
        memory_kind=m.memory_kind,
        available_memory_bytes=m.available_memory_bytes,
        verdict=_verdict(int(m.peak_memory_bytes), m.available_memory_bytes),
        time_budget=plan.time_budget,
        why=why,
    )


def summary_lines(report: TrialReport) -> list[str]:
    """What ``hubmgr train --dry-run`` prints: the prediction in a few sentences."""
    from hubmgr.format import duration, human_bytes

    lines = [
        f"Trial: {report.trial_steps} steps of batch {report.batch_size} on {report.device}"
        f" ({report.precision}) in {duration(report.trial_seconds)}.",
    ]
    memory = f"Peak {report.memory_kind}: {human_bytes(report.peak_memory_bytes)}"
    if report.available_memory_bytes:
        memory += f" of {human_bytes(report.available_memory_bytes)} available ({report.verdict})"
    lines.append(memory + ".")
    epoch = (
        f"One epoch: {duration(report.epoch_train_seconds + report.epoch_eval_seconds)}"
        f" ({report.steps_per_epoch:,} steps of about {report.step_seconds:.2g} s"
    )
    if report.epoch_eval_seconds:
        epoch += f", evaluation {duration(report.epoch_eval_seconds)}"
    lines.append(epoch + ").")
    if math.isclose(report.seconds_low, report.seconds_high, rel_tol=0.02):
        lines.append(f"Whole run: about {duration(report.seconds_high)}.")
    else:
        lines.append(f"Whole run: between {duration(report.seconds_low)} and {duration(report.seconds_high)}.")
    lines += [w[0].upper() + w[1:] + "." for w in report.why]
    return lines
