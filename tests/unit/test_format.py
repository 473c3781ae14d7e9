"""hubmgr.format: one way to write sizes, counts, durations and error lines, shared by the CLI and the TUI."""

from __future__ import annotations

from hubmgr.format import duration, error_summary, first_line, human_bytes, human_count, one_line, plural


def test_sizes_are_decimal_like_the_hf_cli_and_the_same_in_the_cli_and_the_tui() -> None:
    from hubmgr.cli import output
    from hubmgr.tui import format as tui_format

    assert human_bytes(93_200) == "93.2 KB" and human_bytes(512) == "512 B" and human_bytes(1_500_000) == "1.5 MB"
    assert human_bytes(None) == "-" and human_bytes(3 * 10**12) == "3.0 TB"
    assert output.human_bytes is human_bytes is tui_format.human_bytes
    assert output.human_count is human_count is tui_format.human_count
    assert human_count(22_700_000) == "22.7M" and human_count(950) == "950" and human_count(1234) == "1.2k"


def test_duration_is_clock_style_everywhere() -> None:
    from hubmgr.tui import format as tui_format

    assert (duration(5), duration(75), duration(3700)) == ("0:05", "1:15", "1:01:40")
    assert duration(None) == duration(float("nan")) == duration(float("inf")) == "-"
    assert tui_format.duration is duration


def test_error_lines() -> None:
    assert first_line(ValueError("bad value\nmore detail")) == "bad value."
    assert first_line(ValueError("")) == "ValueError."
    assert first_line(ValueError("ends well.")) == "ends well."
    assert len(first_line(ValueError("x" * 500))) == 200
    assert error_summary(KeyError("col")) == "KeyError: 'col'" and error_summary(RuntimeError()) == "RuntimeError"
    assert one_line("a\n  b\tc") == "a b c" and one_line("abcdef", 4) == "abc…"


def test_plural_says_one_thing_or_many() -> None:
    assert plural(1, "evaluation") == "1 evaluation"
    assert plural(2, "evaluation") == "2 evaluations"
    assert plural(0, "entry", "entries") == "0 entries"
