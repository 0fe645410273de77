"""Memory-management churn (tests/guests/mm_churn.c): mmap/munmap reuse,
mprotect, mremap growth, madvise(MADV_DONTNEED), brk, large malloc/free,
static glibc and static musl, compared with native runs."""

import pytest

pytestmark = pytest.mark.requires_kvm

CHECKS = ["brk", "mmap-reuse", "mprotect", "mremap", "madvise", "malloc-churn"]


def test_mm_churn(guests, run_both, assert_same):
    native, sentry = run_both([guests["mm_churn"]])
    assert native.returncode == 0, native.stdout.decode(errors="replace")
    assert native.stdout.decode() == "".join(f"{name} ok\n" for name in CHECKS) + "ok\n"
    assert_same(native, sentry)


def test_mm_threads(guests, run_both, assert_same):
    """Threads of several processes mapping, checking and unmapping at once
    (tests/guests/mm_threads.c): a frame must not be reused while another
    vCPU of the process may still reach it (AddressSpace.defer_release)."""
    native, sentry = run_both([guests["mm_threads"]])
    assert native.returncode == 0, native.stdout.decode(errors="replace")
    assert_same(native, sentry)
