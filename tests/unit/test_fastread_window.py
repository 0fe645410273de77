"""The fast-read windows' 2 MiB pages (kernel.mm map_file_huge and take_huge,
pagecache HostMapping.read_huge), no KVM.

A window is a shared read-only file VMA; a 2 MiB block of a host file is
read in one go into one aligned run of frames (those of the block two
behind, for a sequential reader) and mapped as one 2 MiB page. Content,
reference counts and the fall-back cases are checked against the file.
"""

import os

from kvmsentry.kernel.mm import PROT_READ, PROT_WRITE
from kvmsentry.kernel.pagecache import page_cache_of
from kvmsentry.vm.memory import GuestMemory
from kvmsentry.vm.x86 import HUGE_PAGE_SIZE, PAGE_SIZE

from kvmsentry.kernel.mm import MemoryManager
from test_pagecache import FakeAddressSpace

WINDOW = 0x40000000  # 2 MiB aligned


class HugeAddressSpace(FakeAddressSpace):
    """FakeAddressSpace whose map_huge with entry 0 clears the 2 MiB (a directory entry)."""

    def map_huge(self, gva, entry):
        if entry:
            return super().map_huge(gva, entry)
        for i in range(512):
            self.entries.pop(gva + i * PAGE_SIZE, None)


def new_mm(memory):
    return MemoryManager(HugeAddressSpace(), memory, task_size=1 << 47, mmap_base=1 << 46)


def _host_file(tmp_path, size):
    path = tmp_path / "file.bin"
    path.write_bytes(bytes((i * 13 + i // 4096) & 0xFF for i in range(size)))
    return path


def test_blocks_map_as_2mib_pages(tmp_path):
    memory = GuestMemory(64 << 20)
    try:
        size = 3 * HUGE_PAGE_SIZE + 12345
        path = _host_file(tmp_path, size)
        data = path.read_bytes()
        fd = os.open(path, os.O_RDONLY)
        try:
            mapping = page_cache_of(memory).host_mapping(os.fsencode(path), fd)
            mm = new_mm(memory)
            vma = mm.map_file(WINDOW, 4 * HUGE_PAGE_SIZE, PROT_READ, mapping, 0, shared=True,
                              may_write=False)
            assert mm.map_file_huge(vma, WINDOW)
            assert mm.address_space.huge == [WINDOW]
            assert mm.copy_in(WINDOW + 4000, 200) == data[4000:4200]
            gpa = mapping.pages[0]
            assert gpa % HUGE_PAGE_SIZE == 0 and memory.refcount(gpa) == 2  # cache + window
            assert mm.map_file_huge(vma, WINDOW + HUGE_PAGE_SIZE)
            assert mm.copy_in(WINDOW + HUGE_PAGE_SIZE + 5, 100) == data[HUGE_PAGE_SIZE + 5:HUGE_PAGE_SIZE + 105]
            # The tail (past the last whole block) cannot be one 2 MiB page:
            # page by page instead.
            assert not mm.map_file_huge(vma, WINDOW + 3 * HUGE_PAGE_SIZE)
            assert mm.map_file_huge(vma, WINDOW + 2 * HUGE_PAGE_SIZE)
            mm.populate(WINDOW + 3 * HUGE_PAGE_SIZE, WINDOW + 4 * HUGE_PAGE_SIZE)
            tail = 3 * HUGE_PAGE_SIZE
            assert mm.copy_in(WINDOW + tail, 12345) == data[tail:]
            # Already-mapped blocks and writable or private VMAs are refused.
            assert not mm.map_file_huge(vma, WINDOW)
            other = new_mm(memory)
            rw = other.map_file(WINDOW, HUGE_PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0)
            assert not other.map_file_huge(rw, WINDOW)
            # A second window of the same file reuses the cached run as is.
            third = new_mm(memory)
            ro = third.map_file(WINDOW, HUGE_PAGE_SIZE, PROT_READ, mapping, 0, shared=True, may_write=False)
            assert third.map_file_huge(ro, WINDOW)
            assert third.copy_in(WINDOW, PAGE_SIZE) == data[:PAGE_SIZE]
            assert memory.refcount(gpa) == 3
            for m in (mm, other, third):
                m.destroy()
        finally:
            os.close(fd)
    finally:
        memory.close()


def test_a_sequential_reader_reuses_the_frames_two_blocks_behind(tmp_path):
    memory = GuestMemory(64 << 20)
    try:
        blocks = 6
        path = _host_file(tmp_path, blocks * HUGE_PAGE_SIZE)
        data = path.read_bytes()
        fd = os.open(path, os.O_RDONLY)
        try:
            mapping = page_cache_of(memory).host_mapping(os.fsencode(path), fd)
            mm = new_mm(memory)
            vma = mm.map_file(WINDOW, blocks * HUGE_PAGE_SIZE, PROT_READ, mapping, 0, shared=True,
                              may_write=False)
            in_use = []
            for k in range(blocks):
                block = WINDOW + k * HUGE_PAGE_SIZE
                assert mm.map_file_huge(vma, block, block - 2 * HUGE_PAGE_SIZE)
                assert mm.copy_in(block + 777, 300) == data[k * HUGE_PAGE_SIZE + 777:k * HUGE_PAGE_SIZE + 1077]
                in_use.append(memory.frames_in_use)
            # Blocks two behind left the window and the cache; their frames
            # took the next block: never more than two blocks mapped (1,024
            # frames), for any length of file.
            assert (WINDOW >> 12) not in mm.pages and 0 not in mapping.pages
            assert mm.pages[(WINDOW + 5 * HUGE_PAGE_SIZE) >> 12] == mapping.pages[5 * 512]
            assert max(in_use) == 2 * 512 == in_use[-1]
            # A block taken back is read again on the next touch.
            assert mm.map_file_huge(vma, WINDOW)
            assert mm.copy_in(WINDOW, 64) == data[:64]
            # A block someone else maps too is never taken.
            other = new_mm(memory)
            ro = other.map_file(WINDOW, HUGE_PAGE_SIZE, PROT_READ, mapping, 0, shared=True, may_write=False)
            assert other.map_file_huge(ro, WINDOW)
            assert mm.take_huge(vma, WINDOW) is None
            mm.destroy()
            other.destroy()
        finally:
            os.close(fd)
    finally:
        memory.close()
