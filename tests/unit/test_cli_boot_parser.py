"""``kvmsentry boot`` parses its command line with a parser holding only
the boot subcommand (kvmsentry.cli._parser(("boot",))): what it accepts,
its help and its errors are the whole parser's."""

import contextlib
import io

import pytest

from kvmsentry import cli

ALL = ("boot", "syscalls", "bench")


def _outcome(parser_of, argv):
    """(namespace or None, exit status or None, stdout, stderr) of parsing
    ``argv`` with ``parser_of()`` and main()'s own checks (its errors are
    the parser's)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parser_of().parse_args(argv)
            if args.command == "boot" and any("=" not in e for e in args.env):
                parser_of().error("--env: expected K=V")
        except SystemExit as e:
            return None, e.code, out.getvalue(), err.getvalue()
    return vars(args), None, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", [
    ["boot", "/bin/true"],
    ["boot", "--strace", "--memory", "64M", "--env", "A=1", "/bin/sh", "-c", "echo hi"],
    ["boot", "--mem", "64M", "/bin/true"],        # an abbreviated option
    ["boot", "--memory", "1x", "/bin/true"],       # the boot subparser's error
    ["boot", "--bogus", "/bin/true"],              # the top parser's error (unrecognized)
    ["boot"],                                      # BINARY missing
    ["boot", "--env", "novalue", "/bin/true"],     # main()'s check
    ["boot", "-h"],
    ["boot", "--syscall-path", "nope", "/bin/true"],
])
def test_boot_only_parser_is_the_whole_parser(argv, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    whole = _outcome(lambda: cli._parser(ALL), argv)
    boot_only = _outcome(lambda: cli._parser(("boot",)), argv)
    assert boot_only == whole


def test_main_builds_boot_only_for_boot(monkeypatch):
    built = []
    real = cli._parser
    monkeypatch.setattr(cli, "_parser", lambda commands=ALL: built.append(commands) or real(commands))
    with pytest.raises(SystemExit):
        cli.main(["boot", "--bogus", "/bin/true"])
    # the boot-only parser, then the whole one for its error's usage line
    assert built == [("boot",), ALL]
    built.clear()
    with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        cli.main(["--help"])
    assert built == [ALL]
