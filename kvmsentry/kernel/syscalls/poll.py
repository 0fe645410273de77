"""poll, ppoll, select, pselect6: readiness of any fds (fs/select.c).

A file's readiness is ``file_poll(file)``, Linux's vfs_poll: files with a
``poll_events()`` method (pipes, eventfds) answer for themselves, the
sentry's own stdio (``HostStream``) is asked of the host with a zero
timeout, O_PATH fds are POLLNVAL and every other file (regular files,
devices, directories) is always ready for reading and writing
(DEFAULT_POLLMASK, as Linux for a file without a poll operation).

Waiting: after a scan finds nothing ready, the task sleeps on
``POLL_WAITQUEUE`` (kvmsentry.kernel.pipe), which every pipe and eventfd
wakes on a change of state, and scans again. When a HostStream is among
the fds the sleep lasts at most HOST_TICK (10 ms), since the host cannot
wake the queue. A signal for the task ends the wait with ERESTARTNOHAND:
EINTR when a handler runs (select and poll are never restarted after a
handler, signal(7)), a restart when none does. Importing this module
registers the handlers.
"""

from __future__ import annotations

import errno
import select as _host_select
import struct
import time

from kvmsentry.kernel import sched, signals
from kvmsentry.kernel.fd import O_PATH, HostStream, nofile_limit
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.pipe import (POLL_WAITQUEUE, POLLERR, POLLHUP, POLLIN, POLLNVAL,
                                   POLLOUT, POLLPRI, POLLRDBAND, POLLRDNORM, POLLWRBAND,
                                   POLLWRNORM)
from kvmsentry.kernel.signals import ERESTARTNOHAND
from kvmsentry.kernel.syscalls.table import SyscallError, syscall

__all__ = ["POLL_WAITQUEUE", "file_poll", "sys_poll", "sys_ppoll", "sys_select",
           "sys_pselect6"]

# include/linux/poll.h: a file without a poll operation.
DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM
# fs/select.c: which poll bits make an fd ready in each select set.
POLLIN_SET = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR
POLLOUT_SET = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR
POLLEX_SET = POLLPRI

# Longest sleep between scans when a host fd (which cannot wake us) is polled.
HOST_TICK = 0.010
# Longest single sleep otherwise (Condition.wait refuses huge timeouts).
MAX_SLEEP = 3600.0

POLLFD = struct.Struct("<ihh")  # struct pollfd: fd, events, revents
REVENTS = struct.Struct("<H")
REVENTS_OFFSET = 6
TIMESPEC = struct.Struct("<qq")  # struct __kernel_timespec: tv_sec, tv_nsec
TIMEVAL = struct.Struct("<qq")  # struct __kernel_old_timeval: tv_sec, tv_usec
SIGSET = struct.Struct("<Q")
SIGSET_ARGPACK = struct.Struct("<QQ")  # pselect6's {const sigset_t *ss; size_t ss_len}
NSEC_PER_SEC = 1_000_000_000
USEC_PER_SEC = 1_000_000

SIGKILL, SIGSTOP = 9, 19

_HOST_EVENTS = (POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM
                | POLLWRBAND)


def _host_poll(host_fd: int) -> int:
    """The host's POLL* bits for one of the sentry's own fds, without waiting."""
    p = _host_select.poll()
    p.register(host_fd, _HOST_EVENTS)
    ready = p.poll(0)
    return ready[0][1] if ready else 0


def file_poll(file) -> int:
    """Readiness of an open file as POLL* bits (Linux vfs_poll); never blocks."""
    if file.flags & O_PATH:
        return POLLNVAL
    poll_events = getattr(file, "poll_events", None)
    if poll_events is not None:
        return poll_events()
    if isinstance(file, HostStream):
        return _host_poll(file.host_fd)
    return DEFAULT_POLLMASK


def _is_host(file) -> bool:
    return isinstance(file, HostStream)


# -- timeouts --------------------------------------------------------------

def _deadline(sec: int, nsec: int) -> float | None:
    """poll_select_set_timeout: EINVAL unless sec >= 0 and 0 <= nsec < 1e9.

    Returns a time.monotonic() deadline; 0.0 means a zero timeout (return
    at once, and no remaining time is written back).
    """
    if sec < 0 or not 0 <= nsec < NSEC_PER_SEC:
        raise SyscallError(errno.EINVAL)
    if sec == 0 and nsec == 0:
        return 0.0
    return time.monotonic() + sec + nsec / NSEC_PER_SEC


# The largest time left a struct timespec holds (its tv_sec is an s64): a
# deadline as far out as the guest may ask lands a little beyond, in float.
_MAX_REMAINING_NS = ((1 << 63) - 1) * NSEC_PER_SEC


def _remaining_ns(deadline: float) -> int:
    return min(max(0, int((deadline - time.monotonic()) * NSEC_PER_SEC)), _MAX_REMAINING_NS)


def _read_timespec(task, gva: int) -> float | None:
    """A guest struct __kernel_timespec as a deadline (None: no pointer, infinite)."""
    if not gva:
        return None
    sec, nsec = TIMESPEC.unpack(task.mm.copy_in(gva, TIMESPEC.size))
    return _deadline(sec, nsec)


def _ctrunc_divmod(a: int, b: int) -> tuple[int, int]:
    """C's a / b and a % b (truncation toward zero)."""
    q = abs(a) // b
    q = q if a >= 0 else -q
    return q, a - q * b


def _write_back(task, gva: int, deadline: float | None, timeval: bool) -> bool:
    """poll_select_finish: store the time left; False when the store faulted.

    Nothing to store (True) for a null pointer or a zero timeout. A fault
    is not an error (Linux's "sticky" case), but the call then cannot be
    restarted with the time left: the caller turns ERESTARTNOHAND into
    EINTR.
    """
    if not gva or not deadline:
        return True
    sec, nsec = divmod(_remaining_ns(deadline), NSEC_PER_SEC)
    data = TIMEVAL.pack(sec, nsec // 1000) if timeval else TIMESPEC.pack(sec, nsec)
    try:
        task.mm.copy_out(gva, data)
    except GuestFault:
        return False
    return True


# -- signal masks -------------------------------------------------------------

def _set_sigmask(task, mask_gva: int, sigsetsize: int) -> int | None:
    """set_user_sigmask: install the guest's sigset for the call; returns the old mask.

    None when ``mask_gva`` is null (mask unchanged). EINVAL when
    ``sigsetsize`` is not 8, EFAULT for a bad pointer. SIGKILL and
    SIGSTOP stay unblocked.
    """
    if not mask_gva:
        return None
    if sigsetsize != SIGSET.size:
        raise SyscallError(errno.EINVAL)
    (mask,) = SIGSET.unpack(task.mm.copy_in(mask_gva, SIGSET.size))
    old = task.sigmask
    task.sigmask = mask & ~signals.UNBLOCKABLE
    return old


# -- waiting --------------------------------------------------------------------

def _wait(task, scan, deadline: float | None, host: bool) -> int:
    """Scan until something is ready, the deadline passes, or a signal comes.

    ``scan()`` returns the number of ready fds (and records which). A
    ``deadline`` of 0.0 scans once; None waits forever. ERESTARTNOHAND
    when the task has a pending signal and nothing is ready, even with a
    zero timeout (do_poll/do_select).
    """
    count = scan()
    while not count:
        if task is not None and task.signal_pending():
            raise SyscallError(ERESTARTNOHAND)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return 0
        else:
            remaining = MAX_SLEEP
        sleep = min(remaining, HOST_TICK if host else MAX_SLEEP)
        result = [0]

        def ready() -> bool:
            result[0] = scan()
            return result[0] > 0

        try:
            POLL_WAITQUEUE.wait(task, ready, sleep)
        except sched.Interrupted:
            raise SyscallError(ERESTARTNOHAND) from None
        count = result[0]
    return count


# -- poll -------------------------------------------------------------------------

def do_poll(task, ufds: int, nfds: int, deadline: float | None) -> int:
    """do_sys_poll: scan/wait over ``nfds`` struct pollfd at ``ufds``; ready count.

    Negative fds are skipped (revents 0), closed ones are POLLNVAL;
    revents is events plus POLLERR|POLLHUP masked by the file's state.
    EINVAL when nfds exceeds RLIMIT_NOFILE, EFAULT for a bad array.
    """
    nfds &= 0xFFFFFFFF
    if nfds > nofile_limit(task.process):
        raise SyscallError(errno.EINVAL)
    raw = task.mm.copy_in(ufds, nfds * POLLFD.size) if nfds else b""
    entries = [(fd, events & 0xFFFF) for fd, events, _ in POLLFD.iter_unpack(raw)]
    revents = [0] * nfds
    files = task.fds
    host = False
    for fd, _ in entries:
        if fd >= 0 and fd in files and _is_host(files.get(fd)):
            host = True

    def scan() -> int:
        count = 0
        for i, (fd, events) in enumerate(entries):
            if fd < 0:
                revents[i] = 0
                continue
            if fd in files:
                mask = file_poll(files.get(fd))
                if mask != POLLNVAL:
                    mask &= events | POLLERR | POLLHUP
            else:
                mask = POLLNVAL
            revents[i] = mask
            if mask:
                count += 1
        return count

    count = _wait(task, scan, deadline, host)
    for i, mask in enumerate(revents):
        task.mm.copy_out(ufds + i * POLLFD.size + REVENTS_OFFSET, REVENTS.pack(mask))
    return count


@syscall("poll")
def sys_poll(task, ufds, nfds, timeout_msecs):
    """Implements Linux syscall poll(2).

    ``timeout_msecs`` is an int in milliseconds; negative waits forever,
    0 only scans. Returns the number of entries with nonzero revents.
    EINVAL for nfds > RLIMIT_NOFILE, EFAULT, ERESTARTNOHAND on a signal.
    Differs from Linux: a restart (no handler ran) waits the whole
    timeout again; Linux restarts with the time left (restart_block).
    """
    ms = to_int(timeout_msecs)
    deadline = None if ms < 0 else _deadline(ms // 1000, (ms % 1000) * 1_000_000)
    return do_poll(task, ufds, nfds, deadline)


@syscall("ppoll")
def sys_ppoll(task, ufds, nfds, tsp, sigmask, sigsetsize):
    """Implements Linux syscall ppoll(2).

    ``tsp`` is a struct timespec (null: wait forever; EINVAL for tv_sec < 0
    or tv_nsec outside [0, 1e9)); the time left is written back to it, as
    Linux does. ``sigmask`` (``sigsetsize`` must be 8, else EINVAL) is the
    signal mask for the duration of the call; when a signal interrupts
    the wait the handler runs under it and the old mask comes back after
    (``task.saved_sigmask``, Linux's restore_saved_sigmask_unless).
    """
    deadline = _read_timespec(task, tsp)
    old = _set_sigmask(task, sigmask, sigsetsize)
    return _finish(task, lambda: do_poll(task, ufds, nfds, deadline),
                   tsp, deadline, False, old)


# -- select -----------------------------------------------------------------------

def _max_fds(task) -> int:
    """The size of the task's fd table as Linux would have it (fdt->max_fds).

    64 while no fd is above 63, then the alloc_fdtable rounding (powers of
    two times 128) of the highest open fd. Linux keeps the high-water mark;
    this uses the highest fd open now.
    """
    fds = task.fds.fds()
    highest = fds[-1] if fds else 0
    if highest < 64:
        return 64
    nr = highest // 128
    nr = 1 << nr.bit_length()  # roundup_pow_of_two(nr + 1)
    return nr * 128


def _get_fd_set(task, gva: int, nbytes: int) -> int:
    if not gva:
        return 0
    return int.from_bytes(task.mm.copy_in(gva, nbytes), "little")


def _bits(value: int):
    while value:
        low = value & -value
        yield low.bit_length() - 1
        value ^= low


def do_select(task, n: int, inp: int, outp: int, exp: int, deadline: float | None) -> int:
    """core_sys_select: fd_sets of unsigned long words, fd i at bit i % 64 of word i / 64.

    ``n`` is clamped to the fd table's size and only ceil(n / 64) words
    are read and written. EINVAL for n < 0, EBADF when a set names a
    closed fd, EFAULT for a bad set. On return each non-null set holds
    the ready fds; the result counts every set bit (an fd readable and
    writable counts twice).
    """
    n = to_int(n)
    if n < 0:
        raise SyscallError(errno.EINVAL)
    n = min(n, _max_fds(task))
    nbytes = (n + 63) // 64 * 8
    keep = (1 << n) - 1
    want_in = _get_fd_set(task, inp, nbytes) & keep
    want_out = _get_fd_set(task, outp, nbytes) & keep
    want_ex = _get_fd_set(task, exp, nbytes) & keep
    files = task.fds
    wanted = list(_bits(want_in | want_out | want_ex))
    host = False
    for fd in wanted:
        if fd not in files:
            raise SyscallError(errno.EBADF)
        if _is_host(files.get(fd)):
            host = True
    res = [0, 0, 0]

    def scan() -> int:
        r_in = r_out = r_ex = 0
        count = 0
        for fd in wanted:
            mask = file_poll(files.get(fd)) if fd in files else POLLNVAL
            bit = 1 << fd
            if mask & POLLIN_SET and want_in & bit:
                r_in |= bit
                count += 1
            if mask & POLLOUT_SET and want_out & bit:
                r_out |= bit
                count += 1
            if mask & POLLEX_SET and want_ex & bit:
                r_ex |= bit
                count += 1
        res[:] = r_in, r_out, r_ex
        return count

    count = _wait(task, scan, deadline, host)
    for gva, value in zip((inp, outp, exp), res):
        if gva:
            task.mm.copy_out(gva, value.to_bytes(nbytes, "little"))
    return count


def _finish(task, fn, tvp: int, deadline: float | None, timeval: bool,
            old_mask: int | None = None) -> int:
    """Run ``fn``, then poll_select_finish: the mask and the time left.

    The time left goes back to ``tvp`` whatever ``fn`` did. ``old_mask``
    (the caller's mask under a temporary one, or None) is restored now,
    unless a signal interrupted the wait: then it is kept in
    ``task.saved_sigmask`` for after the handler.
    """
    try:
        result = fn()
    except GuestFault:
        err = SyscallError(errno.EFAULT)
    except SyscallError as e:
        err = e
    else:
        err = None
    if old_mask is not None:
        if err is not None and err.errno == ERESTARTNOHAND:
            task.saved_sigmask = old_mask
        else:
            task.sigmask = old_mask
    stored = _write_back(task, tvp, deadline, timeval)
    if err is None:
        return result
    if err.errno == ERESTARTNOHAND and not stored:
        raise SyscallError(errno.EINTR)
    raise err


@syscall("select")
def sys_select(task, n, inp, outp, exp, tvp):
    """Implements Linux syscall select(2).

    ``tvp`` is a struct timeval (null: wait forever); tv_usec beyond a
    second carries into tv_sec as Linux does, and a negative time is
    EINVAL. The time left is written back to ``tvp`` (Linux behaviour).
    See do_select for the sets; ERESTARTNOHAND on a signal.
    """
    deadline = None
    if tvp:
        sec, usec = TIMEVAL.unpack(task.mm.copy_in(tvp, TIMEVAL.size))
        q, r = _ctrunc_divmod(usec, USEC_PER_SEC)
        deadline = _deadline(sec + q, r * 1000)
    return _finish(task, lambda: do_select(task, n, inp, outp, exp, deadline),
                   tvp, deadline, True)


@syscall("pselect6")
def sys_pselect6(task, n, inp, outp, exp, tsp, sig):
    """Implements Linux syscall pselect6(2) (glibc's pselect).

    ``tsp`` is a struct timespec, written back with the time left as
    Linux does (glibc hides that by passing a copy). ``sig`` points to
    {const sigset_t *ss; size_t ss_len}: when ss is not null it is the
    signal mask for the call (ss_len must be 8, else EINVAL), kept for
    the handler when a signal interrupts the wait, as in ppoll.
    """
    ss = ss_len = 0
    if sig:
        ss, ss_len = SIGSET_ARGPACK.unpack(task.mm.copy_in(sig, SIGSET_ARGPACK.size))
    deadline = _read_timespec(task, tsp)
    old = _set_sigmask(task, ss, ss_len)
    return _finish(task, lambda: do_select(task, n, inp, outp, exp, deadline),
                   tsp, deadline, False, old)
