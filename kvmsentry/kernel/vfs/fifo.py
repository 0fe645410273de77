"""Opening a FIFO (fs/pipe.c fifo_open, fifo(7)).

Both ends of a FIFO share the ``Pipe`` of its ``FifoInode``. O_RDONLY
waits for a writer (not with O_NONBLOCK), O_WRONLY waits for a reader
(ENXIO with O_NONBLOCK and none), O_RDWR never waits. The wait counts
openers (``r_counter``/``w_counter``) so a peer that opened and closed
meanwhile still ends it; a signal makes it ERESTARTSYS.
"""

from __future__ import annotations

import errno

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import O_ACCMODE, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY
from kvmsentry.kernel.pipe import Pipe, PipeFile
from kvmsentry.kernel.signals import ERESTARTSYS
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs.inode import FifoInode


class FifoFile(PipeFile):
    """An open FIFO: a pipe end whose fstat and /proc/self/fd name are the FIFO's."""

    def __init__(self, inode: FifoInode, pipe: Pipe, flags: int, guest_path: bytes):
        super().__init__(pipe, flags)
        self.inode = inode
        self.guest_path = guest_path

    def stat(self) -> Stat:
        return self.inode.stat()

    def reopen(self, flags: int) -> "FifoFile":
        return open_fifo(self.inode, flags, self.guest_path)


def _pipe_of(inode: FifoInode) -> Pipe:
    pipe = inode.pipe
    if pipe is None or (not pipe.readers and not pipe.writers):
        pipe = inode.pipe = Pipe(inode.uid, inode.gid)
        pipe.r_counter = pipe.w_counter = 0
    return pipe


def open_fifo(inode: FifoInode, flags: int, guest_path: bytes) -> FifoFile:
    """A new open file description of FIFO ``inode`` (may wait, as fifo(7))."""
    acc = flags & O_ACCMODE
    nonblock = bool(flags & O_NONBLOCK)
    pipe = _pipe_of(inode)
    if acc == O_WRONLY and nonblock and not pipe.readers:
        raise SyscallError(errno.ENXIO)
    file = FifoFile(inode, pipe, flags, guest_path)
    if file.readable:
        pipe.r_counter += 1
        pipe._wake_writers()
    if file.writable:
        pipe.w_counter += 1
        pipe._wake_readers()
    try:
        if acc == O_RDONLY and not nonblock and not pipe.writers:
            seen = pipe.w_counter
            pipe.rd_wait.wait(None, lambda: pipe.writers or pipe.w_counter != seen)
        elif acc == O_WRONLY and not pipe.readers:
            seen = pipe.r_counter
            pipe.wr_wait.wait(None, lambda: pipe.readers or pipe.r_counter != seen)
    except sched.Interrupted:
        file.release()
        raise SyscallError(ERESTARTSYS) from None
    return file


__all__ = ["FifoFile", "open_fifo", "O_RDWR"]
