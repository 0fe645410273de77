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
