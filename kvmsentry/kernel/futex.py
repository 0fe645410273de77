"""Futex wait queues: waiters keyed by a ``futex_key`` (kernel/futex/*.c).

A futex is a 32-bit word in guest memory (4-byte aligned) that threads
wait on. Linux hashes waiters by a ``futex_key`` (get_futex_key in
kernel/futex/core.c): (mm, address) for a private futex
(FUTEX_PRIVATE_FLAG) and for any futex in private memory, (inode or page,
offset) for a shared futex in a MAP_SHARED mapping. Here the first is
(MemoryManager, address) and the second ("shared", guest-physical
address of the word): every MAP_SHARED mapping of the same memory (an
anonymous one inherited across fork, a file's page-cache frames) maps
the same frames, so processes waiting on it meet, as LTP's checkpoints
(tst_checkpoint.h) need.

Each ``Waiter`` sleeps on its own ``sched.WaitQueue`` (so a wake is
precise and a signal for the task wakes it through ``task.waiting_on``)
until ``woken`` is set by a waker. Waiters of a key are woken in FIFO
order (Linux's plist with every task at the same priority). Everything
runs with the BKL held, which makes "read the word, then queue" atomic
with respect to every waker, as the hash-bucket lock is in Linux.
"""

from __future__ import annotations

import errno
import struct
import time

from kvmsentry.kernel import sched
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.vm.x86 import PAGE_SHIFT, PAGE_SIZE

# include/uapi/linux/futex.h
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF

# FUTEX_WAKE_OP's encoded operation (include/uapi/linux/futex.h).
FUTEX_OP_SET = 0   # *uaddr2 = oparg
FUTEX_OP_ADD = 1   # *uaddr2 += oparg
FUTEX_OP_OR = 2    # *uaddr2 |= oparg
FUTEX_OP_ANDN = 3  # *uaddr2 &= ~oparg
FUTEX_OP_XOR = 4   # *uaddr2 ^= oparg
FUTEX_OP_OPARG_SHIFT = 8  # with an op: use (1 << oparg) as the operand
FUTEX_OP_CMP_EQ = 0
FUTEX_OP_CMP_NE = 1
FUTEX_OP_CMP_LT = 2
FUTEX_OP_CMP_LE = 3
FUTEX_OP_CMP_GT = 4
FUTEX_OP_CMP_GE = 5

U32 = struct.Struct("<I")
# Longest single sleep (threading.Condition refuses huge timeouts).
MAX_SLEEP = 3600.0


class Waiter:
    """One task in FUTEX_WAIT (Linux's struct futex_q).

    ``key`` is (mm, uaddr) and changes when FUTEX_REQUEUE moves the waiter;
    ``bitset`` is the u32 FUTEX_WAIT_BITSET mask (all ones for FUTEX_WAIT).
    """

    __slots__ = ("task", "key", "bitset", "woken", "queue")

    def __init__(self, task, key, bitset: int):
        self.task = task
        self.key = key
        self.bitset = bitset
        self.woken = False
        self.queue = sched.WaitQueue()


# key -> waiters in arrival order. A key with no waiter is not kept.
_waiters: dict[tuple, list[Waiter]] = {}


def futex_key(task, uaddr: int, shared: bool = False) -> tuple:
    """The key of the futex at ``uaddr`` for ``task`` (get_futex_key).

    ``shared`` is a futex without FUTEX_PRIVATE_FLAG: in a MAP_SHARED VMA
    its key is ("shared", the word's guest-physical address), the page
    faulted in first (EFAULT when it cannot be read); anywhere else, and
    for a private futex, (task's mm, uaddr). EINVAL when ``uaddr`` is not
    4-byte aligned.
    """
    if uaddr & 3:
        raise SyscallError(errno.EINVAL)
    mm = task.mm
    if shared:
        vma = mm.find_vma(uaddr)
        if vma is not None and vma.shared:
            get_value(task, uaddr)          # the page is present from here on
            gpa = mm.pages.get(uaddr >> PAGE_SHIFT)
            if gpa is not None:
                return ("shared", gpa + (uaddr & (PAGE_SIZE - 1)))
    return (mm, uaddr)


def get_value(task, uaddr: int) -> int:
    """The u32 at ``uaddr``; EFAULT when it cannot be read."""
    try:
        return U32.unpack(task.mm.copy_in(uaddr, 4))[0]
    except GuestFault:
        raise SyscallError(errno.EFAULT) from None


def _enqueue(waiter: Waiter) -> None:
    _waiters.setdefault(waiter.key, []).append(waiter)


def _dequeue(waiter: Waiter) -> None:
    queue = _waiters.get(waiter.key)
    if queue is None:
        return
    try:
        queue.remove(waiter)
    except ValueError:
        return
    if not queue:
        del _waiters[waiter.key]


def _wake(waiter: Waiter) -> None:
    """Take ``waiter`` off its queue and make its wait return 0 (futex_wake_mark)."""
    _dequeue(waiter)
    waiter.woken = True
    waiter.queue.wake_all()


def waiters(key) -> list[Waiter]:
    """The tasks waiting on ``key`` now, oldest first (a copy)."""
    return list(_waiters.get(key, ()))


def wait(task, uaddr: int, val: int, deadline: float | None, bitset: int,
         shared: bool = False) -> None:
    """futex_wait: sleep while the u32 at ``uaddr`` is ``val``, until woken.

    ``deadline`` is a time.monotonic() value (None: no timeout); ``bitset``
    a nonzero u32 that wakers' bitsets must intersect; ``shared`` as in
    ``futex_key``. Returns when woken.
    Raises SyscallError EINVAL (unaligned), EFAULT (unreadable word),
    EAGAIN (the word is not ``val``), ETIMEDOUT (the deadline passed), and
    sched.Interrupted when a signal for the task cut the wait short (the
    caller picks ERESTARTSYS or ERESTART_RESTARTBLOCK as Linux does).
    """
    key = futex_key(task, uaddr, shared)
    if get_value(task, uaddr) != val & 0xFFFFFFFF:
        raise SyscallError(errno.EAGAIN)
    waiter = Waiter(task, key, bitset)
    _enqueue(waiter)
    try:
        while True:
            if deadline is None:
                remaining = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if waiter.woken:
                        return
                    raise SyscallError(errno.ETIMEDOUT)
                remaining = min(remaining, MAX_SLEEP)
            if waiter.queue.wait(task, lambda: waiter.woken, remaining):
                return
    finally:
        if not waiter.woken:
            _dequeue(waiter)


def wake(task, uaddr: int, nr_wake: int, bitset: int = FUTEX_BITSET_MATCH_ANY,
         shared: bool = False) -> int:
    """futex_wake: wake waiters of ``uaddr`` whose bitset meets ``bitset``.

    ``nr_wake`` is the C int count; as in Linux at least one waiter is
    woken when any matches, even for ``nr_wake`` <= 0. Returns the number
    woken. EINVAL when ``uaddr`` is unaligned; ``shared`` as in ``futex_key``.
    """
    key = futex_key(task, uaddr, shared)
    woken = 0
    for waiter in waiters(key):
        if not waiter.bitset & bitset:
            continue
        _wake(waiter)
        woken += 1
        if woken >= nr_wake:
            break
    return woken


def futex_wake(task, uaddr: int, count: int) -> int:
    """Wake up to ``count`` waiters of the futex at ``uaddr`` in ``task``'s mm.

    For the kernel's own wakes (CLONE_CHILD_CLEARTID at thread exit, as
    mm_release does, a shared wake); BKL held. An unaligned ``uaddr`` or
    an unreadable one wakes nobody. Returns the number woken.
    """
    if uaddr & 3:
        return 0
    try:
        return wake(task, uaddr, count, shared=True)
    except SyscallError:
        return 0


def requeue(task, uaddr1: int, uaddr2: int, nr_wake: int, nr_requeue: int,
            cmpval: int | None, shared: bool = False) -> int:
    """futex_requeue (not PI): wake ``nr_wake`` waiters of uaddr1, move ``nr_requeue`` to uaddr2.

    With ``cmpval`` (FUTEX_CMP_REQUEUE) the u32 at uaddr1 must equal it,
    else EAGAIN. Returns woken plus requeued. EINVAL for negative counts
    or an unaligned address, EFAULT when uaddr1 cannot be read.
    """
    if nr_wake < 0 or nr_requeue < 0:
        raise SyscallError(errno.EINVAL)
    key1 = futex_key(task, uaddr1, shared)
    key2 = futex_key(task, uaddr2, shared)
    if cmpval is not None and get_value(task, uaddr1) != cmpval & 0xFFFFFFFF:
        raise SyscallError(errno.EAGAIN)
    count = 0
    for waiter in waiters(key1):
        if count - nr_wake >= nr_requeue:
            break
        count += 1
        if count <= nr_wake:
            _wake(waiter)
        elif key2 != key1:
            _dequeue(waiter)
            waiter.key = key2
            _enqueue(waiter)
    return count


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _sign_extend12(value: int) -> int:
    return value - 0x1000 if value & 0x800 else value


def atomic_op(task, encoded_op: int, uaddr: int) -> bool:
    """futex_atomic_op_inuser: apply FUTEX_WAKE_OP's operation to the u32 at ``uaddr``.

    ``encoded_op`` is (op << 28) | (cmp << 24) | (oparg << 12) | cmparg,
    oparg and cmparg 12-bit signed; FUTEX_OP_OPARG_SHIFT in op makes the
    operand 1 << oparg (oparg masked to 0..31, as Linux does for now).
    Returns the comparison of the old value (a signed int) with cmparg.
    ENOSYS for an unknown op (nothing written) or cmp (after the write, as
    Linux), EFAULT when the word cannot be read and written.

    Differs from Linux: the read-modify-write is atomic with respect to
    other syscalls (the BKL) but not to guest threads running atomic
    instructions on the same word at the same moment.
    """
    encoded_op &= 0xFFFFFFFF
    op = (encoded_op >> 28) & 0xF
    cmp = (encoded_op >> 24) & 0xF
    oparg = _sign_extend12((encoded_op >> 12) & 0xFFF)
    cmparg = _sign_extend12(encoded_op & 0xFFF)
    if op & FUTEX_OP_OPARG_SHIFT:
        oparg = 1 << (oparg & 31)
        op &= ~FUTEX_OP_OPARG_SHIFT
    if op > FUTEX_OP_XOR:
        raise SyscallError(errno.ENOSYS)
    try:
        old = U32.unpack(task.mm.copy_in(uaddr, 4))[0]
        oparg &= 0xFFFFFFFF
        if op == FUTEX_OP_SET:
            new = oparg
        elif op == FUTEX_OP_ADD:
            new = old + oparg
        elif op == FUTEX_OP_OR:
            new = old | oparg
        elif op == FUTEX_OP_ANDN:
            new = old & ~oparg
        else:
            new = old ^ oparg
        task.mm.copy_out(uaddr, U32.pack(new & 0xFFFFFFFF))
    except GuestFault:
        raise SyscallError(errno.EFAULT) from None
    oldval = _s32(old)
    if cmp == FUTEX_OP_CMP_EQ:
        return oldval == cmparg
    if cmp == FUTEX_OP_CMP_NE:
        return oldval != cmparg
    if cmp == FUTEX_OP_CMP_LT:
        return oldval < cmparg
    if cmp == FUTEX_OP_CMP_GE:
        return oldval >= cmparg
    if cmp == FUTEX_OP_CMP_LE:
        return oldval <= cmparg
    if cmp == FUTEX_OP_CMP_GT:
        return oldval > cmparg
    raise SyscallError(errno.ENOSYS)


def wake_op(task, uaddr1: int, uaddr2: int, nr_wake: int, nr_wake2: int, encoded_op: int,
            shared: bool = False) -> int:
    """futex_wake_op: operate on uaddr2, wake uaddr1's waiters, and uaddr2's if the test held.

    Returns the total woken. Errnos as ``atomic_op``, EINVAL for an
    unaligned address.
    """
    key1 = futex_key(task, uaddr1, shared)
    key2 = futex_key(task, uaddr2, shared)
    passed = atomic_op(task, encoded_op, uaddr2)
    woken = 0
    for waiter in waiters(key1):
        _wake(waiter)
        woken += 1
        if woken >= nr_wake:
            break
    if passed:
        woken2 = 0
        for waiter in waiters(key2):
            _wake(waiter)
            woken2 += 1
            if woken2 >= nr_wake2:
                break
        woken += woken2
    return woken
