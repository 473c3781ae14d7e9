"""The training configuration: one dataclass that drives CLI flags, the TOML file and the TUI form.

:class:`TrainConfig` holds every knob of a LoRA fine-tuning run. Its fields are declared with
:func:`hubmgr.fields.setting` (help, group, choices, flag), which is what the ``hubmgr train`` flags,
the TOML file, the TUI's Train form and ``docs/configuration.md`` are made from; :mod:`hubmgr.fields`
holds that machinery and the settings ``train`` shares with ``eval``, ``predict`` and ``merge``
(device, dtype, trust_remote_code, task options).

Precedence is defaults < TOML file < flags: :func:`hubmgr.fields.merge` lays non-``None`` overrides over
a base. Nothing here imports torch, transformers or click at module import.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubmgr.errors import UsageError
from hubmgr.fields import (
    ConfigBase,
    device_setting,
    dtype_setting,
    field_specs,
    task_options_setting,
    trust_remote_code_setting,
)
from hubmgr.fields import setting as _f

EVAL_STRATEGIES = ("auto", "no", "steps", "epoch")
REPORT_TO = ("none", "tensorboard", "mlflow", "wandb")
LR_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
# The Python package each ``report_to`` integration needs.
_REPORT_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


@dataclass
class TrainConfig(ConfigBase):
    """Everything a LoRA fine-tuning run needs. Defaults are tuned for speed on a CPU (dynamic padding,
    length-grouped batches) and for a good result after one epoch on small classification data."""

    # -- what -----------------------------------------------------------------------------------------
    task: str = _f("", "Task plugin name, e.g. text-classification (see `hubmgr tasks`).", group="model", required=True)
    model: str = _f(
        "",
        "Base model: a Hub repo id (cached, or downloaded when the Hub is reachable) or a local folder.",
        group="model",
        required=True,
    )
    revision: str | None = _f(None, "Branch, tag or commit of the Hub repo (default: main).", group="model")
    trust_remote_code: bool = trust_remote_code_setting()
    allow_pickle: bool = _f(
        False, "Allow loading pickle weights (.bin/.pt) when the repo has no safetensors.", group="model"
    )
    # -- data -----------------------------------------------------------------------------------------
    data: str = _f(
        "",
        "Training data: CSV/JSON/JSONL/Parquet file, a folder, or a Hub dataset id.",
        group="data",
        required=True,
        kind="path",
        label="Training data",
    )
    eval_data: str | None = _f(
        None, "Evaluation data (default: hold out --eval-fraction of the training data).", group="data", kind="path"
    )
    train_split: str = _f("train", "Split name inside a Hub dataset or multi-split folder for training.", group="data")
    eval_split: str = _f(
        "validation", "Split name inside a Hub dataset or multi-split folder for evaluation.", group="data"
    )
    eval_fraction: float = _f(
        0.1,
        "Fraction of the training data held out for evaluation when no eval data is given (0 disables).",
        group="data",
    )
    max_train_samples: int | None = _f(None, "Use at most this many training examples.", group="data")
    max_eval_samples: int | None = _f(None, "Use at most this many evaluation examples.", group="data")
    max_length: int = _f(
        128, "Truncate inputs to this many tokens (batches are padded only to their longest example).", group="data"
    )
    options: dict[str, Any] = task_options_setting()
    # -- LoRA -----------------------------------------------------------------------------------------
    lora_r: int = _f(8, "LoRA rank.", group="lora")
    lora_alpha: float = _f(
        16, "LoRA scaling numerator (scale = alpha / r, or alpha / sqrt(r) with rsLoRA).", group="lora"
    )
    lora_dropout: float = _f(0.0, "Dropout on the LoRA adapters' input (0 is fastest).", group="lora")
    target_modules: list[str] | None = _f(
        None,
        "Module names to adapt, comma-separated (default: the attention projections for the architecture).",
        group="lora",
    )
    keep_model_dropout: bool = _f(
        False,
        "Keep the base model's own dropout while training; by default it is turned off"
        " (faster, and LoRA reached the same accuracy without it).",
        group="lora",
    )
    use_rslora: bool = _f(False, "Rank-stabilised LoRA scaling (alpha / sqrt(r)).", group="lora")
    use_dora: bool = _f(False, "Weight-decomposed LoRA (DoRA): often better, slower.", group="lora")
    qlora: bool = _f(False, "Load the base model in 4-bit (QLoRA); needs a CUDA GPU and bitsandbytes.", group="lora")
    # -- optimisation ---------------------------------------------------------------------------------
    epochs: float | str = _f(
        "auto",
        "Passes over the training data; auto trains while the held-out metric improves,"
        " then cools the learning rate down and keeps the best checkpoint (bounded by"
        " --max-epochs and --time-budget). A number means exactly that many.",
        kind="auto",
    )
    max_epochs: float = _f(10.0, "With --epochs auto: train at most this many epochs.")
    time_budget: str | None = _f(
        None,
        "With --epochs auto: stop within this much training time (90s, 10m, 1h30m), cooling down before it runs out.",
    )
    max_steps: int | None = _f(None, "Stop after exactly this many optimizer steps (overrides --epochs).")
    learning_rate: float = _f(
        1e-3, "Peak learning rate of the LoRA adapters (they want a larger one than full fine-tuning)."
    )
    head_learning_rate: float | None = _f(
        None,
        "Peak learning rate of the layers trained in full (a new classification head); default 20x --learning-rate.",
    )
    warmup: float = _f(
        0.06,
        "Learning-rate warm-up: a fraction of the planned steps (of the first epoch with"
        " --epochs auto) if below 1, else a number of steps.",
    )
    lr_scheduler: str = _f("linear", "Learning-rate schedule after warm-up.", choices=LR_SCHEDULERS)
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    batch_size: int | None = _f(
        None,
        "Examples per device per step (default: chosen from the data size, the largest"
        " of 32/16/8 that leaves at least 64 steps an epoch).",
    )
    eval_batch_size: int | None = _f(None, "Examples per device per evaluation step (default: 2 x batch size).")
    grad_accum: int = _f(1, "Gradient accumulation steps (effective batch = batch size x this x processes).")
    seed: int = _f(42, "Random seed for initialisation, the held-out split and shuffling.")
    # -- hardware -------------------------------------------------------------------------------------
    device: str = device_setting("Where to train: auto picks cuda, then mps, then cpu.")
    dtype: str = dtype_setting(
        "Compute precision: auto is bfloat16 (or float16) mixed precision on a GPU, bfloat16"
        " mixed precision on a CPU with native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere."
    )
    num_workers: int = _f(
        0, "Data loader worker processes (0 loads in the training process, best on a CPU).", group="hardware"
    )
    # -- evaluation, checkpoints, output -------------------------------------------------------------
    eval_strategy: str = _f(
        "auto",
        "When to evaluate: auto is each epoch when there is evaluation data (steps if --eval-steps is set).",
        group="output",
        choices=EVAL_STRATEGIES,
    )
    eval_steps: int | None = _f(None, "Evaluate every N steps (implies --eval-strategy steps).", group="output")
    save_steps: int | None = _f(
        None,
        "Save a checkpoint every N steps (default: at each evaluation, or each epoch); 0 saves none.",
        group="output",
    )
    save_total_limit: int = _f(2, "Keep at most this many checkpoints while training.", group="output")
    logging_steps: int = _f(10, "Log the training loss every N steps.", group="output")
    early_stopping_patience: int | None = _f(
        None, "Stop when the task's main metric has not improved for N evaluations.", group="output"
    )
    output_dir: str | None = _f(
        None,
        "Folder for the adapter (default: <hubmgr data dir>/runs/<run id>).",
        group="output",
        flag="--output",
        kind="path",
        label="Output folder",
    )
    resume: bool = _f(False, "Continue the unfinished run in --output from its last checkpoint.", group="output")
    report_to: str = _f("none", "Also log to this tracker (it must be installed).", group="output", choices=REPORT_TO)

    def with_absolute_paths(self) -> "TrainConfig":
        """A copy whose local paths (data, eval data, output, and the model when it is a local folder) are
        absolute, so that the run can be resumed from any working directory. A name that is not a path
        here (a Hub repo or dataset id) is left as it is."""
        changes: dict[str, Any] = {}
        for spec in field_specs(type(self)):
            if spec.kind != "path" and spec.name != "model":
                continue
            value = getattr(self, spec.name)
            if not value or not isinstance(value, str):
                continue
            path = Path(value).expanduser()
            if spec.name == "output_dir" or path.exists():
                changes[spec.name] = str(path.resolve())
        return dataclasses.replace(self, **changes) if changes else self

    # -- checks ---------------------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Check values that do not need the model or the data.

        Returns:
            ``self``, for chaining.

        Raises:
            UsageError: with one sentence naming the field and the accepted values.
        """
        labels = {s.name: s.label for s in field_specs(type(self))}
        for name in ("task", "model", "data"):
            if not str(getattr(self, name) or "").strip():
                flag = {"task": "TASK", "model": "--model", "data": "--data"}[name]
                raise UsageError(
                    f"Missing {flag}: give it on the command line or as `{name} = ...` in the config file.",
                    field=name,
                    form_message=f"{labels[name]} is required.",
                )
        self.check_fields()

        def positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
            if value is None:
                return
            if value < 0 or (value == 0 and not allow_zero):
                need = "0 or more" if allow_zero else "greater than 0"
                raise UsageError(f"{name} must be {need}, got {value}.", field=name)

        positive("lora_r", self.lora_r)
        positive("lora_alpha", self.lora_alpha)
        if self.epochs != "auto":
            if isinstance(self.epochs, str):
                raise UsageError(f"epochs must be auto or a number, not {self.epochs!r}.", field="epochs")
            positive("epochs", self.epochs)
        positive("max_epochs", self.max_epochs)
        positive("head_learning_rate", self.head_learning_rate)
        if self.time_budget is not None:
            parse_duration(self.time_budget)
        positive("max_steps", self.max_steps)
        positive("learning_rate", self.learning_rate)
        positive("batch_size", self.batch_size)
        positive("eval_batch_size", self.eval_batch_size)
        positive("grad_accum", self.grad_accum)
        positive("max_length", self.max_length)
        positive("logging_steps", self.logging_steps)
        positive("eval_steps", self.eval_steps)
        positive("save_total_limit", self.save_total_limit)
        positive("early_stopping_patience", self.early_stopping_patience)
        positive("max_train_samples", self.max_train_samples)
        positive("max_eval_samples", self.max_eval_samples)
        positive("warmup", self.warmup, allow_zero=True)
        positive("weight_decay", self.weight_decay, allow_zero=True)
        positive("num_workers", self.num_workers, allow_zero=True)
        positive("save_steps", self.save_steps, allow_zero=True)
        if not 0.0 <= self.lora_dropout < 1.0:
            raise UsageError(
                f"lora_dropout must be at least 0 and below 1, got {self.lora_dropout}.", field="lora_dropout"
            )
        if not 0.0 <= self.eval_fraction < 1.0:
            raise UsageError(
                f"eval_fraction must be at least 0 and below 1, got {self.eval_fraction}.", field="eval_fraction"
            )
        if self.target_modules is not None and not [t for t in self.target_modules if t.strip()]:
            raise UsageError(
                "target_modules is empty; leave it out to use the architecture's default.", field="target_modules"
            )
        if self.use_dora and self.qlora:
            pass  # peft supports DoRA on 4-bit layers
        no_eval = self.eval_data is None and self.eval_fraction == 0
        if self.early_stopping_patience is not None and (self.eval_strategy == "no" or no_eval):
            raise UsageError(
                "early_stopping_patience needs evaluation: give --eval-data or an --eval-fraction above 0.",
                field="early_stopping_patience",
            )
        if (self.time_budget is not None and self.epochs != "auto") or (self.time_budget and self.max_steps):
            raise UsageError(
                "--time-budget goes with --epochs auto; an explicit --epochs or --max-steps means exactly that.",
                field="time_budget",
            )
        if self.eval_strategy == "steps" and not self.eval_steps:
            raise UsageError(
                "eval_strategy 'steps' needs --eval-steps N.",
                field="eval_steps",
                form_message="Eval strategy 'steps' needs Eval steps.",
            )
        if self.report_to != "none":
            package = _REPORT_PACKAGES[self.report_to]
            if importlib.util.find_spec(package) is None:
                raise UsageError(
                    f"report_to {self.report_to!r} needs the {package} package, which is not installed"
                    f" (pip install {package}), or use --report-to none.",
                    field="report_to",
                )
        if self.resume and not self.output_dir:
            raise UsageError(
                "--resume needs --output DIR: the folder of the run to continue.",
                field="output_dir",
                form_message="Resume needs the Output folder of the run to continue.",
            )
        return self


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``90``, ``90s``, ``10m``, ``1h30m`` or ``1.5h``.

    Raises:
        UsageError: text that is not a positive duration.
    """
    import re

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower().replace(" ", "")
        units = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
        parts = re.fullmatch(r"((?:\d+(?:\.\d+)?[hms])+|\d+(?:\.\d+)?)", raw)
        if not parts:
            raise UsageError(
                f"time_budget must be a duration such as 90s, 10m or 1h30m, not {text!r}.", field="time_budget"
            )
        seconds = sum(float(num) * units[unit] for num, unit in re.findall(r"(\d+(?:\.\d+)?)([hms]?)", raw))
    if seconds <= 0:
        raise UsageError(f"time_budget must be more than 0 seconds, not {text!r}.", field="time_budget")
    return seconds
