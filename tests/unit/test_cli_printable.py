"""The CLI never prints partner text raw to a terminal: control characters and bidi overrides are escaped."""

from __future__ import annotations

import argparse

import pytest

from cli.main import _emit, printable, table


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # set the terminal's title
        ("\x1b[2J", "\\x1b[2J"),  # clear the screen
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # right-to-left override
        ("a\x00b\x7f", "a\\x00b\\x7f"),
        ("Müller & Söhne 東京", "Müller & Söhne 東京"),
    ],
)
def test_printable(raw, shown):
    assert printable(raw) == shown


def test_a_table_cell_stays_on_its_line_and_text_keeps_our_newlines(capsys):
    assert table(("NOTE",), [("two\nlines\r",)]).splitlines() == ["NOTE", "two\\x0alines\\x0d"]
    _emit(argparse.Namespace(json=False), {}, "order ORD-1\nnote \x1b[31mred\x1b[0m")
    assert capsys.readouterr().out == "order ORD-1\nnote \\x1b[31mred\\x1b[0m\n"
    _emit(argparse.Namespace(json=True), {"note": "\x1b[31m"}, "")
    assert "\\u001b[31m" in capsys.readouterr().out
