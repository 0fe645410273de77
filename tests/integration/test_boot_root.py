"""boot --root DIR: BINARY is looked up inside DIR as the guest would look
it up (openat2's RESOLVE_IN_ROOT): ".." stops at DIR's top and a
symlink's absolute target starts from DIR, as in a Debian root file
system where /usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk.
Natively the same commands run with chroot(8) when the test is root.
"""

import os
import shutil

import pytest

pytestmark = pytest.mark.requires_kvm


@pytest.fixture
def link_root(tmp_path, busybox):
    """A root with busybox and symlinks to it: absolute, relative, a loop."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "etc" / "alternatives").mkdir(parents=True)
    (root / "usr" / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "etc" / "alternatives" / "echo").symlink_to("/bin/busybox")
    (root / "usr" / "bin" / "echo").symlink_to("/etc/alternatives/echo")
    (root / "usr" / "bin" / "uname").symlink_to("../../../../../../bin/busybox")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    return root


CASES = [
    (["/usr/bin/echo", "absolute"], 0, b"absolute\n"),
    (["../../usr/bin/echo", "dotdot"], 0, b"dotdot\n"),
    (["/usr/bin/uname", "-s"], 0, b"Linux\n"),
    (["/../bin/busybox", "echo", "top"], 0, b"top\n"),
]


@pytest.mark.parametrize("argv,status,out", CASES, ids=[c[0][0] for c in CASES])
def test_root_binary_lookup(run_sentry, run_native, link_root, argv, status, out):
    sentry = run_sentry(argv, options=["--root", link_root])
    assert (sentry.returncode, sentry.stdout) == (status, out), sentry.stderr
    chroot = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")
    if os.geteuid() == 0 and chroot:
        native = run_native([chroot, link_root] + argv)
        assert (native.returncode, native.stdout) == (status, out), native.stderr


def test_root_binary_errors(run_sentry, link_root):
    """A symlink loop is 126 (ELOOP), a missing file 127; both name the
    guest path, never the host's."""
    loop = run_sentry(["/loop1"], options=["--root", link_root])
    assert loop.returncode == 126
    assert loop.stderr == b"kvmsentry: /loop1: Too many levels of symbolic links\n"
    missing = run_sentry(["/../../nothere"], options=["--root", link_root])
    assert missing.returncode == 127
    assert missing.stderr == b"kvmsentry: /../../nothere: No such file or directory\n"
