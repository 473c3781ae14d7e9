"""A form generated from field specs: one definition (a dataclass with ``metadata["help"]``, described by
``hubmgr.fields.field_specs``) drives the CLI flags, the TOML keys and this form.

Each spec becomes a labelled row: a Checkbox for ``bool``, a Select for ``choice``, an Input otherwise
(lists as comma-separated text), with the help text under it, grouped under the specs' ``group``
headings. :meth:`DataclassForm.values` turns the inputs back into typed values with the same parser the
CLI uses, so a bad value raises the same one-sentence :class:`~hubmgr.errors.UsageError`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalGroup
from textual.widgets import Checkbox, Input, Label, Select, Static

from hubmgr.tui.widgets.inputs import Choice

#: Parses what the user typed for one spec into a typed value (raises UsageError).
Parser = Callable[[Any, str], Any]

GROUP_TITLES = {
    "model": "Model",
    "data": "Data",
    "lora": "LoRA",
    "training": "Training",
    "hardware": "Hardware",
    "output": "Evaluation, checkpoints and output",
}


def _text_of(spec: Any, value: Any) -> str:
    if value is None:
        return ""
    if spec.kind == "list":
        return ", ".join(str(v) for v in value)
    return str(value)


def _label(spec: Any) -> str:
    return getattr(spec, "label", "") or spec.name.replace("_", " ").capitalize()


class DataclassForm(VerticalGroup):
    """Rows of labelled inputs for field specs.

    Args:
        specs: objects with ``name``, ``kind`` (bool/int/float/str/path/choice/list), ``default``,
            ``help``, ``choices``, ``optional`` and optionally ``group`` and ``label``.
        parse: turns a spec and the text typed into a value (``hubmgr.fields.parse_field_value``).
        prefix: widget ids are ``{prefix}-{field name}``.
        groups: show group headings.
    """

    DEFAULT_CSS = """
    DataclassForm {
        height: auto;
    }
    DataclassForm .form-group {
        margin-top: 1;
        text-style: bold underline;
        color: $accent;
    }
    DataclassForm .form-row {
        height: auto;
        margin-top: 1;
    }
    DataclassForm .form-label {
        width: 24;
        padding-right: 1;
        text-style: bold;
    }
    DataclassForm .form-row > Input, DataclassForm .form-row > Select {
        width: 1fr;
    }
    DataclassForm .form-row > Checkbox {
        width: 1fr;
    }
    DataclassForm .form-help {
        color: $text-muted;
        padding-left: 24;
        height: auto;
    }
    """

    def __init__(
        self, specs: Sequence[Any], *, parse: Parser, prefix: str, groups: bool = True, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.specs = [s for s in specs if s.kind != "dict"]
        self.parse = parse
        self.prefix = prefix
        self.groups = groups

    def compose(self) -> ComposeResult:
        group = None
        for spec in self.specs:
            spec_group = getattr(spec, "group", "") or ""
            if self.groups and spec_group != group:
                group = spec_group
                if group:
                    yield Label(GROUP_TITLES.get(group, group.capitalize()), classes="form-group")
            wid = f"{self.prefix}-{spec.name}"
            tip = spec.help or None
            with Horizontal(classes="form-row"):
                yield Label(_label(spec), classes="form-label")
                if spec.kind == "bool":
                    yield Checkbox("", bool(spec.default), id=wid, compact=True, tooltip=tip)
                elif spec.kind == "choice":
                    choices = tuple(spec.choices)
                    value = spec.default if spec.default in choices else Select.NULL
                    yield Choice(
                        [(str(c), c) for c in choices],
                        value=value,
                        allow_blank=bool(spec.optional) or value is Select.NULL,
                        id=wid,
                        compact=True,
                        tooltip=tip,
                    )
                else:
                    placeholder = {
                        "list": "comma-separated",
                        "int": "whole number",
                        "float": "number",
                        "auto": "auto or a number",
                        "path": "path",
                    }.get(spec.kind, "")
                    if spec.optional:
                        placeholder = f"{placeholder} (empty: automatic)".strip()
                    yield Input(
                        _text_of(spec, spec.default), placeholder=placeholder, id=wid, compact=True, tooltip=tip
                    )
            if spec.help:
                yield Static(spec.help, classes="form-help", markup=False)

    # -- reading and writing -------------------------------------------------------------------------
    def _widget(self, spec: Any) -> Any:
        return self.query_one(f"#{self.prefix}-{spec.name}")

    def values(self, *, only_changed: bool = False) -> dict[str, Any]:
        """Typed values by field name. Raises UsageError naming the first field that does not parse."""
        out: dict[str, Any] = {}
        for spec in self.specs:
            value = self.value_of(spec)
            if only_changed and value == spec.default:
                continue
            out[spec.name] = value
        return out

    def value_of(self, spec: Any) -> Any:
        widget = self._widget(spec)
        if spec.kind == "bool":
            return bool(widget.value)
        if spec.kind == "choice":
            value = widget.value
            return None if value is Select.NULL else value
        return self.parse(spec, str(widget.value))

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill the widgets from a dict (unknown keys are ignored)."""
        for spec in self.specs:
            if spec.name not in values:
                continue
            widget = self._widget(spec)
            value = values[spec.name]
            if spec.kind == "bool":
                widget.value = bool(value)
            elif spec.kind == "choice":
                if value in tuple(spec.choices):
                    widget.value = value
            else:
                widget.value = _text_of(spec, value)
