"""The ring path (``kvmsentry boot --syscall-path=ring``): syscalls answered without an exit.

FlexSC's idea on KVM (DESIGN.md, "Notes on PVM"): the runtime's syscall
entry (guest/runtime.S ``vcpu_ring_entry``) posts the call in its vCPU's
request page and spins with ``pause``; one host thread per task, the
:class:`RingPoller`, polls that page in C without the GIL
(``kvmsentry_ring_poll``), runs the call through :meth:`Kernel.dispatch`
under the BKL and writes the answer where the spinning guest finds it.
A round trip costs one guest-to-host transition less than an exit: no
``KVM_RUN`` return, no ``iretq`` frame from Python.

What stays on the exit path:
- calls that replace registers or need the vCPU itself (``_BOUNCE``):
  the poller hands them back (RING_EXIT) and the task thread runs them;
- any call after which a signal is pending, the task stops or exits, or
  page tables must be flushed: the poller runs it, then the task thread
  delivers the result (RING_EXIT, then ``TRAP_RING_WAIT``);
- a call that blocks (read on an empty pipe, wait4, futex wait): the
  guest's spin budget runs out, it withdraws, sees the poller owns the
  call and exits; the task thread then sleeps until the poller is done
  (:meth:`RingPoller.collect`), so a blocked call holds no spinning core;
- every call while the poller is cold: after ``POLL_WINDOW_NS`` without
  a call the poller sleeps, the guest's spin runs out and the call exits
  as usual; that exit wakes the poller. An idle sandbox burns no core,
  and a poller that cannot get a core costs each call at most the
  guest's spin budget before the exit.

The state machine (the request page's state word, u32: flag bits
POSTED 1, CLAIMED 2, DONE 4, EXIT 8, WITHDRAWN 16, and above
layout.RING_SEQ_SHIFT the post's sequence number ``seq``). Each
transition has one owner and is one store or one atomic operation:

- post (guest, runtime.S vcpu_ring_post): ``seq += 1`` in its post word
  (layout.RING_POST_OFFSET) first, then the number and arguments, last
  the plain store ``state = seq | POSTED``. The guest owns the word
  here: no claim of the poller's is open (see below).
- claim (poller, C): compare-and-swap from any word whose flags are
  exactly POSTED to ``claimed = seq | POSTED | CLAIMED``. The poller
  then checks the post word against ``seq`` (a post made outside the stub,
  or one whose arguments were not all written for this ``seq``, is
  handed back unrun).
- finish (poller, C ``kvmsentry_ring_finish``): compare-and-swap from
  ``claimed`` or ``claimed | WITHDRAWN`` to the same plus DONE (the answer
  already in the ring frame) or EXIT. Nothing else: a word that no longer
  holds that claim is left alone, so an answer can reach no other call.
- spin (guest): it acts only on ``state ^ (seq << RING_SEQ_SHIFT)`` =
  POSTED|CLAIMED|DONE (return the ring frame's answer) or
  POSTED|CLAIMED|EXIT (exit on RING_WAIT_PORT); a word of another
  sequence number (an earlier call's answer) is not its answer.
- withdraw (guest, after its spin budget): ``lock bts`` WITHDRAWN, after
  which no claim can succeed (flags are no longer exactly POSTED), then
  one look: DONE for its seq: the answer; CLAIMED for its seq: exit on
  RING_WAIT_PORT (the poller runs or ran it: :meth:`RingPoller.collect`);
  anything else: the plain syscall exit (the task thread runs it).
- collect (task thread, after RING_WAIT_PORT): waits for the poller's
  own record of the claim the word names (its outcome carries the
  claimed word), never for bits the guest could withhold.

The bug this replaced (issue 6): the state word had no sequence number,
the poller stored whole words (DONE, EXIT) with plain stores, and the
guest took any DONE it saw as its answer. A thread reading a file one
byte per read(2) in a two-thread process (so not served by the
exit-free read) got, 8-11 times per 3 MiB on a loaded machine, the
previous read's answer (1) without the read having run. Instrumented
(a per-page post and return count the guest kept, the poller's stores
numbered): the poller answered call N once (DONE); the guest returned
through it, stored 0 and then its post of call N+1 (and read the word
back as POSTED), and a moment later its spin read the word of call N's
answer again, the very value of the poller's one store; the poller
never claimed N+1. No host thread stored that value again (every store
was logged): the guest's view of the word went back to an older value
after its own stores, under this machine's nested PVM; what below the
VM does that is not known. With a sequence number the
older answer is not the guest's: it spins on, withdraws and exits, and
the call runs once on the exit path; and since the poller's finish is
a compare-and-swap on its own claim, no answer of its lands on a later
post whatever the guest's view does.

What the guest can write: its request pages (one per vCPU, mapped only
in the address space that vCPU runs: layout.RING_AREA_GVA) hold the
number, the arguments, the post word and the state word. The number and
arguments are read once and treated as registers are; the state word is
only a hint to the sentry: a poller claims a call only by its own
compare-and-swap, the task thread waits for the poller's own record of
that claim (:meth:`RingPoller.collect`), never for bits the guest could
withhold, and a call posted while the task thread is in the sentry (not
spinning in the stub: a forged post) is handed back unrun.

Costs reported by ``--profile``: calls answered in the ring, handed
back, the exits the ring still took, and the host CPU seconds the
pollers spent spinning (the thread CPU clock around the C spin, read in
C: the price of the path, beside the wall time it saves).

The per-call path of a poller (:meth:`RingPoller._take`) takes no lock
but the BKL: each poller counts its calls in its own attributes
(:class:`RingStats` adds them up when asked), a hot poller goes from one
call straight to the next poll, the request is one ``struct`` read and
the answer one C call (the answer slot, then the compare-and-swap).
About 7 µs of Python per call before, 3.9 µs after (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import threading
import time

from kvmsentry.kernel import sched

# How long a poller spins after its last call before it sleeps (ns).
POLL_WINDOW_NS = 200_000
# --syscall-path=auto judges a task's ring every AUTO_WINDOW calls: when
# fewer than AUTO_MIN_ANSWERED of them were answered without an exit (the
# poller could not keep up: no idle core, or calls that block), the task
# goes back to the exit path for AUTO_BACKOFF_S seconds, doubled at each
# failure up to AUTO_BACKOFF_MAX_S, then tries the ring again.
AUTO_WINDOW = 256
AUTO_MIN_ANSWERED = 0.5
AUTO_BACKOFF_S = 0.5
AUTO_BACKOFF_MAX_S = 16.0

# x86-64 numbers the ring never runs (the task thread does, with the
# vCPU's registers): rt_sigreturn, pause, clone, fork, vfork, execve,
# exit, rt_sigsuspend, sigaltstack, arch_prctl, exit_group, execveat,
# clone3.
_BOUNCE = frozenset((15, 34, 56, 57, 58, 59, 60, 130, 131, 158, 231, 322, 435))


class RingStats:
    """Counters over every poller of a sandbox (read by --profile).

    Each poller counts its own calls in plain attributes that only its
    thread writes (no lock per call); :meth:`as_dict` adds up the live
    pollers and those that have stopped (:meth:`retire`).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = 0      # calls the guest got back without an exit
        self.exited = 0        # calls the poller ran whose result went through an exit
        self.bounced = 0       # calls handed back to the task thread unrun
        self.poll_cpu_s = 0.0  # host CPU time the pollers spent spinning
        self.auto_off = 0      # --syscall-path=auto: times a task left the ring for a while
        self._live: set = set()

    def register(self, poller: "RingPoller") -> None:
        with self.lock:
            self._live.add(poller)

    def retire(self, poller: "RingPoller") -> None:
        """The poller has stopped: keep its counts."""
        with self.lock:
            if poller in self._live:
                self._live.discard(poller)
                self._add(poller)

    def _add(self, poller: "RingPoller") -> None:
        self.answered += poller.answered
        self.exited += poller.exited
        self.bounced += poller.bounced
        self.poll_cpu_s += poller.spun_ns[0] / 1e9

    def as_dict(self) -> dict:
        with self.lock:
            total = RingStats()
            total.auto_off = self.auto_off
            for poller in self._live:
                total._add(poller)
            return {"answered": self.answered + total.answered, "exited": self.exited + total.exited,
                    "bounced": self.bounced + total.bounced, "poll_cpu_s": self.poll_cpu_s + total.poll_cpu_s,
                    "auto_off": self.auto_off}


class RingPoller:
    """The host thread that answers one task's posted syscalls.

    Started by the task's thread before its first run (:meth:`start`),
    stopped when the task ends (:meth:`stop`). ``collect`` is the task
    thread's side of ``TRAP_RING_WAIT``.
    """

    def __init__(self, kernel, task, stats: RingStats, *, auto: bool = False):
        self.kernel = kernel
        self.auto = auto
        self._window = 0         # calls judged in this window
        self._window_answered = 0
        self._backoff = AUTO_BACKOFF_S
        self._retry_at = 0.0
        self.task = task
        self.context = task.context
        self.stats = stats
        self._cond = threading.Condition(threading.Lock())
        # (claimed word, kind, value) of the last call taken: kind and value
        # ("result", rax), ("bounce", None) or ("raise", exception); None
        # while it runs and once the task thread took it.
        self._outcome = None
        # Under _cond: whether the poller is running a claimed call, and how
        # many of its C polls ended without a claim (collect's proof that a
        # CLAIMED state word it sees was not the poller's).
        self._busy = False
        self._idle_polls = 0
        # Whether collect waits (then the poller notifies _cond after a call).
        self._collecting = False
        # This poller's counts (RingStats adds them up) and the CPU time of
        # its C spins, which kvmsentry_ring_poll adds to in ns.
        self.answered = self.exited = self.bounced = 0
        self.spun_ns = task.context.ring_spun_ns
        # Set by the task thread (BKL held) while it is in the sentry, not
        # in KVM_RUN nor waiting in collect: a post then cannot be its vCPU's.
        self.task_in_sentry = False
        self._hot = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=f"kvmsentry-ring-{task.tid}")

    def start(self) -> None:
        self.stats.register(self)
        self._hot.set()
        self._thread.start()

    def wake(self) -> None:
        """A call took an exit (task thread): count it for auto, and poll again."""
        context = self.context
        if self.auto:
            if not context.ring_enabled:
                if time.monotonic() < self._retry_at:
                    return
                context.ring_enabled = True  # LSTAR changes at the next Context.run
                self._window = self._window_answered = 0
            else:
                self._judge(False)
        if not self._hot.is_set():
            self._hot.set()

    def _judge(self, answered: bool) -> None:
        """--syscall-path=auto: count one call; leave the ring when it does not pay."""
        self._window += 1
        self._window_answered += answered
        if self._window < AUTO_WINDOW:
            return
        if self._window_answered < AUTO_MIN_ANSWERED * self._window:
            self.context.ring_enabled = False
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, AUTO_BACKOFF_MAX_S)
            with self.stats.lock:
                self.stats.auto_off += 1
        else:
            self._backoff = AUTO_BACKOFF_S
        self._window = self._window_answered = 0

    def stop(self) -> None:
        """End the thread (BKL held: released while it finishes a call)."""
        self._stopping = True
        self.context.ring_stop[0] = 1
        self._hot.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.ident is None or self._thread is threading.current_thread():
            self.stats.retire(self)
            return
        sched.BKL.release()
        try:
            self._thread.join(timeout=10)
        finally:
            sched.BKL.acquire()
            self.stats.retire(self)

    def collect(self):
        """The call the guest left on RING_WAIT_PORT: wait for it (BKL released).

        Returns its outcome: ("result", rax), ("bounce", None), ("raise",
        exception), or None when the poller never claimed it (the task
        thread then runs it, as after a plain exit).

        The state word is guest-writable: a CLAIMED bit the poller did not
        set, or a sequence number it never claimed, must not hold this
        thread forever, nor hand it another call's outcome. It waits until
        the poller, not busy, has recorded the outcome of exactly the claim
        the word names, or until a whole C poll ended without a claim (a
        claimed call keeps the poller busy until it is answered, so no
        claim of the poller's is pending then: the task thread runs the
        call itself).
        """
        claimed = self.context.ring_waiting_claim()
        if not claimed:
            return None
        with self._cond:
            idle = self._idle_polls
            self._collecting = True  # before _settled: see _take
            if not self._settled(claimed, idle):
                sched.BKL.release()
                try:
                    while not self._settled(claimed, idle):
                        self._hot.set()  # a cold poller looks once more, then counts an idle poll
                        self._cond.wait()
                finally:
                    self._cond.release()
                    sched.BKL.acquire()
                    self._cond.acquire()
            self._collecting = False
            outcome = self._outcome
            if self._busy or outcome is None or outcome[0] != claimed:
                return None
            self._outcome = None
        return outcome[1:]

    def _settled(self, claimed: int, idle: int) -> bool:
        """collect's wait is over (``_cond`` held): see :meth:`collect`."""
        if self._busy:
            return False
        outcome = self._outcome
        return (outcome is not None and outcome[0] == claimed) or self._idle_polls != idle or self._stopping

    # -- the poller thread ----------------------------------------------
    def _main(self) -> None:
        sched.set_current(self.task)
        poll = self.context.ring_poll
        take = self._take
        while not self._stopping:
            self._hot.wait()
            if self._stopping:
                break
            claimed = poll(POLL_WINDOW_NS)
            while claimed > 0:  # hot: straight to the next poll after each call
                take(claimed)
                claimed = poll(POLL_WINDOW_NS)
            if claimed < 0:
                break
            with self._cond:
                self._idle_polls += 1
                self._hot.clear()  # under _cond: collect sets it under _cond too
                self._cond.notify_all()

    def _take(self, claimed: int) -> None:
        """Run the call claimed as ``claimed`` (ring_poll's word) and answer it (RING_DONE or RING_EXIT).

        The per-call path: no lock but the BKL. collect reads ``_busy``
        and ``_outcome`` under ``_cond``; single attribute stores are
        atomic under the GIL, and a stale ``_outcome`` names another claim,
        so collect never takes it for this one. collect sets
        ``_collecting`` before it looks and this thread reads it after its
        stores, so one of them sees the other: either collect finds the
        outcome, or it is notified.
        """
        context = self.context
        task = self.task
        self._busy = True
        self._outcome = None
        request = context.ring_request(claimed)
        answered = False
        bkl = sched.BKL
        bkl.acquire()
        try:
            try:
                if request is None or request[0] in _BOUNCE or task.exited or self.task_in_sentry:
                    outcome = ("bounce", None)
                else:
                    nr = request[0]
                    outcome = ("result", self.kernel.dispatch(task, nr, request[1]))
                    self.kernel.after_syscall(task, nr)
            except BaseException as e:  # TaskExit, a sentry bug: the task thread raises it
                outcome = ("raise", e)
            # The outcome first, then the state bit the guest acts on.
            self._outcome = (claimed,) + outcome
            if outcome[0] == "result":
                process = task.process
                if (task.restart is None and not task.signal_pending() and not process.stopped
                        and process.wait_status is None and not task.exited
                        and not context.needs_flush()):
                    answered = context.ring_answer(claimed, outcome[1])
            if not answered:
                context.ring_exit(claimed)
            self._busy = False
            if self._collecting:
                with self._cond:
                    self._cond.notify_all()
        finally:
            bkl.release()
        if answered:
            self.answered += 1
            if self.auto:
                self._judge(True)
        elif outcome[0] == "bounce":
            self.bounced += 1
        else:
            self.exited += 1


def choose_path(requested: str) -> str:
    """Resolve --syscall-path: "exit" and "ring" as given; "auto" from this host.

    auto starts with the ring when a core is idle for the pollers: at
    least two CPUs and a 1-minute load average below (CPUs - 1)
    (os.getloadavg); then each task leaves the ring while it does not pay
    (RingPoller._judge). Each poller also goes cold by itself when its
    task makes no calls.
    """
    if requested != "auto":
        return requested
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return "exit"
    return "ring" if cpus >= 2 and load < cpus - 1 else "exit"
