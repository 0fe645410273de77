"""A blocking pipe read parked and finished by the writer (kernel/pipe.py's
park, Kernel.park/resume_parked), and the kernel lock's release before
KVM_RUN (sched.BigKernelLock.release_for_run), on fakes: no KVM."""

import threading

import pytest

from kvmsentry.kernel import sched
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.pipe import Pipe


class FakeVcpu:
    unpark_on_entry = None


class Go:
    """What platform.kvm.ParkGo looks like to the lock."""

    def __init__(self, word):
        self.go_word = word
        self.released = False

    def release(self):
        self.released = True


def test_release_for_run_leaves_one_go_ahead_to_the_run():
    lock = threading.Lock()
    lock.acquire()
    go, other = Go("word"), Go("other")
    vcpu = FakeVcpu()
    sched.BKL.acquire()
    sched.BKL.wake_later([lock, go, other])
    sched.BKL.release_for_run(vcpu)
    assert vcpu.unpark_on_entry == "word" and not go.released
    assert other.released  # one word per run: the rest at the release
    assert lock.acquire(False)  # a plain waiter is released at once


def test_release_for_run_with_a_go_ahead_pending_releases_everything():
    go = Go("word")
    vcpu = FakeVcpu()
    vcpu.unpark_on_entry = "earlier"
    sched.BKL.acquire()
    sched.BKL.wake_later([go])
    sched.BKL.release_for_run(vcpu)
    assert vcpu.unpark_on_entry == "earlier" and go.released


class FakeContext:
    def __init__(self):
        self.park_waiter = Go(None)


class FakeKernel:
    """Kernel.park/resume_parked's contract: park queues the task's waiter;
    resume_parked finishes the call unless the waiter was woken since."""

    def __init__(self):
        self.results = []

    def park(self, task, queue):
        queue._waiters.append(task.context.park_waiter)
        return True

    def resume_parked(self, task, queue, finish):
        waiter = task.context.park_waiter
        if not any(w is waiter for w in queue._waiters):
            return False
        queue._waiters.remove(waiter)
        try:
            self.results.append(finish())
        except GuestFault:
            self.results.append("EFAULT")
        return True


class FakeTask:
    def __init__(self, kernel):
        self.kernel = kernel
        self.context = FakeContext()


@pytest.fixture
def reader():
    """A task that is current on this thread, with a FakeKernel."""
    task = FakeTask(FakeKernel())
    sched.set_current(task)
    yield task
    sched.set_current(None)


def _park_read(pipe, n, stored):
    with sched.BKL:
        with pytest.raises(sched.Parked):
            pipe.read_into(n, False, lambda pos, chunk: stored.__setitem__(slice(pos, pos + len(chunk)), chunk),
                           park=True)


def test_a_parked_read_is_finished_by_the_write(reader):
    pipe = Pipe()
    pipe.readers = pipe.writers = 1
    stored = bytearray(8)
    _park_read(pipe, 5, stored)
    with sched.BKL:
        assert pipe.write(b"hello world", False, False) == 11
    assert reader.kernel.results == [5] and stored[:5] == b"hello"
    assert pipe.nbytes == 6 and pipe.parked is None
    with sched.BKL:  # the rest is there for the next read, which does not park
        assert pipe.read(64, False) == b" world"


def test_a_parked_reader_woken_otherwise_is_forgotten(reader):
    pipe = Pipe()
    pipe.readers = pipe.writers = 1
    _park_read(pipe, 5, bytearray(8))
    with sched.BKL:
        pipe.rd_wait.wake_all()  # a signal, say: it makes the call again
        assert pipe.write(b"x", False, False) == 1
    assert reader.kernel.results == [] and pipe.nbytes == 1 and pipe.parked is None


def test_a_parked_read_into_a_bad_buffer_leaves_the_bytes(reader):
    pipe = Pipe()
    pipe.readers = pipe.writers = 1

    def bad(pos, chunk):
        raise GuestFault(0)

    with sched.BKL:
        with pytest.raises(sched.Parked):
            pipe.read_into(4, False, bad, park=True)
        pipe.write(b"abc", False, False)
    assert reader.kernel.results == ["EFAULT"] and pipe.nbytes == 3


def test_no_park_without_writers_nonblocking_or_data(reader):
    pipe = Pipe()
    pipe.readers = 1
    with sched.BKL:
        assert pipe.read_into(4, False, lambda pos, chunk: None, park=True) == 0  # EOF
        pipe.writers = 1
        pipe.write(b"ab", False, False)
        assert pipe.read_into(4, False, lambda pos, chunk: None, park=True) == 2
    assert pipe.parked is None and not pipe.rd_wait._waiters
