"""boot --user UID:GID: permission checks as Linux makes them (issue 3).

The perm_user guest runs as uid/gid 1000 natively (``setpriv --reuid
--regid --clear-groups``, so the test needs root) and under kvmsentry
with ``--user 1000:1000``, each in its own copy of a directory this test
makes as root beneath /var/tmp (root-owned files of known modes, see
tests/guests/perm_user.c). The sandbox sees its copy through the
read-only root overlay: host files keep their host owners, and its
changes stay in memory.
"""

import os
import shutil
import tempfile

import pytest

pytestmark = pytest.mark.requires_kvm

UID = GID = 1000


def make_tree(base, program):
    """The guest's directory: root-owned entries of known modes, plus one of uid 1000."""
    os.chmod(base, 0o1777)

    def put(name, mode, data=b"data\n", owner=(0, 0)):
        path = os.path.join(base, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, *owner)
        os.chmod(path, mode)

    def mkdir(name, mode, owner=(0, 0)):
        path = os.path.join(base, name)
        os.mkdir(path)
        os.chown(path, *owner)
        os.chmod(path, mode)

    put("rootfile", 0o644)
    put("secret", 0o600)
    put("shared", 0o666)
    put("mine", 0o644, owner=(UID, GID))
    mkdir("rootdir", 0o755)
    put("rootdir/f", 0o644)
    mkdir("closed", 0o700)
    put("closed/f", 0o644)
    mkdir("searchonly", 0o711)
    put("searchonly/f", 0o644)
    mkdir("groupdir", 0o770, owner=(0, GID))
    mkdir("sticky", 0o1777)
    put("sticky/rootf", 0o666)
    binary = open(program, "rb").read()
    put("prog700", 0o700, binary)
    put("prog755", 0o755, binary)
    put("runme", 0o755, binary)


@pytest.fixture
def trees():
    """Two fresh directories beneath /var/tmp (reachable by uid 1000)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (setpriv to uid 1000, chown of the fixture files)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    made = [tempfile.mkdtemp(prefix="kvmsentry-perm-", dir="/var/tmp") for _ in range(2)]
    yield made
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def test_user_permissions(guests, trees, run_native, run_sentry, assert_same):
    native_dir, sentry_dir = trees
    for base in trees:
        make_tree(base, guests["perm_user"])
    native = run_native(["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups",
                         os.path.join(native_dir, "runme"), native_dir])
    before = sorted(os.listdir(sentry_dir))
    sentry = run_sentry([os.path.join(sentry_dir, "runme"), sentry_dir],
                        options=["--user", f"{UID}:{GID}"])
    assert native.stdout.startswith(b"ids 1000 1000 1000 1000\n"), native.stdout
    assert native.stdout.endswith(b"done\n")
    assert_same(native, sentry)
    assert sorted(os.listdir(sentry_dir)) == before  # the host copy is untouched


def test_root_is_the_default(guests, trees, run_sentry):
    """Without --user the guest is root: the same tree, every check passes
    but executing a file without x bits."""
    make_tree(trees[0], guests["perm_user"])
    sentry = run_sentry([os.path.join(trees[0], "runme"), trees[0]])
    out = sentry.stdout.decode()
    assert out.startswith("ids 0 0 0 0\n") and out.endswith("done\n"), out
    assert 'open("secret", O_RDONLY) = fd' in out
    assert 'unlink("sticky/rootf") = 0' in out


XATTR_SCRIPT = """
import os, sys
for path in sys.argv[1:]:
    for name in ("security.selinux", "system.posix_acl_access", "user.x", "trusted.x"):
        try:
            print(path, "get", name, os.getxattr(path, name))
        except OSError as e:
            print(path, "get", name, e.errno)
    try:
        os.setxattr(path, "security.foo", b"v")
        print(path, "set security.foo ok")
    except OSError as e:
        print(path, "set security.foo", e.errno)
"""


def test_user_security_xattrs(trees, run_native, run_sentry, assert_same):
    """security. and system. xattrs take no file permission (fs/xattr.c
    xattr_permission) and need CAP_SYS_ADMIN to set: `ls -ld` of a 0700
    root directory as uid 1000 says nothing on stderr (it reads
    security.selinux and the ACLs), as natively."""
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no /usr/bin/python3")
    native_dir, sentry_dir = trees
    for base in trees:
        os.chmod(base, 0o755)
        closed = os.path.join(base, "closed")
        os.mkdir(closed, 0o700)
        mine = os.path.join(base, "mine")
        open(mine, "wb").close()
        os.chown(mine, UID, GID)
        os.utime(closed, (0, 0))
    argv = ["/bin/ls", "-ld", "--time-style=+", "closed"]
    setpriv = ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups"]
    native = run_native(setpriv + argv, cwd=native_dir)
    sentry = run_sentry(argv, cwd=sentry_dir, options=["--user", f"{UID}:{GID}"])
    assert native.returncode == 0 and native.stderr == b"", native.stderr
    assert_same(native, sentry)
    argv = ["/usr/bin/python3", "-c", XATTR_SCRIPT, "closed", "mine"]
    native = run_native(setpriv + argv, cwd=native_dir)
    sentry = run_sentry(argv, cwd=sentry_dir, options=["--user", f"{UID}:{GID}"])
    assert_same(native, sentry)
