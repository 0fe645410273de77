"""memfd_create, copy_file_range, flock and FIFOs on a fake task, through the table."""

import errno
import stat
import struct
import threading
import time

import pytest

import kvmsentry.kernel.syscalls.fs  # noqa: F401 - registers the handlers
import kvmsentry.kernel.syscalls.vfs_extra  # noqa: F401
from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import FdTable
from kvmsentry.kernel.task import Process, Task
from test_syscalls_fs import AT_FDCWD, O_CREAT, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, FakeMM, call, stat_of

S_IFIFO = 0o010000
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_bytes(b"root:x:0:0\n")
    return r


@pytest.fixture(autouse=True)
def bkl():
    """Handlers run with the big kernel lock held, as under the dispatcher."""
    with sched.BKL:
        yield


def in_thread(fn):
    """Run ``fn`` on another thread holding the BKL; (thread, results list)."""
    result = []

    def run():
        with sched.BKL:
            result.append(fn())
    t = threading.Thread(target=run)
    t.start()
    return t, result


def unlocked(fn, *args):
    sched.BKL.release()
    try:
        return fn(*args)
    finally:
        sched.BKL.acquire()


@pytest.fixture
def task(root):
    proc = Process(root=str(root), exe="/bin/sh", cwd="/")
    return Task(tid=1, process=proc, mm=FakeMM(size=16 << 20), fds=FdTable())


def open_(task, path, flags=O_RDONLY, mode=0o644):
    return call(task, "openat", AT_FDCWD, task.mm.cstr(path), flags, mode)


def readlink_fd(task, fd):
    buf = task.mm.alloc(256)
    n = call(task, "readlinkat", AT_FDCWD, task.mm.cstr(b"/proc/self/fd/%d" % fd), buf, 256)
    return task.mm.copy_in(buf, n) if n >= 0 else n


def write(task, fd, data):
    return call(task, "write", fd, task.mm.alloc(len(data), data), len(data))


def read(task, fd, n):
    buf = task.mm.alloc(n)
    got = call(task, "read", fd, buf, n)
    return task.mm.copy_in(buf, got) if got >= 0 else got


# -- memfd_create --------------------------------------------------------------

def test_memfd_read_write_stat(task):
    fd = call(task, "memfd_create", task.mm.cstr(b"buf"), 1)  # MFD_CLOEXEC
    assert fd >= 0
    assert call(task, "fcntl", fd, 1, 0) == 1  # F_GETFD: FD_CLOEXEC
    assert call(task, "fcntl", fd, 3, 0) & 3 == O_RDWR
    assert write(task, fd, b"hello memfd") == 11
    assert call(task, "lseek", fd, 0, 0) == 0
    assert read(task, fd, 100) == b"hello memfd"
    assert call(task, "ftruncate", fd, 4096) == 0
    st = task.mm.alloc(144)
    assert call(task, "fstat", fd, st) == 0
    s = stat_of(task, st)
    assert stat.S_ISREG(s["st_mode"]) and s["st_size"] == 4096 and s["st_nlink"] == 0
    assert readlink_fd(task, fd) == b"/memfd:buf (deleted)"


def test_memfd_errors(task):
    assert call(task, "memfd_create", task.mm.cstr(b"x"), 0x100) == -errno.EINVAL
    assert call(task, "memfd_create", task.mm.cstr(b"x"), 0x18) == -errno.EINVAL
    assert call(task, "memfd_create", task.mm.cstr(b"n" * 250), 0) == -errno.EINVAL
    assert call(task, "memfd_create", task.mm.cstr(b"n" * 249), 2) >= 0  # ALLOW_SEALING
    assert call(task, "memfd_create", 0x10, 0) == -errno.EFAULT


# -- copy_file_range --------------------------------------------------------

def test_copy_file_range_offsets(task):
    src = open_(task, b"/tmp/a", O_RDWR | O_CREAT)
    dst = open_(task, b"/tmp/b", O_RDWR | O_CREAT)
    data = bytes(range(256)) * 6000  # 1.5 MB: two chunks
    assert write(task, src, data) == len(data)
    call(task, "lseek", src, 0, 0)
    assert call(task, "copy_file_range", src, 0, dst, 0, len(data) + 10, 0) == len(data)
    assert call(task, "lseek", src, 0, 1) == len(data)
    call(task, "lseek", dst, 0, 0)
    assert read(task, dst, len(data) + 1) == data
    off_in = task.mm.alloc(8, struct.pack("<q", 3))
    off_out = task.mm.alloc(8, struct.pack("<q", 1))
    assert call(task, "copy_file_range", src, off_in, dst, off_out, 4, 0) == 4
    assert struct.unpack("<q", task.mm.copy_in(off_in, 8))[0] == 7
    assert struct.unpack("<q", task.mm.copy_in(off_out, 8))[0] == 5
    assert call(task, "pread64", dst, task.mm.alloc(8), 6, 0) == 6
    # Host file as the source, memfd as the destination.
    host = open_(task, b"/etc/passwd")
    mfd = call(task, "memfd_create", task.mm.cstr(b"m"), 0)
    assert call(task, "copy_file_range", host, 0, mfd, 0, 100, 0) == 11
    assert call(task, "copy_file_range", host, 0, mfd, 0, 100, 0) == 0  # EOF


def test_copy_file_range_errors(task):
    a = open_(task, b"/tmp/a", O_RDWR | O_CREAT)
    ro = open_(task, b"/etc/passwd")
    wo = open_(task, b"/tmp/w", O_WRONLY | O_CREAT)
    ap = open_(task, b"/tmp/ap", O_WRONLY | O_CREAT | 0o2000)
    write(task, a, b"0123456789")
    assert call(task, "copy_file_range", a, 0, ro, 0, 1, 0) == -errno.EBADF
    assert call(task, "copy_file_range", wo, 0, a, 0, 1, 0) == -errno.EBADF
    assert call(task, "copy_file_range", 99, 0, a, 0, 1, 0) == -errno.EBADF
    assert call(task, "copy_file_range", a, 0, ap, 0, 1, 0) == -errno.EBADF
    assert call(task, "copy_file_range", ro, 0, a, 0, 1, 1) == -errno.EINVAL
    p = task.mm.alloc(8)
    assert call(task, "pipe2", p, 0) == 0
    r, w = struct.unpack("<ii", task.mm.copy_in(p, 8))
    assert call(task, "copy_file_range", ro, 0, w, 0, 1, 0) == -errno.EINVAL
    off_in = task.mm.alloc(8, struct.pack("<q", 0))
    off_out = task.mm.alloc(8, struct.pack("<q", 2))
    assert call(task, "copy_file_range", a, off_in, a, off_out, 5, 0) == -errno.EINVAL
    off_out = task.mm.alloc(8, struct.pack("<q", 20))
    assert call(task, "copy_file_range", a, off_in, a, off_out, 5, 0) == 5


# -- flock -------------------------------------------------------------------------

def test_flock_between_open_file_descriptions(task):
    a = open_(task, b"/tmp/l", O_RDWR | O_CREAT)
    b = open_(task, b"/tmp/l", O_RDONLY)
    dup = call(task, "dup", a)
    assert call(task, "flock", a, LOCK_EX) == 0
    assert call(task, "flock", dup, LOCK_EX | LOCK_NB) == 0  # same description
    assert call(task, "flock", b, LOCK_SH | LOCK_NB) == -errno.EWOULDBLOCK
    assert call(task, "flock", a, LOCK_SH) == 0  # conversion
    assert call(task, "flock", b, LOCK_SH | LOCK_NB) == 0
    assert call(task, "flock", b, LOCK_EX | LOCK_NB) == -errno.EWOULDBLOCK
    assert call(task, "flock", a, LOCK_UN) == 0
    assert call(task, "flock", b, LOCK_EX | LOCK_NB) == 0
    assert call(task, "flock", a, LOCK_SH | LOCK_NB) == -errno.EWOULDBLOCK
    # Released on the last close of b's description only.
    b2 = call(task, "dup", b)
    call(task, "close", b)
    assert call(task, "flock", a, LOCK_SH | LOCK_NB) == -errno.EWOULDBLOCK
    call(task, "close", b2)
    assert call(task, "flock", a, LOCK_EX | LOCK_NB) == 0
    assert call(task, "flock", a, 3) == -errno.EINVAL
    assert call(task, "flock", 77, LOCK_EX) == -errno.EBADF


def test_flock_blocks_until_unlock(task):
    a = open_(task, b"/tmp/l", O_RDWR | O_CREAT)
    b = open_(task, b"/tmp/l", O_RDWR)
    assert call(task, "flock", a, LOCK_EX) == 0
    t, result = in_thread(lambda: call(task, "flock", b, LOCK_EX))
    unlocked(time.sleep, 0.2)
    assert not result
    assert call(task, "flock", a, LOCK_UN) == 0
    unlocked(t.join, 5)
    assert result == [0]


# -- FIFOs -------------------------------------------------------------------------

def test_fifo_nonblocking_and_rdwr(task):
    path = task.mm.cstr(b"/tmp/fifo")
    assert call(task, "mknodat", AT_FDCWD, path, S_IFIFO | 0o644, 0) == 0
    st = task.mm.alloc(144)
    assert call(task, "newfstatat", AT_FDCWD, path, st, 0) == 0
    assert stat.S_ISFIFO(stat_of(task, st)["st_mode"])
    assert open_(task, b"/tmp/fifo", O_WRONLY | O_NONBLOCK) == -errno.ENXIO
    r = open_(task, b"/tmp/fifo", O_RDONLY | O_NONBLOCK)
    assert r >= 0
    w = open_(task, b"/tmp/fifo", O_WRONLY | O_NONBLOCK)
    assert w >= 0
    assert write(task, w, b"through") == 7
    assert read(task, r, 100) == b"through"
    assert call(task, "fstat", r, st) == 0
    assert stat.S_ISFIFO(stat_of(task, st)["st_mode"])
    assert readlink_fd(task, r) == b"/tmp/fifo"
    call(task, "close", w)
    assert read(task, r, 100) == b""  # EOF
    rw = open_(task, b"/tmp/fifo", O_RDWR)  # never blocks
    assert write(task, rw, b"x") == 1 and read(task, r, 10) == b"x"


def test_fifo_blocking_open_waits_for_peer(task):
    assert call(task, "mknod", task.mm.cstr(b"/tmp/f2"), S_IFIFO | 0o600, 0) == 0
    t, result = in_thread(lambda: open_(task, b"/tmp/f2", O_RDONLY))
    unlocked(time.sleep, 0.2)
    assert not result
    w = open_(task, b"/tmp/f2", O_WRONLY)  # a reader is waiting: no wait
    unlocked(t.join, 5)
    assert w >= 0 and result and result[0] >= 0
    assert write(task, w, b"abc") == 3
    assert read(task, result[0], 10) == b"abc"
