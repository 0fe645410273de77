"""epoll: an interest list of (fd, file) polled as one file (fs/eventpoll.c, epoll(7)).

An ``EpollFile`` keeps one ``Epitem`` per (fd, open file) added with
EPOLL_CTL_ADD. Readiness is asked of each file with ``poll.file_poll``
(Linux's vfs_poll) when a waiter scans, rather than pushed by wakeup
callbacks: a scan reports ``file_poll(file) & events`` for every item,
ready items in round-robin order (a reported item goes to the back, as
Linux requeues level-triggered items at the tail of its ready list).

Waiting is poll(2)'s: sleep on ``POLL_WAITQUEUE``, which every pipe,
eventfd, timerfd and epoll change wakes, and scan again; in HOST_TICK
(10 ms) slices when a host fd is in the set. A signal ends the wait with
EINTR (epoll_wait is never restarted, signal(7)).

EPOLLONESHOT disables an item after it is reported, until EPOLL_CTL_MOD.
EPOLLET reports an item once per change of its file: after a report the
item stays quiet until its ready mask or the file's state changes
(``_change_token``: a pipe's read/write times and end counts, a timerfd's
or epoll's change counter). Files whose changes cannot be observed that
way (eventfds, the sentry's stdio) are level-triggered even with EPOLLET,
which gives extra reports, never missed ones. EPOLLEXCLUSIVE is accepted
and wakes every waiter. An item goes away when its file is released (the
last fd of it closed), as Linux's eventpoll_release.

Importing this module registers the handlers.
"""

from __future__ import annotations

import collections
import errno
import os
import stat as _stat
import struct
import time

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import sched, signals
from kvmsentry.kernel.fd import O_CLOEXEC, O_RDWR, File, HostStream, nofile_limit
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.pipe import PIPEFS_DEV, POLL_WAITQUEUE, POLLIN, POLLRDNORM, PipeFile
from kvmsentry.kernel.syscalls.eventfd import _ANON_INODE
from kvmsentry.kernel.syscalls.poll import HOST_TICK, MAX_SLEEP, file_poll
from kvmsentry.kernel.syscalls.table import SyscallError, syscall

__all__ = ["EpollFile", "sys_epoll_create", "sys_epoll_create1", "sys_epoll_ctl",
           "sys_epoll_wait", "sys_epoll_pwait", "sys_epoll_pwait2"]

# include/uapi/linux/eventpoll.h
EPOLL_CLOEXEC = O_CLOEXEC
EPOLL_CTL_ADD = 1
EPOLL_CTL_DEL = 2
EPOLL_CTL_MOD = 3
EPOLLIN = 0x001
EPOLLPRI = 0x002
EPOLLOUT = 0x004
EPOLLERR = 0x008
EPOLLHUP = 0x010
EPOLLRDNORM = 0x040
EPOLLRDHUP = 0x2000
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
# Bits that are not events (fs/eventpoll.c EP_PRIVATE_BITS).
EP_PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
# The only bits allowed with EPOLLEXCLUSIVE.
EPOLLEXCLUSIVE_OK_BITS = (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET
                          | EPOLLEXCLUSIVE)
# INT_MAX / sizeof(struct epoll_event)
EP_MAX_EVENTS = 0x7FFFFFFF // 12
# Epoll sets nested deeper than this are refused (ELOOP).
EP_MAX_NESTS = 4

# struct epoll_event is packed on x86-64: u32 events, u64 data.
EPOLL_EVENT = struct.Struct("<IQ")
TIMESPEC = struct.Struct("<qq")
SIGSET = struct.Struct("<Q")
NSEC_PER_SEC = 1_000_000_000

SIGKILL, SIGSTOP = 9, 19


class Epitem:
    """One watched (fd, file) pair: its event mask and user data (struct epitem).

    ``events`` is the u32 mask as given (POLL* bits plus EPOLLET etc.,
    with EPOLLERR|EPOLLHUP always added); ``data`` the u64 returned with
    each event. ``reported`` is the change token at the last report (ET).
    """

    __slots__ = ("fd", "file", "events", "data", "reported")

    def __init__(self, fd: int, file: File, events: int, data: int):
        self.fd = fd
        self.file = file
        self.events = events
        self.data = data
        self.reported = None


def _change_token(file):
    """Something that changes whenever ``file``'s readiness may have (for EPOLLET).

    None when there is no such thing: the item is then level-triggered.
    """
    if isinstance(file, PipeFile):
        pipe = file.pipe
        return (pipe.atime_ns, pipe.mtime_ns, pipe.readers, pipe.writers, pipe.max_usage)
    return getattr(file, "change_count", None)


class EpollFile(File):
    """An epoll instance (struct eventpoll) as an open file.

    read/write are EINVAL; it is itself pollable (POLLIN when an item is
    ready), so epoll sets nest and poll(2) works on them. ``change_count``
    grows on every epoll_ctl and report (an outer EPOLLET set sees it).
    """

    def __init__(self, flags: int = 0):
        super().__init__(O_RDWR, b"anon_inode:[eventpoll]")
        self.items: collections.OrderedDict[tuple[int, int], Epitem] = collections.OrderedDict()
        self.change_count = 0
        self._scanning = False

    # -- the interest list --------------------------------------------------
    def find(self, fd: int, file: File) -> Epitem | None:
        return self.items.get((fd, id(file)))

    def _changed(self) -> None:
        self.change_count += 1
        POLL_WAITQUEUE.wake_all()

    def add(self, fd: int, file: File, events: int, data: int) -> None:
        self.items[(fd, id(file))] = Epitem(fd, file, events | EPOLLERR | EPOLLHUP, data)
        self._changed()

    def modify(self, item: Epitem, events: int, data: int) -> None:
        item.events = events | EPOLLERR | EPOLLHUP
        item.data = data
        item.reported = None
        self._changed()

    def remove(self, item: Epitem) -> None:
        self.items.pop((item.fd, id(item.file)), None)
        self._changed()

    def watched_epolls(self):
        """The epoll files this one watches (for the loop and depth checks)."""
        return [item.file for item in self.items.values() if isinstance(item.file, EpollFile)]

    # -- readiness ----------------------------------------------------------
    def ready(self, limit: int | None = None) -> list[tuple[Epitem, int, object]]:
        """Items to report now, in order: (item, revents, change token).

        Drops items whose file was released. Nothing is consumed: the
        caller calls ``reported`` for what it delivered.
        """
        if self._scanning:  # a loop the ELOOP check missed: report nothing
            return []
        self._scanning = True
        try:
            out = []
            for key, item in list(self.items.items()):
                if item.file.closed:
                    del self.items[key]
                    continue
                wanted = item.events & ~EP_PRIVATE_BITS
                if not wanted:
                    continue  # disabled by EPOLLONESHOT
                revents = file_poll(item.file) & wanted
                if not revents:
                    continue
                token = None
                if item.events & EPOLLET:
                    token = (revents, _change_token(item.file))
                    if token[1] is not None and token == item.reported:
                        continue
                out.append((item, revents, token))
                if limit is not None and len(out) >= limit:
                    break
            return out
        finally:
            self._scanning = False

    def reported(self, item: Epitem, token) -> None:
        """``item`` was delivered: disable it (EPOLLONESHOT), remember (EPOLLET), rotate."""
        if item.events & EPOLLONESHOT:
            item.events &= EP_PRIVATE_BITS
        item.reported = token
        key = (item.fd, id(item.file))
        if key in self.items:
            self.items.move_to_end(key)
        self.change_count += 1

    def has_host(self, depth: int = 0) -> bool:
        """True when a host fd (which cannot wake POLL_WAITQUEUE) is watched, nested too."""
        if depth > EP_MAX_NESTS:
            return False
        for item in self.items.values():
            if isinstance(item.file, HostStream):
                return True
            if isinstance(item.file, EpollFile) and item.file.has_host(depth + 1):
                return True
        return False

    def poll_events(self) -> int:
        """ep_eventpoll_poll: POLLIN|POLLRDNORM when some item would be reported."""
        return POLLIN | POLLRDNORM if self.ready(1) else 0

    def stat(self) -> Stat:
        return Stat(st_dev=PIPEFS_DEV, st_ino=_ANON_INODE, st_nlink=1, st_mode=0o600,
                    st_blksize=4096)

    def release(self) -> None:
        self.closed = True
        self.items.clear()


# -- epoll_create ------------------------------------------------------------------

def do_epoll_create(task, flags: int) -> int:
    if flags & ~EPOLL_CLOEXEC:
        raise SyscallError(errno.EINVAL)
    file = EpollFile()
    try:
        return task.fds.install(file, bool(flags & EPOLL_CLOEXEC),
                                limit=nofile_limit(task.process))
    except SyscallError:
        file.release()
        raise


@syscall("epoll_create1")
def sys_epoll_create1(task, flags):
    """Implements Linux syscall epoll_create1(2).

    Flags EPOLL_CLOEXEC, others EINVAL. The fd is O_RDWR; readlink shows
    "anon_inode:[eventpoll]". EMFILE at RLIMIT_NOFILE.
    """
    return do_epoll_create(task, to_int(flags))


@syscall("epoll_create")
def sys_epoll_create(task, size):
    """Implements Linux syscall epoll_create(2): ``size`` (an int) must be > 0, else EINVAL."""
    if to_int(size) <= 0:
        raise SyscallError(errno.EINVAL)
    return do_epoll_create(task, 0)


# -- epoll_ctl -----------------------------------------------------------------------

def _can_poll(file: File) -> bool:
    """file_can_poll: the file has a poll operation (EPERM from epoll_ctl otherwise).

    Pipes, eventfds, timerfds and epolls do; regular files, directories
    and the sentry's char devices do not. The sentry's stdio can, unless
    the host fd behind it is a regular file or directory.
    """
    if isinstance(file, HostStream):
        try:
            mode = os.fstat(file.host_fd).st_mode
        except OSError:
            return False
        return not (_stat.S_ISREG(mode) or _stat.S_ISDIR(mode))
    return getattr(file, "poll_events", None) is not None


def _reaches(start: EpollFile, target: EpollFile, depth: int = 0) -> bool:
    """True when ``target`` is ``start`` or watched by it, at any depth."""
    if start is target:
        return True
    if depth > EP_MAX_NESTS:
        return True
    return any(_reaches(inner, target, depth + 1) for inner in start.watched_epolls())


def _depth(ep: EpollFile, depth: int = 0) -> int:
    """How deep the epolls watched by ``ep`` nest (0: it watches none)."""
    if depth > EP_MAX_NESTS:
        return depth
    inner = ep.watched_epolls()
    return 1 + max(_depth(e, depth + 1) for e in inner) if inner else 0


@syscall("epoll_ctl")
def sys_epoll_ctl(task, epfd, op, fd, event):
    """Implements Linux syscall epoll_ctl(2).

    ``event`` is a packed 12-byte struct epoll_event (u32 events, u64
    data), read for ADD and MOD (EFAULT). EBADF for a closed epfd or fd,
    EPERM when ``fd``'s file cannot be polled (regular files,
    directories), EINVAL when epfd is not an epoll, ``fd`` is epfd itself,
    the op is unknown, or EPOLLEXCLUSIVE is misused (with MOD, on an
    epoll fd, with bits other than IN/OUT/ERR/HUP/WAKEUP/ET), EEXIST for
    a second ADD of (fd, file), ENOENT for MOD/DEL of one not added, ELOOP
    when the ADD would make a loop of epolls or nest them deeper than 4.
    Source: fs/eventpoll.c do_epoll_ctl.
    """
    epfd, op, fd = to_int(epfd), to_int(op), to_int(fd)
    events = data = 0
    if op != EPOLL_CTL_DEL:
        events, data = EPOLL_EVENT.unpack(task.mm.copy_in(event, EPOLL_EVENT.size))
    ep = task.fds.get(epfd)
    target = task.fds.get(fd)
    if not _can_poll(target):
        raise SyscallError(errno.EPERM)
    if op != EPOLL_CTL_DEL and events & EPOLLEXCLUSIVE:
        if op == EPOLL_CTL_MOD:
            raise SyscallError(errno.EINVAL)
        if op == EPOLL_CTL_ADD and (isinstance(target, EpollFile)
                                    or events & ~EPOLLEXCLUSIVE_OK_BITS):
            raise SyscallError(errno.EINVAL)
    if ep is target or not isinstance(ep, EpollFile):
        raise SyscallError(errno.EINVAL)
    if op not in (EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD):
        raise SyscallError(errno.EINVAL)
    item = ep.find(fd, target)
    if op == EPOLL_CTL_ADD:
        if item is not None:
            raise SyscallError(errno.EEXIST)
        if isinstance(target, EpollFile):
            if _reaches(target, ep) or _depth(target) + 1 > EP_MAX_NESTS:
                raise SyscallError(errno.ELOOP)
        ep.add(fd, target, events, data)
    elif item is None:
        raise SyscallError(errno.ENOENT)
    elif op == EPOLL_CTL_DEL:
        ep.remove(item)
    elif item.events & EPOLLEXCLUSIVE:
        raise SyscallError(errno.EINVAL)
    else:
        ep.modify(item, events, data)
    return 0


# -- epoll_wait ------------------------------------------------------------------------

def _send_events(task, ep: EpollFile, events_gva: int, maxevents: int) -> int:
    """ep_send_events: copy out up to ``maxevents`` ready items; their count.

    EFAULT when not even the first event could be stored; an item that
    could not be stored is not consumed.
    """
    count = 0
    for item, revents, token in ep.ready(maxevents):
        try:
            task.mm.copy_out(events_gva + count * EPOLL_EVENT.size,
                             EPOLL_EVENT.pack(revents, item.data))
        except GuestFault:
            if not count:
                raise SyscallError(errno.EFAULT) from None
            break
        ep.reported(item, token)
        count += 1
    return count


def do_epoll_wait(task, epfd: int, events_gva: int, maxevents: int,
                  deadline: float | None) -> int:
    """ep_poll: wait until an item is ready, the deadline passes, or a signal comes.

    ``deadline`` is a time.monotonic() value, 0.0 for "just look", None
    for no timeout. Returns the number of events stored. EINVAL for
    maxevents outside [1, EP_MAX_EVENTS] or an fd that is not an epoll,
    EBADF, EFAULT, EINTR on a signal while nothing is ready.
    """
    if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
        raise SyscallError(errno.EINVAL)
    ep = task.fds.get(epfd)
    if not isinstance(ep, EpollFile):
        raise SyscallError(errno.EINVAL)
    while True:
        count = _send_events(task, ep, events_gva, maxevents)
        if count:
            return count
        now = time.monotonic()
        if deadline is not None and deadline <= now:
            return 0
        if task is not None and task.signal_pending():
            raise SyscallError(errno.EINTR)
        sleep = MAX_SLEEP if deadline is None else deadline - now
        if ep.has_host():
            sleep = min(sleep, HOST_TICK)
        try:
            POLL_WAITQUEUE.wait(task, lambda: bool(ep.ready(1)), min(sleep, MAX_SLEEP))
        except sched.Interrupted:
            # Events that came with the signal are still delivered first.
            if not ep.ready(1):
                raise SyscallError(errno.EINTR) from None


def _ms_deadline(timeout_ms: int) -> float | None:
    """epoll_wait's int timeout in ms: negative waits forever, 0 only looks."""
    if timeout_ms < 0:
        return None
    if timeout_ms == 0:
        return 0.0
    return time.monotonic() + timeout_ms / 1000


def _pwait(task, epfd, events, maxevents, deadline, sigmask, sigsetsize) -> int:
    """epoll_pwait's signal mask around do_epoll_wait (set_user_sigmask).

    EINVAL for a sigsetsize other than 8. On EINTR the old mask comes back
    after the handler ran (``saved_sigmask``), else at once.
    """
    old = None
    if sigmask:
        if sigsetsize != SIGSET.size:
            raise SyscallError(errno.EINVAL)
        (mask,) = SIGSET.unpack(task.mm.copy_in(sigmask, SIGSET.size))
        old = task.sigmask
        task.sigmask = mask & ~signals.UNBLOCKABLE
    try:
        result = do_epoll_wait(task, epfd, events, maxevents, deadline)
    except SyscallError as e:
        if old is not None:
            if e.errno == errno.EINTR:
                task.saved_sigmask = old
            else:
                task.sigmask = old
        raise
    if old is not None:
        task.sigmask = old
    return result


@syscall("epoll_wait")
def sys_epoll_wait(task, epfd, events, maxevents, timeout):
    """Implements Linux syscall epoll_wait(2).

    ``events`` receives up to ``maxevents`` packed struct epoll_event;
    ``timeout`` is an int in ms (negative: forever, 0: return at once).
    Returns the number stored (0 on timeout). EINVAL for maxevents <= 0
    or epfd not an epoll, EBADF, EFAULT, EINTR on a signal (never
    restarted, as Linux).
    """
    return do_epoll_wait(task, to_int(epfd), events, to_int(maxevents),
                         _ms_deadline(to_int(timeout)))


@syscall("epoll_pwait")
def sys_epoll_pwait(task, epfd, events, maxevents, timeout, sigmask, sigsetsize):
    """Implements Linux syscall epoll_pwait(2): epoll_wait under a temporary signal mask.

    ``sigmask`` null leaves the mask alone; ``sigsetsize`` must be 8
    (else EINVAL). A handler interrupting the wait runs under the
    temporary mask, as in Linux.
    """
    return _pwait(task, to_int(epfd), events, to_int(maxevents),
                  _ms_deadline(to_int(timeout)), sigmask, sigsetsize)


@syscall("epoll_pwait2")
def sys_epoll_pwait2(task, epfd, events, maxevents, timeout, sigmask, sigsetsize):
    """Implements Linux syscall epoll_pwait2(2): epoll_pwait with a struct timespec timeout.

    ``timeout`` null waits forever; EFAULT for a bad pointer, EINVAL for
    tv_sec < 0 or tv_nsec outside [0, 1e9).
    """
    deadline = None
    if timeout:
        sec, nsec = TIMESPEC.unpack(task.mm.copy_in(timeout, TIMESPEC.size))
        if sec < 0 or not 0 <= nsec < NSEC_PER_SEC:
            raise SyscallError(errno.EINVAL)
        deadline = 0.0 if sec == 0 and nsec == 0 else time.monotonic() + sec + nsec / NSEC_PER_SEC
    return _pwait(task, to_int(epfd), events, to_int(maxevents), deadline, sigmask, sigsetsize)
