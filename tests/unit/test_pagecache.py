"""The page cache and file VMAs (kvmsentry.kernel.pagecache, kernel.mm), no KVM.

A small GuestMemory and a dict standing in for the page table: file
pages fault in from the cache, private ones copy on write, shared ones
are the cache's frames and stay coherent with the inode's data (write,
truncate, read), VMA splits keep the file offset, fork honours
MADV_DONTFORK, and unused pages are freed under the cache's bound.
"""

import os

import pytest

from kvmsentry.kernel.mm import FAULT_AROUND_PAGES as FAULT_AROUND
from kvmsentry.kernel.mm import FAULT_SIGBUS, PROT_READ, PROT_WRITE, MemoryManager
from kvmsentry.kernel.pagecache import PageCache, page_cache_of
from kvmsentry.kernel.vfs.inode import RegularInode
from kvmsentry.kernel.vfs.tmpfs import Tmpfs
from kvmsentry.vm.memory import GuestMemory
from kvmsentry.vm.x86 import HUGE_PAGE_SIZE, PAGE_SIZE, PTE_ADDR_MASK, PTE_PSE, PTE_RW

BASE = 0x10000000


class FakeAddressSpace:
    """The AddressSpace interface over a dict {gva: leaf entry}."""

    def __init__(self):
        self.entries = {}

    def map_entry(self, gva, entry):
        self.entries[gva] = entry

    def map_entries(self, entries):
        self.entries.update(entries)

    def set_entry(self, gva, entry):
        if entry:
            self.entries[gva] = entry
        else:
            self.entries.pop(gva, None)

    def unmap(self, gva):
        self.entries.pop(gva, None)

    def defer_release(self, gpas):
        return False

    def set_entries(self, entries):
        self.entries.update(entries)

    def unmap_pages(self, gvas):
        for gva in gvas:
            self.entries.pop(gva, None)

    def map_huge(self, gva, entry):
        self.huge = getattr(self, "huge", []) + [gva]
        base = entry & PTE_ADDR_MASK
        for i in range(512):
            self.entries[gva + i * PAGE_SIZE] = (base + i * PAGE_SIZE) | (entry & ~PTE_ADDR_MASK & ~PTE_PSE)

    def mark_stale(self, gva):
        pass

    def fork_into(self, child, keep, child_entries=None):
        from kvmsentry.vm.x86 import PTE_ACCESSED, PTE_DIRTY
        assert keep == sorted(keep)
        for gva, entry in list(self.entries.items()):
            if any(start <= gva < end for start, end in keep):
                child.entries[gva] = entry & ~(PTE_ACCESSED | PTE_DIRTY)
            else:
                child.entries[gva] = entry & ~(PTE_RW | PTE_ACCESSED | PTE_DIRTY)
                self.entries[gva] = entry & ~(PTE_RW | PTE_DIRTY)
        child.entries.update(child_entries or {})

    def leaves_with(self, bits, blocks=None):
        want = bits | 1  # and present
        return sorted(gva for gva, entry in self.entries.items()
                      if (blocks is None or gva >> 21 in blocks) and entry & want == want)

    def destroy(self):
        self.entries.clear()


@pytest.fixture
def memory():
    mem = GuestMemory(16 << 20)
    yield mem
    mem.close()


def new_mm(memory):
    return MemoryManager(FakeAddressSpace(), memory, task_size=1 << 47, mmap_base=1 << 46)


def read(mm, gva, n):
    return mm.copy_in(gva, n)


def frame_of(mm, gva):
    return mm.address_space.entries[gva & ~(PAGE_SIZE - 1)] & PTE_ADDR_MASK


def tmpfs_file(data: bytes) -> RegularInode:
    return RegularInode(Tmpfs(), 0o644, data=bytearray(data))


def content(npages, tail=0):
    return bytes((i * 7 + 3) & 0xFF for i in range(npages * PAGE_SIZE + tail))


def test_private_pages_are_shared_until_written(memory):
    inode = tmpfs_file(content(2, 100))
    mapping = page_cache_of(memory).inode_mapping(inode)
    a, b = new_mm(memory), new_mm(memory)
    for mm in (a, b):
        mm.map_file(BASE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0)
        assert mm.handle_fault(BASE, write=False, execute=False) == 0
    # Fault-around mapped every page of the file; both use the cache's frames.
    assert frame_of(a, BASE + PAGE_SIZE) == frame_of(b, BASE + PAGE_SIZE) == mapping.pages[1]
    assert not a.address_space.entries[BASE] & PTE_RW
    assert read(a, 2 * PAGE_SIZE + BASE, PAGE_SIZE) == content(2, 100)[2 * PAGE_SIZE:] + bytes(PAGE_SIZE - 100)
    assert a.handle_fault(BASE + 5, write=True, execute=False) == 0
    a.copy_out(BASE + 5, b"X")
    assert frame_of(a, BASE) != mapping.pages[0]
    assert read(b, BASE + 5, 1) == bytes(inode.data[5:6]) != b"X"
    assert inode.data[5:6] != b"X"


def test_shared_mapping_is_coherent_with_read_and_write(memory):
    inode = tmpfs_file(content(2))
    mapping = page_cache_of(memory).inode_mapping(inode)
    a, b = new_mm(memory), new_mm(memory)
    a.map_file(BASE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0, shared=True)
    b.map_file(BASE, PAGE_SIZE, PROT_READ, mapping, PAGE_SIZE, shared=True)
    assert a.handle_fault(BASE + PAGE_SIZE, write=True, execute=False) == 0
    assert frame_of(a, BASE + PAGE_SIZE) == mapping.pages[1]
    memory.view[mapping.pages[1] + 7] = 0xAB  # the guest writes through a's mapping
    assert inode.read_at(1, PAGE_SIZE + 7) == b"\xab"
    assert read(b, BASE + 7, 1) == b"\xab"
    inode.write_at(b"hello", PAGE_SIZE + 100)
    assert read(a, BASE + PAGE_SIZE + 100, 5) == b"hello"
    assert read(a, BASE + PAGE_SIZE + 7, 1) == b"\xab"  # the write kept the mapped byte


def test_truncate_unmaps_pages_past_the_end(memory):
    inode = tmpfs_file(content(3))
    mapping = page_cache_of(memory).inode_mapping(inode)
    mm = new_mm(memory)
    mm.map_file(BASE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0, shared=True)
    mm.populate(BASE, BASE + 3 * PAGE_SIZE)
    assert BASE + 2 * PAGE_SIZE in mm.address_space.entries
    inode.truncate(PAGE_SIZE + 10)
    assert BASE + 2 * PAGE_SIZE not in mm.address_space.entries
    assert mm.handle_fault(BASE + 2 * PAGE_SIZE, write=False, execute=False) == FAULT_SIGBUS
    assert read(mm, BASE + PAGE_SIZE + 9, 2) == content(2)[PAGE_SIZE + 9:PAGE_SIZE + 10] + b"\0"
    inode.truncate(3 * PAGE_SIZE)
    assert mm.handle_fault(BASE + 2 * PAGE_SIZE, write=False, execute=False) == 0
    assert read(mm, BASE + 2 * PAGE_SIZE, 4) == bytes(4)


def test_split_keeps_file_offsets(memory):
    inode = tmpfs_file(content(4))
    mapping = page_cache_of(memory).inode_mapping(inode)
    mm = new_mm(memory)
    mm.map_file(BASE, 4 * PAGE_SIZE, PROT_READ, mapping, 0)
    mm.protect(BASE + PAGE_SIZE, BASE + 2 * PAGE_SIZE, PROT_READ | PROT_WRITE)
    assert [(v.start - BASE, v.pgoff) for v in mm.vmas] == [(0, 0), (PAGE_SIZE, 1), (2 * PAGE_SIZE, 2)]
    mm.unmap_range(BASE, BASE + PAGE_SIZE)
    assert read(mm, BASE + 3 * PAGE_SIZE, 8) == content(4)[3 * PAGE_SIZE:3 * PAGE_SIZE + 8]
    new = mm.move_range(BASE + 2 * PAGE_SIZE, 2 * PAGE_SIZE, BASE + 64 * PAGE_SIZE, 2 * PAGE_SIZE)
    assert mm.find_vma(new).pgoff == 2
    assert read(mm, new + PAGE_SIZE, 8) == content(4)[3 * PAGE_SIZE:3 * PAGE_SIZE + 8]


def test_fork_skips_dontfork_and_copies_read_only_private_on_write(memory):
    mm = new_mm(memory)
    mm.map_region(BASE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE)
    mm.copy_out(BASE, b"a")
    mm.copy_out(BASE + PAGE_SIZE, b"b")
    mm.protect(BASE, BASE + PAGE_SIZE, PROT_READ)
    mm.set_dontfork(BASE + PAGE_SIZE, BASE + 2 * PAGE_SIZE, True)
    child = mm.fork(FakeAddressSpace())
    assert [v.start for v in child.vmas] == [BASE]
    # The read-only page is shared; making it writable again must not
    # let the parent write the child's copy.
    mm.protect(BASE, BASE + PAGE_SIZE, PROT_READ | PROT_WRITE)
    assert not mm.address_space.entries[BASE] & PTE_RW
    mm.copy_out(BASE, b"z")
    assert read(child, BASE, 1) == b"a"


def test_unused_pages_are_freed_under_the_bound(memory, tmp_path):
    cache = PageCache(memory, limit_pages=4)
    path = tmp_path / "f"
    path.write_bytes(content(8))
    fd = os.open(path, os.O_RDONLY)
    try:
        mapping = cache.host_mapping(os.fsencode(path), fd)
        assert cache.host_mapping(os.fsencode(path), fd) is mapping  # same identity
    finally:
        os.close(fd)
    mm = new_mm(memory)
    mm.map_file(BASE, 8 * PAGE_SIZE, PROT_READ, mapping, 0, shared=True)
    mm.populate(BASE, BASE + 8 * PAGE_SIZE)
    assert cache.npages == 8  # all mapped: nothing can go
    in_use = memory.frames_in_use
    mm.unmap_range(BASE, BASE + 8 * PAGE_SIZE)
    assert cache.shrink(100) == 8
    assert cache.npages == 0 and memory.frames_in_use == in_use - 8
    # The mapping reads the file again (its fd was closed) when needed.
    mm.map_file(BASE, PAGE_SIZE, PROT_READ, mapping, 3 * PAGE_SIZE)
    assert read(mm, BASE, 4) == content(4)[3 * PAGE_SIZE:3 * PAGE_SIZE + 4]


def test_memory_pressure_shrinks_the_cache():
    memory = GuestMemory(64 * PAGE_SIZE)
    try:
        inode = tmpfs_file(content(32))
        mapping = page_cache_of(memory).inode_mapping(inode)
        mapping.read_pages(0, 32)
        frames = [memory.alloc_frame() for _ in range(40)]  # only possible by reclaim
        assert len(frames) == 40 and len(mapping.pages) < 32
    finally:
        memory.close()


def test_large_anonymous_regions_get_2mib_pages(memory):
    mm = new_mm(memory)
    base = 0x40000000
    mm.map_region(base, 8 << 20, PROT_READ | PROT_WRITE)
    assert mm.handle_fault(base + HUGE_PAGE_SIZE + 5, write=True, execute=False) == 0
    assert mm.address_space.huge == [base + HUGE_PAGE_SIZE]
    first = mm.pages[(base + HUGE_PAGE_SIZE) >> 12]
    assert first % HUGE_PAGE_SIZE == 0 and mm.pages[((base + HUGE_PAGE_SIZE) >> 12) + 511] == first + HUGE_PAGE_SIZE - PAGE_SIZE
    # A block with a 4 KiB page present already stays 4 KiB.
    mm.copy_out(base + 3 * HUGE_PAGE_SIZE, b"x")
    assert mm.handle_fault(base + 3 * HUGE_PAGE_SIZE + PAGE_SIZE, write=True, execute=False) == 0
    assert mm.address_space.huge == [base + HUGE_PAGE_SIZE]
    in_use, mapped = memory.frames_in_use, len(mm.pages)
    assert mapped == 512 + FAULT_AROUND
    mm.unmap_range(base, base + (8 << 20))
    assert memory.frames_in_use == in_use - mapped and not mm.pages


def test_a_write_to_a_small_private_vma_copies_all_its_shared_pages(memory):
    mm = new_mm(memory)
    mm.map_region(BASE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE)
    mm.populate(BASE, BASE + 4 * PAGE_SIZE)
    child = mm.fork(FakeAddressSpace())
    assert mm.handle_fault(BASE + PAGE_SIZE, write=True, execute=False) == 0
    assert not mm.cow and all(mm.address_space.entries[BASE + i * PAGE_SIZE] & PTE_RW for i in range(4))
    assert all(frame_of(mm, BASE + i * PAGE_SIZE) != frame_of(child, BASE + i * PAGE_SIZE) for i in range(4))


def test_a_write_fault_in_a_private_file_vma_copies_only_its_page(memory):
    inode = tmpfs_file(content(4))
    mapping = page_cache_of(memory).inode_mapping(inode)
    mm = new_mm(memory)
    mm.map_file(BASE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0)
    assert mm.handle_fault(BASE + PAGE_SIZE, write=True, execute=False) == 0
    assert frame_of(mm, BASE + PAGE_SIZE) != mapping.pages[1]
    assert frame_of(mm, BASE + 2 * PAGE_SIZE) == mapping.pages[2]  # still the file's
    inode.write_at(b"new", 2 * PAGE_SIZE)
    assert read(mm, BASE + 2 * PAGE_SIZE, 3) == b"new"


def test_a_write_fault_in_the_program_image_copies_its_whole_window(memory):
    # The running executable (denywrite: Linux refuses writes to it,
    # ETXTBSY): a write fault copies every page of the fault-around window,
    # the present copy-on-write ones and the absent ones, in one fault.
    npages = FAULT_AROUND + 4
    inode = tmpfs_file(content(npages, 100))
    mapping = page_cache_of(memory).inode_mapping(inode)
    mm = new_mm(memory)
    mm.map_file(BASE, (npages + 1) * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0, denywrite=True)
    assert mm.handle_fault(BASE + 3 * PAGE_SIZE, write=False, execute=False) == 0
    assert frame_of(mm, BASE + 2 * PAGE_SIZE) == mapping.pages[2]  # read: shared
    assert mm.handle_fault(BASE + PAGE_SIZE, write=True, execute=False) == 0
    for i in range(FAULT_AROUND):
        gva = BASE + i * PAGE_SIZE
        assert mm.address_space.entries[gva] & PTE_RW and frame_of(mm, gva) != mapping.pages[i]
    assert read(mm, BASE, FAULT_AROUND * PAGE_SIZE) == content(npages)[:FAULT_AROUND * PAGE_SIZE]
    assert not mm.cow & set(range(BASE >> 12, (BASE >> 12) + FAULT_AROUND))
    # The next window is untouched; the partial last page reads zeros past
    # the end of the file; a page wholly past it is SIGBUS.
    assert BASE + FAULT_AROUND * PAGE_SIZE not in mm.address_space.entries
    assert mm.handle_fault(BASE + npages * PAGE_SIZE + 8, write=True, execute=False) == 0
    assert read(mm, BASE + npages * PAGE_SIZE, PAGE_SIZE) == content(npages, 100)[npages * PAGE_SIZE:] + bytes(PAGE_SIZE - 100)
    mm.map_file(BASE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, (npages + 1) * PAGE_SIZE, denywrite=True)
    assert mm.handle_fault(BASE, write=True, execute=False) == FAULT_SIGBUS
    # Frames are accounted: unmapping gives all of them back.
    mm.unmap_range(BASE, BASE + (npages + 1) * PAGE_SIZE)
    assert not mm.pages and not mm.cow


def test_shared_anonymous_memory_is_shared_after_fork_and_freed_with_it(memory):
    from kvmsentry.kernel.pagecache import AnonMapping
    in_use = memory.frames_in_use
    mm = new_mm(memory)
    mm.map_file(BASE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, AnonMapping(page_cache_of(memory), 2 * PAGE_SIZE),
                0, shared=True, name="/dev/zero (deleted)")
    child = mm.fork(FakeAddressSpace())
    child.copy_out(BASE + PAGE_SIZE + 3, b"c")  # first touch, in the child
    assert read(mm, BASE + PAGE_SIZE + 3, 1) == b"c"
    mm.discard(BASE, BASE + 2 * PAGE_SIZE)  # MADV_DONTNEED keeps shared data
    assert read(mm, BASE + PAGE_SIZE + 3, 1) == b"c"
    child.destroy()
    mm.unmap_range(BASE, BASE + 2 * PAGE_SIZE)
    memory.free_deferred()  # the mapping's finalizer queued its frames (free_later)
    assert memory.frames_in_use == in_use  # the mapping went with its last VMA


def test_a_write_to_a_small_private_host_file_vma_copies_it_whole(memory, tmp_path):
    path = tmp_path / "lib.so"
    path.write_bytes(content(4))
    fd = os.open(path, os.O_RDONLY)
    try:
        mapping = page_cache_of(memory).host_mapping(os.fsencode(path), fd)
    finally:
        os.close(fd)
    mm = new_mm(memory)
    mm.map_file(BASE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0)
    assert mm.handle_fault(BASE + PAGE_SIZE, write=True, execute=False) == 0
    # A host file never changes under its mapping: every page is copied now.
    assert not mm.cow and all(frame_of(mm, BASE + i * PAGE_SIZE) != mapping.pages[i] for i in range(4))
    assert read(mm, BASE + 3 * PAGE_SIZE, 4) == content(4)[3 * PAGE_SIZE:3 * PAGE_SIZE + 4]


def _set_bits(mm, gva, bits):
    mm.address_space.entries[gva] |= bits


def test_fork_copies_the_writable_pages_when_they_fit(memory):
    """With at most FORK_COPY_PAGES writable private pages, fork copies them
    all: both keep them writable, neither copy-on-write, and the parent's
    entries do not change (no flush); each side then writes only its own."""
    from kvmsentry.vm.x86 import PTE_DIRTY
    mm = new_mm(memory)
    mm.map_region(BASE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE)
    for i in range(3):
        mm.copy_out(BASE + i * PAGE_SIZE, bytes([65 + i]))
    _set_bits(mm, BASE + PAGE_SIZE, PTE_DIRTY)  # written by the program
    before = dict(mm.address_space.entries)
    child = mm.fork(FakeAddressSpace())
    assert mm.address_space.entries == before
    for i in range(3):
        vpn = (BASE >> 12) + i
        assert child.pages[vpn] != mm.pages[vpn]
        assert vpn not in mm.cow and vpn not in child.cow
        assert child.address_space.entries[BASE + i * PAGE_SIZE] & PTE_RW
        assert memory.refcount(child.pages[vpn]) == memory.refcount(mm.pages[vpn]) == 1
    assert read(child, BASE + PAGE_SIZE, 1) == b"B"
    mm.copy_out(BASE + PAGE_SIZE, b"p")
    child.copy_out(BASE + PAGE_SIZE, b"c")
    child.copy_out(BASE, b"d")
    assert read(mm, BASE, PAGE_SIZE * 2)[::PAGE_SIZE] == b"Ap"
    assert read(child, BASE, PAGE_SIZE * 2)[::PAGE_SIZE] == b"dc"
    # Not with another task in the memory (a thread could write meanwhile).
    mm.users = 2
    second = mm.fork(FakeAddressSpace())
    assert second.pages == mm.pages and BASE >> 12 in second.cow
    mm.users = 1
    for process in (child, second, mm):
        process.destroy()


def test_fork_copies_the_dirty_pages_beyond_the_budget(memory, monkeypatch):
    """More writable pages than FORK_COPY_PAGES: only those written since
    their entry was written (dirty) are copied, their dirty bit cleared in
    the parent; the others are shared copy-on-write."""
    from kvmsentry.kernel import mm as mm_module
    from kvmsentry.vm.x86 import PTE_DIRTY
    monkeypatch.setattr(mm_module, "FORK_COPY_PAGES", 2)
    mm = new_mm(memory)
    mm.map_region(BASE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE)
    for i in range(3):
        mm.copy_out(BASE + i * PAGE_SIZE, bytes([65 + i]))
    _set_bits(mm, BASE + PAGE_SIZE, PTE_DIRTY)
    child = mm.fork(FakeAddressSpace())
    dirty_vpn = (BASE + PAGE_SIZE) >> 12
    assert child.pages[dirty_vpn] != mm.pages[dirty_vpn]
    assert dirty_vpn not in mm.cow and dirty_vpn not in child.cow
    assert mm.address_space.entries[BASE + PAGE_SIZE] & (PTE_RW | PTE_DIRTY) == PTE_RW
    for clean in (BASE, BASE + 2 * PAGE_SIZE):
        assert child.pages[clean >> 12] == mm.pages[clean >> 12] and clean >> 12 in mm.cow
        assert not mm.address_space.entries[clean] & PTE_RW
    child.copy_out(BASE, b"x")
    assert read(mm, BASE, 1) == b"A" and read(child, BASE + PAGE_SIZE, 1) == b"B"
    child.destroy()
    mm.destroy()


def test_execve_maps_the_working_set_of_earlier_runs(memory, tmp_path):
    """Pages of a program image the last run read (accessed bit) are mapped
    copy-on-write at the next exec of the same file, written ones (dirty
    bit) as private copies; other pages still fault."""
    from kvmsentry.kernel import mm as mm_module
    from kvmsentry.vm.x86 import PTE_ACCESSED, PTE_DIRTY
    path = tmp_path / "prog"
    path.write_bytes(content(8))
    fd = os.open(path, os.O_RDONLY)
    try:
        mapping = page_cache_of(memory).host_mapping(os.fsencode(path), fd)
    finally:
        os.close(fd)
    first = new_mm(memory)
    first.map_file(BASE, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0, denywrite=True)
    assert first.pages == {}
    assert first.handle_fault(BASE + 2 * PAGE_SIZE, write=False, execute=False) == 0  # the window
    _set_bits(first, BASE + 2 * PAGE_SIZE, PTE_ACCESSED)
    _set_bits(first, BASE + 5 * PAGE_SIZE, PTE_ACCESSED | PTE_DIRTY)
    first.destroy()
    assert mm_module._WORKING_SETS[mapping] == ({2, 5}, {5})
    second = new_mm(memory)
    second.map_file(BASE, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0, denywrite=True)
    vpn = BASE >> 12
    assert set(second.pages) == {vpn + 2, vpn + 5}
    assert second.pages[vpn + 2] == mapping.pages[2] and vpn + 2 in second.cow
    assert second.pages[vpn + 5] != mapping.pages[5] and vpn + 5 not in second.cow
    assert second.address_space.entries[BASE + 5 * PAGE_SIZE] & PTE_RW
    assert read(second, BASE + 5 * PAGE_SIZE, 8) == content(8)[5 * PAGE_SIZE:5 * PAGE_SIZE + 8]
    second.copy_out(BASE + 2 * PAGE_SIZE, b"x")
    assert read(second, BASE + 2 * PAGE_SIZE, 1) == b"x"
    assert memory.view[mapping.pages[2]:mapping.pages[2] + 1] == content(8)[2 * PAGE_SIZE:2 * PAGE_SIZE + 1]
    # Not for a mapping without denywrite (a library, a data file).
    other = new_mm(memory)
    other.map_file(BASE, 8 * PAGE_SIZE, PROT_READ, mapping, 0)
    assert other.pages == {}
    second.destroy()
    other.destroy()


def test_fork_copies_what_the_last_child_wrote(memory):
    """The pages a child of fork wrote (dirty bits when its memory goes, at
    exec or exit) are copied at the parent's next fork even if the parent
    did not write them: the child gets its own copy, the parent keeps its
    page (copy-on-write, read-only, but its alone)."""
    from kvmsentry.vm.x86 import PTE_DIRTY
    mm = new_mm(memory)
    mm.map_region(BASE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE)
    mm.copy_out(BASE, b"a")
    mm.copy_out(BASE + PAGE_SIZE, b"b")
    mm.users = 2  # no copies at this fork: all copy-on-write
    first = mm.fork(FakeAddressSpace())
    mm.users = 1
    first.copy_out(BASE + PAGE_SIZE, b"c")  # a copy-on-write break in the child
    _set_bits(first, BASE + PAGE_SIZE, PTE_DIRTY)
    first.destroy()
    vpn = (BASE + PAGE_SIZE) >> 12
    assert mm.child_wrote == {vpn}
    assert vpn in mm.cow and memory.refcount(mm.pages[vpn]) == 1
    second = mm.fork(FakeAddressSpace())
    assert second.pages[vpn] != mm.pages[vpn] and vpn not in second.cow
    assert second.address_space.entries[BASE + PAGE_SIZE] & PTE_RW
    assert vpn in mm.cow and not mm.address_space.entries[BASE + PAGE_SIZE] & PTE_RW
    assert BASE >> 12 in second.cow  # written by nobody: shared
    assert read(second, BASE + PAGE_SIZE, 1) == b"b"
    second.copy_out(BASE + PAGE_SIZE, b"d")
    mm.copy_out(BASE + PAGE_SIZE, b"e")
    assert mm.pages[vpn] != second.pages[vpn]
    assert read(second, BASE + PAGE_SIZE, 1) == b"d" and read(mm, BASE + PAGE_SIZE, 1) == b"e"
    second.destroy()
    mm.destroy()


def test_brk_prefault_maps_the_pages_at_the_old_break(memory):
    mm = new_mm(memory)
    mm.map_region(BASE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, name="[heap]")
    mm.prefault_heap(BASE + 100, BASE + 4 * PAGE_SIZE)
    assert sorted(mm.pages) == [BASE >> 12, (BASE >> 12) + 1]
    mm.prefault_heap(BASE, BASE + 100)  # the page holding the old break only
    assert len(mm.pages) == 2
    other = new_mm(memory)
    other.map_region(BASE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE)
    other.prefault_heap(BASE, BASE + PAGE_SIZE)  # not the heap: nothing
    assert other.pages == {}
    mm.destroy()
    other.destroy()


def test_working_set_keeps_relro_writes_and_the_bss(memory, tmp_path):
    """A page of the image written then made read-only (RELRO) counts as
    written; pages read in the anonymous VMA right after the image (the
    bss) are mapped at the next exec too, zeroed."""
    from kvmsentry.kernel import mm as mm_module
    from kvmsentry.vm.x86 import PTE_ACCESSED, PTE_DIRTY
    path = tmp_path / "prog"
    path.write_bytes(content(4))
    fd = os.open(path, os.O_RDONLY)
    try:
        mapping = page_cache_of(memory).host_mapping(os.fsencode(path), fd)
    finally:
        os.close(fd)

    def exec_image():
        mm = new_mm(memory)
        mm.map_file(BASE, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, mapping, 0, denywrite=True)
        mm.map_region(BASE + 4 * PAGE_SIZE, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE)  # the bss
        return mm

    first = exec_image()
    assert first.handle_fault(BASE, write=True, execute=False) == 0
    _set_bits(first, BASE + PAGE_SIZE, PTE_ACCESSED | PTE_DIRTY)
    first.protect(BASE, BASE + 2 * PAGE_SIZE, PROT_READ)  # RELRO: the entries lose their bits
    assert first.handle_fault(BASE + 6 * PAGE_SIZE, write=True, execute=False) == 0
    _set_bits(first, BASE + 6 * PAGE_SIZE, PTE_ACCESSED | PTE_DIRTY)
    first.copy_out(BASE + 6 * PAGE_SIZE, b"old")
    first.destroy()
    read_set, written = mm_module._WORKING_SETS[mapping]
    assert 1 in written and 1 in read_set and 4 + 2 in read_set and 4 + 2 not in written
    second = exec_image()
    vpn = BASE >> 12
    assert vpn + 1 in second.pages and vpn + 1 not in second.cow  # a private copy
    assert vpn + 6 in second.pages and vpn + 5 not in second.pages
    assert read(second, BASE + 6 * PAGE_SIZE, 3) == bytes(3)
    assert read(second, BASE + PAGE_SIZE, 8) == content(4)[PAGE_SIZE:PAGE_SIZE + 8]
    second.destroy()
