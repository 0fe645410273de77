"""Shared futexes across processes (found by LTP's fcntl15, whose
checkpoints wait and wake on a MAP_SHARED word from different processes):
the futex_shared guest natively and under kvmsentry, same output and
status, with gcc and musl builds."""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_futex_shared(guests, run_native, run_sentry, assert_same, tmp_path):
    native = run_native([guests["futex_shared"], tmp_path])
    sentry = run_sentry([guests["futex_shared"], "/tmp"])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"anonymous: woken 1 child woken" in native.stdout
    assert b"anonymous private: woken 0 child timed out" in native.stdout
    assert_same(native, sentry)


def test_blocked_futex_wait_woken_by_the_waker(guests, run_both, assert_same):
    """FUTEX_WAIT blocked until FUTEX_WAKE: wake counts, EINTR, a signal
    right after the wake-up taken while the woken thread makes no system
    call, a ping-pong, pthread_join (tests/guests/futex_blocked_wait.c)."""
    native, sentry = run_both([guests["futex_blocked_wait"]])
    assert b"woken: 2 then 1\n" in native.stdout
    assert b"signals after the wake-up, not taken within 5 s: 0\n" in native.stdout
    assert_same(native, sentry)
