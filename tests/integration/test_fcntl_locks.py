"""fcntl(2) record locks with the C library's struct flock (found by LTP's
fcntl05/fcntl11/fcntl14/fcntl17-21: l_start, l_len and l_pid were read and
written 4 bytes early): the fcntl_locks guest natively and under
kvmsentry, same output and status, with gcc and musl builds."""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_fcntl_locks(guests, run_native, run_sentry, assert_same, tmp_path):
    native = run_native([guests["fcntl_locks"], tmp_path])
    sentry = run_sentry([guests["fcntl_locks"], "/tmp"])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"len 5 owner_is_parent 1" in native.stdout
    assert_same(native, sentry)
