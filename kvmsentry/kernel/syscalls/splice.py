"""Moving data through pipes without a user buffer: splice(2), tee(2),
vmsplice(2) (fs/splice.c), and syncfs(2).

Importing this module registers the handlers. Linux moves page
references; the sentry copies bytes (pipes hold bytes, kernel/pipe.py),
which a program cannot tell apart except by speed: what each call moves,
where it blocks and its errnos follow fs/splice.c.

- splice: one side must be a pipe (EINVAL otherwise). From a pipe it
  takes what the pipe holds (blocking while it is empty and has writers,
  like read(2)); into a pipe it reads at most what fits and blocks while
  the pipe is full. An offset pointer is only for the non-pipe side
  (ESPIPE on a pipe) and is updated, leaving the file offset alone.
- tee: duplicates bytes from one pipe into another without consuming
  them.
- vmsplice: writev(2) into a pipe's write end, readv(2) from its read end.
SPLICE_F_NONBLOCK makes the pipe side non-blocking (EAGAIN);
SPLICE_F_MOVE, SPLICE_F_MORE and SPLICE_F_GIFT are hints. Unknown flags
are EINVAL.
"""

from __future__ import annotations

import errno
from os import SEEK_CUR

from kvmsentry.kernel.fd import O_APPEND
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.pipe import PIPE_BUF
from kvmsentry.kernel.syscalls.fs import (
    S64, _clamp, _gather, _read_iovec, _read_segments, _readable, _writable,
)
from kvmsentry.kernel.syscalls.table import SyscallError, syscall
from kvmsentry.kernel.vfs.file import check_size

SPLICE_F_MOVE = 0x01
SPLICE_F_NONBLOCK = 0x02
SPLICE_F_MORE = 0x04
SPLICE_F_GIFT = 0x08
SPLICE_F_ALL = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT


def _pipe_of(file):
    """The Pipe behind a pipe or FIFO file, else None (get_pipe_info)."""
    return getattr(file, "pipe", None)


def _pipe_room(pipe) -> int:
    """Bytes a write can add now without blocking, at least PIPE_BUF (a full
    pipe makes the write below wait, as splice_file_to_pipe's wait_for_space)."""
    free = (pipe.max_usage - len(pipe.bufs)) * PIPE_BUF
    return max(free, PIPE_BUF)


def _check_flags(flags: int) -> bool:
    """EINVAL for flags outside SPLICE_F_ALL; returns SPLICE_F_NONBLOCK."""
    flags &= 0xFFFFFFFF
    if flags & ~SPLICE_F_ALL:
        raise SyscallError(errno.EINVAL)
    return bool(flags & SPLICE_F_NONBLOCK)


@syscall("splice")
def sys_splice(task, fd_in, off_in, fd_out, off_out, length, flags):
    """Implements Linux syscall splice(2). Returns the bytes moved (0 at EOF).

    Checks in fs/splice.c's order: 0 for a zero ``length`` whatever else;
    EINVAL for unknown flags; EBADF for a closed fd; ESPIPE for an offset
    given on a pipe side; EFAULT for a bad offset pointer; EBADF for
    fd_in not readable or fd_out not writable; EINVAL for no pipe on
    either side, the same pipe on both, fd_out opened O_APPEND, a negative
    offset or a directory; EAGAIN with SPLICE_F_NONBLOCK (or O_NONBLOCK
    on the pipe).
    """
    length = _clamp(length)
    if length == 0:
        return 0
    nonblocking = _check_flags(flags)
    src = task.fds.get(to_int(fd_in))
    dst = task.fds.get(to_int(fd_out))
    pipe_in, pipe_out = _pipe_of(src), _pipe_of(dst)
    if (pipe_in is not None and off_in) or (pipe_out is not None and off_out):
        raise SyscallError(errno.ESPIPE)
    pos_out = S64.unpack(task.mm.copy_in(off_out, 8))[0] if off_out else None
    pos_in = S64.unpack(task.mm.copy_in(off_in, 8))[0] if off_in else None
    if not src.readable or not dst.writable:
        raise SyscallError(errno.EBADF)
    if pipe_in is not None and pipe_out is not None:
        if pipe_in is pipe_out:
            raise SyscallError(errno.EINVAL)
        nonblocking = nonblocking or src.nonblocking or dst.nonblocking
        if nonblocking and pipe_out.full():
            raise SyscallError(errno.EAGAIN)
        data = pipe_in.read(min(length, _pipe_room(pipe_out)), nonblocking)
        return pipe_out.write(data, nonblocking, False) if data else 0
    if pipe_in is not None:
        # Pipe to file (do_splice_from: the file's write_iter).
        if dst.flags & O_APPEND or (pos_out is not None and pos_out < 0):
            raise SyscallError(errno.EINVAL)
        data = pipe_in.read(length, nonblocking or src.nonblocking)
        if not data:
            return 0
        if pos_out is None:
            return dst.write(data)
        check_size(pos_out + len(data))
        done = dst.pwrite(data, pos_out)
        task.mm.copy_out(off_out, S64.pack(pos_out + done))
        return done
    if pipe_out is None or src.is_dir() or (pos_in is not None and pos_in < 0):
        raise SyscallError(errno.EINVAL)
    # File to pipe (splice_file_to_pipe): at most what fits, waiting for room.
    nonblocking = nonblocking or dst.nonblocking
    if nonblocking and pipe_out.full():
        raise SyscallError(errno.EAGAIN)
    n = min(length, _pipe_room(pipe_out))
    data = src.read(n) if pos_in is None else src.pread(n, pos_in)
    if not data:
        return 0
    done = pipe_out.write(data, nonblocking, False)
    if pos_in is not None:
        task.mm.copy_out(off_in, S64.pack(pos_in + done))
    elif done < len(data):
        src.lseek(done - len(data), SEEK_CUR)  # give back what the pipe did not take
    return done


@syscall("tee")
def sys_tee(task, fd_in, fd_out, length, flags):
    """Implements Linux syscall tee(2): copy up to ``length`` bytes from the
    pipe ``fd_in`` into the pipe ``fd_out`` without consuming them.

    Returns the bytes copied, 0 when fd_in is empty and has no writers.
    EBADF for fds not open for reading/writing, EINVAL when either is not
    a pipe, both are the same pipe, or flags are unknown; EAGAIN with
    SPLICE_F_NONBLOCK (fs/splice.c do_tee, link_pipe).
    """
    nonblocking = _check_flags(flags)
    length = _clamp(length)
    if length == 0:
        return 0
    src = _readable(task, fd_in)
    dst = _writable(task, fd_out)
    pipe_in, pipe_out = _pipe_of(src), _pipe_of(dst)
    if pipe_in is None or pipe_out is None or pipe_in is pipe_out:
        raise SyscallError(errno.EINVAL)
    nonblocking = nonblocking or src.nonblocking or dst.nonblocking
    if nonblocking and pipe_out.full():
        raise SyscallError(errno.EAGAIN)
    data = pipe_in.peek(min(length, _pipe_room(pipe_out)), nonblocking)
    if not data:
        return 0
    return pipe_out.write(data, nonblocking, False)


@syscall("vmsplice")
def sys_vmsplice(task, fd, iov, nr_segs, flags):
    """Implements Linux syscall vmsplice(2) by copying: user memory into the
    write end of a pipe, or from its read end into user memory.

    Returns the bytes moved. EBADF when ``fd`` is not a pipe or is open
    for neither direction it would need; EINVAL for unknown flags or a bad
    iovec count; EAGAIN with SPLICE_F_NONBLOCK; EFAULT (fs/splice.c).
    """
    nonblocking = _check_flags(flags)
    file = task.fds.get(to_int(fd))
    pipe = _pipe_of(file)
    if pipe is None:
        raise SyscallError(errno.EBADF)
    iovs = _read_iovec(task, iov, nr_segs)
    if file.writable:
        data = _gather(task, iovs)
        return pipe.write(data, nonblocking or file.nonblocking, False) if data else 0
    if file.readable:
        if nonblocking and pipe.empty() and pipe.writers:
            raise SyscallError(errno.EAGAIN)
        return _read_segments(task, file, iovs)
    raise SyscallError(errno.EBADF)


@syscall("syncfs")
def sys_syncfs(task, fd):
    """Implements Linux syscall syncfs(2): 0 (the sentry's filesystems are
    in memory or written through at once). EBADF for a bad fd."""
    task.fds.get(to_int(fd))
    return 0
