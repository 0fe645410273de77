"""eventfd and eventfd2: a 64-bit counter as a file (fs/eventfd.c, eventfd(2)).

Importing this module registers the handlers. An ``EventFd`` wakes
``POLL_WAITQUEUE`` on every change, so poll/select see it.
"""

from __future__ import annotations

import errno
import struct

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import O_CLOEXEC, O_NONBLOCK, O_RDWR, File, nofile_limit
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.pipe import (PIPEFS_DEV, POLL_WAITQUEUE, POLLERR, POLLIN, POLLOUT,
                                   POLLRDNORM, POLLWRNORM, next_ino)
from kvmsentry.kernel.signals import ERESTARTSYS
from kvmsentry.kernel.syscalls.table import SyscallError, syscall

# include/uapi/linux/eventfd.h
EFD_SEMAPHORE = 1
EFD_CLOEXEC = O_CLOEXEC
EFD_NONBLOCK = O_NONBLOCK
ULLONG_MAX = (1 << 64) - 1
U64 = struct.Struct("<Q")

# All anonymous-inode files share one inode (fs/anon_inodes.c).
_ANON_INODE = next_ino()


class EventFd(File):
    """An eventfd: read takes the counter (or 1 with EFD_SEMAPHORE), write adds.

    read needs at least 8 bytes (EINVAL) and blocks while the counter is
    0; write needs 8 bytes (EINVAL), refuses 2**64 - 1 (EINVAL) and blocks
    while the sum would exceed 2**64 - 2. EAGAIN for O_NONBLOCK,
    ERESTARTSYS when a signal cuts a wait short (restart or EINTR).
    """

    def __init__(self, count: int, flags: int):
        super().__init__(O_RDWR | (flags & O_NONBLOCK), b"anon_inode:[eventfd]")
        self.count = count
        self.semaphore = bool(flags & EFD_SEMAPHORE)
        self.wait_queue = sched.WaitQueue()

    def _changed(self) -> None:
        self.wait_queue.wake_all()
        POLL_WAITQUEUE.wake_all()

    def _block(self, predicate) -> None:
        if self.nonblocking:
            raise SyscallError(errno.EAGAIN)
        try:
            self.wait_queue.wait(None, predicate)
        except sched.Interrupted:
            raise SyscallError(ERESTARTSYS) from None

    def read(self, n: int) -> bytes:
        if n < U64.size:
            raise SyscallError(errno.EINVAL)
        if not self.count:
            self._block(lambda: self.count > 0)
        value = 1 if self.semaphore else self.count
        self.count -= value
        self._changed()
        return U64.pack(value)

    def write(self, data) -> int:
        if len(data) < U64.size:
            raise SyscallError(errno.EINVAL)
        (value,) = U64.unpack(bytes(data[:U64.size]))
        if value == ULLONG_MAX:
            raise SyscallError(errno.EINVAL)
        if ULLONG_MAX - self.count <= value:
            self._block(lambda: ULLONG_MAX - self.count > value)
        self.count += value
        self._changed()
        return U64.size

    def poll_events(self) -> int:
        """eventfd_poll: POLLIN when count > 0, POLLOUT while a write of 1 fits,
        POLLERR at 2**64 - 1."""
        mask = 0
        if self.count > 0:
            mask |= POLLIN | POLLRDNORM
        if self.count == ULLONG_MAX:
            mask |= POLLERR
        if ULLONG_MAX - 1 > self.count:
            mask |= POLLOUT | POLLWRNORM
        return mask

    def stat(self) -> Stat:
        # An anonymous inode: mode 0600 with no file-type bits.
        return Stat(st_dev=PIPEFS_DEV, st_ino=_ANON_INODE, st_nlink=1, st_mode=0o600,
                    st_blksize=4096)


def do_eventfd2(task, initval: int, flags: int) -> int:
    flags = to_int(flags)
    if flags & ~(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    file = EventFd(initval & 0xFFFFFFFF, flags)
    try:
        return task.fds.install(file, bool(flags & EFD_CLOEXEC), limit=nofile_limit(task.process))
    except SyscallError:
        file.release()
        raise


@syscall("eventfd2")
def sys_eventfd2(task, initval, flags):
    """Implements Linux syscall eventfd2(2).

    ``initval`` is an unsigned int. Flags EFD_SEMAPHORE, EFD_NONBLOCK,
    EFD_CLOEXEC; others EINVAL. EMFILE at RLIMIT_NOFILE. The file is
    O_RDWR; fstat shows an anonymous inode, readlink "anon_inode:[eventfd]".
    """
    return do_eventfd2(task, initval, flags)


@syscall("eventfd")
def sys_eventfd(task, initval):
    """Implements Linux syscall eventfd(2): eventfd2 with no flags."""
    return do_eventfd2(task, initval, 0)
