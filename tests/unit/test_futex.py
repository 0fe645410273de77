"""futex(2) on fake tasks: waits and wakes between real threads holding the BKL.

The helpers (FakeMM, the dispatcher stand-ins, threads) are test_pipe's.
"""

import errno
import struct
import threading
import time

import pytest

import kvmsentry.kernel.syscalls.futex  # noqa: F401 - registers the handler
from kvmsentry.kernel import futex as kfutex
from kvmsentry.kernel import sched
from kvmsentry.kernel.signals import ERESTART_RESTARTBLOCK, ERESTARTSYS
from kvmsentry.kernel.syscalls.futex import futex_wake
from test_pipe import Thread, call, locked_call, new_task, wait_blocked

FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE = 0, 1, 2, 3, 4
FUTEX_WAKE_OP, FUTEX_LOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 5, 6, 9, 10
PRIVATE, CLOCK_REALTIME = 128, 256


@pytest.fixture
def task():
    return new_task()


def word(task, value=0):
    return task.mm.alloc(4, struct.pack("<I", value))


def get(task, uaddr):
    return struct.unpack("<I", task.mm.copy_in(uaddr, 4))[0]


def timespec(task, sec, nsec=0):
    return task.mm.alloc(16, struct.pack("<qq", sec, nsec))


def thread(task, tid, *args):
    other = new_task(task.mm, task.fds, tid=tid, process=task.process)
    t = Thread(other, "futex", *args)
    t.start()
    wait_blocked(other)
    return other, t


def test_wait_eagain_when_value_differs(task):
    f = word(task, 1)
    assert call(task, "futex", f, FUTEX_WAIT | PRIVATE, 0) == -errno.EAGAIN


def test_wait_errors(task):
    f = word(task, 0)
    assert call(task, "futex", f + 1, FUTEX_WAIT, 0) == -errno.EINVAL
    assert call(task, "futex", 0x10, FUTEX_WAIT, 0) == -errno.EFAULT
    assert call(task, "futex", f, FUTEX_WAIT, 0, timespec(task, -1)) == -errno.EINVAL
    assert call(task, "futex", f, FUTEX_WAIT, 0, timespec(task, 0, 10**9)) == -errno.EINVAL
    assert call(task, "futex", f, FUTEX_WAIT, 0, 0x10) == -errno.EFAULT
    assert call(task, "futex", f, FUTEX_WAIT_BITSET, 0, 0, 0, 0) == -errno.EINVAL
    assert call(task, "futex", f, FUTEX_WAKE_BITSET, 1, 0, 0, 0) == -errno.EINVAL
    assert call(task, "futex", f, 99, 0) == -errno.ENOSYS
    assert call(task, "futex", f, FUTEX_FD, 0) == -errno.ENOSYS
    assert call(task, "futex", f, FUTEX_LOCK_PI, 0) == -errno.ENOSYS
    assert call(task, "futex", f, FUTEX_WAKE | CLOCK_REALTIME, 1) == -errno.ENOSYS


def test_wake_with_no_waiters(task):
    f = word(task)
    assert call(task, "futex", f, FUTEX_WAKE | PRIVATE, 1) == 0
    # A private wake needs no memory; a shared one looks the page up.
    assert call(task, "futex", 0x10, FUTEX_WAKE | PRIVATE, 1) == 0
    assert call(task, "futex", 0x10, FUTEX_WAKE, 1) == -errno.EFAULT
    assert call(task, "futex", f + 2, FUTEX_WAKE, 1) == -errno.EINVAL


def test_wait_woken_by_wake(task):
    f = word(task)
    waiter, t = thread(task, 2, f, FUTEX_WAIT | PRIVATE, 0)
    assert call(task, "futex", f, FUTEX_WAKE | PRIVATE, 1) == 1
    t.join(5)
    assert t.result == 0
    assert kfutex.waiters((task.mm, f)) == []


def test_wake_counts_and_fifo(task):
    f = word(task)
    threads = [thread(task, tid, f, FUTEX_WAIT, 0) for tid in (2, 3, 4)]
    assert [w.task for w in kfutex.waiters((task.mm, f))] == [w for w, _ in threads]
    assert call(task, "futex", f, FUTEX_WAKE, 2) == 2
    threads[0][1].join(5)
    threads[1][1].join(5)
    assert threads[0][1].result == 0 and threads[1][1].result == 0
    assert threads[2][1].is_alive()
    # nr_wake 0 still wakes one waiter, as Linux's loop does.
    assert call(task, "futex", f, FUTEX_WAKE, 0) == 1
    threads[2][1].join(5)
    assert threads[2][1].result == 0


def test_private_and_shared_meet(task):
    f = word(task)
    _, t = thread(task, 2, f, FUTEX_WAIT, 0)
    assert call(task, "futex", f, FUTEX_WAKE | PRIVATE, 1) == 1
    t.join(5)


def test_other_mm_does_not_meet(task):
    f = word(task)
    _, t = thread(task, 2, f, FUTEX_WAIT, 0)
    stranger = new_task()
    assert call(stranger, "futex", f, FUTEX_WAKE, 1) == 0
    assert call(task, "futex", f, FUTEX_WAKE, 1) == 1
    t.join(5)


def test_bitset(task):
    f = word(task)
    _, t = thread(task, 2, f, FUTEX_WAIT_BITSET, 0, 0, 0, 0b01)
    assert call(task, "futex", f, FUTEX_WAKE_BITSET, 1, 0, 0, 0b10) == 0
    assert t.is_alive()
    assert call(task, "futex", f, FUTEX_WAKE_BITSET, 1, 0, 0, 0b11) == 1
    t.join(5)
    assert t.result == 0


def test_relative_timeout(task):
    f = word(task)
    assert call(task, "futex", f, FUTEX_WAIT, 0, timespec(task, 0, 20_000_000)) == -errno.ETIMEDOUT
    assert kfutex.waiters((task.mm, f)) == []


def test_absolute_timeouts(task):
    f = word(task)
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + 10_000_000
    ts = timespec(task, now // 10**9, now % 10**9)
    assert call(task, "futex", f, FUTEX_WAIT_BITSET, 0, ts, 0, ~0) == -errno.ETIMEDOUT
    past = timespec(task, 1)
    assert call(task, "futex", f, FUTEX_WAIT_BITSET | CLOCK_REALTIME, 0, past, 0, ~0) \
        == -errno.ETIMEDOUT
    assert call(task, "futex", f, FUTEX_WAIT | CLOCK_REALTIME, 0,
                timespec(task, 0, 1_000_000)) == -errno.ETIMEDOUT


def test_signal_interrupts_wait(task):
    f = word(task)
    waiter, t = thread(task, 2, f, FUTEX_WAIT, 0)
    with sched.BKL:
        waiter.pending |= 1 << (10 - 1)
        waiter.waiting_on.wake_all()
    t.join(5)
    assert t.result == -ERESTARTSYS
    assert kfutex.waiters((task.mm, f)) == []
    waiter.pending = 0
    # With a timeout Linux uses the restart block instead.
    t = Thread(waiter, "futex", f, FUTEX_WAIT, 0, timespec(task, 100))
    t.start()
    wait_blocked(waiter)
    with sched.BKL:
        waiter.pending |= 1 << (10 - 1)
        waiter.waiting_on.wake_all()
    t.join(5)
    assert t.result == -ERESTART_RESTARTBLOCK


def test_requeue(task):
    f1, f2 = word(task), word(task)
    threads = [thread(task, tid, f1, FUTEX_WAIT, 0) for tid in (2, 3, 4)]
    assert call(task, "futex", f1, FUTEX_REQUEUE, 1, 5, f2) == 3
    threads[0][1].join(5)
    assert threads[0][1].result == 0
    assert [w.task for w in kfutex.waiters((task.mm, f2))] == [threads[1][0], threads[2][0]]
    assert call(task, "futex", f1, FUTEX_WAKE, 10) == 0
    assert call(task, "futex", f2, FUTEX_WAKE, 10) == 2
    for _, t in threads:
        t.join(5)
        assert t.result == 0


def test_cmp_requeue(task):
    f1, f2 = word(task, 7), word(task)
    _, t = thread(task, 2, f1, FUTEX_WAIT, 7)
    assert call(task, "futex", f1, FUTEX_CMP_REQUEUE, 0, 1, f2, 8) == -errno.EAGAIN
    assert call(task, "futex", f1, FUTEX_CMP_REQUEUE, 0, -1, f2, 7) == -errno.EINVAL
    assert call(task, "futex", f1, FUTEX_CMP_REQUEUE, 0, 1, f2, 7) == 1
    assert t.is_alive()
    assert call(task, "futex", f2, FUTEX_WAKE, 1) == 1
    t.join(5)
    assert t.result == 0


def encode_op(op, oparg, cmp, cmparg):
    return (op << 28) | (cmp << 24) | ((oparg & 0xFFF) << 12) | (cmparg & 0xFFF)


@pytest.mark.parametrize("op,oparg,old,new", [
    (0, 5, 3, 5),            # SET
    (1, 5, 3, 8),            # ADD
    (1, -1, 3, 2),           # ADD a negative 12-bit operand
    (2, 4, 3, 7),            # OR
    (3, 1, 3, 2),            # ANDN
    (4, 6, 3, 5),            # XOR
    (8 | 0, 4, 3, 16),       # SET with OPARG_SHIFT: 1 << 4
    (8 | 2, 31, 0, 1 << 31),  # OR 1 << 31
])
def test_wake_op_operations(task, op, oparg, old, new):
    f1, f2 = word(task), word(task, old)
    assert call(task, "futex", f1, FUTEX_WAKE_OP, 1, 1, f2, encode_op(op, oparg, 0, 0)) == 0
    assert get(task, f2) == new


@pytest.mark.parametrize("cmp,cmparg,old,passes", [
    (0, 3, 3, True), (0, 4, 3, False),      # EQ
    (1, 4, 3, True), (1, 3, 3, False),      # NE
    (2, 4, 3, True), (2, 3, 3, False),      # LT
    (3, 3, 3, True), (3, 2, 3, False),      # LE
    (4, 2, 3, True), (4, 3, 3, False),      # GT
    (5, 3, 3, True), (5, 4, 3, False),      # GE
    (2, 0, 0xFFFFFFFF, True),               # the old value compares as a signed int
    (0, -1, 0xFFFFFFFF, True),              # cmparg is 12-bit signed
])
def test_wake_op_comparisons(task, cmp, cmparg, old, passes):
    f1, f2 = word(task), word(task, old)
    _, t1 = thread(task, 2, f1, FUTEX_WAIT, 0)
    _, t2 = thread(task, 3, f2, FUTEX_WAIT, old)
    got = call(task, "futex", f1, FUTEX_WAKE_OP, 1, 1, f2, encode_op(1, 0, cmp, cmparg))
    assert got == (2 if passes else 1)
    t1.join(5)
    if not passes:
        assert t2.is_alive()
        assert call(task, "futex", f2, FUTEX_WAKE, 1) == 1
    t2.join(5)
    assert t1.result == 0 and t2.result == 0


def test_wake_op_errors(task):
    f1, f2 = word(task), word(task, 3)
    assert call(task, "futex", f1, FUTEX_WAKE_OP, 1, 1, f2, encode_op(5, 1, 0, 0)) == -errno.ENOSYS
    assert get(task, f2) == 3
    # An unknown comparison fails after the write, as Linux.
    assert call(task, "futex", f1, FUTEX_WAKE_OP, 1, 1, f2, encode_op(0, 9, 6, 0)) == -errno.ENOSYS
    assert get(task, f2) == 9
    assert call(task, "futex", f1, FUTEX_WAKE_OP, 1, 1, 0x10, encode_op(0, 1, 0, 0)) == -errno.EFAULT
    assert call(task, "futex", f1, FUTEX_WAKE_OP, 1, 1, f2 + 1, encode_op(0, 1, 0, 0)) == -errno.EINVAL


def test_futex_wake_helper(task):
    f = word(task)
    _, t = thread(task, 2, f, FUTEX_WAIT, 0)
    assert futex_wake(task, f + 1, 1) == 0
    with sched.BKL:
        assert futex_wake(task, f, 1) == 1
    t.join(5)
    assert t.result == 0


def test_waitv_is_enosys(task):
    assert call(task, "futex_waitv") == -errno.ENOSYS


def test_ping_pong(task):
    """Two threads hand a token back and forth through one futex word each way."""
    f = word(task)
    rounds = 50

    def side(tid, mine, theirs):
        me = new_task(task.mm, task.fds, tid=tid, process=task.process)
        for _ in range(rounds):
            while True:
                with sched.BKL:
                    value = get(task, f)
                if value == mine:
                    break
                assert locked_call(me, "futex", f, FUTEX_WAIT | PRIVATE, value) in (0, -errno.EAGAIN)
            with sched.BKL:
                task.mm.copy_out(f, struct.pack("<I", theirs))
            locked_call(me, "futex", f, FUTEX_WAKE | PRIVATE, 1)

    a = threading.Thread(target=side, args=(2, 0, 1), daemon=True)
    b = threading.Thread(target=side, args=(3, 1, 0), daemon=True)
    a.start()
    b.start()
    a.join(10)
    b.join(10)
    assert not a.is_alive() and not b.is_alive()
    assert get(task, f) == 0


class _SharedVma:
    shared = True


class SharedPageMM:
    """Two of these over one bytearray stand for two processes mapping one
    MAP_SHARED frame: the same guest-physical address, different addresses."""

    def __init__(self, mem, base, gpa):
        self.mem, self.base = mem, base
        self.pages = {base >> 12: gpa}

    def find_vma(self, gva):
        return _SharedVma() if self.base <= gva < self.base + 4096 else None

    def copy_in(self, gva, length):
        return bytes(self.mem[gva - self.base:gva - self.base + length])


def test_shared_futex_key_is_the_frame():
    """A shared futex in a MAP_SHARED page is keyed by its guest-physical
    address (get_futex_key), so two processes meet; a private one by (mm, address)."""
    mem = bytearray(4096)
    a = SharedPageMM(mem, 0x10000, 0x5000)
    b = SharedPageMM(mem, 0x7000_0000, 0x5000)
    task_a, task_b = new_task(a), new_task(b)
    assert kfutex.futex_key(task_a, 0x10008, shared=True) == ("shared", 0x5008)
    assert kfutex.futex_key(task_b, 0x7000_0008, shared=True) == ("shared", 0x5008)
    assert kfutex.futex_key(task_a, 0x10008) == (a, 0x10008)
    assert kfutex.futex_key(task_a, 0x20008, shared=True) == (a, 0x20008)  # not in a shared VMA
