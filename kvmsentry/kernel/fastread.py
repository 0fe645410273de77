"""The exit-free read(2) of cached regular files: the sentry's side.

busybox sha256sum reads a file 4 KiB at a time; each read(2) was a VM
exit (~28 µs here) plus the sentry's Python, against a ~1.2 s native run
of 65,537 reads (DESIGN.md, BENCHMARKS.md "Issue 6: exit budget"). This
serves such reads inside the guest, natively, the way the getpid family
is served (guest/runtime.S vcpu_syscall_entry):

* The sentry maps the file's page-cache frames read-only into a hidden
  *window* of the reading process's own address space (a MAP_SHARED,
  PROT_READ file VMA that /proc/self/maps does not show and fork does not
  copy), and keeps a per-process *fast-read page* (one page at
  ``page_gva``, after the vDSO): an entry per fd below MAX_FD, {window
  address (0: not served), file size, file offset}, a count of served
  reads, and the trampoline's scratch stack at its top.
* The LSTAR stub sends read(2) (nr 0) to the vDSO's __kvmsentry_fast_read
  (guest/vdso.c) through a sentry-written iret frame whose RSP is the
  top of that page. In ring 3 the trampoline copies min(count, size -
  offset) bytes from the window to the buffer, advances the offset and
  returns to the caller. Anything it does not serve leaves through its
  own `out` on the syscall port with the call's registers: the sentry
  runs it as any read(2).
* A page of the window not mapped yet, or a bad buffer, faults in ring 3:
  the sentry maps the window's pages (:data:`WINDOW_FAULT_PAGES` at once)
  and rolls the call back to the exit path (Context.fast_read_unwind),
  which gives Linux's answer (EFAULT, a short read). A kick (a signal for
  the task) does the same before the trampoline's commit and finishes the
  call after it. A whole 2 MiB block of a host file is one 2 MiB page
  read in one go (pagecache.HostMapping.read_huge) into the frames of
  the block two behind, which leaves the window and the cache
  (MemoryManager.take_huge: fresh guest memory costs the host a page
  fault per 4 KiB): a sequential read of a large file takes one exit per
  2 MiB and keeps two blocks.
* The LSTAR stub sends only the fds whose bit is set in the served-fd
  mask (in the vCPU's read-only frame page) to the trampoline; every
  other read exits as before, without a detour through ring 3.

Exactness: an entry exists only while the open file description (OFD) is
reachable through exactly one fd (``file.refs == 1``), of a process whose
memory has one task and whose fd table is not shared; its offset lives in
the entry then (the host fd's offset is stale). The entry is *taken back*
(offset moved back to the OFD, entry cleared) whenever anything else
touches the OFD: the process's own syscalls on the fd (FdTable.get: lseek,
the exit path's read, fstat, ...), a dup or fork (a second reference),
close or dup2 over the fd, execve and exit (the memory goes), and clone
of a thread or a vfork child. Every one of those runs on the owning task's
own thread while it is in the sentry, so the trampoline is never running
meanwhile. /proc/PID/fdinfo of another process reads the entry's offset
without taking it back. The next read through the exit path serves the
fd again (:func:`after_read`).

Files served: host regular files (HostFile; their page cache is the
immutable HostMapping: a file changed on the host after it was first
cached reads as cached, as its mmap would), and in-memory regular files
(tmpfs, overlay copies: RegularFile, InodeMapping), whose every write and
truncate, by any process, goes through InodeMapping.refresh, which gives
each entry the new size (:meth:`FastRead.file_changed`; the window maps
the cached frames, which hold the new data already) or, for a file grown
past its window, marks the entry unserved. Not O_DIRECT, not fds >=
MAX_FD, not files larger than guest memory / MAX_FILE_FRACTION.

Costs kept: a window keeps the pages it mapped (and so cached) until its
fd closes, but for the 2 MiB blocks a sequential reader left behind; then
it is kept for a later open of the same file, up to RETAINED_WINDOW_BYTES
per process, and goes with the memory (exit, execve): unmapping a window
page by page costs ~50 ms per 64 MiB mapped.

Isolation (the trade-off): the window and the fast-read page are mapped
in the reading process only, and the page is writable by it (the
trampoline runs in ring 3 and must advance the offset). A process can
therefore rewrite its own entries and scratch stack: point a window
elsewhere in its own memory, claim a larger size, set any offset. None of
that reaches beyond the process: the trampoline runs with the process's
own privileges on its own page tables (a bogus window faults, and the
fault takes the exit path); ring 0 loads nothing from the page (the read
frame is in the read-only frame page); the sentry reads the page back as
guest input only: an offset taken back is used if it is a valid off_t
(0 <= offset < 2**63), as lseek(SEEK_SET) would, else ignored; the
scratch registers it restores on a rollback are the process's own
registers; the served-read count feeds --profile only. The sentry holds
its own reference on the page's frame, so a process that unmaps the page
cannot make the sentry read or write a frame given to someone else.
"""

from __future__ import annotations

import collections
import struct
import weakref

from kvmsentry.kernel import sched
from kvmsentry.vm.x86 import HUGE_PAGE_SIZE, PAGE_SIZE

# guest/vdso.c: FR_MAX_FD, the entry layout, FR_COUNT_OFFSET.
MAX_FD = 64
ENTRY = struct.Struct("<3Q")  # window address, file size, file offset (bytes)
ENTRY_SIZE = 32
COUNT_OFFSET = 0xF00
# Pages of a window mapped per fault in it when its 2 MiB block cannot be
# one 2 MiB page (the file's tail, pages cached already): a sequential
# read of a large file takes one fault per 2 MiB either way.
WINDOW_FAULT_PAGES = 512
# A window keeps the pages it mapped until its fd closes: files larger
# than guest memory / MAX_FILE_FRACTION are not served.
MAX_FILE_FRACTION = 4
# A file is served from a read on only when this many bytes follow its offset.
MIN_REMAINING = 64 << 10
# Bytes of windows kept mapped after their fds closed (FastRead.retired).
RETAINED_WINDOW_BYTES = 512 << 20
_OFF_T_MAX = (1 << 63) - 1


class FastRead:
    """One address space's fast-read page, its served fds and its file windows.

    ``page_gva``: the page's guest address (``page_gpa`` its frame, on
    which this object holds a reference). ``served``: {File: fd} of the
    entries set now. ``windows``: {File: (Vma, FileMapping)} mapped for
    the files served so far (kept when an entry is taken back, so that a
    file served again needs no new mapping; unmapped when its fd closes).
    """

    def __init__(self, kernel, mm, page_gva: int):
        from kvmsentry.kernel.mm import PROT_READ, PROT_WRITE
        self.kernel = kernel
        self.mm = mm
        self.page_gva = page_gva
        vma = mm.map_region(page_gva, PAGE_SIZE, PROT_READ | PROT_WRITE, name="[fastread]")
        vma.dontfork = True
        vma.hidden = True
        mm.populate(page_gva, page_gva + PAGE_SIZE)
        self.page_vma = vma
        self.page_gpa = mm.pages[page_gva >> 12]
        mm.memory.get_frame(self.page_gpa)
        self.view = mm.memory.view
        self.served: dict = {}
        self.windows: dict = {}
        # Windows of files whose fd closed: {FileMapping: Vma}, oldest first,
        # kept (with their pages) for a file opened again and unmapped only
        # beyond RETAINED_WINDOW_BYTES or with the memory (unmapping a large
        # window page by page costs more than the whole read: ~50 ms per 64 MiB).
        self.retired: collections.OrderedDict = collections.OrderedDict()
        self.retired_bytes = 0
        # Files not served again: their window ran out of guest memory.
        self.refused = weakref.WeakSet()
        self.fds = None
        # The vCPU of the one task using this memory, and the fds it serves (a bit each).
        self.context = None
        self.mask = 0

    # -- entries -------------------------------------------------------------
    def serve(self, task, fd: int, file) -> bool:
        """Set fd ``fd``'s entry for ``file`` (the offset moves into it); False if it cannot."""
        from kvmsentry.kernel.fd import SEEK_CUR
        from kvmsentry.kernel.mm import MmError, PROT_READ, page_align_up
        from kvmsentry.kernel.pagecache import mapping_of_file, page_cache_of
        mm = self.mm
        if mm.find_vma(self.page_gva) is not self.page_vma:
            return False  # the process unmapped the page: serve nothing more
        try:
            mapping = mapping_of_file(page_cache_of(mm.memory), file)
        except OSError:
            return False
        size = mapping.size()
        if size <= 0 or size > mm.memory.size // MAX_FILE_FRACTION or file in self.refused:
            return False
        window = self.windows.get(file)
        if window is not None:
            vma, old_mapping = window
            if (old_mapping is not mapping or vma.end - vma.start < size
                    or mm.find_vma(vma.start) is not vma):
                self._unmap_window(file)
                window = None
        if window is None:
            old = self.retired.pop(mapping, None)
            if old is not None:  # a window of the same file, left by a closed fd
                self.retired_bytes -= old.end - old.start
                if old.end - old.start >= size and mm.find_vma(old.start) is old:
                    window = self.windows[file] = (old, mapping)
                else:
                    self._unmap(old)
        if window is None:
            length = page_align_up(size)
            if not mapping.immutable:  # room to grow (an appended file keeps its window)
                length = page_align_up(max(size + (size >> 2), size + (1 << 20)))
            try:  # 2 MiB aligned: whole 2 MiB blocks of the file map as 2 MiB pages
                start = mm.get_unmapped_area(length + HUGE_PAGE_SIZE - PAGE_SIZE)
            except MmError:
                return False
            start = (start + HUGE_PAGE_SIZE - 1) & ~(HUGE_PAGE_SIZE - 1)
            vma = mm.map_file(start, length, PROT_READ, mapping, 0, shared=True, may_write=False,
                              name=file.guest_path.decode(errors="replace"))
            vma.dontfork = True
            vma.hidden = True
            self.windows[file] = (vma, mapping)
            if not mapping.immutable:
                if mapping.fast_readers is None:
                    mapping.fast_readers = weakref.WeakSet()
                mapping.fast_readers.add(self)
        else:
            vma = window[0]
        offset = file.lseek(0, SEEK_CUR)
        ENTRY.pack_into(self.view, self.page_gpa + fd * ENTRY_SIZE, vma.start, size, offset)
        self.served[file] = fd
        file.fast = self
        self.fds = task.fds
        ctx = task.context
        if ctx is not self.context or not ctx.fast_read_on():
            self.attach(task)
        self._set_mask(self.mask | 1 << fd)
        return True

    def _set_mask(self, mask: int) -> None:
        self.mask = mask
        if self.context is not None:
            self.context.set_fast_read_fds(mask)

    def attach(self, task) -> None:
        """Point ``task``'s vCPU read frame at this page and its vDSO's trampoline."""
        from kvmsentry.kernel.kernel import VVAR_GVA
        ctx = task.context
        vma = self.mm.find_vma(VVAR_GVA + PAGE_SIZE)
        if ctx is None or vma is None or vma.name != "[vdso]":
            return
        if self.context is not None and self.context is not ctx:
            self.context.set_fast_read_fds(0)
        ctx.set_fast_read(vma.start + self.kernel.platform.vdso.fast_read_offset,
                          self.page_gva, self.page_gpa)
        self.context = ctx

    def take_back(self, file) -> None:
        """Move ``file``'s offset from its entry back to the file and clear the entry.

        The entry's offset is guest input: used if it is a valid off_t.
        """
        from kvmsentry.kernel.fd import SEEK_SET
        from kvmsentry.kernel.syscalls.table import SyscallError
        fd = self.served.pop(file)
        file.fast = None
        self._set_mask(self.mask & ~(1 << fd))
        at = self.page_gpa + fd * ENTRY_SIZE
        _, _, offset = ENTRY.unpack_from(self.view, at)
        ENTRY.pack_into(self.view, at, 0, 0, 0)
        if offset <= _OFF_T_MAX:
            try:
                file.lseek(offset, SEEK_SET)
            except SyscallError:
                pass

    def file_changed(self, mapping) -> None:
        """``mapping``'s file was written or resized (InodeMapping.refresh), maybe by another process.

        Each entry serving it gets the new size with one 8-byte store (the
        window maps the cached frames, which hold the new data already);
        a file grown past its window gets window 0 instead: its reads
        leave through the exit path until its owner takes the entry back
        (the offset stays in the entry, so no take-back is needed from
        here, where the owner may be running).
        """
        if not self.page_gpa:
            return
        size = mapping.size()
        for file, fd in self.served.items():
            window = self.windows.get(file)
            if window is None or window[1] is not mapping:
                continue
            vma = window[0]
            at = self.page_gpa + fd * ENTRY_SIZE
            if size <= vma.end - vma.start:
                struct.pack_into("<Q", self.view, at + 8, size)
            else:
                struct.pack_into("<Q", self.view, at, 0)

    def offset(self, file) -> int:
        """The offset in ``file``'s entry now (a snapshot; /proc/PID/fdinfo)."""
        _, _, offset = ENTRY.unpack_from(self.view, self.page_gpa + self.served[file] * ENTRY_SIZE)
        return offset if offset <= _OFF_T_MAX else 0

    def take_back_all(self) -> None:
        for file in list(self.served):
            self.take_back(file)

    def give_up(self, vma) -> None:
        """The window ``vma`` ran out of guest memory: unmap it, never serve its file again."""
        for file, (window, _) in list(self.windows.items()):
            if window is vma:
                if file.fast is self:
                    self.take_back(file)
                self._unmap_window(file)
                self.refused.add(file)

    def _unmap_window(self, file) -> None:
        vma, _ = self.windows.pop(file)
        self._unmap(vma)

    def _unmap(self, vma) -> None:
        """Unmap a window that is in neither ``windows`` nor ``retired`` any more."""
        if self.mm.find_vma(vma.start) is vma:
            self.mm.unmap_range(vma.start, vma.end)

    def unmapped(self, start: int, end: int) -> None:
        """MemoryManager.unmap_range removed hidden VMAs in [start, end) (BKL held,
        on the owner's own thread: munmap, mmap or mremap over them, or ours).

        A window gone: its entries are taken back and it is forgotten (the
        next read maps a new one). The page gone: nothing is served any more.
        """
        def hit(vma):
            return vma.start < end and start < vma.end
        if hit(self.page_vma):
            self.take_back_all()
            self.windows.clear()
            self.retired.clear()
            self.retired_bytes = 0
            if self.context is not None:
                self.context.set_fast_read(0)
            return
        for file, (vma, _) in list(self.windows.items()):
            if hit(vma):
                if file.fast is self:
                    self.take_back(file)
                del self.windows[file]
        for mapping, vma in list(self.retired.items()):
            if hit(vma):
                del self.retired[mapping]
                self.retired_bytes -= vma.end - vma.start

    def retire(self, file) -> None:
        """``file``'s fd closes: keep its window for a later open of the same file."""
        vma, mapping = self.windows.pop(file)
        old = self.retired.pop(mapping, None)
        if old is not None:
            self.retired_bytes -= old.end - old.start
            self._unmap(old)
        self.retired[mapping] = vma
        self.retired_bytes += vma.end - vma.start
        while self.retired_bytes > RETAINED_WINDOW_BYTES:
            _, oldest = self.retired.popitem(last=False)
            self.retired_bytes -= oldest.end - oldest.start
            self._unmap(oldest)

    def reads(self) -> int:
        """Reads the trampoline served so far (its counter: guest-written, for --profile only)."""
        return struct.unpack_from("<Q", self.view, self.page_gpa + COUNT_OFFSET)[0]

    def destroy(self) -> None:
        """The memory goes (execve, exit): take every entry back, drop the page's reference."""
        self.take_back_all()
        self.kernel.fast_reads += self.reads() & 0xFFFF_FFFF
        if self.fds is not None and getattr(self.fds, "fastread", None) is self:
            self.fds.fastread = None
        self.windows.clear()
        self.retired.clear()
        self.mm.memory.put_frame(self.page_gpa)
        self.page_gpa = 0


# -- hooks ---------------------------------------------------------------------
def after_read(task, fd: int, file, n: int, count: int) -> None:
    """sys_read's hook after a read of ``n`` of ``count`` bytes through the exit
    path: serve ``fd`` from now on if it can be and it pays.

    Conditions: a regular file whose reads can come from the page cache
    (File.fast_readable), fd below MAX_FD, its description referenced by
    this one fd, a process with one task and its own fd table, fast
    syscalls on (not --strace); and reads that look worth it: this one
    was full and at least MIN_REMAINING bytes follow the offset (a small
    file read whole by one or two calls costs less through exits than a
    new window and its fault), unless the file has a window already.
    """
    if n != count or n == 0 or not 0 <= fd < MAX_FD or file.refs != 1 or not file.fast_readable():
        return
    kernel = task.kernel
    if kernel is None or not kernel.platform.fast_syscalls:
        return
    mm = task.mm
    fds = task.fds
    if mm.users != 1 or getattr(fds, "users", 1) != 1 or len(task.process.tasks) != 1:
        return
    fr = getattr(mm, "fastread", None)
    if fr is None or file not in fr.windows:
        from kvmsentry.kernel.fd import SEEK_CUR
        from kvmsentry.kernel.syscalls.table import SyscallError
        try:
            if file.stat().st_size - file.lseek(0, SEEK_CUR) < MIN_REMAINING:
                return
        except SyscallError:
            return
    if fr is None:
        if getattr(mm, "fastread_refused", False):
            return
        from kvmsentry.kernel.kernel import VVAR_GVA
        vdso = mm.find_vma(VVAR_GVA + PAGE_SIZE)
        if vdso is None or vdso.name != "[vdso]" or not mm.is_free(vdso.end, vdso.end + PAGE_SIZE):
            mm.fastread_refused = True
            return
        fr = mm.fastread = FastRead(kernel, mm, vdso.end)
    if fds is not fr.fds and fr.fds is not None and fr.served:
        return
    fds.fastread = fr
    fr.serve(task, fd, file)


def touched(file) -> None:
    """FdTable.get's hook: the owning process uses ``file`` in the sentry: take its entry back.

    Another process looking at the fd (/proc/PID/fd, fdinfo) leaves it.
    """
    fr = file.fast
    task = sched.current()
    if task is not None and task.mm is fr.mm:
        fr.take_back(file)


def shared(file) -> None:
    """FdTable._set's hook: ``file`` gained a second reference (dup, fork): take it back."""
    file.fast.take_back(file)


def closing(fds, file) -> None:
    """FdTable's hook before an fd of ``file`` closes (close, dup2 over it, exec, exit)."""
    if getattr(file, "fast", None) is not None:
        file.fast.take_back(file)
    fr = getattr(fds, "fastread", None)
    if fr is not None and file in fr.windows and fr.page_gpa:
        fr.retire(file)


def detach(fds) -> None:
    """FdTable.close_all's hook (exit): take every entry back; leave the windows to the memory's end."""
    fr = getattr(fds, "fastread", None)
    if fr is not None:
        fr.take_back_all()
        fds.fastread = None


def drop_entries(mm) -> None:
    """clone of a thread or a vfork child: two tasks share ``mm``: serve nothing in it."""
    fr = getattr(mm, "fastread", None)
    if fr is not None:
        fr.take_back_all()


def drop_mm(mm) -> None:
    """``mm`` is being destroyed (execve, exit)."""
    fr = getattr(mm, "fastread", None)
    if fr is not None:
        mm.fastread = None
        fr.destroy()


def fault(kernel, task) -> None:
    """A CPU exception inside the trampoline (BKL held).

    A page fault in a window maps its 2 MiB block (or WINDOW_FAULT_PAGES
    of it); any other page fault is resolved as usual if it can be. A
    resolved fault resumes the trampoline where it faulted, as any page
    fault resumes the program, unless a signal is pending (its frame must
    be built on the caller's state, not the trampoline's) or the same
    fault comes back at once. Otherwise the call is rolled back and run
    through the exit path (its answer is Linux's: EFAULT for a bad
    buffer), or finished if it had committed.
    """
    from kvmsentry.platform.kvm import TRAP_SYSCALL
    from kvmsentry.vm import x86
    from kvmsentry.vm.memory import OutOfGuestMemory
    ctx = task.context
    f = ctx.fault
    resolved = False
    if f.vector == x86.X86_TRAP_PF:
        mm = task.mm
        vma = mm.find_vma(f.cr2)
        fr = getattr(mm, "fastread", None)
        if (vma is not None and fr is not None and vma.hidden and vma is not fr.page_vma
                and not f.error_code & x86.X86_PF_WRITE):
            # A window: its 2 MiB block as one 2 MiB page, else page by page.
            span = WINDOW_FAULT_PAGES * PAGE_SIZE
            start = max(vma.start, f.cr2 & ~(span - 1))
            block = f.cr2 & ~(HUGE_PAGE_SIZE - 1)
            try:  # reusing the frames of the block two behind (a sequential reader is done with it)
                if not mm.map_file_huge(vma, block, block - 2 * HUGE_PAGE_SIZE):
                    mm.populate(start, min(vma.end, start + span))
                resolved = (f.cr2 >> 12) in mm.pages
            except OutOfGuestMemory:
                fr.give_up(vma)
        else:
            try:
                resolved = mm.handle_fault(f.cr2, write=bool(f.error_code & x86.X86_PF_WRITE),
                                           execute=bool(f.error_code & x86.X86_PF_INSTR)) == 0
            except OutOfGuestMemory:
                pass  # the exit path's read answers (EFAULT, or the memory comes back)
        key = (ctx.user_rip, f.cr2, mm.drops)
        if resolved and key != task.fast_read_fault and not task.signal_pending():
            task.fast_read_fault = key
            return  # resume the trampoline at the faulting instruction
    task.fast_read_fault = None
    if ctx.fast_read_unwind(ctx.user_rip) == TRAP_SYSCALL:
        kernel.syscall(task)


__all__ = ["FastRead", "MAX_FD", "after_read", "touched", "shared", "closing", "drop_entries",
           "drop_mm", "fault"]
