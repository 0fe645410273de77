"""signalfd(2) (tests/guests/signalfd.c): blocked signals read as struct
signalfd_siginfo (kill, sigqueue's value, a child's exit status, several
per read), a blocking read woken by another process's kill, poll and epoll
readiness, a mask changed in place, rt_tgsigqueueinfo, and the errors,
compared with native runs (glibc and musl)."""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_signalfd(guests, run_both, assert_same):
    native, sentry = run_both([guests["signalfd"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"SIGCHLD: signo 17 code 1 pid-is-child 1 status 3" in native.stdout
    assert_same(native, sentry)
