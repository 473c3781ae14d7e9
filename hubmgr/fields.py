"""Settings declared once: config dataclasses whose fields drive CLI flags, TOML files, forms and docs.

A config is a dataclass whose fields are declared with :func:`setting`: each carries ``help`` (one
sentence) and, where it applies, ``group`` (how a form and the docs group the fields), ``choices``,
``flag`` (a CLI flag other than ``--field-name``), ``short`` (a one-letter alias), ``kind``,
``minimum`` and ``multiple`` (a flag given once per value). Every consumer reads that one definition:

* :func:`click_options_from_dataclass` turns the fields into click options (``hubmgr train``, ``eval``,
  ``predict``, ``merge``);
* :func:`field_specs` turns them into plain :class:`FieldSpec` records a form can render (the TUI) and
  the docs generator lists (``docs/configuration.md``);
* :class:`ConfigBase` reads and writes TOML and checks values given in Python, a file or a form;
* :func:`merge` lays what was given (flags) over a base (defaults or a file): defaults < file < flags.

Settings several commands share (:func:`device_setting`, :func:`dtype_setting`,
:func:`trust_remote_code_setting`, :func:`task_options_setting`) are declared here, so that their
choices, defaults and flags are the same everywhere. Task options given as ``-o KEY=VALUE`` are read by
:func:`parse_key_values` and typed by :func:`coerce_options` from the task's options dataclass.

Nothing here imports torch, transformers or click at module import.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from hubmgr.errors import UsageError

#: ``--device`` of every command that runs a model.
DEVICES = ("auto", "cpu", "cuda", "mps")
#: ``--dtype`` of every command that loads a model; ``auto`` lets the command choose (see its help).
DTYPES = ("auto", "float32", "bfloat16", "float16")


def setting(
    default: Any = None,
    help: str = "",
    *,
    group: str = "training",
    choices: Iterable[str] | None = None,
    flag: str | None = None,
    short: str | None = None,
    required: bool = False,
    factory: Callable[[], Any] | None = None,
    kind: str | None = None,
    minimum: float | None = None,
    multiple: bool = False,
    label: str | None = None,
) -> Any:
    """A dataclass field of a config, with the metadata its flag, form input and docs are made from.

    Args:
        default: the default value (``None``: unset, chosen automatically).
        help: one sentence.
        group: the heading it goes under in forms and docs.
        choices: the accepted values (the field is then a choice).
        flag: the CLI flag, when not ``--field-name``.
        short: a one-letter alias (``-m``).
        required: the command cannot run without a value.
        factory: a default factory (for lists and dicts).
        kind: the kind, when not what the type annotation says (``path``, ``auto``, ``dict``).
        minimum: the smallest accepted number (checked for flags, files and forms alike).
        multiple: for a list, the flag is given once per value (``--adapter A --adapter B``) instead of
            comma-separated.
        label: what a form calls it, when not the field name in words (``Lora r``).
    """
    meta: dict[str, Any] = {"help": help, "group": group}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if flag:
        meta["flag"] = flag
    if short:
        meta["short"] = short
    if required:
        meta["required"] = True
    if kind:
        meta["kind"] = kind
    if minimum is not None:
        meta["minimum"] = minimum
    if multiple:
        meta["multiple"] = True
    if label:
        meta["label"] = label
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --- settings several commands share -----------------------------------------------------------------
def device_setting(help: str) -> Any:
    """``--device``: one of :data:`DEVICES`, default ``auto``."""
    return setting("auto", help, group="hardware", choices=DEVICES)


def dtype_setting(help: str) -> Any:
    """``--dtype``: one of :data:`DTYPES`, default ``auto``."""
    return setting("auto", help, group="hardware", choices=DTYPES)


def trust_remote_code_setting(
    help: str = "Run Python code shipped in the model repo (only for repos you trust).",
) -> Any:
    """``--trust-remote-code``: off by default."""
    return setting(False, help, group="model")


def task_options_setting(
    help: str = "A task option (see `hubmgr tasks`), e.g. text_column=sentence. Repeatable.",
) -> Any:
    """``-o/--option KEY=VALUE``: the task's options, a ``[options]`` table in TOML."""
    return setting(None, help, group="data", factory=dict, kind="dict", flag="--option", short="-o")


def model_dtype(dtype: str | None) -> str | None:
    """The dtype to load a model in: ``None`` (the model's own) for ``auto``."""
    return None if dtype in (None, "auto") else dtype


_C = TypeVar("_C", bound="ConfigBase")


class ConfigBase:
    """What every config dataclass can do: plain dicts, TOML files, merging and checks by its fields."""

    def to_dict(self, *, drop_none: bool = False) -> dict[str, Any]:
        """The fields as plain values (lists and dicts copied).

        Args:
            drop_none: leave out fields whose value is ``None`` (TOML has no null).

        Returns:
            A dict keyed by field name.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
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
    def from_dict(cls: type[_C], values: Mapping[str, Any], *, source: str = "config") -> _C:
        """Build a config from a mapping, checking names and types.

        Args:
            values: field name -> value; ``options`` is a mapping of task options.
            source: where the values came from, named in error messages.

        Returns:
            A new config (not yet validated; call its ``validate``).

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
    def from_toml(cls: type[_C], path: str | os.PathLike[str]) -> _C:
        """Read a TOML config file: top-level keys are fields, ``[options]`` the task options.

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

    def check_fields(self: _C) -> _C:
        """Check what the field metadata declares: required values, choices, minimums.

        Returns:
            ``self``, for chaining.

        Raises:
            UsageError: with one sentence naming the field (by its flag) and what it accepts.
        """
        for spec in field_specs(type(self)):
            value = getattr(self, spec.name)
            if spec.required and (value is None or (isinstance(value, (str, list)) and not value)):
                raise UsageError(f"Missing {spec.flag}.", field=spec.name, form_message=f"{spec.label} is required.")
            if spec.choices and value not in spec.choices:
                raise UsageError(
                    f"{spec.name} must be one of {', '.join(spec.choices)}, not {value!r}.", field=spec.name
                )
            _check_minimum(spec, value, spec.name)
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
        short: a one-letter alias of the flag (``-m``), or ``""``.
        minimum: the smallest accepted number, or ``None``.
        multiple: for a list, the flag is repeated once per value instead of taking commas.
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
    short: str = ""
    minimum: float | None = None
    multiple: bool = False


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


def field_default(f: dataclasses.Field[Any]) -> Any:
    """A dataclass field's default value (a fresh one from its factory), or ``None`` when it has none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def field_specs(cls: type) -> list[FieldSpec]:
    """Describe the fields of a config dataclass (a config of this module's kind or a task's options class).

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
        specs.append(
            FieldSpec(
                name=f.name,
                kind=kind,
                default=field_default(f),
                help=str(meta.get("help", "")),
                choices=choices,
                required=bool(meta.get("required", False)),
                optional=optional,
                group=str(meta.get("group", "")),
                flag=str(meta.get("flag") or "--" + f.name.replace("_", "-")),
                label=str(meta.get("label") or f.name.replace("_", " ").capitalize()),
                short=str(meta.get("short") or ""),
                minimum=meta.get("minimum"),
                multiple=bool(meta.get("multiple", False)),
            )
        )
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
        need = {
            "bool": "true or false",
            "int": "a whole number",
            "float": "a number",
            "auto": "auto or a number",
            "dict": "KEY=VALUE pairs",
        }.get(spec.kind, "a value")
        raise UsageError(f"{spec.name} must be {need}, not {raw!r}.", field=spec.name) from None
    if spec.kind == "choice" and raw not in spec.choices:
        raise UsageError(f"{spec.name} must be one of {', '.join(spec.choices)}, not {raw!r}.", field=spec.name)
    if spec.optional and raw.lower() == "none" and spec.kind == "str":
        return None
    return text if spec.kind == "str" else raw


def _check_value(spec: FieldSpec, value: Any, source: str) -> Any:
    """Check (and lightly coerce) a value read from TOML or given in Python."""
    if value is None:
        return value
    kind = spec.kind

    def bad(need: str) -> UsageError:
        return UsageError(f"{spec.name} in {source} must be {need}, not {value!r}.", field=spec.name)

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
            raise UsageError(
                f"{spec.name} in {source} must be one of {', '.join(spec.choices)}, not {value!r}.", field=spec.name
            )
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
    """Parse ``KEY=VALUE`` strings (``-o/--option``); dashes in keys become underscores.

    The values stay text: :func:`coerce_options` types them by the task's options dataclass once the
    task is known (the runners of train, eval and predict call it), so ``-o flag=no`` is ``False`` for a
    boolean option and ``-o column=1`` stays the text ``"1"`` for a text one.

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


def _check_minimum(spec: FieldSpec, value: Any, name: str) -> None:
    if spec.minimum is None or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value < spec.minimum:
        raise UsageError(f"{name} must be at least {spec.minimum:g}, not {value}.", field=spec.name)


def form_text(text: str, specs: Iterable[FieldSpec]) -> str:
    """A sentence written for the command line (help or error) in a form's words: each field's flag
    (``--eval-fraction``) and each field name with an underscore (``eval_fraction``) becomes the field's
    label (``Eval fraction``), the label the form shows.

    Args:
        text: a field's help, or an error message, as the CLI prints it.
        specs: the fields the form shows (their flags, names and labels).

    Returns:
        The text with the references replaced; the rest is left as it is.
    """
    import re

    by_ref: dict[str, str] = {}
    for spec in specs:
        if spec.flag:
            by_ref[spec.flag] = spec.label
        if "_" in spec.name:
            by_ref[spec.name] = spec.label
    if not by_ref:
        return text
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(re.escape(r) for r in sorted(by_ref, key=len, reverse=True)) + r")(?![\w-])"
    )
    return pattern.sub(lambda m: by_ref[m.group(1)], text)


def form_message(error: BaseException, specs: Iterable[FieldSpec]) -> str:
    """What a form shows for an error: its own ``form_message`` when the error has one, else its message
    in the form's words (:func:`form_text`)."""
    own = getattr(error, "form_message", None)
    return str(own) if own else form_text(str(error), specs)


# ---------------------------------------------------------------------------------------------------
# Merging: defaults < TOML < flags
# ---------------------------------------------------------------------------------------------------
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


def merge(base: _T, overrides: Mapping[str, Any]) -> _T:
    """Lay ``overrides`` over ``base``: every override that is not ``None`` wins.

    ``options`` merge key by key (an override's key wins). Used with the TOML file (or the defaults) as
    ``base`` and the command-line flags as ``overrides``.

    Args:
        base: the config to start from (defaults, or a TOML file).
        overrides: field name -> value; ``None`` means "not given".

    Returns:
        A new config of the same class.

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
            merged = dict(getattr(base, "options", None) or {})
            merged.update(value)
            value = merged
        changes[name] = value
    return dataclasses.replace(base, **changes)  # type: ignore[type-var]


# ---------------------------------------------------------------------------------------------------
# click
# ---------------------------------------------------------------------------------------------------
def click_options_from_dataclass(cls: type, *, exclude: Iterable[str] = (), prefix: str = "") -> Callable[[_F], _F]:
    """A decorator adding one click option per dataclass field.

    Every option defaults to ``None`` so that a flag the user did not give can be told apart from one
    they gave (flags win over the TOML file, which wins over the defaults). Booleans become
    ``--name/--no-name``; lists take comma-separated values (or one value per flag, ``multiple``);
    choices become ``click.Choice``; numbers with a ``minimum`` a click range; a ``dict`` field (task
    options) a repeatable ``KEY=VALUE`` flag read by :func:`parse_key_values`.

    Args:
        cls: the dataclass (a config, or a task's options class).
        exclude: field names to leave out (e.g. positional arguments).
        prefix: prepended to flag names (``--opt-``...), for namespacing.

    Returns:
        A decorator for a click command; the command receives each field as a keyword argument of the
        same name.
    """
    import click

    skip = set(exclude)
    specs = [s for s in field_specs(cls) if s.name not in skip]

    def decorator(fn: _F) -> _F:
        for spec in reversed(specs):
            flag = spec.flag if not prefix else "--" + prefix + spec.flag.lstrip("-")
            names = [flag, spec.short] if spec.short and not prefix else [flag]
            default_text = "" if spec.default in (None, "", [], {}) else f" [default: {_show(spec.default)}]"
            help_text = spec.help + default_text
            if spec.kind == "bool":
                opt = click.option(
                    f"{flag}/--no-{flag.lstrip('-')}", *names[1:], spec.name, default=None, help=help_text
                )
            elif spec.kind == "choice":
                opt = click.option(
                    *names,
                    spec.name,
                    type=click.Choice(spec.choices),
                    default=None,
                    help=help_text,
                    metavar="|".join(spec.choices),
                )
            elif spec.kind == "int":
                kind = int if spec.minimum is None else click.IntRange(min=int(spec.minimum))
                opt = click.option(*names, spec.name, type=kind, default=None, help=help_text, metavar="N")
            elif spec.kind == "float":
                float_kind = float if spec.minimum is None else click.FloatRange(min=spec.minimum)
                opt = click.option(*names, spec.name, type=float_kind, default=None, help=help_text, metavar="X")
            elif spec.kind == "auto":
                opt = click.option(
                    *names, spec.name, default=None, help=help_text, metavar="auto|X", callback=_auto_or_number
                )
            elif spec.kind == "list" and spec.multiple:
                opt = click.option(*names, spec.name, multiple=True, help=spec.help, metavar="TEXT", callback=_repeated)
            elif spec.kind == "list":
                opt = click.option(
                    *names, spec.name, default=None, help=help_text, metavar="A,B", callback=_split_commas
                )
            elif spec.kind == "dict":
                opt = click.option(
                    *names, spec.name, multiple=True, help=spec.help, metavar="KEY=VALUE", callback=_key_values
                )
            elif spec.kind == "path":
                opt = click.option(*names, spec.name, default=None, help=help_text, metavar="PATH")
            else:
                opt = click.option(*names, spec.name, default=None, help=help_text, metavar="TEXT")
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


def _repeated(ctx: Any, param: Any, value: tuple[str, ...]) -> list[str] | None:
    return list(value) or None


def _key_values(ctx: Any, param: Any, value: tuple[str, ...]) -> dict[str, str] | None:
    return parse_key_values(value) or None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
