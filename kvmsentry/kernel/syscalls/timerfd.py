"""timerfd: a timer read as a file of expiration counts (fs/timerfd.c, timerfd_create(2)).

Expirations are computed lazily from the timer's clock whenever the file
is read, polled or queried: ``ticks`` grows by one per expiry (one for a
one-shot timer, 1 + elapsed // interval for a periodic one), which is
exact however late the sentry looks. Only a task that waits for an expiry
(a blocking read, poll/select/epoll finding the timer not ready) needs to
be woken; for it the sandbox's timer thread (kernel/hrtimer.py) calls
back at the next expiry and, under the BKL, wakes the file's wait queue
and ``POLL_WAITQUEUE``.

Importing this module registers the handlers.
"""

from __future__ import annotations

import errno
import struct
import time

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import hrtimer, sched
from kvmsentry.kernel.fd import O_CLOEXEC, O_NONBLOCK, O_RDWR, File, nofile_limit
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.pipe import PIPEFS_DEV, POLL_WAITQUEUE, POLLIN
from kvmsentry.kernel.signals import ERESTARTSYS
from kvmsentry.kernel.syscalls.eventfd import _ANON_INODE
from kvmsentry.kernel.syscalls.table import SyscallError, syscall

__all__ = ["TimerFd", "sys_timerfd_create", "sys_timerfd_settime", "sys_timerfd_gettime"]

# include/uapi/linux/time.h
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_BOOTTIME = 7
CLOCK_REALTIME_ALARM = 8
CLOCK_BOOTTIME_ALARM = 9
# include/uapi/linux/timerfd.h
TFD_TIMER_ABSTIME = 1 << 0
TFD_TIMER_CANCEL_ON_SET = 1 << 1
TFD_CLOEXEC = O_CLOEXEC
TFD_NONBLOCK = O_NONBLOCK
TFD_CREATE_FLAGS = TFD_CLOEXEC | TFD_NONBLOCK
TFD_SETTIME_FLAGS = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET

# The host clock each timerfd clock reads (the _ALARM clocks cannot wake
# a suspended host here; they are their plain clocks).
HOST_CLOCKS = {
    CLOCK_REALTIME: time.CLOCK_REALTIME,
    CLOCK_MONOTONIC: time.CLOCK_MONOTONIC,
    CLOCK_BOOTTIME: time.CLOCK_BOOTTIME,
    CLOCK_REALTIME_ALARM: time.CLOCK_REALTIME,
    CLOCK_BOOTTIME_ALARM: time.CLOCK_BOOTTIME,
}

NSEC_PER_SEC = 1_000_000_000
U64 = struct.Struct("<Q")
ITIMERSPEC = struct.Struct("<qqqq")  # it_interval {sec, nsec}, it_value {sec, nsec}


def read_itimerspec(task, gva: int) -> tuple[int, int]:
    """A guest struct itimerspec as (interval_ns, value_ns).

    EFAULT for a bad pointer, EINVAL when either timespec has tv_sec < 0
    or tv_nsec outside [0, 1e9) (itimerspec64_valid).
    """
    i_sec, i_nsec, v_sec, v_nsec = ITIMERSPEC.unpack(task.mm.copy_in(gva, ITIMERSPEC.size))
    for sec, nsec in ((i_sec, i_nsec), (v_sec, v_nsec)):
        if sec < 0 or not 0 <= nsec < NSEC_PER_SEC:
            raise SyscallError(errno.EINVAL)
    return i_sec * NSEC_PER_SEC + i_nsec, v_sec * NSEC_PER_SEC + v_nsec


def pack_itimerspec(interval_ns: int, value_ns: int) -> bytes:
    return ITIMERSPEC.pack(interval_ns // NSEC_PER_SEC, interval_ns % NSEC_PER_SEC,
                           value_ns // NSEC_PER_SEC, value_ns % NSEC_PER_SEC)


class TimerFd(File):
    """A timerfd (struct timerfd_ctx).

    ``expires_ns`` is the next expiry on the timer's clock (0: disarmed),
    ``interval_ns`` the period (0: one-shot), ``ticks`` the expirations
    not yet read. ``change_count`` grows with every change of state (for
    EPOLLET).
    """

    def __init__(self, clockid: int, flags: int, timers: hrtimer.HrtimerBase | None = None):
        super().__init__(O_RDWR | (flags & O_NONBLOCK), b"anon_inode:[timerfd]")
        # The sandbox's timer thread (sys_timerfd_create passes it).
        self._timers = timers if timers is not None else hrtimer.HrtimerBase()
        self.clockid = clockid
        self.host_clock = HOST_CLOCKS[clockid]
        self.expires_ns = 0
        self.interval_ns = 0
        self.ticks = 0
        self.change_count = 0
        self.wait_queue = sched.WaitQueue()
        self._host_timers: set[int] = set()  # expiries a host timer is pending for

    def now_ns(self) -> int:
        return time.clock_gettime_ns(self.host_clock)

    # -- expirations ------------------------------------------------------
    def update(self) -> None:
        """Count the expirations up to now (hrtimer_forward_now)."""
        if not self.expires_ns:
            return
        now = self.now_ns()
        if now < self.expires_ns:
            return
        if self.interval_ns:
            n = 1 + (now - self.expires_ns) // self.interval_ns
            self.expires_ns += n * self.interval_ns
        else:
            n = 1
            self.expires_ns = 0
        self.ticks += n
        self.change_count += 1

    def _changed(self) -> None:
        self.change_count += 1
        self.wait_queue.wake_all()
        POLL_WAITQUEUE.wake_all()

    def _watch(self) -> None:
        """Someone waits for the next expiry: have a host timer wake them then."""
        expires = self.expires_ns
        if not expires or expires in self._host_timers:
            return
        self._host_timers.add(expires)
        delay = max(0.0, (expires - self.now_ns()) / NSEC_PER_SEC)
        self._timers.start(delay, self._fire, expires)

    def _fire(self, expires: int) -> None:
        with sched.BKL:
            self._host_timers.discard(expires)
            if self.closed:
                return
            self.update()
            if not self.ticks:
                self._watch()  # early (clock skew) or re-armed later: wait on
            self._changed()

    def arm(self, value_ns: int, interval_ns: int, absolute: bool) -> None:
        """timerfd_setup: drop unread ticks, expire at ``value_ns`` (0: disarm)."""
        self.ticks = 0
        self.interval_ns = interval_ns
        if value_ns == 0:
            self.expires_ns = 0
        elif absolute:
            self.expires_ns = value_ns
        else:
            self.expires_ns = self.now_ns() + value_ns
        self._changed()

    def remaining_ns(self) -> int:
        """Time to the next expiry (0 when disarmed or already due)."""
        self.update()
        if not self.expires_ns:
            return 0
        return max(0, self.expires_ns - self.now_ns())

    # -- the file ----------------------------------------------------------
    def read(self, n: int) -> bytes:
        """timerfd_read: the u64 count of expirations since the last read.

        EINVAL for a buffer under 8 bytes; blocks while there is none
        (EAGAIN with O_NONBLOCK, ERESTARTSYS when a signal comes).
        """
        if n < U64.size:
            raise SyscallError(errno.EINVAL)
        self.update()
        if not self.ticks:
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)

            def expired() -> bool:
                self.update()
                if not self.ticks:
                    self._watch()
                return self.ticks > 0

            try:
                self.wait_queue.wait(None, expired)
            except sched.Interrupted:
                raise SyscallError(ERESTARTSYS) from None
        ticks, self.ticks = self.ticks, 0
        self.change_count += 1
        return U64.pack(ticks)

    def poll_events(self) -> int:
        """timerfd_poll: POLLIN when an expiration is unread.

        A poller may wait for the next expiry even when this one is unread
        (EPOLLET), so a host timer is set for it either way.
        """
        self.update()
        self._watch()
        return POLLIN if self.ticks else 0

    def stat(self) -> Stat:
        return Stat(st_dev=PIPEFS_DEV, st_ino=_ANON_INODE, st_nlink=1, st_mode=0o600,
                    st_blksize=4096)

    def release(self) -> None:
        self.closed = True


@syscall("timerfd_create")
def sys_timerfd_create(task, clockid, flags):
    """Implements Linux syscall timerfd_create(2).

    ``clockid`` CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME or their
    _ALARM forms (which do not wake a suspended host); others EINVAL.
    Flags TFD_NONBLOCK, TFD_CLOEXEC, others EINVAL. EMFILE at
    RLIMIT_NOFILE. The fd is O_RDWR; readlink shows "anon_inode:[timerfd]".
    """
    clockid, flags = to_int(clockid), to_int(flags)
    if flags & ~TFD_CREATE_FLAGS or clockid not in HOST_CLOCKS:
        raise SyscallError(errno.EINVAL)
    file = TimerFd(clockid, flags, hrtimer.base_of(task.kernel))
    try:
        return task.fds.install(file, bool(flags & TFD_CLOEXEC), limit=nofile_limit(task.process))
    except SyscallError:
        file.release()
        raise


def _timerfd(task, fd: int) -> TimerFd:
    """timerfd_fget: EBADF for a closed fd, EINVAL for one that is not a timerfd."""
    file = task.fds.get(to_int(fd))
    if not isinstance(file, TimerFd):
        raise SyscallError(errno.EINVAL)
    return file


@syscall("timerfd_settime", note="TFD_TIMER_CANCEL_ON_SET is accepted but never cancels")
def sys_timerfd_settime(task, ufd, flags, utmr, otmr):
    """Implements Linux syscall timerfd_settime(2).

    ``utmr`` is a struct itimerspec (it_interval, then it_value; ns
    resolution): it_value 0 disarms, else the first expiry, relative or on
    the timer's clock with TFD_TIMER_ABSTIME (a time already past expires
    at once); it_interval the period (0: one-shot). Unread expirations
    are dropped. The old setting goes to ``otmr`` when not null (as
    timerfd_gettime). EFAULT, EINVAL for unknown flags or a bad timespec,
    EBADF, EINVAL for an fd that is not a timerfd.
    Differs from Linux: TFD_TIMER_CANCEL_ON_SET never cancels (the
    sandbox's clock is never set).
    """
    interval_ns, value_ns = read_itimerspec(task, utmr)
    flags = to_int(flags)
    if flags & ~TFD_SETTIME_FLAGS:
        raise SyscallError(errno.EINVAL)
    timer = _timerfd(task, ufd)
    old = pack_itimerspec(timer.interval_ns, timer.remaining_ns())
    timer.arm(value_ns, interval_ns, bool(flags & TFD_TIMER_ABSTIME))
    if otmr:
        task.mm.copy_out(otmr, old)
    return 0


@syscall("timerfd_gettime")
def sys_timerfd_gettime(task, ufd, otmr):
    """Implements Linux syscall timerfd_gettime(2): interval and time to the next expiry.

    The it_value is 0 for a disarmed timer. EBADF, EINVAL (not a
    timerfd), EFAULT.
    """
    timer = _timerfd(task, ufd)
    task.mm.copy_out(otmr, pack_itimerspec(timer.interval_ns, timer.remaining_ns()))
    return 0
