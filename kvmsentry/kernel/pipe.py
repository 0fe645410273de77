"""Pipes: a ring of page-sized buffers between reader and writer files.

Follows Linux's fs/pipe.c and pipe(7). A ``Pipe`` (Linux's
pipe_inode_info) holds up to ``max_usage`` buffers ("slots") of at most
PAGE_SIZE bytes each: 16 slots (64 KiB) by default, changed with
F_SETPIPE_SZ. A write first merges its last ``len % PAGE_SIZE`` bytes into
the last buffer when they fit there, then fills fresh slots a page at a
time, so a write of at most PIPE_BUF (4096) bytes lands in one buffer and
is atomic, and larger writes may interleave with other writers' when the
pipe fills. Writes by a file opened with O_DIRECT ("packet mode", pipe2(2))
make packet buffers that are never merged; a read stops after one packet
and discards what of it did not fit.

``PipeReader`` and ``PipeWriter`` are the two open file descriptions
pipe2(2) makes. Each counts as one reader or writer of its pipe from
creation until ``release()`` (its last fd closed), which wakes the other
side: readers then see EOF, writers EPIPE. All of it runs under the BKL
(``sched``); a blocked read or write sleeps on the pipe's WaitQueue and
every change of a pipe's state also wakes ``POLL_WAITQUEUE``, the queue
poll(2) and select(2) sleep on.
"""

from __future__ import annotations

import collections
import errno
import itertools
import stat as _stat
import struct
import time

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import sched
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.signals import ERESTARTSYS
from kvmsentry.kernel.fd import (O_ACCMODE, FIONREAD, O_DIRECT, O_NONBLOCK, O_RDONLY, O_WRONLY, File,
                                 makedev)
from kvmsentry.kernel.syscalls.table import SyscallError

PAGE_SIZE = 4096
# include/uapi/linux/limits.h: writes of at most this many bytes are atomic.
PIPE_BUF = 4096
# include/linux/pipe_fs_i.h: a new pipe has 16 slots (64 KiB).
PIPE_DEF_BUFFERS = 16
# /proc/sys/fs/pipe-max-size: the largest F_SETPIPE_SZ without CAP_SYS_RESOURCE.
PIPE_MAX_SIZE = 1 << 20
# include/uapi/linux/fcntl.h (F_LINUX_SPECIFIC_BASE + 7, + 8).
F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032

# include/uapi/asm-generic/poll.h
POLLIN = 0x001
POLLPRI = 0x002
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLNVAL = 0x020
POLLRDNORM = 0x040
POLLRDBAND = 0x080
POLLWRNORM = 0x100
POLLWRBAND = 0x200

# The pipefs superblock's anonymous device (0:15 on the machine this was
# written on; any unnamed-device number will do).
PIPEFS_DEV = makedev(0, 15)

# Woken on every change of a pipe's (or eventfd's) readiness; poll(2),
# select(2) and their variants sleep here (kvmsentry.kernel.syscalls.poll).
POLL_WAITQUEUE = sched.WaitQueue()

_inode_numbers = itertools.count(0x10000)


def next_ino() -> int:
    """A fresh inode number for a pseudo file (Linux's get_next_ino)."""
    return next(_inode_numbers)


class _Buffer:
    """One slot: the unread bytes of a page, after ``offset`` already read."""

    __slots__ = ("data", "offset", "packet")

    def __init__(self, data: bytearray, packet: bool):
        self.data = data
        self.offset = 0
        self.packet = packet


class Pipe:
    """The shared state of one pipe (Linux's pipe_inode_info and inode).

    ``readers``/``writers`` count the open files of each end. ``nbytes``
    is the number of unread bytes (FIONREAD). ``uid``/``gid`` own the
    inode (the creator's effective ids, as fstat reports them).
    """

    def __init__(self, uid: int = 0, gid: int = 0):
        self.bufs: collections.deque[_Buffer] = collections.deque()
        self.max_usage = PIPE_DEF_BUFFERS
        self.nbytes = 0
        self.readers = 0
        self.writers = 0
        self.rd_wait = sched.WaitQueue()
        self.wr_wait = sched.WaitQueue()
        self.ino = next_ino()
        self.uid = uid
        self.gid = gid
        now = time.time_ns()
        self.atime_ns = self.mtime_ns = self.ctime_ns = now

    # -- state ------------------------------------------------------------
    def empty(self) -> bool:
        return not self.bufs

    def full(self) -> bool:
        return len(self.bufs) >= self.max_usage

    def _wake_readers(self) -> None:
        self.rd_wait.wake_all()
        POLL_WAITQUEUE.wake_all()

    def _wake_writers(self) -> None:
        self.wr_wait.wake_all()
        POLL_WAITQUEUE.wake_all()

    # -- I/O ----------------------------------------------------------------
    def read(self, n: int, nonblocking: bool) -> bytes:
        """Take up to ``n`` bytes (pipe_read), as ``read_into`` with the bytes
        returned: b"" at EOF; EAGAIN, ERESTARTSYS as there."""
        pieces: list[bytes] = []
        self.read_into(n, nonblocking, lambda pos, chunk: pieces.append(bytes(chunk)))
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def read_into(self, n: int, nonblocking: bool, store) -> int:
        """Take up to ``n`` bytes (fs/pipe.c pipe_read); returns the count taken.

        ``store(pos, chunk)`` puts each buffer's part (a bytes-like of at
        most PAGE_SIZE bytes) at byte ``pos`` of the reader's destination
        before the buffer gives it up; when it raises GuestFault (a bad
        guest buffer) the read stops and that buffer keeps all its bytes,
        as Linux's copy_page_to_iter falling short: the count stored before
        is returned, or the GuestFault raised when nothing was (EFAULT).
        Blocks while the pipe is empty and has writers; 0 at EOF (empty, no
        writers). EAGAIN when ``nonblocking`` and nothing is there,
        ERESTARTSYS when a signal cuts the wait short (the dispatcher
        restarts the call or fails it with EINTR, as SA_RESTART says).
        """
        if n <= 0 or not self._wait_readable(nonblocking):
            return 0
        bufs = self.bufs
        done = 0
        while bufs and done < n:
            buf = bufs[0]
            data = buf.data
            size = len(data)
            take = size if size <= n - done else n - done
            try:
                store(done, data if take == size else data[:take])
            except GuestFault:
                if not done:
                    raise
                break
            done += take
            if buf.packet:
                bufs.popleft()  # the rest of a packet is discarded
                self.nbytes -= size - take
                break
            if take == size:
                bufs.popleft()
            else:
                del data[:take]
                buf.offset += take
        self.nbytes -= done
        self.atime_ns = time.time_ns()
        self._wake_writers()
        return done

    def _wait_readable(self, nonblocking: bool) -> bool:
        """Wait until the pipe holds data (True) or is empty with no writer
        left (False, EOF). EAGAIN when ``nonblocking`` would have to wait,
        ERESTARTSYS when a signal cuts the wait short."""
        if self.bufs:
            return True
        if not self.writers:
            return False
        if nonblocking:
            raise SyscallError(errno.EAGAIN)
        try:
            self.rd_wait.wait(None, lambda: bool(self.bufs) or not self.writers)
        except sched.Interrupted:
            raise SyscallError(ERESTARTSYS) from None
        return bool(self.bufs)

    def peek(self, n: int, nonblocking: bool) -> bytes:
        """Up to ``n`` bytes from the front, left in the pipe (tee(2)).

        Waits as ``read`` does while the pipe is empty and has writers: b""
        at EOF, EAGAIN when ``nonblocking``, ERESTARTSYS for a signal.
        """
        if n <= 0 or not self._wait_readable(nonblocking):
            return b""
        pieces = []
        for buf in self.bufs:
            if n <= 0:
                break
            pieces.append(bytes(buf.data[:n]))
            n -= len(pieces[-1])
        return b"".join(pieces)

    def write(self, data, nonblocking: bool, packet: bool) -> int:
        """Append ``data`` (pipe_write); returns the bytes written.

        Blocks while the pipe is full until everything is written (a short
        count only when a signal or the last reader's close interrupts a
        write that already wrote something). At most PIPE_BUF bytes go in
        whole or not at all. EPIPE when there is no reader (the dispatcher
        sends SIGPIPE), EAGAIN when ``nonblocking`` and nothing fit,
        ERESTARTSYS when a signal came before anything was written.
        """
        total = len(data)
        if total == 0:
            return 0
        if not self.readers:
            raise SyscallError(errno.EPIPE)
        bufs = self.bufs
        if total <= PAGE_SIZE and type(data) in (bytes, bytearray):
            # The common case, what the loop below does for a write of at
            # most a page that fits at once: merged into the last buffer,
            # or a fresh one.
            last = bufs[-1] if bufs and total < PAGE_SIZE else None
            if last is not None and not last.packet and last.offset + len(last.data) + total <= PAGE_SIZE:
                last.data += data
            elif len(bufs) < self.max_usage:
                bufs.append(_Buffer(bytearray(data), packet))
            else:
                last = bufs = None  # full: the loop below waits
            if bufs is not None:
                self.nbytes += total
                self.mtime_ns = self.ctime_ns = time.time_ns()
                self._wake_readers()
                return total
        view = memoryview(data).cast("B")
        done = 0
        chars = total & (PAGE_SIZE - 1)
        if chars and self.bufs:
            last = self.bufs[-1]
            if not last.packet and last.offset + len(last.data) + chars <= PAGE_SIZE:
                last.data += view[:chars]
                self.nbytes += chars
                done = chars
        while done < total:
            if not self.readers:
                if not done:
                    raise SyscallError(errno.EPIPE)
                # Linux sends SIGPIPE even when part was written (fs/pipe.c pipe_write).
                task = sched.current()
                if task is not None and task.kernel is not None:
                    task.kernel.send_signal(task.process, 13, task)
                break
            if len(self.bufs) < self.max_usage:
                take = min(PAGE_SIZE, total - done)
                self.bufs.append(_Buffer(bytearray(view[done:done + take]), packet))
                self.nbytes += take
                done += take
                continue
            if nonblocking:
                if not done:
                    raise SyscallError(errno.EAGAIN)
                break
            self._wake_readers()
            try:
                self.wr_wait.wait(None, lambda: len(self.bufs) < self.max_usage or not self.readers)
            except sched.Interrupted:
                if not done:
                    raise SyscallError(ERESTARTSYS) from None
                break
        self.mtime_ns = self.ctime_ns = time.time_ns()
        self._wake_readers()
        return done

    def set_size(self, size: int, privileged: bool) -> int:
        """F_SETPIPE_SZ (pipe_set_size): resize to ``size`` bytes, rounded up.

        ``size`` is the fcntl's unsigned int argument. The new size is a
        power-of-two number of pages (at least one); returns it in bytes.
        EINVAL above 2 GiB, EPERM when growing past pipe-max-size (1 MiB)
        without ``privileged`` (CAP_SYS_RESOURCE), EBUSY when the unread
        data needs more slots than the new size has.
        """
        size &= 0xFFFFFFFF
        if size > 1 << 31:
            raise SyscallError(errno.EINVAL)
        size = max(size, PAGE_SIZE)
        size = 1 << (size - 1).bit_length()
        slots = size // PAGE_SIZE
        if slots > self.max_usage and size > PIPE_MAX_SIZE and not privileged:
            raise SyscallError(errno.EPERM)
        if slots < len(self.bufs):
            raise SyscallError(errno.EBUSY)
        self.max_usage = slots
        self._wake_writers()
        return slots * PAGE_SIZE

    def stat(self) -> Stat:
        """What fstat(2) reports for either end (pipefs inode, S_IFIFO 0600)."""
        a, m, c = self.atime_ns, self.mtime_ns, self.ctime_ns
        return Stat(
            st_dev=PIPEFS_DEV, st_ino=self.ino, st_nlink=1,
            st_mode=_stat.S_IFIFO | 0o600, st_uid=self.uid, st_gid=self.gid,
            st_blksize=PAGE_SIZE,
            st_atime=a // 10**9, st_atime_nsec=a % 10**9,
            st_mtime=m // 10**9, st_mtime_nsec=m % 10**9,
            st_ctime=c // 10**9, st_ctime_nsec=c % 10**9,
        )


class PipeFile(File):
    """An open file description of a pipe (either end; a FIFO opened O_RDWR is both).

    Counts itself as a reader and/or writer of ``pipe`` by its access
    mode until ``release``. lseek, pread and pwrite are ESPIPE (File's
    defaults). ``guest_path`` is b"pipe:[INO]", what readlink of
    /proc/self/fd/N shows.
    """

    def __init__(self, pipe: Pipe, flags: int):
        super().__init__(flags, b"pipe:[%d]" % pipe.ino)
        self.pipe = pipe
        if self.readable:
            pipe.readers += 1
        if self.writable:
            pipe.writers += 1

    def read(self, n: int) -> bytes:
        return self.pipe.read(n, self.nonblocking)

    def read_into(self, n: int, store) -> int:
        """Read up to ``n`` bytes through ``store(pos, chunk)`` (Pipe.read_into):
        read(2) and readv(2) copy each pipe buffer to the guest before it
        is taken, so a bad buffer leaves the bytes in the pipe."""
        return self.pipe.read_into(n, self.nonblocking, store)

    def write(self, data) -> int:
        return self.pipe.write(data, self.nonblocking, bool(self.flags & O_DIRECT))

    def stat(self) -> Stat:
        return self.pipe.stat()

    def ioctl(self, task, cmd: int, arg: int) -> int:
        """FIONREAD: the unread byte count as an int at ``arg``; else ENOTTY."""
        if cmd == FIONREAD:
            task.mm.copy_out(arg, struct.pack("<i", min(self.pipe.nbytes, 0x7FFFFFFF)))
            return 0
        raise SyscallError(errno.ENOTTY)

    def poll_events(self) -> int:
        """Readiness as Linux's pipe_poll: POLL* bits for this end.

        Readable end: POLLIN|POLLRDNORM with data, POLLHUP without
        writers. Writable end: POLLOUT|POLLWRNORM with a free slot,
        POLLERR without readers.
        """
        pipe = self.pipe
        mask = 0
        if self.readable:
            if pipe.bufs:
                mask |= POLLIN | POLLRDNORM
            if not pipe.writers:
                mask |= POLLHUP
        if self.writable:
            if len(pipe.bufs) < pipe.max_usage:
                mask |= POLLOUT | POLLWRNORM
            if not pipe.readers:
                mask |= POLLERR
        return mask

    def reopen(self, flags: int) -> "PipeFile":
        """Opening /proc/self/fd/N of a pipe opens the pipe again (fifo_open), e.g. bash's <( )."""
        return PipeFile(self.pipe, flags & (O_ACCMODE | O_NONBLOCK))

    def release(self) -> None:
        if self.closed:
            return
        self.closed = True
        pipe = self.pipe
        if self.readable:
            pipe.readers -= 1
            if not pipe.readers:
                pipe._wake_writers()
        if self.writable:
            pipe.writers -= 1
            if not pipe.writers:
                pipe._wake_readers()


class PipeReader(PipeFile):
    """The read end pipe2(2) returns in fildes[0]: O_RDONLY plus O_NONBLOCK/O_DIRECT."""

    def __init__(self, pipe: Pipe, flags: int = 0):
        super().__init__(pipe, O_RDONLY | (flags & (O_NONBLOCK | O_DIRECT)))


class PipeWriter(PipeFile):
    """The write end pipe2(2) returns in fildes[1]: O_WRONLY plus O_NONBLOCK/O_DIRECT."""

    def __init__(self, pipe: Pipe, flags: int = 0):
        super().__init__(pipe, O_WRONLY | (flags & (O_NONBLOCK | O_DIRECT)))


def make_pipe(flags: int = 0, uid: int = 0, gid: int = 0) -> tuple[PipeReader, PipeWriter]:
    """A new pipe's two ends; ``flags`` may carry O_NONBLOCK and O_DIRECT."""
    pipe = Pipe(uid, gid)
    return PipeReader(pipe, flags), PipeWriter(pipe, flags)
