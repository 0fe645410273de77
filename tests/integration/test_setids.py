"""setuid(2) and friends, as root and as a user (boot --user), against Linux.

The setids guest changes its ids and prints them (getresuid, and getuid
which kvmsentry answers without an exit), natively as root or under
``setpriv --reuid 1000 --regid 1000 --clear-groups``, and under kvmsentry
as root or with --user 1000:1000.
"""

import os
import shutil
import tempfile

import pytest

pytestmark = pytest.mark.requires_kvm


@pytest.fixture
def workdir():
    if os.geteuid() != 0:
        pytest.skip("needs root (the native run changes ids)")
    path = tempfile.mkdtemp(prefix="kvmsentry-setids-", dir="/var/tmp")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("user", [None, "1000:1000"])
def test_setids(guests, workdir, run_native, run_sentry, assert_same, user):
    program = os.path.join(workdir, "setids")
    shutil.copy(guests["setids"], program)
    os.chmod(program, 0o755)
    prefix, options = [], []
    if user is not None:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is not installed")
        prefix = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"]
        options = ["--user", user]
    native = run_native(prefix + [program, workdir])
    sentry = run_sentry([program, "/tmp"], options=options)
    assert native.stdout.endswith(b"done\n"), native.stdout
    assert_same(native, sentry)
