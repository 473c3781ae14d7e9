"""The TUI's backends satisfy :class:`hubmgr.tui.backend.BackendProtocol`, what the app and screens call.

mypy checks the real Backend against it (the app assigns one to its ``BackendProtocol`` attribute), but
tests/ is not type-checked and FakeBackend's overrides are untyped: here each protocol member is looked up
on the backends and its signature compared with the protocol's, so a member that goes missing or takes
different arguments fails.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from hubmgr.tui.backend import Backend, BackendProtocol
from tests.tui.fakes import FakeBackend

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def protocol_members() -> list[str]:
    """The methods BackendProtocol declares (its own, not object's or Protocol's)."""
    return sorted(name for name, value in vars(BackendProtocol).items() if not name.startswith("_") and callable(value))


def signature_problems(expected: Callable[..., Any], actual: Callable[..., Any]) -> list[str]:
    """What keeps ``actual`` from being called every way the protocol's ``expected`` may be called."""
    want = list(inspect.signature(expected).parameters.values())[1:]  # without self
    have = list(inspect.signature(actual).parameters.values())[1:]
    problems: list[str] = []
    var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in have)
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in have)
    have_positional = [p for p in have if p.kind in _POSITIONAL]
    by_name = {p.name: p for p in have if p.kind is not inspect.Parameter.VAR_KEYWORD}
    for i, p in enumerate(want):
        if p.kind in _POSITIONAL:
            if i >= len(have_positional):
                if not var_positional:
                    problems.append(f"takes no positional parameter {p.name!r}")
                continue
            q = have_positional[i]
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and q.name != p.name:
                problems.append(f"positional parameter {i + 1} is {q.name!r}, not {p.name!r}")
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            q_or_none = by_name.get(p.name)
            if q_or_none is None or q_or_none.kind is inspect.Parameter.POSITIONAL_ONLY:
                if not var_keyword:
                    problems.append(f"takes no keyword {p.name!r}")
                continue
            q = q_or_none
        else:  # *args / **kwargs in the protocol: the implementation must take them too
            if not any(h.kind is p.kind for h in have):
                problems.append(f"takes no {'*' if p.kind is inspect.Parameter.VAR_POSITIONAL else '**'}{p.name}")
            continue
        if p.default is not inspect.Parameter.empty and q.default is inspect.Parameter.empty:
            problems.append(f"{p.name!r} has no default (callers may leave it out)")
    wanted = {p.name for p in want}
    for q in have:  # anything more the implementation asks for must be optional
        if q.name in wanted or q.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if q.default is inspect.Parameter.empty:
            problems.append(f"requires {q.name!r}, which the protocol never passes")
    return problems


def test_the_protocol_lists_what_the_tui_calls() -> None:
    members = protocol_members()
    # a few the screens cannot do without (a sanity check that the listing above finds the members)
    assert {"search", "model_info", "download", "list_runs", "follow_run", "evaluate", "predict"} <= set(members)


@pytest.mark.parametrize("backend_class", [Backend, FakeBackend], ids=lambda c: c.__name__)
def test_backends_satisfy_the_protocol(backend_class: type) -> None:
    problems: list[str] = []
    for name in protocol_members():
        impl = getattr(backend_class, name, None)
        if impl is None or not callable(impl):
            problems.append(f"{name}: missing")
            continue
        problems += [f"{name}: {p}" for p in signature_problems(getattr(BackendProtocol, name), impl)]
    assert not problems, f"{backend_class.__name__} does not satisfy BackendProtocol:\n" + "\n".join(problems)


def test_the_check_catches_a_missing_member_and_a_wrong_signature() -> None:
    class Broken:
        def search(self, text, *, task=None):  # renamed positional; no library/sort/limit/cursor
            return None

        def get_run(self, run_id, extra):  # asks for more than the protocol passes
            return None

    assert getattr(Broken, "list_runs", None) is None
    assert signature_problems(BackendProtocol.search, Broken.search)
    assert any("extra" in p for p in signature_problems(BackendProtocol.get_run, Broken.get_run))
    assert not signature_problems(BackendProtocol.get_run, Backend.get_run)
