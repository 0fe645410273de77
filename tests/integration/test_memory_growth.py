"""Guest memory reaches KVM in steps as the frame allocator climbs
(kvmsentry.vm.memory: 64 MiB, then doubling; kvmsentry.platform.kvm
KvmPlatform._expose_memory adds a memory slot each time), while other
vCPUs run: compared with native runs."""

import pytest

pytestmark = pytest.mark.requires_kvm

from conftest import BUSYBOX

# A second process spins on its own vCPU while dd's 96 MiB buffer (2 MiB
# pages from above the first 64 MiB slot) is written and read through a
# pipe; then a 160 MiB one reaches the next slots.
SCRIPT = (f"{BUSYBOX} yes > /dev/null & "
          f"{BUSYBOX} dd if=/dev/zero bs=96M count=1 2>/dev/null | {BUSYBOX} md5sum; "
          f"{BUSYBOX} dd if=/dev/zero bs=160M count=1 2>/dev/null | {BUSYBOX} wc -c; "
          "kill $!; echo done")


def test_memory_slots_added_while_another_vcpu_runs(run_both, assert_same):
    native, sentry = run_both([BUSYBOX, "sh", "-c", SCRIPT])
    assert native.returncode == 0, native.stderr
    assert native.stdout.endswith(b"167772160\ndone\n")
    assert_same(native, sentry)
