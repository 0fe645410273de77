"""Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise.

Semantics from mmap(2), brk(2), mprotect(2), mremap(2), madvise(2),
msync(2) and mm/mmap.c. Anonymous mappings are demand-paged; file
mappings fault their pages in from the page cache (kernel/pagecache.py).
MAP_SHARED anonymous memory is a page-cache mapping of its own (as
shmem's "/dev/zero (deleted)"), shared with fork children.
"""

from __future__ import annotations

import errno
import os
import struct

from kvmsentry.kernel.fd import O_PATH, DevZero
from kvmsentry.kernel.pagecache import AnonMapping, mapping_of_file, page_cache_of
from kvmsentry.kernel.vfs.inode import F_SEAL_FUTURE_WRITE, F_SEAL_WRITE
from kvmsentry.vm.memory import OutOfGuestMemory
from kvmsentry.kernel.mm import (PAGE_MASK, PROT_EXEC, PROT_READ, PROT_WRITE,
                                 MmError, page_align_up)
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall
from kvmsentry.vm.x86 import PAGE_SIZE

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_UNINITIALIZED = 0x4000000
_KNOWN_MAP_FLAGS = (MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_DENYWRITE
                    | MAP_EXECUTABLE | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK
                    | MAP_STACK | MAP_HUGETLB | MAP_SYNC | MAP_FIXED_NOREPLACE | MAP_UNINITIALIZED)
_PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000

# vm.mmap_min_addr's usual value: MAP_FIXED below it is EPERM.
MMAP_MIN_ADDR = 65536

MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4

MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_REMOVE = 9
MADV_DONTFORK = 10
MADV_DOFORK = 11

MS_ASYNC = 1
MS_INVALIDATE = 2
MS_SYNC = 4


def _mm_errors(func):
    """Turn MmError from the memory manager into the guest's errno."""
    def wrapper(task, *args):
        try:
            return func(task, *args)
        except MmError as e:
            raise SyscallError(e.errno) from None
    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    wrapper.__wrapped__ = func
    return wrapper


@syscall("brk")
def sys_brk(task, brk: int) -> int:
    """Implements Linux syscall brk(2): returns the new (or unchanged) break.

    Like the kernel (mm/mmap.c), a request below the start, into another
    mapping or growing it by more than the guest's memory (heuristic
    overcommit) leaves the break where it was; the result is never an errno.
    """
    mm = task.mm
    if brk < mm.brk_start:
        return mm.brk
    old_end = page_align_up(mm.brk)
    new_end = page_align_up(brk)
    if new_end > old_end:
        if new_end > mm.task_size or not mm.is_free(old_end, new_end):
            return mm.brk
        if new_end - old_end > mm.memory.size:
            # Heuristic overcommit refuses growth beyond all the memory
            # there is (do_brk_flags: security_vm_enough_memory_mm), as mmap.
            return mm.brk
        if mm.find_vma(old_end - 1) is not None and mm.find_vma(old_end - 1).name == "[heap]":
            vma = mm.find_vma(old_end - 1)
            if vma.end == old_end:
                vma.end = new_end
            else:
                mm.map_region(old_end, new_end - old_end, PROT_READ | PROT_WRITE, name="[heap]")
        else:
            mm.map_region(old_end, new_end - old_end, PROT_READ | PROT_WRITE, name="[heap]")
        mm.prefault_heap(mm.brk, brk)
    elif new_end < old_end:
        mm.unmap_range(new_end, old_end)
    mm.brk = brk
    return brk


@syscall("mmap", support="partial",
         note="MAP_SHARED of a rw-mounted host file is written back at msync/munmap; no MAP_HUGETLB pages")
@_mm_errors
def sys_mmap(task, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    """Implements Linux syscall mmap(2). Returns the mapping's address.

    Files are mapped through the page cache (kernel/pagecache.py):
    MAP_PRIVATE pages are the cache's, copied on the first write;
    MAP_SHARED mappings of in-memory files (tmpfs, the overlay's copies)
    map the cache's frames writable, coherent with read(2)/write(2).
    Checks in the order of arch/x86/kernel/sys_x86_64.c and mm/mmap.c
    do_mmap: EINVAL for an unaligned offset, EBADF for a bad (or O_PATH)
    fd, EINVAL for a zero length, a bad MAP_TYPE or an unaligned MAP_FIXED
    address, ENOMEM for a huge length or no room, EEXIST for
    MAP_FIXED_NOREPLACE over a mapping, EOPNOTSUPP for unknown flags with
    MAP_SHARED_VALIDATE, EACCES for a file not open for reading (or
    MAP_SHARED + PROT_WRITE on one not open for writing), ENODEV for a
    file that cannot be mapped (pipe, directory, socket), EINVAL for
    MAP_GROWSDOWN on a file or shared mapping.
    """
    mm = task.mm
    if offset & (PAGE_SIZE - 1):
        raise SyscallError(errno.EINVAL)
    file = None
    if not flags & MAP_ANONYMOUS:
        file = task.fds.get(to_int(fd))
        if file.flags & O_PATH:
            raise SyscallError(errno.EBADF)
    if length == 0:
        raise SyscallError(errno.EINVAL)
    map_type = flags & MAP_TYPE
    if map_type not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE):
        raise SyscallError(errno.EINVAL)
    length = page_align_up(length)
    if length == 0 or length > mm.task_size:
        raise SyscallError(errno.ENOMEM)
    if prot & ~(_PROT_ALL | PROT_GROWSDOWN | PROT_GROWSUP):
        raise SyscallError(errno.EINVAL)
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
        if addr & (PAGE_SIZE - 1):
            raise SyscallError(errno.EINVAL)
        if addr < MMAP_MIN_ADDR:
            raise SyscallError(errno.EPERM)
        if addr + length > mm.task_size:
            raise SyscallError(errno.ENOMEM)
        if flags & MAP_FIXED_NOREPLACE and not flags & MAP_FIXED and not mm.is_free(addr, addr + length):
            raise SyscallError(errno.EEXIST)
        start = addr
    else:
        start = None  # chosen once the checks below passed
    shared = map_type != MAP_PRIVATE
    may_write = True
    mapping = None
    if file is not None:
        if map_type == MAP_SHARED_VALIDATE and flags & ~_KNOWN_MAP_FLAGS:
            raise SyscallError(errno.EOPNOTSUPP)
        if shared and prot & PROT_WRITE and not file.writable:
            raise SyscallError(errno.EACCES)
        if shared and not file.writable:
            may_write = False
        if not file.readable:
            raise SyscallError(errno.EACCES)
        if isinstance(file, DevZero):
            file = None  # /dev/zero: anonymous memory (drivers/char/mem.c mmap_zero)
            if flags & MAP_GROWSDOWN and shared:
                raise SyscallError(errno.EINVAL)
        else:
            try:
                mapping = mapping_of_file(page_cache_of(mm.memory), file, shared)
            except OSError as e:
                raise SyscallError(e.errno) from None
            if flags & MAP_GROWSDOWN:
                raise SyscallError(errno.EINVAL)
            seals = getattr(getattr(mapping, "inode", None), "seals", None) or 0
            if shared and seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE):
                # mm/memfd.c memfd_check_seals_mmap: no writable shared
                # mapping of a write-sealed file, and none made writable later.
                if prot & PROT_WRITE:
                    raise SyscallError(errno.EPERM)
                may_write = False
            if shared and not mapping.writable:
                may_write = False  # a read-only host file's frames are never written
    else:
        if map_type == MAP_SHARED_VALIDATE and flags & ~_KNOWN_MAP_FLAGS:
            raise SyscallError(errno.EOPNOTSUPP)
        if shared and flags & MAP_GROWSDOWN:
            raise SyscallError(errno.EINVAL)
    if (not shared and prot & PROT_WRITE and not flags & MAP_NORESERVE
            and length > mm.memory.size):
        # Linux's heuristic overcommit refuses a private writable mapping
        # larger than all the memory there is (mm/util.c __vm_enough_memory).
        raise SyscallError(errno.ENOMEM)
    if start is None:
        start = mm.get_unmapped_area(length, addr & PAGE_MASK)
    populate = bool(flags & MAP_POPULATE) and not flags & MAP_NONBLOCK
    if mapping is None and shared:
        # Shared anonymous memory is a file of its own (mm/shmem.c shmem_zero_setup).
        mapping = AnonMapping(page_cache_of(mm.memory), length)
        vma = mm.map_file(start, length, prot & _PROT_ALL, mapping, 0, shared=True,
                          name="/dev/zero (deleted)")
    elif mapping is not None:
        name = os.fsdecode(file.guest_path) if file.guest_path else ""
        vma = mm.map_file(start, length, prot & _PROT_ALL, mapping, offset, shared=shared,
                          name=name, may_write=may_write)
    else:
        vma = mm.map_region(start, length, prot & _PROT_ALL, shared=shared,
                            grows_down=bool(flags & MAP_GROWSDOWN))
    if populate:
        try:
            mm.populate(vma.start, vma.end)
        except OutOfGuestMemory:
            pass  # MAP_POPULATE does not fail the mmap (mm/gup.c __mm_populate)
    return start


@syscall("munmap")
@_mm_errors
def sys_munmap(task, addr: int, length: int) -> int:
    """Implements Linux syscall munmap(2). EINVAL for an unaligned addr or zero length."""
    if addr & (PAGE_SIZE - 1) or length == 0:
        raise SyscallError(errno.EINVAL)
    end = addr + page_align_up(length)
    if end > task.mm.task_size:
        raise SyscallError(errno.EINVAL)
    task.mm.unmap_range(addr, end)
    return 0


@syscall("mprotect")
@_mm_errors
def sys_mprotect(task, addr: int, length: int, prot: int) -> int:
    """Implements Linux syscall mprotect(2). EINVAL for unaligned addr or bad prot, ENOMEM for holes."""
    if addr & (PAGE_SIZE - 1) or prot & ~(_PROT_ALL | PROT_GROWSDOWN | PROT_GROWSUP):
        raise SyscallError(errno.EINVAL)
    length = page_align_up(length)
    if length == 0:
        return 0
    if addr + length > task.mm.task_size:
        raise SyscallError(errno.ENOMEM)
    task.mm.protect(addr, addr + length, prot & _PROT_ALL)
    return 0


@syscall("mremap", support="partial", note="anonymous and private mappings; MREMAP_DONTUNMAP is EINVAL")
@_mm_errors
def sys_mremap(task, old_address: int, old_size: int, new_size: int, flags: int, new_address: int) -> int:
    """Implements Linux syscall mremap(2) by moving page frames, not copying them.

    EINVAL for unaligned addresses, unknown flags, zero new size or
    MREMAP_FIXED without MREMAP_MAYMOVE; EFAULT when the old range is not
    one mapping; ENOMEM when it cannot grow in place and may not move.
    """
    mm = task.mm
    if old_address & (PAGE_SIZE - 1) or flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED):
        raise SyscallError(errno.EINVAL)
    if flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE:
        raise SyscallError(errno.EINVAL)
    old_size = page_align_up(old_size)
    new_size = page_align_up(new_size)
    if new_size == 0 or old_size == 0:
        raise SyscallError(errno.EINVAL)
    vma = mm.find_vma(old_address)
    if vma is None or old_address + old_size > vma.end:
        raise SyscallError(errno.EFAULT)
    if not flags & MREMAP_FIXED:
        if new_size <= old_size:
            if new_size < old_size:
                mm.unmap_range(old_address + new_size, old_address + old_size)
            return old_address
        if old_address + old_size == vma.end and mm.is_free(vma.end, old_address + new_size) \
                and old_address + new_size <= mm.task_size:
            vma.end = old_address + new_size
            return old_address
        if not flags & MREMAP_MAYMOVE:
            raise SyscallError(errno.ENOMEM)
        target = mm.get_unmapped_area(new_size)
    else:
        target = new_address
        if target & (PAGE_SIZE - 1):
            raise SyscallError(errno.EINVAL)
        mm.unmap_range(target, target + new_size)
    return mm.move_range(old_address, old_size, target, new_size)


@syscall("madvise", support="partial",
         note="DONTNEED/FREE/REMOVE drop pages, WILLNEED reads files, DONTFORK/DOFORK; other advice is accepted and ignored")
@_mm_errors
def sys_madvise(task, addr: int, length: int, advice: int) -> int:
    """Implements Linux syscall madvise(2).

    MADV_DONTNEED/FREE/REMOVE drop the pages (private ones read as zero,
    or as the file, again; shared ones keep their data), MADV_WILLNEED
    reads file pages into the page cache, MADV_DONTFORK/DOFORK choose
    whether a fork child gets the range. EINVAL for an unaligned addr or
    unknown advice; ENOMEM when part of the range is not mapped (the
    advice still applies to the rest, mm/madvise.c).
    """
    if addr & (PAGE_SIZE - 1) or advice > 200 or length < 0:
        raise SyscallError(errno.EINVAL)
    mm = task.mm
    end = addr + page_align_up(length)
    if end == addr:
        return 0
    if end > mm.task_size:
        raise SyscallError(errno.ENOMEM)
    if advice in (MADV_FREE, MADV_REMOVE):
        _check_free_remove(mm, addr, end, advice)
    if advice in (MADV_DONTNEED, MADV_FREE, MADV_REMOVE):
        mm.discard(addr, end)
    elif advice == MADV_WILLNEED:
        try:
            mm.willneed(addr, end)
        except OutOfGuestMemory:
            pass  # only advice
    elif advice in (MADV_DONTFORK, MADV_DOFORK):
        mm.set_dontfork(addr, end, advice == MADV_DONTFORK)
    if not mm.covered(addr, end):
        raise SyscallError(errno.ENOMEM)
    return 0


def _check_free_remove(mm, start: int, end: int, advice: int) -> None:
    """mm/madvise.c's per-VMA checks: MADV_FREE only on private anonymous
    memory (else EINVAL); MADV_REMOVE not on private anonymous memory
    (EINVAL) and on files only through a shared writable mapping (EACCES),
    where it punches a hole in the file."""
    for vma in mm.vmas:
        if vma.end <= start or vma.start >= end:
            continue
        if advice == MADV_FREE:
            if vma.mapping is not None or vma.shared:
                raise SyscallError(errno.EINVAL)
            continue
        if vma.mapping is None:
            raise SyscallError(errno.EINVAL)  # private anonymous
        if not (vma.shared and vma.may_write):
            raise SyscallError(errno.EACCES)
        punch_hole = getattr(vma.mapping, "punch_hole", None)
        if punch_hole is not None:
            lo, hi = max(start, vma.start), min(end, vma.end)
            offset = vma.file_index(lo >> 12) << 12
            punch_hole(offset, offset + hi - lo)


@syscall("msync")
def sys_msync(task, addr: int, length: int, flags: int) -> int:
    """Implements Linux syscall msync(2).

    Shared pages of in-memory files are the page cache itself (read(2)
    sees them at once); those of a host file under a rw bind mount are
    written back to it (pagecache.HostSharedMapping). EINVAL for an
    unaligned addr, unknown flags or MS_ASYNC with MS_SYNC; ENOMEM when
    part of the range is not mapped (mm/msync.c).
    """
    if addr & (PAGE_SIZE - 1) or flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) \
            or (flags & (MS_ASYNC | MS_SYNC)) == (MS_ASYNC | MS_SYNC):
        raise SyscallError(errno.EINVAL)
    end = addr + page_align_up(length)
    if end < addr:
        raise SyscallError(errno.ENOMEM)
    if end > addr and not task.mm.covered(addr, end):
        raise SyscallError(errno.ENOMEM)
    if flags & (MS_SYNC | MS_ASYNC):
        done = set()
        for vma in task.mm.vmas:
            if vma.end > addr and vma.start < end and vma.shared and vma.mapping is not None:
                writeback = getattr(vma.mapping, "writeback_all", None)
                if writeback is not None and id(vma.mapping) not in done:
                    done.add(id(vma.mapping))
                    writeback()
    return 0


# mlock2(2) and mlockall(2) flags (include/uapi/asm-generic/mman-common.h, mman.h).
MLOCK_ONFAULT = 0x01
MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4


_U64 = (1 << 64) - 1


def _lock_range(task, addr: int, length: int, populate: bool = False) -> int:
    """The range check of mlock(2), mlock2(2) and munlock(2) (mm/mlock.c
    do_mlock, apply_vma_lock_flags): ``length`` plus ``addr``'s offset in
    its page, rounded up to pages modulo 2**64 (a length of 0 after that
    is 0); then [addr's page, + length) must not wrap (EINVAL) and must be
    mapped (ENOMEM at a hole). ``populate`` (mlock without MLOCK_ONFAULT)
    checks what faulting the range in would meet: ENOMEM at a PROT_NONE mapping (__mm_populate's
    EFAULT, as __mlock_posix_error_return reports it). Nothing is locked:
    the sentry never swaps guest pages out. Returns 0."""
    length = page_align_up(length + (addr & ~PAGE_MASK)) & _U64
    start = addr & PAGE_MASK
    end = start + length
    if end > _U64:
        raise SyscallError(errno.EINVAL)
    if end == start:
        return 0
    mm = task.mm
    if not mm.covered(start, end):
        raise SyscallError(errno.ENOMEM)
    if populate:
        gva = start
        while gva < end:
            vma = mm.find_vma(gva)
            if not vma.prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
                raise SyscallError(errno.ENOMEM)
            gva = vma.end
    return 0


@syscall("mlock")
def sys_mlock(task, addr: int, length: int) -> int:
    """Implements Linux syscall mlock(2): the range check and populate
    only (see _lock_range). ENOMEM, EINVAL."""
    return _lock_range(task, addr, length, populate=True)


@syscall("mlock2")
def sys_mlock2(task, addr: int, length: int, flags: int) -> int:
    """Implements Linux syscall mlock2(2): mlock(2) with ``flags`` (an int)
    0 or MLOCK_ONFAULT (EINVAL for any other bit), which skips populating."""
    flags = to_int(flags)
    if flags & ~MLOCK_ONFAULT:
        raise SyscallError(errno.EINVAL)
    return _lock_range(task, addr, length, populate=not flags & MLOCK_ONFAULT)


@syscall("munlock")
def sys_munlock(task, addr: int, length: int) -> int:
    """Implements Linux syscall munlock(2): the range check only. ENOMEM, EINVAL."""
    return _lock_range(task, addr, length)


@syscall("mlockall")
def sys_mlockall(task, flags: int) -> int:
    """Implements Linux syscall mlockall(2) as a no-op (nothing is swapped).

    EINVAL for no flags, an unknown bit, or MCL_ONFAULT without
    MCL_CURRENT or MCL_FUTURE (mm/mlock.c).
    """
    flags = to_int(flags)
    if (not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)
            or flags == MCL_ONFAULT):
        raise SyscallError(errno.EINVAL)
    return 0


@syscall("munlockall")
def sys_munlockall(task) -> int:
    """Implements Linux syscall munlockall(2) as a no-op."""
    return 0


@syscall("mincore")
def sys_mincore(task, addr: int, length: int, vec: int) -> int:
    """Implements Linux syscall mincore(2): one byte per page of [addr,
    addr + length) into ``vec``, 1 when the page is in memory (mapped in
    the process, or a file page in the page cache), else 0.

    EINVAL for an unaligned ``addr``; ENOMEM when the range leaves user
    space or has a hole (after the bytes of the pages before the hole);
    EFAULT for a bad ``vec`` (mm/mincore.c).
    """
    if addr & ~PAGE_MASK:
        raise SyscallError(errno.EINVAL)
    mm = task.mm
    end = addr + length
    if end > mm.task_size:
        raise SyscallError(errno.ENOMEM)
    npages = page_align_up(length) // PAGE_SIZE
    if vec + npages > mm.task_size:  # access_ok(vec, pages), before the walk
        raise SyscallError(errno.EFAULT)
    if not npages:
        return 0
    first = addr // PAGE_SIZE
    last = first + npages
    vpn = first
    while vpn < last:  # a VMA at a time, at most _MINCORE_CHUNK pages of vec at once
        vma = mm.find_vma(vpn * PAGE_SIZE)
        if vma is None:  # a hole: the pages before it are reported (do_mincore's loop)
            raise SyscallError(errno.ENOMEM)
        stop = min(last, vma.end // PAGE_SIZE, vpn + _MINCORE_CHUNK)
        present = bytearray(stop - vpn)
        for resident in mm.present_vpns(vpn * PAGE_SIZE, stop * PAGE_SIZE):
            present[resident - vpn] = 1
        if vma.mapping is not None:  # file pages in the page cache count too
            lo = vma.file_index(vpn)
            cached = vma.mapping.pages
            indices = (range(lo, lo + stop - vpn) if stop - vpn <= len(cached)
                       else [i for i in cached if lo <= i < lo + stop - vpn])
            for index in indices:
                if index in cached:
                    present[index - lo] = 1
        mm.copy_out(vec + vpn - first, bytes(present))
        vpn = stop
    return 0


_MINCORE_CHUNK = 1 << 16  # pages: a 64 KiB piece of vec per copy


# NUMA memory policy (mm/mempolicy.c, include/uapi/linux/mempolicy.h). The
# sandbox has one node, node 0: a policy is checked and recorded as Linux
# does on a one-node machine, and places nothing.
MPOL_DEFAULT = 0
MPOL_PREFERRED = 1
MPOL_LOCAL = 4
MPOL_BIND = 2
MPOL_INTERLEAVE = 3
MPOL_PREFERRED_MANY = 5
MPOL_WEIGHTED_INTERLEAVE = 6
MPOL_MAX = 7
MPOL_F_NUMA_BALANCING = 1 << 13
MPOL_F_RELATIVE_NODES = 1 << 14
MPOL_F_STATIC_NODES = 1 << 15
MPOL_MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING
MPOL_F_NODE = 1
MPOL_F_ADDR = 2
MPOL_F_MEMS_ALLOWED = 4
MAX_NUMNODES = 1024  # CONFIG_NODES_SHIFT=10 (Debian)
NR_NODE_IDS = 1
NODES_ALLOWED = 1  # node 0


def _read_nodes(task, nmask: int, maxnode: int) -> int:
    """get_nodes: the node mask (an int, bit n for node n) of ``maxnode - 1``
    bits at ``nmask``; bits past MAX_NUMNODES must be 0 (EINVAL), EFAULT."""
    maxnode = (maxnode - 1) & 0xFFFF_FFFF_FFFF_FFFF  # unsigned: maxnode 0 is too big
    if maxnode == 0 or not nmask:
        return 0
    if maxnode > PAGE_SIZE * 8:
        raise SyscallError(errno.EINVAL)
    nbytes = (maxnode + 63) // 64 * 8
    mask = int.from_bytes(task.mm.copy_in(nmask, nbytes), "little") & ((1 << maxnode) - 1)
    if mask >> MAX_NUMNODES:
        raise SyscallError(errno.EINVAL)
    return mask


@syscall("set_mempolicy", support=PARTIAL, note="one NUMA node: checked and recorded, places nothing")
def sys_set_mempolicy(task, mode: int, nmask: int, maxnode: int) -> int:
    """Implements Linux syscall set_mempolicy(2) for a one-node machine.

    The thread's policy (kept by clone and fork) becomes ``mode`` with its
    flags and nodes, as get_mempolicy(2) then reports it; nothing is
    placed differently. EINVAL for an unknown mode or flags, both
    MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES, MPOL_F_NUMA_BALANCING
    but with MPOL_BIND or MPOL_PREFERRED_MANY, nodes given for
    MPOL_DEFAULT or MPOL_LOCAL, and no node 0 among those a mode needs;
    EFAULT for ``nmask`` (mm/mempolicy.c kernel_set_mempolicy, mpol_new).
    """
    mode &= 0xFFFFFFFF
    flags = mode & MPOL_MODE_FLAGS
    mode &= ~MPOL_MODE_FLAGS
    if mode >= MPOL_MAX or (flags & MPOL_F_STATIC_NODES and flags & MPOL_F_RELATIVE_NODES):
        raise SyscallError(errno.EINVAL)
    if flags & MPOL_F_NUMA_BALANCING and mode not in (MPOL_BIND, MPOL_PREFERRED_MANY):
        raise SyscallError(errno.EINVAL)
    nodes = _read_nodes(task, nmask, maxnode)
    if mode == MPOL_DEFAULT:
        if nodes:
            raise SyscallError(errno.EINVAL)
        task.mempolicy = (MPOL_DEFAULT, 0, 0)
        return 0
    if mode == MPOL_PREFERRED and not nodes:
        if flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES):
            raise SyscallError(errno.EINVAL)
        mode = MPOL_LOCAL
    elif mode == MPOL_LOCAL:
        if nodes or flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES):
            raise SyscallError(errno.EINVAL)
    elif not nodes:
        raise SyscallError(errno.EINVAL)
    if mode != MPOL_LOCAL:
        # Relative nodes are numbered among the allowed ones: node n is node n % 1.
        usable = NODES_ALLOWED if flags & MPOL_F_RELATIVE_NODES else nodes & NODES_ALLOWED
        if not usable:
            raise SyscallError(errno.EINVAL)
        if not flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES):
            nodes = usable
    task.mempolicy = (mode, flags, nodes if mode != MPOL_LOCAL else 0)
    return 0


@syscall("get_mempolicy", support=PARTIAL, note="one NUMA node, node 0")
def sys_get_mempolicy(task, policy: int, nmask: int, maxnode: int, addr: int, flags: int) -> int:
    """Implements Linux syscall get_mempolicy(2) for a one-node machine.

    Writes the thread's policy (set_mempolicy(2); MPOL_DEFAULT at first)
    as an int at ``policy`` and its nodes as a bitmap of ``maxnode - 1``
    bits at ``nmask`` (either may be NULL). MPOL_F_MEMS_ALLOWED gives
    node 0; MPOL_F_ADDR the policy of the mapping at ``addr`` (the
    default: mbind(2) is not implemented); MPOL_F_NODE the node of that
    page, or the next node of an interleave policy (0). EINVAL for ``maxnode`` below the node count with a mask,
    unknown or conflicting flags, ``addr`` without MPOL_F_ADDR, MPOL_F_NODE
    alone without an interleave policy, or a mask of more than a page;
    EFAULT for an unmapped ``addr`` or a bad pointer (mm/mempolicy.c
    kernel_get_mempolicy, do_get_mempolicy, copy_nodes_to_user).
    """
    if nmask and maxnode < NR_NODE_IDS:
        raise SyscallError(errno.EINVAL)
    if flags & ~(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED):
        raise SyscallError(errno.EINVAL)
    if flags & MPOL_F_MEMS_ALLOWED:
        if flags & (MPOL_F_NODE | MPOL_F_ADDR):
            raise SyscallError(errno.EINVAL)
        value, nodes = 0, NODES_ALLOWED
    else:
        if flags & MPOL_F_ADDR:
            vma = task.mm.find_vma(addr)
            if vma is None:
                raise SyscallError(errno.EFAULT)
            mode, mode_flags, nodes = MPOL_DEFAULT, 0, 0
        elif addr:
            raise SyscallError(errno.EINVAL)
        else:
            mode, mode_flags, nodes = task.mempolicy
        if flags & MPOL_F_NODE:
            # The node of the page at addr, or the thread's next interleave
            # node: node 0 either way; any other policy has none (EINVAL).
            if not flags & MPOL_F_ADDR and mode not in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE):
                raise SyscallError(errno.EINVAL)
            value = 0
        else:
            value = mode | mode_flags
    if policy:
        task.mm.copy_out(policy, struct.pack("<i", value))
    if nmask:
        copy = ((maxnode - 1) + 63) // 64 * 8
        nbytes = (NR_NODE_IDS + 63) // 64 * 8
        if copy > nbytes:
            if copy > PAGE_SIZE:
                raise SyscallError(errno.EINVAL)
            task.mm.copy_out(nmask + nbytes, bytes(copy - nbytes))
            copy = nbytes
        # nr_node_ids' words only: a static or relative mask keeps the
        # guest's own bits, up to MAX_NUMNODES (copy_nodes_to_user).
        task.mm.copy_out(nmask, (nodes & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")[:copy])
    return 0


POSIX_FADV_NOREUSE = 5


@syscall("fadvise64")
def sys_fadvise64(task, fd: int, offset: int, len_: int, advice: int) -> int:
    """Implements Linux syscall fadvise64(2) (posix_fadvise(3)): advice only, nothing to do.

    mm/fadvise.c generic_fadvise: EBADF for a bad fd or O_PATH, ESPIPE for a pipe or
    FIFO, EINVAL for a negative length or an unknown advice (0-5 known).
    """
    import stat as _stat
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH:  # fdget does not return an O_PATH file
        raise SyscallError(errno.EBADF)
    if _stat.S_ISFIFO(file.stat().st_mode):
        raise SyscallError(errno.ESPIPE)
    if len_ >> 63 or not 0 <= to_int(advice) <= POSIX_FADV_NOREUSE:
        raise SyscallError(errno.EINVAL)
    return 0
