"""kvmsentry/kernel/hrtimer.py: one host thread fires every timer of a sandbox.

Order by deadline, cancel, re-arm from a callback, and no new host
thread per expiry (the point of the module). No time is asserted: the
waits below only bound how long a broken timer can hang the test.
"""

import threading

from kvmsentry.kernel.hrtimer import HrtimerBase, base_of


def _threads(base):
    return [t for t in threading.enumerate() if t.name == base._name]


def test_callbacks_run_in_deadline_order_on_one_thread():
    base = HrtimerBase(name="test-hrtimer-order")
    fired, idents = [], set()
    done = threading.Event()

    def cb(tag):
        fired.append(tag)
        idents.add(threading.get_ident())
        if len(fired) == 4:
            done.set()

    # Delays 100 ms apart: the order holds unless this loop itself stalls
    # that long between two starts (10 ms apart failed on a loaded machine).
    for tag, delay in (("c", 0.3), ("a", 0.1), ("d", 0.4), ("b", 0.2)):
        base.start(delay, cb, tag)
    assert done.wait(10)
    assert fired == ["a", "b", "c", "d"]
    assert len(idents) == 1 and threading.get_ident() not in idents
    assert len(_threads(base)) == 1


def test_cancelled_timer_never_runs():
    base = HrtimerBase(name="test-hrtimer-cancel")
    fired = []
    done = threading.Event()
    t = base.start(0.01, fired.append, "cancelled")
    base.cancel(t)
    base.cancel(t)  # twice: nothing
    base.start(0.02, lambda: done.set())
    assert done.wait(10)
    assert fired == [] and base.pending() == 0


def test_an_earlier_timer_wakes_a_sleeping_thread():
    base = HrtimerBase(name="test-hrtimer-earlier")
    done = threading.Event()
    late = base.start(3600, lambda: None)
    base.start(0.0, done.set)
    assert done.wait(10)
    base.cancel(late)


def test_interval_rearmed_from_the_callback_uses_no_new_thread():
    base = HrtimerBase(name="test-hrtimer-interval")
    count = [0]
    done = threading.Event()
    seen = set()

    def tick():
        count[0] += 1
        seen.add(threading.get_ident())
        if count[0] < 200:
            base.start(0.0005, tick)
        else:
            done.set()

    base.start(0.0005, tick)
    assert done.wait(30)
    assert count[0] == 200 and len(seen) == 1 and base.fired == 200


def test_many_cancels_are_compacted():
    base = HrtimerBase(name="test-hrtimer-compact")
    timers = [base.start(3600 + i, lambda: None) for i in range(300)]
    for t in timers[:250]:
        base.cancel(t)
    assert base.pending() == 50 and len(base._heap) < 300
    for t in timers[250:]:
        base.cancel(t)


def test_a_failing_callback_does_not_stop_the_others(capsys):
    base = HrtimerBase(name="test-hrtimer-bug")
    done = threading.Event()

    def bug():
        raise RuntimeError("a sentry bug")

    base.start(0.0, bug)
    base.start(0.01, done.set)
    assert done.wait(10)


def test_base_of_is_one_per_kernel():
    class K:
        pass

    k1, k2 = K(), K()
    assert base_of(k1) is base_of(k1) is not base_of(k2)
    assert base_of(None) is base_of(None)
