"""The settings of ``hubmgr eval``, ``predict`` and ``merge``: one dataclass each, declared like TrainConfig.

Each field is a :func:`hubmgr.fields.setting`, so the commands' flags, a TOML file
(``EvalConfig.from_toml``), a form (``field_specs``) and ``docs/configuration.md`` come from this one
definition. Device, dtype, trust_remote_code and the task options are the settings ``train`` has, with
the same choices, defaults and flags. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubmgr.errors import UsageError
from hubmgr.fields import (
    ConfigBase,
    device_setting,
    dtype_setting,
    setting,
    task_options_setting,
    trust_remote_code_setting,
)

_BASE_MODEL_HELP = "Base model: a cached repo id or a local folder (default: the one the adapter was trained on)."
_REMOTE_CODE_HELP = "Allow model code from the repo to run."
_LOAD_DTYPE_HELP = "Load the model in this dtype (auto: the model's own)."


@dataclass
class EvalConfig(ConfigBase):
    """What `hubmgr eval` compares: a base model and adapters on one data set."""

    task: str | None = setting(
        None, "Task plugin name (default: the one the adapters were trained for).", group="model"
    )
    model: str | None = setting(None, _BASE_MODEL_HELP, group="model", short="-m")
    adapters: list[str] = setting(
        None,
        "Adapter folder, or a run / adapter id from `hubmgr adapters`. Repeat to compare several.",
        group="model",
        flag="--adapter",
        short="-a",
        factory=list,
        multiple=True,
    )
    data: str = setting(
        "",
        "Evaluation data: a CSV/JSON/JSONL/Parquet file, a folder, or a Hub dataset id.",
        group="data",
        short="-d",
        required=True,
        kind="path",
    )
    split: str = setting("eval", "Split of a Hub dataset to evaluate ('eval' = validation).", group="data")
    options: dict[str, Any] = task_options_setting()
    max_samples: int | None = setting(None, "Evaluate only the first N examples.", group="data", minimum=1)
    max_length: int | None = setting(
        None, "Truncation length (default: the training max length, else 128).", group="data", minimum=1
    )
    batch_size: int = setting(32, "Examples per forward pass.", group="hardware", minimum=1)
    device: str = device_setting("Where to evaluate: auto picks cuda, then mps, then cpu.")
    dtype: str = dtype_setting(_LOAD_DTYPE_HELP)
    trust_remote_code: bool = trust_remote_code_setting(_REMOTE_CODE_HELP)
    per_class: bool = setting(
        False, "Also show precision, recall, F1 and support per label (classification tasks).", group="output"
    )

    def validate(self) -> "EvalConfig":
        """Check the values; raises UsageError with one sentence."""
        self.check_fields()
        if not self.model and not self.adapters:
            raise UsageError("Give --model, or at least one --adapter to take the base model from.")
        return self


@dataclass
class PredictConfig(ConfigBase):
    """What `hubmgr predict` runs: an adapter (and optionally its base model) on a few inputs."""

    adapter: str = setting(
        "", "Adapter folder, or a run / adapter id from `hubmgr adapters`.", group="model", required=True
    )
    model: str | None = setting(None, _BASE_MODEL_HELP, group="model", short="-m")
    compare: bool = setting(
        False, "Also show what the base model predicts without the adapter.", group="data", short="-c"
    )
    pair_separator: str | None = setting(
        None, "Split each input into a text pair at TEXT, for tasks on text pairs (e.g. ' ||| ').", group="data"
    )
    options: dict[str, Any] = task_options_setting(
        "A task option (see `hubmgr tasks`), e.g. max_new_tokens=64. Repeatable."
    )
    batch_size: int = setting(16, "Inputs per forward pass.", group="hardware", minimum=1)
    device: str = device_setting("Where to predict: auto picks cuda, then mps, then cpu.")
    dtype: str = dtype_setting(_LOAD_DTYPE_HELP)
    trust_remote_code: bool = trust_remote_code_setting(_REMOTE_CODE_HELP)

    def validate(self) -> "PredictConfig":
        """Check the values; raises UsageError with one sentence."""
        self.check_fields()
        return self


@dataclass
class MergeConfig(ConfigBase):
    """What `hubmgr merge` writes: an adapter merged into its base model, saved as a full model."""

    adapter: str = setting(
        "", "Adapter folder, or an adapter / run id from `hubmgr adapters`.", group="model", required=True
    )
    output: str = setting(
        "",
        "Folder to write the merged model to (must not exist or be empty).",
        group="output",
        short="-o",
        required=True,
        kind="path",
    )
    model: str | None = setting(
        None, "Base model (default: the one the adapter was trained on).", group="model", short="-m"
    )
    dtype: str = dtype_setting("Save the merged weights in this dtype (auto: the base model's).")
    trust_remote_code: bool = trust_remote_code_setting(
        "Allow model code from the repo to run, and copy it into the merged folder."
    )

    def validate(self) -> "MergeConfig":
        """Check the values; raises UsageError with one sentence."""
        self.check_fields()
        return self
