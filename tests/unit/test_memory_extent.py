"""GuestMemory exposes guest memory as it is handed out (kvmsentry.vm.memory):
nothing proportional to the guest's size at start, the exposed part
(KVM memory slots on the platform) growing by doubling from EXTENT_MIN,
every handed-out frame inside it. Pure code: no /dev/kvm needed."""

import pytest

from kvmsentry.vm.memory import EXTENT_MIN, GuestMemory, OutOfGuestMemory
from kvmsentry.vm.x86 import PAGE_SIZE

HUGE = 2 << 20


@pytest.fixture
def exposed():
    """A 1 GiB GuestMemory recording its expose() calls as (gpa, length)."""
    calls = []

    def expose(gpa, length):
        calls.append((gpa, length))
        return length

    memory = GuestMemory(1 << 30, expose=expose)
    yield memory, calls
    memory.close()


def test_nothing_is_exposed_before_the_first_frame(exposed):
    memory, calls = exposed
    assert memory.exposed == 0 and calls == []
    assert memory.refcount(0) == 0 and memory.refcount(512 << 20) == 0


def test_first_frame_exposes_the_minimum_extent(exposed):
    memory, calls = exposed
    gpa = memory.alloc_frame()
    assert gpa == 0 and memory.refcount(gpa) == 1
    assert calls == [(0, EXTENT_MIN)] and memory.exposed == EXTENT_MIN
    memory.alloc_frame()
    assert len(calls) == 1


def test_extents_double_and_stay_contiguous_up_to_the_size(exposed):
    memory, calls = exposed
    huge = []
    while (gpa := memory.alloc_huge()) is not None:
        huge.append(gpa)
        assert gpa + HUGE <= memory.exposed  # every handed-out frame is exposed
        assert memory.refcount(gpa) == memory.refcount(gpa + HUGE - PAGE_SIZE) == 1
    assert len(huge) == (1 << 30) // HUGE
    assert calls[0] == (0, EXTENT_MIN)
    for (gpa, length), (next_gpa, next_length) in zip(calls, calls[1:]):
        assert next_gpa == gpa + length
        assert next_length == min(next_gpa, (1 << 30) - next_gpa)
    assert calls[-1][0] + calls[-1][1] == memory.exposed == 1 << 30


def test_reserve_exposes_what_it_hands_out(exposed):
    memory, calls = exposed
    nframes = (EXTENT_MIN + HUGE) // PAGE_SIZE
    gpa = memory.reserve(nframes)
    assert gpa == 0 and memory.exposed >= EXTENT_MIN + HUGE
    assert memory.refcount((nframes - 1) * PAGE_SIZE) == 1


def test_expose_may_take_the_rest_at_once():
    calls = []

    def expose(gpa, length):
        calls.append((gpa, length))
        return (256 << 20) - gpa  # e.g. the platform's last memory slot

    memory = GuestMemory(256 << 20, expose=expose)
    try:
        memory.alloc_frame()
        while memory.alloc_huge() is not None:
            pass
        assert calls == [(0, EXTENT_MIN)] and memory.exposed == 256 << 20
        assert memory.refcount((256 << 20) - PAGE_SIZE) == 1
    finally:
        memory.close()


def test_a_failing_expose_hands_nothing_out():
    def expose(gpa, length):
        raise OSError(28, "no slot left")

    memory = GuestMemory(256 << 20, expose=expose)
    try:
        with pytest.raises(OSError):
            memory.alloc_frame()
        assert memory.frames_in_use == 0 and memory.exposed == 0
        with pytest.raises(OSError):
            memory.alloc_huge()
        assert memory.frames_in_use == 0
    finally:
        memory.close()


def test_without_expose_memory_still_grows_and_runs_out():
    memory = GuestMemory(EXTENT_MIN + 2 * PAGE_SIZE)
    try:
        for _ in range(EXTENT_MIN // PAGE_SIZE + 2):
            memory.alloc_frame()
        assert memory.exposed == EXTENT_MIN + 2 * PAGE_SIZE
        with pytest.raises(OutOfGuestMemory):
            memory.alloc_frame()
    finally:
        memory.close()


def test_huge_prefetch_keeps_frames_handed_out_meanwhile(monkeypatch):
    """alloc_huge has a host thread populate the next 2 MiB block
    (vm.memory._Prefetcher); frames of that block handed out one by one
    meanwhile keep what is written to them, and the rest stays zero."""
    monkeypatch.setattr("kvmsentry.vm.memory.PREFETCH_HUGE", True)
    memory = GuestMemory(16 << 20)
    try:
        first = memory.alloc_huge()
        assert first == 0 and memory._prefetcher is not None
        frames = [memory.alloc_frame() for _ in range(8)]
        assert frames[0] == HUGE  # from the block being prefetched
        for i, gpa in enumerate(frames):
            memory.write(gpa, bytes([i + 1]) * PAGE_SIZE)
        memory._prefetcher.request(HUGE, HUGE)  # again, over written frames
        memory._prefetcher.drain()
        for i, gpa in enumerate(frames):
            assert memory.read(gpa, PAGE_SIZE) == bytes([i + 1]) * PAGE_SIZE
        assert memory.read(HUGE + 8 * PAGE_SIZE, HUGE - 8 * PAGE_SIZE) == bytes(HUGE - 8 * PAGE_SIZE)
        second = memory.alloc_huge()  # the next aligned block: zero
        assert second == 2 * HUGE
        assert memory.read(second, HUGE) == bytes(HUGE)
    finally:
        memory.close()
