"""Large argument lists, natively and under kvmsentry: Linux's limits are
MAX_ARG_STRLEN (128 KiB per string with its NUL) and a quarter of the
stack rlimit for all of them (2 MiB), fs/exec.c; the stack grows to
hold them (setup_arg_pages), not just the first 128 KiB.
"""

import os

import pytest

pytestmark = pytest.mark.requires_kvm

NUMBERS = [str(i) for i in range(1, 20001)]  # ~110 KB of strings, 160 KB with pointers


def test_boot_many_args(busybox, run_both, assert_same):
    native, sentry = run_both([busybox, "echo", *NUMBERS])
    assert native.returncode == 0
    assert_same(native, sentry)


SCRIPT = """
B=/bin/busybox
$B echo $($B seq 1 20000) | $B md5sum
$B echo $($B seq 1 300000) | $B md5sum
x=$($B head -c 131072 /dev/zero | $B tr '\\0' a)
$B true "$x"; echo "one string of 128 KiB: $?"
$B true "${x%a}"; echo "one string of 128 KiB - 1: $?"
"""


def test_execve_arg_limits(busybox, run_both, assert_same):
    """execve from the guest: 20,000 arguments run; 2 MiB of them and one
    string of 128 KiB without room for its NUL are E2BIG (not ENAMETOOLONG)."""
    if not os.path.exists("/bin/bash"):
        pytest.skip("no /bin/bash")
    native, sentry = run_both(["/bin/bash", "-c", SCRIPT])
    assert b"Argument list too long" in native.stderr
    assert_same(native, sentry)
