"""FdTable and the open-file objects (kvmsentry.kernel.fd), without KVM."""

import errno
import os
import stat

import pytest

from kvmsentry.kernel import fd as fdmod
from kvmsentry.kernel.fd import (
    DevFull, DevNull, DevUrandom, DevZero, FdTable, HostFile, HostStream,
    O_APPEND, O_RDONLY,
)
from kvmsentry.kernel.syscalls.table import SyscallError


def errno_of(fn, *args, **kwargs):
    with pytest.raises(SyscallError) as info:
        fn(*args, **kwargs)
    return info.value.errno


def test_lowest_free_fd_and_close():
    t = FdTable()
    assert [t.install(DevNull()) for _ in range(3)] == [0, 1, 2]
    t.close(1)
    assert t.install(DevZero()) == 1
    assert t.install(DevZero()) == 3
    assert errno_of(t.close, 7) == errno.EBADF
    assert errno_of(t.get, -1) == errno.EBADF


def test_install_respects_limit():
    t = FdTable()
    for _ in range(4):
        t.install(DevNull(), limit=4)
    assert errno_of(t.install, DevNull(), limit=4) == errno.EMFILE


def test_dup_shares_description_and_flags():
    t = FdTable()
    f = DevNull(flags=fdmod.O_RDWR)
    a = t.install(f, cloexec=True)
    b = t.dup(a)
    assert t.get(b) is t.get(a)
    # close-on-exec is per fd, not copied by dup
    assert t.get_cloexec(a) and not t.get_cloexec(b)
    t.get(a).flags |= O_APPEND
    assert t.get(b).flags & O_APPEND
    c = t.dup(a, minfd=10, cloexec=True)
    assert c == 10 and t.get_cloexec(10)
    assert errno_of(t.dup, a, minfd=5000, limit=1024) == errno.EINVAL
    assert errno_of(t.dup, 99) == errno.EBADF


def test_release_only_after_last_close():
    t = FdTable()
    f = DevNull()
    a = t.install(f)
    b = t.dup(a)
    t.close(a)
    assert not f.closed
    t.close(b)
    assert f.closed


def test_dup3_replaces_and_releases(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"hello")
    t = FdTable()
    host = HostFile.open(os.fsencode(p), b"/x", O_RDONLY)
    a = t.install(host)
    b = t.install(DevZero())
    replaced = t.get(b)
    assert t.dup3(a, b, cloexec=True) == b
    assert replaced.closed and t.get(b) is host and t.get_cloexec(b)
    assert errno_of(t.dup3, a, -1) == errno.EBADF
    assert errno_of(t.dup3, a, 2000, limit=1024) == errno.EBADF
    assert errno_of(t.dup3, 50, 3) == errno.EBADF


def test_close_on_exec_and_fork():
    t = FdTable()
    keep, drop = DevNull(), DevZero()
    t.install(keep)
    t.install(drop, cloexec=True)
    child = t.fork()
    t.close_on_exec()
    assert t.fds() == [0]
    assert child.fds() == [0, 1]
    assert not drop.closed  # the child still holds it
    child.close_all()
    assert drop.closed and not keep.closed


def test_host_file_offset_is_shared(tmp_path):
    p = tmp_path / "data"
    p.write_bytes(b"0123456789")
    f = HostFile.open(os.fsencode(p), b"/data", O_RDONLY)
    t = FdTable()
    a = t.install(f)
    b = t.dup(a)
    assert t.get(a).read(4) == b"0123"
    assert t.get(b).read(3) == b"456"
    assert f.pread(2, 0) == b"01"
    assert f.lseek(0, fdmod.SEEK_CUR) == 7
    assert f.lseek(-2, fdmod.SEEK_END) == 8
    assert f.read(100) == b"89"
    assert f.read(100) == b""
    assert errno_of(f.lseek, -100, fdmod.SEEK_SET) == errno.EINVAL
    assert f.stat().st_size == 10
    assert errno_of(f.write, b"x") == errno.EBADF
    assert errno_of(f.getdents().__next__) == errno.ENOTDIR
    f.release()


def test_host_file_refuses_fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    assert errno_of(HostFile.open, os.fsencode(p), b"/fifo", O_RDONLY) == errno.EACCES


def test_host_directory_listing(tmp_path):
    (tmp_path / "a").write_bytes(b"")
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to("a")
    f = HostFile.open(os.fsencode(tmp_path), b"/", O_RDONLY | fdmod.O_DIRECTORY)
    assert f.is_dir()
    entries = list(f.getdents())
    names = {e.d_name: e.d_type for _, e in entries}
    assert names == {b".": fdmod.DT_DIR, b"..": fdmod.DT_DIR, b"a": fdmod.DT_REG,
                     b"d": fdmod.DT_DIR, b"l": fdmod.DT_LNK}
    assert [off for off, _ in entries] == [1, 2, 3, 4, 5]
    f.seek_dir(3)
    assert len(list(f.getdents())) == 2
    assert errno_of(f.read, 10) == errno.EISDIR
    f.release()


def test_devices():
    assert DevNull().read(10) == b"" and DevNull().write(b"abc") == 3
    assert DevZero().read(5) == bytes(5)
    assert DevFull().read(3) == bytes(3)
    assert errno_of(DevFull().write, b"x") == errno.ENOSPC
    assert len(DevUrandom().read(32)) == 32
    st = DevNull().stat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert DevUrandom(minor=8).stat().st_rdev == os.makedev(1, 8)
    assert DevZero().lseek(100, fdmod.SEEK_SET) == 0


def test_host_stream_passthrough_and_ioctl(tmp_path):
    r, w = os.pipe()
    try:
        out = HostStream(w)
        assert out.writable and not out.readable
        assert out.write(b"hi") == 2
        assert os.read(r, 10) == b"hi"
        inp = HostStream(r)
        assert inp.readable
        inp.flags |= fdmod.O_NONBLOCK
        assert errno_of(inp.read, 10) == errno.EAGAIN
        assert errno_of(inp.lseek, 0, fdmod.SEEK_SET) == errno.ESPIPE
        # Not a tty: TCGETS is ENOTTY and the host fd is untouched.
        assert errno_of(inp.ioctl, None, fdmod.TCGETS, 0) == errno.ENOTTY
        assert errno_of(inp.ioctl, None, fdmod.TIOCGWINSZ, 0) == errno.ENOTTY
    finally:
        os.close(r)
        os.close(w)


def test_with_stdio():
    t = FdTable.with_stdio()
    assert t.fds() == [0, 1, 2]
    assert all(isinstance(t.get(i), HostStream) for i in range(3))
    assert t.get(1).flags & fdmod.O_LARGEFILE
