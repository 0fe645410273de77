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
