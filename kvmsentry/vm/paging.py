"""x86-64 4-level page tables, built by the sentry in guest memory.

A ``PageTable`` is one PML4 (one address space, one CR3). The sentry
writes the entries directly into guest-physical memory; the guest never
edits them. 4 KiB mappings only for now. Intel SDM vol. 3, 4.5
("4-Level Paging"); Linux arch/x86/include/asm/pgtable_types.h for names.

After removing a mapping or taking away a permission, the guest must
flush: an entry the CPU or a shadow MMU cached stays valid until then.
Host writes to guest page tables are invisible to a shadow MMU (PVM, or
KVM without EPT), which only tracks the guest's own writes; so the tree
records in ``dirty_tables`` every table page whose present entries it
changed, and the platform has the guest poke those pages before it runs
again. Adding a mapping where there was none needs no flush (a shadow
MMU walks the guest's tables on a fault).

With several vCPUs in one address space, a record stays until a poke
issued after the change has certainly run (``settle``): every vCPU that
returns to the guest meanwhile pokes the page itself. Removing it when a
vCPU merely *wrote* its list would let another vCPU run on a shadow of
the old entry (and reach a frame a new mapping replaced) before that list
ran. Each record carries a generation, so a change made after a list was
written is not settled by it; a page is recorded after its entry is written.
"""

from __future__ import annotations

import struct
import threading

from kvmsentry.vm.memory import GuestMemory
from kvmsentry.vm.x86 import (HUGE_PAGE_SIZE, PAGE_SIZE, PTE_ACCESSED, PTE_ADDR_MASK, PTE_DIRTY,
                              PTE_NX, PTE_PRESENT, PTE_PSE, PTE_RW, PTE_USER)

_U64 = struct.Struct("<Q")
# bytes.translate tables, made on first use: _MATCH[want][b] is 1 when byte
# b has every bit of want, else 0.
_MATCH: dict[int, bytes] = {}
# Low bytes of entries: 1 where present; with RW and dirty cleared; with
# RW, accessed and dirty cleared (fork_into).
_PRESENT_BYTE = bytes(b & PTE_PRESENT for b in range(256))
_CLEAR_RW_D = bytes(b & ~(PTE_RW | PTE_DIRTY) for b in range(256))
_CLEAR_RW_A_D = bytes(b & ~(PTE_RW | PTE_ACCESSED | PTE_DIRTY) for b in range(256))
_CLEAR_A_D = bytes(b & ~(PTE_ACCESSED | PTE_DIRTY) for b in range(256))
_TABLE_FLAGS = PTE_PRESENT | PTE_RW | PTE_USER  # permissions are set at the leaf


def pte(gpa: int, *, writable: bool, executable: bool, user: bool) -> int:
    """A present leaf entry mapping the 4 KiB frame at ``gpa``."""
    entry = (gpa & PTE_ADDR_MASK) | PTE_PRESENT
    if writable:
        entry |= PTE_RW
    if user:
        entry |= PTE_USER
    if not executable:
        entry |= PTE_NX
    return entry


def indices(gva: int) -> tuple[int, int, int, int]:
    """(PML4, PDPT, PD, PT) indices of a 48-bit virtual address."""
    return (gva >> 39) & 511, (gva >> 30) & 511, (gva >> 21) & 511, (gva >> 12) & 511


class PageTable:
    """One 4-level page table tree in guest memory; ``cr3`` is its root's GPA.

    ``shared_pml4`` maps PML4 slots to PDPT GPAs shared with other trees
    (the kernel half). Interior table frames are allocated on demand and
    freed by :meth:`destroy` (shared slots excepted).
    """

    def __init__(self, memory: GuestMemory, shared_pml4: dict[int, int] | None = None):
        self.memory = memory
        self.cr3 = memory.alloc_frame()
        self._shared = dict(shared_pml4 or {})
        self._tables: list[int] = [self.cr3]
        # {GPA of a table page whose present entries changed: generation of
        # the last change}, until a guest flush settles it (see the module
        # docstring). Changed under the kernel lock, settled by vCPU
        # threads without it: both under _dirty_lock.
        self.dirty_tables: dict[int, int] = {}
        self._dirty_generation = 0
        self._dirty_lock = threading.Lock()
        for slot, pdpt_gpa in self._shared.items():
            self._set(self.cr3 + slot * 8, pdpt_gpa | _TABLE_FLAGS)

    def mark_dirty(self, table: int) -> None:
        """Record that table page ``table`` (a GPA) changed: the guest must poke it."""
        with self._dirty_lock:
            self._dirty_generation += 1
            self.dirty_tables[table] = self._dirty_generation

    def dirty_snapshot(self) -> dict[int, int]:
        """{table page: generation} of every unsettled change, for a zap list."""
        with self._dirty_lock:
            return dict(self.dirty_tables)

    def settle(self, snapshot: dict[int, int]) -> None:
        """A guest flush poked the pages of ``snapshot``: drop the records it covers
        (those not changed again since it was taken)."""
        dirty = self.dirty_tables
        with self._dirty_lock:
            for table, generation in snapshot.items():
                if dirty.get(table) == generation:
                    del dirty[table]

    def _get(self, gpa: int) -> int:
        return _U64.unpack_from(self.memory.view, gpa)[0]

    def _set(self, gpa: int, value: int) -> None:
        _U64.pack_into(self.memory.view, gpa, value)

    def _leaf_slot(self, gva: int, create: bool) -> int | None:
        """GPA of the PT entry for ``gva``; None when a level is missing.

        A 2 MiB page on the way is split into 512 4 KiB entries first
        (same frames, same permissions), so every 4 KiB operation works
        on a huge page too.
        """
        table = self.cr3
        for level, index in enumerate(indices(gva)[:3]):
            slot = table + index * 8
            entry = self._get(slot)
            if not entry & PTE_PRESENT:
                if not create:
                    return None
                child = self.memory.alloc_frame()
                self._tables.append(child)
                entry = child | _TABLE_FLAGS
                self._set(slot, entry)
            elif level == 2 and entry & PTE_PSE:
                entry = self._split_huge(slot, entry)
            table = entry & PTE_ADDR_MASK
        return table + indices(gva)[3] * 8

    def _split_huge(self, slot: int, entry: int) -> int:
        """Replace the 2 MiB page entry at ``slot`` by a table of 4 KiB entries."""
        child = self.memory.alloc_frame()
        self._tables.append(child)
        base = entry & PTE_ADDR_MASK & ~(HUGE_PAGE_SIZE - 1)
        flags = entry & ~PTE_ADDR_MASK & ~PTE_PSE
        struct.pack_into("<512Q", self.memory.view, child,
                         *[(base + i * PAGE_SIZE) | flags for i in range(512)])
        table_entry = child | _TABLE_FLAGS
        self._set(slot, table_entry)
        self.mark_dirty(slot & ~(PAGE_SIZE - 1))  # after the write (module docstring)
        return table_entry

    def map_huge_user(self, gva: int, entry: int) -> None:
        """Install the 2 MiB leaf ``entry`` (PTE_PSE set) at ``gva`` (2 MiB aligned).

        The range must have no present 4 KiB page: an empty page table
        left there is dropped from the directory (flushed, freed with the tree).
        """
        slot = self._directory(gva) + indices(gva)[2] * 8
        was_present = self._get(slot) & PTE_PRESENT
        self._set(slot, entry)
        if was_present:
            self.mark_dirty(slot & ~(PAGE_SIZE - 1))

    def map(self, gva: int, gpa: int, *, writable: bool, executable: bool, user: bool = True) -> None:
        """Map the 4 KiB page at ``gva`` (page aligned) to the frame at ``gpa``."""
        self.set_entry(gva, pte(gpa, writable=writable, executable=executable, user=user))

    def _directory(self, gva: int) -> int:
        """GPA of the page directory (level 2) covering ``gva``, created if missing."""
        table = self.cr3
        for index in indices(gva)[:2]:
            slot = table + index * 8
            entry = self._get(slot)
            if not entry & PTE_PRESENT:
                child = self.memory.alloc_frame()
                self._tables.append(child)
                entry = child | _TABLE_FLAGS
                self._set(slot, entry)
            table = entry & PTE_ADDR_MASK
        return table

    def map_huge(self, gva: int, gpa: int, *, writable: bool, user: bool) -> None:
        """Map the 2 MiB page at ``gva`` to ``gpa`` (both 2 MiB aligned), no-execute."""
        self.map_huge_range(gva, gpa, HUGE_PAGE_SIZE, writable=writable, user=user)

    def map_huge_range(self, gva: int, gpa: int, size: int, *, writable: bool, user: bool) -> None:
        """Map ``size`` bytes at ``gva`` to ``gpa`` with 2 MiB pages, no-execute.

        All three are 2 MiB multiples. Each page directory is written in one
        go: the physmap of a 4 GiB guest is 2048 entries and start-up counts.
        """
        assert gva % HUGE_PAGE_SIZE == 0 and gpa % HUGE_PAGE_SIZE == 0 and size % HUGE_PAGE_SIZE == 0
        flags = PTE_PRESENT | PTE_PSE | PTE_NX | (PTE_RW if writable else 0) | (PTE_USER if user else 0)
        end = gva + size
        while gva < end:
            directory = self._directory(gva)
            first = indices(gva)[2]
            count = min(512 - first, (end - gva) // HUGE_PAGE_SIZE)
            entries = [(gpa + i * HUGE_PAGE_SIZE) | flags for i in range(count)]
            struct.pack_into(f"<{count}Q", self.memory.view, directory + first * 8, *entries)
            gva += count * HUGE_PAGE_SIZE
            gpa += count * HUGE_PAGE_SIZE

    def map_new(self, entries: dict[int, int]) -> None:
        """Install leaf entries {gva: entry} where none are present (no flush
        needed): exec maps hundreds of cached pages at a time."""
        self._write_leaves(sorted(entries.items()), create=True)

    def set_entries(self, entries: dict[int, int]) -> None:
        """set_entry(gva, entry) for each of {gva: entry} (non-zero entries,
        present before or not; clear_entries unmaps): fork's
        write-protection of the parent, mprotect."""
        self._write_leaves(entries.items(), create=True)

    def clear_entries(self, gvas) -> None:
        """set_entry(gva, 0) for every page address in ``gvas`` (munmap, exit)."""
        self._write_leaves(((gva, 0) for gva in gvas), create=False)

    def _write_leaves(self, items, *, create: bool) -> None:
        """Write each (gva, entry) of ``items`` in its leaf slot, walking the
        tree once per page table, not once per page. ``create``: make missing
        tables (else a page without one is skipped: nothing to clear). Tables
        whose present entries changed are recorded dirty after the writes
        (module docstring)."""
        view = self.memory.view
        table_of: dict[int, int | None] = {}
        changed = set()
        for gva, entry in items:
            key = gva >> 21
            if key in table_of:
                table = table_of[key]
            else:
                slot = self._leaf_slot(gva, create)
                table = table_of[key] = None if slot is None else slot - ((gva >> 12) & 511) * 8
            if table is None:
                continue
            slot = table + ((gva >> 12) & 511) * 8
            if _U64.unpack_from(view, slot)[0] & PTE_PRESENT:
                changed.add(table)
            _U64.pack_into(view, slot, entry)
        for table in changed:
            self.mark_dirty(table)

    def set_entry(self, gva: int, entry: int) -> None:
        """Write a raw leaf entry (0 unmaps) for ``gva``."""
        slot = self._leaf_slot(gva, entry != 0)
        if slot is None:
            return
        was_present = self._get(slot) & PTE_PRESENT
        self._set(slot, entry)
        if was_present:
            self.mark_dirty(slot & ~(PAGE_SIZE - 1))  # after the write (module docstring)

    def mark_stale(self, gva: int, *, every_level: bool = False) -> None:
        """Record that the MMU may hold an outdated entry for ``gva``.

        ``every_level`` marks each table on the walk (PML4 to PT), not only
        the leaf's: the next flush then drops whatever a shadow MMU built
        from any of them.
        """
        slot = self._leaf_slot(gva, False)
        if slot is not None:
            self.mark_dirty(slot & ~(PAGE_SIZE - 1))
        if every_level:
            table = self.cr3
            for index in indices(gva)[:3]:
                self.mark_dirty(table)
                entry = self._get(table + index * 8)
                if not entry & PTE_PRESENT or entry & PTE_PSE:
                    break
                table = entry & PTE_ADDR_MASK

    def _page_table_of(self, gva: int) -> int | None:
        """GPA of the page table (level 1) covering ``gva``; None when a level
        is missing or a 2 MiB page maps it (nothing is created or split)."""
        table = self.cr3
        view = self.memory.view
        for index in indices(gva)[:3]:
            entry = _U64.unpack_from(view, table + index * 8)[0]
            if not entry & PTE_PRESENT or entry & PTE_PSE:
                return None
            table = entry & PTE_ADDR_MASK
        return table

    def _slots_with(self, table: int, want: int) -> list[int]:
        """Indices of the entries of table page ``table`` whose low byte has
        every bit of ``want`` (< 256), found a byte scan at a time: the low
        byte of each of the 512 entries, mapped to 1 or 0 by one
        bytes.translate, then bytes.find for each match."""
        low = self.memory.view[table:table + PAGE_SIZE].tobytes()[::8]
        match = _MATCH.get(want)
        if match is None:
            match = _MATCH[want] = bytes(1 if b & want == want else 0 for b in range(256))
        flags = low.translate(match)
        found = []
        index = flags.find(1)
        while index >= 0:
            found.append(index)
            index = flags.find(1, index + 1)
        return found

    def page_tables(self):
        """(2 MiB block number (gva >> 21), GPA) of every page table (level 1)
        of the user half (PML4 slots 0-255), in address order: those that
        exist only (2 MiB pages and shared slots skipped)."""
        view = self.memory.view
        for i4 in self._slots_with(self.cr3, PTE_PRESENT):
            if i4 >= 256:
                break
            if i4 in self._shared:
                continue
            pdpt = _U64.unpack_from(view, self.cr3 + i4 * 8)[0] & PTE_ADDR_MASK
            for i3 in self._slots_with(pdpt, PTE_PRESENT):
                pd_entry = _U64.unpack_from(view, pdpt + i3 * 8)[0]
                if pd_entry & PTE_PSE:
                    continue
                pd = pd_entry & PTE_ADDR_MASK
                for i2 in self._slots_with(pd, PTE_PRESENT):
                    entry = _U64.unpack_from(view, pd + i2 * 8)[0]
                    if not entry & PTE_PSE:
                        yield (i4 << 18) | (i3 << 9) | i2, entry & PTE_ADDR_MASK

    def leaves_with(self, bits: int, blocks=None) -> list[int]:
        """Page addresses whose present 4 KiB leaf entry has every bit of ``bits``.

        ``bits``: flags of the entries' low byte (PTE_RW, PTE_ACCESSED,
        PTE_DIRTY...). ``blocks``: the 2 MiB block numbers (gva >> 21) to
        look in; None for every page table of the tree. Each page table is
        read at once, not walked per page; 2 MiB pages are not reported.
        Reads only: the bits the CPU sets (PTE_ACCESSED, PTE_DIRTY; Intel
        SDM vol. 3, 4.8) tell which pages the program touched or wrote
        since their entry was written.
        """
        want = bits | PTE_PRESENT
        if blocks is None:
            tables = self.page_tables()
        else:
            tables = ((block, self._page_table_of(block << 21)) for block in blocks)
        found = []
        for block, table in tables:
            if table is not None:
                base = block << 21
                found.extend([base + (i << 12) for i in self._slots_with(table, want)])
        return found

    def fork_into(self, child: "PageTable", keep: list[tuple[int, int]],
                  child_entries: dict[int, int] | None = None) -> None:
        """fork(2)'s copy of every 4 KiB leaf entry of this tree into ``child``
        (a new tree), a page table at a time (mm/memory.c copy_pte_range).

        The child's entries are write-protected (RW, accessed and dirty
        cleared), and so are this tree's (RW and dirty cleared, accessed
        kept; changed tables are recorded dirty for the guest's flush),
        except the pages of ``keep``: sorted, disjoint [start, end) ranges
        (MAP_SHARED memory, pages the child gets a copy of) whose entries
        stay as they are here and are copied with only accessed and dirty
        cleared. ``child_entries``: {gva: entry} written in the child
        instead of the copy (its own frames). Per table: bytes.translate
        over the 512 low bytes, extended-slice copies for the kept ranges
        and two 4 KiB writes, no work per page. The caller counts the
        frames' references and makes sure no 2 MiB page is mapped (they
        are not copied).
        """
        view = self.memory.view
        replace = sorted(child_entries or ())
        written = set()
        k = r = 0
        for block, table in list(self.page_tables()):
            base = block << 21
            limit = base + HUGE_PAGE_SIZE
            raw = view[table:table + PAGE_SIZE].tobytes()
            low = raw[::8]
            if not low.translate(_PRESENT_BYTE).count(1):
                continue
            ours = bytearray(raw)
            ours[::8] = low.translate(_CLEAR_RW_D)
            theirs = bytearray(raw)
            theirs[::8] = low.translate(_CLEAR_RW_A_D)
            while k < len(keep) and keep[k][1] <= base:
                k += 1
            j = k
            while j < len(keep) and keep[j][0] < limit:
                first = (max(keep[j][0], base) - base) >> 9  # byte offset of the first entry
                last = (min(keep[j][1], limit) - base) >> 9
                ours[first:last:8] = raw[first:last:8]
                theirs[first:last:8] = raw[first:last:8].translate(_CLEAR_A_D)
                j += 1
            while r < len(replace) and replace[r] < base:
                r += 1
            while r < len(replace) and replace[r] < limit:
                gva = replace[r]
                _U64.pack_into(theirs, (gva - base) >> 9, child_entries[gva])
                written.add(gva)
                r += 1
            slot = child._leaf_slot(base, True)
            child_table = slot - indices(base)[3] * 8
            view[child_table:child_table + PAGE_SIZE] = theirs
            if ours != raw:
                view[table:table + PAGE_SIZE] = ours
                self.mark_dirty(table)  # after the write (module docstring)
        if len(written) < len(replace):  # in a table with nothing present here
            child.map_new({gva: child_entries[gva] for gva in replace if gva not in written})

    def entry(self, gva: int) -> int:
        """The raw leaf entry for ``gva`` (0 when not mapped)."""
        slot = self._leaf_slot(gva, False)
        return 0 if slot is None else self._get(slot)

    def walk(self, gva: int) -> list[tuple[int, int]]:
        """[(GPA of the entry, entry)] from the PML4 down to the last level
        present for ``gva``: what the MMU reads (a fault report's detail)."""
        table, steps = self.cr3, []
        for level, index in enumerate(indices(gva)):
            slot = table + index * 8
            entry = self._get(slot)
            steps.append((slot, entry))
            if not entry & PTE_PRESENT or (level in (1, 2) and entry & PTE_PSE):
                break
            table = entry & PTE_ADDR_MASK
        return steps

    def frame_of(self, gva: int) -> int | None:
        """GPA of the 4 KiB frame the tree maps at ``gva`` (a 2 MiB page's
        part too), None when not present; nothing is split (see walk)."""
        steps = self.walk(gva)
        entry = steps[-1][1]
        if not entry & PTE_PRESENT:
            return None
        if len(steps) < 4:  # a 2 MiB (or 1 GiB) page
            size = HUGE_PAGE_SIZE if len(steps) == 3 else HUGE_PAGE_SIZE * 512
            return (entry & PTE_ADDR_MASK & ~(size - 1)) + (gva & (size - 1) & ~(PAGE_SIZE - 1))
        return entry & PTE_ADDR_MASK

    def unmap(self, gva: int) -> None:
        """Clear the leaf entry for ``gva``; the caller flushes the TLB."""
        self.set_entry(gva, 0)

    def translate(self, gva: int) -> int | None:
        """The GPA ``gva`` maps to, or None (what the MMU would do, no checks)."""
        entry = self.entry(gva)
        if not entry & PTE_PRESENT:
            return None
        return (entry & PTE_ADDR_MASK) | (gva & (PAGE_SIZE - 1))

    def destroy(self) -> list[int]:
        """Give up this tree; returns its own table frames (not leaf or shared ones).

        The caller frees them once the guest has forgotten them (a shadow
        MMU may still hold shadows of these pages).
        """
        tables, self._tables = self._tables, []
        return tables
