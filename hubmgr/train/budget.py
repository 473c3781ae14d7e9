"""How long to train: the automatic budget (``--epochs auto``) and the rules that follow from the data.

The one home of these rules; the runner asks :func:`plan_budget` once it knows the sizes of the splits,
and :class:`BudgetCallback` (in :mod:`hubmgr.train._callback`) carries the plan out.

The automatic budget is "warm up, hold, cool down at the plateau":

* the learning rate warms up over the first ``warmup`` of an epoch, then holds;
* a bounded sample of the eval split is scored at intervals that scale with the data (see
  :func:`plan_budget`), and each score is kept as a checkpoint;
* when the main metric has not improved by more than its noise for ``patience`` evaluations, or the
  budget (``max_epochs``, ``time_budget``) is nearly spent, the learning rate cools down linearly to 0
  over ``COOLDOWN_FRACTION`` of the steps done so far (at least one evaluation interval), the run is
  scored once more and stops;
* the best checkpoint (not the last) becomes the adapter, and the final evaluation is on the whole eval
  split.

A cool-down at the end of a constant learning rate matches a schedule planned for the same length
(Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations"), which
is what lets the run stop when the data says so instead of at a length fixed in advance.

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hubmgr.train.config import TrainConfig, parse_duration

#: the in-training evaluation scores at most this many eval examples (the final one scores them all)
EVAL_SAMPLE_CAP = 2000
#: an evaluation should cost about a tenth of the training between two of them: scoring an example
#: costs about a third of training on it, so the interval holds at least this many times the sample
EVAL_COST_FACTOR = 4
#: at most this many evaluations per epoch (more would only add noise)
MAX_EVALS_PER_EPOCH = 8
#: evaluations without a real improvement before cooling down: about half an epoch, within these bounds.
#: At a constant learning rate the held-out metric is noisy and gains little; the cool-down gives the gain.
#: Measured with all-MiniLM-L6-v2 (2 CPU threads), patience 2-3 and a 15% cool-down -> 1-2 and 20%: CLINC150
#: test accuracy 0.956 after 2,300 steps -> 0.953 after 1,250; CoNLL-2003 test F1 0.843 after 2,300 steps
#: -> 0.844 after 1,500 (see docs/benchmarks.md).
PATIENCE_BOUNDS = (1, 2)
#: the cool-down lasts this fraction of the steps done when it starts (a fifth: the length at which a
#: cool-down after a constant rate matches a cosine schedule, Hägele et al. 2024)
COOLDOWN_FRACTION = 0.2
#: with a time budget, the cool-down starts when this fraction of it is spent
TIME_COOLDOWN_AT = 0.85
#: the head's learning rate is this many times the LoRA learning rate (see docs/configuration.md).
#: Measured with all-MiniLM-L6-v2, LoRA lr 1e-3, one thread: CLINC150 with 30 examples per intent, 2 epochs,
#: validation accuracy 0.653 / 0.875 / 0.935 / 0.934 at 1x / 5x / 20x / 50x; SST-2 with 2,000 examples,
#: 1 epoch, dev accuracy 0.811 / 0.815 / 0.819 at 1x / 20x / 50x. 20x sits in the middle of the flat top.
HEAD_LR_FACTOR = 20.0
#: the batch sizes the tool chooses from, largest first (a larger batch is faster per example)
BATCH_SIZES = (32, 16, 8)
#: the default batch is the largest of ``BATCH_SIZES`` whose epoch still has this many optimizer steps.
#: Measured with all-MiniLM-L6-v2 (and SmolLM2-135M), defaults otherwise: SST-2 with 800 examples,
#: dev accuracy 0.801 at batch 32 (25 steps an epoch) / 0.817 at batch 8 (100); CLINC150 with 1,500
#: examples, test accuracy 0.888 / 0.894 (47 / 188 steps); Tiny Shakespeare (about 540 chunks of 128
#: tokens), held-out perplexity 44.4 in 32 min at batch 32 (17 steps) / 42.8 in 15 min at batch 8 (68).
MIN_STEPS_PER_EPOCH = 64


@dataclass
class BudgetPlan:
    """What a run will do, decided from its config and the sizes of its splits.

    Attributes:
        auto: the automatic budget is on (``--epochs auto`` with evaluation data and no ``--max-steps``).
        steps_per_epoch: optimizer steps in one pass over the training data (all processes).
        max_steps: the most steps the run may take (the Trainer's plan).
        eval_steps: evaluate (and checkpoint) every this many steps; None leaves it to the config.
        eval_sample: examples of the eval split scored during training (None: all of them).
        patience: evaluations without improvement before the cool-down.
        warmup_steps: learning-rate warm-up.
        time_budget: seconds of training allowed (None: no limit).
        head_learning_rate: learning rate of the parameters trained in full.
        batch_size: examples per device per step (the config's, else chosen by :func:`default_batch_size`).
        epochs: the epochs the Trainer is told (``max_epochs`` when automatic).
        why: one sentence per decision, for the run record.
    """

    auto: bool
    steps_per_epoch: int
    max_steps: int
    eval_steps: int | None
    eval_sample: int | None
    patience: int
    warmup_steps: int
    time_budget: float | None
    head_learning_rate: float
    batch_size: int
    epochs: float
    why: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_learning_rate(config: TrainConfig) -> float:
    """The learning rate of the layers trained in full: the config's, else ``HEAD_LR_FACTOR`` x LoRA's."""
    if config.head_learning_rate is not None:
        return float(config.head_learning_rate)
    return float(config.learning_rate) * HEAD_LR_FACTOR


def default_batch_size(n_train: int, *, grad_accum: int = 1, world_size: int = 1) -> int:
    """The batch size for ``n_train`` examples when none is given: the largest of ``BATCH_SIZES`` that
    leaves at least ``MIN_STEPS_PER_EPOCH`` optimizer steps an epoch, else the smallest.

    Small data sets are step-starved at a large batch: the adapter sees too few updates per epoch for
    the automatic budget to tell a plateau from noise, and each epoch costs a full evaluation.
    """
    per_step_factor = max(1, int(grad_accum)) * max(1, int(world_size))
    for size in BATCH_SIZES:
        if n_train / (size * per_step_factor) >= MIN_STEPS_PER_EPOCH:
            return size
    return BATCH_SIZES[-1]


def plan_budget(config: TrainConfig, *, n_train: int, n_eval: int, world_size: int = 1) -> BudgetPlan:
    """Decide the run's length, evaluation interval, eval sample, patience and warm-up.

    Args:
        config: the run's config (validated).
        n_train: training examples after preprocessing.
        n_eval: evaluation examples (0 when there is no evaluation).
        world_size: processes (DDP).

    Returns:
        A :class:`BudgetPlan`.
    """
    why: list[str] = []
    if config.batch_size:
        batch = int(config.batch_size)
    else:
        batch = default_batch_size(n_train, grad_accum=config.grad_accum, world_size=world_size)
        why.append(
            f"batch size {batch} for {n_train:,} training examples (the largest of"
            f" {'/'.join(map(str, BATCH_SIZES))} with at least {MIN_STEPS_PER_EPOCH} steps an epoch)"
        )
    per_step = max(1, batch * config.grad_accum * world_size)
    spe = max(1, math.ceil(n_train / per_step))
    head_lr = head_learning_rate(config)
    time_budget = parse_duration(config.time_budget) if config.time_budget else None
    auto = config.epochs == "auto" and not config.max_steps
    if auto and n_eval == 0:
        # Nothing to judge progress by: one epoch, as a fixed budget.
        why.append("no evaluation data to decide with, so one epoch")
        return BudgetPlan(
            auto=False,
            steps_per_epoch=spe,
            max_steps=spe,
            eval_steps=None,
            eval_sample=None,
            patience=0,
            warmup_steps=_warmup_steps(config.warmup, spe),
            time_budget=None,
            head_learning_rate=head_lr,
            batch_size=batch,
            epochs=1.0,
            why=why,
        )
    if not auto:
        epochs = 1.0 if config.epochs == "auto" else float(config.epochs)
        total = int(config.max_steps) if config.max_steps else max(1, math.ceil(epochs * spe))
        return BudgetPlan(
            auto=False,
            steps_per_epoch=spe,
            max_steps=total,
            eval_steps=config.eval_steps,
            eval_sample=None,
            patience=0,
            warmup_steps=_warmup_steps(config.warmup, total),
            time_budget=None,
            head_learning_rate=head_lr,
            batch_size=batch,
            epochs=epochs,
            why=why,
        )

    sample = min(n_eval, EVAL_SAMPLE_CAP)
    by_cost = math.ceil(EVAL_COST_FACTOR * sample / per_step)
    by_count = math.ceil(spe / MAX_EVALS_PER_EPOCH)
    eval_steps = config.eval_steps or max(1, min(spe, max(by_cost, by_count)))
    evals_per_epoch = spe / eval_steps
    patience = config.early_stopping_patience or int(
        min(max(round(evals_per_epoch / 2), PATIENCE_BOUNDS[0]), PATIENCE_BOUNDS[1])
    )
    max_epochs = float(config.max_epochs)
    max_steps = max(1, math.ceil(max_epochs * spe))
    why.append(
        f"evaluate every {eval_steps} steps ({evals_per_epoch:.1f} per epoch) on "
        + (f"{sample} of the {n_eval} eval examples" if sample < n_eval else f"all {n_eval} eval examples")
    )
    why.append(
        f"cool down after {patience} evaluations without improvement, or near {max_epochs:g} epochs"
        + (f" or {config.time_budget}" if config.time_budget else "")
    )
    return BudgetPlan(
        auto=True,
        steps_per_epoch=spe,
        max_steps=max_steps,
        eval_steps=eval_steps,
        eval_sample=sample if sample < n_eval else None,
        patience=patience,
        warmup_steps=_warmup_steps(config.warmup, spe),
        time_budget=time_budget,
        head_learning_rate=head_lr,
        batch_size=batch,
        epochs=max_epochs,
        why=why,
    )


def _warmup_steps(warmup: float, steps: int) -> int:
    """``warmup`` below 1 is a fraction of ``steps``; otherwise a number of steps."""
    if warmup < 1:
        return int(math.ceil(warmup * steps)) if warmup > 0 else 0
    return int(warmup)


def improvement_threshold(value: float, *, greater_is_better: bool, sample: int, stderr: float | None = None) -> float:
    """How much better than ``value`` a new score must be to count as progress, not noise.

    Half of the score's sampling standard error counts as real. Where the task measured that error on the
    scored examples (a ``<metric>_stderr`` metric, such as causal-lm's perplexity), it is used. A
    proportion in [0, 1] (accuracy, F1) scored on ``sample`` examples varies by about
    ``sqrt(p (1 - p) / n)``. Other metrics without a measured error (a plain loss) must improve by 0.2 %
    of their value.
    """
    if stderr is not None and math.isfinite(stderr) and stderr > 0:
        return max(abs(value) * 1e-4, 0.5 * float(stderr))
    if greater_is_better and 0.0 <= value <= 1.0 and sample > 0:
        return max(1e-4, 0.5 * math.sqrt(max(value * (1.0 - value), 1e-4) / sample))
    return abs(value) * 0.002


class Schedule:
    """Learning-rate factor by step for the automatic budget: linear warm-up, hold, linear cool-down.

    ``LambdaLR`` calls it with the step; :meth:`cool_down` starts the cool-down. Its state is plain
    attributes, so it is saved with the scheduler in checkpoints.
    """

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = int(warmup_steps)
        self.cooldown_start: int | None = None
        self.cooldown_steps: int = 0

    def __call__(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            factor = (step + 1) / (self.warmup_steps + 1)
        else:
            factor = 1.0
        if self.cooldown_start is not None and step >= self.cooldown_start:
            done = step - self.cooldown_start
            factor *= max(0.0, 1.0 - done / max(1, self.cooldown_steps))
        return factor

    @property
    def cooling(self) -> bool:
        return self.cooldown_start is not None

    @property
    def cooldown_end(self) -> int | None:
        return None if self.cooldown_start is None else self.cooldown_start + self.cooldown_steps

    def cool_down(self, step: int, steps: int) -> None:
        if self.cooldown_start is None:
            self.cooldown_start = int(step)
            self.cooldown_steps = max(1, int(steps))


def cooldown_steps(step: int, eval_steps: int) -> int:
    """Length of a cool-down that starts at ``step``: ``COOLDOWN_FRACTION`` of it, at least one interval."""
    return max(int(eval_steps), int(math.ceil(COOLDOWN_FRACTION * step)))


def rationale_markdown() -> list[str]:
    """docs/configuration.md's section on how the training defaults are chosen (from the constants above,
    so the page cannot drift from the code)."""
    lo, hi = PATIENCE_BOUNDS
    return [
        "## How the training defaults are chosen",
        "",
        "The defaults aim at a good adapter on data they were not fitted to, from 2 to 150+ classes and for"
        " one label or several per example, without a user having to tune them. Each rule follows from the"
        " data (its size, the eval split's size, the number of labels), not from one data set. What they give"
        " on the five real data sets of the dev suite is measured in"
        " [benchmarks.md](benchmarks.md#10-generalization-defaults-on-every-shared-data-set) (`make bench`).",
        "",
        "- **`epochs = auto`: train while the held-out metric improves.** The learning rate warms up, then"
        " holds; the task's main metric (accuracy; micro-F1 for multi-label data; entity F1; perplexity) is"
        " scored on a sample of the eval split at intervals, each score kept as a checkpoint. When it has not"
        " improved by more than its noise for *patience* evaluations, the learning rate cools down linearly"
        f" to 0 over {COOLDOWN_FRACTION:.0%} of the steps done so far (at least one evaluation interval), the"
        " run is scored once more and stops. The best checkpoint, not the last, becomes the adapter, and the"
        " final evaluation scores the whole eval split. A cool-down after a constant learning rate matches a"
        " schedule planned for that length (Hägele et al. 2024), which is what lets a run stop when the data"
        " says so. `hubmgr train` prints why it stopped; so do the TUI and `hubmgr runs show`.",
        f"- **Evaluation sample**: at most {EVAL_SAMPLE_CAP:,} eval examples during training (a seeded random"
        " sample; the final evaluation uses them all).",
        f"- **Evaluation interval**: at least {EVAL_COST_FACTOR}x the sample in training examples, so that"
        " scoring costs about a tenth of the training between two scores (scoring an example costs about a"
        f" third of training on it); at most {MAX_EVALS_PER_EPOCH} evaluations and at least one per epoch.",
        f"- **Patience**: about half an epoch of evaluations, between {lo} and {hi}"
        " (`--early-stopping-patience` sets it). At a constant learning rate the held-out metric is noisy and"
        " gains little; the cool-down is what gives the gain, so waiting longer mostly costs time. Measured with"
        " all-MiniLM-L6-v2 on 2 CPU threads, going from a patience of 2-3 evaluations and a 15% cool-down to 1-2"
        " and 20%: CLINC150 test accuracy 0.956 after 2,300 steps became 0.953 after 1,250; CoNLL-2003 test"
        " entity F1 0.843 after 2,300 steps became 0.844 after 1,500.",
        "- **What counts as progress**: a proportion (accuracy, F1) scored on *n* examples varies by about"
        " sqrt(p(1-p)/n) between samples; a gain counts when it is more than half of that. A task that"
        " measures its score's standard error on the scored examples (a `<metric>_stderr` metric:"
        " causal-lm's perplexity, from the spread of the per-example losses) gets the same rule, half of"
        " that error. A loss without one must improve by 0.2%. Measured with SmolLM2-135M on Tiny"
        " Shakespeare (57 eval blocks): with 0.2% the run crept on for 5.6 epochs (2,289 s) and scored"
        " held-out perplexity 44.2; with half the standard error it stopped after 3.1 epochs (847 s) at 42.4.",
        f"- **Bounds**: `--max-epochs` (default 10; the cool-down starts so that it ends there) and"
        f" `--time-budget` (the cool-down starts when {TIME_COOLDOWN_AT:.0%} of it is spent). Either one"
        " running out while the metric still improves is said after training, with what to try.",
        "- **An explicit `--epochs N` or `--max-steps N` means exactly that**, with `--lr-scheduler`"
        " (linear by default) over those steps and an evaluation each epoch.",
        "- **Without evaluation data** (`--eval-fraction 0`) there is nothing to decide by: one epoch.",
        f"- **`head_learning_rate`**: the layers trained in full (a new, randomly initialised classification"
        f" head) learn at {HEAD_LR_FACTOR:g}x the LoRA learning rate. A new head starts from nothing, while"
        " LoRA nudges weights that already work; with one shared rate, many-class tasks (each class's row"
        " of the head sees few examples) learned their head far too slowly. Measured with all-MiniLM-L6-v2:"
        " CLINC150 (30 examples per intent, 2 epochs) validation accuracy 0.653 / 0.875 / 0.935 / 0.934 at"
        " 1x / 5x / 20x / 50x; SST-2 (2,000 examples, 1 epoch) 0.811 / 0.815 / 0.819 at 1x / 20x / 50x:"
        " binary tasks lose nothing.",
        f"- **`batch_size`: the largest of {' / '.join(map(str, BATCH_SIZES))} that leaves at least"
        f" {MIN_STEPS_PER_EPOCH} optimizer steps an epoch** (per device; gradient accumulation and processes"
        " count). A larger batch is faster per example on a CPU and a GPU, but a small data set at batch 32"
        " gets too few updates an epoch: its evaluations come every few steps' worth of learning, and the"
        " budget cannot tell a plateau from noise. Measured with all-MiniLM-L6-v2: SST-2 with 800"
        " examples, dev accuracy 0.801 at batch 32 (25 steps an epoch) and 0.817 at batch 8 (100 steps);"
        " CLINC150 with 1,500 examples (10 per intent), test accuracy 0.888 and 0.894 (47 and 188 steps);"
        " SmolLM2-135M on Tiny Shakespeare (about 540 chunks of 128 tokens), held-out perplexity 44.4"
        " after 32 minutes at batch 32 (17 steps an epoch) and 42.8 after 15 minutes at batch 8 (68 steps)."
        " From 2,048 examples on, batch 32 keeps 64 steps an epoch, so large sets are unchanged."
        " `--batch-size N` is used exactly.",
        "- **`learning_rate` 1e-3, `lora_r` 8 on all linear layers of encoders, base dropout off**: measured"
        " on SST-2 with all-MiniLM-L6-v2 (see `hubmgr/train/lora.py`) and kept for the other sets of the"
        " suite, where the head's rate (above) and the batch size made the difference.",
        "- **After training, a weak result is said**: if the adapter does no better than a predictor that"
        " ignores its input (the most common label; for multi-label data each label's frequency) on the"
        " eval split, or if the metric was still rising when the budget ran out.",
        "",
    ]
