"""POSIX timers, resource usage and scheduling parameters.

timer_create/settime/gettime/getoverrun/delete (kernel/time/posix-timers.c,
timer_create(2)): per-process timers numbered from 0 whose expiries are
signals, sent under the BKL with an SI_TIMER siginfo by the sandbox's
timer thread (kernel/hrtimer.py). getrusage, times (kernel/sys.c), sched_setaffinity,
sched_getscheduler/setscheduler/getparam/setparam,
sched_get_priority_max/min (kernel/sched/syscalls.c), getpriority and
setpriority (kernel/sys.c).

Importing this module registers the handlers.
"""

from __future__ import annotations

import errno
import os
import struct
import time

from kvmsentry.kernel import hrtimer, sched
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall
from kvmsentry.kernel.syscalls.timerfd import pack_itimerspec, read_itimerspec

__all__ = ["PosixTimer", "siginfo_timer"]

# include/uapi/linux/time.h
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_BOOTTIME = 7
CLOCK_REALTIME_ALARM = 8
CLOCK_BOOTTIME_ALARM = 9
CLOCK_TAI = 11
TIMER_ABSTIME = 1
HOST_CLOCKS = {
    CLOCK_REALTIME: time.CLOCK_REALTIME,
    CLOCK_MONOTONIC: time.CLOCK_MONOTONIC,
    CLOCK_BOOTTIME: time.CLOCK_BOOTTIME,
    CLOCK_REALTIME_ALARM: time.CLOCK_REALTIME,
    CLOCK_BOOTTIME_ALARM: time.CLOCK_BOOTTIME,
    CLOCK_TAI: getattr(time, "CLOCK_TAI", 11),
}

# include/uapi/asm-generic/siginfo.h
SIGEV_SIGNAL = 0
SIGEV_NONE = 1
SIGEV_THREAD = 2
SIGEV_THREAD_ID = 4
SI_TIMER = -2
SIGALRM = 14
SIGRTMAX = 64
DELAYTIMER_MAX = 0x7FFFFFFF
# struct sigevent: sigev_value (u64), sigev_signo, sigev_notify, then the
# union whose first member is the thread id for SIGEV_THREAD_ID; 64 bytes.
SIGEVENT = struct.Struct("<Qiii")
SIGEVENT_SIZE = 64
NSEC_PER_SEC = 1_000_000_000
I32 = struct.Struct("<i")


def siginfo_timer(signo: int, timerid: int, overrun: int, value: int) -> bytes:
    """A 128-byte siginfo_t for a POSIX timer: SI_TIMER, si_tid, si_overrun, si_value."""
    info = bytearray(128)
    struct.pack_into("<iii", info, 0, signo, 0, SI_TIMER)
    struct.pack_into("<iiQ", info, 16, timerid, min(overrun, DELAYTIMER_MAX), value)
    return bytes(info)


def _timers(process) -> dict:
    """The process's POSIX timers by id (created on first use)."""
    timers = getattr(process, "posix_timers", None)
    if timers is None:
        timers = process.posix_timers = {}
    return timers


class PosixTimer:
    """One POSIX timer (struct k_itimer).

    ``expires_ns`` is the next expiry on ``host_clock`` (0: disarmed),
    ``interval_ns`` the period. ``notify`` is SIGEV_SIGNAL, SIGEV_NONE or
    SIGEV_THREAD_ID (then ``target`` is the thread). ``overrun`` counts
    expiries that found the timer's previous signal still pending.
    """

    def __init__(self, kernel, process, timerid: int, clockid: int, notify: int, signo: int,
                 value: int, target=None):
        self.kernel = kernel
        self.process = process
        self.timerid = timerid
        self.host_clock = HOST_CLOCKS[clockid]
        self.notify = notify
        self.signo = signo
        self.value = value
        self.target = target
        self.expires_ns = 0
        self.interval_ns = 0
        self.overrun = 0
        self.last_overrun = 0
        self.deleted = False
        self._generation = 0
        self._hrtimer = None  # the timer thread's callback for the next expiry
        self._queued: bytes | None = None  # the siginfo of our signal, while pending

    def now_ns(self) -> int:
        return time.clock_gettime_ns(self.host_clock)

    def _advance(self, now: int) -> int:
        """Move ``expires_ns`` past ``now``; the number of expiries passed."""
        if not self.expires_ns or now < self.expires_ns:
            return 0
        if not self.interval_ns:
            self.expires_ns = 0
            return 1
        n = 1 + (now - self.expires_ns) // self.interval_ns
        self.expires_ns += n * self.interval_ns
        return n

    def remaining_ns(self) -> int:
        """Time to the next expiry; 0 when disarmed."""
        if not self.expires_ns:
            return 0
        now = self.now_ns()
        if self.notify == SIGEV_NONE:
            self._advance(now)  # no signal to send: expiries only move the time on
            if not self.expires_ns:
                return 0
        return max(0, self.expires_ns - now)

    def arm(self, value_ns: int, interval_ns: int, absolute: bool) -> None:
        """common_timer_set: expire at ``value_ns`` (0: disarm), then every ``interval_ns``."""
        self._generation += 1
        hrtimer.base_of(self.kernel).cancel(self._hrtimer)
        self._hrtimer = None
        self.interval_ns = interval_ns
        self.overrun = 0
        if value_ns == 0:
            self.expires_ns = 0
            return
        self.expires_ns = value_ns if absolute else self.now_ns() + value_ns
        if self.notify != SIGEV_NONE:
            self._start(self._generation)

    def _start(self, generation: int) -> None:
        """Have the timer thread call _fire at ``expires_ns`` (BKL held)."""
        delay = max(0.0, (self.expires_ns - self.now_ns()) / NSEC_PER_SEC)
        self._hrtimer = hrtimer.base_of(self.kernel).start(delay, self._fire, generation)

    def delete(self) -> None:
        self.deleted = True
        self._generation += 1
        self.expires_ns = 0
        hrtimer.base_of(self.kernel).cancel(self._hrtimer)
        self._hrtimer = None

    def _fire(self, generation: int) -> None:
        with sched.BKL:
            if generation != self._generation or self.deleted:
                return
            if self.process.wait_status is not None:
                return
            expiries = self._advance(self.now_ns())
            if not expiries:
                if self.expires_ns:
                    self._start(generation)  # woke early
                return
            self._send(expiries)
            if self.expires_ns:
                self._start(generation)

    def _send(self, expiries: int) -> None:
        """posix_timer_fn: queue the signal, or count overruns while it is still pending."""
        holder = self.target if self.target is not None and not self.target.exited else None
        queue = holder if holder is not None else self.process
        bit = 1 << (self.signo - 1)
        if self._queued is not None and queue.pending & bit:
            # A real-time signal's instances are a list (signals.queue_signal).
            held = queue.siginfo.get(self.signo)
            instances = held if isinstance(held, list) else [held]
            for i, info in enumerate(instances):
                if info is self._queued:
                    self.overrun += expiries
                    self._queued = siginfo_timer(self.signo, self.timerid, self.overrun, self.value)
                    if isinstance(held, list):
                        held[i] = self._queued
                    else:
                        queue.siginfo[self.signo] = self._queued
                    self.last_overrun = self.overrun
                    return
        self.overrun = expiries - 1
        self.last_overrun = self.overrun
        info = siginfo_timer(self.signo, self.timerid, self.overrun, self.value)
        self._queued = info
        self.kernel.send_signal(self.process, self.signo, holder, info=info)


def _find_task(task, tid: int):
    """The live task ``tid`` of the sandbox (the caller for 0), or None."""
    if tid == 0 or tid == task.tid:
        return task
    kernel = task.kernel
    if kernel is None:
        return None
    return kernel.tasks.get(tid)


@syscall("timer_create", PARTIAL, "no CPU-time clocks (EINVAL)")
def sys_timer_create(task, which_clock, timer_event_spec, created_timer_id):
    """Implements Linux syscall timer_create(2).

    Clocks REALTIME, MONOTONIC, BOOTTIME, TAI and the _ALARM forms;
    CPU-time clocks are EINVAL here (Linux supports them). ``timer_event_spec``
    (struct sigevent, null: SIGEV_SIGNAL with SIGALRM and the timer id as
    si_value) may ask for SIGEV_SIGNAL (or SIGEV_THREAD, which the kernel
    treats alike), SIGEV_NONE, or SIGEV_SIGNAL|SIGEV_THREAD_ID with a
    thread of the caller's process. The new id (the lowest free from 0)
    is stored as an int at ``created_timer_id``. EINVAL for a bad clock,
    notify, signal (1..64) or thread, EFAULT.
    """
    clockid = to_int(which_clock)
    if clockid not in HOST_CLOCKS:
        raise SyscallError(errno.EINVAL)
    target = None
    if timer_event_spec:
        value, signo, notify, tid = SIGEVENT.unpack(task.mm.copy_in(timer_event_spec, SIGEVENT.size))
        if notify == SIGEV_SIGNAL | SIGEV_THREAD_ID:
            target = _find_task(task, tid)
            if target is None or target.process is not task.process or target.exited:
                raise SyscallError(errno.EINVAL)
        elif notify not in (SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_NONE):
            raise SyscallError(errno.EINVAL)
        if notify != SIGEV_NONE and not 0 < signo <= SIGRTMAX:
            raise SyscallError(errno.EINVAL)
        if notify == SIGEV_THREAD:
            notify = SIGEV_SIGNAL
    else:
        value, signo, notify = None, SIGALRM, SIGEV_SIGNAL
    timers = _timers(task.process)
    timerid = 0
    while timerid in timers:
        timerid += 1
    task.mm.copy_out(created_timer_id, I32.pack(timerid))
    timers[timerid] = PosixTimer(task.kernel, task.process, timerid, clockid, notify, signo,
                                 timerid if value is None else value, target)
    return 0


def _timer(task, timer_id: int) -> PosixTimer:
    timer = _timers(task.process).get(to_int(timer_id))
    if timer is None:
        raise SyscallError(errno.EINVAL)
    return timer


@syscall("timer_settime")
def sys_timer_settime(task, timer_id, flags, new_setting, old_setting):
    """Implements Linux syscall timer_settime(2).

    ``new_setting`` is a struct itimerspec (it_interval, it_value): it_value
    0 disarms, else the first expiry, relative or absolute on the timer's
    clock with TIMER_ABSTIME. The old setting goes to ``old_setting`` when
    not null. EINVAL for a null or invalid setting or an unknown timer id,
    EFAULT.
    """
    if not new_setting:
        raise SyscallError(errno.EINVAL)
    interval_ns, value_ns = read_itimerspec(task, new_setting)
    timer = _timer(task, timer_id)
    old = pack_itimerspec(timer.interval_ns, timer.remaining_ns())
    timer.arm(value_ns, interval_ns, bool(to_int(flags) & TIMER_ABSTIME))
    if old_setting:
        task.mm.copy_out(old_setting, old)
    return 0


@syscall("timer_gettime")
def sys_timer_gettime(task, timer_id, setting):
    """Implements Linux syscall timer_gettime(2): interval and time to the next expiry.

    EINVAL for an unknown timer id, EFAULT.
    """
    timer = _timer(task, timer_id)
    task.mm.copy_out(setting, pack_itimerspec(timer.interval_ns, timer.remaining_ns()))
    return 0


@syscall("timer_getoverrun")
def sys_timer_getoverrun(task, timer_id):
    """Implements Linux syscall timer_getoverrun(2).

    The overrun count of the timer's latest signal (expiries that came
    while it was pending), at most DELAYTIMER_MAX. EINVAL for an unknown id.
    """
    return min(_timer(task, timer_id).last_overrun, DELAYTIMER_MAX)


@syscall("timer_delete")
def sys_timer_delete(task, timer_id):
    """Implements Linux syscall timer_delete(2): disarm and free the id. EINVAL for an unknown id."""
    timer = _timer(task, timer_id)
    timer.delete()
    del _timers(task.process)[timer.timerid]
    return 0


def delete_all_timers(process) -> None:
    """exit/execve: every POSIX timer of ``process`` goes (exit_itimers); BKL held."""
    for timer in _timers(process).values():
        timer.delete()
    process.posix_timers = {}


# -- resource usage -----------------------------------------------------------------

RUSAGE_SELF = 0
RUSAGE_CHILDREN = -1
RUSAGE_THREAD = 1
# struct rusage: ru_utime, ru_stime (struct timeval), then 14 longs; 144 bytes.
RUSAGE = struct.Struct("<qqqq14q")
TMS = struct.Struct("<qqqq")  # struct tms: utime, stime, cutime, cstime in clock ticks
USER_HZ = 100


def _timeval(seconds: float) -> tuple[int, int]:
    usec = int(seconds * 1_000_000)
    return usec // 1_000_000, usec % 1_000_000


@syscall("getrusage", PARTIAL, "CPU times are the sentry's; counters and maxrss are 0")
def sys_getrusage(task, who, ru):
    """Implements Linux syscall getrusage(2).

    RUSAGE_SELF reports the sentry's own user and system CPU time (which
    includes every guest thread it runs), RUSAGE_THREAD the calling host
    thread's CPU time as user time, RUSAGE_CHILDREN zero. Every other
    field (ru_maxrss, faults, context switches) is 0. EINVAL for another
    ``who``, EFAULT.
    """
    who = to_int(who)
    if who == RUSAGE_SELF:
        t = os.times()
        utime, stime = t.user, t.system
    elif who == RUSAGE_THREAD:
        utime, stime = time.thread_time(), 0.0
    elif who == RUSAGE_CHILDREN:
        utime = stime = 0.0
    else:
        raise SyscallError(errno.EINVAL)
    task.mm.copy_out(ru, RUSAGE.pack(*_timeval(utime), *_timeval(stime), *([0] * 14)))
    return 0


@syscall("times", PARTIAL, "CPU times are the sentry's own; children's are 0")
def sys_times(task, tbuf):
    """Implements Linux syscall times(2).

    ``tbuf`` (may be null) gets the sentry's user and system CPU time in
    clock ticks (USER_HZ = 100) and zero for children. Returns the ticks
    since the host booted (CLOCK_BOOTTIME). EFAULT.
    """
    if tbuf:
        t = os.times()
        task.mm.copy_out(tbuf, TMS.pack(int(t.user * USER_HZ), int(t.system * USER_HZ), 0, 0))
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * USER_HZ)


# -- scheduling --------------------------------------------------------------------

SCHED_OTHER = 0
SCHED_FIFO = 1
SCHED_RR = 2
SCHED_BATCH = 3
SCHED_IDLE = 5
SCHED_DEADLINE = 6
SCHED_RESET_ON_FORK = 0x40000000
MAX_RT_PRIO = 100


def _sched_task(task, pid: int):
    """find_process_by_pid: EINVAL for pid < 0, ESRCH when the sandbox has no such task."""
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    target = _find_task(task, pid)
    if target is None:
        raise SyscallError(errno.ESRCH)
    return target


@syscall("sched_setaffinity", PARTIAL, "accepted, not applied")
def sys_sched_setaffinity(task, pid, len_, user_mask_ptr):
    """Implements Linux syscall sched_setaffinity(2).

    ``user_mask_ptr`` is a CPU bitmask of ``len_`` bytes (only the first
    cpumask_size() bytes, whole longs for the CPUs, are read). EINVAL when
    it names none of the CPUs offered to the guest (0..n-1, n the host
    CPUs the sentry may use), ESRCH, EFAULT.
    Differs from Linux: the mask is not applied (guest threads run on the
    sentry's host CPUs) and sched_getaffinity keeps reporting all CPUs.
    """
    _sched_task(task, to_int(pid))
    ncpu = len(os.sched_getaffinity(0))
    size = (ncpu + 63) // 64 * 8  # cpumask_size(): whole longs
    length = min(len_ & 0xFFFFFFFF, size)
    mask = int.from_bytes(task.mm.copy_in(user_mask_ptr, length), "little")
    if not mask & ((1 << ncpu) - 1):
        raise SyscallError(errno.EINVAL)
    return 0


@syscall("sched_getscheduler")
def sys_sched_getscheduler(task, pid):
    """Implements Linux syscall sched_getscheduler(2): SCHED_OTHER. EINVAL, ESRCH."""
    _sched_task(task, to_int(pid))
    return SCHED_OTHER


@syscall("sched_getparam")
def sys_sched_getparam(task, pid, param):
    """Implements Linux syscall sched_getparam(2): sched_priority 0 (an int). EINVAL, ESRCH, EFAULT."""
    if not param:
        raise SyscallError(errno.EINVAL)
    _sched_task(task, to_int(pid))
    task.mm.copy_out(param, I32.pack(0))
    return 0


def _check_sched(task, pid: int, policy: int | None, param: int) -> None:
    """sched_setscheduler's checks; only SCHED_OTHER/BATCH/IDLE with priority 0 succeed.

    ``policy`` None keeps SCHED_OTHER (sched_setparam). EINVAL for a null
    param, pid < 0, an unknown policy or a priority that does not fit it;
    EPERM for the real-time policies (a sandbox does not give them), ESRCH.
    """
    if not param or pid < 0:
        raise SyscallError(errno.EINVAL)
    (priority,) = I32.unpack(task.mm.copy_in(param, I32.size))
    _sched_task(task, pid)
    if policy is None:
        policy = SCHED_OTHER
    policy &= ~SCHED_RESET_ON_FORK
    if policy not in (SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE):
        raise SyscallError(errno.EINVAL)
    if policy in (SCHED_FIFO, SCHED_RR):
        if not 1 <= priority <= MAX_RT_PRIO - 1:
            raise SyscallError(errno.EINVAL)
        raise SyscallError(errno.EPERM)
    if priority != 0:
        raise SyscallError(errno.EINVAL)


@syscall("sched_setscheduler", PARTIAL, "SCHED_OTHER/BATCH/IDLE only; real-time policies EPERM")
def sys_sched_setscheduler(task, pid, policy, param):
    """Implements Linux syscall sched_setscheduler(2); see _check_sched. Nothing changes."""
    _check_sched(task, to_int(pid), to_int(policy), param)
    return 0


@syscall("sched_setparam")
def sys_sched_setparam(task, pid, param):
    """Implements Linux syscall sched_setparam(2): only priority 0 (SCHED_OTHER). EINVAL, ESRCH."""
    _check_sched(task, to_int(pid), None, param)
    return 0


@syscall("sched_get_priority_max")
def sys_sched_get_priority_max(task, policy):
    """Implements Linux syscall sched_get_priority_max(2): 99 for FIFO/RR, 0 else; EINVAL."""
    policy = to_int(policy)
    if policy in (SCHED_FIFO, SCHED_RR):
        return MAX_RT_PRIO - 1
    if policy in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE):
        return 0
    raise SyscallError(errno.EINVAL)


@syscall("sched_get_priority_min")
def sys_sched_get_priority_min(task, policy):
    """Implements Linux syscall sched_get_priority_min(2): 1 for FIFO/RR, 0 else; EINVAL."""
    policy = to_int(policy)
    if policy in (SCHED_FIFO, SCHED_RR):
        return 1
    if policy in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE):
        return 0
    raise SyscallError(errno.EINVAL)


# -- nice values ----------------------------------------------------------------------

PRIO_PROCESS = 0
PRIO_PGRP = 1
PRIO_USER = 2
MIN_NICE = -20
MAX_NICE = 19


def _prio_tasks(task, which: int, who: int) -> list:
    """The tasks getpriority/setpriority act on; EINVAL for a bad ``which``."""
    if which == PRIO_PROCESS:
        target = _find_task(task, who)
        return [target] if target is not None else []
    kernel = task.kernel
    everyone = list(kernel.tasks.values()) if kernel is not None else [task]
    if which == PRIO_PGRP:
        pgid = who or task.process.pgid
        return [t for t in everyone if t.process.pgid == pgid]
    if which == PRIO_USER:
        uid = who or task.process.creds.uid
        return [t for t in everyone if t.process.creds.uid == uid]
    raise SyscallError(errno.EINVAL)


@syscall("getpriority")
def sys_getpriority(task, which, who):
    """Implements Linux syscall getpriority(2).

    Returns 20 - nice of the highest-priority task matched (the kernel's
    biased value, 1..40; libc turns it back into a nice value). EINVAL for
    a bad ``which``, ESRCH when nothing matches.
    """
    tasks = _prio_tasks(task, to_int(which), to_int(who))
    if not tasks:
        raise SyscallError(errno.ESRCH)
    return max(20 - getattr(t, "nice", 0) for t in tasks)


@syscall("setpriority", PARTIAL, "the nice value is recorded, not applied")
def sys_setpriority(task, which, who, niceval):
    """Implements Linux syscall setpriority(2).

    ``niceval`` is clamped to -20..19 and recorded per task (getpriority
    reports it); scheduling is not affected. EINVAL, ESRCH.
    """
    tasks = _prio_tasks(task, to_int(which), to_int(who))
    if not tasks:
        raise SyscallError(errno.ESRCH)
    nice = max(MIN_NICE, min(MAX_NICE, to_int(niceval)))
    for t in tasks:
        t.nice = nice
    return 0
