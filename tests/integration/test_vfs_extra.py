"""memfd_create, copy_file_range, flock and FIFOs (issue 3): the vfs_extra
guest natively (in a pytest tmp directory) and under kvmsentry (in the
guest's /tmp), same output and status, with gcc and musl builds."""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_vfs_extra(guests, run_native, run_sentry, assert_same, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    native = run_native([guests["vfs_extra"], work])
    sentry = run_sentry([guests["vfs_extra"], "/tmp"])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"fifo read 8 via fifo" in native.stdout
    assert_same(native, sentry)
