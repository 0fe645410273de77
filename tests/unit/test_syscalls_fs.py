"""fs.py and info.py syscall handlers on a fake task, through the table.

``call`` plays the dispatcher: it passes raw u64 registers, turns a
SyscallError into -errno and a GuestFault into -EFAULT.
"""

import errno
import os
import stat
import struct
import time

import pytest

import kvmsentry.kernel.syscalls.fs  # noqa: F401 - registers the handlers
import kvmsentry.kernel.syscalls.info  # noqa: F401
from kvmsentry.abi.syscall_64 import NUMBERS
from kvmsentry.kernel.fd import FdTable, HostStream
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.syscalls.table import SyscallError, entry
from kvmsentry.kernel.task import Credentials, Process, Task

from fakes import FakeMM, dispatch

U64 = (1 << 64) - 1
AT_FDCWD = 0xFFFFFFFFFFFFFF9C  # -100 sign-extended, as it arrives
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_DIRECTORY, O_CLOEXEC = 0, 1, 2, 0o100, 0o200000, 0o2000000
O_NONBLOCK, O_APPEND, O_LARGEFILE, O_PATH = 0o4000, 0o2000, 0o100000, 0o10000000


call = dispatch  # as the real dispatcher: result or -errno


CONTENT = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_bytes(b"guest\n")
    (r / "data").write_bytes(CONTENT)
    (r / "dir").mkdir()
    for i in range(50):
        (r / "dir" / f"entry{i:02d}").write_bytes(b"")
    (r / "bin").mkdir()
    (r / "bin" / "sh").write_bytes(b"\x7fELF")
    (r / "bin" / "sh").chmod(0o755)
    (r / "link").symlink_to("/etc/passwd")
    (tmp_path / "secret").write_bytes(b"SECRET")
    (r / "out").symlink_to("../secret")
    return r


@pytest.fixture
def task(root):
    proc = Process(root=str(root), exe="/bin/sh", cwd="/")
    return Task(tid=1, process=proc, mm=FakeMM(), fds=FdTable())


def open_(task, path, flags=O_RDONLY):
    return call(task, "openat", AT_FDCWD, task.mm.cstr(path), flags, 0)


def stat_of(task, buf):
    f = struct.unpack("<QQQIIIIQqqqqqqqqq24x", task.mm.copy_in(buf, 144))
    return dict(zip(["st_dev", "st_ino", "st_nlink", "st_mode", "st_uid", "st_gid", "pad",
                     "st_rdev", "st_size", "st_blksize", "st_blocks", "st_atime",
                     "st_atime_nsec", "st_mtime", "st_mtime_nsec", "st_ctime",
                     "st_ctime_nsec"], f))


# -- read / write ----------------------------------------------------------

def test_open_read_close(task):
    fd = open_(task, b"/data")
    assert fd == 0
    buf = task.mm.alloc(65536)
    assert call(task, "read", fd, buf, 4096) == 4096
    assert task.mm.copy_in(buf, 4096) == CONTENT[:4096]
    assert call(task, "read", fd, buf, 65536) == len(CONTENT) - 4096
    assert call(task, "read", fd, buf, 65536) == 0
    assert call(task, "close", fd) == 0
    assert call(task, "close", fd) == -errno.EBADF
    assert call(task, "read", fd, buf, 1) == -errno.EBADF
    assert call(task, "read", -1, buf, 1) == -errno.EBADF


def test_read_errors(task):
    fd = open_(task, b"/data")
    assert call(task, "read", fd, 0x10, 10) == -errno.EFAULT
    assert call(task, "write", fd, task.mm.alloc(4), 4) == -errno.EBADF
    d = open_(task, b"/dir", O_DIRECTORY)
    assert call(task, "read", d, task.mm.alloc(16), 16) == -errno.EISDIR
    # A count past the user address space is EFAULT (access_ok) ...
    big = task.mm.alloc(len(CONTENT))
    assert call(task, "read", fd, big, 1 << 63) == -errno.EFAULT
    assert call(task, "read", fd, big, 0x7FFFFFFFFFFF) == -errno.EFAULT
    # ... one that fits is clamped to MAX_RW_COUNT, and a short read is fine.
    call(task, "lseek", fd, 0, 0)
    assert call(task, "read", fd, big, 0x7FFFFFFF) == len(CONTENT)


def test_write_to_dev_and_stdout(task, capfd):
    null = open_(task, b"/dev/null", O_WRONLY)
    buf = task.mm.alloc(100, b"x" * 100)
    assert call(task, "write", null, buf, 100) == 100
    full = open_(task, b"/dev/full", O_WRONLY)
    assert call(task, "write", full, buf, 1) == -errno.ENOSPC
    assert call(task, "write", null, 0x10, 5) == -errno.EFAULT
    task.fds.install_at(1, HostStream(1))
    msg = task.mm.alloc(6, b"hello\n")
    assert call(task, "write", 1, msg, 6) == 6
    assert capfd.readouterr().out == "hello\n"


def test_readv_writev(task, capfd):
    fd = open_(task, b"/data")
    a, b = task.mm.alloc(10), task.mm.alloc(20)
    iov = task.mm.alloc(32, struct.pack("<QQQQ", a, 10, b, 20))
    assert call(task, "readv", fd, iov, 2) == 30
    assert task.mm.copy_in(a, 10) == CONTENT[:10]
    assert task.mm.copy_in(b, 20) == CONTENT[10:30]
    assert call(task, "readv", fd, iov, 1025) == -errno.EINVAL
    assert call(task, "readv", fd, iov, -1) == -errno.EINVAL
    assert call(task, "readv", fd, iov, 0) == 0
    bad = task.mm.alloc(16, struct.pack("<QQ", a, 1 << 63))
    assert call(task, "readv", fd, bad, 1) == -errno.EINVAL
    assert call(task, "preadv", fd, iov, 2, 5, 0) == 30
    assert task.mm.copy_in(a, 10) == CONTENT[5:15]
    assert call(task, "preadv", fd, iov, 2, -1, 0) == -errno.EINVAL
    task.fds.install_at(1, HostStream(1))
    p1, p2 = task.mm.alloc(3, b"ab "), task.mm.alloc(3, b"cd\n")
    wiov = task.mm.alloc(32, struct.pack("<QQQQ", p1, 3, p2, 3))
    assert call(task, "writev", 1, wiov, 2) == 6
    assert capfd.readouterr().out == "ab cd\n"
    assert call(task, "writev", 1, 0x10, 2) == -errno.EFAULT


def test_pread_pwrite_lseek(task):
    fd = open_(task, b"/data")
    buf = task.mm.alloc(16)
    assert call(task, "pread64", fd, buf, 4, 256) == 4
    assert task.mm.copy_in(buf, 4) == CONTENT[256:260]
    assert call(task, "lseek", fd, 0, 1) == 0  # pread leaves the offset alone
    assert call(task, "pread64", fd, buf, 4, -1) == -errno.EINVAL
    assert call(task, "lseek", fd, 100, 0) == 100
    assert call(task, "lseek", fd, -10, 2) == len(CONTENT) - 10
    assert call(task, "lseek", fd, -1, 0) == -errno.EINVAL
    assert call(task, "lseek", fd, 0, 7) == -errno.EINVAL
    assert call(task, "pwrite64", fd, buf, 4, 0) == -errno.EBADF
    null = open_(task, b"/dev/null", O_RDWR)
    assert call(task, "pwrite64", null, buf, 4, 0) == 4
    r, w = os.pipe()
    try:
        task.fds.install_at(9, HostStream(w))
        assert call(task, "pwrite64", 9, buf, 4, 0) == -errno.ESPIPE
        assert call(task, "lseek", 9, 0, 0) == -errno.ESPIPE
    finally:
        os.close(r)
        os.close(w)


def test_sendfile(task, capfdbinary):
    src = open_(task, b"/data")
    task.fds.install_at(1, HostStream(1))
    assert call(task, "sendfile", 1, src, 0, 1000) == 1000
    assert capfdbinary.readouterr().out == CONTENT[:1000]
    off = task.mm.alloc(8, struct.pack("<q", 16000))
    null = open_(task, b"/dev/null", O_WRONLY)
    assert call(task, "sendfile", null, src, off, 1000) == len(CONTENT) - 16000
    assert struct.unpack("<q", task.mm.copy_in(off, 8))[0] == len(CONTENT)
    assert call(task, "lseek", src, 0, 1) == 1000  # offset given: fd offset unchanged
    assert call(task, "sendfile", src, null, 0, 10) == -errno.EBADF


# -- open ---------------------------------------------------------------------

def test_open_errnos(task):
    assert open_(task, b"/nope") == -errno.ENOENT
    assert open_(task, b"/etc/passwd/x") == -errno.ENOTDIR
    assert open_(task, b"/etc/passwd", O_WRONLY) >= 0  # a copy-up
    assert open_(task, b"/etc/passwd", O_RDWR | O_CREAT) >= 0
    assert open_(task, b"/etc/passwd", O_RDONLY | O_CREAT) >= 0
    assert open_(task, b"/out") == -errno.ENOENT  # ../secret stays in the root
    assert call(task, "creat", task.mm.cstr(b"/newfile"), 0o644) >= 0
    assert open_(task, b"/newfile/", O_CREAT) == -errno.ENOTDIR
    assert open_(task, b"/dir/new/", O_CREAT) == -errno.EISDIR
    assert call(task, "open", task.mm.cstr(b"/etc/passwd"), 0, 0) >= 0
    assert call(task, "open", 0x10, 0, 0) == -errno.EFAULT
    assert call(task, "openat", 55, task.mm.cstr(b"rel"), 0, 0) == -errno.EBADF
    long_path = task.mm.cstr(b"/" + b"x" * 5000)
    assert call(task, "open", long_path, 0, 0) == -errno.ENAMETOOLONG
    assert open_(task, b"") == -errno.ENOENT


def test_open_cloexec_and_emfile(task):
    fd = open_(task, b"/etc/passwd", O_CLOEXEC)
    assert call(task, "fcntl", fd, 1, 0) == 1  # F_GETFD
    task.process.rlimits[7] = (fd + 2, 1024)
    assert open_(task, b"/etc/passwd") == fd + 1
    assert open_(task, b"/etc/passwd") == -errno.EMFILE


def test_openat_dirfd(task):
    d = open_(task, b"/etc", O_DIRECTORY)
    fd = call(task, "openat", d, task.mm.cstr(b"passwd"), 0, 0)
    buf = task.mm.alloc(16)
    assert call(task, "read", fd, buf, 16) == 6
    f = open_(task, b"/data")
    assert call(task, "openat", f, task.mm.cstr(b"x"), 0, 0) == -errno.ENOTDIR


# -- stat ------------------------------------------------------------------------

def test_stat_family(task, root):
    buf = task.mm.alloc(144)
    assert call(task, "stat", task.mm.cstr(b"/data"), buf) == 0
    s = stat_of(task, buf)
    host = os.stat(root / "data")
    assert s["st_size"] == len(CONTENT) and s["st_ino"] == host.st_ino
    assert stat.S_ISREG(s["st_mode"]) and s["st_mtime"] == int(host.st_mtime)
    assert call(task, "lstat", task.mm.cstr(b"/link"), buf) == 0
    assert stat.S_ISLNK(stat_of(task, buf)["st_mode"])
    assert call(task, "stat", task.mm.cstr(b"/link"), buf) == 0
    assert stat_of(task, buf)["st_size"] == 6
    fd = open_(task, b"/data")
    assert call(task, "fstat", fd, buf) == 0 and stat_of(task, buf)["st_size"] == len(CONTENT)
    assert call(task, "fstat", 99, buf) == -errno.EBADF
    assert call(task, "fstat", fd, 0x10) == -errno.EFAULT
    assert call(task, "stat", task.mm.cstr(b"/missing"), buf) == -errno.ENOENT
    assert call(task, "stat", task.mm.cstr(b"/dev/null"), buf) == 0
    assert stat_of(task, buf)["st_rdev"] == os.makedev(1, 3)


def test_newfstatat(task):
    buf = task.mm.alloc(144)
    d = open_(task, b"/etc", O_DIRECTORY)
    empty = task.mm.cstr(b"")
    assert call(task, "newfstatat", d, task.mm.cstr(b"passwd"), buf, 0) == 0
    assert stat_of(task, buf)["st_size"] == 6
    assert call(task, "newfstatat", d, empty, buf, 0) == -errno.ENOENT
    assert call(task, "newfstatat", d, empty, buf, 0x1000) == 0  # AT_EMPTY_PATH
    assert stat.S_ISDIR(stat_of(task, buf)["st_mode"])
    assert call(task, "newfstatat", AT_FDCWD, task.mm.cstr(b"/link"), buf, 0x100) == 0
    assert stat.S_ISLNK(stat_of(task, buf)["st_mode"])
    assert call(task, "newfstatat", AT_FDCWD, task.mm.cstr(b"/link"), buf, 0x1) == -errno.EINVAL


def test_statx(task, root):
    buf = task.mm.alloc(256)
    assert call(task, "statx", AT_FDCWD, task.mm.cstr(b"/data"), 0, 0x7FF, buf) == 0
    raw = task.mm.copy_in(buf, 256)
    mask, blksize = struct.unpack_from("<II", raw, 0)
    nlink, uid, gid, mode = struct.unpack_from("<IIIH", raw, 16)
    ino, size = struct.unpack_from("<QQ", raw, 32)
    mtime = struct.unpack_from("<qI", raw, 112)
    host = os.stat(root / "data")
    assert mask & 0x7FF == 0x7FF
    assert (ino, size, mode) == (host.st_ino, len(CONTENT), host.st_mode)
    assert mtime == (host.st_mtime_ns // 10**9, host.st_mtime_ns % 10**9)
    dev_major, dev_minor = struct.unpack_from("<II", raw, 136)
    assert os.makedev(dev_major, dev_minor) == host.st_dev
    assert call(task, "statx", AT_FDCWD, task.mm.cstr(b"/data"), 0x6000, 0, buf) == -errno.EINVAL
    assert call(task, "statx", AT_FDCWD, task.mm.cstr(b"/data"), 0, 0x80000000, buf) == \
        -errno.EINVAL


# -- directories -------------------------------------------------------------------

def parse_dirents(raw):
    out, pos = [], 0
    while pos < len(raw):
        d_ino, d_off, reclen, d_type = struct.unpack_from("<QqHB", raw, pos)
        name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
        assert reclen % 8 == 0
        out.append((name, d_off, d_type))
        pos += reclen
    return out


def test_getdents64(task):
    d = open_(task, b"/dir", O_DIRECTORY)
    buf = task.mm.alloc(4096)
    seen = []
    while True:
        n = call(task, "getdents64", d, buf, 256)  # small buffer: many calls
        assert n >= 0
        if n == 0:
            break
        seen += parse_dirents(task.mm.copy_in(buf, n))
    names = [s[0] for s in seen]
    assert names[:2] == [b".", b".."]
    assert sorted(names[2:]) == [b"entry%02d" % i for i in range(50)]
    # d_off is stable: seeking to an entry's d_off resumes after it.
    name5, off5, _ = seen[5]
    assert call(task, "lseek", d, off5, 0) == off5
    n = call(task, "getdents64", d, buf, 4096)
    assert [s[0] for s in parse_dirents(task.mm.copy_in(buf, n))] == names[6:]
    assert call(task, "lseek", d, 0, 0) == 0
    assert call(task, "getdents64", d, buf, 10) == -errno.EINVAL
    f = open_(task, b"/data")
    assert call(task, "getdents64", f, buf, 4096) == -errno.ENOTDIR
    assert call(task, "getdents64", 77, buf, 4096) == -errno.EBADF


def test_getcwd_chdir_fchdir(task):
    buf = task.mm.alloc(64)
    assert call(task, "getcwd", buf, 64) == 2
    assert task.mm.copy_in(buf, 2) == b"/\0"
    assert call(task, "chdir", task.mm.cstr(b"/etc")) == 0
    assert call(task, "getcwd", buf, 64) == 5
    assert call(task, "getcwd", buf, 4) == -errno.ERANGE
    assert call(task, "chdir", task.mm.cstr(b"../../dir/..//etc/")) == 0
    assert task.process.cwd == "/etc"
    assert open_(task, b"passwd") >= 0
    assert call(task, "chdir", task.mm.cstr(b"/data")) == -errno.ENOTDIR
    assert call(task, "chdir", task.mm.cstr(b"/none")) == -errno.ENOENT
    d = open_(task, b"/dir", O_DIRECTORY)
    assert call(task, "fchdir", d) == 0 and task.process.cwd == "/dir"
    assert call(task, "fchdir", open_(task, b"/data")) == -errno.ENOTDIR
    assert call(task, "fchdir", 99) == -errno.EBADF


def test_readlink(task):
    buf = task.mm.alloc(64)
    assert call(task, "readlink", task.mm.cstr(b"/link"), buf, 64) == 11
    assert task.mm.copy_in(buf, 11) == b"/etc/passwd"
    assert call(task, "readlink", task.mm.cstr(b"/link"), buf, 4) == 4
    assert call(task, "readlink", task.mm.cstr(b"/link"), buf, 0) == -errno.EINVAL
    assert call(task, "readlink", task.mm.cstr(b"/data"), buf, 64) == -errno.EINVAL
    assert call(task, "readlink", task.mm.cstr(b"/proc/self/exe"), buf, 64) == 7
    assert task.mm.copy_in(buf, 7) == b"/bin/sh"
    fd = open_(task, b"/etc/passwd")
    assert call(task, "readlinkat", AT_FDCWD, task.mm.cstr(b"/proc/self/fd/%d" % fd), buf,
                64) == 11
    d = open_(task, b"/", O_DIRECTORY)
    assert call(task, "readlinkat", d, task.mm.cstr(b"link"), buf, 64) == 11


def test_access(task):
    assert call(task, "access", task.mm.cstr(b"/etc/passwd"), 4) == 0
    assert call(task, "access", task.mm.cstr(b"/etc/passwd"), 0) == 0
    assert call(task, "access", task.mm.cstr(b"/etc/passwd"), 2) == 0
    assert call(task, "access", task.mm.cstr(b"/bin/sh"), 1) == 0
    assert call(task, "access", task.mm.cstr(b"/etc/passwd"), 1) == -errno.EACCES
    assert call(task, "access", task.mm.cstr(b"/nope"), 0) == -errno.ENOENT
    assert call(task, "access", task.mm.cstr(b"/etc/passwd"), 8) == -errno.EINVAL
    assert call(task, "faccessat", AT_FDCWD, task.mm.cstr(b"/dev/null"), 6) == 0
    assert call(task, "faccessat2", AT_FDCWD, task.mm.cstr(b"/link"), 0, 0x100) == 0
    assert call(task, "faccessat2", AT_FDCWD, task.mm.cstr(b"/link"), 0, 0x4) == -errno.EINVAL
    d = open_(task, b"/etc", O_DIRECTORY)
    assert call(task, "faccessat2", d, task.mm.cstr(b""), 4, 0x1000) == 0


# -- fd operations ---------------------------------------------------------------------

def test_dup_family(task):
    fd = open_(task, b"/data")
    buf = task.mm.alloc(16)
    d = call(task, "dup", fd)
    assert d == fd + 1
    call(task, "read", fd, buf, 10)
    assert call(task, "lseek", d, 0, 1) == 10  # shared offset
    assert call(task, "dup2", fd, 10) == 10
    assert call(task, "dup2", fd, fd) == fd
    assert call(task, "dup2", 99, 99) == -errno.EBADF
    assert call(task, "dup2", fd, -1) == -errno.EBADF
    assert call(task, "dup2", fd, 1 << 20) == -errno.EBADF
    assert call(task, "dup3", fd, fd, 0) == -errno.EINVAL
    assert call(task, "dup3", fd, 11, 1) == -errno.EINVAL
    assert call(task, "dup3", fd, 11, O_CLOEXEC) == 11
    assert call(task, "fcntl", 11, 1, 0) == 1
    assert call(task, "fcntl", 10, 1, 0) == 0
    assert call(task, "dup", 99) == -errno.EBADF


def test_fcntl(task):
    fd = open_(task, b"/data", O_NONBLOCK)
    assert call(task, "fcntl", fd, 3, 0) == O_RDONLY | O_NONBLOCK | O_LARGEFILE
    assert call(task, "fcntl", fd, 4, O_APPEND | O_WRONLY) == 0
    assert call(task, "fcntl", fd, 3, 0) == O_RDONLY | O_APPEND | O_LARGEFILE  # mode unchanged
    assert call(task, "fcntl", fd, 2, 1) == 0 and call(task, "fcntl", fd, 1, 0) == 1
    assert call(task, "fcntl", fd, 2, 0) == 0 and call(task, "fcntl", fd, 1, 0) == 0
    assert call(task, "fcntl", fd, 0, 20) == 20
    assert call(task, "fcntl", fd, 1030, 20) == 21
    assert call(task, "fcntl", 21, 1, 0) == 1
    assert call(task, "fcntl", fd, 0, -1) == -errno.EINVAL
    assert call(task, "fcntl", fd, 0, 1 << 20) == -errno.EINVAL
    assert call(task, "fcntl", fd, 5, 0) == -errno.EFAULT  # F_GETLK of a NULL flock
    assert call(task, "fcntl", 99, 3, 0) == -errno.EBADF
    # F_SETFL on one fd shows through a dup (one open file description).
    d = call(task, "dup", fd)
    call(task, "fcntl", fd, 4, 0)
    assert call(task, "fcntl", d, 3, 0) == O_LARGEFILE


def test_ioctl(task):
    fd = open_(task, b"/data")
    on = task.mm.alloc(4, struct.pack("<i", 1))
    assert call(task, "ioctl", fd, 0x5421, on) == 0  # FIONBIO
    assert call(task, "fcntl", fd, 3, 0) & O_NONBLOCK
    assert call(task, "ioctl", fd, 0x5451, 0) == 0  # FIOCLEX
    assert call(task, "fcntl", fd, 1, 0) == 1
    buf = task.mm.alloc(64)
    assert call(task, "ioctl", fd, 0x5401, buf) == -errno.ENOTTY  # TCGETS
    assert call(task, "ioctl", fd, 0x5421, 0x10) == -errno.EFAULT
    assert call(task, "ioctl", 99, 0x5401, buf) == -errno.EBADF


def test_ioctl_tty_forwarded(task):
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        task.fds.install_at(0, HostStream(slave))
        buf = task.mm.alloc(64)
        assert call(task, "ioctl", 0, 0x5413, buf) == 0  # TIOCGWINSZ
        assert call(task, "ioctl", 0, 0x5401, buf) == 0  # TCGETS
        assert call(task, "ioctl", 0, 0x5402, buf) == -errno.ENOTTY  # TCSETS: not forwarded
    finally:
        os.close(master)
        os.close(slave)


def test_statfs_umask_sync(task):
    buf = task.mm.alloc(120)
    assert call(task, "statfs", task.mm.cstr(b"/etc"), buf) == 0
    f_type, f_bsize = struct.unpack_from("<qq", task.mm.copy_in(buf, 120))
    f_flags = struct.unpack_from("<q", task.mm.copy_in(buf, 120), 80)[0]
    assert f_bsize > 0 and not f_flags & 1 and f_flags & 0x20  # writable, ST_VALID
    assert call(task, "statfs", task.mm.cstr(b"/tmp"), buf) == 0
    assert struct.unpack_from("<q", task.mm.copy_in(buf, 8))[0] == 0x01021994  # TMPFS_MAGIC
    fd = open_(task, b"/data")
    assert call(task, "fstatfs", fd, buf) == 0
    assert call(task, "fstatfs", 99, buf) == -errno.EBADF
    assert call(task, "statfs", task.mm.cstr(b"/nope"), buf) == -errno.ENOENT
    assert call(task, "umask", 0o777077) == 0o022
    assert call(task, "umask", 0o022) == 0o077
    assert call(task, "sync") == 0
    assert call(task, "fsync", fd) == 0 and call(task, "fdatasync", fd) == 0
    assert call(task, "fsync", 99) == -errno.EBADF


def test_o_path(task):
    fd = open_(task, b"/etc", O_PATH | O_DIRECTORY)
    buf = task.mm.alloc(144)
    assert call(task, "read", fd, buf, 1) == -errno.EBADF
    assert call(task, "fstat", fd, buf) == 0 and stat.S_ISDIR(stat_of(task, buf)["st_mode"])
    assert call(task, "openat", fd, task.mm.cstr(b"passwd"), 0, 0) >= 0
    assert call(task, "fchdir", fd) == 0


# -- info.py ------------------------------------------------------------------------------

def test_uname(task):
    buf = task.mm.alloc(390)
    assert call(task, "uname", buf) == 0
    fields = [task.mm.copy_in(buf + 65 * i, 65).split(b"\0")[0] for i in range(6)]
    assert fields[0] == b"Linux" and fields[1] == b"kvmsentry" and fields[4] == b"x86_64"
    major, minor = map(int, fields[2].split(b".")[:2])
    assert (major, minor) >= (3, 2)
    assert fields[5] == b"(none)"
    assert call(task, "uname", 0x10) == -errno.EFAULT


def test_sysinfo_getrandom(task):
    buf = task.mm.alloc(112)
    assert call(task, "sysinfo", buf) == 0
    uptime, = struct.unpack_from("<q", task.mm.copy_in(buf, 112))
    totalram, = struct.unpack_from("<Q", task.mm.copy_in(buf, 112), 32)
    mem_unit, = struct.unpack_from("<I", task.mm.copy_in(buf, 112), 104)
    assert uptime > 0 and totalram > 0 and mem_unit == 1
    r = task.mm.alloc(64)
    assert call(task, "getrandom", r, 64, 0) == 64
    assert task.mm.copy_in(r, 64) != bytes(64)
    assert call(task, "getrandom", r, 8, 1 | 2) == 8
    assert call(task, "getrandom", r, 8, 4) == 8
    assert call(task, "getrandom", r, 8, 8) == -errno.EINVAL
    assert call(task, "getrandom", r, 8, 2 | 4) == -errno.EINVAL
    assert call(task, "getrandom", 0x10, 8, 0) == -errno.EFAULT


def test_rlimits(task):
    buf = task.mm.alloc(16)
    assert call(task, "getrlimit", 3, buf) == 0
    assert struct.unpack("<QQ", task.mm.copy_in(buf, 16)) == (8 << 20, U64)
    assert call(task, "prlimit64", 0, 7, 0, buf) == 0
    assert struct.unpack("<QQ", task.mm.copy_in(buf, 16)) == (1024, 1048576)
    new = task.mm.alloc(16, struct.pack("<QQ", 256, 4096))
    assert call(task, "prlimit64", 0, 7, new, buf) == 0
    assert task.process.rlimits[7] == (256, 4096)
    assert call(task, "setrlimit", 7, task.mm.alloc(16, struct.pack("<QQ", 10, 5))) == \
        -errno.EINVAL
    task.process.creds = Credentials(uid=1000, euid=1000)  # no CAP_SYS_RESOURCE
    assert call(task, "setrlimit", 7, task.mm.alloc(16, struct.pack("<QQ", 10, 8192))) == \
        -errno.EPERM
    assert call(task, "setrlimit", 7, task.mm.alloc(16, struct.pack("<QQ", 10, 100))) == 0
    assert call(task, "getrlimit", 16, buf) == -errno.EINVAL
    assert call(task, "prlimit64", 4242, 7, 0, buf) == -errno.ESRCH
    # The fd table honours the new soft limit.
    for _ in range(10):
        open_(task, b"/etc/passwd")
    assert open_(task, b"/etc/passwd") == -errno.EMFILE


def test_sched_and_cpu(task):
    buf = task.mm.alloc(128)
    n = call(task, "sched_getaffinity", 0, 128, buf)
    ncpu = len(os.sched_getaffinity(0))
    assert n == (ncpu + 63) // 64 * 8
    mask = int.from_bytes(task.mm.copy_in(buf, n), "little")
    assert mask == (1 << ncpu) - 1
    assert call(task, "sched_getaffinity", 0, 7, buf) == -errno.EINVAL
    assert call(task, "sched_getaffinity", 999, 128, buf) == -errno.ESRCH
    assert call(task, "sched_yield") == 0
    assert call(task, "getcpu", buf, buf + 4, 0) == 0
    assert call(task, "getcpu", 0, 0, 0) == 0


def test_clocks(task):
    ts = task.mm.alloc(16)
    for clk in (0, 1, 2, 3, 4, 5, 6, 7):
        assert call(task, "clock_gettime", clk, ts) == 0, clk
    assert call(task, "clock_gettime", 0, ts) == 0
    sec, nsec = struct.unpack("<qq", task.mm.copy_in(ts, 16))
    assert abs(sec - time.time()) < 5 and 0 <= nsec < 10**9
    assert call(task, "clock_gettime", 10, ts) == -errno.EINVAL
    assert call(task, "clock_gettime", 100, ts) == -errno.EINVAL
    assert call(task, "clock_gettime", -6, ts) == 0  # own process CPU clock, glibc style
    assert call(task, "clock_gettime", 1, 0x10) == -errno.EFAULT
    assert call(task, "clock_getres", 1, ts) == 0
    assert struct.unpack("<qq", task.mm.copy_in(ts, 16)) == (0, 1)
    assert call(task, "clock_getres", 1, 0) == 0
    assert call(task, "clock_getres", 99, ts) == -errno.EINVAL
    tv = task.mm.alloc(16)
    assert call(task, "gettimeofday", tv, 0) == 0
    assert 0 <= struct.unpack("<qq", task.mm.copy_in(tv, 16))[1] < 10**6
    assert call(task, "gettimeofday", 0, tv) == 0
    t = call(task, "time", 0)
    assert abs(t - time.time()) < 5
    t = call(task, "time", tv)
    assert t == struct.unpack("<q", task.mm.copy_in(tv, 8))[0]


def test_sleeps(task):
    req = task.mm.alloc(16, struct.pack("<qq", 0, 1000))
    assert call(task, "nanosleep", req, 0) == 0
    bad = task.mm.alloc(16, struct.pack("<qq", 0, 10**9))
    assert call(task, "nanosleep", bad, 0) == -errno.EINVAL
    neg = task.mm.alloc(16, struct.pack("<qq", -1, 0))
    assert call(task, "nanosleep", neg, 0) == -errno.EINVAL
    assert call(task, "clock_nanosleep", 1, 0, req, 0) == 0
    past = task.mm.alloc(16, struct.pack("<qq", 1, 0))
    assert call(task, "clock_nanosleep", 1, 1, past, 0) == 0  # absolute, in the past
    assert call(task, "clock_nanosleep", 4, 0, req, 0) == -errno.EOPNOTSUPP
    assert call(task, "clock_nanosleep", 3, 0, req, 0) == -errno.EINVAL
    assert call(task, "nanosleep", 0x10, 0) == -errno.EFAULT


def test_creds(task):
    task.process.creds.uid, task.process.creds.egid = 5, 7
    assert call(task, "getuid") == 5 and call(task, "geteuid") == 0
    assert call(task, "getgid") == 0 and call(task, "getegid") == 7
    buf = task.mm.alloc(12)
    assert call(task, "getresuid", buf, buf + 4, buf + 8) == 0
    assert struct.unpack("<III", task.mm.copy_in(buf, 12)) == (5, 0, 0)
    assert call(task, "getresgid", buf, buf + 4, buf + 8) == 0
    assert struct.unpack("<III", task.mm.copy_in(buf, 12)) == (0, 7, 0)
    assert call(task, "getresuid", 0x10, buf, buf) == -errno.EFAULT
    assert call(task, "getgroups", 0, 0) == 0
    assert call(task, "getgroups", -1, 0) == -errno.EINVAL


def test_big_reads_loop_over_chunks(task, root):
    big = os.urandom((2 << 20) + 12345)  # more than one 1 MiB host read
    (root / "big").write_bytes(big)
    fd = open_(task, b"/big")
    buf = task.mm.alloc(len(big) + 100)
    assert call(task, "read", fd, buf, len(big) + 100) == len(big)
    assert task.mm.copy_in(buf, len(big)) == big
    assert call(task, "pread64", fd, buf, len(big), 7) == len(big) - 7
    assert task.mm.copy_in(buf, 16) == big[7:23]
    zero = open_(task, b"/dev/zero")
    assert call(task, "read", zero, buf, 3 << 20) == 3 << 20


def test_read_partial_fault(task):
    fd = open_(task, b"/data")
    good = task.mm.alloc(100)
    iov = task.mm.alloc(32, struct.pack("<QQQQ", good, 100, 0x10, 100))
    # The first buffer is stored; the bad second one ends the call short.
    assert call(task, "readv", fd, iov, 2) == 100
    assert task.mm.copy_in(good, 100) == CONTENT[:100]
