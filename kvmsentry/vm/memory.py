"""Guest-physical memory: one sparse host mapping and a frame allocator.

The whole guest-physical space is one anonymous host mapping made with
MAP_NORESERVE, registered as KVM memory slot 0 at guest-physical 0. The
host commits a page only when someone (guest or sentry) touches it, and
``free_frame`` gives it back with MADV_DONTNEED, so a freed frame reads as
zeros when it is handed out again.

Frames are 4 KiB, named by their guest-physical address (``_gpa``). Each
has a reference count so copy-on-write sharing can count its users.

Nothing at start-up is proportional to the guest's memory size: frames are
handed out from the bottom, and the reference counts and the part KVM
knows of (``expose``, one memory slot per step) grow with the highest
frame handed out, doubling from EXTENT_MIN. A 4 GiB guest that uses a few
MiB costs a 64 MiB slot and 32 KiB of counts, not a 4 GiB slot (KVM
allocates per-page metadata for a slot: ~4-9 ms here) and 2 MiB of counts.
"""

from __future__ import annotations

import array
import mmap
import os
import threading

from kvmsentry.vm._kvm import ffi, lib
from kvmsentry.vm.x86 import PAGE_SHIFT, PAGE_SIZE


_ONES_512 = array.array("H", [1]) * 512
# madvise(2) advice (Linux 5.14, include/uapi/asm-generic/mman-common.h);
# Python's mmap module does not name it.
MADV_POPULATE_WRITE = 23
# alloc_huge has the host back the next 2 MiB block on another thread
# (_Prefetcher); KVMSENTRY_PREFETCH_HUGE=0 turns that off (to measure it).
PREFETCH_HUGE = os.environ.get("KVMSENTRY_PREFETCH_HUGE", "1") != "0"
# The first extent of guest memory made known to KVM (bytes); each further
# one doubles what is exposed, up to the guest's size.
EXTENT_MIN = 64 << 20


class OutOfGuestMemory(MemoryError):
    """No free guest-physical frame is left (the guest's memory limit)."""


class MemorySlotRefused(OutOfGuestMemory, OSError):
    """KVM refused the memory slot that would expose more frames
    (KVM_SET_USER_MEMORY_REGION failed): an OSError from the host, and to
    every allocation's caller no frame, as when memory is full."""


class GuestMemory:
    """``size`` bytes of guest-physical memory at GPA 0 (page multiple).

    ``view`` is a writable memoryview over all of it, indexed by GPA;
    ``hva`` the host virtual address of GPA 0 (for
    KVM_SET_USER_MEMORY_REGION).

    ``expose(gpa, length)`` (optional) is called before any frame in
    [gpa, gpa + length) is handed out, with page-aligned, contiguous,
    ascending ranges that end up covering [0, ``exposed``): the platform
    registers each as a KVM memory slot. It returns the length it
    exposed, which may be more (up to the end of memory). It may raise
    (an OSError): the allocation that needed the range then fails with
    that error and nothing is handed out from it.
    """

    def __init__(self, size: int, expose=None):
        if size % PAGE_SIZE:
            raise ValueError("guest memory size must be a multiple of 4 KiB")
        self.size = size
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | lib.MAP_NORESERVE,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
        if os.environ.get("KVMSENTRY_THP"):
            # Experimental: host transparent huge pages behind guest memory.
            # With 2 MiB guest pages a shadow MMU can then map 2 MiB at once;
            # measured bimodal here (BENCHMARKS.md, issue 5/6), so off by default.
            self._map.madvise(mmap.MADV_HUGEPAGE)
        self.view = memoryview(self._map)
        self.hva = int(ffi.cast("uintptr_t", ffi.from_buffer(self._map)))
        self.nframes = size >> PAGE_SHIFT
        # Reference counts of frames [0, exposed >> PAGE_SHIFT); _expose grows it.
        self._refcount = array.array("H")
        self.exposed = 0
        self.expose = expose
        self._free: list[int] = []
        self._next = 0  # frames below this were handed out at least once
        self.frames_in_use = 0
        # Frames released by threads that do not hold the kernel lock
        # (free_later); the next allocation frees them.
        self._deferred: list[int] = []
        self._deferred_lock = threading.Lock()
        # Called with a number of frames wanted when none is free (the page
        # cache's shrink); returns how many it freed.
        self.reclaim = None
        self._prefetcher: _Prefetcher | None = None

    @property
    def closed(self) -> bool:
        return self._map.closed

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.stop()
        self.view.release()
        self._map.close()

    # -- frames --------------------------------------------------------
    def _expose(self, end_frame: int) -> None:
        """Make frames below ``end_frame`` (<= nframes) known: counted and
        exposed to the guest, doubling the extent (at least EXTENT_MIN).
        MemorySlotRefused (an OutOfGuestMemory) when KVM refuses the slot,
        so every allocation's caller answers it as it answers a full memory."""
        start = self.exposed >> PAGE_SHIFT
        end = min(self.nframes, max(end_frame, 2 * start, EXTENT_MIN >> PAGE_SHIFT))
        if self.expose is not None:
            try:
                length = self.expose(start << PAGE_SHIFT, (end - start) << PAGE_SHIFT)
            except OSError as e:
                raise MemorySlotRefused(f"KVM refused guest memory beyond {start << PAGE_SHIFT:#x}: {e}") from e
            end = max(end, start + (length >> PAGE_SHIFT))
        self._refcount.frombytes(bytes(2 * (end - start)))
        self.exposed = end << PAGE_SHIFT

    def reserve(self, nframes: int) -> int:
        """Hand out ``nframes`` contiguous frames from the bottom (boot time only).

        Returns the GPA of the first. Used for the runtime's fixed pages.
        """
        if self._free or self._next + nframes > self.nframes:
            raise OutOfGuestMemory("reserve() must run before any frame is freed")
        gpa = self._next << PAGE_SHIFT
        if (self._next + nframes) << PAGE_SHIFT > self.exposed:
            self._expose(self._next + nframes)
        for frame in range(self._next, self._next + nframes):
            self._refcount[frame] = 1
        self._next += nframes
        self.frames_in_use += nframes
        return gpa

    def alloc_frame(self) -> int:
        """A zeroed 4 KiB frame with reference count 1; returns its GPA.

        Raises OutOfGuestMemory when every frame is in use and ``reclaim``
        (if set) frees none.
        """
        if self._deferred:
            self.free_deferred()
        if not self._free and self._next >= self.nframes and self.reclaim is not None:
            self.reclaim(64)
        if self._free:
            frame = self._free.pop()
        elif self._next < self.nframes:
            frame = self._next
            if frame << PAGE_SHIFT >= self.exposed:
                self._expose(frame + 1)
            self._next += 1
        else:
            raise OutOfGuestMemory("guest memory exhausted")
        self._refcount[frame] = 1
        self.frames_in_use += 1
        return frame << PAGE_SHIFT

    def alloc_huge(self) -> int | None:
        """512 contiguous zeroed frames, 2 MiB aligned, each with reference count 1.

        Returns the GPA of the first, or None when no never-used aligned
        2 MiB run is left (freed frames are not coalesced). Frames are
        freed one by one with put_frame, as any other.
        """
        if self._deferred:
            self.free_deferred()
        first = (self._next + 511) & ~511
        if first + 512 > self.nframes:
            return None
        if (first + 512) << PAGE_SHIFT > self.exposed:
            self._expose(first + 512)
        self._free.extend(range(self._next, first))  # never touched: still zero
        self._refcount[first:first + 512] = _ONES_512
        if self._prefetcher is None or not self._prefetcher.claim(first << PAGE_SHIFT):
            self._populate(first << PAGE_SHIFT, 512 << PAGE_SHIFT)
        if first + 1024 <= self.nframes and PREFETCH_HUGE:
            # The next alloc_huge will most likely return the block just
            # above: have the host back it meanwhile (see _Prefetcher).
            if self._prefetcher is None:
                self._prefetcher = _Prefetcher(self.hva)
            self._prefetcher.request((first + 512) << PAGE_SHIFT, 512 << PAGE_SHIFT)
        self._next = first + 512
        self.frames_in_use += 512
        return first << PAGE_SHIFT

    def _populate(self, gpa: int, length: int) -> None:
        """Have the host back [gpa, gpa+length) now, in one madvise(MADV_POPULATE_WRITE).

        A 2 MiB guest page is about to be touched page by page; under a
        shadow MMU (PVM) each first touch of a host page the host has not
        backed yet costs a host page fault on top of the shadow fault:
        populating the 512 pages in one call halved the `pagefault`
        workload's time here (5.2 -> 2.5 us per 4 KiB page, native 1.6).
        The host commits the whole 2 MiB at once, which the guest's frame
        count already charges. Older kernels (EINVAL): left lazy.
        """
        try:
            self._map.madvise(MADV_POPULATE_WRITE, gpa, length)
        except OSError:
            pass

    def get_frame(self, gpa: int) -> None:
        """Take one more reference on the frame at ``gpa``."""
        self._refcount[gpa >> PAGE_SHIFT] += 1

    def get_frames(self, gpas) -> None:
        """get_frame for each frame GPA of ``gpas`` (fork's shared pages)."""
        refcount = self._refcount
        for gpa in gpas:
            refcount[gpa >> PAGE_SHIFT] += 1

    def put_frames(self, gpas) -> None:
        """put_frame for many frames; the freed ones go back to the host in
        runs of contiguous frames (one madvise per run, not per page)."""
        refcount = self._refcount
        freed = []
        for gpa in gpas:
            frame = gpa >> PAGE_SHIFT
            count = refcount[frame] - 1
            refcount[frame] = count
            if count == 0:
                freed.append(frame)
        if not freed:
            return
        freed.sort()
        start = prev = freed[0]
        for frame in freed[1:]:
            if frame != prev + 1:
                self._map.madvise(mmap.MADV_DONTNEED, start << PAGE_SHIFT, (prev + 1 - start) << PAGE_SHIFT)
                start = frame
            prev = frame
        self._map.madvise(mmap.MADV_DONTNEED, start << PAGE_SHIFT, (prev + 1 - start) << PAGE_SHIFT)
        self._free.extend(freed)
        self.frames_in_use -= len(freed)

    def free_later(self, gpas) -> None:
        """put_frames for a caller that may not hold the kernel lock.

        Every other frame operation runs under the kernel lock
        (kvmsentry/kernel/sched.py BKL); a vCPU thread confirming a guest
        flush, or a garbage-collector finalizer, may run on any thread at
        any time. Their frames are queued here and dropped by the next
        allocation, which holds the lock.
        """
        with self._deferred_lock:
            self._deferred.extend(gpas)

    def free_deferred(self) -> None:
        """Free what free_later queued (kernel lock held; allocations do it first)."""
        with self._deferred_lock:
            gpas, self._deferred = self._deferred, []
        self.put_frames(gpas)

    def refcount(self, gpa: int) -> int:
        """The frame's reference count (0: free, or never handed out)."""
        frame = gpa >> PAGE_SHIFT
        return self._refcount[frame] if frame < len(self._refcount) else 0

    def put_frame(self, gpa: int) -> None:
        """Drop one reference; the last one frees the frame (zeroed for reuse)."""
        frame = gpa >> PAGE_SHIFT
        count = self._refcount[frame] - 1
        self._refcount[frame] = count
        if count == 0:
            self._map.madvise(mmap.MADV_DONTNEED, gpa, PAGE_SIZE)
            self._free.append(frame)
            self.frames_in_use -= 1

    # -- access --------------------------------------------------------
    def read(self, gpa: int, length: int) -> bytes:
        return self.view[gpa:gpa + length].tobytes()

    def write(self, gpa: int, data) -> None:
        self.view[gpa:gpa + len(data)] = data

    def zero(self, gpa: int, length: int) -> None:
        self.view[gpa:gpa + length] = bytes(length)


class _Prefetcher:
    """A host thread that populates the 2 MiB block alloc_huge will hand out next.

    Huge frames come from the never-used top of guest memory in ascending
    order, so after one the next is known. Populating a block (the host
    allocates and zeroes its 512 pages: ~0.6-1 ms here) is most of what a
    first touch of 2 MiB costs; done on this thread, it overlaps the guest
    writing the block before, on another core when one is idle. The work
    is the same, plus the hand-offs (pagefault: ~5% more CPU), so it pays
    only when a core is free (BENCHMARKS.md, issue 6, fixed costs).
    A block it populated that is never handed out as a whole stays zero
    (populating writes nothing), so the allocator may hand its frames out
    one by one. madvise runs through ctypes, which releases the GIL
    (mmap.madvise holds it). Errors (EINVAL before Linux 5.14, ENOMEM) are
    ignored: alloc_huge populates what it hands out itself.
    """

    def __init__(self, hva: int):
        import ctypes  # only for programs that use 2 MiB pages
        self._madvise = ctypes.CDLL(None, use_errno=True).madvise
        self._madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        self._hva = hva
        self._want: tuple[int, int] | None = None
        self._busy = False
        self._current: int | None = None  # the gpa being populated
        self._done: int | None = None  # the gpa populated last
        self._cond = threading.Condition(threading.Lock())
        threading.Thread(target=self._run, daemon=True, name="kvmsentry-prefetch").start()

    def request(self, gpa: int, length: int) -> None:
        """Populate [gpa, gpa + length) soon (replaces a request not started yet)."""
        with self._cond:
            self._want = (gpa, length)
            self._cond.notify_all()

    def claim(self, gpa: int) -> bool:
        """The block at ``gpa`` is being handed out: True once this thread
        has populated it (waiting, without the GIL, if it is at it), False
        when the caller must (not requested, or not started: withdrawn)."""
        with self._cond:
            if self._want is not None and self._want[0] == gpa:
                self._want = None
                return False
            while self._current == gpa:
                self._cond.wait()
            return self._done == gpa

    def stop(self) -> None:
        """End the thread once it is idle (the memory is about to go)."""
        self.drain()
        with self._cond:
            self._want = (0, 0)  # the stop mark
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until no request is pending or being populated (for tests)."""
        with self._cond:
            while self._want is not None or self._busy:
                self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._want is None:
                    self._cond.wait()
                gpa, length = self._want
                self._want = None
                if not length:
                    return
                self._busy = True
                self._current = gpa
            done = self._madvise(self._hva + gpa, length, MADV_POPULATE_WRITE) == 0
            with self._cond:
                self._busy = False
                self._current = None
                self._done = gpa if done else None
                self._cond.notify_all()
