"""One host thread per sandbox for every guest timer's expiry (Linux: kernel/time/hrtimer.c).

ITIMER_REAL and alarm (syscalls/signal.py), POSIX timers
(syscalls/timers.py) and timerfd wake-ups (syscalls/timerfd.py) each
need a callback at a point in time. Rather than a ``threading.Timer`` (a
new host thread) per expiry, which a 1 ms interval timer turns into a
thousand thread starts a second, an :class:`HrtimerBase` keeps a heap of
deadlines on ``time.monotonic()`` and one thread that sleeps on a
condition variable until the earliest is due, then runs its callback.

The thread takes no kernel lock of its own: the callbacks take the BKL
to fire (and may re-arm from inside it: :meth:`HrtimerBase.start` only
takes the heap's lock, never the BKL). Callbacks check whether they are
still wanted (a generation, the timer's own clock) exactly as they did
with host timers: :meth:`HrtimerBase.cancel` only spares a wake-up.
A callback runs at or after its deadline, never before; one that wants a
different clock (CLOCK_REALTIME) re-checks and re-arms when it is early.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time

__all__ = ["Hrtimer", "HrtimerBase", "base_of"]

# The thread ends after this long with nothing armed (a sandbox whose
# timers are all gone holds no thread); the next start() makes a new one.
IDLE_EXIT_S = 30.0


class Hrtimer:
    """One armed callback: ``fn(*args)`` at ``deadline`` (time.monotonic() seconds)."""

    __slots__ = ("deadline", "seq", "fn", "args", "cancelled")

    def __init__(self, deadline: float, seq: int, fn, args: tuple):
        self.deadline = deadline
        self.seq = seq
        self.fn = fn
        self.args = args
        self.cancelled = False

    def __lt__(self, other: "Hrtimer") -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class HrtimerBase:
    """The timers of one sandbox and the host thread that fires them."""

    def __init__(self, name: str = "kvmsentry-hrtimer"):
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[Hrtimer] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._thread: threading.Thread | None = None
        self.fired = 0  # callbacks run (for tests and --profile)

    def start(self, delay_s: float, fn, *args) -> Hrtimer:
        """Call ``fn(*args)`` from the timer thread in ``delay_s`` seconds (>= 0).

        Callable from any thread, with or without the BKL (it only takes
        the heap's lock). Returns the timer, for :meth:`cancel`.
        """
        timer = Hrtimer(time.monotonic() + max(0.0, delay_s), next(self._seq), fn, args)
        with self._cond:
            heapq.heappush(self._heap, timer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, daemon=True, name=self._name)
                self._thread.start()
            elif self._heap[0] is timer:
                self._cond.notify()  # a new earliest deadline: the thread sleeps less
        return timer

    def cancel(self, timer: Hrtimer | None) -> None:
        """Do not call ``timer`` (None, fired or cancelled already: nothing)."""
        if timer is None or timer.cancelled:
            return
        with self._cond:
            timer.cancelled = True
            timer.fn = timer.args = None
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [t for t in self._heap if not t.cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> int:
        """Timers armed and not cancelled."""
        with self._cond:
            return sum(1 for t in self._heap if not t.cancelled)

    def _main(self) -> None:
        cond = self._cond
        heap = self._heap
        while True:
            with cond:
                while True:
                    heap = self._heap
                    while heap and heap[0].cancelled:
                        heapq.heappop(heap)
                        self._cancelled -= 1
                    if not heap:
                        if not cond.wait(IDLE_EXIT_S) and not self._heap:
                            self._thread = None
                            return
                        continue
                    delay = heap[0].deadline - time.monotonic()
                    if delay <= 0:
                        timer = heapq.heappop(heap)
                        fn, args = timer.fn, timer.args
                        timer.cancelled = True  # fired: cancel() is a no-op from now on
                        break
                    cond.wait(delay)
            self.fired += 1
            try:
                fn(*args)
            except Exception:  # a sentry bug in one callback must not stop every timer
                import traceback  # not at start: ~1 ms with textwrap
                traceback.print_exc()


_DETACHED: HrtimerBase | None = None


def base_of(kernel) -> HrtimerBase:
    """The sandbox's timer base (made on first use; BKL held or single-threaded).

    ``kernel`` None (a task built without a Kernel, in unit tests): one
    base shared by all such tasks.
    """
    global _DETACHED
    if kernel is None:
        if _DETACHED is None:
            _DETACHED = HrtimerBase()
        return _DETACHED
    base = getattr(kernel, "hrtimers", None)
    if base is None:
        base = kernel.hrtimers = HrtimerBase()
    return base
