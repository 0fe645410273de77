"""Page-table encodings and descriptor layouts (kvmsentry.vm.paging, kvmsentry.vm.x86).

Pure code over a small GuestMemory: no /dev/kvm needed.
"""

import struct

import pytest

from kvmsentry.vm import x86
from kvmsentry.vm.memory import GuestMemory
from kvmsentry.vm.paging import PageTable, indices, pte
from kvmsentry.vm.x86 import PAGE_SIZE, PTE_ADDR_MASK, PTE_NX, PTE_PRESENT, PTE_RW, PTE_USER


@pytest.fixture
def memory():
    mem = GuestMemory(4 << 20)
    yield mem
    mem.close()


# -- pte() and indices() -------------------------------------------------

def test_pte_bits():
    gpa = 0x12345000
    assert pte(gpa, writable=False, executable=True, user=False) == gpa | PTE_PRESENT
    assert pte(gpa, writable=True, executable=True, user=False) == gpa | PTE_PRESENT | PTE_RW
    assert pte(gpa, writable=False, executable=True, user=True) == gpa | PTE_PRESENT | PTE_USER
    assert pte(gpa, writable=False, executable=False, user=False) == gpa | PTE_PRESENT | PTE_NX
    assert (pte(gpa, writable=True, executable=False, user=True)
            == gpa | PTE_PRESENT | PTE_RW | PTE_USER | PTE_NX)


def test_pte_bit_values_are_the_architectural_ones():
    assert (PTE_PRESENT, PTE_RW, PTE_USER, PTE_NX) == (1, 2, 4, 1 << 63)
    assert PTE_ADDR_MASK == 0x000F_FFFF_FFFF_F000


def test_pte_drops_offset_and_high_bits_of_the_address():
    entry = pte(0xFFF0_0000_1234_5678, writable=False, executable=True, user=False)
    assert entry == 0x0000_0000_1234_5000 | PTE_PRESENT


def test_indices():
    assert indices(0) == (0, 0, 0, 0)
    assert indices(0x0000_7FFF_FFFF_F000) == (255, 511, 511, 511)
    assert indices(0xFFFF_FF80_0000_0000) == (511, 0, 0, 0)
    gva = (3 << 39) | (5 << 30) | (7 << 21) | (9 << 12) | 0xABC
    assert indices(gva) == (3, 5, 7, 9)


# -- PageTable -----------------------------------------------------------

def test_map_translate_entry(memory):
    pt = PageTable(memory)
    frame = memory.alloc_frame()
    gva = 0x7F12_3456_7000
    assert pt.translate(gva) is None
    assert pt.entry(gva) == 0
    pt.map(gva, frame, writable=True, executable=False)
    assert pt.entry(gva) == pte(frame, writable=True, executable=False, user=True)
    assert pt.translate(gva) == frame
    assert pt.translate(gva + 0x123) == frame + 0x123
    assert pt.translate(gva + PAGE_SIZE) is None
    assert pt.translate(gva - PAGE_SIZE) is None


def test_map_writes_a_walkable_tree(memory):
    """Walk the tree by hand from cr3, as the MMU would."""
    pt = PageTable(memory)
    frame = memory.alloc_frame()
    gva = 0x4000_1234_5000
    pt.map(gva, frame, writable=False, executable=True, user=False)
    table = pt.cr3
    for level, index in enumerate(indices(gva)):
        entry = struct.unpack_from("<Q", memory.view, table + index * 8)[0]
        assert entry & PTE_PRESENT
        if level < 3:
            # interior entries grant everything; permissions live in the leaf
            assert entry & (PTE_RW | PTE_USER) == PTE_RW | PTE_USER
            assert not entry & PTE_NX
        table = entry & PTE_ADDR_MASK
    assert table == frame


def test_set_entry_and_unmap(memory):
    pt = PageTable(memory)
    a, b = memory.alloc_frame(), memory.alloc_frame()
    gva = 0x40_0000
    pt.set_entry(gva, pte(a, writable=False, executable=True, user=True))
    assert pt.translate(gva) == a
    pt.set_entry(gva, pte(b, writable=True, executable=False, user=True))
    assert pt.translate(gva) == b
    pt.unmap(gva)
    assert pt.entry(gva) == 0
    assert pt.translate(gva) is None


def test_set_entry_zero_where_nothing_is_mapped_allocates_nothing(memory):
    pt = PageTable(memory)
    before = memory.frames_in_use
    pt.set_entry(0x1234_5000_0000, 0)
    assert memory.frames_in_use == before
    assert set(pt.dirty_tables) == set()


def test_shared_pml4_slot(memory):
    pdpt = memory.alloc_frame()
    pt = PageTable(memory, {511: pdpt})
    entry = struct.unpack_from("<Q", memory.view, pt.cr3 + 511 * 8)[0]
    assert entry & PTE_ADDR_MASK == pdpt
    assert entry & PTE_PRESENT
    assert pdpt not in pt.destroy()


def _leaf_table(pt, gva):
    table = pt.cr3
    for index in indices(gva)[:3]:
        table = struct.unpack_from("<Q", pt.memory.view, table + index * 8)[0] & PTE_ADDR_MASK
    return table


def test_dirty_tables_only_when_a_present_entry_changes(memory):
    pt = PageTable(memory)
    a, b = memory.alloc_frame(), memory.alloc_frame()
    gva = 0x60_0000
    # A new mapping where nothing was present: nothing to flush.
    pt.map(gva, a, writable=True, executable=False)
    assert set(pt.dirty_tables) == set()
    pt.set_entry(gva + PAGE_SIZE, pte(b, writable=True, executable=False, user=True))
    assert set(pt.dirty_tables) == set()
    leaf_table = _leaf_table(pt, gva)
    # Downgrading a present entry: its table page must be flushed.
    pt.set_entry(gva, pte(a, writable=False, executable=False, user=True))
    assert set(pt.dirty_tables) == {leaf_table}
    pt.dirty_tables.clear()
    # Unmapping a present entry.
    pt.unmap(gva + PAGE_SIZE)
    assert set(pt.dirty_tables) == {leaf_table}
    pt.dirty_tables.clear()
    # Unmapping what is already absent, then mapping into the hole: nothing.
    pt.unmap(gva + PAGE_SIZE)
    pt.set_entry(gva + PAGE_SIZE, pte(b, writable=True, executable=False, user=True))
    assert set(pt.dirty_tables) == set()


def test_dirty_tables_names_the_leaf_table_page_of_each_change(memory):
    pt = PageTable(memory)
    low, high = 0x1000, 0x7F00_0000_0000
    for gva in (low, high):
        pt.map(gva, memory.alloc_frame(), writable=True, executable=False)
    pt.unmap(low)
    pt.unmap(high)
    assert set(pt.dirty_tables) == {_leaf_table(pt, low), _leaf_table(pt, high)}
    assert all(t % PAGE_SIZE == 0 for t in pt.dirty_tables)


def test_mark_stale(memory):
    pt = PageTable(memory)
    pt.mark_stale(0x5000)  # nothing mapped: no table, nothing recorded
    assert set(pt.dirty_tables) == set()
    pt.map(0x5000, memory.alloc_frame(), writable=True, executable=False)
    pt.mark_stale(0x5000)
    assert set(pt.dirty_tables) == {_leaf_table(pt, 0x5000)}


def test_map_over_a_present_entry_records_dirty_table(memory):
    pt = PageTable(memory)
    pt.map(0x5000, memory.alloc_frame(), writable=True, executable=False)
    pt.map(0x5000, memory.alloc_frame(), writable=True, executable=False)
    assert set(pt.dirty_tables) == {_leaf_table(pt, 0x5000)}


def test_map_huge(memory):
    pt = PageTable(memory)
    gva = 0xFFFF_FFC0_0000_0000
    pt.map_huge(gva, 0x20_0000, writable=True, user=False)
    table = pt.cr3
    for index in indices(gva)[:2]:
        table = struct.unpack_from("<Q", memory.view, table + index * 8)[0] & PTE_ADDR_MASK
    leaf = struct.unpack_from("<Q", memory.view, table + indices(gva)[2] * 8)[0]
    assert leaf == 0x20_0000 | PTE_PRESENT | x86.PTE_PSE | PTE_NX | PTE_RW


def test_destroy_returns_own_tables(memory):
    pt = PageTable(memory)
    before = memory.frames_in_use
    pt.map(0x1000, 0x0, writable=False, executable=False)
    tables = pt.destroy()
    # root + PDPT + PD + PT; the root was allocated before `before`
    assert len(tables) == 4
    assert pt.cr3 in tables
    assert memory.frames_in_use - before == 3


# -- descriptors ---------------------------------------------------------

@pytest.mark.parametrize("code, dpl, long_mode, expected", [
    (True, 0, True, 0x00AF9B000000FFFF),   # __KERNEL_CS
    (False, 0, False, 0x00CF93000000FFFF),  # __KERNEL_DS
    (True, 3, False, 0x00CFFB000000FFFF),  # __USER32_CS
    (False, 3, False, 0x00CFF3000000FFFF),  # __USER_DS
    (True, 3, True, 0x00AFFB000000FFFF),   # __USER_CS
])
def test_segment_descriptor_matches_linux_gdt(code, dpl, long_mode, expected):
    """Linux arch/x86/kernel/cpu/common.c gdt_page (GDT_ENTRY_INIT)."""
    assert x86.segment_descriptor(code=code, dpl=dpl, long_mode=long_mode) == expected


def test_interrupt_gate_layout():
    handler = 0xFFFF_FF80_1234_5678
    gate = x86.interrupt_gate(handler, 0x10, dpl=3, ist=1)
    assert len(gate) == 16
    off_lo, selector, ist, type_attr, off_mid, off_hi, reserved = struct.unpack("<HHBBHII", gate)
    assert off_lo == 0x5678
    assert off_mid == 0x1234
    assert off_hi == 0xFFFF_FF80
    assert selector == 0x10
    assert ist == 1
    assert type_attr == 0xEE  # present, DPL 3, 64-bit interrupt gate (0xE)
    assert reserved == 0
    gate0 = x86.interrupt_gate(handler, 0x10, dpl=0, ist=0)
    assert gate0[5] == 0x8E and gate0[4] == 0


def test_tss_descriptor_layout():
    base = 0xFFFF_FF80_0020_0800
    limit = 136
    desc = x86.tss_descriptor(base, limit)
    assert len(desc) == 16
    limit_lo, base_lo, base_mid, access, flags_limit_hi, base_hi, base_upper, reserved = \
        struct.unpack("<HHBBBBII", desc)
    assert limit_lo == limit
    assert flags_limit_hi == 0  # limit[19:16] = 0, byte granularity
    assert access == 0x89  # present, DPL 0, available 64-bit TSS
    assert base_lo | base_mid << 16 | base_hi << 24 | base_upper << 32 == base
    assert reserved == 0


def test_tss64_layout_and_io_bitmap():
    ports = (0x10, 0x80, 0x81, 0x9F)
    tss = x86.tss64(rsp0=0x1111_2222_3333_4000, ist={1: 0xAAAA_0000, 3: 0xBBBB_0000}, io_ports=ports)
    assert len(tss) == 104 + 33
    assert struct.unpack_from("<Q", tss, 4)[0] == 0x1111_2222_3333_4000  # RSP0
    assert struct.unpack_from("<Q", tss, 36)[0] == 0xAAAA_0000  # IST1
    assert struct.unpack_from("<Q", tss, 44)[0] == 0  # IST2
    assert struct.unpack_from("<Q", tss, 52)[0] == 0xBBBB_0000  # IST3
    iomap_base = struct.unpack_from("<H", tss, 102)[0]
    assert iomap_base == 104
    bitmap = tss[iomap_base:]
    allowed = {port for port in range(256) if not bitmap[port // 8] >> (port % 8) & 1}
    assert allowed == set(ports)
    assert bitmap[32] == 0xFF  # terminator byte


def test_tss64_runtime_ports_allowed():
    from kvmsentry.platform import layout
    tss = x86.tss64(rsp0=0, ist={}, io_ports=layout.RUNTIME_PORTS)
    bitmap = tss[104:]
    allowed = {port for port in range(256) if not bitmap[port // 8] >> (port % 8) & 1}
    assert allowed == set(layout.RUNTIME_PORTS)
    assert 0x70 not in allowed


def test_a_2mib_user_page_splits_on_a_4kib_change(memory):
    pt = PageTable(memory)
    gpa = memory.alloc_huge()
    gva = 0x40000000
    flags = PTE_PRESENT | PTE_RW | PTE_USER | PTE_NX
    pt.map_huge_user(gva, gpa | flags | x86.PTE_PSE)
    pt.dirty_tables.clear()
    assert pt.translate(gva + 5 * PAGE_SIZE + 7) == gpa + 5 * PAGE_SIZE + 7
    pt.set_entry(gva + PAGE_SIZE, 0)
    assert pt.translate(gva + PAGE_SIZE) is None
    assert pt.translate(gva + 511 * PAGE_SIZE) == gpa + 511 * PAGE_SIZE
    assert pt.entry(gva) == gpa | flags
    assert pt.dirty_tables  # the directory changed: the guest must flush


def test_mark_stale_every_level_marks_each_table_on_the_walk(memory):
    pt = PageTable(memory)
    gva = 0x7F00_1234_5000
    pt.map(gva, memory.alloc_frame(), writable=True, executable=False)
    pt.dirty_tables.clear()
    pt.mark_stale(gva)
    leaf_page = {next(iter(pt.dirty_tables))}
    pt.dirty_tables.clear()
    pt.mark_stale(gva, every_level=True)
    # PML4, PDPT, PD and the PT that holds the leaf entry.
    assert len(pt.dirty_tables) == 4
    assert pt.cr3 in pt.dirty_tables and leaf_page <= set(pt.dirty_tables)


def test_clear_entries_is_set_entry_zero_for_each_page(memory):
    """clear_entries (one walk per table) leaves the tree, the translations
    and dirty_tables exactly as set_entry(gva, 0) page by page does:
    present pages cleared and their tables dirty, absent ones ignored, a
    2 MiB page split first."""
    def build():
        pt = PageTable(memory)
        small = 0x400000
        for i in range(6):
            pt.map(small + i * PAGE_SIZE, 0x100000 + i * PAGE_SIZE, writable=True, executable=False)
        huge = 0x40000000
        pt.map_huge_user(huge, 0x200000 | PTE_PRESENT | PTE_RW | PTE_USER | x86.PTE_PSE)
        pt.dirty_tables.clear()
        return pt
    gvas = [0x400000 + i * PAGE_SIZE for i in (0, 2, 3, 9)] + [0x40000000 + PAGE_SIZE, 0x7000_0000]
    one_by_one, batched = build(), build()
    for gva in gvas:
        one_by_one.set_entry(gva, 0)
    batched.clear_entries(gvas)
    probes = [0x400000 + i * PAGE_SIZE for i in range(10)] + [0x40000000 + i * PAGE_SIZE for i in range(4)]
    assert [batched.entry(g) for g in probes] == [one_by_one.entry(g) for g in probes]
    assert batched.entry(0x400000 + PAGE_SIZE) != 0 and batched.entry(0x400000) == 0
    assert len(batched.dirty_tables) == len(one_by_one.dirty_tables) == 3  # small PT; huge: PD + new PT
    assert _leaf_table(batched, 0x400000) in batched.dirty_tables


def test_set_entries_is_set_entry_for_each_page(memory):
    """set_entries writes what set_entry writes, page by page, and marks
    dirty the tables whose present entries changed (only those)."""
    def build():
        pt = PageTable(memory)
        for i in range(4):
            pt.map(0x400000 + i * PAGE_SIZE, 0x100000 + i * PAGE_SIZE, writable=True, executable=False)
        pt.dirty_tables.clear()
        return pt
    ro = PTE_PRESENT | PTE_USER
    entries = {0x400000 + i * PAGE_SIZE: (0x100000 + i * PAGE_SIZE) | ro for i in (1, 3)}
    entries[0x80000000] = 0x300000 | ro  # nothing mapped there yet: no flush needed
    one_by_one, batched = build(), build()
    for gva, entry in entries.items():
        one_by_one.set_entry(gva, entry)
    batched.set_entries(entries)
    probes = [0x400000 + i * PAGE_SIZE for i in range(4)] + [0x80000000]
    assert [batched.entry(g) for g in probes] == [one_by_one.entry(g) for g in probes]
    assert batched.entry(0x400000 + PAGE_SIZE) == 0x101000 | ro
    for pt in (one_by_one, batched):  # each tree's leaf table of 0x400000, only
        assert set(pt.dirty_tables) == {_leaf_table(pt, 0x400000)}


def test_leaves_with_reads_whole_tables(memory):
    """leaves_with reports the present 4 KiB leaves having all the bits
    asked (accessed and dirty as the CPU sets them), in the blocks given or
    in every page table of the tree; not 2 MiB pages nor the shared slots."""
    shared = memory.alloc_frame()
    pt = PageTable(memory, {511: shared})
    frames = [memory.alloc_frame() for _ in range(4)]
    low, high = 0x400000, 0x7F00_0020_0000
    pt.map(low, frames[0], writable=True, executable=False)
    pt.map(low + 5 * PAGE_SIZE, frames[1], writable=False, executable=False)
    pt.map(high + 511 * PAGE_SIZE, frames[2], writable=True, executable=False)
    pt.map(high + 3 * PAGE_SIZE, frames[3], writable=True, executable=False)
    pt.map_huge_user(0x4000_0000, 0x200000 | PTE_PRESENT | PTE_RW | PTE_USER | x86.PTE_PSE
                     | x86.PTE_ACCESSED | x86.PTE_DIRTY)
    # What the CPU would do: accessed on three pages, dirty on two.
    for gva, bits in ((low, x86.PTE_ACCESSED | x86.PTE_DIRTY), (low + 5 * PAGE_SIZE, x86.PTE_ACCESSED),
                      (high + 511 * PAGE_SIZE, x86.PTE_ACCESSED | x86.PTE_DIRTY)):
        pt.set_entry(gva, pt.entry(gva) | bits)
    assert pt.leaves_with(x86.PTE_ACCESSED) == [low, low + 5 * PAGE_SIZE, high + 511 * PAGE_SIZE]
    assert pt.leaves_with(x86.PTE_DIRTY | PTE_RW) == [low, high + 511 * PAGE_SIZE]
    assert pt.leaves_with(PTE_RW) == [low, high + 3 * PAGE_SIZE, high + 511 * PAGE_SIZE]
    assert pt.leaves_with(x86.PTE_DIRTY, [high >> 21, 0x4000_0000 >> 21, 12345]) == [high + 511 * PAGE_SIZE]
    assert [block for block, _ in pt.page_tables()] == [low >> 21, high >> 21]
    assert pt.leaves_with(x86.PTE_ACCESSED, []) == []
    # Reading split nothing: the 2 MiB page is still one entry.
    assert pt._page_table_of(0x4000_0000) is None


def test_fork_into_copies_each_table_write_protected(memory):
    """fork_into writes in the child what copying each entry would (RW,
    accessed and dirty cleared; entries in ``keep`` ranges as they are but
    for accessed and dirty), write-protects the parent's (dirty cleared,
    accessed kept; the changed tables recorded dirty), and leaves the
    shared kernel slot and the upper half alone."""
    shared = memory.alloc_frame()
    parent = PageTable(memory, {511: shared})
    a, d = x86.PTE_ACCESSED, x86.PTE_DIRTY
    user = PTE_PRESENT | PTE_USER
    layout = {  # gva: entry
        0x400000: 0x100000 | user | PTE_RW | a | d,
        0x401000: 0x101000 | user | PTE_NX | a,
        0x402000: 0x102000 | user | PTE_RW | PTE_NX,
        0x7F00_0000_0000: 0x103000 | user | PTE_RW | PTE_NX | a | d,   # in keep (MAP_SHARED)
        0x7F00_0000_1000: 0x104000 | user | PTE_RW | PTE_NX | a,      # private
        0x7F00_0020_0000: 0x105000 | user | PTE_NX,                    # read-only, own table
    }
    for gva, entry in layout.items():
        parent.set_entry(gva, entry)
    upper = 0xFFFF_FF00_0000_0000  # PML4 slot 510: the platform's, not copied
    parent.set_entry(upper, 0x106000 | PTE_PRESENT | PTE_RW)
    parent.dirty_tables.clear()
    child = PageTable(memory, {511: shared})
    keep = [(0x7F00_0000_0000, 0x7F00_0000_1000)]
    parent.fork_into(child, keep)
    for gva, entry in layout.items():
        if gva == 0x7F00_0000_0000:
            assert child.entry(gva) == entry & ~(a | d) and parent.entry(gva) == entry
        else:
            assert child.entry(gva) == entry & ~(PTE_RW | a | d)
            assert parent.entry(gva) == entry & ~(PTE_RW | d)
    assert child.entry(upper) == 0 and parent.entry(upper) == 0x106000 | PTE_PRESENT | PTE_RW
    # The tables whose entries changed: 0x400000's and 0x7F00_0000_0000's
    # (the read-only entry alone changed nothing).
    assert set(parent.dirty_tables) == {_leaf_table(parent, 0x400000), _leaf_table(parent, 0x7F00_0000_1000)}
    assert child.dirty_tables == {}
    assert _leaf_table(child, 0x400000) != _leaf_table(parent, 0x400000)


def test_fork_into_writes_the_childs_own_entries(memory):
    """``child_entries`` replace the copies in the child (also where the
    parent has no table); a kept range spanning two tables stays writable
    in both trees."""
    parent = PageTable(memory)
    user = PTE_PRESENT | PTE_USER | PTE_RW
    gvas = [0x1FF000, 0x200000, 0x201000, 0x600000]
    for i, gva in enumerate(gvas):
        parent.set_entry(gva, (0x100000 + i * PAGE_SIZE) | user)
    child = PageTable(memory)
    own = {0x201000: 0x300000 | user, 0x600000: 0x301000 | user, 0x40000000: 0x302000 | user}
    parent.fork_into(child, [(0x1FF000, 0x201000)], own)
    assert child.entry(0x1FF000) == 0x100000 | user and parent.entry(0x1FF000) == 0x100000 | user
    assert child.entry(0x200000) == 0x101000 | user and parent.entry(0x200000) == 0x101000 | user
    assert child.entry(0x201000) == 0x300000 | user and parent.entry(0x201000) == 0x102000 | user & ~PTE_RW
    assert child.entry(0x600000) == 0x301000 | user
    assert child.entry(0x40000000) == 0x302000 | user and parent.entry(0x40000000) == 0


def test_walk_and_frame_of_read_without_changing_the_tree(memory):
    """walk() lists each level's entry down to the leaf (or the 2 MiB page);
    frame_of() names the mapped frame and splits nothing (fault reports)."""
    pt = PageTable(memory)
    gva = 0x7F00_1234_5000
    frame = memory.alloc_frame()
    pt.map(gva, frame, writable=True, executable=False)
    steps = pt.walk(gva)
    assert len(steps) == 4 and steps[0][0] == pt.cr3 + indices(gva)[0] * 8
    assert steps[-1][1] == pte(frame, writable=True, executable=False, user=True)
    assert pt.frame_of(gva + 0x123) == frame
    assert pt.frame_of(gva + PAGE_SIZE) is None
    assert pt.frame_of(0x1000) is None and len(pt.walk(0x1000)) == 1  # no PDPT there
    huge = memory.alloc_huge()
    pt.map_huge_user(0x40000000, huge | PTE_PRESENT | PTE_USER | x86.PTE_PSE)
    before = bytes(memory.view[pt.cr3:pt.cr3 + PAGE_SIZE])
    tables = list(pt._tables)
    assert pt.frame_of(0x40000000 + 7 * PAGE_SIZE + 5) == huge + 7 * PAGE_SIZE
    assert len(pt.walk(0x40000000)) == 3  # the directory entry is the leaf
    assert pt._tables == tables and bytes(memory.view[pt.cr3:pt.cr3 + PAGE_SIZE]) == before
