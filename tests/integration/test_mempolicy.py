"""get_mempolicy(2) and set_mempolicy(2) (tests/guests/mempolicy.c): the
calls procps' ps and libnuma make, every mode and flag, their errors and
the masks written back, compared with native runs. The sandbox answers as
a machine with one NUMA node, so the comparison needs a host with one."""

import pathlib

import pytest

pytestmark = pytest.mark.requires_kvm


def test_mempolicy(guests, run_both, assert_same):
    possible = pathlib.Path("/sys/devices/system/node/possible")
    if possible.exists() and possible.read_text().strip() != "0":
        pytest.skip(f"the host has NUMA nodes {possible.read_text().strip()}; the sandbox has one")
    native, sentry = run_both([guests["mempolicy"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"get mems allowed = 0 mode 0 mask 0x1" in native.stdout
    assert_same(native, sentry)
