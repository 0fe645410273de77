"""File-system syscalls: I/O on fds, open/stat/readlink/access of paths, fd ops.

The guest's files come from ``kvmsentry.kernel.files`` (paths beneath the
read-only guest root, the sentry's /dev and /proc/self) and
``kvmsentry.kernel.fd`` (FdTable and open files). Importing this module
registers its handlers in the syscall table.

Arguments arrive as raw u64 registers; fds, dirfds and flags declared as
C ``int`` are narrowed with ``to_int`` and offsets declared ``loff_t``
with ``to_s64``. Counts above MAX_RW_COUNT are clamped like Linux
(fs/read_write.c).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import time

from kvmsentry.abi.structs import (
    IOVEC, LINUX_DIRENT64_HEADER, PROC_SUPER_MAGIC, ST_VALID, STAT, STATX, STATX__RESERVED, STATX_BASIC_STATS, TMPFS_MAGIC,
    UIO_MAXIOV, Stat, pack_statfs,
)
from kvmsentry.kernel import fastread
from kvmsentry.kernel import files as F
from kvmsentry.kernel.fd import (
    FIOCLEX, FIONBIO, FIONCLEX, MAX_RW_COUNT, O_APPEND, O_CLOEXEC,
    O_CREAT, O_NONBLOCK, O_PATH, O_TRUNC, O_WRONLY, SEEK_CUR, SEEK_END, SEEK_HOLE,
    SEEK_SET, SETFL_MASK,
    File, host_call, nofile_limit,
)
from kvmsentry.kernel.files import AT_FDCWD, read_path, to_int
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall
from kvmsentry.kernel.vfs import perm
from kvmsentry.kernel.vfs.inode import DirInode
from kvmsentry.kernel.vfs.file import RegularFile, add_seals, check_size, copy_data, get_seals

# include/uapi/linux/fcntl.h
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000  # statx(2)'s FORCE_SYNC | DONT_SYNC
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_DUPFD_CLOEXEC = 1030
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
FD_CLOEXEC = 1

S64 = struct.Struct("<q")
I32 = struct.Struct("<i")

# The end of the user address space with 4-level paging (access_ok's limit).
TASK_SIZE_MAX = (1 << 47) - 4096

# Bytes moved per host call in write/sendfile/getdents loops.
CHUNK = 1 << 20


def to_s64(value: int) -> int:
    """A raw register as a signed 64-bit value (loff_t, ssize_t)."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value


def _clamp(count: int, buf: int | None = None) -> int:
    """A size_t count as vfs_read/vfs_write use it.

    EFAULT when [buf, buf + count) is not below TASK_SIZE_MAX (access_ok),
    EINVAL when count is negative as ssize_t (rw_verify_area), else the
    count clamped to MAX_RW_COUNT.
    """
    if buf is not None and buf + count > TASK_SIZE_MAX:
        raise SyscallError(errno.EFAULT)
    if count & (1 << 63):
        raise SyscallError(errno.EINVAL)
    return min(count, MAX_RW_COUNT)


def _readable(task, fd: int) -> File:
    file = task.fds.get(to_int(fd))
    if not file.readable:
        raise SyscallError(errno.EBADF)
    return file


def _writable(task, fd: int) -> File:
    file = task.fds.get(to_int(fd))
    if not file.writable:
        raise SyscallError(errno.EBADF)
    return file


def _read_iovec(task, iov_gva: int, iovcnt: int) -> list[tuple[int, int]]:
    """The (base, len) pairs of a guest iovec array; EINVAL as rw_copy_check_uvector."""
    iovcnt = to_int(iovcnt)
    if iovcnt < 0 or iovcnt > UIO_MAXIOV:
        raise SyscallError(errno.EINVAL)
    if iovcnt == 0:
        return []
    raw = task.mm.copy_in(iov_gva, iovcnt * IOVEC.size)
    iovs = []
    total = 0
    for base, length in IOVEC.iter_unpack(raw):
        if length & (1 << 63):
            raise SyscallError(errno.EINVAL)
        # The total is clamped to MAX_RW_COUNT by shortening the tail.
        length = min(length, MAX_RW_COUNT - total)
        total += length
        iovs.append((base, length))
    return iovs


def _unread(file: File, n: int) -> None:
    """Move ``file``'s offset back over ``n`` bytes read but not stored (a bad
    buffer): Linux advances it by the bytes copied only (mm/filemap.c
    filemap_read). Streams (pipes, terminals) cannot seek: left as they are."""
    if n:
        try:
            file.lseek(-n, SEEK_CUR)
        except (OSError, SyscallError):
            pass


def _read_segments(task, file: File, iovs: list[tuple[int, int]],
                   offset: int | None = None) -> int:
    """Read into guest buffers ``iovs`` (base, len) in CHUNK-sized host reads.

    Files with ``full_reads`` (regular files, devices) are read until the
    buffers are full or EOF, as Linux does; streams get one read (a pipe
    or terminal returns what it has). A bad buffer after some bytes were
    stored returns the bytes stored, as Linux; before any, EFAULT. A pipe
    (``read_into``) is read buffer by buffer: a buffer that cannot be
    stored whole stays in the pipe (fs/pipe.c pipe_read).
    """
    total = sum(length for _, length in iovs)
    scatter = _Scatter(task, iovs)
    if offset is None and getattr(file, "read_into", None) is not None:
        return file.read_into(total, scatter.store)
    done = 0
    while done < total:
        n = min(CHUNK, total - done)
        data = file.read(n) if offset is None else file.pread(n, offset + done)
        try:
            scatter.store(done, data)
        except GuestFault:
            if offset is None:
                _unread(file, done + len(data) - scatter.stored)
            if not scatter.stored:
                raise
            return scatter.stored
        done += len(data)
        if len(data) < n or not file.full_reads:
            break
    return done


class _Scatter:
    """Consecutive chunks spread over the guest buffers ``iovs`` (base,
    len) in order: ``store(pos, chunk)`` is File.read_into's callback;
    ``stored`` counts the bytes copied out so far, so after a GuestFault it
    says where the bad buffer began."""

    def __init__(self, task, iovs: list[tuple[int, int]]):
        self.mm = task.mm
        self.iovs = iovs
        self.seg = self.seg_off = self.stored = 0

    def store(self, pos: int, chunk) -> None:
        view = memoryview(chunk)
        done = 0
        while done < len(view):
            base, length = self.iovs[self.seg]
            take = min(length - self.seg_off, len(view) - done)
            if take:
                self.mm.copy_out(base + self.seg_off, view[done:done + take])
                self.stored += take
            done += take
            self.seg_off += take
            if self.seg_off == length:
                self.seg, self.seg_off = self.seg + 1, 0


def _gather(task, iovs: list[tuple[int, int]]) -> bytes:
    return b"".join(task.mm.copy_in(base, length) for base, length in iovs if length)


def _write_all(file: File, task, buf_gva: int, count: int, offset: int | None = None) -> int:
    """Copy ``count`` guest bytes to ``file`` in CHUNK pieces; stop at a short write."""
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        data = task.mm.copy_in(buf_gva + done, n)
        try:
            if offset is None:
                w = file.write(data)
            else:
                w = file.pwrite(data, offset + done)
        except SyscallError:
            if done:
                return done
            raise
        done += w
        if w < n:
            break
    return done


# -- read / write ---------------------------------------------------------

@syscall("read")
def sys_read(task, fd, buf, count):
    """Implements Linux syscall read(2).

    ``count`` bytes at most (clamped to MAX_RW_COUNT). EBADF for a fd not
    open for reading, EISDIR for a directory, EFAULT for a bad buffer.
    """
    fd = to_int(fd)
    file = _readable(task, fd)
    count = _clamp(count, buf)
    read_into = getattr(file, "read_into", None)
    if read_into is not None:  # a pipe: each buffer is stored before it is taken
        mm = task.mm
        return read_into(count, lambda pos, chunk: mm.copy_out(buf + pos, chunk))
    if count <= CHUNK:  # the hot path: one host read, one copy
        data = file.read(count)
        if data:
            try:
                task.mm.copy_out(buf, data)
            except GuestFault:
                _unread(file, len(data))
                raise
        n = len(data)
    else:
        n = _read_segments(task, file, [(buf, count)])
    # A cached regular file: serve its next reads inside the guest (fastread.py).
    fastread.after_read(task, fd, file, n, count)
    return n


@syscall("write")
def sys_write(task, fd, buf, count):
    """Implements Linux syscall write(2).

    Writes in 1 MiB pieces (a short piece ends the call, as a short
    write). EBADF for a fd not open for writing, EFAULT for a bad buffer,
    the file's own errors (ENOSPC on /dev/full, EAGAIN, EPIPE).
    """
    file = _writable(task, fd)
    count = _clamp(count, buf)
    if count == 0:
        return file.write(b"") if getattr(file, "write_empty", False) else 0  # sockets
    return _write_all(file, task, buf, count)


@syscall("pread64")
def sys_pread64(task, fd, buf, count, pos):
    """Implements Linux syscall pread64(2).

    ``pos`` is a byte offset; the file offset is unchanged. EINVAL for a
    negative pos (before the fd is looked up: ksys_pread64), ESPIPE for a
    pipe or terminal, EISDIR for a directory.
    """
    pos = to_s64(pos)
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    file = _readable(task, fd)
    count = _clamp(count, buf)
    return _read_segments(task, file, [(buf, count)], pos)


@syscall("pwrite64")
def sys_pwrite64(task, fd, buf, count, pos):
    """Implements Linux syscall pwrite64(2).

    EINVAL for a negative ``pos`` (before the fd: ksys_pwrite64), ESPIPE
    for a pipe or terminal.
    """
    pos = to_s64(pos)
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    file = _writable(task, fd)
    count = _clamp(count, buf)
    if count == 0:
        return 0
    return _write_all(file, task, buf, count, pos)


@syscall("readv")
def sys_readv(task, fd, iov, iovcnt):
    """Implements Linux syscall readv(2).

    Reads fill the buffers in order (see _read_segments). EINVAL for
    iovcnt < 0 or > 1024 or an iov_len that is negative as ssize_t.
    """
    file = _readable(task, fd)
    return _read_segments(task, file, _read_iovec(task, iov, iovcnt))


@syscall("writev")
def sys_writev(task, fd, iov, iovcnt):
    """Implements Linux syscall writev(2).

    The buffers are gathered and written with one write (atomic on
    stdout, as a pipe write of at most PIPE_BUF is on Linux).
    """
    file = _writable(task, fd)
    iovs = _read_iovec(task, iov, iovcnt)
    data = _gather(task, iovs)
    if not data and not getattr(file, "write_empty", False):  # sockets send empty messages
        return 0
    return file.write(data)


def _preadv(task, fd, iov, iovcnt, pos):
    file = _readable(task, fd)
    iovs = _read_iovec(task, iov, iovcnt)
    if pos == -1:
        return _read_segments(task, file, iovs)
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    return _read_segments(task, file, iovs, pos)


def _pwritev(task, fd, iov, iovcnt, pos):
    file = _writable(task, fd)
    iovs = _read_iovec(task, iov, iovcnt)
    data = _gather(task, iovs)
    if pos == -1:
        return file.write(data) if data else 0
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    return file.pwrite(data, pos) if data else 0


@syscall("preadv")
def sys_preadv(task, fd, iov, iovcnt, pos_l, pos_h):
    """Implements Linux syscall preadv(2).

    On x86-64 the offset is ``pos_l`` alone (pos_h is ignored, as Linux's
    pos_from_hilo does on 64-bit). EINVAL for a negative offset.
    """
    pos = to_s64(pos_l)
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    return _preadv(task, fd, iov, iovcnt, pos)


@syscall("pwritev")
def sys_pwritev(task, fd, iov, iovcnt, pos_l, pos_h):
    """Implements Linux syscall pwritev(2). Offset as in preadv."""
    pos = to_s64(pos_l)
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    return _pwritev(task, fd, iov, iovcnt, pos)


def _rwf_flags(task, fd, iov, iovcnt, pos_l, flags, lookup) -> None:
    """preadv2/pwritev2's RWF_* flags, after do_preadv's own checks: EINVAL
    for an offset below -1, EBADF for the fd, EINVAL/EFAULT for the
    iovec, then EOPNOTSUPP for any flag (kiocb_set_rw_flags)."""
    if not flags & 0xFFFFFFFF:
        return
    if to_s64(pos_l) < -1:
        raise SyscallError(errno.EINVAL)
    lookup(task, fd)
    _read_iovec(task, iov, iovcnt)
    raise SyscallError(errno.EOPNOTSUPP)


@syscall("preadv2", PARTIAL, "RWF_* flags other than 0 are EOPNOTSUPP")
def sys_preadv2(task, fd, iov, iovcnt, pos_l, pos_h, flags):
    """Implements Linux syscall preadv2(2): preadv, or readv at offset -1.

    No RWF_* flag is supported: any nonzero ``flags`` is EOPNOTSUPP, once
    the offset (EINVAL) and the fd (EBADF) passed, as do_preadv checks them.
    """
    _rwf_flags(task, fd, iov, iovcnt, pos_l, flags, _readable)
    return _preadv(task, fd, iov, iovcnt, to_s64(pos_l))


@syscall("pwritev2", PARTIAL, "RWF_* flags other than 0 are EOPNOTSUPP")
def sys_pwritev2(task, fd, iov, iovcnt, pos_l, pos_h, flags):
    """Implements Linux syscall pwritev2(2): pwritev, or writev at offset -1."""
    _rwf_flags(task, fd, iov, iovcnt, pos_l, flags, _writable)
    return _pwritev(task, fd, iov, iovcnt, to_s64(pos_l))


@syscall("sendfile")
def sys_sendfile(task, out_fd, in_fd, offset, count):
    """Implements Linux syscall sendfile(2) by read+write in 1 MiB pieces.

    With ``offset`` (a guest loff_t*), reads from there and stores the new
    offset, leaving in_fd's offset alone. EBADF for in_fd not readable or
    out_fd not writable, EINVAL for out_fd opened O_APPEND or a negative
    offset. Returns the bytes moved (short at EOF or a short write).
    Checked in fs/read_write.c's order: the offset is read first (EFAULT),
    then in_fd, a negative offset, out_fd.
    """
    pos = None
    if offset:
        pos = S64.unpack(task.mm.copy_in(offset, 8))[0]
    src = _readable(task, in_fd)
    if pos is not None and pos < 0:
        raise SyscallError(errno.EINVAL)
    dst = _writable(task, out_fd)
    if dst.flags & O_APPEND:
        raise SyscallError(errno.EINVAL)
    if src.is_dir() or _is_pipe(src):
        raise SyscallError(errno.EINVAL)  # in_fd must be a file that can be mmap'ed
    count = _clamp(count)
    done = copy_data(src, dst, count, pos_in=pos, chunk=CHUNK)
    if pos is not None:
        task.mm.copy_out(offset, S64.pack(pos + done))
    return done


# -- open / close / seek ----------------------------------------------------

def _do_open(task, dirfd: int, path_gva: int, flags: int, mode: int = 0) -> int:
    path = read_path(task, path_gva)
    file = F.open_path(task, dirfd, path, flags, mode & 0o7777)
    try:
        return task.fds.install(file, cloexec=bool(flags & O_CLOEXEC),
                                limit=nofile_limit(task.process))
    except SyscallError:
        file.release()
        raise


@syscall("open")
def sys_open(task, pathname, flags, mode):
    """Implements Linux syscall open(2). See openat."""
    return _do_open(task, AT_FDCWD, pathname, to_int(flags), mode)


@syscall("openat")
def sys_openat(task, dirfd, pathname, flags, mode):
    """Implements Linux syscall openat(2).

    O_CREAT makes a regular file with ``mode`` & ~umask (07777 bits) on
    the overlay or /tmp; writing or truncating a host file copies it up
    into memory (the host file is never changed). Errnos as
    files.open_path: ENOENT, ENOTDIR, ELOOP, EISDIR, EEXIST, ENAMETOOLONG,
    EMFILE, EBADF for a bad dirfd with a relative path; O_TMPFILE is
    EOPNOTSUPP.
    """
    return _do_open(task, to_int(dirfd), pathname, to_int(flags), mode)


@syscall("creat")
def sys_creat(task, pathname, mode):
    """Implements Linux syscall creat(2): open(O_CREAT|O_WRONLY|O_TRUNC)."""
    return _do_open(task, AT_FDCWD, pathname, O_CREAT | O_WRONLY | O_TRUNC, mode)


@syscall("close")
def sys_close(task, fd):
    """Implements Linux syscall close(2). EBADF when fd is not open."""
    task.fds.close(to_int(fd))
    return 0


CLOSE_RANGE_UNSHARE = 1 << 1
CLOSE_RANGE_CLOEXEC = 1 << 2


@syscall("close_range")
def sys_close_range(task, fd, max_fd, flags):
    """Implements Linux syscall close_range(2): close (or mark close-on-exec) [fd, max_fd].

    fs/file.c: EINVAL for unknown flags or fd > max_fd (unsigned ints);
    CLOSE_RANGE_UNSHARE first gives the task its own copy of a table it
    shares with other tasks (CLONE_FILES). Open fds only; never EBADF.
    """
    first, last, flags = fd & 0xFFFFFFFF, max_fd & 0xFFFFFFFF, flags & 0xFFFFFFFF
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        raise SyscallError(errno.EINVAL)
    if flags & CLOSE_RANGE_UNSHARE and getattr(task.fds, "users", 1) > 1:
        task.fds.users -= 1
        task.fds = task.fds.fork()
        task.fds.users = 1
    task.fds.close_range(first, last, cloexec=bool(flags & CLOSE_RANGE_CLOEXEC))
    return 0


@syscall("lseek")
def sys_lseek(task, fd, offset, whence):
    """Implements Linux syscall lseek(2).

    Returns the new offset in bytes. EINVAL for an unknown whence or a
    negative result, ESPIPE for pipes and terminals, ENXIO for
    SEEK_DATA/SEEK_HOLE past the end (the host's answer).
    """
    file = task.fds.get(to_int(fd))
    whence = whence & 0xFFFFFFFF
    if whence > SEEK_HOLE:
        raise SyscallError(errno.EINVAL)
    return file.lseek(to_s64(offset), whence)


# -- stat -------------------------------------------------------------------

# A Stat is struct stat's fields in layout order: ``STAT.pack(*st)``.

def _stat_at(task, dirfd: int, path_gva: int, flags: int) -> Stat:
    """The Stat of (dirfd, path) under AT_SYMLINK_NOFOLLOW/AT_EMPTY_PATH."""
    path = read_path(task, path_gva)
    if not path and flags & AT_EMPTY_PATH:
        if dirfd == AT_FDCWD:
            return F.node_stat(F.lookup(task, AT_FDCWD, b"."))
        return task.fds.get(dirfd).stat()
    node = F.lookup(task, dirfd, path, follow=not (flags & AT_SYMLINK_NOFOLLOW))
    return F.node_stat(node)


@syscall("fstat")
def sys_fstat(task, fd, statbuf):
    """Implements Linux syscall fstat(2): struct stat (144 bytes). EBADF."""
    st = task.fds.get(to_int(fd)).stat()
    task.mm.copy_out(statbuf, STAT.pack(*st))
    return 0


@syscall("stat")
def sys_stat(task, pathname, statbuf):
    """Implements Linux syscall stat(2). ENOENT, ENOTDIR, ELOOP, EFAULT."""
    task.mm.copy_out(statbuf, STAT.pack(*_stat_at(task, AT_FDCWD, pathname, 0)))
    return 0


@syscall("lstat")
def sys_lstat(task, pathname, statbuf):
    """Implements Linux syscall lstat(2): stat of a symlink itself."""
    st = _stat_at(task, AT_FDCWD, pathname, AT_SYMLINK_NOFOLLOW)
    task.mm.copy_out(statbuf, STAT.pack(*st))
    return 0


@syscall("newfstatat")
def sys_newfstatat(task, dirfd, pathname, statbuf, flags):
    """Implements Linux syscall newfstatat(2) (glibc's fstatat).

    Flags AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, AT_NO_AUTOMOUNT (no-op);
    any other bit is EINVAL.
    """
    flags = to_int(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT):
        raise SyscallError(errno.EINVAL)
    st = _stat_at(task, to_int(dirfd), pathname, flags)
    task.mm.copy_out(statbuf, STAT.pack(*st))
    return 0


@syscall("statx")
def sys_statx(task, dirfd, pathname, flags, mask, statxbuf):
    """Implements Linux syscall statx(2).

    Fills the basic stats whatever ``mask`` asks (Linux may return more
    than asked) and sets stx_mask to STATX_BASIC_STATS; no btime, mnt_id
    or attributes. EINVAL for unknown flags, both AT_STATX_FORCE_SYNC and
    DONT_SYNC, or STATX__RESERVED in mask.
    """
    flags = to_int(flags)
    mask &= 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE):
        raise SyscallError(errno.EINVAL)
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE or mask & STATX__RESERVED:
        raise SyscallError(errno.EINVAL)
    st = _stat_at(task, to_int(dirfd), pathname, flags)
    data = STATX.pack(
        STATX_BASIC_STATS, st.st_blksize, 0,
        st.st_nlink, st.st_uid, st.st_gid, st.st_mode & 0xFFFF,
        st.st_ino, st.st_size, st.st_blocks, 0,
        st.st_atime, st.st_atime_nsec, 0, 0,  # atime, btime
        st.st_ctime, st.st_ctime_nsec, st.st_mtime, st.st_mtime_nsec,
        os.major(st.st_rdev), os.minor(st.st_rdev),
        os.major(st.st_dev), os.minor(st.st_dev),
        0, 0, 0,
    )
    task.mm.copy_out(statxbuf, data)
    return 0


# -- directories --------------------------------------------------------------

_DIRENT64_HEADER_SIZE = LINUX_DIRENT64_HEADER.size  # 19: d_ino, d_off, d_reclen, d_type
_ZEROS = bytes(8)


@syscall("getdents64")
def sys_getdents64(task, fd, dirp, count):
    """Implements Linux syscall getdents64(2).

    Fills ``dirp`` with struct linux_dirent64 records (8-byte aligned)
    including ``.`` and ``..``; d_off is the position after the entry and
    stays valid for lseek across calls. Returns bytes written, 0 at the
    end. ENOTDIR for a non-directory, EINVAL when the first entry does not
    fit in ``count`` bytes, EBADF for an O_PATH fd.
    """
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH:
        raise SyscallError(errno.EBADF)
    count = min(count & 0xFFFFFFFF, MAX_RW_COUNT)
    out = bytearray()
    last_off = 0
    pack = LINUX_DIRENT64_HEADER.pack
    for d_off, ent in file.getdents():
        name = ent.d_name
        # The name, its NUL and zeros up to the next 8-byte boundary.
        padded = len(name) + 8 - (_DIRENT64_HEADER_SIZE + len(name)) % 8
        reclen = _DIRENT64_HEADER_SIZE + padded
        if len(out) + reclen > count:
            if not out:
                raise SyscallError(errno.EINVAL)
            break
        out += pack(ent.d_ino, d_off, reclen, ent.d_type)
        out += name
        out += _ZEROS[:padded - len(name)]
        last_off = d_off
    if not out:
        return 0
    task.mm.copy_out(dirp, out)
    file.seek_dir(last_off)
    return len(out)


@syscall("getcwd")
def sys_getcwd(task, buf, size):
    """Implements Linux syscall getcwd(2).

    Returns the length including the NUL. ERANGE when ``size`` is too
    small for the path and its NUL, ENOENT when the cwd was removed.
    """
    if F.cwd_removed(task.process):
        raise SyscallError(errno.ENOENT)
    cwd = os.fsencode(task.process.cwd) + b"\0"
    if size < len(cwd):
        raise SyscallError(errno.ERANGE)
    task.mm.copy_out(buf, cwd)
    return len(cwd)


def _set_cwd(task, node) -> None:
    if not node.is_dir():
        raise SyscallError(errno.ENOTDIR)
    F.node_access(node, os.X_OK, task.process.creds)
    F.set_cwd(task, node)


@syscall("chdir")
def sys_chdir(task, path):
    """Implements Linux syscall chdir(2). ENOENT, ENOTDIR, EACCES, ELOOP."""
    _set_cwd(task, F.lookup(task, AT_FDCWD, read_path(task, path)))
    return 0


@syscall("fchdir")
def sys_fchdir(task, fd):
    """Implements Linux syscall fchdir(2): cwd := the directory open at fd.

    EBADF, ENOTDIR for a non-directory.
    """
    file = task.fds.get(to_int(fd))
    if not file.is_dir():
        raise SyscallError(errno.ENOTDIR)
    inode = getattr(file, "inode", None)
    if isinstance(inode, DirInode) and inode.nlink == 0:
        raise SyscallError(errno.ENOENT)  # a removed directory, not found by path
    F.set_cwd(task, F.lookup(task, AT_FDCWD, file.guest_path or b"/"))
    return 0


# -- links and access -----------------------------------------------------------

def _readlink(task, dirfd: int, path_gva: int, buf: int, bufsiz: int) -> int:
    bufsiz = to_int(bufsiz)
    if bufsiz <= 0:
        raise SyscallError(errno.EINVAL)
    path = read_path(task, path_gva)
    if not path and dirfd != AT_FDCWD:
        # The symlink an O_PATH|O_NOFOLLOW dirfd names; ENOENT for any other fd.
        file = task.fds.get(dirfd)
        node = F.path_file_node(task, file) if file.flags & O_PATH else None
        if node is None or not node.is_symlink():
            raise SyscallError(errno.ENOENT)
    else:
        node = F.lookup(task, dirfd, path, follow=False)
    target = F.node_readlink(node)[:bufsiz]
    task.mm.copy_out(buf, target)
    return len(target)


@syscall("readlink")
def sys_readlink(task, pathname, buf, bufsiz):
    """Implements Linux syscall readlink(2).

    Copies the target without a NUL, truncated to ``bufsiz``; returns its
    length. EINVAL for bufsiz <= 0 or a path that is not a symlink.
    /proc/self/exe reads the guest path of the executable and
    /proc/self/fd/N the path an fd was opened by.
    """
    return _readlink(task, AT_FDCWD, pathname, buf, bufsiz)


@syscall("readlinkat")
def sys_readlinkat(task, dirfd, pathname, buf, bufsiz):
    """Implements Linux syscall readlinkat(2). As readlink, relative to dirfd.

    An empty pathname reads the symlink an O_PATH|O_NOFOLLOW ``dirfd``
    was opened on; ENOENT for any other dirfd (and for AT_FDCWD).
    """
    return _readlink(task, to_int(dirfd), pathname, buf, bufsiz)


def _access(task, dirfd: int, path_gva: int, mode: int, flags: int) -> int:
    mode = to_int(mode)
    if mode & ~7:
        raise SyscallError(errno.EINVAL)
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    path = read_path(task, path_gva)
    process = task.process
    creds = process.creds
    if not flags & AT_EACCESS and (creds.uid, creds.gid) != (creds.euid, creds.egid):
        # access_override_creds: the real ids decide, for the lookup too,
        # with root's capabilities only for a real uid 0.
        override = creds.replace(euid=creds.uid, egid=creds.gid)
        if hasattr(override, "cap_effective"):
            override.cap_effective = override.cap_permitted if creds.uid == 0 else 0
        process.creds = override
    try:
        if not path and flags & AT_EMPTY_PATH and dirfd != AT_FDCWD:
            file = task.fds.get(dirfd)
            host = file.host_path()
            if host is not None:
                node = F.Node(F.HOST, file.guest_path, host_path=host,
                              st=host_call(os.lstat, host))
            else:
                node = F.Node(F.FDLINK, file.guest_path, file=file)
        else:
            if not path and flags & AT_EMPTY_PATH:
                path = b"."  # AT_EMPTY_PATH with AT_FDCWD: the cwd itself
            node = F.lookup(task, dirfd, path, follow=not (flags & AT_SYMLINK_NOFOLLOW))
        F.node_access(node, mode, process.creds)
    finally:
        process.creds = creds
    return 0


@syscall("access")
def sys_access(task, pathname, mode):
    """Implements Linux syscall access(2).

    F_OK, R_OK, W_OK, X_OK. W_OK on a host file is EROFS (the root is a
    read-only mount); R_OK/X_OK are answered by the host for the sentry,
    the one that will open or exec the file. EINVAL for other mode bits.
    """
    return _access(task, AT_FDCWD, pathname, mode, 0)


@syscall("faccessat")
def sys_faccessat(task, dirfd, pathname, mode):
    """Implements Linux syscall faccessat(2) (no flags argument). See access."""
    return _access(task, to_int(dirfd), pathname, mode, 0)


@syscall("faccessat2")
def sys_faccessat2(task, dirfd, pathname, mode, flags):
    """Implements Linux syscall faccessat2(2).

    Flags AT_EACCESS (the effective ids decide instead of the real ones),
    AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH; others EINVAL.
    """
    return _access(task, to_int(dirfd), pathname, mode, to_int(flags))


# -- fd operations --------------------------------------------------------------

@syscall("dup")
def sys_dup(task, oldfd):
    """Implements Linux syscall dup(2). EBADF, EMFILE."""
    return task.fds.install(task.fds.get(to_int(oldfd)), limit=nofile_limit(task.process))


@syscall("dup2")
def sys_dup2(task, oldfd, newfd):
    """Implements Linux syscall dup2(2).

    oldfd == newfd returns newfd if it is open (EBADF if not). EBADF for
    a newfd outside [0, RLIMIT_NOFILE). The new fd is not close-on-exec.
    """
    oldfd, newfd = to_int(oldfd), to_int(newfd)
    if oldfd == newfd:
        task.fds.get(oldfd)
        return newfd
    return task.fds.dup3(oldfd, newfd, False, nofile_limit(task.process))


@syscall("dup3")
def sys_dup3(task, oldfd, newfd, flags):
    """Implements Linux syscall dup3(2). EINVAL for oldfd == newfd or flags other than O_CLOEXEC."""
    oldfd, newfd, flags = to_int(oldfd), to_int(newfd), to_int(flags)
    if flags & ~O_CLOEXEC:
        raise SyscallError(errno.EINVAL)
    if oldfd == newfd:
        raise SyscallError(errno.EINVAL)
    return task.fds.dup3(oldfd, newfd, bool(flags & O_CLOEXEC), nofile_limit(task.process))


@syscall("fcntl", PARTIAL, "F_DUPFD(_CLOEXEC), F_GETFD/SETFD, F_GETFL/SETFL, record locks, seals")
def sys_fcntl(task, fd, cmd, arg):
    """Implements Linux syscall fcntl(2), partially.

    F_DUPFD, F_DUPFD_CLOEXEC (EINVAL for arg outside [0, RLIMIT_NOFILE)),
    F_GETFD, F_SETFD (FD_CLOEXEC), F_GETFL (access mode, status flags and
    O_LARGEFILE), F_SETFL (changes only O_APPEND, O_NONBLOCK, O_ASYNC,
    O_DIRECT, O_NOATIME), record locks F_GETLK/F_SETLK/F_SETLKW and
    F_OFD_* (``_record_lock``), pipe sizes, F_ADD_SEALS/F_GET_SEALS
    (memfd and tmpfs files, vfs.file.add_seals). Leases, owners: EINVAL.
    """
    fd, cmd = to_int(fd), to_int(cmd)
    fds = task.fds
    file = fds.get(fd)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        minfd = to_int(arg)
        return fds.dup(fd, minfd, cmd == F_DUPFD_CLOEXEC, nofile_limit(task.process))
    if cmd == F_GETFD:
        return FD_CLOEXEC if fds.get_cloexec(fd) else 0
    if cmd == F_SETFD:
        fds.set_cloexec(fd, bool(arg & FD_CLOEXEC))
        return 0
    if file.flags & O_PATH:
        # An O_PATH fd has no file operations: only the calls above work.
        if cmd == F_GETFL:
            return file.flags
        raise SyscallError(errno.EBADF)
    if cmd == F_GETFL:
        return file.flags
    if cmd == F_SETFL:
        arg = to_int(arg)
        file.flags = (file.flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        return 0
    if cmd in LOCK_CMDS:
        return _record_lock(task, file, cmd, arg)
    if cmd == F_ADD_SEALS:
        add_seals(file, arg & 0xFFFFFFFF)
        return 0
    if cmd == F_GET_SEALS:
        return get_seals(file)
    from kvmsentry.kernel.syscalls.pipe import pipe_fcntl  # not at start: pipes may never be used
    result = pipe_fcntl(file, cmd, arg, task)  # F_GETPIPE_SZ / F_SETPIPE_SZ
    if result is not None:
        return result
    raise SyscallError(errno.EINVAL)


# fcntl record locks (include/uapi/asm-generic/fcntl.h) and struct flock:
# short l_type, short l_whence, (4 bytes of padding: off_t is 8-aligned),
# off_t l_start, off_t l_len, pid_t l_pid, (4 bytes of padding): 32 bytes.
F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
LOCK_CMDS = (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
FLOCK = struct.Struct("<hh4xqqi4x")


def _record_lock(task, file: File, cmd: int, arg: int) -> int:
    """F_GETLK/F_SETLK/F_SETLKW and the F_OFD_* variants (vfs.posixlock).

    EINVAL for a bad l_type or l_whence, a range before offset 0, a
    nonzero l_pid with F_OFD_*, or a file that is not a regular file or
    directory; EBADF for a read lock on a fd not open for reading (write
    lock: writing); EAGAIN on a conflict with F_SETLK; EDEADLK; EFAULT.
    """
    from kvmsentry.kernel.vfs import posixlock as PL
    l_type, l_whence, l_start, l_len, l_pid = FLOCK.unpack(task.mm.copy_in(arg, FLOCK.size))
    ofd = cmd >= F_OFD_GETLK
    if ofd and l_pid != 0:
        raise SyscallError(errno.EINVAL)
    if l_type not in (PL.F_RDLCK, PL.F_WRLCK, PL.F_UNLCK):
        raise SyscallError(errno.EINVAL)
    st = file.stat()
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise SyscallError(errno.EINVAL)
    if l_whence == SEEK_SET:
        base = 0
    elif l_whence == SEEK_CUR:
        base = file.lseek(0, SEEK_CUR)
    elif l_whence == SEEK_END:
        base = st.st_size
    else:
        raise SyscallError(errno.EINVAL)
    start = base + l_start
    if l_len > 0:
        end = start + l_len - 1
    elif l_len == 0:
        end = PL.OFFSET_MAX
    else:
        end = start - 1
        start += l_len
    if start < 0:
        raise SyscallError(errno.EINVAL)
    if end > PL.OFFSET_MAX:
        raise SyscallError(errno.EOVERFLOW)
    key = (st.st_dev, st.st_ino)
    owner = file if ofd else task.fds
    pid = -1 if ofd else task.process.pid
    want = PL.Lock(owner, l_type, start, end, pid)
    if cmd in (F_GETLK, F_OFD_GETLK):
        if l_type == PL.F_UNLCK:
            raise SyscallError(errno.EINVAL)
        lk = PL.get(key, want)
        if lk is None:
            out = FLOCK.pack(PL.F_UNLCK, l_whence, l_start, l_len, l_pid)
        else:
            length = 0 if lk.end == PL.OFFSET_MAX else lk.end - lk.start + 1
            out = FLOCK.pack(lk.type, SEEK_SET, lk.start, length, lk.pid)
        task.mm.copy_out(arg, out)
        return 0
    if l_type == PL.F_RDLCK and not file.readable:
        raise SyscallError(errno.EBADF)
    if l_type == PL.F_WRLCK and not file.writable:
        raise SyscallError(errno.EBADF)
    PL.set_lock(key, want, cmd in (F_SETLKW, F_OFD_SETLKW), task)
    return 0


@syscall("ioctl", PARTIAL, "FIONBIO, FIOCLEX, FIONCLEX; TCGETS and TIOCGWINSZ on host ttys")
def sys_ioctl(task, fd, cmd, arg):
    """Implements Linux syscall ioctl(2), partially.

    Generic: FIONBIO (int at ``arg``: set/clear O_NONBLOCK), FIOCLEX,
    FIONCLEX. Per file: TCGETS and TIOCGWINSZ answered by the host
    terminal for passed-through stdio; everything else ENOTTY. EBADF.
    """
    fd = to_int(fd)
    file = task.fds.get(fd)
    if file.flags & O_PATH:
        raise SyscallError(errno.EBADF)
    cmd &= 0xFFFFFFFF
    if cmd == FIOCLEX or cmd == FIONCLEX:
        task.fds.set_cloexec(fd, cmd == FIOCLEX)
        return 0
    if cmd == FIONBIO:
        on = I32.unpack(task.mm.copy_in(arg, 4))[0]
        file.flags = file.flags | O_NONBLOCK if on else file.flags & ~O_NONBLOCK
        return 0
    return file.ioctl(task, cmd, arg)


# -- file systems -----------------------------------------------------------------

def _pack_statfs(fs, guest_path: bytes) -> bytes:
    """struct statfs of file system ``fs`` (None: a sentry-made file)."""
    if fs is not None:
        info = fs.statfs()
        if guest_path == b"/proc" or guest_path.startswith(b"/proc/"):
            info["f_type"] = PROC_SUPER_MAGIC  # the host's /proc, read through
        info["f_flags"] |= ST_VALID
        return pack_statfs(**info)
    # Sentry-made files (devices, /proc/self): an empty tmpfs-like answer.
    return pack_statfs(TMPFS_MAGIC, 4096, f_namelen=255, f_frsize=4096, f_flags=ST_VALID)


def _fs_of_file(task, file: File):
    inode = getattr(file, "inode", None)
    if inode is not None:
        return inode.fs
    if file.host_path() is not None:
        return F.mounts_of(task.process).root.fs
    return None


@syscall("statfs")
def sys_statfs(task, path, buf):
    """Implements Linux syscall statfs(2) (struct statfs, 120 bytes).

    The overlay root reports the host file system's numbers (f_type
    EXT4_SUPER_MAGIC, PROC_SUPER_MAGIC under /proc), /tmp TMPFS_MAGIC
    with half the host's RAM as its size; sentry-made files a tmpfs-like
    empty file system.
    """
    node = F.lookup(task, AT_FDCWD, read_path(task, path))
    fs = node.mount.fs if node.kind in (F.HOST, F.MEM) else None
    task.mm.copy_out(buf, _pack_statfs(fs, node.guest_path))
    return 0


@syscall("fstatfs")
def sys_fstatfs(task, fd, buf):
    """Implements Linux syscall fstatfs(2). See statfs. EBADF."""
    file = task.fds.get(to_int(fd))
    task.mm.copy_out(buf, _pack_statfs(_fs_of_file(task, file), file.guest_path))
    return 0


@syscall("umask")
def sys_umask(task, mask):
    """Implements Linux syscall umask(2): sets mask & 0777, returns the old one."""
    old = task.process.umask
    task.process.umask = mask & 0o777
    return old


@syscall("sync")
def sys_sync(task):
    """Implements Linux syscall sync(2): nothing is written, so a no-op."""
    return 0


def _sync_fd(task, fd) -> int:
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH:
        raise SyscallError(errno.EBADF)
    mode = file.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode)) or F.on_procfs(file):
        # Pipes, sockets, character devices, anonymous inodes (eventfd,
        # epoll, timerfd) and /proc have no ->fsync: EINVAL (fs/sync.c
        # vfs_fsync_range).
        raise SyscallError(errno.EINVAL)
    return 0


@syscall("readahead")
def sys_readahead(task, fd, offset, count):
    """Implements Linux syscall readahead(2): a hint; nothing is read ahead
    (a read fills the page cache itself). EBADF for a fd not open for
    reading, EINVAL for anything but a regular file or block device
    (mm/readahead.c ksys_readahead)."""
    file = _readable(task, fd)
    mode = file.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise SyscallError(errno.EINVAL)
    return 0


# sync_file_range(2) flags (include/uapi/linux/fs.h).
SYNC_FILE_RANGE_WAIT_BEFORE = 1
SYNC_FILE_RANGE_WRITE = 2
SYNC_FILE_RANGE_WAIT_AFTER = 4


@syscall("sync_file_range")
def sys_sync_file_range(task, fd, offset, nbytes, flags):
    """Implements Linux syscall sync_file_range(2): as fsync(2), a no-op on
    a file (nothing here is written behind the program's back).

    EINVAL for an unknown flag, EBADF, ESPIPE for anything but a regular
    file, directory or block device (fs/sync.c).
    """
    if flags & ~(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER):
        raise SyscallError(errno.EINVAL)
    file = task.fds.get(to_int(fd))
    mode = file.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode)):
        raise SyscallError(errno.ESPIPE)
    return 0


def _is_pipe(file) -> bool:
    return stat.S_ISFIFO(file.stat().st_mode)


@syscall("fsync")
def sys_fsync(task, fd):
    """Implements Linux syscall fsync(2): a no-op on an open file or
    directory; EINVAL for a pipe, socket, character device or anonymous
    inode (no ->fsync), EBADF."""
    return _sync_fd(task, fd)


@syscall("fdatasync")
def sys_fdatasync(task, fd):
    """Implements Linux syscall fdatasync(2): as fsync(2)."""
    return _sync_fd(task, fd)


# -- changing files and directories ---------------------------------------------
#
# The guest's changes go to the overlay over the host root or to /tmp's
# tmpfs (kvmsentry.kernel.vfs): nothing here reaches the host. The path
# checks are namei's (files.do_*); the sandbox runs as root, so no
# permission is checked.

AT_SYMLINK_FOLLOW = 0x400
AT_REMOVEDIR = 0x200
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
NSEC_PER_SEC = 1_000_000_000
USEC_PER_SEC = 1_000_000
TIMESPEC2 = struct.Struct("<qqqq")  # struct timespec[2] / struct timeval[2]
UTIMBUF = struct.Struct("<qq")      # struct utimbuf {actime, modtime}


@syscall("mkdir")
def sys_mkdir(task, pathname, mode):
    """Implements Linux syscall mkdir(2). See mkdirat."""
    F.do_mkdir(task, AT_FDCWD, read_path(task, pathname), mode & 0xFFFFFFFF)
    return 0


@syscall("mkdirat")
def sys_mkdirat(task, dirfd, pathname, mode):
    """Implements Linux syscall mkdirat(2).

    The directory gets ``mode`` & 01777 & ~umask (and the set-group-ID
    bit of a set-group-ID parent). EEXIST (also for an existing symlink,
    ".", ".."), ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP.
    """
    F.do_mkdir(task, to_int(dirfd), read_path(task, pathname), mode & 0xFFFFFFFF)
    return 0


def _may_mknod(mode: int) -> None:
    """fs/namei.c may_mknod, before the path is looked up: EPERM for
    S_IFDIR, EINVAL for a type that is not a file, FIFO, socket or
    device (``mode`` is a umode_t: its low 16 bits)."""
    kind = stat.S_IFMT(mode & 0xFFFF)
    if kind == stat.S_IFDIR:
        raise SyscallError(errno.EPERM)
    if kind not in (0, stat.S_IFREG, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        raise SyscallError(errno.EINVAL)


@syscall("mknod", PARTIAL, "regular files, FIFOs and sockets (sockets not openable); devices EPERM")
def sys_mknod(task, pathname, mode, dev):
    """Implements Linux syscall mknod(2), partially. See mknodat."""
    _may_mknod(mode)
    F.do_mknod(task, AT_FDCWD, read_path(task, pathname), mode & 0xFFFFFFFF, dev)
    return 0


@syscall("mknodat", PARTIAL, "regular files, FIFOs and sockets (sockets not openable); devices EPERM")
def sys_mknodat(task, dirfd, pathname, mode, dev):
    """Implements Linux syscall mknodat(2), partially.

    S_IFREG (or 0) makes an empty regular file; S_IFIFO a FIFO (open
    follows fifo(7), both ends share one pipe); S_IFSOCK the node, which
    cannot be opened (EACCES); character and block
    devices are EPERM (no CAP_MKNOD in the sandbox), other types EINVAL
    (before the path is read).
    """
    _may_mknod(mode)
    F.do_mknod(task, to_int(dirfd), read_path(task, pathname), mode & 0xFFFFFFFF, dev)
    return 0


@syscall("rmdir")
def sys_rmdir(task, pathname):
    """Implements Linux syscall rmdir(2).

    ENOTEMPTY (also for a path ending in ".."), EINVAL for ".", EBUSY for
    / and mount points (/tmp), ENOTDIR, ENOENT.
    """
    F.do_rmdir(task, AT_FDCWD, read_path(task, pathname))
    return 0


@syscall("unlink")
def sys_unlink(task, pathname):
    """Implements Linux syscall unlink(2). See unlinkat."""
    F.do_unlink(task, AT_FDCWD, read_path(task, pathname))
    return 0


@syscall("unlinkat")
def sys_unlinkat(task, dirfd, pathname, flags):
    """Implements Linux syscall unlinkat(2).

    AT_REMOVEDIR makes it rmdir; other flags are EINVAL. EISDIR for a
    directory, ENOTDIR for "file/", ENOENT. An open file stays readable
    and writable after its last name goes.
    """
    flags = to_int(flags)
    if flags & ~AT_REMOVEDIR:
        raise SyscallError(errno.EINVAL)
    path = read_path(task, pathname)
    if flags & AT_REMOVEDIR:
        F.do_rmdir(task, to_int(dirfd), path)
    else:
        F.do_unlink(task, to_int(dirfd), path)
    return 0


@syscall("rename")
def sys_rename(task, oldpath, newpath):
    """Implements Linux syscall rename(2). See renameat2."""
    F.do_rename(task, AT_FDCWD, read_path(task, oldpath), AT_FDCWD, read_path(task, newpath))
    return 0


@syscall("renameat")
def sys_renameat(task, olddirfd, oldpath, newdirfd, newpath):
    """Implements Linux syscall renameat(2). See renameat2."""
    F.do_rename(task, to_int(olddirfd), read_path(task, oldpath),
                to_int(newdirfd), read_path(task, newpath))
    return 0


@syscall("renameat2", PARTIAL, "RENAME_WHITEOUT is EINVAL")
def sys_renameat2(task, olddirfd, oldpath, newdirfd, newpath, flags):
    """Implements Linux syscall renameat2(2).

    RENAME_NOREPLACE (EEXIST), RENAME_EXCHANGE (ENOENT if either is
    missing); RENAME_WHITEOUT and unknown flags are EINVAL. EXDEV between
    / and /tmp, EINVAL for a directory moved beneath itself, ENOTEMPTY,
    ENOTDIR, EISDIR, EBUSY (".", "..", mount points). Bad flags are
    EINVAL before the paths are read (do_renameat2).
    """
    flags &= 0xFFFFFFFF
    if flags & ~0x7 or (flags & 0x5 and flags & 0x2):  # NOREPLACE|WHITEOUT with EXCHANGE
        raise SyscallError(errno.EINVAL)
    F.do_rename(task, to_int(olddirfd), read_path(task, oldpath),
                to_int(newdirfd), read_path(task, newpath), flags & 0xFFFFFFFF)
    return 0


@syscall("link")
def sys_link(task, oldpath, newpath):
    """Implements Linux syscall link(2): a symlink is linked, not followed."""
    F.do_link(task, AT_FDCWD, read_path(task, oldpath), AT_FDCWD, read_path(task, newpath),
              follow=False)
    return 0


@syscall("linkat")
def sys_linkat(task, olddirfd, oldpath, newdirfd, newpath, flags):
    """Implements Linux syscall linkat(2).

    AT_SYMLINK_FOLLOW follows a symlink ``oldpath``; AT_EMPTY_PATH links
    the file open at ``olddirfd``; other flags EINVAL. EEXIST, ENOENT,
    EPERM for a directory, EXDEV between mounts.
    """
    flags = to_int(flags)
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    F.do_link(task, to_int(olddirfd), read_path(task, oldpath), to_int(newdirfd),
              read_path(task, newpath), follow=bool(flags & AT_SYMLINK_FOLLOW),
              empty_path=bool(flags & AT_EMPTY_PATH))
    return 0


@syscall("symlink")
def sys_symlink(task, target, linkpath):
    """Implements Linux syscall symlink(2). See symlinkat."""
    F.do_symlink(task, read_path(task, target), AT_FDCWD, read_path(task, linkpath))
    return 0


@syscall("symlinkat")
def sys_symlinkat(task, target, newdirfd, linkpath):
    """Implements Linux syscall symlinkat(2). ENOENT for an empty target, EEXIST."""
    F.do_symlink(task, read_path(task, target), to_int(newdirfd), read_path(task, linkpath))
    return 0


def _path_inode(task, dirfd: int, path_gva: int, follow: bool, flags: int = 0):
    """The writable inode a (dirfd, path) call changes (AT_EMPTY_PATH: dirfd's)."""
    path = read_path(task, path_gva)
    if not path and flags & AT_EMPTY_PATH:
        if dirfd == AT_FDCWD:
            return F.writable_inode(F.lookup(task, AT_FDCWD, b"."), task=task)
        return F.file_inode(task.fds.get(dirfd), task, allow_path=True)
    return F.writable_inode(F.lookup(task, dirfd, path, follow=follow), task=task)


@syscall("chmod")
def sys_chmod(task, pathname, mode):
    """Implements Linux syscall chmod(2): the 07777 bits of ``mode``."""
    F.set_mode(_path_inode(task, AT_FDCWD, pathname, True), mode, task.process.creds)
    return 0


@syscall("fchmod")
def sys_fchmod(task, fd, mode):
    """Implements Linux syscall fchmod(2). EBADF (also for O_PATH), EPERM for
    the sentry's own files (devices, pipes)."""
    F.set_mode(F.file_inode(task.fds.get(to_int(fd)), task), mode, task.process.creds)
    return 0


@syscall("fchmodat")
def sys_fchmodat(task, dirfd, pathname, mode):
    """Implements Linux syscall fchmodat(2) (no flags argument: symlinks are followed)."""
    F.set_mode(_path_inode(task, to_int(dirfd), pathname, True), mode, task.process.creds)
    return 0


def _id(value: int) -> int:
    """A uid_t/gid_t argument: (u32)-1 means "unchanged"."""
    value &= 0xFFFFFFFF
    return -1 if value == 0xFFFFFFFF else value


@syscall("chown")
def sys_chown(task, pathname, owner, group):
    """Implements Linux syscall chown(2) (root in the sandbox may give any owner)."""
    F.set_owner(_path_inode(task, AT_FDCWD, pathname, True), _id(owner), _id(group),
                task.process.creds)
    return 0


@syscall("lchown")
def sys_lchown(task, pathname, owner, group):
    """Implements Linux syscall lchown(2): a symlink itself."""
    F.set_owner(_path_inode(task, AT_FDCWD, pathname, False), _id(owner), _id(group),
                task.process.creds)
    return 0


@syscall("fchown")
def sys_fchown(task, fd, owner, group):
    """Implements Linux syscall fchown(2). EBADF, EPERM for the sentry's own files."""
    F.set_owner(F.file_inode(task.fds.get(to_int(fd)), task), _id(owner), _id(group),
                task.process.creds)
    return 0


@syscall("fchownat")
def sys_fchownat(task, dirfd, pathname, owner, group, flags):
    """Implements Linux syscall fchownat(2).

    Flags AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH; others EINVAL. A
    non-directory loses its set-user-ID bit (and set-group-ID when
    group-executable), as on Linux.
    """
    flags = to_int(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    inode = _path_inode(task, to_int(dirfd), pathname, not flags & AT_SYMLINK_NOFOLLOW, flags)
    F.set_owner(inode, _id(owner), _id(group),
                task.process.creds)
    return 0


def _set_times(task, dirfd: int, path_gva: int, times: tuple | None, flags: int) -> int:
    """do_utimes: ``times`` is (atime, mtime) in ns or UTIME_NOW/None(omit),
    None for both now. A NULL path changes the file open at dirfd."""
    if times is not None and times[0] is None and times[1] is None:
        return 0  # both UTIME_OMIT: nothing, not even a lookup
    if path_gva == 0 and dirfd != AT_FDCWD:
        if flags & AT_SYMLINK_NOFOLLOW:
            raise SyscallError(errno.EINVAL)
        inode = F.file_inode(task.fds.get(dirfd), task)
    else:
        inode = _path_inode(task, dirfd, path_gva, not flags & AT_SYMLINK_NOFOLLOW, flags)
    now = time.time_ns()
    creds = task.process.creds
    if times is None:
        F.set_times(inode, now, now, creds)
    else:
        explicit = any(t is not None and t != UTIME_NOW for t in times)
        F.set_times(inode, *(now if t == UTIME_NOW else t for t in times), creds, explicit)
    return 0


def _timespec_ns(sec: int, nsec: int):
    if nsec == UTIME_NOW:
        return UTIME_NOW
    if nsec == UTIME_OMIT:
        return None
    if not 0 <= nsec < NSEC_PER_SEC:
        raise SyscallError(errno.EINVAL)
    return sec * NSEC_PER_SEC + nsec


def _timeval_times(task, tv_gva: int):
    if tv_gva == 0:
        return None
    a_sec, a_usec, m_sec, m_usec = TIMESPEC2.unpack(task.mm.copy_in(tv_gva, TIMESPEC2.size))
    if not (0 <= a_usec < USEC_PER_SEC and 0 <= m_usec < USEC_PER_SEC):
        raise SyscallError(errno.EINVAL)
    return (a_sec * NSEC_PER_SEC + a_usec * 1000, m_sec * NSEC_PER_SEC + m_usec * 1000)


@syscall("utimensat")
def sys_utimensat(task, dirfd, pathname, times, flags):
    """Implements Linux syscall utimensat(2).

    ``times`` is struct timespec[2] (atime, mtime) or NULL for now; a
    tv_nsec of UTIME_NOW or UTIME_OMIT; ctime becomes now. A NULL
    pathname changes the file open at ``dirfd`` (futimens). EINVAL for a
    tv_nsec out of range or flags other than AT_SYMLINK_NOFOLLOW and
    AT_EMPTY_PATH; both UTIME_OMIT succeed without a lookup.
    """
    flags = to_int(flags)
    parsed = None
    if times:
        a_sec, a_nsec, m_sec, m_nsec = TIMESPEC2.unpack(task.mm.copy_in(times, TIMESPEC2.size))
        parsed = (_timespec_ns(a_sec, a_nsec), _timespec_ns(m_sec, m_nsec))
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    return _set_times(task, to_int(dirfd), pathname, parsed, flags)


@syscall("futimesat")
def sys_futimesat(task, dirfd, pathname, times):
    """Implements Linux syscall futimesat(2): struct timeval[2] or NULL (now).

    EINVAL for tv_usec outside [0, 1000000).
    """
    return _set_times(task, to_int(dirfd), pathname, _timeval_times(task, times), 0)


@syscall("utimes")
def sys_utimes(task, filename, times):
    """Implements Linux syscall utimes(2): struct timeval[2] or NULL (now)."""
    return _set_times(task, AT_FDCWD, filename, _timeval_times(task, times), 0)


@syscall("utime")
def sys_utime(task, filename, times):
    """Implements Linux syscall utime(2): struct utimbuf {actime, modtime}
    in seconds, or NULL for now."""
    parsed = None
    if times:
        actime, modtime = UTIMBUF.unpack(task.mm.copy_in(times, UTIMBUF.size))
        parsed = (actime * NSEC_PER_SEC, modtime * NSEC_PER_SEC)
    return _set_times(task, AT_FDCWD, filename, parsed, 0)


@syscall("truncate")
def sys_truncate(task, path, length):
    """Implements Linux syscall truncate(2).

    ``length`` in bytes (zeros when it grows). EINVAL for a negative
    length or a file that is not regular, EISDIR for a directory, EFBIG
    past the in-memory limit (1 TiB). A host file is copied up first.
    """
    length = to_s64(length)
    if length < 0:
        raise SyscallError(errno.EINVAL)
    node = F.lookup(task, AT_FDCWD, read_path(task, path))
    if node.is_dir():
        raise SyscallError(errno.EISDIR)
    if node.kind not in (F.HOST, F.MEM) or not stat.S_ISREG(F.node_stat(node).st_mode):
        raise SyscallError(errno.EINVAL)
    check_size(length)
    creds = task.process.creds
    if not perm.privileged(creds) and node.kind in (F.HOST, F.MEM):
        perm.permission(creds, node.inode, perm.MAY_WRITE)  # vfs_truncate
    F.writable_inode(node, truncate=length == 0, task=task).truncate(length)
    return 0


@syscall("ftruncate")
def sys_ftruncate(task, fd, length):
    """Implements Linux syscall ftruncate(2).

    EBADF for a bad fd or O_PATH, EINVAL for a negative length, a fd not
    open for writing, or a file that is not regular.
    """
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH:
        raise SyscallError(errno.EBADF)
    length = to_s64(length)
    from kvmsentry.kernel.vfs.hostbind import HostRWFile  # not at start: only with --mount rw
    if length < 0 or not file.writable or not isinstance(file, (RegularFile, HostRWFile)):
        raise SyscallError(errno.EINVAL)
    file.truncate(length)
    return 0


@syscall("fallocate", PARTIAL, "modes 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE")
def sys_fallocate(task, fd, mode, offset, length):
    """Implements Linux syscall fallocate(2), partially.

    Mode 0 grows the file to offset + len (zeros; no space is reserved
    beyond that), FALLOC_FL_KEEP_SIZE does nothing, PUNCH_HOLE|KEEP_SIZE
    and ZERO_RANGE write zeros; other modes EOPNOTSUPP. EINVAL for
    offset < 0 or len <= 0, EBADF for a fd not open for writing, EISDIR,
    ESPIPE for a pipe, ENODEV for other non-regular files.
    """
    file = task.fds.get(to_int(fd))
    mode, offset, length = to_int(mode), to_s64(offset), to_s64(length)
    if offset < 0 or length <= 0:
        raise SyscallError(errno.EINVAL)
    if not file.writable:
        raise SyscallError(errno.EBADF)
    if file.is_dir():
        raise SyscallError(errno.EISDIR)
    if not isinstance(file, RegularFile):
        kind = file.stat().st_mode if hasattr(file, "stat") else 0
        raise SyscallError(errno.ESPIPE if stat.S_ISFIFO(kind) else errno.ENODEV)
    if offset + length > (1 << 63) - 1:
        raise SyscallError(errno.EFBIG)
    file.fallocate(mode, offset, length)
    return 0
