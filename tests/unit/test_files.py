"""Guest path resolution beneath a temporary guest root (kvmsentry.kernel.files)."""

import errno
import os
import stat

import pytest

from kvmsentry.kernel import files as F
from kvmsentry.kernel.fd import (
    O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH, O_RDONLY, O_RDWR,
    O_TRUNC, O_WRONLY, DevNull, FdTable, HostFile, HostStream,
)
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.task import Process, Task

from fakes import FakeMM


GUEST_PASSWD = b"guest:x:0:0::/:/bin/sh\n"


@pytest.fixture
def root(tmp_path):
    """A guest root with escapes planted in it; a secret next to it."""
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_bytes(GUEST_PASSWD)
    (r / "dir" / "sub").mkdir(parents=True)
    (r / "dir" / "sub" / "file.txt").write_bytes(b"file")
    (r / "bin").mkdir()
    (r / "bin" / "prog").write_bytes(b"\x7fELF")
    (r / "bin" / "prog").chmod(0o755)
    (tmp_path / "secret").write_bytes(b"SECRET")
    (r / "abs_passwd").symlink_to("/etc/passwd")
    (r / "climb").symlink_to("../../../../../..")
    (r / "to_secret").symlink_to("../secret")
    (r / "abs_secret").symlink_to(str(tmp_path / "secret"))
    (r / "loop1").symlink_to("loop2")
    (r / "loop2").symlink_to("loop1")
    (r / "dangling").symlink_to("/nonexistent")
    (r / "dirlink").symlink_to("dir/sub")
    (r / "filelink").symlink_to("dir/sub/file.txt")
    return r


@pytest.fixture
def task(root):
    proc = Process(root=str(root), exe="/bin/prog", cwd="/")
    return Task(tid=1, process=proc, mm=FakeMM(), fds=FdTable())


def errno_of(fn, *args, **kwargs):
    with pytest.raises(SyscallError) as info:
        fn(*args, **kwargs)
    return info.value.errno


def read_all(file):
    data = file.read(1 << 16)
    file.release()
    return data


def host_open(task, path, flags=O_RDONLY, dirfd=F.AT_FDCWD):
    return F.open_path(task, dirfd, path, flags)


def test_absolute_and_relative(task, root):
    assert read_all(host_open(task, b"/etc/passwd")) == GUEST_PASSWD
    task.process.cwd = "/dir"
    assert read_all(host_open(task, b"sub/file.txt")) == b"file"
    assert read_all(host_open(task, b"./sub/../sub/./file.txt")) == b"file"
    node = F.lookup(task, F.AT_FDCWD, b"sub//file.txt")
    assert node.guest_path == b"/dir/sub/file.txt"
    assert node.host_path == os.fsencode(root / "dir" / "sub" / "file.txt")


@pytest.mark.parametrize("path", [
    b"/../../../../etc/passwd",
    b"/dir/../../../etc/passwd",
    b"/abs_passwd",
    b"/climb/etc/passwd",
    b"/climb/../../etc/passwd",
])
def test_escapes_stay_in_root(task, path):
    # Every route to "/etc/passwd" ends at the guest's, never the host's.
    assert read_all(host_open(task, path)) == GUEST_PASSWD


@pytest.mark.parametrize("path", [b"/to_secret", b"/abs_secret", b"/climb/secret",
                                  b"/../secret", b"/dir/../../secret"])
def test_escape_to_outside_file_is_enoent(task, path):
    assert errno_of(host_open, task, path) == errno.ENOENT


def test_dotdot_from_root_is_root(task, root):
    node = F.lookup(task, F.AT_FDCWD, b"/../..")
    assert node.guest_path == b"/" and node.inode.lower == os.fsencode(root)


def test_errors(task):
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/nope") == errno.ENOENT
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"") == errno.ENOENT
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/etc/passwd/x") == errno.ENOTDIR
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/etc/passwd/") == errno.ENOTDIR
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/loop1") == errno.ELOOP
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/dangling") == errno.ENOENT
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/" + b"a" * 256) == errno.ENAMETOOLONG
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/a" * 2048) == errno.ENAMETOOLONG
    # A name of 255 bytes is fine (merely missing).
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/" + b"a" * 255) == errno.ENOENT


def test_symlink_chain_limit(task, root):
    # 40 links are followed, the 41st is ELOOP (MAXSYMLINKS).
    for i in range(41):
        (root / f"c{i}").symlink_to(f"c{i + 1}")
    (root / "c41").write_bytes(b"end")
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/c0") == errno.ELOOP
    assert F.lookup(task, F.AT_FDCWD, b"/c1").guest_path == b"/c41"


def test_nofollow_final(task):
    node = F.lookup(task, F.AT_FDCWD, b"/abs_passwd", follow=False)
    assert node.kind == F.HOST and stat.S_ISLNK(node.st.st_mode)
    assert F.node_readlink(node) == b"/etc/passwd"
    # An intermediate symlink is followed even without follow.
    assert F.lookup(task, F.AT_FDCWD, b"/dirlink/file.txt", follow=False).guest_path == \
        b"/dir/sub/file.txt"
    # A trailing slash follows.
    assert F.lookup(task, F.AT_FDCWD, b"/dirlink/", follow=False).guest_path == b"/dir/sub"
    assert errno_of(F.node_readlink, F.lookup(task, F.AT_FDCWD, b"/etc")) == errno.EINVAL


def test_open_write_copies_up(task, root):
    """Writing a host file writes an in-memory copy; the host file is unchanged."""
    f = host_open(task, b"/etc/passwd", O_RDWR)
    assert f.read(5) == b"guest" and f.write(b"!") == 1
    f.release()
    assert read_all(host_open(task, b"/etc/passwd")) == b"guest!x:0:0::/:/bin/sh\n"
    assert (root / "etc" / "passwd").read_bytes() == GUEST_PASSWD
    f = host_open(task, b"/etc/new", O_WRONLY | O_CREAT)
    assert f.write(b"new") == 3
    assert read_all(host_open(task, b"/etc/new")) == b"new"
    assert not (root / "etc" / "new").exists()
    assert errno_of(host_open, task, b"/nodir/new", O_WRONLY | O_CREAT) == errno.ENOENT
    assert errno_of(host_open, task, b"/etc/passwd", O_CREAT | O_EXCL) == errno.EEXIST
    # O_CREAT on an existing file opened read-only is fine.
    assert read_all(host_open(task, b"/etc/passwd", O_RDONLY | O_CREAT))[:5] == b"guest"
    assert read_all(host_open(task, b"/etc/passwd", O_RDONLY | O_TRUNC)) == b""


def test_open_flags(task):
    assert errno_of(host_open, task, b"/etc/passwd", O_DIRECTORY) == errno.ENOTDIR
    assert errno_of(host_open, task, b"/etc", O_WRONLY) == errno.EISDIR
    assert errno_of(host_open, task, b"/etc", O_RDONLY | O_CREAT) == errno.EISDIR
    assert errno_of(host_open, task, b"/abs_passwd", O_NOFOLLOW) == errno.ELOOP
    d = host_open(task, b"/etc", O_DIRECTORY)
    assert isinstance(d, HostFile) and d.is_dir()
    d.release()
    p = host_open(task, b"/abs_passwd", O_PATH | O_NOFOLLOW)
    assert stat.S_ISLNK(p.stat().st_mode) and not p.readable
    assert host_open(task, b"/etc/passwd").flags & 0o100000  # O_LARGEFILE


def test_dirfd_relative(task):
    d = host_open(task, b"/dir", O_DIRECTORY)
    fd = task.fds.install(d)
    assert read_all(host_open(task, b"sub/file.txt", dirfd=fd)) == b"file"
    assert read_all(host_open(task, b"../etc/passwd", dirfd=fd)) == GUEST_PASSWD
    f = task.fds.install(host_open(task, b"/etc/passwd"))
    assert errno_of(host_open, task, b"x", dirfd=f) == errno.ENOTDIR
    assert errno_of(host_open, task, b"x", dirfd=99) == errno.EBADF
    # An absolute path ignores a bad dirfd, as Linux.
    assert read_all(host_open(task, b"/etc/passwd", dirfd=99)) == GUEST_PASSWD


def test_dev_nodes(task):
    assert isinstance(host_open(task, b"/dev/null", O_RDWR), DevNull)
    assert host_open(task, b"/dev/zero").read(4) == bytes(4)
    assert len(host_open(task, b"/dev/urandom").read(8)) == 8
    assert errno_of(host_open(task, b"/dev/full", O_WRONLY).write, b"x") == errno.ENOSPC
    st = F.node_stat(F.lookup(task, F.AT_FDCWD, b"/dev/random"))
    assert st.st_rdev == os.makedev(1, 8)
    # /dev/stdout is a symlink to /proc/self/fd/1.
    assert F.node_readlink(F.lookup(task, F.AT_FDCWD, b"/dev/stdout", follow=False)) == \
        b"/proc/self/fd/1"
    assert errno_of(host_open, task, b"/dev/stdout", O_WRONLY) == errno.ENOENT  # fd 1 not open
    task.fds.install(DevNull())
    task.fds.install(DevNull(guest_path=b"/dev/null"))
    f = host_open(task, b"/dev/stdout", O_WRONLY)
    assert isinstance(f, DevNull) and f.write(b"abc") == 3


def test_dev_tty(task, monkeypatch):
    monkeypatch.setattr(F, "host_tty_fd", lambda: None)
    assert errno_of(host_open, task, b"/dev/tty", O_RDWR) == errno.ENXIO
    monkeypatch.setattr(F, "host_tty_fd", lambda: 1)
    assert isinstance(host_open(task, b"/dev/tty", O_RDWR), HostStream)


def test_proc_self(task):
    exe = F.lookup(task, F.AT_FDCWD, b"/proc/self/exe", follow=False)
    assert F.node_readlink(exe) == b"/bin/prog"
    assert read_all(host_open(task, b"/proc/self/exe")) == b"\x7fELF"
    fd = task.fds.install(host_open(task, b"/etc/passwd"))
    link = F.lookup(task, F.AT_FDCWD, b"/proc/self/fd/%d" % fd, follow=False)
    assert F.node_readlink(link) == b"/etc/passwd"
    # Opening the magic link reopens the file (a new offset).
    task.fds.get(fd).read(3)
    assert read_all(host_open(task, b"/proc/self/fd/%d" % fd)) == GUEST_PASSWD
    rw = host_open(task, b"/proc/self/fd/%d" % fd, O_RDWR)  # copies it up
    assert rw.write(b"G") == 1 and read_all(host_open(task, b"/etc/passwd"))[:2] == b"Gu"
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/proc/self/fd/77") == errno.ENOENT
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/proc/self/nonesuch") == errno.ENOENT
    assert errno_of(F.lookup, task, F.AT_FDCWD, b"/proc/12345") == errno.ENOENT
    d = host_open(task, b"/proc/self/fd", O_DIRECTORY)
    assert [e.d_name for _, e in d.getdents()] == [b".", b"..", b"%d" % fd]
    assert F.lookup(task, F.AT_FDCWD, b"/proc/1/exe").kind == F.HOST  # own pid: self


def test_access(task, root):
    look = lambda p: F.lookup(task, F.AT_FDCWD, p)  # noqa: E731
    F.node_access(look(b"/etc/passwd"), os.R_OK)
    F.node_access(look(b"/bin/prog"), os.X_OK)
    assert errno_of(F.node_access, look(b"/etc/passwd"), os.X_OK) == errno.EACCES
    F.node_access(look(b"/etc/passwd"), os.W_OK)  # root may write (a copy)
    F.node_access(look(b"/dev/null"), os.W_OK | os.R_OK)


def test_read_path_limits(task):
    mm = task.mm
    mm.copy_out(mm.base, b"/etc/passwd\0")
    assert F.read_path(task, mm.base) == b"/etc/passwd"
    mm.copy_out(mm.base, b"a" * 5000)
    with pytest.raises(SyscallError) as info:
        F.read_path(task, mm.base)
    assert info.value.errno == errno.ENAMETOOLONG
    with pytest.raises(GuestFault):
        F.read_path(task, 0)


def test_to_int():
    assert F.to_int(0xFFFFFF9C) == F.AT_FDCWD
    assert F.to_int(0xFFFFFFFFFFFFFF9C) == F.AT_FDCWD
    assert F.to_int(5) == 5
