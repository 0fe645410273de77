"""signalfd(2) with threads, fork, exec, epoll and POSIX timers
(tests/guests/signalfd_threads.c): which thread's pending signals a read
takes, a timer's real-time signal pending once with its overrun count,
close(2) during a blocked read, lseek, the order of signalfd4's errors;
compared with native runs (glibc and musl)."""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_signalfd_threads(guests, run_both, assert_same):
    native, sentry = run_both([guests["signalfd_threads"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"overrun above 0 1" in native.stdout
    assert_same(native, sentry)
