"""--mount HOST:GUEST[:ro|rw]: bind mounts of host directories (vfs.mount, vfs.hostbind)."""

import errno
import os

import pytest

from kvmsentry import cli
from kvmsentry.kernel import files as F
from kvmsentry.kernel.fd import O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, FdTable
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.task import Process, Task
from kvmsentry.kernel.vfs.mount import Bind, MountNamespace

from fakes import FakeMM


@pytest.fixture
def dirs(tmp_path):
    root = tmp_path / "root"
    (root / "mnt").mkdir(parents=True)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "hello.txt").write_bytes(b"hello\n")
    (data / "abs").symlink_to("/etc")
    (data / "up").symlink_to("../../..")
    (tmp_path / "secret").write_bytes(b"SECRET")
    return tmp_path, root, data


def make_task(root, binds):
    proc = Process(root=str(root), exe="/bin/prog", cwd="/")
    proc.mounts = MountNamespace.for_host_root(str(root), binds)
    return Task(tid=1, process=proc, mm=FakeMM(), fds=FdTable())


def errno_of(fn, *args, **kwargs):
    with pytest.raises(SyscallError) as info:
        fn(*args, **kwargs)
    return info.value.errno


def test_ro_bind_reads_and_refuses_changes(dirs):
    tmp, root, data = dirs
    task = make_task(root, [Bind(str(data), "/mnt/data", False)])
    f = F.open_path(task, F.AT_FDCWD, b"/mnt/data/hello.txt", O_RDONLY)
    assert f.read(100) == b"hello\n"
    for flags in (O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_CREAT):
        assert errno_of(F.open_path, task, F.AT_FDCWD, b"/mnt/data/hello.txt", flags) == errno.EROFS
    assert errno_of(F.open_path, task, F.AT_FDCWD, b"/mnt/data/new", O_WRONLY | O_CREAT) == errno.EROFS
    assert errno_of(F.do_mkdir, task, F.AT_FDCWD, b"/mnt/data/d", 0o755) == errno.EROFS
    assert errno_of(F.do_mkdir, task, F.AT_FDCWD, b"/mnt/data/sub", 0o755) == errno.EEXIST
    assert errno_of(F.do_unlink, task, F.AT_FDCWD, b"/mnt/data/hello.txt") == errno.EROFS
    node = F.lookup(task, F.AT_FDCWD, b"/mnt/data")
    assert errno_of(F.writable_inode, node) == errno.EROFS
    assert sorted(os.listdir(data)) == ["abs", "hello.txt", "sub", "up"]
    assert (data / "hello.txt").read_bytes() == b"hello\n"
    assert b"/mnt/data overlay ro,relatime" in F.proc_mounts(task)


def test_rw_bind_writes_through(dirs):
    tmp, root, data = dirs
    task = make_task(root, [Bind(str(data), "/mnt/data", True)])
    f = F.open_path(task, F.AT_FDCWD, b"/mnt/data/new.txt", O_WRONLY | O_CREAT, 0o644)
    assert f.write(b"from guest") == 10
    f.release()
    assert (data / "new.txt").read_bytes() == b"from guest"
    f = F.open_path(task, F.AT_FDCWD, b"/mnt/data/hello.txt", O_WRONLY | O_TRUNC)
    f.write(b"x")
    f.release()
    assert (data / "hello.txt").read_bytes() == b"x"
    F.do_mkdir(task, F.AT_FDCWD, b"/mnt/data/d", 0o755)
    assert (data / "d").is_dir()
    F.do_rename(task, F.AT_FDCWD, b"/mnt/data/new.txt", F.AT_FDCWD, b"/mnt/data/d/n.txt")
    assert (data / "d" / "n.txt").read_bytes() == b"from guest"
    F.do_symlink(task, b"/etc/passwd", F.AT_FDCWD, b"/mnt/data/ln")
    assert os.readlink(data / "ln") == "/etc/passwd"
    F.set_mode(F.writable_inode(F.lookup(task, F.AT_FDCWD, b"/mnt/data/hello.txt")), 0o600)
    assert (data / "hello.txt").stat().st_mode & 0o777 == 0o600
    F.do_unlink(task, F.AT_FDCWD, b"/mnt/data/d/n.txt")
    F.do_rmdir(task, F.AT_FDCWD, b"/mnt/data/d")
    assert not (data / "d").exists()
    # EXDEV between the bind mount and the root.
    assert errno_of(F.do_rename, task, F.AT_FDCWD, b"/mnt/data/hello.txt",
                    F.AT_FDCWD, b"/moved") == errno.EXDEV
    assert b"/mnt/data hostbind rw,relatime" in F.proc_mounts(task)


def test_rw_bind_cannot_escape(dirs):
    tmp, root, data = dirs
    task = make_task(root, [Bind(str(data), "/mnt/data", True)])
    # ".." leaves the mount into the guest root, never the host's parent.
    node = F.lookup(task, F.AT_FDCWD, b"/mnt/data/../../..", follow=True)
    assert node.guest_path == b"/"
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/mnt/data/../../secret") == errno.ENOENT
    # An absolute symlink resolves in the guest root: writing through it
    # lands in the overlay's memory, not on the host.
    F.do_symlink(task, b"/escape", F.AT_FDCWD, b"/mnt/data/esc")
    f = F.open_path(task, F.AT_FDCWD, b"/mnt/data/esc", O_WRONLY | O_CREAT, 0o644)
    f.write(b"no")
    f.release()
    assert not (root / "escape").exists() and not os.path.exists("/escape")
    f = F.open_path(task, F.AT_FDCWD, b"/mnt/data/up/secret", O_WRONLY | O_CREAT, 0o644)
    f.release()
    assert (tmp / "secret").read_bytes() == b"SECRET"
    assert not (tmp.parent / "secret").exists()


def test_mount_point_is_made_and_listed(dirs):
    tmp, root, data = dirs
    task = make_task(root, [Bind(str(data), "/opt/x/data", False)])
    f = F.open_path(task, F.AT_FDCWD, b"/opt/x/data/hello.txt", O_RDONLY)
    assert f.read(10) == b"hello\n"
    assert F.lookup(task, F.AT_FDCWD, b"/opt/x").is_dir()
    assert not (root / "opt").exists()


@pytest.mark.parametrize("spec, message", [
    ("{d}", "expected HOST:GUEST"),
    ("{d}:/a:xx", "must be ro or rw"),
    ("{d}:rel", "must be absolute"),
    ("{d}/nope:/a", "not a directory"),
    ("{d}:/proc/x", "cannot mount over"),
    ("{d}:/", "cannot mount over"),
    ("{d}:/x/../../y", "must not contain .."),
])
def test_cli_rejects_bad_mounts(tmp_path, capsys, spec, message):
    with pytest.raises(SystemExit) as info:
        cli.main(["boot", "--mount", spec.format(d=tmp_path), "/bin/true"])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_parses_mounts(tmp_path):
    parser = cli._parser()
    b = cli._parse_mount(parser, f"{tmp_path}:/mnt/data/:rw")
    assert b == Bind(os.path.realpath(tmp_path), "/mnt/data", True)
    assert cli._parse_mount(parser, f"{tmp_path}:/m").rw is False


def test_cli_resolves_in_the_sandbox(tmp_path):
    """The binary and --cwd are found as the guest would find them:
    beneath a --mount's guest path (deepest mount wins), inside --root."""
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "inner").mkdir()
    (tmp_path / "root" / "etc").mkdir(parents=True)
    parser = cli._parser()
    args = parser.parse_args(["boot", "--cwd", "/w/sub", "/bin/true"])
    args.binds = [cli._parse_mount(parser, f"{tmp_path / 'data'}:/w"),
                  cli._parse_mount(parser, f"{tmp_path / 'inner'}:/w/sub/in")]
    assert cli._resolve_in_guest(args, "/w/sub") == str(tmp_path / "data" / "sub")
    assert cli._resolve_in_guest(args, "/w/sub/in/x") == str(tmp_path / "inner" / "x")
    assert cli._resolve_in_guest(args, "/w/sub/../..") == "/"
    args.binary = "../prog"
    assert cli._host_path(args) == str(tmp_path / "data" / "prog")
    rooted = parser.parse_args(["boot", "--root", str(tmp_path / "root"), "--cwd", "etc", "x"])
    rooted.binds = []
    assert cli._guest_cwd(rooted) == "/etc"
    assert cli._host_path(rooted) == str(tmp_path / "root" / "etc" / "x")
