"""futex(2): decoding the operation, its timeout and counts (kernel/futex/syscalls.c).

The wait queues are ``kvmsentry.kernel.futex``. Importing this module
registers the handlers. ``futex_wake`` is re-exported for the thread
exit path (CLONE_CHILD_CLEARTID).
"""

from __future__ import annotations

import errno
import struct
import time

from kvmsentry.kernel import futex as _futex
from kvmsentry.kernel import sched
from kvmsentry.kernel.futex import FUTEX_BITSET_MATCH_ANY, futex_wake
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.signals import ERESTART_RESTARTBLOCK, ERESTARTSYS
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, error, syscall

__all__ = ["futex_wake", "sys_futex"]

# include/uapi/linux/futex.h
FUTEX_WAIT = 0
FUTEX_WAKE = 1
FUTEX_FD = 2
FUTEX_REQUEUE = 3
FUTEX_CMP_REQUEUE = 4
FUTEX_WAKE_OP = 5
FUTEX_LOCK_PI = 6
FUTEX_UNLOCK_PI = 7
FUTEX_TRYLOCK_PI = 8
FUTEX_WAIT_BITSET = 9
FUTEX_WAKE_BITSET = 10
FUTEX_WAIT_REQUEUE_PI = 11
FUTEX_CMP_REQUEUE_PI = 12
FUTEX_LOCK_PI2 = 13
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)

# Commands whose fourth argument is a struct timespec (futex_cmd_has_timeout).
_HAS_TIMEOUT = frozenset({FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_WAIT_BITSET,
                          FUTEX_WAIT_REQUEUE_PI})
# Commands FUTEX_CLOCK_REALTIME may go with (do_futex; FUTEX_WAIT since 4.5).
_CLOCKRT_OK = frozenset({FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2})

TIMESPEC = struct.Struct("<qq")
NSEC_PER_SEC = 1_000_000_000


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _timeout(task, cmd: int, op: int, utime: int) -> float | None:
    """futex_init_timeout: the guest timespec at ``utime`` as a monotonic deadline.

    Relative for FUTEX_WAIT; absolute on CLOCK_MONOTONIC for the other
    commands, or on CLOCK_REALTIME with FUTEX_CLOCK_REALTIME (converted
    once, so a later change of the host's wall clock is not followed).
    EFAULT for a bad pointer, EINVAL for tv_sec < 0 or tv_nsec outside
    [0, 1e9).
    """
    try:
        sec, nsec = TIMESPEC.unpack(task.mm.copy_in(utime, TIMESPEC.size))
    except GuestFault:
        raise SyscallError(errno.EFAULT) from None
    if sec < 0 or not 0 <= nsec < NSEC_PER_SEC:
        raise SyscallError(errno.EINVAL)
    ns = sec * NSEC_PER_SEC + nsec
    now = time.monotonic()
    if cmd == FUTEX_WAIT:
        return now + ns / NSEC_PER_SEC
    if op & FUTEX_CLOCK_REALTIME:
        return now + (ns - time.clock_gettime_ns(time.CLOCK_REALTIME)) / NSEC_PER_SEC
    return now + (ns - time.clock_gettime_ns(time.CLOCK_MONOTONIC)) / NSEC_PER_SEC


def _wait(task, uaddr: int, val: int, deadline: float | None, bitset: int, shared: bool) -> int:
    """futex_wait: 0 when woken; a signal gives ERESTARTSYS without a timeout,
    ERESTART_RESTARTBLOCK with one (EINTR after a handler either way for the
    latter, restart_syscall)."""
    if not bitset:
        raise SyscallError(errno.EINVAL)
    try:
        _futex.wait(task, uaddr, val, deadline, bitset, shared)
    except sched.Interrupted:
        raise SyscallError(ERESTARTSYS if deadline is None else ERESTART_RESTARTBLOCK) from None
    return 0


@syscall("futex", PARTIAL, "no PI futexes (ENOSYS)")
def sys_futex(task, uaddr, op, val, utime, uaddr2, val3):
    """Implements Linux syscall futex(2).

    ``uaddr`` and ``uaddr2`` are guest addresses of u32 words, 4-byte
    aligned (else EINVAL). ``op`` is a command plus FUTEX_PRIVATE_FLAG and
    FUTEX_CLOCK_REALTIME (the latter only with FUTEX_WAIT and
    FUTEX_WAIT_BITSET, else ENOSYS). ``utime`` is a struct timespec for
    the waits (relative for FUTEX_WAIT, absolute for FUTEX_WAIT_BITSET,
    null: forever) and the u32 count ``val2`` for the requeues and
    FUTEX_WAKE_OP. Returns 0 for a wait that was woken, else the number
    of tasks woken (plus requeued). EAGAIN when the word is not ``val``
    (or ``val3`` for FUTEX_CMP_REQUEUE), ETIMEDOUT, EFAULT, EINVAL for a
    zero bitset or negative requeue counts, ENOSYS for an unknown command
    and for the PI commands (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2,
    WAIT_REQUEUE_PI, CMP_REQUEUE_PI), which are not implemented.

    A shared futex (no FUTEX_PRIVATE_FLAG) in a MAP_SHARED mapping is
    keyed by its guest-physical address, so processes sharing the page
    meet (kernel.futex.futex_key).

    Differs from Linux: a timed wait restarted after a signal
    without a handler waits its whole relative timeout again; FUTEX_WAKE_OP
    is not atomic against guest atomics on the same word (kernel.futex).
    Source: kernel/futex/syscalls.c, waitwake.c, requeue.c; futex(2).
    """
    op = _s32(op)
    cmd = op & FUTEX_CMD_MASK
    deadline = None
    if utime and cmd in _HAS_TIMEOUT:
        deadline = _timeout(task, cmd, op, utime)
    if op & FUTEX_CLOCK_REALTIME and cmd not in _CLOCKRT_OK:
        raise SyscallError(errno.ENOSYS)
    val2 = _s32(utime)
    shared = not op & FUTEX_PRIVATE_FLAG
    if cmd == FUTEX_WAIT:
        return _wait(task, uaddr, val, deadline, FUTEX_BITSET_MATCH_ANY, shared)
    if cmd == FUTEX_WAIT_BITSET:
        return _wait(task, uaddr, val, deadline, val3 & 0xFFFFFFFF, shared)
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        bitset = FUTEX_BITSET_MATCH_ANY if cmd == FUTEX_WAKE else val3 & 0xFFFFFFFF
        if not bitset:
            raise SyscallError(errno.EINVAL)
        _check_shared(task, op, uaddr)
        return _futex.wake(task, uaddr, _s32(val), bitset, shared)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        if _s32(val) >= 0 and val2 >= 0:
            _check_shared(task, op, uaddr)
            _check_shared(task, op, uaddr2)
        cmpval = val3 if cmd == FUTEX_CMP_REQUEUE else None
        return _futex.requeue(task, uaddr, uaddr2, _s32(val), val2, cmpval, shared)
    if cmd == FUTEX_WAKE_OP:
        _check_shared(task, op, uaddr)
        return _futex.wake_op(task, uaddr, uaddr2, _s32(val), val2, val3, shared)
    raise SyscallError(errno.ENOSYS)


def _check_shared(task, op: int, uaddr: int) -> None:
    """get_futex_key for a shared futex looks up the page: EFAULT when unmapped.

    A private futex's key needs no memory access, so a wake on an
    unmapped private futex returns 0 as in Linux. EINVAL when unaligned.
    """
    _futex.futex_key(task, uaddr)
    if not op & FUTEX_PRIVATE_FLAG:
        _futex.get_value(task, uaddr)


error("futex_waitv", errno.ENOSYS, "futex2 waits on several futexes; libc and Go fall back")
