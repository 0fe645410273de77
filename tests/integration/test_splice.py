"""splice(2), tee(2), vmsplice(2), syncfs(2) (kernel/syscalls/splice.py):
the splice_tee guest natively and under kvmsentry, same output and status,
with gcc and musl builds: the bytes each call moves, offsets, and the
errnos in fs/splice.c's order."""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_splice_tee_vmsplice(guests, run_both, assert_same):
    native, sentry = run_both([guests["splice_tee"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"[ABClo world]" in native.stdout
    assert_same(native, sentry)
