"""Open file descriptions of in-memory inodes (tmpfs and the overlay's copies).

``RegularFile`` reads and writes a ``RegularInode``'s bytearray at its own
offset (shared by dup'd fds, as every File's); an O_APPEND write goes to
the end in the same step (atomic: the kernel lock is held). Reads are one
slice and one copy, fstat builds a Stat from the inode's fields.
``DirectoryFile`` lists a ``DirInode`` by cookie: d_off is the cookie of
the entry, so a position survives entries being added or removed
(mm/shmem.c's offset map since Linux 6.6).
"""

from __future__ import annotations

import errno

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel.fd import (
    DT_DIR, O_APPEND, O_DIRECT, O_LARGEFILE, OPEN_ONLY_FLAGS, SEEK_CUR, SEEK_DATA, SEEK_END,
    SEEK_HOLE, SEEK_SET, Dirent, File,
)
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs.inode import (
    F_ALL_SEALS, F_SEAL_EXEC, F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL,
    F_SEAL_SHRINK, F_SEAL_WRITE, FIRST_COOKIE, PAGE_SIZE, DirInode, RegularInode,
    child_d_type, child_ino,
)

# An in-memory file cannot be bigger than this (bytes): a write or
# truncate past it is EFBIG, before Python tries to allocate it.
MAX_MEM_FILESIZE = 1 << 40

# fallocate(2) modes (include/uapi/linux/falloc.h)
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10


def check_size(length: int) -> None:
    if length > MAX_MEM_FILESIZE:
        raise SyscallError(errno.EFBIG)


def copy_data(src: File, dst: File, count: int, pos_in: int | None = None,
              pos_out: int | None = None, chunk: int = 1 << 20) -> int:
    """Move up to ``count`` bytes from ``src`` to ``dst`` by reads and writes
    of ``chunk`` bytes: sendfile(2) and copy_file_range(2) without a splice.

    Each side uses its file offset (None) or the position given, which it
    leaves alone. Returns the bytes moved: short at EOF, at a short write
    (what was read but not written is given back to src's offset), or at
    an error after some bytes; the error itself when none moved. EFBIG for
    a position write past MAX_MEM_FILESIZE.
    """
    done = 0
    while done < count:
        n = min(chunk, count - done)
        try:
            data = src.read(n) if pos_in is None else src.pread(n, pos_in + done)
            if not data:
                break
            if pos_out is None:
                w = dst.write(data)
            else:
                check_size(pos_out + done + len(data))
                w = dst.pwrite(data, pos_out + done)
        except SyscallError:
            if done:
                break
            raise
        done += w
        if w < len(data):
            if pos_in is None:
                src.lseek(w - len(data), SEEK_CUR)
            break
    return done


def _sealed_count(inode: RegularInode, pos: int, n: int) -> int:
    """How many of ``n`` bytes at ``pos`` the seals let a write store.

    As shmem_write_begin, page by page: EPERM under F_SEAL_WRITE or
    F_SEAL_FUTURE_WRITE, and under F_SEAL_GROW for the first page-sized
    piece that would grow the file (a later one shortens the write).
    """
    seals = inode.seals
    if not seals or not seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_GROW):
        return n
    if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE):
        raise SyscallError(errno.EPERM)
    size = len(inode.data)
    if pos + n <= size:
        return n
    # The pieces end at page boundaries; the first that passes the size stops.
    piece_end = min(pos + n, (pos // PAGE_SIZE + 1) * PAGE_SIZE)
    if piece_end > size:
        raise SyscallError(errno.EPERM)
    return (size // PAGE_SIZE) * PAGE_SIZE - pos


def get_seals(file: File) -> int:
    """fcntl(F_GET_SEALS): the F_SEAL_* mask; EINVAL for a file that cannot
    be sealed (not on tmpfs or a memfd) (mm/memfd.c memfd_fcntl)."""
    inode = getattr(file, "inode", None)
    if not isinstance(inode, RegularInode) or inode.seals is None:
        raise SyscallError(errno.EINVAL)
    return inode.seals


def add_seals(file: File, seals: int) -> None:
    """fcntl(F_ADD_SEALS) as mm/memfd.c memfd_add_seals.

    EPERM for a file not open for writing or already F_SEAL_SEAL'd,
    EINVAL for unknown seal bits or a file that cannot be sealed. F_SEAL_EXEC
    on an executable file adds the write seals too (W^X). EBUSY for
    F_SEAL_WRITE while a MAP_SHARED mapping may write the file (mmap then
    refuses writable shared mappings: syscalls/mm.py).
    """
    if not file.writable:
        raise SyscallError(errno.EPERM)
    if seals & ~F_ALL_SEALS:
        raise SyscallError(errno.EINVAL)
    current = get_seals(file)
    if current & F_SEAL_SEAL:
        raise SyscallError(errno.EPERM)
    inode = file.inode
    if seals & F_SEAL_EXEC and inode.mode & 0o111:
        seals |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE
    if seals & F_SEAL_WRITE and not current & F_SEAL_WRITE and inode.mapping is not None \
            and inode.mapping.writably_mapped():
        raise SyscallError(errno.EBUSY)
    inode.seals = current | seals


class RegularFile(File):
    """An open in-memory regular file."""

    full_reads = True

    def __init__(self, inode: RegularInode, flags: int, guest_path: bytes):
        super().__init__(flags, guest_path)
        self.inode = inode
        self.pos = 0

    def fast_readable(self) -> bool:
        # Its InodeMapping tells the fast readers of every change (pagecache.py).
        return not self.flags & O_DIRECT

    def read(self, n: int) -> bytes:
        pos = self.pos
        data = self.inode.read_at(n, pos)
        self.pos = pos + len(data)
        return data

    def pread(self, n: int, offset: int) -> bytes:
        return self.inode.read_at(n, offset)

    def write(self, data) -> int:
        inode = self.inode
        pos = len(inode.data) if self.flags & O_APPEND else self.pos
        check_size(pos + len(data))
        if inode.seals:
            data = data[:_sealed_count(inode, pos, len(data))]
        n = inode.write_at(data, pos)
        self.pos = pos + n
        return n

    def pwrite(self, data, offset: int) -> int:
        inode = self.inode
        if self.flags & O_APPEND:  # Linux appends even with an offset (pwrite(2) BUGS)
            offset = len(inode.data)
        check_size(offset + len(data))
        if inode.seals:
            data = data[:_sealed_count(inode, offset, len(data))]
        return inode.write_at(data, offset)

    def lseek(self, offset: int, whence: int) -> int:
        size = len(self.inode.data)
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = self.pos + offset
        elif whence == SEEK_END:
            new = size + offset
        elif whence == SEEK_DATA:
            new = self.inode.seek_data(offset)
        elif whence == SEEK_HOLE:
            new = self.inode.seek_hole(offset)
        else:
            raise SyscallError(errno.EINVAL)
        if new < 0:
            raise SyscallError(errno.EINVAL)
        self.pos = new
        return new

    def stat(self) -> Stat:
        return self.inode.stat()

    def truncate(self, length: int) -> None:
        """ftruncate(2): EFBIG past MAX_MEM_FILESIZE, EPERM against F_SEAL_SHRINK
        or F_SEAL_GROW (shmem_setattr)."""
        check_size(length)
        inode = self.inode
        seals = inode.seals
        if seals and ((length < len(inode.data) and seals & F_SEAL_SHRINK)
                      or (length > len(inode.data) and seals & F_SEAL_GROW)):
            raise SyscallError(errno.EPERM)
        inode.truncate(length)

    def fallocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2): mode 0 or KEEP_SIZE (space is not reserved), PUNCH_HOLE
        or ZERO_RANGE (zeros); EOPNOTSUPP for other modes."""
        inode = self.inode
        end = offset + length
        size = len(inode.data)
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise SyscallError(errno.EOPNOTSUPP)
        seals = inode.seals or 0
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) and seals & (
                F_SEAL_WRITE | F_SEAL_FUTURE_WRITE):
            raise SyscallError(errno.EPERM)
        if seals & F_SEAL_GROW and end > size and not mode & FALLOC_FL_KEEP_SIZE:
            raise SyscallError(errno.EPERM)
        if mode & FALLOC_FL_PUNCH_HOLE:
            if not mode & FALLOC_FL_KEEP_SIZE or mode & FALLOC_FL_ZERO_RANGE:
                raise SyscallError(errno.EOPNOTSUPP)
            if offset < min(end, size):
                inode.punch_hole(offset, end)
                inode.modified()
            return
        if mode & FALLOC_FL_ZERO_RANGE:
            extend = end > size and not mode & FALLOC_FL_KEEP_SIZE
            if extend:
                check_size(end)
            inode.zero_range(offset, end, extend=extend)
            inode.modified()
            return
        if end > size and not mode & FALLOC_FL_KEEP_SIZE:
            check_size(end)
            inode.zero_range(size, end, extend=True)
            inode.changed()

    def reopen(self, flags: int) -> "RegularFile":
        return RegularFile(self.inode, (flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE, self.guest_path)


class OpenDirectory(File):
    """What every open directory shares: ``pos`` is the getdents64 position
    (the d_off of the last entry returned); read and pread are EISDIR;
    lseek takes SEEK_SET and SEEK_CUR only (EINVAL otherwise and for a
    negative result), as dcache_dir_lseek. Subclasses list the entries."""

    def __init__(self, flags: int, guest_path: bytes):
        super().__init__(flags, guest_path)
        self.pos = 0

    def is_dir(self) -> bool:
        return True

    def read(self, n: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def pread(self, n: int, offset: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def lseek(self, offset: int, whence: int) -> int:
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = self.pos + offset
        else:
            raise SyscallError(errno.EINVAL)
        if new < 0:
            raise SyscallError(errno.EINVAL)
        self.pos = new
        return new

    def seek_dir(self, position: int) -> None:
        self.pos = position


class DirectoryFile(OpenDirectory):
    """An open in-memory directory; ``parent_ino`` is what ``..`` reports."""

    def __init__(self, inode: DirInode, flags: int, guest_path: bytes, parent_ino: int):
        super().__init__(flags, guest_path)
        self.inode = inode
        self.parent_ino = parent_ino
        # (inode.version, pos, index): where the last listing stopped.
        self._hint = (-1, 0, 0)

    def stat(self) -> Stat:
        return self.inode.stat()

    def getdents(self):
        d = self.inode
        if d.nlink == 0:
            raise SyscallError(errno.ENOENT)  # removed (iterate_dir's IS_DEADDIR)
        pos = self.pos
        if pos < 1:
            yield 1, Dirent(d.ino, DT_DIR, b".")
        if pos < 2:
            yield 2, Dirent(self.parent_ino, DT_DIR, b"..")
        names = list(d.entries)
        cookies = d.cookies
        version, hint_pos, index = self._hint
        if not (version == d.version and hint_pos == pos and pos >= FIRST_COOKIE):
            index = 0
            while index < len(names) and cookies[names[index]] <= pos:
                index += 1
        entries = d.entries
        prev = pos
        for i in range(index, len(names)):
            name = names[i]
            child = entries[name]
            cookie = cookies[name]
            # The caller seeks to the last cookie it took: resume at i then.
            self._hint = (d.version, prev, i)
            prev = cookie
            yield cookie, Dirent(child_ino(child), child_d_type(child), name)
        self._hint = (d.version, prev, len(names))

    def reopen(self, flags: int) -> "DirectoryFile":
        return DirectoryFile(self.inode, (flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE,
                             self.guest_path, self.parent_ino)
