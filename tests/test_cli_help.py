"""Every `trailcam` help page renders: each flag's help text reaches the page as written."""
from __future__ import annotations

import argparse

import pytest

from trailcam_cli import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_help_string_renders_as_written(command):
    parser = _subparsers()[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.help or action.help == argparse.SUPPRESS:
            continue
        shown = formatter._expand_help(action)          # what --help prints for this flag
        written = action.help.replace("%%", "%")
        if "%(" not in written:                         # no deliberate %(default)s placeholders
            assert shown == written, f"{command} {action.option_strings}: help renders as {shown[:120]!r}"
    text = parser.format_help()
    assert text.startswith(f"usage: trailcam {command}") and "'option_strings'" not in text


def test_train_help_shows_the_percent_sign(capsys):
    from trailcam_cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "about 20% slower" in out and "dest" not in out
