"""epoll on fake tasks over pipes, eventfds and other epolls; waits with real threads.

The helpers (FakeMM, the dispatcher stand-ins, threads) are test_pipe's.
"""

import errno
import struct

import pytest

import kvmsentry.kernel.syscalls.epoll  # noqa: F401 - registers the handlers
import kvmsentry.kernel.syscalls.eventfd  # noqa: F401
import kvmsentry.kernel.syscalls.fs  # noqa: F401
import kvmsentry.kernel.syscalls.pipe  # noqa: F401
import kvmsentry.kernel.syscalls.poll  # noqa: F401
from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import DevNull
from test_pipe import Thread, call, locked_call, make_pipe, new_task, read, wait_blocked, write

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP = 0x1, 0x4, 0x8, 0x10
EPOLLEXCLUSIVE, EPOLLONESHOT, EPOLLET = 1 << 28, 1 << 30, 1 << 31
O_CLOEXEC, O_NONBLOCK = 0o2000000, 0o4000
F_GETFD, F_GETFL = 1, 3
SIGUSR1 = 10


@pytest.fixture
def task():
    return new_task()


def epoll(task):
    fd = call(task, "epoll_create1", 0)
    assert fd >= 0
    return fd


def ctl(task, epfd, op, fd, events=0, data=0):
    ev = task.mm.alloc(12, struct.pack("<IQ", events & 0xFFFFFFFF, data))
    return call(task, "epoll_ctl", epfd, op, fd, ev)


def wait(task, epfd, maxevents=8, timeout=0, name="epoll_wait"):
    """epoll_wait's result as a list of (events, data), or -errno."""
    buf = task.mm.alloc(12 * max(maxevents, 1))
    n = call(task, name, epfd, buf, maxevents, timeout)
    if n < 0:
        return n
    return [struct.unpack("<IQ", task.mm.copy_in(buf + 12 * i, 12)) for i in range(n)]


def test_create(task):
    epfd = call(task, "epoll_create", 1)
    assert epfd >= 0
    assert call(task, "fcntl", epfd, F_GETFD) == 0
    assert call(task, "fcntl", epfd, F_GETFL) & 3 == 2  # O_RDWR
    assert call(task, "epoll_create", 0) == -errno.EINVAL
    epfd = call(task, "epoll_create1", O_CLOEXEC)
    assert call(task, "fcntl", epfd, F_GETFD) == 1
    assert call(task, "epoll_create1", O_NONBLOCK) == -errno.EINVAL
    assert task.fds.get(epfd).guest_path == b"anon_inode:[eventpoll]"
    assert read(task, epfd, 8) == -errno.EINVAL


def test_ctl_errors(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    null = task.fds.install(DevNull())
    assert ctl(task, epfd, EPOLL_CTL_ADD, 99, EPOLLIN) == -errno.EBADF
    assert ctl(task, 99, EPOLL_CTL_ADD, r, EPOLLIN) == -errno.EBADF
    assert ctl(task, epfd, EPOLL_CTL_ADD, null, EPOLLIN) == -errno.EPERM
    assert ctl(task, epfd, EPOLL_CTL_ADD, epfd, EPOLLIN) == -errno.EINVAL
    assert ctl(task, r, EPOLL_CTL_ADD, w, EPOLLIN) == -errno.EINVAL  # epfd is no epoll
    assert ctl(task, epfd, 7, r, EPOLLIN) == -errno.EINVAL
    assert ctl(task, epfd, EPOLL_CTL_MOD, r, EPOLLIN) == -errno.ENOENT
    assert ctl(task, epfd, EPOLL_CTL_DEL, r) == -errno.ENOENT
    assert call(task, "epoll_ctl", epfd, EPOLL_CTL_ADD, r, 0x10) == -errno.EFAULT
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN) == 0
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN) == -errno.EEXIST
    assert ctl(task, epfd, EPOLL_CTL_MOD, r, EPOLLOUT) == 0
    assert ctl(task, epfd, EPOLL_CTL_DEL, r) == 0
    assert ctl(task, epfd, EPOLL_CTL_DEL, r) == -errno.ENOENT
    # DEL ignores the event pointer.
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN) == 0
    assert call(task, "epoll_ctl", epfd, EPOLL_CTL_DEL, r, 0) == 0


def test_exclusive_rules(task):
    epfd, inner = epoll(task), epoll(task)
    r, w = make_pipe(task)
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT) == -errno.EINVAL
    assert ctl(task, epfd, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLEXCLUSIVE) == -errno.EINVAL
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN | EPOLLEXCLUSIVE | EPOLLET) == 0
    assert ctl(task, epfd, EPOLL_CTL_MOD, r, EPOLLIN) == -errno.EINVAL
    assert ctl(task, epfd, EPOLL_CTL_MOD, r, EPOLLIN | EPOLLEXCLUSIVE) == -errno.EINVAL
    write(task, w, b"x")
    assert wait(task, epfd) == [(EPOLLIN, 0)]


def test_loops_are_refused(task):
    a, b = epoll(task), epoll(task)
    assert ctl(task, a, EPOLL_CTL_ADD, b, EPOLLIN) == 0
    assert ctl(task, b, EPOLL_CTL_ADD, a, EPOLLIN) == -errno.ELOOP


def test_wait_errors(task):
    epfd = epoll(task)
    r, _ = make_pipe(task)
    assert wait(task, epfd, maxevents=0) == -errno.EINVAL
    assert wait(task, epfd, maxevents=-1) == -errno.EINVAL
    assert wait(task, 99) == -errno.EBADF
    assert wait(task, r) == -errno.EINVAL
    assert wait(task, epfd, timeout=0) == []


def test_level_triggered_pipe(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN, data=0x1122334455667788) == 0
    assert ctl(task, epfd, EPOLL_CTL_ADD, w, EPOLLOUT, data=2) == 0
    assert wait(task, epfd) == [(EPOLLOUT, 2)]
    write(task, w, b"abc")
    got = wait(task, epfd)
    assert sorted(got) == [(EPOLLIN, 0x1122334455667788), (EPOLLOUT, 2)]
    assert sorted(wait(task, epfd)) == sorted(got)  # level-triggered: again
    read(task, r, 3)
    assert wait(task, epfd) == [(EPOLLOUT, 2)]


def test_hup_and_err_always_reported(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, 0, data=1) == 0
    assert wait(task, epfd) == []
    call(task, "close", w)
    assert wait(task, epfd) == [(EPOLLHUP, 1)]
    r2, w2 = make_pipe(task)
    assert ctl(task, epfd, EPOLL_CTL_ADD, w2, 0, data=2) == 0
    call(task, "close", r2)
    assert (EPOLLERR, 2) in wait(task, epfd)


def test_round_robin_with_small_maxevents(task):
    epfd = epoll(task)
    pipes = [make_pipe(task) for _ in range(3)]
    for i, (r, w) in enumerate(pipes):
        write(task, w, b"x")
        assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN, data=i) == 0
    seen = [wait(task, epfd, maxevents=1)[0][1] for _ in range(3)]
    assert sorted(seen) == [0, 1, 2]


def test_edge_triggered(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN | EPOLLET, data=7) == 0
    assert wait(task, epfd) == []
    write(task, w, b"a")
    assert wait(task, epfd) == [(EPOLLIN, 7)]
    assert wait(task, epfd) == []  # once per change
    write(task, w, b"b")
    assert wait(task, epfd) == [(EPOLLIN, 7)]  # new data: a new edge
    assert read(task, r, 2) == b"ab"
    assert wait(task, epfd) == []


def test_edge_triggered_write_side_after_drain(task):
    """A writer that filled the pipe hears when a reader makes room."""
    epfd = epoll(task)
    r, w = make_pipe(task, O_NONBLOCK)
    assert ctl(task, epfd, EPOLL_CTL_ADD, w, EPOLLOUT | EPOLLET, data=1) == 0
    assert wait(task, epfd) == [(EPOLLOUT, 1)]
    while write(task, w, b"z" * 4096) > 0:
        pass
    read(task, r, 4096)  # fill and drain with no scan in between
    assert wait(task, epfd) == [(EPOLLOUT, 1)]


def test_oneshot(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN | EPOLLONESHOT, data=3) == 0
    write(task, w, b"a")
    assert wait(task, epfd) == [(EPOLLIN, 3)]
    assert wait(task, epfd) == []
    write(task, w, b"b")
    assert wait(task, epfd) == []  # disabled until EPOLL_CTL_MOD
    assert ctl(task, epfd, EPOLL_CTL_MOD, r, EPOLLIN | EPOLLONESHOT, data=4) == 0
    assert wait(task, epfd) == [(EPOLLIN, 4)]
    call(task, "close", w)
    assert wait(task, epfd) == []  # not even EPOLLHUP


def test_closed_file_leaves_the_set(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    assert ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN) == 0
    write(task, w, b"a")
    dup = call(task, "dup", r)
    call(task, "close", r)
    assert wait(task, epfd) == [(EPOLLIN, 0)]  # the file lives on through the dup
    call(task, "close", dup)
    assert wait(task, epfd) == []
    assert task.fds.get(epfd).items == {}


def test_eventfd(task):
    epfd = epoll(task)
    efd = call(task, "eventfd2", 0, 0)
    assert ctl(task, epfd, EPOLL_CTL_ADD, efd, EPOLLIN | EPOLLOUT, data=5) == 0
    assert wait(task, epfd) == [(EPOLLOUT, 5)]
    write(task, efd, struct.pack("<Q", 1))
    assert wait(task, epfd) == [(EPOLLIN | EPOLLOUT, 5)]


def test_nested_and_polled(task):
    outer, inner = epoll(task), epoll(task)
    r, w = make_pipe(task)
    assert ctl(task, inner, EPOLL_CTL_ADD, r, EPOLLIN) == 0
    assert ctl(task, outer, EPOLL_CTL_ADD, inner, EPOLLIN, data=9) == 0
    assert wait(task, outer) == []
    pfd = task.mm.alloc(8, struct.pack("<ihh", inner, EPOLLIN, 0))
    assert call(task, "poll", pfd, 1, 0) == 0
    write(task, w, b"x")
    assert wait(task, outer) == [(EPOLLIN, 9)]
    assert call(task, "poll", pfd, 1, 0) == 1
    assert struct.unpack("<ihh", task.mm.copy_in(pfd, 8))[2] == EPOLLIN


def test_timeout(task):
    epfd = epoll(task)
    r, _ = make_pipe(task)
    ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN)
    assert wait(task, epfd, timeout=20) == []


def test_blocked_waiter_woken_by_write(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN, data=42)
    buf = task.mm.alloc(12 * 4)
    t = Thread(task, "epoll_wait", epfd, buf, 4, -1)
    t.start()
    wait_blocked(task)
    writer = new_task(task.mm, task.fds, tid=2, process=task.process)
    assert locked_call(writer, "write", w, task.mm.alloc(1, b"!"), 1) == 1
    t.join(5)
    assert t.result == 1
    assert struct.unpack("<IQ", task.mm.copy_in(buf, 12)) == (EPOLLIN, 42)


def interrupt(task):
    with sched.BKL:
        task.pending |= 1 << (SIGUSR1 - 1)
        task.waiting_on.wake_all()


def test_signal_gives_eintr(task):
    epfd = epoll(task)
    buf = task.mm.alloc(12)
    t = Thread(task, "epoll_wait", epfd, buf, 1, -1)
    t.start()
    wait_blocked(task)
    interrupt(task)
    t.join(5)
    assert t.result == -errno.EINTR


def test_pwait_mask(task):
    epfd = epoll(task)
    buf = task.mm.alloc(12)
    mask = task.mm.alloc(8, struct.pack("<Q", 1 << 1))
    assert call(task, "epoll_pwait", epfd, buf, 1, 0, mask, 4) == -errno.EINVAL
    task.sigmask = 1 << 5
    assert call(task, "epoll_pwait", epfd, buf, 1, 0, mask, 8) == 0
    assert task.sigmask == 1 << 5
    t = Thread(task, "epoll_pwait", epfd, buf, 1, -1, mask, 8)
    t.start()
    wait_blocked(task)
    assert task.sigmask == 1 << 1
    interrupt(task)
    t.join(5)
    assert t.result == -errno.EINTR
    # The handler runs under the temporary mask; the old one comes back after.
    assert task.saved_sigmask == 1 << 5


def test_pwait2_timespec(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN)
    buf = task.mm.alloc(12)
    bad = task.mm.alloc(16, struct.pack("<qq", 0, 10**9))
    assert call(task, "epoll_pwait2", epfd, buf, 1, bad, 0, 8) == -errno.EINVAL
    assert call(task, "epoll_pwait2", epfd, buf, 1, 0x10, 0, 8) == -errno.EFAULT
    short = task.mm.alloc(16, struct.pack("<qq", 0, 10_000_000))
    assert call(task, "epoll_pwait2", epfd, buf, 1, short, 0, 8) == 0
    write(task, w, b"x")
    assert call(task, "epoll_pwait2", epfd, buf, 1, 0, 0, 8) == 1


def test_efault_for_events(task):
    epfd = epoll(task)
    r, w = make_pipe(task)
    ctl(task, epfd, EPOLL_CTL_ADD, r, EPOLLIN | EPOLLONESHOT)
    write(task, w, b"x")
    assert call(task, "epoll_wait", epfd, 0x10, 1, 0) == -errno.EFAULT
    assert wait(task, epfd) == [(EPOLLIN, 0)]  # not consumed by the failed copy
