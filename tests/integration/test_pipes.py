"""Pipes under kvmsentry against Linux: the C guests of tests/guests/ run
natively and in the sandbox, their outputs compared."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.requires_kvm


def test_pipe_read_into_a_bad_buffer_keeps_the_bytes(guests, run_both, assert_same):
    """read(2)/readv(2) from a pipe into a bad buffer take only the pipe
    buffers stored whole; the rest stays for the next read
    (tests/guests/pipe_efault.c; fs/pipe.c pipe_read)."""
    native, sentry = run_both([guests["pipe_efault"]])
    assert b"read bad: -1 Bad address, left 8\n" in native.stdout
    assert_same(native, sentry)


def test_blocked_pipe_read_woken_by_the_writer(guests, run_both, assert_same):
    """A read(2) blocked on an empty pipe until a write fills it: short
    reads, EOF, EFAULT with the bytes kept, EINTR and SA_RESTART, a signal
    right after the wake-up taken while the reader makes no system call
    (a kick before the return to ring 3, Context._interrupted), a checked
    ping-pong, a blocked thread when its process exits
    (tests/guests/pipe_blocked_read.c)."""
    native, sentry = run_both([guests["pipe_blocked_read"]])
    assert b"signals after the wake-up, not taken within 5 s: 0\n" in native.stdout
    assert b"ping-pong: 0 bad, child 0\n" in native.stdout
    assert_same(native, sentry)
