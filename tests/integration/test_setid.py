"""setuid, setgid, setreuid, setregid, setresuid, setresgid (kernel/sys.c):
the setid guest natively and under kvmsentry, same output and status, with
gcc and musl builds. Both start as uid 0 (the sandbox's default identity),
so the native run needs root."""

import os

import pytest

pytestmark = pytest.mark.requires_kvm


def test_setid(guests, run_native, run_sentry, assert_same):
    if os.geteuid() != 0:
        pytest.skip("the native run must start as root, as the sandbox does")
    native = run_native([guests["setid"]])
    sentry = run_sentry([guests["setid"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"seteuid(0)                   rc  0 -      uid 1000/0/0" in native.stdout
    assert_same(native, sentry)
