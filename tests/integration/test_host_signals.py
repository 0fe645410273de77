"""Signals sent to kvmsentry itself by the host (timeout(1), a terminal).

kvmsentry forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGCONT to the guest's
foreground process group (kernel/kernel.py, host signal forwarding), so a
wrapper such as coreutils' timeout(1) ends a sandbox as it ends a native
program: SIGTERM, then SIGCONT for a stopped child.
"""

import subprocess

import pytest

from conftest import DEFAULT_ENV, sentry_command


def _under_timeout(argv, env=None):
    """Run argv under `timeout 2`; returns the CompletedProcess. A sandbox
    that ignores timeout's signals fails the test after 60 s instead of
    hanging it."""
    return subprocess.run(["timeout", "2", *map(str, argv)], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


@pytest.mark.parametrize("script", [
    "kill -STOP $$; echo not reached",
    "/bin/busybox sleep 30; echo not reached",
], ids=["stopped", "sleeping"])
def test_timeout_ends_the_guest(busybox, script):
    """`timeout 2 sh -c SCRIPT`: timeout's SIGTERM (then SIGCONT, for the
    shell that stopped itself) must end it, natively and under kvmsentry
    (status 124, no output)."""
    argv = ["sh", "-c", script]
    native = _under_timeout([busybox, *argv], env=DEFAULT_ENV)
    sentry = _under_timeout([*sentry_command(), "boot", busybox, *argv])
    assert native.returncode == 124
    assert sentry.returncode == native.returncode, sentry.stderr.decode(errors="replace")
    assert sentry.stdout == native.stdout == b""
