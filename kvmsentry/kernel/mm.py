"""The memory manager: a process's VMAs, its pages, and guest-memory access.

Linux's mm_struct in miniature (mm/mmap.c, mm/memory.c). A VMA is a
range of user virtual addresses with a protection; pages inside it are
backed by guest-physical frames on first touch (demand paging, with
fault-around so that sequential touches take one fault per window, not
per page). The platform's page table mirrors ``pages``: a present page of
a VMA with PROT_NONE has a frame but no page-table entry.

Guest pointers from syscalls go through :meth:`copy_in` / :meth:`copy_out`,
which check the VMA's protection the way copy_from_user/copy_to_user do
and raise :class:`GuestFault` (EFAULT for the caller) instead of touching
anything else.
"""

from __future__ import annotations

import bisect
import errno
import mmap as _mmap
import weakref

from kvmsentry.vm.memory import OutOfGuestMemory
from kvmsentry.vm.x86 import (HUGE_PAGE_SIZE, PAGE_SHIFT, PAGE_SIZE, PTE_ACCESSED, PTE_DIRTY, PTE_NX,
                              PTE_PRESENT, PTE_PSE, PTE_RW, PTE_USER)

PROT_NONE = 0
PROT_READ = _mmap.PROT_READ
PROT_WRITE = _mmap.PROT_WRITE
PROT_EXEC = _mmap.PROT_EXEC

# Fault-around window: a fault maps this many pages of its VMA (aligned).
FAULT_AROUND_PAGES = 64
# Anonymous VMAs at least this long get a 2 MiB page for a fault in an
# aligned 2 MiB block they cover wholly (0 disables; see BENCHMARKS.md).
HUGE_MIN_VMA = 4 << 20
# A write fault in a private VMA this small copies all of its shared pages
# (a data segment is written all over by relocations: one fault, not one
# per page).
SMALL_VMA = 32 * PAGE_SIZE
# fork(2) gives the child its own copy of up to this many private pages
# (MemoryManager._fork_copies: all the parent's writable ones when they fit,
# else those it wrote since its previous fork, and those its last child
# wrote) instead of sharing them copy-on-write: a process that forks in a
# loop (a shell) writes the same stack and heap pages after each fork, and
# so does the child before it execs; a copy now costs a few µs, each
# copy-on-write fault it saves an exit and a guest flush, and when the
# parent keeps every entry as it was it needs no flush at all.
FORK_COPY_PAGES = 64
# brk(2) growth maps at once the page holding the old break and the next
# one (malloc writes a chunk header at the old break right away).
BRK_PREFAULT_PAGES = 2
# The working set of each program image (an immutable host file mapped by
# execve, Vma.denywrite): {mapping: (file page indices its processes read,
# those they wrote)}, from the accessed and dirty bits of their entries
# when each address space is destroyed (exit, execve), a union over every
# run. execve maps these pages of the new image at once (the written ones
# as private copies): a program started again takes no fault for them.
# Bounded by the file's size; only pages still in the page cache are mapped.
_WORKING_SETS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
PAGE_MASK = ~(PAGE_SIZE - 1)


class GuestFault(Exception):
    """A guest address the sentry tried to read or write is not mapped for it.

    ``gva`` is the first faulting guest-virtual address. The syscall
    dispatcher turns it into EFAULT.
    """

    def __init__(self, gva: int):
        super().__init__(f"guest address {gva:#x} is not mapped")
        self.gva = gva


class MmError(Exception):
    """A memory-management request the guest may see as an errno."""

    def __init__(self, err: int):
        super().__init__(errno.errorcode.get(err, str(err)))
        self.errno = err


# handle_fault's answer for an access past the end of a mapped file.
FAULT_SIGBUS = 7
BUS_ADRERR = 2  # its si_code (include/uapi/asm-generic/siginfo.h)


class Vma:
    """[start, end) page aligned, ``prot`` PROT_* bits, ``name`` for /proc/self/maps.

    A file VMA has ``mapping`` (a pagecache.FileMapping) and ``pgoff``, the
    file page index of ``start`` (Linux vm_pgoff). ``may_write`` is
    VM_MAYWRITE (false for MAP_SHARED of a file opened read-only:
    mprotect(PROT_WRITE) is EACCES); ``dontfork`` is MADV_DONTFORK's
    VM_DONTCOPY. ``denywrite``: the file is the running executable, which
    Linux keeps from being written while it runs (ETXTBSY; fs/exec.c
    exe_file_deny_write_access), so a private page of it not written yet
    needs no link to the file: a write fault copies its whole fault-around
    window at once (one fault and one guest flush, not one per page).
    ``hidden``: the sentry's own mapping (kvmsentry/kernel/fastread.py),
    not shown in /proc/PID/maps or counted in its status. Equal when every
    field is. A plain class: a dataclass costs ~0.3 ms to create, and this
    was the last one that brought the dataclasses module (with inspect,
    ast, dis, tokenize) into every boot.
    """

    _FIELDS = ("start", "end", "prot", "shared", "name", "grows_down", "mapping", "pgoff",
               "may_write", "dontfork", "denywrite", "hidden")

    def __init__(self, start: int, end: int, prot: int, shared: bool = False, name: str = "",
                 grows_down: bool = False, mapping: object = None, pgoff: int = 0,
                 may_write: bool = True, dontfork: bool = False, denywrite: bool = False,
                 hidden: bool = False):
        self.start = start
        self.end = end
        self.prot = prot
        self.shared = shared
        self.name = name
        self.grows_down = grows_down
        self.mapping = mapping
        self.pgoff = pgoff
        self.may_write = may_write
        self.dontfork = dontfork
        self.denywrite = denywrite
        self.hidden = hidden

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other):
        if other.__class__ is not Vma:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None

    def __repr__(self) -> str:
        return "Vma(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS) + ")"

    def replace(self, **changes) -> "Vma":
        """A new VMA with ``changes`` (field names as keywords), as
        dataclasses.replace; TypeError for a name that is not a field."""
        return Vma(**{**{name: getattr(self, name) for name in self._FIELDS}, **changes})

    def copy(self) -> "Vma":
        """A copy of this VMA (fork: replace costs ~10 times more)."""
        new = object.__new__(Vma)
        new.__dict__.update(self.__dict__)
        return new

    def file_index(self, vpn: int) -> int:
        """The file page index mapped at virtual page ``vpn`` of this file VMA."""
        return self.pgoff + vpn - (self.start >> PAGE_SHIFT)

    def pte_flags(self) -> int:
        """Leaf page-table flags for a present page of this VMA (0 when PROT_NONE)."""
        if not self.prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
            return 0
        flags = PTE_PRESENT | PTE_USER
        if self.prot & PROT_WRITE:
            flags |= PTE_RW
        if not self.prot & PROT_EXEC:
            flags |= PTE_NX
        return flags


def page_align_up(value: int) -> int:
    return (value + PAGE_SIZE - 1) & PAGE_MASK


class MemoryManager:
    """One process's user address space on a platform AddressSpace.

    ``task_size`` is the end of user space; ``mmap_base`` the address below
    which mmap places mappings top-down (mm/util.c arch_pick_mmap_layout).
    """

    def __init__(self, address_space, memory, *, task_size: int, mmap_base: int):
        self.address_space = address_space
        self.memory = memory
        self.view = memory.view
        self.task_size = task_size
        self.mmap_base = mmap_base
        self.vmas: list[Vma] = []
        self._starts: list[int] = []
        self.pages: dict[int, int] = {}  # virtual page number -> frame GPA
        # Pages of private writable VMAs shared with another process since a
        # fork: mapped read-only until a write copies them (copy-on-write).
        self.cow: set[int] = set()
        self.users = 1  # tasks using this mm (a vfork child borrows its parent's)
        self.brk_start = 0
        self.brk = 0
        self.stack_limit = 8 << 20  # RLIMIT_STACK's default soft value, bytes
        self.faults = 0
        # Calls of _drop_pages: a fault that comes back after one is a new
        # fault, not a loop (Kernel._check_fault_loop).
        self.drops = 0
        # The exit-free read's per-process state (kvmsentry/kernel/fastread.py
        # FastRead), made on first use; ``fastread_refused`` when its page
        # has no room after the vDSO.
        self.fastread = None
        self.fastread_refused = False
        # A 2 MiB page was mapped at some time (fork then copies page by page).
        self.huge = False
        # fork: the parent (a weak reference), told at destroy which pages
        # this copy wrote (the next fork copies them at once); and the pages
        # the last child wrote (FORK_COPY_PAGES).
        self.forked_from = None
        self.child_wrote: set[int] = set()

    # -- VMA bookkeeping ------------------------------------------------
    def find_vma(self, gva: int) -> Vma | None:
        """The VMA containing ``gva``, or None."""
        i = bisect.bisect_right(self._starts, gva) - 1
        if i >= 0:
            vma = self.vmas[i]
            if gva < vma.end:
                return vma
        return None

    def _insert(self, vma: Vma) -> None:
        i = bisect.bisect_left(self._starts, vma.start)
        self.vmas.insert(i, vma)
        self._starts.insert(i, vma.start)

    def _split_range(self, start: int, end: int) -> list[Vma]:
        """Split VMAs at ``start`` and ``end``; return those inside [start, end)."""
        inside = []
        for vma in list(self.vmas):
            if vma.end <= start or vma.start >= end:
                continue
            if vma.start < start:
                head = vma.replace(end=start)
                vma.pgoff += (start - vma.start) >> PAGE_SHIFT
                vma.start = start
                self._reindex()
                self._insert(head)
            if vma.end > end:
                tail = vma.replace(start=end, pgoff=vma.pgoff + ((end - vma.start) >> PAGE_SHIFT))
                vma.end = end
                self._insert(tail)
            inside.append(vma)
        return inside

    def _reindex(self) -> None:
        self.vmas.sort(key=lambda v: v.start)
        self._starts = [v.start for v in self.vmas]

    def is_free(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts, end)
        return i == 0 or self.vmas[i - 1].end <= start

    def get_unmapped_area(self, length: int, hint: int = 0) -> int:
        """Top-down search for ``length`` free bytes below mmap_base (or at ``hint``).

        Raises MmError(ENOMEM) when nothing fits.
        """
        if hint:
            hint = page_align_up(hint)
            if hint + length <= self.task_size and self.is_free(hint, hint + length):
                return hint
        top = self.mmap_base
        for vma in reversed(self.vmas):
            if vma.start >= top:
                continue
            if vma.end <= top - length:
                break
            top = min(top, vma.start)
        if top - length < PAGE_SIZE * 16:
            raise MmError(errno.ENOMEM)
        return top - length

    # -- mapping -----------------------------------------------------------
    def map_region(self, start: int, length: int, prot: int, *, name: str = "",
                   shared: bool = False, grows_down: bool = False, mapping=None,
                   pgoff: int = 0, may_write: bool = True, denywrite: bool = False) -> Vma:
        """Create a VMA for [start, start+length) (page aligned), replacing what was there.

        With ``mapping`` (a pagecache.FileMapping) it maps the file from
        page index ``pgoff``: see :meth:`map_file`.
        """
        end = start + length
        self.unmap_range(start, end)
        vma = Vma(start, end, prot, shared=shared, name=name, grows_down=grows_down,
                  mapping=mapping, pgoff=pgoff, may_write=may_write, denywrite=denywrite)
        if mapping is not None:
            mapping.mms.add(self)
        self._insert(vma)
        if mapping is None and not shared and _WORKING_SETS:
            image = self.find_vma(start - 1)
            if (image is not None and image.end == start and image.denywrite
                    and image.mapping in _WORKING_SETS):
                self._map_anon_working_set(image, vma)
        return vma

    def _map_anon_working_set(self, image: Vma, vma: Vma) -> None:
        """Back the pages of ``vma``, anonymous memory right after program
        image VMA ``image`` (the bss, or the heap), that earlier runs
        touched: _WORKING_SETS numbers them on from the image's last file
        page index."""
        read = _WORKING_SETS[image.mapping][0]
        first = image.file_index(image.end >> PAGE_SHIFT)  # the index of vma.start
        last = first + ((vma.end - vma.start) >> PAGE_SHIFT)
        try:
            for index in sorted(i for i in read if first <= i < last):
                page = vma.start + ((index - first) << PAGE_SHIFT)
                self._map_pages(vma, page, page + PAGE_SIZE)
        except OutOfGuestMemory:
            pass

    def map_file(self, start: int, length: int, prot: int, mapping, offset: int, *,
                 shared: bool = False, name: str = "", may_write: bool = True,
                 populate: bool = False, denywrite: bool = False) -> Vma:
        """mmap(2) of a file: [start, start+length) shows the file from byte ``offset``.

        ``start``, ``length`` and ``offset`` are page aligned (bytes);
        ``mapping`` is the file's page cache (pagecache.mapping_of_file or
        PageCache.host_mapping); ``name`` the guest path /proc/self/maps
        prints. Pages come from the page cache on first touch, with
        fault-around (or all now with ``populate``, up to the end of the
        file). ``shared``: MAP_SHARED, the cache's frames themselves are
        mapped (writable ones only for in-memory files); otherwise
        MAP_PRIVATE, the frames are shared read-only and copied on the
        first write. The last page past the end of the file reads as
        zeros; pages wholly past it are SIGBUS (mmap(2)). Replaces what
        was mapped there. Raises OutOfGuestMemory only with ``populate``.
        ``denywrite``: the program's own image (see Vma).
        """
        vma = self.map_region(start, length, prot, name=name, shared=shared, mapping=mapping,
                              pgoff=offset >> PAGE_SHIFT, may_write=may_write, denywrite=denywrite)
        if denywrite and not shared and mapping in _WORKING_SETS:
            self._map_working_set(vma)
        if populate:
            self.populate(vma.start, vma.end)
        return vma

    def _map_working_set(self, vma: Vma) -> None:
        """Map the pages of program image ``vma`` that earlier runs touched
        (_WORKING_SETS) and the page cache holds: read ones shared
        copy-on-write, written ones (in a writable VMA) as private copies.
        Nothing is read from the file; a page not cached faults as before."""
        read, written = _WORKING_SETS[vma.mapping]
        mapping = vma.mapping
        cached = mapping.pages
        lo = vma.pgoff
        hi = min(lo + ((vma.end - vma.start) >> PAGE_SHIFT),
                 (mapping.size() + PAGE_SIZE - 1) >> PAGE_SHIFT)
        copy = written if vma.prot & PROT_WRITE else ()
        flags = vma.pte_flags()
        if not flags:
            return
        shift = (vma.start >> PAGE_SHIFT) - lo  # vpn - file index
        memory, pages, cow, view = self.memory, self.pages, self.cow, self.view
        get_frame = memory.get_frame
        entries = {}
        ordered = sorted(read | written if copy else read)
        ordered = ordered[bisect.bisect_left(ordered, lo):bisect.bisect_left(ordered, hi)]
        try:
            for index in ordered:
                gpa = cached.get(index)
                vpn = index + shift
                if gpa is None or vpn in pages:
                    continue
                if index in copy:
                    new = memory.alloc_frame()
                    view[new:new + PAGE_SIZE] = view[gpa:gpa + PAGE_SIZE]
                    entries[vpn << PAGE_SHIFT] = new | flags
                    pages[vpn] = new
                else:
                    get_frame(gpa)
                    cow.add(vpn)
                    entries[vpn << PAGE_SHIFT] = gpa | flags & ~PTE_RW
                    pages[vpn] = gpa
        except OutOfGuestMemory:
            pass  # what is mapped stays; the rest faults
        if entries:
            self.address_space.map_entries(entries)

    def _note_working_set(self, start: int = 0, end: int | None = None) -> None:
        """Add the pages of this address space's program images in [start, end)
        that were read or written (accessed and dirty bits) to _WORKING_SETS:
        those of each image VMA (by file page index), and the read ones of
        the anonymous VMA right after one (the bss, numbered on from the
        image VMA's last index: see _map_anon_working_set)."""
        end = self.task_size if end is None else end
        spans = []  # (vma, image mapping, file index - vpn, anonymous)
        image = None
        for vma in self.vmas:
            if vma.denywrite and not vma.shared and vma.mapping is not None and vma.mapping.immutable:
                image = vma
                span = (vma, vma.mapping, vma.pgoff - (vma.start >> PAGE_SHIFT), False)
            elif image is not None and vma.mapping is None and not vma.shared and vma.start == image.end:
                span = (vma, image.mapping,
                        image.file_index(image.end >> PAGE_SHIFT) - (vma.start >> PAGE_SHIFT), True)
                image = None
            else:
                image = None
                continue
            if vma.start < end and vma.end > start:
                spans.append(span)
        if not spans:
            return
        blocks = sorted({block for vma, *_ in spans
                         for block in range(max(start, vma.start) >> 21, ((min(end, vma.end) - 1) >> 21) + 1)})
        leaves_with = self.address_space.leaves_with
        for bit, which in ((PTE_ACCESSED, 0), (PTE_DIRTY, 1)):
            found = leaves_with(bit, blocks)  # sorted
            for vma, mapping, shift, anonymous in spans:
                if which and anonymous:
                    continue
                lo = bisect.bisect_left(found, max(start, vma.start))
                hi = bisect.bisect_left(found, min(end, vma.end))
                if lo == hi:
                    continue
                known = _WORKING_SETS.get(mapping)
                if known is None:
                    known = _WORKING_SETS[mapping] = (set(), set())
                known[which].update([(gva >> PAGE_SHIFT) + shift for gva in found[lo:hi]])

    def unmap_range(self, start: int, end: int) -> None:
        """munmap(2)'s core: drop VMAs and pages in [start, end) (page aligned).

        A hidden VMA going (the guest unmapped or mapped over the sentry's
        fast-read page or a window) is reported to kvmsentry.kernel.fastread.
        """
        hidden = False
        for vma in self._split_range(start, end):
            self._drop_pages(vma.start, vma.end)
            # Its place by its start (unique, sorted), not list.index: that
            # compares VMAs field by field (Vma.__eq__).
            i = bisect.bisect_left(self._starts, vma.start)
            del self.vmas[i]
            del self._starts[i]
            hidden = hidden or vma.hidden
        if hidden and self.fastread is not None:
            self.fastread.unmapped(start, end)

    def _drop_pages(self, start: int, end: int) -> None:
        self.drops += 1
        pages = self.pages
        vpns = self.present_vpns(start, end)
        freed = [pages.pop(vpn) for vpn in vpns]
        cow = self.cow
        if cow:
            cow.difference_update(vpns)
        self.address_space.unmap_pages([vpn << PAGE_SHIFT for vpn in vpns])
        if not self.address_space.defer_release(freed):
            self.memory.put_frames(freed)

    def protect(self, start: int, end: int, prot: int) -> None:
        """mprotect(2)'s core.

        Raises MmError(ENOMEM) if part of the range is unmapped, EACCES for
        PROT_WRITE on a MAP_SHARED file VMA without VM_MAYWRITE (file
        opened read-only), as mm/mprotect.c.
        """
        addr = start
        image = False  # part of a program image (vma.denywrite)
        for vma in self.vmas:
            if vma.end <= addr or vma.start >= end:
                continue
            if vma.start > addr:
                raise MmError(errno.ENOMEM)
            if prot & PROT_WRITE and not vma.may_write:
                raise MmError(errno.EACCES)
            image = image or vma.denywrite
            addr = vma.end
        if addr < end:
            raise MmError(errno.ENOMEM)
        # The new entries lose the accessed and dirty bits: what a program
        # image's pages show (RELRO is written, then made read-only) is
        # noted first.
        if image:
            self._note_working_set(start, end)
        entries = {}  # the new leaf entries of present pages, written at once
        for vma in self._split_range(start, end):
            vma.prot = prot
            flags = vma.pte_flags()
            dirty = vma.mapping if vma.shared and prot & PROT_WRITE and vma.mapping is not None else None
            for vpn in range(vma.start >> PAGE_SHIFT, vma.end >> PAGE_SHIFT):
                gpa = self.pages.get(vpn)
                if gpa is not None:
                    entry = (gpa | flags) if flags else 0
                    if vpn in self.cow:
                        entry &= ~PTE_RW
                    elif dirty is not None:
                        dirty.mark_dirty(vma.file_index(vpn))
                    entries[vpn << PAGE_SHIFT] = entry
        if prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
            self.address_space.set_entries(entries)
        else:  # PROT_NONE: no entry at all
            self.address_space.unmap_pages(list(entries))

    def prefault_heap(self, old_brk: int, new_brk: int) -> None:
        """brk(2) moved the break up from ``old_brk`` to ``new_brk`` (bytes):
        back the page holding the old break and the next (BRK_PREFAULT_PAGES,
        within the new break) now instead of on their first touch. Frames
        that cannot be had are left to the fault."""
        start = old_brk & PAGE_MASK
        end = min(page_align_up(new_brk), start + BRK_PREFAULT_PAGES * PAGE_SIZE)
        vma = self.find_vma(start)
        if vma is None or end <= start or vma.name != "[heap]":
            return
        try:
            self._map_pages(vma, start, min(end, vma.end))
        except OutOfGuestMemory:
            pass

    def populate(self, start: int, end: int) -> None:
        """Back every page of [start, end) with a frame now (no faults later).

        File pages past the end of the file stay unmapped (SIGBUS on access).
        """
        vma = self.find_vma(start)
        while vma is not None and vma.start < end:
            self._map_pages(vma, max(start, vma.start), min(end, vma.end))
            vma = self.find_vma(vma.end)

    def _map_pages(self, vma: Vma, start: int, end: int) -> None:
        if vma.mapping is not None:
            self._map_file_pages(vma, start, end)
            return
        flags = vma.pte_flags()
        pages = self.pages
        memory = self.memory
        for vpn in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
            if vpn in pages:
                continue
            gpa = memory.alloc_frame()
            pages[vpn] = gpa
            if flags:
                self.address_space.map_entry(vpn << PAGE_SHIFT, gpa | flags)

    def _map_file_pages(self, vma: Vma, start: int, end: int, write_vpn: int = -1,
                        copy_all: bool = False) -> bool:
        """Map the file pages of [start, end) from the page cache; False if
        the first page is wholly past the end of the file (SIGBUS).

        Private VMAs get the cache's frames read-only, copy-on-write,
        except page ``write_vpn`` (a write fault), which gets its copy now
        (every page with ``copy_all``).
        """
        mapping = vma.mapping
        npages_file = (mapping.size() + PAGE_SIZE - 1) >> PAGE_SHIFT
        flags = vma.pte_flags()
        pages = self.pages
        memory = self.memory
        private = not vma.shared
        writable_shared = vma.shared and vma.prot & PROT_WRITE
        first = start >> PAGE_SHIFT
        last = min(end >> PAGE_SHIFT, vma.start // PAGE_SIZE + npages_file - vma.pgoff)
        if last <= first:
            return False
        if last - first > 1:
            mapping.read_pages(vma.file_index(first), last - first)
        entries = {}
        # Up to FAULT_AROUND_PAGES per fault: the lookups are hoisted.
        index_shift = vma.pgoff - (vma.start >> PAGE_SHIFT)  # vma.file_index(vpn) - vpn
        get_page = mapping.get_page
        get_frame = memory.get_frame
        cow = self.cow
        view = self.view
        for vpn in range(first, last):
            if vpn in pages:
                continue
            index = vpn + index_shift
            gpa = get_page(index)
            entry = flags
            if private:
                if vpn == write_vpn or copy_all:
                    new = memory.alloc_frame()
                    view[new:new + PAGE_SIZE] = view[gpa:gpa + PAGE_SIZE]
                    gpa = new
                else:
                    get_frame(gpa)
                    cow.add(vpn)
                    entry &= ~PTE_RW
            else:
                get_frame(gpa)
                if writable_shared:
                    mapping.mark_dirty(index)
            pages[vpn] = gpa
            if flags:
                entries[vpn << PAGE_SHIFT] = gpa | entry
        if entries:
            self.address_space.map_entries(entries)
        return True

    def map_file_huge(self, vma: Vma, block: int, recycle: int | None = None) -> bool:
        """Map the 2 MiB-aligned ``block`` of a shared read-only file VMA with one 2 MiB page.

        The page cache must hold (or read) the block's file pages in one
        aligned run of frames (HostMapping.read_huge); each frame gains a
        reference. ``recycle``: another block of the VMA whose run the
        cache may reuse if nothing else maps it (:meth:`take_huge`; a
        sequential reader is done with the block two behind). For the
        fast-read windows (kvmsentry/kernel/fastread.py). Returns False,
        changing nothing else, when it cannot.
        """
        if (block & (HUGE_PAGE_SIZE - 1) or block < vma.start or block + HUGE_PAGE_SIZE > vma.end
                or not vma.shared or vma.prot & PROT_WRITE or not vma.prot & PROT_READ):
            return False
        read_huge = getattr(vma.mapping, "read_huge", None)
        first = block >> PAGE_SHIFT
        span = range(first, first + 512)
        if read_huge is None or not self.pages.keys().isdisjoint(span):
            return False
        spare = self.take_huge(vma, recycle) if recycle is not None else None
        gpa = read_huge(vma.file_index(first), spare)
        if spare is not None and gpa != spare:  # unused: freed after the guest's flush
            frames = list(range(spare, spare + HUGE_PAGE_SIZE, PAGE_SIZE))
            if not self.address_space.defer_release(frames):
                self.memory.put_frames(frames)
        if gpa is None:
            return False
        gpas = range(gpa, gpa + HUGE_PAGE_SIZE, PAGE_SIZE)
        get_frame = self.memory.get_frame
        for frame in gpas:
            get_frame(frame)
        self.pages.update(zip(span, gpas))
        self.huge = True
        self.address_space.map_huge(block, gpa | vma.pte_flags() | PTE_PSE)
        return True

    def take_huge(self, vma: Vma, block: int) -> int | None:
        """Unmap the 2 MiB ``block`` of shared read-only file VMA ``vma`` and take
        its frames out of the page cache, for reuse: returns the run's GPA
        (one reference per frame, now the caller's), or None (nothing done).

        Only a block mapped from one aligned run of the cache's frames that
        nothing but this VMA maps (reference count 2: the cache and us);
        its page-directory entry is cleared (the guest flushes before it
        runs again; a caller that frees the run instead of reusing it goes
        through AddressSpace.defer_release, as _drop_pages). The file's
        pages are read again if touched again.
        """
        if (block & (HUGE_PAGE_SIZE - 1) or block < vma.start or block + HUGE_PAGE_SIZE > vma.end
                or not vma.shared or vma.prot & PROT_WRITE or vma.mapping is None
                or not hasattr(vma.mapping, "forget_huge")):
            return None
        first = block >> PAGE_SHIFT
        pages = self.pages
        gpa = pages.get(first)
        if gpa is None or gpa & (HUGE_PAGE_SIZE - 1):
            return None
        index = vma.file_index(first)
        frames = list(range(gpa, gpa + HUGE_PAGE_SIZE, PAGE_SIZE))
        if (list(map(pages.get, range(first, first + 512))) != frames
                or list(map(vma.mapping.pages.get, range(index, index + 512))) != frames
                or set(map(self.memory.refcount, frames)) != {2}):
            return None
        for vpn in range(first, first + 512):
            del pages[vpn]
        vma.mapping.forget_huge(index)
        self.drops += 1
        self.address_space.map_huge(block, 0)  # the whole directory entry: 2 MiB page or table
        self.memory.put_frames(range(gpa, gpa + HUGE_PAGE_SIZE, PAGE_SIZE))  # 2 -> 1
        return gpa

    def unmap_file_pages(self, mapping, npages: int) -> None:
        """Unmap this mm's pages of ``mapping`` at file page ``npages`` and beyond
        (the file was truncated: they are SIGBUS now)."""
        for vma in self.vmas:
            if vma.mapping is not mapping:
                continue
            first = max(vma.start >> PAGE_SHIFT, (vma.start >> PAGE_SHIFT) + npages - vma.pgoff)
            if first < vma.end >> PAGE_SHIFT:
                self._drop_pages(first << PAGE_SHIFT, vma.end)

    def discard(self, start: int, end: int) -> None:
        """madvise(MADV_DONTNEED)'s core: drop the pages of [start, end).

        Anonymous private pages read as zero again, private file pages as
        the file; shared pages keep their data (a shared file's is in the
        page cache; shared anonymous pages, whose frames are the only
        copy, stay mapped).
        """
        for vma in self.vmas:
            if vma.end <= start or vma.start >= end:
                continue
            if vma.shared and vma.mapping is None:
                continue
            self._drop_pages(max(start, vma.start), min(end, vma.end))

    def set_dontfork(self, start: int, end: int, dontfork: bool) -> None:
        """MADV_DONTFORK / MADV_DOFORK on the VMAs of [start, end)."""
        for vma in self._split_range(start, end):
            vma.dontfork = dontfork

    def willneed(self, start: int, end: int) -> None:
        """MADV_WILLNEED: read the file pages of [start, end) into the page cache."""
        vma = self.find_vma(start)
        while vma is not None and vma.start < end:
            if vma.mapping is not None:
                lo = vma.file_index(max(start, vma.start) >> PAGE_SHIFT)
                hi = vma.file_index(min(end, vma.end) >> PAGE_SHIFT)
                npages = (vma.mapping.size() + PAGE_SIZE - 1) >> PAGE_SHIFT
                vma.mapping.read_pages(lo, max(0, min(hi, npages) - lo))
            vma = self.find_vma(vma.end)

    def covered(self, start: int, end: int) -> bool:
        """Whether VMAs cover all of [start, end) with no hole."""
        addr = start
        for vma in self.vmas:
            if vma.end <= addr or vma.start >= end:
                continue
            if vma.start > addr:
                return False
            addr = vma.end
        return addr >= end

    def move_range(self, old: int, old_size: int, new: int, new_size: int) -> int:
        """mremap's move: the VMA at [old, old+old_size) becomes [new, new+new_size).

        Frames move with their pages (nothing is copied). Returns ``new``.
        """
        vma = self.find_vma(old)
        template = vma.replace(pgoff=vma.file_index(old >> PAGE_SHIFT))
        moved = {}
        moved_cow = set()
        for vpn in range(old >> PAGE_SHIFT, (old + min(old_size, new_size)) >> PAGE_SHIFT):
            gpa = self.pages.pop(vpn, None)
            if gpa is not None:
                self.address_space.unmap(vpn << PAGE_SHIFT)
                target_vpn = vpn - (old >> PAGE_SHIFT) + (new >> PAGE_SHIFT)
                moved[target_vpn] = gpa
                if vpn in self.cow:
                    self.cow.discard(vpn)
                    moved_cow.add(target_vpn)
        self.unmap_range(old, old + old_size)
        self.unmap_range(new, new + new_size)
        target = template.replace(start=new, end=new + new_size)
        if target.mapping is not None:
            target.mapping.mms.add(self)
        self._insert(target)
        flags = target.pte_flags()
        for vpn, gpa in moved.items():
            self.pages[vpn] = gpa
            if flags:
                entry = gpa | flags
                if vpn in moved_cow:
                    self.cow.add(vpn)
                    entry &= ~PTE_RW
                self.address_space.map_entry(vpn << PAGE_SHIFT, entry)
        return new

    def write_bytes(self, gva: int, data) -> None:
        """Write ``data`` at ``gva`` whatever the VMA's protection (the loader's path).

        Pages are allocated as needed; raises GuestFault outside any VMA.
        """
        self._access(gva, len(data), None, data)

    # -- faults --------------------------------------------------------------
    def handle_fault(self, gva: int, *, write: bool, execute: bool) -> int:
        """Resolve a user page fault at ``gva``.

        Returns 0 when the page is now mapped, else the si_code of the
        SIGSEGV Linux would send: SEGV_MAPERR (1) for no VMA, SEGV_ACCERR
        (2) for a protection violation (arch/x86/mm/fault.c); or
        FAULT_SIGBUS for a file page wholly past the end of the file
        (mm/filemap.c filemap_fault).
        """
        self.faults += 1
        vma = self.find_vma(gva)
        if vma is None:
            vma = self._grow_stack(gva)
            if vma is None:
                return 1
        if write and not vma.prot & PROT_WRITE:
            return 2
        if execute and not vma.prot & PROT_EXEC:
            return 2
        if not vma.prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
            return 2
        vpn = gva >> PAGE_SHIFT
        if write and vma.denywrite and not vma.shared and (vpn not in self.pages or vpn in self.cow):
            return self._copy_window(vma, gva)
        small = vma.end - vma.start <= SMALL_VMA
        if vpn in self.pages:
            if write and vpn in self.cow:
                if small and not vma.shared and (vma.mapping is None or vma.mapping.immutable):
                    # A data segment is written all over (relocations):
                    # copy its shared pages at once, one fault not one each.
                    # (Not pages of a file that can change: one not written
                    # yet must keep seeing write(2) to it, as on Linux.)
                    cow = self.cow
                    self._break_cows(vma, [other for other in range(vma.start >> PAGE_SHIFT,
                                                                     vma.end >> PAGE_SHIFT)
                                           if other in cow])
                    if vma.mapping is not None:
                        self._map_file_pages(vma, vma.start, vma.end, copy_all=True)
                else:
                    self._break_cow(vpn)
                return 0
            # Present with the right permission: the MMU holds a stale entry.
            self.address_space.mark_stale(gva)
            return 0
        window = FAULT_AROUND_PAGES * PAGE_SIZE
        if vma.mapping is not None:
            page = gva & PAGE_MASK
            if write and not vma.shared:
                # The private copy now; the rest of a small VMA shared
                # read-only (copy-on-write) around it.
                if not self._map_file_pages(vma, page, page + PAGE_SIZE, vpn):
                    return FAULT_SIGBUS
                if small:
                    self._map_file_pages(vma, vma.start, vma.end, copy_all=vma.mapping.immutable)
                return 0
            # Fault-around: the aligned window, from the faulting page on
            # first (a page past the end of the file is SIGBUS), then below it.
            start = max(vma.start, gva & ~(window - 1))
            end = min(vma.end, start + window)
            if not self._map_file_pages(vma, page, end):
                return FAULT_SIGBUS
            if start < page:
                self._map_file_pages(vma, start, page)
            return 0
        if HUGE_MIN_VMA and vma.end - vma.start >= HUGE_MIN_VMA and not vma.grows_down \
                and self._map_huge(vma, gva & ~(HUGE_PAGE_SIZE - 1)):
            return 0
        start = max(vma.start, gva & ~(window - 1))
        end = min(vma.end, start + window)
        try:
            self._map_pages(vma, start, end)
        except OutOfGuestMemory:
            self._map_pages(vma, gva & PAGE_MASK, (gva & PAGE_MASK) + PAGE_SIZE)
        return 0

    def _copy_window(self, vma: Vma, gva: int) -> int:
        """A write fault at ``gva`` in the program's private image (``vma.denywrite``):
        give every page of the aligned fault-around window its own copy.

        Returns handle_fault's answer (0, or FAULT_SIGBUS when the faulting
        page is wholly past the end of the file).
        """
        vpn = gva >> PAGE_SHIFT
        page = gva & PAGE_MASK
        if vpn not in self.pages and not self._map_file_pages(vma, page, page + PAGE_SIZE, vpn):
            return FAULT_SIGBUS
        window = FAULT_AROUND_PAGES * PAGE_SIZE
        start = max(vma.start, gva & ~(window - 1))
        end = min(vma.end, start + window)
        cow = self.cow
        self._break_cows(vma, [other for other in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT)
                               if other in cow])
        self._map_file_pages(vma, start, end, copy_all=True)
        return 0

    def _map_huge(self, vma: Vma, block: int) -> bool:
        """Back the 2 MiB block at ``block`` with one huge page if it lies
        inside ``vma`` with nothing present; False when it cannot."""
        if block < vma.start or block + HUGE_PAGE_SIZE > vma.end:
            return False
        first = block >> PAGE_SHIFT
        pages = self.pages
        for vpn in range(first, first + 512):
            if vpn in pages:
                return False
        flags = vma.pte_flags()
        if not flags:
            return False
        gpa = self.memory.alloc_huge()
        if gpa is None:
            return False
        self.huge = True
        pages.update(zip(range(first, first + 512), range(gpa, gpa + HUGE_PAGE_SIZE, PAGE_SIZE)))
        self.address_space.map_huge(block, gpa | flags | PTE_PSE)
        return True

    def _grow_stack(self, gva: int) -> Vma | None:
        """Extend a grows-down VMA just above ``gva`` (the main stack), as Linux does.

        The stack may not exceed ``stack_limit`` bytes (RLIMIT_STACK; Linux
        mm/mmap.c acct_stack_growth): beyond it the fault is a SIGSEGV.
        """
        i = bisect.bisect_right(self._starts, gva)
        if i < len(self.vmas):
            vma = self.vmas[i]
            if vma.grows_down and vma.end - (gva & PAGE_MASK) <= self.stack_limit:
                new_start = gva & PAGE_MASK
                if self.is_free(new_start, vma.start):
                    vma.start = new_start
                    self._starts[i] = new_start
                    return vma
        return None

    # -- copy_in / copy_out --------------------------------------------------
    def _access(self, gva: int, length: int, need: int | None, data=None) -> bytes | None:
        """Read ``length`` bytes at ``gva`` (data None) or write ``data``.

        ``need`` is PROT_READ or PROT_WRITE (None: the loader, no check).
        """
        if length == 0:
            return b"" if data is None else None
        if gva < 0 or gva + length > self.task_size or gva + length < gva:
            raise GuestFault(gva)
        out = [] if data is None else None
        view = self.view
        pages = self.pages
        addr = gva
        end = gva + length
        done = 0
        while addr < end:
            vpn = addr >> PAGE_SHIFT
            gpa = pages.get(vpn)
            if gpa is None or need is not None:
                vma = self.find_vma(addr)
                if vma is None or (need is not None and not vma.prot & need):
                    raise GuestFault(addr)
                if gpa is None:
                    try:
                        self._map_pages(vma, addr & PAGE_MASK, (addr & PAGE_MASK) + PAGE_SIZE)
                    except OutOfGuestMemory:
                        raise GuestFault(addr) from None
                    gpa = pages.get(vpn)
                    if gpa is None:  # a file page past the end of the file
                        raise GuestFault(addr)
            if data is not None and vpn in self.cow:
                self._break_cow(vpn)
                gpa = pages[vpn]
            offset = addr & (PAGE_SIZE - 1)
            chunk = min(PAGE_SIZE - offset, end - addr)
            if data is None:
                out.append(view[gpa + offset:gpa + offset + chunk])
            else:
                view[gpa + offset:gpa + offset + chunk] = data[done:done + chunk]
            addr += chunk
            done += chunk
        if data is None:
            return b"".join(out)
        return None

    def _present_gpa(self, gva: int, need: int) -> int | None:
        """The frame GPA of the page holding ``gva`` when it is present and
        its VMA allows ``need`` (PROT_READ, or PROT_WRITE on a page that is
        not copy-on-write); None when :meth:`_access` must decide (absent,
        copy-on-write, outside user space, or a fault to raise)."""
        vpn = gva >> PAGE_SHIFT
        gpa = self.pages.get(vpn)
        if gpa is None or gva < 0 or gva >= self.task_size:
            return None
        if need == PROT_WRITE and vpn in self.cow:
            return None
        # find_vma, inlined: this runs for every pointer a syscall touches.
        i = bisect.bisect_right(self._starts, gva) - 1
        if i < 0:
            return None
        vma = self.vmas[i]
        if gva >= vma.end or not vma.prot & need:
            return None
        return gpa

    def copy_in(self, gva: int, length: int) -> bytes:
        """``length`` bytes of guest memory at ``gva``; GuestFault if not readable."""
        offset = gva & (PAGE_SIZE - 1)
        if 0 < length <= PAGE_SIZE - offset:  # one page, the common case
            gpa = self._present_gpa(gva, PROT_READ)
            if gpa is not None:
                return self.view[gpa + offset:gpa + offset + length].tobytes()
        return self._access(gva, length, PROT_READ)

    def copy_out(self, gva: int, data) -> None:
        """Write ``data`` (bytes-like) at ``gva``; GuestFault if not writable."""
        length = len(data)
        offset = gva & (PAGE_SIZE - 1)
        if 0 < length <= PAGE_SIZE - offset and type(data) in (bytes, bytearray):  # one page
            gpa = self._present_gpa(gva, PROT_WRITE)
            if gpa is not None:
                self.view[gpa + offset:gpa + offset + length] = data
                return
        self._access(gva, length, PROT_WRITE, memoryview(data).cast("B"))

    def read_cstring(self, gva: int, limit: int = 4096) -> bytes:
        """The NUL-terminated string at ``gva`` (without the NUL).

        Raises GuestFault for a bad pointer and SyscallError(ENAMETOOLONG)
        when no NUL appears within ``limit`` bytes.
        """
        out = b""
        addr = gva
        while len(out) < limit:
            chunk = min(PAGE_SIZE - (addr & (PAGE_SIZE - 1)), limit - len(out))
            data = self.copy_in(addr, chunk)
            nul = data.find(b"\0")
            if nul >= 0:
                return out + data[:nul] if out else data[:nul]
            out += data
            addr += chunk
        from kvmsentry.kernel.syscalls.table import SyscallError
        raise SyscallError(errno.ENAMETOOLONG)

    def share_pages(self, frames: dict[int, int]) -> None:
        """Map shared frames (a page cache's) at their page numbers, inside existing VMAs.

        Each frame gains a reference. Pages of private writable VMAs are
        mapped read-only and copied on the first write, as file pages
        under MAP_PRIVATE.
        """
        memory = self.memory
        entries = {}
        vma = None
        for vpn, gpa in frames.items():
            gva = vpn << PAGE_SHIFT
            if vma is None or not vma.start <= gva < vma.end:
                vma = self.find_vma(gva)
                flags = vma.pte_flags()
                cow = not vma.shared
                if cow:
                    flags &= ~PTE_RW
            memory.get_frame(gpa)
            self.pages[vpn] = gpa
            if cow:
                self.cow.add(vpn)
            if flags:
                entries[gva] = gpa | flags
        self.address_space.map_entries(entries)

    def snapshot_pages(self, start: int, end: int) -> dict[int, int]:
        """The present pages of [start, end), each with a new reference, made shareable.

        Private writable pages become copy-on-write here, so that the
        caller may hand the frames to other address spaces (share_pages).
        """
        frames = {}
        for vpn in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
            gpa = self.pages.get(vpn)
            if gpa is None:
                continue
            self.memory.get_frame(gpa)
            frames[vpn] = gpa
            vma = self.find_vma(vpn << PAGE_SHIFT)
            if not vma.shared and vpn not in self.cow:
                self.cow.add(vpn)
                if vma.prot & PROT_WRITE:
                    self.address_space.set_entry(vpn << PAGE_SHIFT,
                                                 gpa | (vma.pte_flags() & ~PTE_RW))
        return frames

    def _break_cow(self, vpn: int) -> None:
        """Give page ``vpn`` a frame of its own and make it writable (after a fork)."""
        self._break_cows(self.find_vma(vpn << PAGE_SHIFT), [vpn])

    def _break_cows(self, vma: Vma, vpns: list[int]) -> None:
        """_break_cow for copy-on-write pages ``vpns`` of ``vma``; their page-table
        entries are written at once (a small VMA's pages break together)."""
        memory, pages, view = self.memory, self.pages, self.view
        flags = vma.pte_flags()
        entries = {}
        for vpn in vpns:
            gpa = pages[vpn]
            if memory.refcount(gpa) > 1:
                new = memory.alloc_frame()
                view[new:new + PAGE_SIZE] = view[gpa:gpa + PAGE_SIZE]
                memory.put_frame(gpa)
                gpa = pages[vpn] = new
            self.cow.discard(vpn)
            entries[vpn << PAGE_SHIFT] = gpa | flags
        self.address_space.set_entries(entries)

    def fork(self, address_space) -> "MemoryManager":
        """fork(2)'s copy of this address space into ``address_space``.

        Every VMA is copied; present pages are shared: MAP_SHARED ones stay
        writable in both, private writable ones become copy-on-write in
        both (kernel/fork.c dup_mmap, mm/memory.c copy_pte_range), except
        those fork copies at once (FORK_COPY_PAGES). The page tables are
        copied a table at a time (PageTable.fork_into) unless a VMA is
        MADV_DONTFORK or a 2 MiB page was ever mapped: then page by page.
        """
        child = MemoryManager(address_space, self.memory, task_size=self.task_size,
                              mmap_base=self.mmap_base)
        child.vmas = [v.copy() for v in self.vmas if not v.dontfork]
        child._starts = [v.start for v in child.vmas]
        for vma in child.vmas:
            if vma.mapping is not None:
                vma.mapping.mms.add(child)
        child.brk_start, child.brk, child.stack_limit = self.brk_start, self.brk, self.stack_limit
        child.forked_from = weakref.ref(self)
        copies, keep_entries = self._fork_copies()
        if (self.huge or any(v.dontfork for v in self.vmas)
                or getattr(self.address_space, "fork_into", None) is None):
            self._fork_pages(child, copies, keep_entries)
        else:
            self._fork_tables(child, copies, keep_entries)
        return child

    def _fork_tables(self, child: "MemoryManager", copies: dict[int, int], keep_entries: bool) -> None:
        """fork's copy with no MADV_DONTFORK VMA and no 2 MiB page: the page
        tables a table at a time, the bookkeeping by whole dicts and sets.
        ``keep_entries``: the parent's entries of ``copies`` stay as they are."""
        memory, pages, view = self.memory, self.pages, self.view
        child_pages = child.pages
        child_pages.update(pages)
        memory.get_frames(pages.values())
        private = set(pages)
        keep = []
        for vma in self.vmas:
            if vma.shared:
                keep.append((vma.start, vma.end))
                private.difference_update(self.present_vpns(vma.start, vma.end))
        parent_entries = {}
        child_entries = {}
        if copies:
            cow = self.cow
            vma = None
            run_start = run_end = -1
            runs = []  # the copied pages as ranges (kept in the parent)
            for vpn in sorted(copies):
                new = copies[vpn]
                gpa = pages[vpn]
                view[new:new + PAGE_SIZE] = view[gpa:gpa + PAGE_SIZE]
                child_pages[vpn] = new
                gva = vpn << PAGE_SHIFT
                if vma is None or not vma.start <= gva < vma.end:
                    vma = self.find_vma(gva)
                    flags = vma.pte_flags()
                if not keep_entries and vpn not in cow:
                    parent_entries[gva] = gpa | flags  # the dirty bit cleared
                child_entries[gva] = new | flags
                if gva != run_end:
                    if run_end > 0:
                        runs.append((run_start, run_end))
                    run_start = gva
                run_end = gva + PAGE_SIZE
            runs.append((run_start, run_end))
            private.difference_update(copies)
            memory.put_frames([pages[vpn] for vpn in copies])  # the child's reference: 2 -> 1
            if keep_entries:
                keep = sorted(keep + runs)
        self.address_space.fork_into(child.address_space, keep, child_entries)
        if parent_entries:
            self.address_space.set_entries(parent_entries)
        self.cow |= private
        child.cow = private

    def present_vpns(self, start: int, end: int) -> list[int]:
        """The page numbers of present pages in [start, end) (bytes), in no
        particular order: a scan of the range or of ``pages``, the shorter."""
        pages = self.pages
        lo, hi = start >> PAGE_SHIFT, end >> PAGE_SHIFT
        if hi - lo > len(pages):
            return [v for v in pages if lo <= v < hi]
        return [v for v in range(lo, hi) if v in pages]

    def _fork_pages(self, child: "MemoryManager", copies: dict[int, int], keep_entries: bool) -> None:
        """fork's copy page by page (any VMA, any page size); ``keep_entries``:
        the parent's entries of ``copies`` stay as they are."""
        memory = self.memory
        get_frame = memory.get_frame
        view = self.view
        pages, cow = self.pages, self.cow
        child_pages, child_cow = child.pages, child.cow
        child_entries = {}
        # The parent's pages made read-only (copy-on-write), and its copied
        # pages with the dirty bit cleared (only pages written again are
        # copied at the next fork).
        parent_entries = {}
        for vma in self.vmas:
            if vma.dontfork:
                continue
            flags = vma.pte_flags()
            # Every private page is copy-on-write from now on, even in a
            # read-only VMA: a later mprotect(PROT_WRITE) must not let one
            # process write the other's page.
            private_writable = not vma.shared
            for vpn in range(vma.start >> PAGE_SHIFT, vma.end >> PAGE_SHIFT):
                gpa = pages.get(vpn)
                if gpa is None:
                    continue
                if copies and vpn in copies:
                    new = copies[vpn]
                    view[new:new + PAGE_SIZE] = view[gpa:gpa + PAGE_SIZE]
                    child_pages[vpn] = new
                    child_entries[vpn << PAGE_SHIFT] = new | flags
                    if not keep_entries and vpn not in cow:
                        parent_entries[vpn << PAGE_SHIFT] = gpa | flags  # the dirty bit cleared
                    continue
                get_frame(gpa)
                child_pages[vpn] = gpa
                entry = gpa | flags if flags else 0
                if private_writable:
                    entry &= ~PTE_RW
                    if vpn not in cow:
                        cow.add(vpn)
                        if flags & PTE_RW:
                            parent_entries[vpn << PAGE_SHIFT] = entry
                    child_cow.add(vpn)
                if entry:
                    child_entries[vpn << PAGE_SHIFT] = entry
        if parent_entries:
            self.address_space.set_entries(parent_entries)
        child.address_space.map_entries(child_entries)

    def _fork_copies(self) -> tuple[dict[int, int], bool]:
        """({vpn: new frame} for the pages fork copies now, whether the parent's
        entries of these pages stay as they are) (FORK_COPY_PAGES).

        Candidates: private pages of writable VMAs that this process alone
        maps (reference count 1) with a writable entry, and those its last
        child wrote (``child_wrote``: a shell's child writes the same pages
        before each exec). When every writable one fits the budget, all are
        copied and the parent keeps its entries as they are: none changes,
        so the parent needs no flush after the fork. Otherwise only the
        dirty ones (written since their entry was written: at the previous
        fork, a copy-on-write break or the first touch), whose entries are
        then rewritten with the dirty bit clear (second value False).
        Only when no other task uses this memory: another thread could
        write a page while it is copied. Empty when guest memory runs short
        (the pages are shared instead).
        """
        if self.users != 1 or not FORK_COPY_PAGES or not self.pages:
            return {}, True
        leaves_with = self.address_space.leaves_with
        writable = self._exclusive_private([gva >> PAGE_SHIFT for gva in leaves_with(PTE_RW)])
        keep_entries = len(writable) <= FORK_COPY_PAGES
        if not keep_entries:
            writable = self._exclusive_private([gva >> PAGE_SHIFT
                                                for gva in leaves_with(PTE_RW | PTE_DIRTY)])
        chosen = writable[:FORK_COPY_PAGES]
        if self.child_wrote and len(chosen) < FORK_COPY_PAGES:
            taken = set(chosen)
            hints = self._exclusive_private(sorted(self.child_wrote.difference(taken)))
            chosen += hints[:FORK_COPY_PAGES - len(chosen)]
        copies = {}
        try:
            for vpn in chosen:
                copies[vpn] = self.memory.alloc_frame()
        except OutOfGuestMemory:
            self.memory.put_frames(copies.values())
            return {}, True
        return copies, keep_entries

    def _exclusive_private(self, vpns: list[int]) -> list[int]:
        """Those of ``vpns`` (sorted) that are present in a private writable VMA
        (not MADV_DONTFORK, not the sentry's) with a frame only this process maps."""
        pages, refcount = self.pages, self.memory.refcount
        found = []
        vma = None
        for vpn in vpns:
            gpa = pages.get(vpn)
            if gpa is None or refcount(gpa) != 1:
                continue
            gva = vpn << PAGE_SHIFT
            if vma is None or not vma.start <= gva < vma.end:
                vma = self.find_vma(gva)
                if vma is None:
                    continue
            if not (vma.shared or vma.dontfork or vma.hidden or not vma.prot & PROT_WRITE):
                found.append(vpn)
        return found

    def abandon(self) -> None:
        """destroy() at the sandbox's end, when kvmsentry exits next
        (Kernel.free_at_exit False): the VMAs go, so a shared mapping of a
        host file writes back as at munmap, but the frames and the
        page-table tree stay for the host to reclaim with the whole guest
        mapping at exit. Freeing a 1 GiB guest frame by frame took ~80 ms
        of Python and ~130 ms of MADV_DONTNEED (KVM's MMU notifier)."""
        self.vmas.clear()
        self._starts.clear()

    def destroy(self) -> None:
        """Free every frame and the page-table tree (exit, execve)."""
        if self.forked_from is None:  # a copy made by fork adds little: not noted
            self._note_working_set()
        parent = self.forked_from() if self.forked_from is not None else None
        if parent is not None and FORK_COPY_PAGES:
            # What this child of a fork wrote, for the parent's next fork.
            wrote = self.address_space.leaves_with(PTE_RW | PTE_DIRTY)
            parent.child_wrote = {gva >> PAGE_SHIFT for gva in wrote[:FORK_COPY_PAGES]}
        self.memory.put_frames(self.pages.values())
        self.pages.clear()
        self.cow.clear()
        self.vmas.clear()
        self._starts.clear()
        self.address_space.destroy()
