"""signalfd and signalfd4: pending signals read as a file (fs/signalfd.c, signalfd(2)).

Importing this module registers the handlers. A ``SignalFd`` keeps no
signals of its own: a read takes signals of its mask from the reading
thread's pending set, then from its process's, as the handler path would
(kernel/signal.c dequeue_signal), each as a 128-byte struct
signalfd_siginfo. Programs block those signals (sigprocmask)
so that they stay pending for the read. A reader or poller asleep is
woken by Kernel.send_signal's wake-up of every thread the signal is for
(its ``waiting_on`` queue), as any interruptible sleep is; a new mask
wakes the file's own queue and POLL_WAITQUEUE.
"""

from __future__ import annotations

import errno
import struct

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import sched, signals
from kvmsentry.kernel.fd import O_CLOEXEC, O_NONBLOCK, O_RDWR, File, nofile_limit
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.pipe import PIPEFS_DEV, POLL_WAITQUEUE, POLLIN, POLLRDNORM, next_ino
from kvmsentry.kernel.syscalls.table import SyscallError, syscall

# include/uapi/linux/signalfd.h
SFD_CLOEXEC = O_CLOEXEC
SFD_NONBLOCK = O_NONBLOCK
SIGNALFD_SIGINFO_SIZE = 128
_SIGSET_SIZE = 8

# siginfo_t's si_code values that pick a layout (include/uapi/asm-generic/siginfo.h).
SI_QUEUE = -1
SI_TIMER = -2
SI_SIGIO = -5
NSIGPOLL = 6
# The highest si_code each signal's own codes reach (kernel/signal.c sig_sicodes).
_FAULT_LIMITS = {4: 11, 5: 6, 7: 5, 8: 8, 11: 10}  # SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV
SIGCHLD = 17
CLD_LIMIT = 6
SIGSYS = 31

_SIGINFO_HEAD = struct.Struct("<iii")
_SIGNALFD_SIGINFO = struct.Struct("<IiiIIiIIIIiiQQQQH")  # up to ssi_addr_lsb

# All anonymous-inode files share one inode (fs/anon_inodes.c).
_ANON_INODE = next_ino()


def _layout(signo: int, code: int) -> str:
    """siginfo_layout (kernel/signal.c): which union member ``code`` uses."""
    if 0 < code < signals.SI_KERNEL:
        if signo in _FAULT_LIMITS and code <= _FAULT_LIMITS[signo]:
            return "fault"
        if signo == SIGCHLD and code <= CLD_LIMIT:
            return "chld"
        if signo == SIGSYS and code <= 1:
            return "sys"
        if code <= NSIGPOLL:
            return "poll"
        return "kill"
    if code == SI_TIMER:
        return "timer"
    if code == SI_SIGIO:
        return "poll"
    if code < 0:
        return "rt"
    return "kill"


def signalfd_siginfo(info: bytes) -> bytes:
    """The struct signalfd_siginfo (128 bytes) for a 128-byte siginfo_t,
    field by field as fs/signalfd.c signalfd_copyinfo fills it."""
    signo, err, code = _SIGINFO_HEAD.unpack_from(info, 0)
    pid = uid = fd = tid = band = overrun = trapno = status = value_int = 0
    value_ptr = utime = stime = addr = 0
    layout = _layout(signo, code)
    if layout in ("kill", "rt", "chld"):
        pid, uid = struct.unpack_from("<iI", info, 16)
        pid &= 0xFFFFFFFF
        if layout == "rt":
            value_ptr = struct.unpack_from("<Q", info, 24)[0]
            value_int = struct.unpack_from("<i", info, 24)[0]
        elif layout == "chld":
            status, = struct.unpack_from("<i", info, 24)
            utime, stime = struct.unpack_from("<QQ", info, 32)
    elif layout == "timer":
        tid, overrun = struct.unpack_from("<iI", info, 16)
        tid &= 0xFFFFFFFF
        value_ptr = struct.unpack_from("<Q", info, 24)[0]
        value_int = struct.unpack_from("<i", info, 24)[0]
    elif layout == "poll":
        band, fd = struct.unpack_from("<qi", info, 16)
        band &= 0xFFFFFFFF
    elif layout in ("fault", "sys"):
        addr = struct.unpack_from("<Q", info, 16)[0]
    out = bytearray(SIGNALFD_SIGINFO_SIZE)
    _SIGNALFD_SIGINFO.pack_into(out, 0, signo, err, code, pid, uid, fd, tid, band, overrun,
                                trapno, status, value_int, value_ptr, utime, stime, addr, 0)
    return bytes(out)


class SignalFd(File):
    """A signalfd: reads take pending signals of ``mask`` (bit n-1 for
    signal n; never SIGKILL or SIGSTOP) from the reading thread.

    read needs room for one struct signalfd_siginfo (EINVAL), returns as
    many as are pending and fit, and blocks while none is (EAGAIN with
    O_NONBLOCK; ERESTARTSYS when a signal to handle cuts the wait short).
    """

    def __init__(self, mask: int, flags: int):
        super().__init__(O_RDWR | (flags & O_NONBLOCK), b"anon_inode:[signalfd]")
        self.mask = mask
        self.wait_queue = sched.WaitQueue()

    def _pending(self, task) -> int:
        return (task.pending | task.process.pending) & self.mask

    def _dequeue(self, task) -> bytes | None:
        """One pending signal of the mask, as signalfd_siginfo, in
        dequeue_signal's order (signals.next_pending)."""
        found = signals.next_pending(task, self.mask)
        if found is None:
            return None
        holder, signo = found
        info = signals.dequeue_signal(holder, signo) or signals.siginfo(signo, signals.SI_KERNEL)
        return signalfd_siginfo(info)

    def read(self, n: int) -> bytes:
        if n < SIGNALFD_SIGINFO_SIZE:
            raise SyscallError(errno.EINVAL)
        task = sched.current()
        if not self._pending(task):
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)
            try:
                self.wait_queue.wait(task, lambda: self._pending(task) != 0)
            except sched.Interrupted:
                raise SyscallError(signals.ERESTARTSYS) from None
        out = []
        while len(out) < n // SIGNALFD_SIGINFO_SIZE:
            info = self._dequeue(task)
            if info is None:
                break
            out.append(info)
        return b"".join(out)

    def poll_events(self) -> int:
        """signalfd_poll: POLLIN while a signal of the mask is pending for the polling thread."""
        task = sched.current()
        return POLLIN | POLLRDNORM if task is not None and self._pending(task) else 0

    def show_fdinfo(self) -> bytes:
        """/proc/<pid>/fdinfo's line (signalfd_show_fdinfo): the mask, 16 hex digits."""
        return b"sigmask:\t%016x\n" % self.mask

    def lseek(self, offset: int, whence: int) -> int:
        """noop_llseek: the position stays 0, whatever is asked."""
        return 0

    def stat(self) -> Stat:
        # An anonymous inode: mode 0600 with no file-type bits.
        return Stat(st_dev=PIPEFS_DEV, st_ino=_ANON_INODE, st_nlink=1, st_mode=0o600,
                    st_blksize=4096)


def do_signalfd4(task, fd: int, mask_gva: int, sizemask: int, flags: int) -> int:
    # The size, then the mask (EFAULT), then the flags: sys_signalfd4, do_signalfd4.
    if sizemask != _SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    mask = struct.unpack("<Q", task.mm.copy_in(mask_gva, _SIGSET_SIZE))[0] & ~signals.UNBLOCKABLE
    flags = to_int(flags)
    if flags & ~(SFD_CLOEXEC | SFD_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    fd = to_int(fd)
    if fd != -1:
        file = task.fds.get(fd)
        if not isinstance(file, SignalFd):
            raise SyscallError(errno.EINVAL)
        file.mask = mask
        file.wait_queue.wake_all()
        POLL_WAITQUEUE.wake_all()
        return fd
    file = SignalFd(mask, flags)
    try:
        return task.fds.install(file, bool(flags & SFD_CLOEXEC), limit=nofile_limit(task.process))
    except SyscallError:
        file.release()
        raise


@syscall("signalfd4")
def sys_signalfd4(task, fd, mask, sizemask, flags):
    """Implements Linux syscall signalfd4(2).

    ``fd`` -1 makes a new signalfd (O_RDWR, an anonymous inode, readlink
    "anon_inode:[signalfd]"); another fd must be a signalfd, whose mask
    is replaced (EINVAL otherwise, EBADF when not open). ``sizemask`` must
    be 8 (EINVAL), then EFAULT for the mask, then flags SFD_NONBLOCK,
    SFD_CLOEXEC (others EINVAL); EMFILE at RLIMIT_NOFILE. SIGKILL and SIGSTOP in the mask
    are ignored.
    """
    return do_signalfd4(task, fd, mask, sizemask, flags)


@syscall("signalfd")
def sys_signalfd(task, fd, mask, sizemask):
    """Implements Linux syscall signalfd(2): signalfd4 with no flags."""
    return do_signalfd4(task, fd, mask, sizemask, 0)
