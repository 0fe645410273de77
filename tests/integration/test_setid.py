"""setuid, setgid, setreuid, setregid, setresuid, setresgid (kernel/sys.c),
the capability sets that follow them and execve (security/commoncap.c),
capget and capset (kernel/capability.c), O_NOATIME for the owner only
(fs/namei.c may_open): the setid guest natively and
under kvmsentry, same output and status, with gcc and musl builds. Both
start as uid 0 (the sandbox's default identity), so the native run needs
root. The guest leaves CAP_SYS_RESOURCE out of what it prints: a root
shell in a container may not have it, the sandbox starts with every
capability."""

import os
import shutil
import tempfile

import pytest

pytestmark = pytest.mark.requires_kvm


def test_setid(guests, toolchain, run_native, run_sentry, assert_same):
    if os.geteuid() != 0:
        pytest.skip("the native run must start as root, as the sandbox does")
    # The guest re-executes itself with euid 1000: natively every directory
    # on the way must be searchable by uid 1000 (pytest's are 0700), so it
    # runs from a copy directly in /var/tmp (mode 1777).
    fd, binary = tempfile.mkstemp(prefix=f"kvmsentry-setid-{toolchain}-", dir="/var/tmp")
    os.close(fd)
    try:
        shutil.copyfile(guests["setid"], binary)
        os.chmod(binary, 0o755)
        native = run_native([binary])
        sentry = run_sentry([binary])
    finally:
        os.unlink(binary)
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"seteuid(0)                   rc  0 -      uid 1000/0/0" in native.stdout
    assert b"after execve                 rc  0 -      uid 0/1000/1000 gid 0/50/50 cap 0/" in native.stdout
    assert b"open_noatime(path)           rc -1 EPERM  uid 0/1000/0" in native.stdout  # not the owner
    assert_same(native, sentry)
