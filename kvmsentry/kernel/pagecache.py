"""The page cache: file pages in guest frames, shared by every mapping of a file.

Linux's ``struct address_space`` (include/linux/fs.h, mm/filemap.c) in
miniature. A ``FileMapping`` holds the cached pages of one file as
``{page index: frame GPA}``; the cache owns one reference on each frame
(GuestMemory reference counts) and every page table that maps it one
more. A file's pages are read on first use (a fault, MAP_POPULATE) and
then shared: MAP_PRIVATE mappings map them read-only and copy on the
first write; MAP_SHARED mappings of in-memory files map the frames
themselves, writable.

Four kinds of mapping:

* ``InodeMapping``: a tmpfs or overlay ``RegularInode`` (keyed by the
  inode object; ``inode.mapping`` points back). The inode's ``data`` is
  the file; a cached frame mirrors its page. Writes through a MAP_SHARED
  writable mapping land in the frame, so those pages are *dirty*: the
  inode copies them back (``sync``) before read(2), write(2) or truncate
  use ``data``, and pushes its own changes into cached frames
  (``refresh``, ``truncate``). That is Linux's coherence of read/write
  with mmap.
* ``HostMapping``: a read-only host file, keyed by its host identity
  (st_dev, st_ino, st_mtime_ns, st_size) so a changed file is a new
  mapping. Pages are read with pread(2) from a host fd the mapping keeps
  (reopened by path after the cache closed it).
* ``HostSharedMapping``: MAP_SHARED of a host file open for writing (a
  rw bind mount), one per (st_dev, st_ino) while mapped; written back to
  the host with pwrite(2) at msync(2) and when its last VMA goes.
* ``AnonMapping``: shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS,
  /dev/zero), shmem's "/dev/zero (deleted)"; its frames are the only
  copy.

Size is bounded: once more than ``limit_pages`` pages are cached, pages
no page table maps (reference count 1) are freed, least recently used
mapping first (``shrink``), dirty ones written back first. GuestMemory
calls ``shrink`` too when it runs out of frames.
"""

from __future__ import annotations

import collections
import errno
import os
import weakref

from kvmsentry.vm.x86 import HUGE_PAGE_SIZE, PAGE_SHIFT, PAGE_SIZE

# Reclaimable cached pages kept before the least recently used are freed.
DEFAULT_LIMIT_PAGES = 32768  # 128 MiB
# Pages read from a file at once (fault-around, MAP_POPULATE, WILLNEED).
READ_CHUNK_PAGES = 256
# Host fds kept open by host mappings (the oldest are closed beyond this).
MAX_OPEN_HOST_FDS = 256


class FileMapping:
    """The cached pages of one file (Linux ``struct address_space``).

    ``pages``: {page index: frame GPA}, one cache reference each.
    ``dirty``: indices whose frame may be newer than the file (written
    through a MAP_SHARED writable mapping). ``mms``: the memory managers
    with a VMA on this file (the reverse map truncate uses). ``dev``,
    ``ino``: what /proc/self/maps prints.
    """

    writable = False  # MAP_SHARED + PROT_WRITE may map the frames themselves
    # The content never changes while mapped (a host file as it was when
    # first mapped): a private page may be copied before it is written.
    immutable = False

    def __init__(self, cache: "PageCache", dev: int, ino: int):
        self.cache = cache
        self.dev = dev
        self.ino = ino
        self.pages: dict[int, int] = {}
        self.dirty: set[int] = set()
        self.mms: weakref.WeakSet = weakref.WeakSet()

    # -- the file --------------------------------------------------------
    def size(self) -> int:
        """The file's size in bytes now."""
        raise NotImplementedError

    def read_page(self, index: int) -> bytes:
        """Up to PAGE_SIZE bytes of the file at page ``index`` (fewer at EOF)."""
        raise NotImplementedError

    def read_run(self, index: int, count: int) -> bytes:
        """Up to ``count`` pages of the file from page ``index`` (one read)."""
        return b"".join(self.read_page(i) for i in range(index, index + count))

    # -- pages -------------------------------------------------------------
    def get_page(self, index: int) -> int:
        """GPA of the frame holding page ``index``, read into the cache if needed.

        The caller takes its own reference (GuestMemory.get_frame) if it
        keeps the frame. Raises OutOfGuestMemory.
        """
        gpa = self.pages.get(index)
        if gpa is None:
            gpa = self._install(index, self.read_page(index))
        return gpa

    def _install(self, index: int, data) -> int:
        cache = self.cache
        gpa = cache.memory.alloc_frame()
        if data:
            cache.memory.view[gpa:gpa + len(data)] = data
        self.pages[index] = gpa
        cache.npages += 1
        cache.touch(self)
        if cache.npages > cache.limit_pages:
            cache.shrink(cache.npages - cache.limit_pages, keep=self)
        return gpa

    def read_pages(self, first: int, count: int) -> None:
        """Read the missing pages of [first, first+count) into the cache with
        one read of the file (fault-around, MADV_WILLNEED)."""
        pages = self.pages
        for chunk in range(first, first + count, READ_CHUNK_PAGES):
            missing = [i for i in range(chunk, min(chunk + READ_CHUNK_PAGES, first + count))
                       if i not in pages]
            if not missing:
                continue
            lo = missing[0]
            data = memoryview(self.read_run(lo, missing[-1] + 1 - lo))
            for index in missing:
                start = (index - lo) << PAGE_SHIFT
                self._install(index, data[start:start + PAGE_SIZE])

    def mark_dirty(self, index: int) -> None:
        """Page ``index`` is mapped writable MAP_SHARED: its frame is the truth now."""
        self.dirty.add(index)

    def writeback(self, index: int) -> None:
        """Copy a dirty frame back to the file (in-memory files only)."""
        self.dirty.discard(index)

    def release(self, index: int) -> None:
        """Drop the cache's reference on page ``index`` (written back first)."""
        if index in self.dirty:
            self.writeback(index)
        gpa = self.pages.pop(index)
        self.cache.npages -= 1
        self.cache.memory.put_frame(gpa)

    def unmap_beyond(self, npages: int) -> None:
        """Remove pages at or beyond ``npages`` from every page table (truncate)."""
        for mm in list(self.mms):
            mm.unmap_file_pages(self, npages)


class InodeMapping(FileMapping):
    """The page cache of an in-memory ``RegularInode`` (tmpfs, overlay copies).

    ``fast_readers``: the kvmsentry.kernel.fastread.FastRead objects that
    serve reads of this file inside the guest (a WeakSet, made on first
    use); every change of the data or the size tells them (refresh).
    """

    writable = True
    fast_readers = None

    def __init__(self, cache: "PageCache", inode):
        super().__init__(cache, inode.dev, inode.ino)
        self.inode = inode

    def size(self) -> int:
        return len(self.inode.data)

    def read_page(self, index: int) -> bytes:
        start = index << PAGE_SHIFT
        return bytes(self.inode.data[start:start + PAGE_SIZE])

    def read_run(self, index: int, count: int) -> bytes:
        start = index << PAGE_SHIFT
        return bytes(self.inode.data[start:start + (count << PAGE_SHIFT)])

    def writeback(self, index: int) -> None:
        self.dirty.discard(index)
        data = self.inode.data
        start = index << PAGE_SHIFT
        n = min(PAGE_SIZE, len(data) - start)
        if n > 0:
            gpa = self.pages[index]
            data[start:start + n] = self.cache.memory.view[gpa:gpa + n]

    def sync(self, offset: int, length: int) -> None:
        """Copy dirty frames overlapping [offset, offset+length) into the inode's data."""
        if not self.dirty or length <= 0:
            return
        first = offset >> PAGE_SHIFT
        last = (offset + length - 1) >> PAGE_SHIFT
        if last - first + 1 > len(self.dirty):
            todo = [i for i in self.dirty if first <= i <= last]
        else:
            todo = [i for i in range(first, last + 1) if i in self.dirty]
        for index in todo:
            self.writeback(index)
            self.dirty.add(index)  # still mapped writable: stays dirty

    def refresh(self, offset: int, length: int) -> None:
        """Copy the inode's data over cached frames of [offset, offset+length).

        Bytes past the end of the file read as zeros (mmap(2): the rest
        of the last page is zero-filled). The fast readers learn the new
        size (every write and truncate comes here).
        """
        if self.fast_readers:
            for reader in list(self.fast_readers):
                reader.file_changed(self)
        if not self.pages or length <= 0:
            return
        data = self.inode.data
        view = self.cache.memory.view
        first = offset >> PAGE_SHIFT
        last = (offset + length - 1) >> PAGE_SHIFT
        for index in range(first, last + 1):
            gpa = self.pages.get(index)
            if gpa is None:
                continue
            start = index << PAGE_SHIFT
            chunk = data[start:start + PAGE_SIZE]
            view[gpa:gpa + len(chunk)] = chunk
            if len(chunk) < PAGE_SIZE:
                view[gpa + len(chunk):gpa + PAGE_SIZE] = bytes(PAGE_SIZE - len(chunk))

    def writably_mapped(self) -> bool:
        """Whether a MAP_SHARED mapping that may write the file exists
        (Linux mapping_writably_mapped: F_SEAL_WRITE is EBUSY then)."""
        return any(vma.mapping is self and vma.shared and vma.may_write
                   for mm in list(self.mms) for vma in mm.vmas)

    def punch_hole(self, offset: int, end: int) -> None:
        """MADV_REMOVE through a shared mapping: fallocate's PUNCH_HOLE."""
        self.inode.punch_hole(offset, end)

    def truncated(self, old_size: int, new_size: int) -> None:
        """The inode's size changed from ``old_size`` to ``new_size`` bytes.

        Pages wholly past the new end leave every page table (a later
        access is SIGBUS, mmap(2)) and the cache; the new last page's
        tail is zeroed.
        """
        npages = (new_size + PAGE_SIZE - 1) >> PAGE_SHIFT
        if any(index >= npages for index in self.pages):
            self.unmap_beyond(npages)
            for index in [i for i in self.pages if i >= npages]:
                self.dirty.discard(index)
                self.release(index)
        lo, hi = min(old_size, new_size), max(old_size, new_size)
        self.refresh(lo, hi - lo)


class AnonMapping(FileMapping):
    """Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, or /dev/zero).

    Linux backs it with an unlinked shmem file (mm/shmem.c
    shmem_zero_setup: "/dev/zero (deleted)" on device 0:1); here the
    cached frames are the only copy, so they are never reclaimed. They
    are freed with the mapping, when its last VMA is gone (the cache does
    not keep it: only VMAs refer to it).
    """

    writable = True
    _next_ino = 1

    def __init__(self, cache: "PageCache", size: int):
        AnonMapping._next_ino += 1
        super().__init__(cache, os.makedev(0, 1), AnonMapping._next_ino)
        self._size = size

    def size(self) -> int:
        return self._size

    def read_page(self, index: int) -> bytes:
        return b""  # a fresh frame is zeros

    def _install(self, index: int, data) -> int:
        gpa = self.cache.memory.alloc_frame()
        self.pages[index] = gpa
        return gpa

    def punch_hole(self, offset: int, end: int) -> None:
        """MADV_REMOVE: the whole pages of [offset, end) read as zeros again."""
        view = self.cache.memory.view
        for index in range((offset + PAGE_SIZE - 1) >> PAGE_SHIFT, end >> PAGE_SHIFT):
            gpa = self.pages.get(index)
            if gpa is not None:
                view[gpa:gpa + PAGE_SIZE] = bytes(PAGE_SIZE)

    def __del__(self):
        # A finalizer runs on whichever thread the collector does, maybe
        # without the kernel lock: the frames are freed by the next allocation.
        memory = self.cache.memory
        if self.pages and not memory.closed:
            memory.free_later(list(self.pages.values()))
        self.pages = {}


class HostMapping(FileMapping):
    """The page cache of a read-only host file, as it was when first mapped."""

    immutable = True

    def __init__(self, cache: "PageCache", host_path: bytes, st: os.stat_result,
                 host_fd: int | None = None):
        super().__init__(cache, st.st_dev, st.st_ino)
        self.host_path = host_path
        self.key = host_key(st)
        self._size = st.st_size
        self.host_fd = host_fd

    def size(self) -> int:
        return self._size

    def read_page(self, index: int) -> bytes:
        return self.read_run(index, 1)

    def _open(self) -> int | None:
        """The host fd, reopened by path if the cache closed it; None when the
        file is gone or replaced since it was mapped (its pages read as zeros)."""
        if self.host_fd is None:
            try:
                fd = os.open(self.host_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                return None
            if host_key(os.fstat(fd)) != self.key:
                os.close(fd)
                return None
            self.host_fd = fd
            self.cache.opened(self)
        return self.host_fd

    def read_run(self, index: int, count: int) -> bytes:
        fd = self._open()
        if fd is None:
            return b""
        try:
            return os.pread(fd, count << PAGE_SHIFT, index << PAGE_SHIFT)
        except OSError:
            return b""  # a host I/O error: zeros rather than a sentry failure

    def read_huge(self, index: int, spare: int | None = None) -> int | None:
        """Cache pages [index, index + 512) in one 2 MiB-aligned run of frames.

        For a 2 MiB page of a read-only shared mapping (the fast-read
        windows, kvmsentry/kernel/fastread.py): one read of the file
        straight into the frames, no per-page work. Returns the run's
        first GPA (the run already cached that way is reused), or None
        when the run passes the end of the file, part of it is cached
        otherwise, or no aligned run is free.

        ``spare``: an aligned run of 512 frames the caller owns (one
        reference each, any content; MemoryManager.take_huge), used
        before fresh frames from GuestMemory.alloc_huge: writing fresh
        guest memory costs the host a page fault per 4 KiB (~4x the read
        itself here), memory already touched does not. The run returned
        is ``spare`` when it was used; an unused one stays the caller's.
        (A host thread reading the next run ahead was
        tried: its GIL hand-offs cost the sentry more than it saved on
        this loaded 2-CPU machine; BENCHMARKS.md.)
        """
        memory = self.cache.memory
        if (index + 512) << PAGE_SHIFT > self._size:
            return None
        pages = self.pages
        span = range(index, index + 512)
        first = pages.get(index)
        if first is not None:
            if first & (HUGE_PAGE_SIZE - 1) or any(pages.get(i) != first + ((i - index) << PAGE_SHIFT)
                                                  for i in span):
                return None
            self.cache.touch(self)
            return first
        if not pages.keys().isdisjoint(span):
            return None
        gpa = spare if spare is not None else memory.alloc_huge()
        if gpa is None:
            return None
        view = memory.view[gpa:gpa + HUGE_PAGE_SIZE]
        n = 0
        fd = self._open()
        if fd is not None:
            try:
                n = os.preadv(fd, [view], index << PAGE_SHIFT)
            except OSError:
                n = 0  # a host I/O error: zeros rather than a sentry failure
        if n < HUGE_PAGE_SIZE:  # a reused run holds old data
            view[n:] = bytes(HUGE_PAGE_SIZE - n)
        self._install_huge(index, gpa)
        return gpa

    def forget_huge(self, index: int) -> None:
        """Drop pages [index, index + 512) from the cache without releasing
        their frames (MemoryManager.take_huge hands them on)."""
        pages = self.pages
        for i in range(index, index + 512):
            del pages[i]
        self.cache.npages -= 512

    def _install_huge(self, index: int, gpa: int) -> None:
        cache = self.cache
        self.pages.update(zip(range(index, index + 512), range(gpa, gpa + HUGE_PAGE_SIZE, PAGE_SIZE)))
        cache.npages += 512
        cache.touch(self)
        if cache.npages > cache.limit_pages:
            cache.shrink(cache.npages - cache.limit_pages, keep=self)

    def close(self) -> None:
        if self.host_fd is not None:
            os.close(self.host_fd)
            self.host_fd = None


class HostSharedMapping(FileMapping):
    """MAP_SHARED of a host file open for writing (beneath a rw bind mount).

    One per host file (st_dev, st_ino) while mapped; its frames are the
    mapped data. Pages written through the mapping go back to the host
    file with pwrite(2) on msync(2) and when the last mapping is gone
    (munmap, exit), as writeback would; read(2) through another
    descriptor sees them only then (not coherent in between). Never
    reclaimed; the cache does not keep it.
    """

    writable = True

    def __init__(self, cache: "PageCache", host_fd: int, st: os.stat_result):
        super().__init__(cache, st.st_dev, st.st_ino)
        self.host_fd = os.dup(host_fd)
        os.set_inheritable(self.host_fd, False)

    def size(self) -> int:
        return os.fstat(self.host_fd).st_size

    def read_run(self, index: int, count: int) -> bytes:
        try:
            return os.pread(self.host_fd, count << PAGE_SHIFT, index << PAGE_SHIFT)
        except OSError:
            return b""

    def read_page(self, index: int) -> bytes:
        return self.read_run(index, 1)

    def _install(self, index: int, data) -> int:
        gpa = self.cache.memory.alloc_frame()
        if data:
            self.cache.memory.view[gpa:gpa + len(data)] = data
        self.pages[index] = gpa
        return gpa

    def writeback_all(self) -> None:
        """Write every page written through a mapping back to the host file
        (the part below its size). Host errors are dropped, as a failed
        background writeback is (msync reports none here)."""
        if not self.dirty:
            return
        view = self.cache.memory.view
        size = self.size()
        for index in sorted(self.dirty):
            start = index << PAGE_SHIFT
            n = min(PAGE_SIZE, size - start)
            gpa = self.pages.get(index)
            if n > 0 and gpa is not None:
                try:
                    os.pwrite(self.host_fd, view[gpa:gpa + n], start)
                except OSError:
                    pass

    def __del__(self):
        memory = self.cache.memory
        if not memory.closed:
            self.writeback_all()
            if self.pages:
                memory.free_later(list(self.pages.values()))  # see AnonMapping.__del__
        self.pages = {}
        os.close(self.host_fd)


def host_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """The identity of a host file's content: (st_dev, st_ino, st_mtime_ns, st_size)."""
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


class PageCache:
    """Every cached file page of one guest memory.

    ``limit_pages`` bounds the pages kept while no page table maps them.
    """

    def __init__(self, memory, limit_pages: int = DEFAULT_LIMIT_PAGES):
        self.memory = memory
        self.limit_pages = limit_pages
        self.npages = 0
        self._lru: collections.OrderedDict[int, FileMapping] = collections.OrderedDict()
        self._host: dict[tuple, HostMapping] = {}
        self._open_fds: collections.OrderedDict[int, HostMapping] = collections.OrderedDict()
        self._host_shared: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    # -- lookups -------------------------------------------------------------
    def inode_mapping(self, inode) -> InodeMapping:
        """The mapping of an in-memory RegularInode (created on first use)."""
        mapping = inode.mapping
        if mapping is None:
            mapping = inode.mapping = InodeMapping(self, inode)
        return mapping

    def host_mapping(self, host_path: bytes, host_fd: int) -> HostMapping:
        """The mapping of the host regular file open as ``host_fd`` (not taken over)."""
        st = os.fstat(host_fd)
        key = host_key(st)
        mapping = self._host.get(key)
        if mapping is None:
            mapping = self._host[key] = HostMapping(self, host_path, st,
                                                    os.dup(host_fd))
            os.set_inheritable(mapping.host_fd, False)
            self.opened(mapping)
        return mapping

    def host_shared_mapping(self, host_fd: int) -> HostSharedMapping:
        """The writable shared mapping of the host file open (for writing) as ``host_fd``."""
        st = os.fstat(host_fd)
        mapping = self._host_shared.get((st.st_dev, st.st_ino))
        if mapping is None:
            mapping = HostSharedMapping(self, host_fd, st)
            self._host_shared[(st.st_dev, st.st_ino)] = mapping
        return mapping

    # -- bookkeeping ---------------------------------------------------------
    def touch(self, mapping: FileMapping) -> None:
        """``mapping`` was just used (least recently used pages go first)."""
        self._lru[id(mapping)] = mapping
        self._lru.move_to_end(id(mapping))

    def opened(self, mapping: HostMapping) -> None:
        self._open_fds[id(mapping)] = mapping
        self._open_fds.move_to_end(id(mapping))
        while len(self._open_fds) > MAX_OPEN_HOST_FDS:
            _, old = self._open_fds.popitem(last=False)
            old.close()

    def shrink(self, want: int, keep: FileMapping | None = None) -> int:
        """Free up to ``want`` cached pages that no page table maps; returns how many.

        Least recently used mappings first; ``keep`` is spared (it is
        being filled). Dirty pages are written back first.
        """
        memory = self.memory
        freed = 0
        for key, mapping in list(self._lru.items()):
            if freed >= want:
                break
            if mapping is keep:
                continue
            for index in [i for i, gpa in mapping.pages.items() if memory.refcount(gpa) == 1]:
                mapping.release(index)
                freed += 1
                if freed >= want:
                    break
            if not mapping.pages:
                del self._lru[key]
                if isinstance(mapping, HostMapping):
                    mapping.close()
                    self._open_fds.pop(key, None)
                    if self._host.get(mapping.key) is mapping:
                        del self._host[mapping.key]
        return freed

    def drop_all(self) -> int:
        """Free every page no page table maps (tests, memory pressure)."""
        return self.shrink(self.npages)


def page_cache_of(memory) -> PageCache:
    """The page cache of GuestMemory ``memory`` (made on first use).

    It is also the memory's reclaimer: an allocation that finds no free
    frame shrinks the cache and tries again.
    """
    cache = getattr(memory, "page_cache", None)
    if cache is None:
        cache = memory.page_cache = PageCache(memory)
        memory.reclaim = cache.shrink
    return cache


def mapping_of_file(cache: PageCache, file, shared: bool = False) -> FileMapping:
    """The page cache mapping behind an open file, for mmap(2) (``shared``: MAP_SHARED).

    A MAP_SHARED mapping of a host file open for writing (a rw bind
    mount) is a HostSharedMapping, written back to the host.

    In-memory regular files and host regular files have one; anything
    else (pipes, directories, sockets, /proc files (snapshots in
    files._PROC_FS), most devices) raises
    OSError(ENODEV), as a file without ``f_op->mmap`` (mm/mmap.c do_mmap).
    """
    from kvmsentry.kernel.fd import HostFile
    from kvmsentry.kernel.vfs.inode import RegularInode

    from kvmsentry.kernel import files

    inode = getattr(file, "inode", None)
    if isinstance(inode, RegularInode) and inode.fs is not files._PROC_FS:
        return cache.inode_mapping(inode)
    if isinstance(file, HostFile) and not file.is_dir():
        if shared and file.writable:
            return cache.host_shared_mapping(file.host_fd)
        return cache.host_mapping(file.host_path(), file.host_fd)
    raise OSError(errno.ENODEV, "no mmap for this file")
