"""Concurrency inside the sentry: the big kernel lock and wait queues.

Each guest thread runs on its own Python thread and vCPU (DESIGN.md,
"Concurrency"). Guest code runs in parallel (KVM_RUN releases the GIL);
kernel code runs under one lock, ``BKL``, held from the moment a trap
reaches the kernel until the task goes back to the guest. Kernel state
therefore needs no finer locking, as in Linux 2.0.

A handler that must wait (a read on an empty pipe, wait4, a futex, a
sleep) waits on a ``WaitQueue``, which releases the BKL while it sleeps,
or wraps a blocking host call in ``blocking()``. A wait ends early with
``Interrupted`` when the task has a signal to handle (the caller turns it
into EINTR or a restart, signal(7)).

Wake-ups are deferred to the BKL's release: ``wake_all`` (always called
with the BKL held) hands its sleepers to the lock, which wakes them once
it is free. A sleeper woken earlier could only find the lock taken and
sleep on it again: a second host wake-up for one hand-off. (The one
that remains, from the release to the sleeper running, is the host's:
~18 µs between two task threads here; BENCHMARKS.md, issue 6.)
"""

from __future__ import annotations

import contextlib
import threading
import time

_get_ident = threading.get_ident
_allocate_lock = threading.Lock


class BigKernelLock:
    """A mutex that knows which thread holds it (for blocking() and WaitQueue).

    ``wake_later`` queues sleepers' locks to release right after the lock
    itself is (see the module docstring).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.owner: int | None = None
        self._wakeups: list = []  # sleepers' locks, released after ours

    def wake_later(self, waiters: list) -> None:
        """Release each lock in ``waiters`` once the BKL is released (BKL held)."""
        self._wakeups += waiters

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking, timeout):
            self.owner = _get_ident()
            return True
        return False

    def release(self) -> None:
        self.owner = None
        wakeups = self._wakeups
        if not wakeups:
            self._lock.release()
            return
        self._wakeups = []
        self._lock.release()
        for waiter in wakeups:
            waiter.release()

    def held(self) -> bool:
        """True when the calling thread holds the lock."""
        return self.owner == _get_ident()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


BKL = BigKernelLock()
_local = threading.local()


def current():
    """The Task whose trap this thread is handling (None outside a task thread)."""
    return getattr(_local, "task", None)


def set_current(task) -> None:
    """Called once by each task thread: ``current()`` returns ``task`` there."""
    _local.task = task


class Interrupted(Exception):
    """A wait was cut short because the waiting task has a pending signal."""


class WaitQueue:
    """Tasks waiting for a condition (Linux's wait_queue_head_t).

    ``wait(task, predicate, timeout)`` (task None: the current one) sleeps (BKL released) until
    ``predicate()`` is true, ``timeout`` seconds pass (returns False), or
    the task has a pending signal (raises Interrupted; not when
    ``interruptible`` is False, as a stopped task's wait). ``wake_all()`` is
    called by whoever changed the condition, with the BKL held.
    """

    def __init__(self):
        # One held lock per sleeper; waking releases it (as threading.Condition).
        self._waiters: list = []

    def wait(self, task, predicate, timeout: float | None = None,
             interruptible: bool = True) -> bool:
        if task is None:
            task = current()
        if not BKL.held():  # a caller outside the dispatcher (tests, timers)
            with BKL:
                return self.wait(task, predicate, timeout, interruptible)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not predicate():
            if interruptible and task is not None and task.signal_pending():
                raise Interrupted()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            waiter = _allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
            if task is not None:
                task.waiting_on = self
            BKL.release()
            try:
                # A guest's timeout may exceed what the host lock accepts
                # (threading.TIMEOUT_MAX, ~292 years): sleep that long, then
                # look at the deadline again.
                woken = waiter.acquire(True, -1 if remaining is None
                                       else min(remaining, threading.TIMEOUT_MAX))
            finally:
                BKL.acquire()
                if task is not None:
                    task.waiting_on = None
            if not woken and waiter in self._waiters:  # timed out, not woken
                self._waiters.remove(waiter)
        return True

    def wake_all(self) -> None:
        """Wake every sleeper: once the BKL is released when the caller holds
        it (the rule), at once otherwise."""
        waiters = self._waiters
        if waiters:
            self._waiters = []
            if BKL.held():
                BKL.wake_later(waiters)
            else:
                for waiter in waiters:
                    waiter.release()


@contextlib.contextmanager
def blocking():
    """Run a blocking host call (a read on the host's stdin) without the BKL.

    When the caller does not hold the BKL (unit tests, start-up) nothing is
    released.
    """
    if not BKL.held():
        yield
        return
    BKL.release()
    try:
        yield
    finally:
        BKL.acquire()
