"""Pipes, poll/select and eventfd on fake tasks, through the syscall table.

Blocking is tested with real Python threads, each holding the BKL while
it runs a handler as the dispatcher does; ``call`` plays the dispatcher
(raw u64 registers in, result or -errno out).
"""

import errno
import struct
import threading
import time

import pytest

import kvmsentry.kernel.syscalls.eventfd  # noqa: F401 - registers the handlers
import kvmsentry.kernel.syscalls.fs  # noqa: F401
import kvmsentry.kernel.syscalls.pipe  # noqa: F401
import kvmsentry.kernel.syscalls.poll  # noqa: F401
from kvmsentry.abi.syscall_64 import NUMBERS
from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import RLIMIT_NOFILE, DevNull, FdTable
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.signals import ERESTARTNOHAND, ERESTARTSYS
from kvmsentry.kernel.pipe import (F_GETPIPE_SZ, F_SETPIPE_SZ, POLLERR, POLLHUP, POLLIN,
                                   POLLNVAL, POLLOUT, POLLRDNORM, POLLWRNORM, Pipe,
                                   PipeWriter)
from kvmsentry.kernel.syscalls.pipe import pipe_fcntl as _pipe_fcntl
from kvmsentry.kernel.syscalls.table import SyscallError, entry
from kvmsentry.kernel.task import Credentials, Process, Task

from fakes import FakeMM, dispatch

U64 = (1 << 64) - 1
O_NONBLOCK, O_CLOEXEC, O_DIRECT, O_EXCL = 0o4000, 0o2000000, 0o40000, 0o200
F_GETFD, F_GETFL = 1, 3
S_IFIFO = 0o010000


def call(task, name, *args):
    """Dispatch like the real dispatcher, which holds the BKL around a handler."""
    with sched.BKL:
        return _call(task, name, *args)


_call = dispatch


def locked_call(task, name, *args):
    """``call`` with the BKL held and ``task`` current, as a task thread does."""
    with sched.BKL:
        sched.set_current(task)
        return _call(task, name, *args)


class Thread(threading.Thread):
    """Runs ``locked_call`` on its own thread; ``result`` when done."""

    def __init__(self, task, name, *args):
        super().__init__(daemon=True)
        self.task, self.name_, self.args = task, name, args
        self.result = None

    def run(self):
        self.result = locked_call(self.task, self.name_, *self.args)


def pipe_fcntl(*args):
    with sched.BKL:
        return _pipe_fcntl(*args)


def new_task(mm=None, fds=None, tid=1, process=None):
    return Task(tid=tid, process=process or Process(), mm=mm or FakeMM(), fds=fds or FdTable())


@pytest.fixture
def task():
    return new_task()


def make_pipe(task, flags=0):
    buf = task.mm.alloc(8)
    assert call(task, "pipe2", buf, flags) == 0
    return struct.unpack("<ii", task.mm.copy_in(buf, 8))


def write(task, fd, data):
    return call(task, "write", fd, task.mm.alloc(len(data), data), len(data))


def read(task, fd, n):
    buf = task.mm.alloc(n)
    got = call(task, "read", fd, buf, n)
    if got < 0:
        return got
    return task.mm.copy_in(buf, got)


def wait_blocked(task, timeout=5.0):
    """Wait until ``task`` sleeps on a WaitQueue."""
    end = time.monotonic() + timeout
    while task.waiting_on is None:
        assert time.monotonic() < end, "task never blocked"
        time.sleep(0.001)


# -- pipe / pipe2 --------------------------------------------------------------

def test_pipe_fds_flags_and_data(task):
    buf = task.mm.alloc(8)
    assert call(task, "pipe", buf) == 0
    r, w = struct.unpack("<ii", task.mm.copy_in(buf, 8))
    assert (r, w) == (0, 1)
    assert call(task, "fcntl", r, F_GETFL, 0) == 0  # O_RDONLY, no O_LARGEFILE
    assert call(task, "fcntl", w, F_GETFL, 0) == 1
    assert write(task, w, b"hello") == 5
    assert read(task, r, 100) == b"hello"
    assert read(task, w, 1) == -errno.EBADF
    assert write(task, r, b"x") == -errno.EBADF


def test_pipe2_flags(task):
    r, w = make_pipe(task, O_CLOEXEC | O_NONBLOCK)
    assert call(task, "fcntl", r, F_GETFD, 0) == 1
    assert call(task, "fcntl", w, F_GETFL, 0) == 1 | O_NONBLOCK
    assert call(task, "pipe2", task.mm.alloc(8), 0o1) == -errno.EINVAL
    assert call(task, "pipe2", task.mm.alloc(8), O_EXCL) == -errno.ENOPKG


def test_pipe2_efault_closes_fds(task):
    assert call(task, "pipe2", 0x10, 0) == -errno.EFAULT
    assert len(task.fds) == 0


def test_pipe2_emfile(task):
    task.process.rlimits[RLIMIT_NOFILE] = (1, 1)
    assert call(task, "pipe2", task.mm.alloc(8), 0) == -errno.EMFILE
    assert len(task.fds) == 0


def test_eof_after_writer_closes(task):
    r, w = make_pipe(task)
    write(task, w, b"abc")
    call(task, "close", w)
    assert read(task, r, 10) == b"abc"
    assert read(task, r, 10) == b""


def test_epipe_without_readers(task):
    r, w = make_pipe(task)
    call(task, "close", r)
    assert write(task, w, b"x") == -errno.EPIPE


def test_nonblocking_eagain(task):
    r, w = make_pipe(task, O_NONBLOCK)
    assert read(task, r, 10) == -errno.EAGAIN
    assert write(task, w, b"x" * 70000) == 65536  # partial: the pipe filled
    assert write(task, w, b"y") == -errno.EAGAIN
    assert len(read(task, r, 100000)) == 65536


def test_small_writes_merge_into_pages(task):
    r, w = make_pipe(task, O_NONBLOCK)
    for _ in range(16 * 4):
        assert write(task, w, b"z" * 1024) == 1024
    assert write(task, w, b"z") == -errno.EAGAIN


def test_atomic_write_needs_a_whole_slot(task):
    r, w = make_pipe(task, O_NONBLOCK)
    assert write(task, w, b"a" * (65536 - 100)) == 65536 - 100
    # 4000 bytes fit neither in the last page's 100 free bytes nor a new slot.
    assert write(task, w, b"b" * 4000) == -errno.EAGAIN
    assert write(task, w, b"c" * 100) == 100


def test_packet_mode(task):
    r, w = make_pipe(task, O_DIRECT | O_NONBLOCK)
    write(task, w, b"abc")
    write(task, w, b"defg")
    assert read(task, r, 100) == b"abc"
    assert read(task, r, 2) == b"de"  # the rest of the packet is discarded
    assert read(task, r, 100) == -errno.EAGAIN


def test_read_into_keeps_the_buffer_that_faults():
    """Pipe.read_into: a store that faults ends the read; the buffer it
    faulted on keeps its bytes (fs/pipe.c pipe_read), EFAULT before any."""
    pipe = Pipe()
    pipe.readers = pipe.writers = 1
    pipe.write(b"x" * 4096, False, False)
    pipe.write(b"tail", False, False)
    stored = []

    def store(pos, chunk):
        if pos >= 4096:
            raise GuestFault(0x1000)
        stored.append((pos, bytes(chunk)))

    assert pipe.read_into(8192, False, store) == 4096
    assert stored == [(0, b"x" * 4096)] and pipe.nbytes == 4
    with pytest.raises(GuestFault):
        pipe.read_into(8192, False, lambda pos, chunk: store(4096, chunk))
    assert pipe.read(100, True) == b"tail"


def test_fstat_and_guest_path(task):
    r, w = make_pipe(task)
    buf = task.mm.alloc(144)
    assert call(task, "fstat", r, buf) == 0
    st_dev, st_ino, st_nlink, st_mode = struct.unpack("<QQQI", task.mm.copy_in(buf, 28))
    (st_blksize,) = struct.unpack("<q", task.mm.copy_in(buf + 56, 8))
    assert st_mode == S_IFIFO | 0o600 and st_nlink == 1 and st_blksize == 4096
    assert task.fds.get(r).guest_path == b"pipe:[%d]" % st_ino
    assert task.fds.get(w).stat().st_ino == st_ino
    r2, _ = make_pipe(task)
    assert task.fds.get(r2).stat().st_ino != st_ino
    assert call(task, "lseek", r, 0, 0) == -errno.ESPIPE
    assert call(task, "pread64", r, task.mm.alloc(4), 4, 0) == -errno.ESPIPE


def test_fionread(task):
    r, w = make_pipe(task)
    write(task, w, b"12345")
    buf = task.mm.alloc(4)
    assert call(task, "ioctl", r, 0x541B, buf) == 0
    assert struct.unpack("<i", task.mm.copy_in(buf, 4))[0] == 5


# -- blocking with threads --------------------------------------------------------

def test_blocking_reader_woken_by_writer(task):
    r, w = make_pipe(task)
    t = Thread(task, "read", r, task.mm.alloc(16), 16)
    t.start()
    wait_blocked(task)
    writer = new_task(task.mm, task.fds, tid=2, process=task.process)
    assert locked_call(writer, "write", w, task.mm.alloc(3, b"hey"), 3) == 3
    t.join(5)
    assert t.result == 3


def test_blocking_reader_sees_eof_on_close(task):
    r, w = make_pipe(task)
    t = Thread(task, "read", r, task.mm.alloc(16), 16)
    t.start()
    wait_blocked(task)
    with sched.BKL:
        task.fds.close(w)
    t.join(5)
    assert t.result == 0


def test_blocking_writer_woken_by_reader(task):
    r, w = make_pipe(task)
    big = task.mm.alloc(100000, b"q" * 100000)
    t = Thread(task, "write", w, big, 100000)
    t.start()
    wait_blocked(task)
    reader = new_task(task.mm, task.fds, tid=2, process=task.process)
    got = 0
    while got < 100000:
        n = locked_call(reader, "read", r, task.mm.alloc(65536), 65536)
        assert n > 0
        got += n
    t.join(5)
    assert t.result == 100000


def test_blocking_writer_gets_epipe_when_reader_closes(task):
    r, w = make_pipe(task)
    write(task, w, b"x" * 65536)
    t = Thread(task, "write", w, task.mm.alloc(10, b"y" * 10), 10)
    t.start()
    wait_blocked(task)
    with sched.BKL:
        task.fds.close(r)
        task.fds.get(w).pipe.wr_wait.wake_all()
    t.join(5)
    assert t.result == -errno.EPIPE


def test_signal_interrupts_blocked_read(task):
    r, w = make_pipe(task)
    t = Thread(task, "read", r, task.mm.alloc(16), 16)
    t.start()
    wait_blocked(task)
    with sched.BKL:
        task.pending |= 1 << (10 - 1)  # SIGUSR1
        task.waiting_on.wake_all()
    t.join(5)
    assert t.result == -ERESTARTSYS  # the dispatcher restarts or fails with EINTR


def test_atomic_writes_from_two_writers(task):
    """Two threads writing 4096-byte records never interleave inside a record."""
    r, w = make_pipe(task)
    records = 64

    def writer_thread(tid, byte):
        t = new_task(task.mm, task.fds, tid=tid, process=task.process)
        with sched.BKL:
            buf = task.mm.alloc(4096, bytes([byte]) * 4096)
        for _ in range(records):
            assert locked_call(t, "write", w, buf, 4096) == 4096

    threads = [threading.Thread(target=writer_thread, args=(2 + i, b), daemon=True)
               for i, b in enumerate(b"AB")]
    for t in threads:
        t.start()
    data = bytearray()
    reader = new_task(task.mm, task.fds, tid=9, process=task.process)
    with sched.BKL:
        rbuf = task.mm.alloc(65536)
    while len(data) < 2 * records * 4096:
        n = locked_call(reader, "read", r, rbuf, 1000 + len(data) % 5000)
        assert n > 0
        with sched.BKL:
            data += task.mm.copy_in(rbuf, n)
    for t in threads:
        t.join(5)
    for i in range(0, len(data), 4096):
        assert len(set(data[i:i + 4096])) == 1


# -- F_GETPIPE_SZ / F_SETPIPE_SZ --------------------------------------------------

def test_pipe_size(task):
    r, w = make_pipe(task)
    file = task.fds.get(w)
    assert pipe_fcntl(file, F_GETPIPE_SZ, 0, task) == 65536
    assert pipe_fcntl(file, F_SETPIPE_SZ, 0, task) == 4096
    assert pipe_fcntl(file, F_SETPIPE_SZ, 5000, task) == 8192
    assert pipe_fcntl(task.fds.get(r), F_GETPIPE_SZ, 0, task) == 8192
    with pytest.raises(SyscallError) as e:
        pipe_fcntl(file, F_SETPIPE_SZ, 0x80000001, task)
    assert e.value.errno == errno.EINVAL
    assert pipe_fcntl(file, F_SETPIPE_SZ, 16384, task) == 16384
    write(task, w, b"x" * 10000)  # three slots
    with pytest.raises(SyscallError) as e:
        pipe_fcntl(file, F_SETPIPE_SZ, 8192, task)
    assert e.value.errno == errno.EBUSY
    assert pipe_fcntl(file, F_SETPIPE_SZ, 3 * 4096, task) == 16384
    assert pipe_fcntl(file, 1, 0, task) is None
    with pytest.raises(SyscallError) as e:
        pipe_fcntl(DevNull(), F_GETPIPE_SZ, 0, task)
    assert e.value.errno == errno.EBADF


def test_pipe_size_limit_for_non_root(task):
    r, w = make_pipe(task)
    file = task.fds.get(w)
    assert pipe_fcntl(file, F_SETPIPE_SZ, 1 << 21, task) == 1 << 21  # root
    task.process.creds = Credentials(uid=1000, euid=1000)  # no CAP_SYS_RESOURCE
    assert pipe_fcntl(file, F_SETPIPE_SZ, 1 << 20, task) == 1 << 20  # shrinking
    with pytest.raises(SyscallError) as e:
        pipe_fcntl(file, F_SETPIPE_SZ, (1 << 20) + 1, task)
    assert e.value.errno == errno.EPERM


def test_set_size_wakes_writer(task):
    r, w = make_pipe(task, O_NONBLOCK)
    write(task, w, b"x" * 65536)
    assert write(task, w, b"y") == -errno.EAGAIN
    pipe_fcntl(task.fds.get(w), F_SETPIPE_SZ, 1 << 17, task)
    assert write(task, w, b"y") == 1


# -- poll ---------------------------------------------------------------------------

POLLFD = struct.Struct("<iHH")


def pollfds(task, entries):
    return task.mm.alloc(8 * len(entries), b"".join(POLLFD.pack(fd, ev, 0x7777)
                                                   for fd, ev in entries))


def revents(task, gva, n):
    return [POLLFD.unpack(task.mm.copy_in(gva + 8 * i, 8))[2] & 0xFFFF for i in range(n)]


def test_poll_pipe_readiness(task):
    r, w = make_pipe(task)
    fds = pollfds(task, [(r, POLLIN), (w, POLLOUT), (-1, POLLIN), (99, POLLIN)])
    assert call(task, "poll", fds, 4, 0) == 2
    # revents is masked by events (plus POLLERR|POLLHUP); POLLNVAL always.
    assert revents(task, fds, 4) == [0, POLLOUT, 0, POLLNVAL]
    write(task, w, b"x")
    assert call(task, "poll", fds, 4, 0) == 3
    assert revents(task, fds, 4)[0] == POLLIN
    everything = pollfds(task, [(r, 0xFFFF), (w, 0xFFFF)])
    assert call(task, "poll", everything, 2, 0) == 2
    assert revents(task, everything, 2) == [65, 260]  # as native Linux
    call(task, "close", w)
    fds = pollfds(task, [(r, POLLIN | POLLRDNORM)])
    call(task, "poll", fds, 1, 0)
    assert revents(task, fds, 1) == [POLLIN | POLLRDNORM | POLLHUP]
    read(task, r, 1)
    call(task, "poll", fds, 1, 0)
    assert revents(task, fds, 1) == [POLLHUP]  # HUP is reported even if not asked


def test_poll_pollerr_without_readers(task):
    r, w = make_pipe(task)
    call(task, "close", r)
    fds = pollfds(task, [(w, POLLOUT | POLLWRNORM)])
    assert call(task, "poll", fds, 1, 0) == 1
    assert revents(task, fds, 1) == [POLLOUT | POLLWRNORM | POLLERR]


def test_poll_regular_file_always_ready(task):
    fd = task.fds.install(DevNull())
    fds = pollfds(task, [(fd, POLLIN | POLLOUT)])
    assert call(task, "poll", fds, 1, -1) == 1
    assert revents(task, fds, 1) == [POLLIN | POLLOUT]


def test_poll_timeout_expires(task):
    r, w = make_pipe(task)
    fds = pollfds(task, [(r, POLLIN)])
    t0 = time.monotonic()
    assert locked_call(task, "poll", fds, 1, 30) == 0
    assert time.monotonic() - t0 >= 0.025
    assert revents(task, fds, 1) == [0]


def test_poll_nfds_limit(task):
    task.process.rlimits[RLIMIT_NOFILE] = (4, 4)
    assert call(task, "poll", task.mm.alloc(40), 5, 0) == -errno.EINVAL
    assert call(task, "poll", 0x10, 1, 0) == -errno.EFAULT


def test_poll_woken_by_write(task):
    r, w = make_pipe(task)
    fds = pollfds(task, [(r, POLLIN)])
    t = Thread(task, "poll", fds, 1, -1)
    t.start()
    wait_blocked(task)
    other = new_task(task.mm, task.fds, tid=2, process=task.process)
    locked_call(other, "write", w, task.mm.alloc(1, b"!"), 1)
    t.join(5)
    assert t.result == 1


def test_poll_interrupted_by_signal(task):
    r, w = make_pipe(task)
    fds = pollfds(task, [(r, POLLIN)])
    t = Thread(task, "poll", fds, 1, -1)
    t.start()
    wait_blocked(task)
    with sched.BKL:
        task.pending |= 1 << (10 - 1)
        task.waiting_on.wake_all()
    t.join(5)
    assert t.result == -ERESTARTNOHAND


def test_ppoll_timespec_and_sigmask(task):
    r, w = make_pipe(task)
    fds = pollfds(task, [(r, POLLIN)])
    ts = task.mm.alloc(16, struct.pack("<qq", 0, 20_000_000))
    mask = task.mm.alloc(8, struct.pack("<Q", 1 << (10 - 1)))
    task.sigmask = 0
    assert locked_call(task, "ppoll", fds, 1, ts, mask, 8) == 0
    assert task.sigmask == 0
    assert struct.unpack("<qq", task.mm.copy_in(ts, 16)) == (0, 0)  # time left written back
    assert call(task, "ppoll", fds, 1, ts, mask, 4) == -errno.EINVAL
    bad = task.mm.alloc(16, struct.pack("<qq", 0, 1_000_000_000))
    assert call(task, "ppoll", fds, 1, bad, 0, 8) == -errno.EINVAL
    # A signal blocked by the temporary mask does not interrupt the wait.
    task.pending = 1 << (10 - 1)
    ts = task.mm.alloc(16, struct.pack("<qq", 0, 10_000_000))
    assert locked_call(task, "ppoll", fds, 1, ts, mask, 8) == 0
    assert call(task, "ppoll", fds, 1, 0, 0, 8) == -ERESTARTNOHAND  # unblocked again
    # Interrupted under a temporary mask: it stays for the handler, the
    # caller's mask waits in saved_sigmask (restore_saved_sigmask_unless).
    task.sigmask = 1 << 20
    other = task.mm.alloc(8, struct.pack("<Q", 1 << 30))
    assert call(task, "ppoll", fds, 1, 0, other, 8) == -ERESTARTNOHAND
    assert task.sigmask == 1 << 30 and task.saved_sigmask == 1 << 20


# -- select ---------------------------------------------------------------------------

def fdset(*fds, words=1):
    v = 0
    for fd in fds:
        v |= 1 << fd
    return v.to_bytes(8 * words, "little")


def test_select_bits(task):
    for _ in range(3):
        task.fds.install(DevNull())  # fds 0-2
    r, w = make_pipe(task)  # 3, 4
    # A pipe above 64 checks the word layout.
    while len(task.fds) < 70:
        task.fds.install(DevNull())
    r2, w2 = make_pipe(task)  # 70, 71
    assert (r2, w2) == (70, 71)
    write(task, w2, b"x")
    rd = task.mm.alloc(16, fdset(r, r2, words=2))
    wr = task.mm.alloc(16, fdset(w, w2, words=2))
    tv = task.mm.alloc(16, struct.pack("<qq", 0, 0))
    assert call(task, "select", 72, rd, wr, 0, tv) == 3
    assert task.mm.copy_in(rd, 16) == fdset(r2, words=2)
    assert task.mm.mem[rd - task.mm.base + 8] == 1 << (70 - 64)
    assert task.mm.copy_in(wr, 16) == fdset(w, w2, words=2)


def test_select_ebadf_and_einval(task):
    r, w = make_pipe(task)
    write(task, w, b"x")
    rd = task.mm.alloc(8, fdset(r, 5))
    assert call(task, "select", 6, rd, 0, 0, 0) == -errno.EBADF
    assert call(task, "select", 2, rd, 0, 0, 0) == 1  # fd 5 is beyond n
    assert call(task, "select", -1, 0, 0, 0, 0) == -errno.EINVAL
    tv = task.mm.alloc(16, struct.pack("<qq", -1, 0))
    assert call(task, "select", 1, 0, 0, 0, tv) == -errno.EINVAL


def test_select_timeout_written_back(task):
    r, w = make_pipe(task)
    rd = task.mm.alloc(8, fdset(r))
    tv = task.mm.alloc(16, struct.pack("<qq", 0, 1_020_000))  # usec carries to a second
    t = Thread(task, "select", r + 1, rd, 0, 0, tv)
    t.start()
    wait_blocked(task)
    other = new_task(task.mm, task.fds, tid=2, process=task.process)
    locked_call(other, "write", w, task.mm.alloc(1, b"!"), 1)
    t.join(5)
    assert t.result == 1
    sec, usec = struct.unpack("<qq", task.mm.copy_in(tv, 16))
    assert 0 <= sec <= 1 and 0 <= usec < 1_000_000 and (sec, usec) != (1, 20000)


def test_select_timeout_clears_sets(task):
    r, w = make_pipe(task)
    rd = task.mm.alloc(8, fdset(r))
    tv = task.mm.alloc(16, struct.pack("<qq", 0, 5000))
    assert locked_call(task, "select", r + 1, rd, 0, 0, tv) == 0
    assert task.mm.copy_in(rd, 8) == bytes(8)
    assert struct.unpack("<qq", task.mm.copy_in(tv, 16)) == (0, 0)


def test_pselect6_sigmask(task):
    r, w = make_pipe(task)
    rd = task.mm.alloc(8, fdset(r))
    ts = task.mm.alloc(16, struct.pack("<qq", 0, 0))
    mask = task.mm.alloc(8, struct.pack("<Q", 1 << 9))
    pack = task.mm.alloc(16, struct.pack("<QQ", mask, 8))
    task.pending = 1 << 9
    assert locked_call(task, "pselect6", r + 1, rd, 0, 0, ts, pack) == 0
    assert task.sigmask == 0 and task.saved_sigmask is None
    assert call(task, "pselect6", r + 1, rd, 0, 0, ts, 0) == -ERESTARTNOHAND
    badpack = task.mm.alloc(16, struct.pack("<QQ", mask, 16))
    assert call(task, "pselect6", r + 1, rd, 0, 0, ts, badpack) == -errno.EINVAL


# -- eventfd --------------------------------------------------------------------------

def test_eventfd(task):
    fd = call(task, "eventfd2", 3, O_NONBLOCK)
    assert read(task, fd, 8) == struct.pack("<Q", 3)
    assert read(task, fd, 8) == -errno.EAGAIN
    assert read(task, fd, 4) == -errno.EINVAL
    assert write(task, fd, struct.pack("<Q", U64)) == -errno.EINVAL
    assert write(task, fd, struct.pack("<Q", U64 - 1)) == 8
    assert write(task, fd, struct.pack("<Q", 1)) == -errno.EAGAIN
    fds = pollfds(task, [(fd, POLLIN | POLLOUT)])
    assert call(task, "poll", fds, 1, 0) == 1
    assert revents(task, fds, 1) == [POLLIN]
    sem = call(task, "eventfd2", 2, 1)
    assert read(task, sem, 8) == struct.pack("<Q", 1)
    assert read(task, sem, 8) == struct.pack("<Q", 1)
    assert call(task, "eventfd2", 0, 4) == -errno.EINVAL


def test_eventfd_blocking_read_woken(task):
    fd = call(task, "eventfd2", 0, 0)
    t = Thread(task, "read", fd, task.mm.alloc(8), 8)
    t.start()
    wait_blocked(task)
    other = new_task(task.mm, task.fds, tid=2, process=task.process)
    locked_call(other, "write", fd, task.mm.alloc(8, struct.pack("<Q", 7)), 8)
    t.join(5)
    assert t.result == 8


def test_pipe_object_counts():
    pipe = Pipe()
    w = PipeWriter(pipe)
    assert (pipe.readers, pipe.writers) == (0, 1)
    with sched.BKL:
        w.release()
        w.release()
    assert pipe.writers == 0


def test_poll_host_stream(task):
    """The sentry's own stdio is asked of the host; a wait polls it every tick."""
    import os

    from kvmsentry.kernel.fd import HostStream

    host_r, host_w = os.pipe()
    try:
        fd = task.fds.install(HostStream(host_r))
        fds = pollfds(task, [(fd, POLLIN)])
        assert call(task, "poll", fds, 1, 0) == 0
        t = Thread(task, "poll", fds, 1, 5000)
        t.start()
        wait_blocked(task)
        os.write(host_w, b"x")
        t.join(5)
        assert t.result == 1
        assert revents(task, fds, 1) == [POLLIN]
        rd = task.mm.alloc(8, fdset(fd))
        assert call(task, "select", fd + 1, rd, 0, 0, 0) == 1
    finally:
        os.close(host_r)
        os.close(host_w)
