"""The edges of calls programs make in passing (tests/guests/misc_edges.c):
personality(2)'s effects on uname(2) and on execve (READ_IMPLIES_EXEC
dropped, ADDR_NO_RANDOMIZE's fixed layout); mincore(2) across a hole,
mlock(2) and mlock2(2) lengths, flags and PROT_NONE; readahead(2) and
sync_file_range(2) errors; setgroups(2) with the gid -1 (as root);
system call numbers above 32 bits; compared with native runs."""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_misc_edges(guests, run_both, assert_same):
    native, sentry = run_both([guests["misc_edges"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"two execs map at the same address 1" in native.stdout
    # kvmsentry names the number -1 on stderr (unsupported syscall).
    assert_same(native, sentry, stderr=False)
