"""The Help page, built for the screen it was opened on (as lazygit's ``?`` does): that screen's keys first,
read from its bindings (so the page never lists a key the screen lacks), with a mark on the ones that do
nothing right now, then what the screen does, then the keys that work everywhere, then the other screens.

The prose comes from one Markdown text with a ``## Title`` section per screen plus ``## Everywhere``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from textual.binding import Binding

from hubmgr.tui.screens.base import binding_applies, own_bindings


def split_sections(text: str) -> tuple[str, dict[str, str]]:
    """The text before the first ``## `` heading, and each ``## Title`` section's body by title."""
    intro, *parts = text.split("\n## ")
    sections: dict[str, str] = {}
    for part in parts:
        title, _, body = part.partition("\n")
        sections[title.strip()] = body.strip()
    return intro.strip(), sections


#: how Help and the palette spell keys whose footer spelling is terse or a name
KEY_NAMES = {
    "escape": "Esc",
    "enter": "Enter",
    "space": "Space",
    "delete": "Delete",
    "tab": "Tab",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "home": "Home",
    "end": "End",
}


def key_display(app: Any, binding: Binding) -> str:
    """``d / Delete`` for a binding of several keys; ``Ctrl+S`` for ctrl+s; other keys as the footer shows them."""
    shown: list[str] = []
    for key in (k.strip() for k in binding.key.split(",")):
        if not key:
            continue
        *modifiers, base = key.split("+")
        if base in KEY_NAMES:
            name = KEY_NAMES[base]
        elif modifiers or (base[:1] == "f" and base[1:].isdigit()):
            name = base.upper() if len(base) == 1 or base[:1] == "f" else base.capitalize()
        else:
            name = app.get_key_display(dataclasses.replace(binding, key=base, key_display=None))
        text = "+".join([*(m.capitalize() for m in modifiers), name])
        if text not in shown:
            shown.append(text)
    return " / ".join(shown)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def keys_table(screen: Any, bindings: list[Binding]) -> str:
    rows = ["| Key | Action |", "|---|---|"]
    for binding in bindings:
        what = binding.description or binding.action
        if not binding_applies(screen, binding):
            what += " *(nothing to act on now)*"
        rows.append(f"| `{_cell(key_display(screen.app, binding))}` | {_cell(what)} |")
    return "\n".join(rows)


def help_markdown(screen: Any, text: str) -> str:
    """The Help page for ``screen`` (None: the general page) from the per-screen ``text``."""
    intro, sections = split_sections(text)
    here = getattr(screen, "help_section", None) if screen is not None else None
    parts: list[str] = []
    if here is not None:
        bindings = [b for b in own_bindings(screen) if b.description]
        parts.append(f"# {here}: keys on this screen")
        parts.append(keys_table(screen, bindings) if bindings else "This screen has no keys of its own.")
        if here in sections:
            parts.append(sections[here])
    if "Everywhere" in sections:
        parts.append("## Everywhere\n\n" + sections["Everywhere"])
    others = [(title, body) for title, body in sections.items() if title not in ("Everywhere", here)]
    if others:
        parts.append("## Other screens" if here is not None else "## Screens")
        parts.extend(f"### {title}\n\n{body}" for title, body in others)
    lines = intro.splitlines()
    if lines and lines[0].startswith("# "):  # the page's own title: the screen's name stands there now
        lines = lines[1:]
    if "\n".join(lines).strip():
        parts.append("## About\n\n" + "\n".join(lines).strip())
    return "\n\n".join(parts) + "\n"
