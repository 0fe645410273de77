"""Signal syscalls beyond sigaction/sigprocmask: return, wait, pending, timers.

rt_sigreturn (arch/x86/kernel/signal.c), rt_sigsuspend/pause/
rt_sigtimedwait/rt_sigpending (kernel/signal.c), alarm/setitimer/
getitimer for ITIMER_REAL (kernel/time/itimer.c): the sandbox's timer
thread (kernel/hrtimer.py) sends SIGALRM to the process.
"""

from __future__ import annotations

import errno
import signal as _signal
import struct
import time

from kvmsentry.kernel import hrtimer, sched, signals
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.syscalls.table import SyscallError, syscall

ITIMER_REAL = 0
ITIMER_VIRTUAL = 1
ITIMER_PROF = 2
_SIGSET_SIZE = 8


class ForceSigsegv(Exception):
    """rt_sigreturn found no readable frame: the task dies of SIGSEGV."""


@syscall("rt_sigreturn")
def sys_rt_sigreturn(task) -> int:
    """Implements Linux syscall rt_sigreturn(2): back from a handler to the saved state.

    Returns the saved rax (the dispatcher writes it back). An unreadable
    frame kills the process with SIGSEGV, as Linux's force_sig.
    """
    try:
        return signals.restore_frame(task)
    except GuestFault:
        raise ForceSigsegv() from None


def _read_mask(task, gva: int, size: int) -> int:
    if size != _SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    return struct.unpack("<Q", task.mm.copy_in(gva, 8))[0]




@syscall("pause")
def sys_pause(task) -> int:
    """Implements Linux syscall pause(2): sleep until a signal's handler has run; EINTR."""
    try:
        sched.WaitQueue().wait(task, lambda: False)
    except sched.Interrupted:
        pass
    raise SyscallError(signals.ERESTARTNOHAND)


@syscall("rt_sigsuspend")
def sys_rt_sigsuspend(task, mask_gva: int, sigsetsize: int) -> int:
    """Implements Linux syscall rt_sigsuspend(2): wait under a temporary mask; EINTR.

    The handler runs under the temporary mask; its frame saves the
    caller's own mask, which rt_sigreturn puts back (kernel/signal.c
    set_restore_sigmask). EINVAL for a sigsetsize other than 8.
    """
    mask = _read_mask(task, mask_gva, sigsetsize)
    task.saved_sigmask = task.sigmask
    task.sigmask = mask & ~signals.UNBLOCKABLE
    try:
        sched.WaitQueue().wait(task, lambda: False)
    except sched.Interrupted:
        pass
    raise SyscallError(signals.ERESTARTNOHAND)


@syscall("rt_sigpending")
def sys_rt_sigpending(task, set_gva: int, sigsetsize: int) -> int:
    """Implements Linux syscall rt_sigpending(2): pending signals that are blocked."""
    if sigsetsize > _SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    pending = (task.pending | task.process.pending) & task.sigmask
    task.mm.copy_out(set_gva, struct.pack("<Q", pending)[:sigsetsize])
    return 0


@syscall("rt_sigtimedwait")
def sys_rt_sigtimedwait(task, set_gva: int, info_gva: int, timeout_gva: int, sigsetsize: int) -> int:
    """Implements Linux syscall rt_sigtimedwait(2): take one signal of ``set`` synchronously.

    Returns the signal number; EAGAIN on timeout; EINTR when another
    signal is to be handled; EINVAL for a bad timespec or set size.
    """
    wanted = _read_mask(task, set_gva, sigsetsize) & ~signals.UNBLOCKABLE
    timeout = None
    if timeout_gva:
        sec, nsec = struct.unpack("<qq", task.mm.copy_in(timeout_gva, 16))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(errno.EINVAL)
        timeout = sec + nsec / 1e9

    old = task.sigmask
    # While waiting, the wanted signals count as unblocked... but are taken
    # here rather than delivered: block them so handle_signals skips them.
    task.sigmask |= wanted
    try:
        if signals.next_pending(task, wanted) is None:
            try:
                sched.WaitQueue().wait(task, lambda: signals.next_pending(task, wanted) is not None, timeout)
            except sched.Interrupted:
                raise SyscallError(errno.EINTR) from None
        found = signals.next_pending(task, wanted)
        if found is None:
            raise SyscallError(errno.EAGAIN)
    finally:
        task.sigmask = old
    holder, signo = found
    info = signals.dequeue_signal(holder, signo)
    if info_gva:
        task.mm.copy_out(info_gva, info or signals.siginfo(signo))
    return signo


# -- ITIMER_REAL and alarm --------------------------------------------------------
class RealTimer:
    """A process's ITIMER_REAL: SIGALRM after ``value`` s, then every ``interval`` s.

    Expiries come from the sandbox's timer thread (kernel/hrtimer.py), not
    a host thread each; an interval timer re-arms from its own expiry
    (kernel/time/itimer.c it_real_fn: one SIGALRM per expiry, the next
    deadline ``interval`` after the one that fired, never in the past).
    """

    def __init__(self, kernel, process):
        self.kernel = kernel
        self.process = process
        self.deadline = 0.0  # time.monotonic() of the next expiry; 0: disarmed
        self.interval = 0.0
        self._generation = 0
        self._hrtimer = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic()) if self.deadline else 0.0

    def arm(self, value: float, interval: float) -> None:
        """setitimer(ITIMER_REAL)/alarm: expire after ``value`` s, then every
        ``interval`` s (0: once); ``value`` 0 disarms (BKL held)."""
        self._generation += 1
        self.interval = interval
        base = hrtimer.base_of(self.kernel)
        base.cancel(self._hrtimer)
        self._hrtimer = None
        if value <= 0:
            self.deadline = 0.0
            return
        self.deadline = time.monotonic() + value
        self._hrtimer = base.start(value, self._fire, self._generation)

    def _fire(self, generation: int) -> None:
        """The timer thread: SIGALRM, and the next expiry of an interval timer."""
        with sched.BKL:
            if generation != self._generation or self.process.wait_status is not None:
                return
            self.kernel.send_signal(self.process, _signal.SIGALRM)
            if self.interval > 0:
                # From the deadline that fired (it_real_fn's hrtimer_forward),
                # skipping whole periods the sentry was late for.
                now = time.monotonic()
                deadline = self.deadline + self.interval
                if deadline <= now:
                    deadline += ((now - deadline) // self.interval + 1) * self.interval
                self.deadline = deadline
                self._hrtimer = hrtimer.base_of(self.kernel).start(deadline - now, self._fire, generation)
            else:
                self.deadline = 0.0
                self._hrtimer = None


def _timer(task) -> RealTimer:
    process = task.process
    if getattr(process, "real_timer", None) is None:
        process.real_timer = RealTimer(task.kernel, process)
    return process.real_timer


def _pack_itimerval(interval: float, value: float) -> bytes:
    def split(seconds: float) -> tuple[int, int]:
        usec = int(round(seconds * 1e6))
        return usec // 1_000_000, usec % 1_000_000
    return struct.pack("<qqqq", *split(interval), *split(value))


@syscall("alarm")
def sys_alarm(task, seconds: int) -> int:
    """Implements Linux syscall alarm(2): returns the seconds left of the previous alarm."""
    timer = _timer(task)
    left = timer.remaining()
    timer.arm(float(seconds & 0xFFFFFFFF), 0.0)
    return int(left + 0.999999) if left else 0


@syscall("setitimer", support="partial", note="ITIMER_REAL; ITIMER_VIRTUAL/PROF: EINVAL")
def sys_setitimer(task, which: int, new_gva: int, old_gva: int) -> int:
    """Implements Linux syscall setitimer(2) for ITIMER_REAL. EINVAL for a bad timeval."""
    if which != ITIMER_REAL:
        raise SyscallError(errno.EINVAL)
    timer = _timer(task)
    if old_gva:
        task.mm.copy_out(old_gva, _pack_itimerval(timer.interval, timer.remaining()))
    if new_gva:
        i_sec, i_usec, v_sec, v_usec = struct.unpack("<qqqq", task.mm.copy_in(new_gva, 32))
        for sec, usec in ((i_sec, i_usec), (v_sec, v_usec)):
            if sec < 0 or not 0 <= usec < 1_000_000:
                raise SyscallError(errno.EINVAL)
        timer.arm(v_sec + v_usec / 1e6, i_sec + i_usec / 1e6)
    return 0


@syscall("getitimer", support="partial", note="ITIMER_REAL; others report zero")
def sys_getitimer(task, which: int, value_gva: int) -> int:
    """Implements Linux syscall getitimer(2)."""
    if which not in (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
        raise SyscallError(errno.EINVAL)
    if which == ITIMER_REAL:
        timer = _timer(task)
        task.mm.copy_out(value_gva, _pack_itimerval(timer.interval, timer.remaining()))
    else:
        task.mm.copy_out(value_gva, bytes(32))
    return 0
