"""The training configuration: one dataclass that drives CLI flags, the TOML file and the TUI form.

:class:`TrainConfig` holds every knob of a LoRA fine-tuning run. Each field carries ``metadata`` with
``help`` (one sentence), and where it applies ``choices``, ``group`` (how a form groups the fields) and
``flag`` (a CLI flag name other than ``--field-name``). Three consumers read the same definition:

* :func:`click_options_from_dataclass` turns the fields into click options (``hubmgr train``);
* :func:`field_specs` turns them into plain :class:`FieldSpec` records a form can render (the TUI);
* :meth:`TrainConfig.from_toml` / :meth:`TrainConfig.to_toml` read and write the config file.

Precedence is defaults < TOML file < flags: :func:`merge` lays non-``None`` overrides over a base.
Nothing here imports torch, transformers or click at module import.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from hubmgr.errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
EVAL_STRATEGIES = ("auto", "no", "steps", "epoch")
REPORT_TO = ("none", "tensorboard", "mlflow", "wandb")
LR_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
# The Python package each ``report_to`` integration needs.
_REPORT_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def _f(default: Any = None, help: str = "", *, group: str = "training", choices: Iterable[str] | None = None,
       flag: str | None = None, required: bool = False, factory: Callable[[], Any] | None = None,
       kind: str | None = None) -> Any:
    meta: dict[str, Any] = {"help": help, "group": group}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if flag:
        meta["flag"] = flag
    if required:
        meta["required"] = True
    if kind:
        meta["kind"] = kind
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything a LoRA fine-tuning run needs. Defaults are tuned for speed on a CPU (dynamic padding,
    length-grouped batches) and for a good result after one epoch on small classification data."""

    # -- what -----------------------------------------------------------------------------------------
    task: str = _f("", "Task plugin name, e.g. text-classification (see `hubmgr tasks`).", group="model",
                   required=True)
    model: str = _f("", "Base model: a Hub repo id (cached, or downloaded when the Hub is reachable) or a local folder.",
                    group="model", required=True)
    revision: str | None = _f(None, "Branch, tag or commit of the Hub repo (default: main).", group="model")
    trust_remote_code: bool = _f(False, "Run Python code shipped in the model repo (only for repos you trust).",
                                 group="model")
    allow_pickle: bool = _f(False, "Allow loading pickle weights (.bin/.pt) when the repo has no safetensors.",
                            group="model")
    # -- data -----------------------------------------------------------------------------------------
    data: str = _f("", "Training data: CSV/JSON/JSONL/Parquet file, a folder, or a Hub dataset id.", group="data",
                   required=True, kind="path")
    eval_data: str | None = _f(None, "Evaluation data (default: hold out --eval-fraction of the training data).",
                               group="data", kind="path")
    train_split: str = _f("train", "Split name inside a Hub dataset or multi-split folder for training.", group="data")
    eval_split: str = _f("validation", "Split name inside a Hub dataset or multi-split folder for evaluation.",
                         group="data")
    eval_fraction: float = _f(0.1, "Fraction of the training data held out for evaluation when no eval data is given (0 disables).",
                              group="data")
    max_train_samples: int | None = _f(None, "Use at most this many training examples.", group="data")
    max_eval_samples: int | None = _f(None, "Use at most this many evaluation examples.", group="data")
    max_length: int = _f(128, "Truncate inputs to this many tokens (batches are padded only to their longest example).",
                         group="data")
    options: dict[str, Any] = _f(None, "Task options (see `hubmgr tasks`), e.g. text_column.", group="data",
                                 factory=dict, kind="dict")
    # -- LoRA -----------------------------------------------------------------------------------------
    lora_r: int = _f(8, "LoRA rank.", group="lora")
    lora_alpha: float = _f(16, "LoRA scaling numerator (scale = alpha / r, or alpha / sqrt(r) with rsLoRA).",
                           group="lora")
    lora_dropout: float = _f(0.0, "Dropout on the LoRA adapters' input (0 is fastest).",
                             group="lora")
    target_modules: list[str] | None = _f(None, "Module names to adapt, comma-separated (default: the attention projections for the architecture).",
                                          group="lora")
    keep_model_dropout: bool = _f(False, "Keep the base model's own dropout while training; by default it is turned off"
                                  " (faster, and LoRA reached the same accuracy without it).", group="lora")
    use_rslora: bool = _f(False, "Rank-stabilised LoRA scaling (alpha / sqrt(r)).", group="lora")
    use_dora: bool = _f(False, "Weight-decomposed LoRA (DoRA): often better, slower.", group="lora")
    qlora: bool = _f(False, "Load the base model in 4-bit (QLoRA); needs a CUDA GPU and bitsandbytes.", group="lora")
    # -- optimisation ---------------------------------------------------------------------------------
    epochs: float | str = _f("auto", "Passes over the training data; auto trains while the held-out metric improves,"
                             " then cools the learning rate down and keeps the best checkpoint (bounded by"
                             " --max-epochs and --time-budget). A number means exactly that many.", kind="auto")
    max_epochs: float = _f(10.0, "With --epochs auto: train at most this many epochs.")
    time_budget: str | None = _f(None, "With --epochs auto: stop within this much training time (90s, 10m, 1h30m),"
                                 " cooling down before it runs out.")
    max_steps: int | None = _f(None, "Stop after exactly this many optimizer steps (overrides --epochs).")
    learning_rate: float = _f(1e-3, "Peak learning rate of the LoRA adapters (they want a larger one than full fine-tuning).")
    head_learning_rate: float | None = _f(None, "Peak learning rate of the layers trained in full (a new classification"
                                          " head); default 20x --learning-rate.")
    warmup: float = _f(0.06, "Learning-rate warm-up: a fraction of the planned steps (of the first epoch with"
                       " --epochs auto) if below 1, else a number of steps.")
    lr_scheduler: str = _f("linear", "Learning-rate schedule after warm-up.", choices=LR_SCHEDULERS)
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    batch_size: int | None = _f(None, "Examples per device per step (default: chosen from the data size, the largest"
                                " of 32/16/8 that leaves at least 64 steps an epoch).")
    eval_batch_size: int | None = _f(None, "Examples per device per evaluation step (default: 2 x batch size).")
    grad_accum: int = _f(1, "Gradient accumulation steps (effective batch = batch size x this x processes).")
    seed: int = _f(42, "Random seed for initialisation, the held-out split and shuffling.")
    # -- hardware -------------------------------------------------------------------------------------
    device: str = _f("auto", "Where to train: auto picks cuda, then mps, then cpu.", group="hardware", choices=DEVICES)
    dtype: str = _f("auto", "Compute precision: auto is bfloat16 (or float16) mixed precision on a GPU, bfloat16 mixed precision on a CPU with native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere.",
                    group="hardware", choices=DTYPES)
    num_workers: int = _f(0, "Data loader worker processes (0 loads in the training process, best on a CPU).",
                          group="hardware")
    # -- evaluation, checkpoints, output -------------------------------------------------------------
    eval_strategy: str = _f("auto", "When to evaluate: auto is each epoch when there is evaluation data (steps if --eval-steps is set).",
                            group="output", choices=EVAL_STRATEGIES)
    eval_steps: int | None = _f(None, "Evaluate every N steps (implies --eval-strategy steps).", group="output")
    save_steps: int | None = _f(None, "Save a checkpoint every N steps (default: at each evaluation, or each epoch); 0 saves none.",
                                group="output")
    save_total_limit: int = _f(2, "Keep at most this many checkpoints while training.", group="output")
    logging_steps: int = _f(10, "Log the training loss every N steps.", group="output")
    early_stopping_patience: int | None = _f(None, "Stop when the task's main metric has not improved for N evaluations.",
                                             group="output")
    output_dir: str | None = _f(None, "Folder for the adapter (default: <hubmgr data dir>/runs/<run id>).",
                                group="output", flag="--output", kind="path")
    resume: bool = _f(False, "Continue the unfinished run in --output from its last checkpoint.", group="output")
    report_to: str = _f("none", "Also log to this tracker (it must be installed).", group="output", choices=REPORT_TO)

    # -- (de)serialisation ----------------------------------------------------------------------------
    def to_dict(self, *, drop_none: bool = False) -> dict[str, Any]:
        """The fields as plain values (lists and dicts copied).

        Args:
            drop_none: leave out fields whose value is ``None`` (TOML has no null).

        Returns:
            A dict keyed by field name.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if drop_none and value is None:
                continue
            if isinstance(value, list):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        """Build a config from a mapping, checking names and types.

        Args:
            values: field name -> value; ``options`` is a mapping of task options.
            source: where the values came from, named in error messages.

        Returns:
            A new TrainConfig (not yet validated; call :meth:`validate`).

        Raises:
            UsageError: unknown keys or values of the wrong type.
        """
        specs = {s.name: s for s in field_specs(cls)}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise UsageError(
                f"Unknown key(s) in {source}: {', '.join(unknown)}. Known keys: {', '.join(sorted(specs))}."
            )
        kwargs = {name: _check_value(specs[name], value, source) for name, value in values.items()}
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> "TrainConfig":
        """Read a TOML config file: top-level keys are TrainConfig fields, ``[options]`` the task options.

        Args:
            path: the TOML file.

        Returns:
            The config (not yet validated).

        Raises:
            UsageError: the file is missing, unreadable, not TOML, or has unknown keys or bad values.
        """
        import tomllib

        p = Path(path).expanduser()
        try:
            text = p.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"Config file {p} does not exist.") from None
        except OSError as exc:
            raise UsageError(f"Cannot read config file {p}: {exc.strerror or exc}.") from None
        try:
            values = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"Config file {p} is not valid TOML: {exc}.") from None
        return cls.from_dict(values, source=f"config file {p}")

    def to_toml(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the config as TOML (atomically) and return the text.

        Args:
            path: where to write; ``None`` only returns the text.

        Returns:
            The TOML text. ``None`` values are left out; task options go under ``[options]``.
        """
        import tomli_w

        values = self.to_dict(drop_none=True)
        options = values.pop("options", {}) or {}
        text = tomli_w.dumps(values)
        if options:
            text += "\n" + tomli_w.dumps({"options": {k: v for k, v in options.items() if v is not None}})
        if path is not None:
            atomic_write_text(Path(path), text)
        return text

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
        for name in ("task", "model", "data"):
            if not str(getattr(self, name) or "").strip():
                flag = {"task": "TASK", "model": "--model", "data": "--data"}[name]
                raise UsageError(f"Missing {flag}: give it on the command line or as `{name} = ...` in the config file.")
        for spec in field_specs(type(self)):
            value = getattr(self, spec.name)
            if spec.choices and value not in spec.choices:
                raise UsageError(f"{spec.name} must be one of {', '.join(spec.choices)}, not {value!r}.")

        def positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
            if value is None:
                return
            if value < 0 or (value == 0 and not allow_zero):
                need = "0 or more" if allow_zero else "greater than 0"
                raise UsageError(f"{name} must be {need}, got {value}.")

        positive("lora_r", self.lora_r)
        positive("lora_alpha", self.lora_alpha)
        if self.epochs != "auto":
            if isinstance(self.epochs, str):
                raise UsageError(f"epochs must be auto or a number, not {self.epochs!r}.")
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
            raise UsageError(f"lora_dropout must be at least 0 and below 1, got {self.lora_dropout}.")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise UsageError(f"eval_fraction must be at least 0 and below 1, got {self.eval_fraction}.")
        if self.target_modules is not None and not [t for t in self.target_modules if t.strip()]:
            raise UsageError("target_modules is empty; leave it out to use the architecture's default.")
        if self.use_dora and self.qlora:
            pass  # peft supports DoRA on 4-bit layers
        no_eval = self.eval_data is None and self.eval_fraction == 0
        if self.early_stopping_patience is not None and (self.eval_strategy == "no" or no_eval):
            raise UsageError("early_stopping_patience needs evaluation: give --eval-data or an --eval-fraction above 0.")
        if (self.time_budget is not None and self.epochs != "auto") or (self.time_budget and self.max_steps):
            raise UsageError("--time-budget goes with --epochs auto; an explicit --epochs or --max-steps means exactly that.")
        if self.eval_strategy == "steps" and not self.eval_steps:
            raise UsageError("eval_strategy 'steps' needs --eval-steps N.")
        if self.report_to != "none":
            package = _REPORT_PACKAGES[self.report_to]
            if importlib.util.find_spec(package) is None:
                raise UsageError(
                    f"report_to {self.report_to!r} needs the {package} package, which is not installed"
                    f" (pip install {package}), or use --report-to none."
                )
        if self.resume and not self.output_dir:
            raise UsageError("--resume needs --output DIR: the folder of the run to continue.")
        return self


# ---------------------------------------------------------------------------------------------------
# Field specs: the dataclass described as plain records, for forms, flags and type checks.
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldSpec:
    """One option of a config dataclass, described for a form or a flag.

    Attributes:
        name: the field name (``lora_r``); TOML key and keyword argument.
        kind: ``"str"``, ``"int"``, ``"float"``, ``"auto"`` (``auto`` or a number), ``"bool"``, ``"choice"``, ``"list"`` (of strings),
            ``"path"`` or ``"dict"``.
        default: the default value (``None`` where unset means "automatic").
        help: one sentence.
        choices: allowed values for ``kind == "choice"``.
        required: the run cannot start without a value.
        optional: ``None`` is an accepted value (an empty form input means ``None``).
        group: a heading to group fields under (``model``, ``data``, ``lora``, ``training``...).
        flag: the CLI flag (``--lora-r``).
        label: a short human label (``Lora r``).
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False
    optional: bool = False
    group: str = ""
    flag: str = ""
    label: str = ""


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return args[0], optional
    return tp, False


def _kind_of(tp: Any) -> str:
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if tp is float:
        return "float"
    if tp in (str, Path):
        return "str"
    origin = typing.get_origin(tp)
    if origin in (list, tuple) or tp in (list, tuple):
        return "list"
    if origin is dict or tp is dict:
        return "dict"
    return "str"


def field_specs(cls: type) -> list[FieldSpec]:
    """Describe the fields of a config dataclass (TrainConfig or a task's options class).

    Args:
        cls: a dataclass type whose fields carry ``metadata={"help": ...}``.

    Returns:
        One :class:`FieldSpec` per field, in definition order. No click, no torch.
    """
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        tp, optional = _unwrap_optional(hints.get(f.name, str))
        meta = dict(f.metadata or {})
        kind = meta.get("kind") or _kind_of(tp)
        choices = tuple(meta.get("choices") or ())
        if choices and kind == "str":
            kind = "choice"
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        specs.append(FieldSpec(
            name=f.name,
            kind=kind,
            default=default,
            help=str(meta.get("help", "")),
            choices=choices,
            required=bool(meta.get("required", False)),
            optional=optional,
            group=str(meta.get("group", "")),
            flag=str(meta.get("flag") or "--" + f.name.replace("_", "-")),
            label=f.name.replace("_", " ").capitalize(),
        ))
    return specs


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def parse_field_value(spec: FieldSpec, text: str | None) -> Any:
    """Turn the text of a form input or a ``--option KEY=VALUE`` into the field's type.

    Args:
        spec: the field (from :func:`field_specs`).
        text: what the user typed; empty means ``None`` for optional fields and the default otherwise.

    Returns:
        The typed value.

    Raises:
        UsageError: the text is not a valid value for the field.
    """
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return None if spec.optional else spec.default
    if not isinstance(text, str):
        return _check_value(spec, text, "the form")
    raw = text.strip()
    try:
        if spec.kind == "bool":
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if spec.kind == "int":
            return int(raw)
        if spec.kind == "float":
            return float(raw)
        if spec.kind == "auto":
            return "auto" if raw.lower() == "auto" else float(raw)
        if spec.kind == "list":
            return [part.strip() for part in raw.split(",") if part.strip()]
        if spec.kind == "dict":
            raise ValueError
    except ValueError:
        need = {"bool": "true or false", "int": "a whole number", "float": "a number",
                "auto": "auto or a number", "dict": "KEY=VALUE pairs"}.get(spec.kind, "a value")
        raise UsageError(f"{spec.name} must be {need}, not {raw!r}.") from None
    if spec.kind == "choice" and raw not in spec.choices:
        raise UsageError(f"{spec.name} must be one of {', '.join(spec.choices)}, not {raw!r}.")
    if spec.optional and raw.lower() == "none" and spec.kind == "str":
        return None
    return text if spec.kind == "str" else raw


def _check_value(spec: FieldSpec, value: Any, source: str) -> Any:
    """Check (and lightly coerce) a value read from TOML or given in Python."""
    if value is None:
        return value
    kind = spec.kind

    def bad(need: str) -> UsageError:
        return UsageError(f"{spec.name} in {source} must be {need}, not {value!r}.")

    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return parse_field_value(spec, value)
        raise bad("true or false")
    if kind == "int":
        if isinstance(value, bool):
            raise bad("a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return parse_field_value(spec, value)
        raise bad("a whole number")
    if kind == "float":
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return parse_field_value(spec, value)
        raise bad("a number")
    if kind == "auto":
        if isinstance(value, bool):
            raise bad("auto or a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return parse_field_value(spec, value)
        raise bad("auto or a number")
    if kind == "list":
        if isinstance(value, str):
            return parse_field_value(spec, value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise bad("a list of names")
    if kind == "dict":
        if isinstance(value, Mapping):
            return dict(value)
        raise bad("a table")
    if kind == "choice":
        if value not in spec.choices:
            raise UsageError(f"{spec.name} in {source} must be one of {', '.join(spec.choices)}, not {value!r}.")
        return value
    # str / path
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if not isinstance(value, str):
        raise bad("text")
    return value


def coerce_options(options_class: type, values: Mapping[str, Any], *, source: str = "options") -> dict[str, Any]:
    """Type task options given as strings (``--option KEY=VALUE``) or TOML values by the options dataclass.

    Args:
        options_class: the task's ``options_class``.
        values: option name -> value (strings are parsed by the field's type).
        source: named in error messages.

    Returns:
        A new dict with typed values. Unknown names are passed through (the task refuses them).

    Raises:
        UsageError: a value that does not fit its field's type.
    """
    if not dataclasses.is_dataclass(options_class):
        return dict(values)
    specs = {s.name: s for s in field_specs(options_class)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        spec = specs.get(key)
        if spec is None:
            out[key] = value
        elif isinstance(value, str) and spec.kind != "str":
            out[key] = parse_field_value(spec, value)
        else:
            out[key] = _check_value(spec, value, source)
    return out


def parse_key_values(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings (``--option``); dashes in keys become underscores.

    Raises:
        UsageError: an item without ``=``.
    """
    out: dict[str, str] = {}
    for item in pairs:
        if "=" not in item:
            raise UsageError(f"--option takes KEY=VALUE, got {item!r}.")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key:
            raise UsageError(f"--option takes KEY=VALUE, got {item!r}.")
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------
# Merging: defaults < TOML < flags
# ---------------------------------------------------------------------------------------------------
def merge(base: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """Lay ``overrides`` over ``base``: every override that is not ``None`` wins.

    ``options`` merge key by key (an override's key wins). Used with the TOML file as ``base`` and the
    command-line flags as ``overrides``.

    Args:
        base: the config to start from (defaults, or a TOML file).
        overrides: field name -> value; ``None`` means "not given".

    Returns:
        A new TrainConfig.

    Raises:
        UsageError: an unknown field name or a value of the wrong type.
    """
    specs = {s.name: s for s in field_specs(type(base))}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in specs:
            raise UsageError(f"Unknown setting {name!r}.")
        value = _check_value(specs[name], value, "the overrides")
        if name == "options":
            merged = dict(base.options or {})
            merged.update(value)
            value = merged
        changes[name] = value
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------------------------------
# click
# ---------------------------------------------------------------------------------------------------
def click_options_from_dataclass(cls: type, *, exclude: Iterable[str] = (), prefix: str = "") -> Callable[[Callable], Callable]:
    """A decorator adding one click option per dataclass field (``dict`` fields are skipped).

    Every option defaults to ``None`` so that a flag the user did not give can be told apart from one
    they gave (flags win over the TOML file, which wins over the defaults). Booleans become
    ``--name/--no-name``; lists take comma-separated values; choices become ``click.Choice``.

    Args:
        cls: the dataclass (TrainConfig, or a task's options class).
        exclude: field names to leave out (e.g. positional arguments).
        prefix: prepended to flag names (``--opt-``...), for namespacing.

    Returns:
        A decorator for a click command; the command receives each field as a keyword argument of the
        same name.
    """
    import click

    skip = set(exclude)
    specs = [s for s in field_specs(cls) if s.name not in skip and s.kind != "dict"]

    def decorator(fn: Callable) -> Callable:
        for spec in reversed(specs):
            flag = spec.flag if not prefix else "--" + prefix + spec.flag.lstrip("-")
            default_text = "" if spec.default in (None, "", [], {}) else f" [default: {_show(spec.default)}]"
            help_text = spec.help + default_text
            if spec.kind == "bool":
                opt = click.option(f"{flag}/--no-{flag.lstrip('-')}", spec.name, default=None, help=help_text)
            elif spec.kind == "choice":
                opt = click.option(flag, spec.name, type=click.Choice(spec.choices), default=None,
                                   help=help_text, metavar="|".join(spec.choices))
            elif spec.kind == "int":
                opt = click.option(flag, spec.name, type=int, default=None, help=help_text, metavar="N")
            elif spec.kind == "float":
                opt = click.option(flag, spec.name, type=float, default=None, help=help_text, metavar="X")
            elif spec.kind == "auto":
                opt = click.option(flag, spec.name, default=None, help=help_text, metavar="auto|X",
                                   callback=_auto_or_number)
            elif spec.kind == "list":
                opt = click.option(flag, spec.name, default=None, help=help_text, metavar="A,B",
                                   callback=_split_commas)
            elif spec.kind == "path":
                opt = click.option(flag, spec.name, default=None, help=help_text, metavar="PATH")
            else:
                opt = click.option(flag, spec.name, default=None, help=help_text, metavar="TEXT")
            fn = opt(fn)
        return fn

    return decorator


def _auto_or_number(ctx: Any, param: Any, value: str | None) -> float | str | None:
    import click

    if value is None:
        return None
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither auto nor a number.") from None


def _split_commas(ctx: Any, param: Any, value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
            raise UsageError(f"time_budget must be a duration such as 90s, 10m or 1h30m, not {text!r}.")
        seconds = sum(float(num) * units[unit] for num, unit in re.findall(r"(\d+(?:\.\d+)?)([hms]?)", raw))
    if seconds <= 0:
        raise UsageError(f"time_budget must be more than 0 seconds, not {text!r}.")
    return seconds


# ---------------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------------
def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    Raises:
        DiskFullError: no space left on the device.
        OSError: other write failures.
    """
    import tempfile

    from hubmgr.errors import disk_full_from

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        full = disk_full_from(exc, str(path))
        if full is not None:
            raise full from None
        raise
