"""Signals sent to kvmsentry itself by the host (timeout(1), a terminal).

kvmsentry forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGCONT to the guest's
foreground process group (kernel/kernel.py, host signal forwarding), so a
wrapper such as coreutils' timeout(1) ends a sandbox as it ends a native
program: SIGTERM, then SIGCONT for a stopped child.
"""

import subprocess

from conftest import DEFAULT_ENV, sentry_command


def _under_timeout(argv, env=None):
    """Run argv under `timeout 2`; returns the CompletedProcess. A sandbox
    that ignores timeout's signals fails the test after 60 s instead of
    hanging it."""
    return subprocess.run(["timeout", "2", *map(str, argv)], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def test_timeout_ends_a_stopped_guest(busybox):
    """`timeout 2 sh -c 'kill -STOP $$'`: the shell stops itself; timeout's
    SIGTERM then SIGCONT must end it, natively and under kvmsentry (124)."""
    script = ["sh", "-c", "kill -STOP $$; echo not reached"]
    native = _under_timeout([busybox, *script], env=DEFAULT_ENV)
    sentry = _under_timeout([*sentry_command(), "boot", busybox, *script])
    assert native.returncode == 124
    assert sentry.returncode == native.returncode, sentry.stderr.decode(errors="replace")
    assert sentry.stdout == native.stdout == b""


def test_timeout_ends_a_sleeping_guest(busybox):
    script = ["sh", "-c", "/bin/busybox sleep 30; echo not reached"]
    native = _under_timeout([busybox, *script], env=DEFAULT_ENV)
    sentry = _under_timeout([*sentry_command(), "boot", busybox, *script])
    assert native.returncode == 124
    assert sentry.returncode == native.returncode, sentry.stderr.decode(errors="replace")
    assert sentry.stdout == native.stdout == b""
