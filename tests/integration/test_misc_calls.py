"""Calls a program makes in passing (tests/guests/misc_calls.c): mlockall,
munlockall, mlock2, mincore, readahead, sync_file_range, personality,
setgroups and getgroups (with a supplementary group's file permission),
their errors included, compared with native runs as root."""

import os

import pytest

pytestmark = pytest.mark.requires_kvm


def test_misc_calls(guests, run_both, assert_same):
    if os.geteuid() != 0:
        pytest.skip("setgroups and chown natively need root")
    native, sentry = run_both([guests["misc_calls"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"Groups:\t10 20 30 \n" in native.stdout
    assert_same(native, sentry)


def test_mincore_over_a_large_reservation(guests, run_both, assert_same):
    """mincore(2) of 16 M pages (tests/guests/mincore_big.c): the answer is
    built a VMA and a piece of vec at a time, not one byte per page in one
    buffer as long as the range."""
    native, sentry = run_both([guests["mincore_big"]])
    assert native.stdout == b"mincore = 0 sum 1 at 1\npast the end = -1 errno 12\n"
    assert_same(native, sentry)
