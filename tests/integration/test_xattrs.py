"""Extended attributes on tmpfs, the overlay and descriptors (issue 3).

The xattrs guest sets, reads, lists and removes user., trusted. and
security. attributes (with every errno of fs/xattr.c it can reach as
root) natively in a fresh directory beneath the host's /dev/shm (a
tmpfs, as the sandbox's) and under kvmsentry in /dev/shm, /tmp and an
empty host directory seen through the overlay: same output. The host
directory stays empty.
"""

import os
import shutil
import tempfile

import pytest

pytestmark = pytest.mark.requires_kvm


@pytest.fixture
def shm_dir():
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm on this host")
    path = tempfile.mkdtemp(prefix="kvmsentry-xattr-", dir="/dev/shm")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("where", ["/dev/shm", "/tmp", "overlay"])
def test_xattrs(guests, run_native, run_sentry, assert_same, shm_dir, tmp_path, where):
    native = run_native([guests["xattrs"], shm_dir])
    if native.returncode == 0 and b"= -1 EOPNOTSUPP\n" in native.stdout.split(b"\n", 1)[0] + b"\n":
        pytest.skip("the host's tmpfs has no user xattrs")
    if where == "overlay":
        where = tmp_path / "host"
        where.mkdir()
    sentry = run_sentry([guests["xattrs"], where])
    assert native.returncode == 0 and native.stdout.endswith(b"\ndone\n"), native.stdout
    assert_same(native, sentry)
    if where not in ("/dev/shm", "/tmp"):
        assert list(where.iterdir()) == []
