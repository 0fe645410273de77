"""Bad arguments that break more than one rule get the errno Linux checks
first (the errno_order guest: pread64/pwrite64, sendfile, flock,
rt_sigqueueinfo, mknod, sched_getaffinity, renameat2, preadv2/pwritev2),
natively and under kvmsentry. Found by passing -1, 0 and unmapped
pointers to every syscall and comparing.
"""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_errno_order(guests, run_both, assert_same):
    native, sentry = run_both([guests["errno_order"]])
    assert native.returncode == 0, native.stderr
    assert_same(native, sentry)
