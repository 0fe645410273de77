"""Pipe syscalls: pipe, pipe2, and the pipe part of fcntl (F_GETPIPE_SZ/F_SETPIPE_SZ).

The pipes themselves are ``kvmsentry.kernel.pipe``. Importing this module
registers the handlers. fcntl(2) lives in fs.py and hands the two pipe
commands to ``pipe_fcntl``.
"""

from __future__ import annotations

import errno
import struct

from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import O_CLOEXEC, O_DIRECT, O_EXCL, O_NONBLOCK, nofile_limit
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.pipe import F_GETPIPE_SZ, F_SETPIPE_SZ, PAGE_SIZE, PipeFile, make_pipe
from kvmsentry.kernel.syscalls.table import SyscallError, syscall
from kvmsentry.kernel.task import CAP_SYS_RESOURCE

# include/linux/watch_queue.h: pipe2's O_NOTIFICATION_PIPE is O_EXCL.
O_NOTIFICATION_PIPE = O_EXCL

FDS = struct.Struct("<ii")


def do_pipe2(task, fildes_gva: int, flags: int) -> int:
    """Create a pipe, install both ends and store the fds at ``fildes_gva``.

    As Linux's do_pipe2: EINVAL for unknown flags, EMFILE when the table
    (RLIMIT_NOFILE) has no two free fds, EFAULT when the fds cannot be
    stored (the new fds are closed again).
    """
    if flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT | O_NOTIFICATION_PIPE):
        raise SyscallError(errno.EINVAL)
    if flags & O_NOTIFICATION_PIPE:
        # A kernel without CONFIG_WATCH_QUEUE answers so (watch_queue_init).
        raise SyscallError(errno.ENOPKG)
    creds = task.process.creds
    reader, writer = make_pipe(flags, creds.euid, creds.egid)
    cloexec = bool(flags & O_CLOEXEC)
    limit = nofile_limit(task.process)
    try:
        rfd = task.fds.install(reader, cloexec, limit=limit)
    except SyscallError:
        reader.release()
        writer.release()
        raise
    try:
        wfd = task.fds.install(writer, cloexec, limit=limit)
    except SyscallError:
        task.fds.close(rfd)
        writer.release()
        raise
    try:
        task.mm.copy_out(fildes_gva, FDS.pack(rfd, wfd))
    except GuestFault:
        task.fds.close(rfd)
        task.fds.close(wfd)
        raise SyscallError(errno.EFAULT) from None
    return 0


@syscall("pipe")
def sys_pipe(task, fildes):
    """Implements Linux syscall pipe(2): pipe2 with no flags. EMFILE, EFAULT."""
    return do_pipe2(task, fildes, 0)


@syscall("pipe2")
def sys_pipe2(task, fildes, flags):
    """Implements Linux syscall pipe2(2).

    ``fildes`` receives int[2]: the read end, then the write end. Flags
    O_CLOEXEC, O_NONBLOCK and O_DIRECT (packet mode: every write of at
    most PIPE_BUF bytes is one packet, larger writes are split into
    4096-byte packets, and a read returns at most one packet, discarding
    what of it does not fit, as Linux). O_NOTIFICATION_PIPE is ENOPKG
    (no watch queues, as a kernel built without CONFIG_WATCH_QUEUE);
    other bits EINVAL. EMFILE at RLIMIT_NOFILE; EFAULT for a bad
    ``fildes`` (after closing the new fds, as Linux).
    """
    return do_pipe2(task, fildes, to_int(flags))


def pipe_fcntl(file, cmd: int, arg: int, task=None) -> int | None:
    """fcntl(2)'s F_GETPIPE_SZ and F_SETPIPE_SZ (fs/pipe.c pipe_fcntl).

    Returns None when ``cmd`` is neither (the caller goes on), else the
    pipe's capacity in bytes. EBADF when ``file`` is not a pipe; for
    F_SETPIPE_SZ (``arg`` an unsigned int byte count, rounded up to a
    power-of-two number of pages) EINVAL above 2 GiB, EPERM when growing
    past 1 MiB (/proc/sys/fs/pipe-max-size) unless the caller (``task``,
    default the current one) has euid 0 (CAP_SYS_RESOURCE), EBUSY when the
    unread data does not fit. The per-user pipe-user-pages limits are not
    enforced.
    """
    if cmd != F_GETPIPE_SZ and cmd != F_SETPIPE_SZ:
        return None
    if not isinstance(file, PipeFile):
        raise SyscallError(errno.EBADF)
    pipe = file.pipe
    if cmd == F_GETPIPE_SZ:
        return pipe.max_usage * PAGE_SIZE
    if task is None:
        task = sched.current()
    privileged = task is None or task.process.creds.capable(CAP_SYS_RESOURCE)
    return pipe.set_size(arg & 0xFFFFFFFF, privileged)
