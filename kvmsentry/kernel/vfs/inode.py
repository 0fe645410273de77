"""In-memory inodes: what tmpfs and the overlay's upper layer are made of.

Linux's shmem inodes (mm/shmem.c) and libfs's simple directories
(fs/libfs.c), in Python:

* ``RegularInode``: the content is one ``bytearray`` (sparse regions are
  zeros that take memory; which pages were written is tracked for
  SEEK_HOLE/SEEK_DATA), and a shmem file's seals.
* ``DirInode``: ``entries`` maps a name to a child, in insertion order.
  Each name gets a *cookie* (a number that only grows) when it is
  inserted; getdents64's d_off is that cookie, so an offset stays valid
  while other entries come and go (cookies 1 and 2 are ``.`` and ``..``).
  A child is an Inode, a ``HostInode`` (an overlay's read-only host file)
  or a ``Lower`` placeholder for a host entry not looked at yet.
* ``SymlinkInode``: the target bytes.
* ``SpecialInode``: a FIFO, socket or device node copied up from the host
  (metadata only; it cannot be opened through the overlay).

``Filesystem`` is a superblock: its device number, inode numbers and the
operations that change a directory. tmpfs and the overlay subclass it.
Times are integers in ns; nothing here checks permissions (the sandbox
runs as root) or touches the host.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import time

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel.syscalls.table import SyscallError

NSEC_PER_SEC = 1_000_000_000
BOGO_DIRENT_SIZE = 20  # mm/shmem.c: a tmpfs directory grows by this per entry
FIRST_COOKIE = 3       # 1 and 2 are the d_off of "." and ".."
S_IFMT = 0o170000      # include/uapi/linux/stat.h

# include/linux/fs_types.h: DT_* from the S_IFMT bits.
DT_UNKNOWN, DT_DIR, DT_LNK = 0, 4, 10


def now_ns() -> int:
    return time.time_ns()


class Inode:
    """An in-memory inode (Linux ``struct inode``).

    ``dev``/``ino`` are what stat reports: the file system's anonymous
    device and a fresh number, or the host's for a copied-up host file (so
    ``ls -i`` and hard-link detection do not change under a copy-up).
    """

    __slots__ = ("fs", "dev", "ino", "mode", "uid", "gid", "nlink", "rdev",
                 "atime_ns", "mtime_ns", "ctime_ns", "__weakref__")

    def __init__(self, fs: "Filesystem", mode: int, uid: int = 0, gid: int = 0,
                 dev: int | None = None, ino: int | None = None, t: int | None = None):
        self.fs = fs
        self.dev = fs.dev if dev is None else dev
        self.ino = fs.new_ino() if ino is None else ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = 1
        self.rdev = 0
        t = now_ns() if t is None else t
        self.atime_ns = self.mtime_ns = self.ctime_ns = t

    def is_dir(self) -> bool:
        return False

    def is_symlink(self) -> bool:
        return False

    def is_reg(self) -> bool:
        return False

    @property
    def size(self) -> int:
        return 0

    def blocks(self) -> int:
        """st_blocks: 512-byte units of the 4 KiB pages the content takes."""
        return ((self.size + 4095) >> 12) << 3

    def stat(self) -> Stat:
        a, m, c = self.atime_ns, self.mtime_ns, self.ctime_ns
        return Stat(self.dev, self.ino, self.nlink, self.mode, self.uid, self.gid,
                    self.rdev, self.size, 4096, self.blocks(),
                    a // NSEC_PER_SEC, a % NSEC_PER_SEC, m // NSEC_PER_SEC, m % NSEC_PER_SEC,
                    c // NSEC_PER_SEC, c % NSEC_PER_SEC)

    def d_type(self) -> int:
        return (self.mode >> 12) & 0o17

    def changed(self, t: int | None = None) -> None:
        """Metadata changed (chmod, link count...): ctime := now."""
        self.ctime_ns = now_ns() if t is None else t

    def modified(self, t: int | None = None) -> None:
        """Content changed: mtime and ctime := now."""
        self.mtime_ns = self.ctime_ns = now_ns() if t is None else t

    def readlink(self) -> bytes:
        raise SyscallError(errno.EINVAL)


PAGE_SIZE = 4096  # tmpfs allocates, and SEEK_DATA/SEEK_HOLE see, whole pages

# Memfd seals (include/uapi/linux/fcntl.h; fcntl(2) "File seals").
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
F_SEAL_FUTURE_WRITE = 0x0010
F_SEAL_EXEC = 0x0020
F_ALL_SEALS = 0x003F


def _pages(nbytes: int) -> int:
    """The number of pages that ``nbytes`` bytes from offset 0 touch."""
    return (nbytes + PAGE_SIZE - 1) // PAGE_SIZE


class RegularInode(Inode):
    """A regular file; ``data`` is its content.

    ``mapping`` is its page cache (kernel/pagecache.py InodeMapping) once
    the file was mmap'd, else None. Pages written through a MAP_SHARED
    mapping live in guest frames until ``sync`` copies them into ``data``:
    whoever reads ``data`` directly calls ``sync`` first, whoever changes
    it calls ``write_at``/``truncate``/``zero_range``, which keep the
    cached frames current (mmap(2)'s coherence with read/write).

    ``alloc`` says which pages hold data, as tmpfs's page cache does
    (mm/shmem.c): None while every page below the size does (the usual
    case: a file written from the start), else the set of page numbers
    (4 KiB pages) that were written. A page never written reads as zeros
    and is a hole for lseek's SEEK_HOLE/SEEK_DATA and st_blocks (a hole
    written only through a shared mapping still counts as one).
    ``seals`` is the F_SEAL_* mask of a shmem file (memfd_create(2)), or
    None on a file system without seals (F_GET_SEALS is EINVAL there).
    """

    __slots__ = ("data", "mapping", "alloc", "seals")

    def __init__(self, fs, mode, uid=0, gid=0, data: bytearray | None = None,
                 seals: int | None = None, **kw):
        super().__init__(fs, _stat.S_IFREG | (mode & 0o7777), uid, gid, **kw)
        self.data = bytearray() if data is None else data
        self.mapping = None
        self.alloc: set[int] | None = None
        self.seals = seals

    def is_reg(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return len(self.data)

    def blocks(self) -> int:
        if self.alloc is None:
            return super().blocks()
        return len(self.alloc) << 3

    def leave_holes(self, old_size: int, end_page: int) -> None:
        """The file grows from ``old_size`` bytes with pages up to (not
        including) ``end_page`` unwritten: those past the old data are holes."""
        if self.alloc is None and end_page > _pages(old_size):
            self.alloc = set(range(_pages(old_size)))

    def sync(self, offset: int = 0, length: int | None = None) -> None:
        """Bring ``data`` up to date with pages written through shared mappings
        ([offset, offset+length) bytes; everything when length is None)."""
        mapping = self.mapping
        if mapping is not None and mapping.dirty:
            mapping.sync(offset, len(self.data) - offset if length is None else length)

    def read_at(self, n: int, offset: int) -> bytes:
        """Up to ``n`` bytes at byte ``offset`` (fewer at the end of the file)."""
        if self.mapping is not None:
            self.sync(offset, n)
        return self.data[offset:offset + n]

    def truncate(self, length: int) -> None:
        """Set the size to ``length`` bytes (zeros when it grows); times change."""
        self.sync()
        data = self.data
        old = len(data)
        if length < old:
            del data[length:]
            if self.alloc is not None:
                keep = _pages(length)
                self.alloc = {p for p in self.alloc if p < keep}
        elif length > old:
            self.leave_holes(old, _pages(length))
            data.extend(bytes(length - old))
        if self.mapping is not None:
            self.mapping.truncated(old, length)
        self.modified()

    def write_at(self, buf, offset: int) -> int:
        """Store ``buf`` at byte ``offset`` (a gap before it reads as zeros)."""
        data = self.data
        n = len(buf)
        if n == 0:
            return 0
        mapping = self.mapping
        if mapping is not None:
            self.sync(offset, n)
        old = len(data)
        if offset > old:
            self.leave_holes(old, offset // PAGE_SIZE)
            data.extend(bytes(offset - old))
        if self.alloc is not None:
            self.alloc.update(range(offset // PAGE_SIZE, (offset + n - 1) // PAGE_SIZE + 1))
        data[offset:offset + n] = buf
        if mapping is not None:
            lo = min(old, offset)
            mapping.refresh(lo, offset + n - lo)
        self.mtime_ns = self.ctime_ns = now_ns()
        return n

    def zero_range(self, offset: int, end: int, extend: bool) -> None:
        """Zero bytes [offset, end) inside the file; grow it to ``end`` if ``extend``
        (fallocate(2)'s PUNCH_HOLE, ZERO_RANGE and plain allocation; new
        pages are holes)."""
        data = self.data
        old = len(data)
        stop = min(end, old)
        if self.mapping is not None:
            self.sync(offset, stop - offset)
        if offset < stop:
            data[offset:stop] = bytes(stop - offset)
        if extend and end > old:
            self.leave_holes(old, _pages(end))
            data.extend(bytes(end - old))
        if self.mapping is not None:
            lo = min(offset, old)
            self.mapping.refresh(lo, max(end, old) - lo)

    def punch_hole(self, offset: int, end: int) -> None:
        """Zero bytes [offset, end) below the size; the whole pages among
        them become holes (fallocate FALLOC_FL_PUNCH_HOLE, as shmem)."""
        size = len(self.data)
        if offset >= min(end, size):
            return
        self.zero_range(offset, end, extend=False)
        first, last = _pages(offset), min(end // PAGE_SIZE, _pages(size))
        if first < last:
            if self.alloc is None:
                self.alloc = set(range(_pages(size)))
            self.alloc.difference_update(range(first, last))

    def seek_data(self, offset: int) -> int:
        """lseek SEEK_DATA: the first byte >= ``offset`` in a data page.

        ENXIO when ``offset`` is at or past the end, or only holes follow.
        """
        size = len(self.data)
        if offset < 0 or offset >= size:
            raise SyscallError(errno.ENXIO)
        if self.alloc is None:
            return offset
        alloc = self.alloc
        for page in range(offset // PAGE_SIZE, _pages(size)):
            if page in alloc:
                return max(offset, page * PAGE_SIZE)
        raise SyscallError(errno.ENXIO)

    def seek_hole(self, offset: int) -> int:
        """lseek SEEK_HOLE: the first byte >= ``offset`` in a hole page, or
        the size (the end of a file counts as a hole). ENXIO at or past the end."""
        size = len(self.data)
        if offset < 0 or offset >= size:
            raise SyscallError(errno.ENXIO)
        if self.alloc is None:
            return size
        alloc = self.alloc
        for page in range(offset // PAGE_SIZE, _pages(size)):
            if page not in alloc:
                return min(max(offset, page * PAGE_SIZE), size)
        return size


class Lower:
    """A host entry of a copied-up overlay directory, not looked up yet.

    ``d_ino``/``d_type`` are what the host's listing said (getdents64
    reports them without an lstat).
    """

    __slots__ = ("d_ino", "d_type")

    def __init__(self, d_ino: int, d_type: int):
        self.d_ino = d_ino
        self.d_type = d_type


class DirInode(Inode):
    """A directory: ``entries`` (name -> child) and their getdents cookies.

    ``parent`` is the directory holding it (itself for a file system's
    root); ``lower`` the host directory a copied-up overlay directory came
    from (the ``Lower`` entries are looked up there); ``bogo_size`` is
    tmpfs's st_size, or None to report ``host_size`` (a copied-up host
    directory keeps the host's size). ``version`` grows with every change
    (an open directory's reading position uses it to skip a rescan).
    """

    __slots__ = ("entries", "cookies", "next_cookie", "parent", "lower", "host_size",
                 "version")

    def __init__(self, fs, mode, uid=0, gid=0, parent: "DirInode | None" = None,
                 lower: bytes | None = None, host_size: int | None = None, **kw):
        super().__init__(fs, _stat.S_IFDIR | (mode & 0o7777), uid, gid, **kw)
        self.nlink = 2
        self.entries: dict[bytes, object] = {}
        self.cookies: dict[bytes, int] = {}
        self.next_cookie = FIRST_COOKIE
        self.parent = self if parent is None else parent
        self.lower = lower
        self.host_size = host_size
        self.version = 0

    def is_dir(self) -> bool:
        return True

    @property
    def size(self) -> int:
        if self.host_size is not None:
            return self.host_size
        return BOGO_DIRENT_SIZE * (2 + len(self.entries))

    def blocks(self) -> int:
        return 0 if self.host_size is None else ((self.host_size + 4095) >> 12) << 3

    def lookup(self, name: bytes):
        """The child called ``name`` (HostInode or Inode), or None."""
        child = self.entries.get(name)
        if type(child) is Lower:
            from kvmsentry.kernel.vfs.overlay import HostInode  # the overlay's only
            base = self.lower
            child = HostInode.lookup_host((b"" if base == b"/" else base) + b"/" + name)
            if child is None:  # gone from the host since the copy-up
                self.remove(name)
                return None
            self.entries[name] = child  # keeps its place (and cookie)
        return child

    def add(self, name: bytes, child) -> None:
        """Insert a new entry (with a new cookie); the caller checked it is absent."""
        self.entries[name] = child
        self.cookies[name] = self.next_cookie
        self.next_cookie += 1
        self.version += 1
        if isinstance(child, DirInode):
            child.parent = self

    def replace(self, name: bytes, child) -> None:
        """Put ``child`` in place of the entry ``name`` (same cookie)."""
        self.entries[name] = child
        self.version += 1
        if isinstance(child, DirInode):
            child.parent = self

    def remove(self, name: bytes):
        """Drop the entry ``name``; returns what it was."""
        child = self.entries.pop(name)
        del self.cookies[name]
        self.version += 1
        return child

    def empty(self) -> bool:
        return not self.entries


class SymlinkInode(Inode):
    """A symbolic link; ``target`` is what readlink returns."""

    __slots__ = ("target",)

    def __init__(self, fs, target: bytes, uid=0, gid=0, **kw):
        super().__init__(fs, _stat.S_IFLNK | 0o777, uid, gid, **kw)
        self.target = target

    def is_symlink(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return len(self.target)

    def blocks(self) -> int:
        return 0

    def readlink(self) -> bytes:
        return self.target


class SpecialInode(Inode):
    """A FIFO, socket or device node (metadata only)."""

    __slots__ = ()

    def __init__(self, fs, mode, uid=0, gid=0, rdev: int = 0, **kw):
        super().__init__(fs, mode, uid, gid, **kw)
        self.rdev = rdev


class FifoInode(SpecialInode):
    """A FIFO made by mknod(2)/mkfifo(3): opening it opens ``pipe`` (fifo(7)).

    ``pipe`` is the Pipe both ends share while any end is open (made on
    the first open; a new one when every end had closed, as Linux frees
    the pipe then). Opening is kvmsentry.kernel.vfs.fifo's.
    """

    __slots__ = ("pipe",)

    def __init__(self, fs, mode, uid=0, gid=0, **kw):
        super().__init__(fs, mode, uid, gid, **kw)
        self.pipe = None


def child_d_type(child) -> int:
    """The DT_* of a directory entry's child (any kind)."""
    if type(child) is Lower:
        return child.d_type
    return (child.mode >> 12) & 0o17


def child_ino(child) -> int:
    if type(child) is Lower:
        return child.d_ino
    return child.ino


_next_anon_minor = [0x40]


def anon_dev() -> int:
    """A new anonymous device number (0:N) for a file system, as get_anon_bdev."""
    _next_anon_minor[0] += 1
    return os.makedev(0, _next_anon_minor[0])


class Filesystem:
    """A superblock: device number, inode numbers, directory operations.

    The operations take writable ``DirInode`` parents (the overlay makes
    them writable first) and raise SyscallError with Linux's errno for
    what only the file system can know; path-level checks (".", "..",
    trailing slashes, EXDEV) are namei's (files.py).
    """

    magic = 0
    name = b""
    file_seals: int | None = None  # a new regular file's seals (None: not sealable)

    def __init__(self):
        self.dev = anon_dev()
        self._next_ino = 1

    def new_ino(self) -> int:
        self._next_ino += 1
        return self._next_ino

    # -- overridden by the overlay ---------------------------------------
    def writable_dir(self, names: list[bytes]) -> DirInode:
        """The directory at ``names`` (from this file system's root), ready to change."""
        d = self.root
        for name in names:
            d = d.lookup(name)
            if not isinstance(d, DirInode):
                raise SyscallError(errno.ENOENT)
        return d

    def writable_child(self, parent: DirInode, name: bytes) -> Inode:
        """The child ``name`` of writable ``parent``, itself writable (copied up)."""
        child = parent.lookup(name)
        if child is None:
            raise SyscallError(errno.ENOENT)
        return child

    def dir_empty(self, node) -> bool:
        return node.empty()

    # -- creating ----------------------------------------------------------
    def _owner(self, parent: DirInode, uid: int, gid: int, mode: int, is_dir: bool):
        """inode_init_owner: a set-group-ID parent gives its group (and the bit to dirs)."""
        if parent.mode & _stat.S_ISGID:
            gid = parent.gid
            if is_dir:
                mode |= _stat.S_ISGID
        return mode, gid

    def _link_in(self, parent: DirInode, name: bytes, child: Inode, t: int) -> None:
        parent.add(name, child)
        parent.modified(t)

    def create(self, parent: DirInode, name: bytes, mode: int, uid: int, gid: int) -> RegularInode:
        """A new empty regular file (mode already umask'd)."""
        t = now_ns()
        mode, gid = self._owner(parent, uid, gid, mode, False)
        inode = RegularInode(self, mode, uid, gid, seals=self.file_seals, t=t)
        self._link_in(parent, name, inode, t)
        return inode

    def mknod(self, parent: DirInode, name: bytes, mode: int, rdev: int, uid: int,
              gid: int) -> Inode:
        t = now_ns()
        perm, gid = self._owner(parent, uid, gid, mode & 0o7777, False)
        if _stat.S_ISFIFO(mode):
            inode = FifoInode(self, _stat.S_IFIFO | perm, uid, gid, t=t)
        else:
            inode = SpecialInode(self, (mode & S_IFMT) | perm, uid, gid, rdev=rdev, t=t)
        self._link_in(parent, name, inode, t)
        return inode

    def mkdir(self, parent: DirInode, name: bytes, mode: int, uid: int, gid: int) -> DirInode:
        t = now_ns()
        mode, gid = self._owner(parent, uid, gid, mode, True)
        inode = DirInode(self, mode, uid, gid, parent=parent, t=t)
        self._link_in(parent, name, inode, t)
        parent.nlink += 1
        return inode

    def symlink(self, parent: DirInode, name: bytes, target: bytes, uid: int,
                gid: int) -> SymlinkInode:
        t = now_ns()
        _, gid = self._owner(parent, uid, gid, 0, False)
        inode = SymlinkInode(self, target, uid, gid, t=t)
        self._link_in(parent, name, inode, t)
        return inode

    def link(self, parent: DirInode, name: bytes, inode: Inode) -> None:
        t = now_ns()
        inode.nlink += 1
        inode.changed(t)
        self._link_in(parent, name, inode, t)

    # -- removing ----------------------------------------------------------
    def unlink(self, parent: DirInode, name: bytes) -> None:
        """Remove a non-directory entry (the caller checked it is not one)."""
        child = parent.lookup(name)
        t = now_ns()
        parent.remove(name)
        parent.modified(t)
        if isinstance(child, Inode):
            child.nlink -= 1
            child.changed(t)

    def rmdir(self, parent: DirInode, name: bytes) -> None:
        """Remove an empty directory entry: ENOTEMPTY when it is not."""
        child = parent.lookup(name)
        if not self.dir_empty(child):
            raise SyscallError(errno.ENOTEMPTY)
        t = now_ns()
        parent.remove(name)
        parent.modified(t)
        parent.nlink -= 1
        if isinstance(child, Inode):
            child.nlink = 0
            child.changed(t)

    def rename(self, old_dir: DirInode, old_name: bytes, new_dir: DirInode,
               new_name: bytes, exchange: bool = False) -> None:
        """Move an entry (replacing what ``new_name`` named), or swap two.

        The caller has checked the kinds (ENOTDIR/EISDIR), loops (EINVAL)
        and flags; ENOTEMPTY for a non-empty directory being replaced.
        """
        t = now_ns()
        src = old_dir.lookup(old_name)
        dst = new_dir.lookup(new_name)
        src_dir = src.is_dir()
        if exchange:
            dst_dir = dst.is_dir()
            old_dir.replace(old_name, dst)
            new_dir.replace(new_name, src)
            if src_dir != dst_dir and old_dir is not new_dir:
                delta = 1 if src_dir else -1
                new_dir.nlink += delta
                old_dir.nlink -= delta
            for node in (src, dst):
                if isinstance(node, Inode):
                    node.changed(t)
        else:
            if dst is not None:
                if dst.is_dir():
                    if not self.dir_empty(dst):
                        raise SyscallError(errno.ENOTEMPTY)
                    new_dir.nlink -= 1
                    if isinstance(dst, Inode):
                        dst.nlink = 0
                elif isinstance(dst, Inode):
                    dst.nlink -= 1
                if isinstance(dst, Inode):
                    dst.changed(t)
                new_dir.remove(new_name)
            old_dir.remove(old_name)
            new_dir.add(new_name, src)
            if src_dir:
                old_dir.nlink -= 1
                new_dir.nlink += 1
            if isinstance(src, Inode):
                src.changed(t)
        old_dir.modified(t)
        new_dir.modified(t)

    # -- statfs ----------------------------------------------------------
    def statfs(self) -> dict:
        raise NotImplementedError
