"""Kernel._check_fault_loop: a resolved page fault that keeps coming back
with the same registers is flushed harder, then reported as a sentry bug
instead of spinning forever. No /dev/kvm needed."""

from types import SimpleNamespace

import pytest

from kvmsentry.kernel.kernel import FAULT_LOOP_DEEP_FLUSH, FAULT_LOOP_LIMIT, Kernel
from kvmsentry.kernel.task import Task


class _PageTable:
    def __init__(self):
        self.frames = {}  # gva page -> the frame the tree maps there

    def frame_of(self, gva):
        return self.frames.get(gva & ~0xFFF)

    def walk(self, gva):
        return [(0x1000, 0x2003)]


class _AddressSpace:
    def __init__(self):
        self.deep_flushes = []
        self.page_table = _PageTable()
        self.cr3 = 0x1000

    def mark_stale(self, gva, *, every_level=False):
        if every_level:
            self.deep_flushes.append(gva)


def _task():
    regs = SimpleNamespace(rip=0x401000, rsp=0x7FFF0000, rax=0, rcx=0)
    mm = SimpleNamespace(address_space=_AddressSpace(), drops=0, pages={})
    task = Task(tid=1, process=None, mm=mm, fds=None)
    task.context = SimpleNamespace(regs=regs, fault=SimpleNamespace(error_code=6))
    return task


def test_progress_resets_the_count():
    task = _task()
    for i in range(3 * FAULT_LOOP_DEEP_FLUSH):
        task.context.regs.rax = i  # the program moved on between faults
        Kernel._check_fault_loop(None, task, 0x5000)
    assert task.fault_repeats == 0
    assert task.mm.address_space.deep_flushes == []


def test_a_fault_after_an_unmap_is_a_new_fault():
    task = _task()
    for _ in range(3 * FAULT_LOOP_DEEP_FLUSH):
        task.mm.drops += 1  # another thread's MADV_DONTNEED took the page again
        Kernel._check_fault_loop(None, task, 0x5000)
    assert task.fault_repeats == 0


def test_a_repeating_fault_is_flushed_at_every_level_then_reported():
    task = _task()
    for _ in range(FAULT_LOOP_DEEP_FLUSH + 1):
        Kernel._check_fault_loop(None, task, 0x5000)
    assert task.mm.address_space.deep_flushes == [0x5000]
    with pytest.raises(RuntimeError, match="page fault loop"):
        for _ in range(FAULT_LOOP_LIMIT):
            Kernel._check_fault_loop(None, task, 0x5000)


def test_a_page_the_tree_does_not_map_is_reported_at_once():
    """The memory manager holds a frame the page table lacks (seen when a
    flush's poke put back an old entry): no flush cures that, so the report
    comes at FAULT_LOOP_DEEP_FLUSH, with the walk."""
    task = _task()
    task.mm.pages[0x5] = 0x7000
    task.mm.address_space.page_table.frames[0x5000] = 0x7000
    for _ in range(FAULT_LOOP_DEEP_FLUSH + 1):  # mapped as it should be: flushed
        Kernel._check_fault_loop(None, task, 0x5008)
    assert task.mm.address_space.deep_flushes == [0x5008]
    task = _task()
    task.mm.pages[0x5] = 0x7000
    with pytest.raises(RuntimeError, match=r"does not map the page's frame 0x7000.*walk"):
        for _ in range(FAULT_LOOP_DEEP_FLUSH + 1):
            Kernel._check_fault_loop(None, task, 0x5008)
