"""A form generated from field specs: one definition (a dataclass with ``metadata["help"]``, described by
``hubmgr.fields.field_specs``) drives the CLI flags, the TOML keys and this form.

Each spec becomes a labelled row: a Checkbox for ``bool``, a Select for ``choice``, an Input otherwise
(lists as comma-separated text), with the help text under it, grouped under the specs' ``group``
headings. :meth:`DataclassForm.values` turns the inputs back into typed values with the same parser the
CLI uses, so a bad value raises the same one-sentence :class:`~hubmgr.errors.UsageError`;
:meth:`DataclassForm.set_error` marks a field in place (an error style on its row and the sentence under
it). :meth:`DataclassForm.raw_values` and :meth:`DataclassForm.set_raw_values` read and restore what
was typed, as it was typed (to remember a form between launches).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalGroup
from textual.widgets import Checkbox, Input, Label, Select, Static

from hubmgr.errors import UsageError
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
    DataclassForm .form-row.-invalid > .form-label {
        color: $text-error;
    }
    .form-error {
        color: $text-error;
        padding-left: 24;
        height: auto;
        display: none;
    }
    .form-error.-shown {
        display: block;
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
            yield Static("", id=f"{wid}-error", classes="form-error", markup=False)
            if spec.help:
                yield Static(spec.help, classes="form-help", markup=False)

    # -- reading and writing -------------------------------------------------------------------------
    def _widget(self, spec: Any) -> Any:
        return self.query_one(f"#{self.prefix}-{spec.name}")

    def values(self, *, only_changed: bool = False) -> dict[str, Any]:
        """Typed values by field name. Raises UsageError naming the first field that does not parse."""
        out, errors = self.values_and_errors(only_changed=only_changed)
        if errors:
            raise next(iter(errors.values()))
        return out

    def values_and_errors(self, *, only_changed: bool = False) -> tuple[dict[str, Any], dict[str, UsageError]]:
        """Typed values by field name, and the error of each field that does not parse (left out of the
        values)."""
        out: dict[str, Any] = {}
        errors: dict[str, UsageError] = {}
        for spec in self.specs:
            try:
                value = self.value_of(spec)
            except UsageError as exc:
                errors[spec.name] = exc
                continue
            if only_changed and value == spec.default:
                continue
            out[spec.name] = value
        return out, errors

    def has_field(self, name: str) -> bool:
        return any(spec.name == name for spec in self.specs)

    def input_of(self, name: str) -> Any:
        """The input widget of a field."""
        return self.query_one(f"#{self.prefix}-{name}")

    def set_error(self, name: str, message: str) -> None:
        """Mark a field as wrong: an error style on its row and ``message`` under it."""
        widget = self.input_of(name)
        widget.add_class("-invalid")
        if widget.parent is not None:
            widget.parent.add_class("-invalid")
        error = self.query_one(f"#{self.prefix}-{name}-error", Static)
        error.update(message)
        error.add_class("-shown")

    def clear_errors(self) -> None:
        for spec in self.specs:
            widget = self.input_of(spec.name)
            widget.remove_class("-invalid")
            if widget.parent is not None:
                widget.parent.remove_class("-invalid")
            error = self.query_one(f"#{self.prefix}-{spec.name}-error", Static)
            error.update("")
            error.remove_class("-shown")

    def raw_values(self, *, skip: Sequence[str] = ()) -> dict[str, Any]:
        """What each input holds, as typed (text, a checkbox's bool, a select's choice or None)."""
        out: dict[str, Any] = {}
        for spec in self.specs:
            if spec.name in skip:
                continue
            value = self._widget(spec).value
            out[spec.name] = None if value is Select.NULL else value
        return out

    def set_raw_values(self, values: dict[str, Any]) -> None:
        """Put back what :meth:`raw_values` read (unknown names, and values of the wrong kind, are ignored)."""
        for spec in self.specs:
            if spec.name not in values:
                continue
            widget = self._widget(spec)
            value = values[spec.name]
            if value == (None if widget.value is Select.NULL else widget.value):
                continue
            if spec.kind == "bool":
                if isinstance(value, bool):
                    widget.value = value
            elif spec.kind == "choice":
                if value in tuple(spec.choices) or (value is None and spec.optional):
                    widget.value = Select.NULL if value is None else value
            elif isinstance(value, str):
                widget.value = value

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
