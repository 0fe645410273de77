"""kvmsentry's help text is laid out for the terminal's width, found as
shutil.get_terminal_size finds it ($COLUMNS, else stdout's terminal, else
80) without importing shutil (kvmsentry.cli._HelpFormatter)."""

import shutil

from kvmsentry import cli


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_columns_from_the_environment(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    assert cli._terminal_columns() == 60 == shutil.get_terminal_size().columns
    assert _widest(cli._parser().format_help()) <= 60


def test_bad_or_missing_columns_fall_back_like_shutil(monkeypatch):
    for value in ("0", "-3", "wide"):
        monkeypatch.setenv("COLUMNS", value)
        assert cli._terminal_columns() == shutil.get_terminal_size().columns
    monkeypatch.delenv("COLUMNS")
    assert cli._terminal_columns() == shutil.get_terminal_size().columns


def test_help_is_argparse_own_layout(monkeypatch):
    """Each parser's help is what argparse's stock formatter (which asks
    shutil) lays out for the same width."""
    import argparse
    for columns in ("50", "100"):
        monkeypatch.setenv("COLUMNS", columns)
        parser = cli._parser()
        subparsers = next(a for a in parser._actions if a.dest == "command")
        for sub in [parser, *subparsers.choices.values()]:
            assert sub.formatter_class is cli._HelpFormatter, sub.prog
            ours = sub.format_help()
            sub.formatter_class = argparse.HelpFormatter
            assert ours == sub.format_help(), sub.prog
