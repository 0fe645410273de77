"""timerfd, POSIX timers and the small scheduling/usage calls on fake tasks.

The helpers (FakeMM, the dispatcher stand-ins, threads) are test_pipe's.
"""

import errno
import struct
import threading
import time

import pytest

import kvmsentry.kernel.syscalls.epoll  # noqa: F401 - registers the handlers
import kvmsentry.kernel.syscalls.fs  # noqa: F401
import kvmsentry.kernel.syscalls.poll  # noqa: F401
import kvmsentry.kernel.syscalls.timerfd  # noqa: F401
import kvmsentry.kernel.syscalls.timers  # noqa: F401
from kvmsentry.kernel import sched
from kvmsentry.kernel.signals import ERESTARTSYS
from test_pipe import Thread, call, new_task, read, wait_blocked

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_BOOTTIME = 0, 1, 2, 7
TFD_NONBLOCK, TFD_CLOEXEC = 0o4000, 0o2000000
TFD_TIMER_ABSTIME = 1
F_GETFD, F_GETFL = 1, 3
MS = 1_000_000


@pytest.fixture
def task():
    return new_task()


def itimerspec(task, value_ns, interval_ns=0):
    return task.mm.alloc(32, struct.pack("<qqqq", interval_ns // 10**9, interval_ns % 10**9,
                                         value_ns // 10**9, value_ns % 10**9))


def get_itimerspec(task, gva):
    i_sec, i_nsec, v_sec, v_nsec = struct.unpack("<qqqq", task.mm.copy_in(gva, 32))
    return i_sec * 10**9 + i_nsec, v_sec * 10**9 + v_nsec


def timerfd(task, clock=CLOCK_MONOTONIC, flags=TFD_NONBLOCK):
    fd = call(task, "timerfd_create", clock, flags)
    assert fd >= 0
    return fd


def ticks(task, fd):
    got = read(task, fd, 8)
    return got if isinstance(got, int) else struct.unpack("<Q", got)[0]


# -- timerfd ---------------------------------------------------------------------

def test_create_flags_and_errors(task):
    fd = timerfd(task, flags=TFD_NONBLOCK | TFD_CLOEXEC)
    assert call(task, "fcntl", fd, F_GETFD) == 1
    assert call(task, "fcntl", fd, F_GETFL) == 0o2 | TFD_NONBLOCK
    assert task.fds.get(fd).guest_path == b"anon_inode:[timerfd]"
    assert call(task, "timerfd_create", CLOCK_PROCESS_CPUTIME_ID, 0) == -errno.EINVAL
    assert call(task, "timerfd_create", CLOCK_MONOTONIC, 1) == -errno.EINVAL
    for clock in (CLOCK_REALTIME, CLOCK_BOOTTIME):
        assert call(task, "timerfd_create", clock, 0) >= 0


def test_settime_errors(task):
    fd = timerfd(task)
    assert call(task, "timerfd_settime", fd, 0, 0x10, 0) == -errno.EFAULT
    bad = task.mm.alloc(32, struct.pack("<qqqq", 0, 0, 0, 10**9))
    assert call(task, "timerfd_settime", fd, 0, bad, 0) == -errno.EINVAL
    assert call(task, "timerfd_settime", fd, 4, itimerspec(task, MS), 0) == -errno.EINVAL
    assert call(task, "timerfd_settime", 99, 0, itimerspec(task, MS), 0) == -errno.EBADF
    epfd = call(task, "epoll_create1", 0)
    assert call(task, "timerfd_settime", epfd, 0, itimerspec(task, MS), 0) == -errno.EINVAL
    assert call(task, "timerfd_gettime", epfd, task.mm.alloc(32)) == -errno.EINVAL


def test_disarmed_reads(task):
    fd = timerfd(task)
    assert ticks(task, fd) == -errno.EAGAIN
    assert read(task, fd, 4) == -errno.EINVAL
    cur = task.mm.alloc(32)
    assert call(task, "timerfd_gettime", fd, cur) == 0
    assert get_itimerspec(task, cur) == (0, 0)


def test_one_shot(task):
    fd = timerfd(task)
    assert call(task, "timerfd_settime", fd, 0, itimerspec(task, 10 * MS), 0) == 0
    cur = task.mm.alloc(32)
    call(task, "timerfd_gettime", fd, cur)
    interval, value = get_itimerspec(task, cur)
    assert interval == 0 and 0 < value <= 10 * MS
    time.sleep(0.02)
    assert ticks(task, fd) == 1
    assert ticks(task, fd) == -errno.EAGAIN
    call(task, "timerfd_gettime", fd, cur)
    assert get_itimerspec(task, cur) == (0, 0)


def test_periodic_counts_every_expiry(task):
    fd = timerfd(task)
    assert call(task, "timerfd_settime", fd, 0, itimerspec(task, 5 * MS, 5 * MS), 0) == 0
    time.sleep(0.05)
    n = ticks(task, fd)
    assert n >= 5  # at least 50 ms / 5 ms - 5 ms lead-in
    old = task.mm.alloc(32)
    assert call(task, "timerfd_settime", fd, 0, itimerspec(task, 0), old) == 0
    interval, value = get_itimerspec(task, old)
    assert interval == 5 * MS and 0 <= value <= 5 * MS
    assert ticks(task, fd) == -errno.EAGAIN  # disarming drops unread expirations


def test_absolute_time_in_the_past_expires_at_once(task):
    fd = timerfd(task, CLOCK_REALTIME)
    assert call(task, "timerfd_settime", fd, TFD_TIMER_ABSTIME, itimerspec(task, 10**9), 0) == 0
    assert ticks(task, fd) == 1
    fd = timerfd(task, CLOCK_MONOTONIC)
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    assert call(task, "timerfd_settime", fd, TFD_TIMER_ABSTIME,
                itimerspec(task, now - 10 * MS, 4 * MS), 0) == 0
    assert ticks(task, fd) >= 3  # 1 + the periods that passed


def test_blocking_read_woken_at_expiry(task):
    fd = timerfd(task, flags=0)
    call(task, "timerfd_settime", fd, 0, itimerspec(task, 20 * MS), 0)
    buf = task.mm.alloc(8)
    t = Thread(task, "read", fd, buf, 8)
    t.start()
    t.join(5)
    assert t.result == 8
    assert struct.unpack("<Q", task.mm.copy_in(buf, 8))[0] == 1


def test_blocking_read_interrupted(task):
    fd = timerfd(task, flags=0)
    t = Thread(task, "read", fd, task.mm.alloc(8), 8)
    t.start()
    wait_blocked(task)
    with sched.BKL:
        task.pending |= 1 << (10 - 1)
        task.waiting_on.wake_all()
    t.join(5)
    assert t.result == -ERESTARTSYS


def test_rearm_while_a_reader_waits(task):
    fd = timerfd(task, flags=0)
    call(task, "timerfd_settime", fd, 0, itimerspec(task, 3600 * 10**9), 0)
    t = Thread(task, "read", fd, task.mm.alloc(8), 8)
    t.start()
    wait_blocked(task)
    other = new_task(task.mm, task.fds, tid=2, process=task.process)
    assert call(other, "timerfd_settime", fd, 0, itimerspec(task, 10 * MS), 0) == 0
    t.join(5)
    assert t.result == 8


def test_poll_and_epoll_woken_at_expiry(task):
    fd = timerfd(task)
    call(task, "timerfd_settime", fd, 0, itimerspec(task, 20 * MS), 0)
    pfd = task.mm.alloc(8, struct.pack("<ihh", fd, 1, 0))
    assert call(task, "poll", pfd, 1, 0) == 0
    t = Thread(task, "poll", pfd, 1, 5000)
    t.start()
    t.join(5)
    assert t.result == 1
    assert struct.unpack("<ihh", task.mm.copy_in(pfd, 8))[2] == 1  # POLLIN

    fd2 = timerfd(task)
    epfd = call(task, "epoll_create1", 0)
    ev = task.mm.alloc(12, struct.pack("<IQ", 1 | (1 << 31), 77))  # EPOLLIN | EPOLLET
    assert call(task, "epoll_ctl", epfd, 1, fd2, ev) == 0
    call(task, "timerfd_settime", fd2, 0, itimerspec(task, 20 * MS, 20 * MS), 0)
    buf = task.mm.alloc(12)
    t = Thread(task, "epoll_wait", epfd, buf, 1, 5000)
    t.start()
    t.join(5)
    assert t.result == 1
    assert struct.unpack("<IQ", task.mm.copy_in(buf, 12)) == (1, 77)
    # Edge-triggered: the next expiry is a new edge even without a read.
    t = Thread(task, "epoll_wait", epfd, buf, 1, 5000)
    t.start()
    t.join(5)
    assert t.result == 1


# -- POSIX timers -------------------------------------------------------------------

class FakeKernel:
    """Records send_signal calls and sets the pending bits as the kernel does."""

    def __init__(self):
        self.tasks = {}
        self.sent = []
        self.event = threading.Event()

    def send_signal(self, process, signo, task=None, info=None):
        self.sent.append((signo, task, info))
        holder = task if task is not None else process
        holder.pending |= 1 << (signo - 1)
        holder.siginfo.setdefault(signo, info)
        self.event.set()


@pytest.fixture
def ktask():
    t = new_task()
    t.kernel = FakeKernel()
    t.kernel.tasks[t.tid] = t
    return t


def sigevent(task, notify, signo, value=0, tid=0):
    return task.mm.alloc(64, struct.pack("<Qiii", value, signo, notify, tid))


def create(task, clock, sev):
    out = task.mm.alloc(4)
    result = call(task, "timer_create", clock, sev, out)
    return result if result < 0 else struct.unpack("<i", task.mm.copy_in(out, 4))[0]


def test_timer_create_ids_and_errors(ktask):
    assert create(ktask, CLOCK_MONOTONIC, 0) == 0
    assert create(ktask, CLOCK_REALTIME, sigevent(ktask, 0, 10)) == 1
    assert create(ktask, CLOCK_PROCESS_CPUTIME_ID, 0) == -errno.EINVAL
    assert create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 0, 65)) == -errno.EINVAL
    assert create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 0, 0)) == -errno.EINVAL
    assert create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 7, 10)) == -errno.EINVAL
    assert create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 4, 10, tid=999)) == -errno.EINVAL
    assert call(ktask, "timer_create", CLOCK_MONOTONIC, 0, 0x10) == -errno.EFAULT
    assert call(ktask, "timer_delete", 0) == 0
    assert call(ktask, "timer_delete", 0) == -errno.EINVAL
    assert create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 1, 0)) == 0  # the lowest free id
    assert call(ktask, "timer_settime", 5, 0, itimerspec(ktask, MS), 0) == -errno.EINVAL
    assert call(ktask, "timer_settime", 0, 0, 0, 0) == -errno.EINVAL
    assert call(ktask, "timer_getoverrun", 5) == -errno.EINVAL


def test_timer_sends_si_timer(ktask):
    tid = create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 0, 12, value=0xABCD))
    assert call(ktask, "timer_settime", tid, 0, itimerspec(ktask, 10 * MS), 0) == 0
    assert ktask.kernel.event.wait(5)
    signo, target, info = ktask.kernel.sent[0]
    assert signo == 12 and target is None
    assert struct.unpack_from("<iii", info, 0) == (12, 0, -2)  # SI_TIMER
    assert struct.unpack_from("<iiQ", info, 16) == (tid, 0, 0xABCD)
    cur = ktask.mm.alloc(32)
    assert call(ktask, "timer_gettime", tid, cur) == 0
    assert get_itimerspec(ktask, cur) == (0, 0)


def test_default_sigevent_is_sigalrm_with_the_id(ktask):
    create(ktask, CLOCK_MONOTONIC, 0)
    tid = create(ktask, CLOCK_MONOTONIC, 0)
    assert call(ktask, "timer_settime", tid, 0, itimerspec(ktask, MS), 0) == 0
    assert ktask.kernel.event.wait(5)
    signo, _, info = ktask.kernel.sent[0]
    assert signo == 14
    assert struct.unpack_from("<iiQ", info, 16) == (1, 0, 1)


def test_thread_id_target_and_overrun(ktask):
    other = new_task(ktask.mm, ktask.fds, tid=2, process=ktask.process)
    other.kernel = ktask.kernel
    ktask.kernel.tasks[2] = other
    tid = create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 4, 10, tid=2))
    assert call(ktask, "timer_settime", tid, 0, itimerspec(ktask, 2 * MS, 2 * MS), 0) == 0
    assert ktask.kernel.event.wait(5)
    time.sleep(0.03)
    assert call(ktask, "timer_settime", tid, 0, itimerspec(ktask, 0), 0) == 0
    # The signal stayed pending: later expiries are overruns, not new signals.
    assert len(ktask.kernel.sent) == 1
    assert ktask.kernel.sent[0][1] is other
    overrun = call(ktask, "timer_getoverrun", tid)
    assert overrun >= 3
    info = other.siginfo[10]
    assert struct.unpack_from("<i", info, 20)[0] == overrun


def test_sigev_none_gettime(ktask):
    tid = create(ktask, CLOCK_MONOTONIC, sigevent(ktask, 1, 0))
    old = ktask.mm.alloc(32)
    assert call(ktask, "timer_settime", tid, 0, itimerspec(ktask, 10 * MS, 10 * MS), old) == 0
    assert get_itimerspec(ktask, old) == (0, 0)
    time.sleep(0.025)
    cur = ktask.mm.alloc(32)
    call(ktask, "timer_gettime", tid, cur)
    interval, value = get_itimerspec(ktask, cur)
    assert interval == 10 * MS and 0 < value <= 10 * MS
    assert ktask.kernel.sent == []


# -- usage and scheduling ---------------------------------------------------------------

def test_getrusage_and_times(task):
    ru = task.mm.alloc(144)
    for who in (0, -1, 1):
        assert call(task, "getrusage", who, ru) == 0
    assert call(task, "getrusage", 2, ru) == -errno.EINVAL
    assert call(task, "getrusage", 0, 0x10) == -errno.EFAULT
    tms = task.mm.alloc(32)
    assert call(task, "times", tms) > 0
    assert call(task, "times", 0) > 0
    assert call(task, "times", 0x10) == -errno.EFAULT


def test_sched_calls(task):
    mask = task.mm.alloc(128, b"\x01" + bytes(127))
    assert call(task, "sched_setaffinity", 0, 128, mask) == 0
    empty = task.mm.alloc(128)
    assert call(task, "sched_setaffinity", 0, 128, empty) == -errno.EINVAL
    assert call(task, "sched_setaffinity", 0, 0, mask) == -errno.EINVAL
    assert call(task, "sched_setaffinity", 12345, 128, mask) == -errno.ESRCH
    assert call(task, "sched_getscheduler", 0) == 0
    assert call(task, "sched_getscheduler", -1) == -errno.EINVAL
    param = task.mm.alloc(4, struct.pack("<i", 7))
    assert call(task, "sched_getparam", 0, param) == 0
    assert struct.unpack("<i", task.mm.copy_in(param, 4))[0] == 0
    assert call(task, "sched_getparam", 0, 0) == -errno.EINVAL
    assert call(task, "sched_setscheduler", 0, 0, param) == 0
    assert call(task, "sched_setscheduler", 0, 3, param) == 0  # SCHED_BATCH
    assert call(task, "sched_setscheduler", 0, 9, param) == -errno.EINVAL
    rt = task.mm.alloc(4, struct.pack("<i", 10))
    assert call(task, "sched_setscheduler", 0, 1, rt) == -errno.EPERM
    assert call(task, "sched_setscheduler", 0, 0, rt) == -errno.EINVAL
    assert call(task, "sched_get_priority_max", 1) == 99
    assert call(task, "sched_get_priority_min", 0) == 0
    assert call(task, "sched_get_priority_max", 42) == -errno.EINVAL


def test_priority(task):
    assert call(task, "getpriority", 0, 0) == 20
    assert call(task, "setpriority", 0, 0, 5) == 0
    assert call(task, "getpriority", 0, 0) == 15
    assert call(task, "setpriority", 0, 0, 100) == 0
    assert call(task, "getpriority", 0, 0) == 1  # clamped to nice 19
    assert call(task, "getpriority", 9, 0) == -errno.EINVAL
    assert call(task, "getpriority", 0, 4242) == -errno.ESRCH
