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
    DT_DIR, O_APPEND, O_LARGEFILE, OPEN_ONLY_FLAGS, SEEK_CUR, SEEK_DATA, SEEK_END,
    SEEK_HOLE, SEEK_SET, Dirent, File,
)
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs.inode import (
    FIRST_COOKIE, DirInode, RegularInode, child_d_type, child_ino,
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


class RegularFile(File):
    """An open in-memory regular file."""

    full_reads = True

    def __init__(self, inode: RegularInode, flags: int, guest_path: bytes):
        super().__init__(flags, guest_path)
        self.inode = inode
        self.pos = 0

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
        n = inode.write_at(data, pos)
        self.pos = pos + n
        return n

    def pwrite(self, data, offset: int) -> int:
        inode = self.inode
        if self.flags & O_APPEND:  # Linux appends even with an offset (pwrite(2) BUGS)
            offset = len(inode.data)
        check_size(offset + len(data))
        return inode.write_at(data, offset)

    def lseek(self, offset: int, whence: int) -> int:
        size = len(self.inode.data)
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = self.pos + offset
        elif whence == SEEK_END:
            new = size + offset
        elif whence in (SEEK_DATA, SEEK_HOLE):
            if offset < 0 or offset >= size:
                raise SyscallError(errno.ENXIO)
            new = offset if whence == SEEK_DATA else size
        else:
            raise SyscallError(errno.EINVAL)
        if new < 0:
            raise SyscallError(errno.EINVAL)
        self.pos = new
        return new

    def stat(self) -> Stat:
        return self.inode.stat()

    def truncate(self, length: int) -> None:
        check_size(length)
        self.inode.truncate(length)

    def fallocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2): mode 0 or KEEP_SIZE (space is not reserved), PUNCH_HOLE
        or ZERO_RANGE (zeros); EOPNOTSUPP for other modes."""
        inode = self.inode
        end = offset + length
        size = len(inode.data)
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise SyscallError(errno.EOPNOTSUPP)
        if mode & FALLOC_FL_PUNCH_HOLE:
            if not mode & FALLOC_FL_KEEP_SIZE or mode & FALLOC_FL_ZERO_RANGE:
                raise SyscallError(errno.EOPNOTSUPP)
            if offset < min(end, size):
                inode.zero_range(offset, end, extend=False)
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


class DirectoryFile(File):
    """An open in-memory directory; ``parent_ino`` is what ``..`` reports."""

    def __init__(self, inode: DirInode, flags: int, guest_path: bytes, parent_ino: int):
        super().__init__(flags, guest_path)
        self.inode = inode
        self.parent_ino = parent_ino
        self.pos = 0
        # (inode.version, pos, index): where the last listing stopped.
        self._hint = (-1, 0, 0)

    def is_dir(self) -> bool:
        return True

    def read(self, n: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def pread(self, n: int, offset: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def stat(self) -> Stat:
        return self.inode.stat()

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

    def getdents(self):
        d = self.inode
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

    def seek_dir(self, position: int) -> None:
        self.pos = position

    def reopen(self, flags: int) -> "DirectoryFile":
        return DirectoryFile(self.inode, (flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE,
                             self.guest_path, self.parent_ino)
