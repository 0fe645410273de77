"""memfd_create(2), copy_file_range(2) and flock(2).

Importing this module registers the handlers. A memfd is an unlinked
in-memory regular file (a ``RegularInode`` of the sentry's memfd tmpfs,
nlink 0) opened O_RDWR: read, write, mmap, ftruncate work as on a tmpfs
file; /proc/self/fd shows "/memfd:NAME (deleted)". Seals (fcntl
F_ADD_SEALS/F_GET_SEALS) are the inode's, enforced by vfs.file.
"""

from __future__ import annotations

import errno
import stat
import struct

from kvmsentry.kernel.fd import O_APPEND, O_LARGEFILE, O_PATH, O_RDWR, File, nofile_limit
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall
from kvmsentry.kernel.vfs import flock as _flock
from kvmsentry.kernel.vfs.file import RegularFile, copy_data
from kvmsentry.kernel.vfs.inode import F_SEAL_EXEC, F_SEAL_SEAL, RegularInode
from kvmsentry.kernel.vfs.tmpfs import Tmpfs

# include/uapi/linux/memfd.h
MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_HUGETLB = 0x0004
MFD_NOEXEC_SEAL = 0x0008
MFD_EXEC = 0x0010
MFD_NAME_PREFIX = b"memfd:"
MFD_NAME_MAX_LEN = 255 - len(MFD_NAME_PREFIX)  # 249 bytes (mm/memfd.c)

S64 = struct.Struct("<q")
CHUNK = 1 << 20
MAX_RW_COUNT = 0x7FFFF000

_MEMFD_FS = Tmpfs(0o1777)  # the internal shmem mount memfds live on


def make_memfd(name: bytes, uid: int = 0, gid: int = 0, flags: int = 0) -> RegularFile:
    """A new memfd's open file description (O_RDWR, an unlinked 0777 file).

    Seals as mm/memfd.c memfd_create: F_SEAL_SEAL (no more seals) unless
    MFD_ALLOW_SEALING; MFD_NOEXEC_SEAL makes it 0666 with F_SEAL_EXEC and
    sealable.
    """
    mode, seals = 0o777, F_SEAL_SEAL
    if flags & MFD_NOEXEC_SEAL:
        mode, seals = 0o666, F_SEAL_EXEC
    elif flags & MFD_ALLOW_SEALING:
        seals = 0
    inode = RegularInode(_MEMFD_FS, mode, uid, gid, seals=seals)
    inode.nlink = 0
    return RegularFile(inode, O_RDWR | O_LARGEFILE, b"/memfd:" + name + b" (deleted)")


@syscall("memfd_create", PARTIAL, "no MFD_HUGETLB; F_SEAL_WRITE does not see mappings")
def sys_memfd_create(task, name, flags):
    """Implements Linux syscall memfd_create(2).

    EINVAL for unknown flags, MFD_EXEC with MFD_NOEXEC_SEAL, MFD_HUGETLB
    (no huge pages here) or a name longer than 249 bytes; EFAULT for a bad
    name pointer; EMFILE.
    """
    flags &= 0xFFFFFFFF
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC | MFD_HUGETLB):
        raise SyscallError(errno.EINVAL)
    if flags & MFD_HUGETLB or (flags & MFD_EXEC and flags & MFD_NOEXEC_SEAL):
        raise SyscallError(errno.EINVAL)
    try:
        raw = task.mm.read_cstring(name, MFD_NAME_MAX_LEN + 1)
    except SyscallError:
        raise SyscallError(errno.EINVAL) from None
    creds = task.process.creds
    file = make_memfd(raw, creds.euid, creds.egid, flags)
    return task.fds.install(file, cloexec=bool(flags & MFD_CLOEXEC),
                            limit=nofile_limit(task.process))


def _file_for(task, fd: int, write: bool) -> File:
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH or not (file.writable if write else file.readable):
        raise SyscallError(errno.EBADF)
    return file


def _offset_in(task, ptr: int) -> int | None:
    if not ptr:
        return None
    pos = S64.unpack(task.mm.copy_in(ptr, 8))[0]
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    return pos


@syscall("copy_file_range")
def sys_copy_file_range(task, fd_in, off_in, fd_out, off_out, length, flags):
    """Implements Linux syscall copy_file_range(2) by reads and writes of 1 MiB.

    ``off_in``/``off_out`` (guest loff_t*, may be NULL) are used and
    advanced instead of the file offsets. EBADF for fd_in not readable,
    fd_out not writable or opened O_APPEND; EINVAL for flags != 0, a
    negative offset, a file that is not regular, or overlapping ranges of
    one file; EISDIR for a directory. Returns the bytes copied (0 at EOF).
    """
    src = _file_for(task, fd_in, False)
    dst = _file_for(task, fd_out, True)
    if flags & 0xFFFFFFFF:
        raise SyscallError(errno.EINVAL)
    if dst.flags & O_APPEND:
        raise SyscallError(errno.EBADF)
    if src.is_dir() or dst.is_dir():
        raise SyscallError(errno.EISDIR)
    st_in, st_out = src.stat(), dst.stat()
    if not stat.S_ISREG(st_in.st_mode) or not stat.S_ISREG(st_out.st_mode):
        raise SyscallError(errno.EINVAL)
    pos_in = _offset_in(task, off_in)
    pos_out = _offset_in(task, off_out)
    count = min(length, MAX_RW_COUNT)
    if (st_in.st_dev, st_in.st_ino) == (st_out.st_dev, st_out.st_ino):
        a = src.lseek(0, 1) if pos_in is None else pos_in
        b = dst.lseek(0, 1) if pos_out is None else pos_out
        span = max(0, min(count, st_in.st_size - a))  # Linux checks what it would copy
        if a < b + span and b < a + span:
            raise SyscallError(errno.EINVAL)
    done = copy_data(src, dst, count, pos_in, pos_out, CHUNK)
    if pos_in is not None:
        task.mm.copy_out(off_in, S64.pack(pos_in + done))
    if pos_out is not None:
        task.mm.copy_out(off_out, S64.pack(pos_out + done))
    return done


@syscall("flock")
def sys_flock(task, fd, operation):
    """Implements Linux syscall flock(2) (kvmsentry.kernel.vfs.flock).

    EBADF for a bad or O_PATH fd; EINVAL for an unknown operation;
    EWOULDBLOCK with LOCK_NB when another open file description holds a
    conflicting lock; a blocking flock is interrupted by signals
    (ERESTARTSYS: EINTR, or a restart with SA_RESTART). As fs/locks.c
    since Linux 5.19, LOCK_MAND (32) is ignored (0, whatever the fd) and
    the operation is checked before the fd.
    """
    op = operation & 0xFFFFFFFF
    if op & 32:  # LOCK_MAND
        return 0
    if op & ~_flock.LOCK_NB not in (_flock.LOCK_SH, _flock.LOCK_EX, _flock.LOCK_UN):
        raise SyscallError(errno.EINVAL)
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH:
        raise SyscallError(errno.EBADF)
    _flock.flock(file, to_int(operation), task)
    return 0
