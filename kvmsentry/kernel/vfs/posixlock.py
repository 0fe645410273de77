"""POSIX record locks (fcntl F_SETLK/F_SETLKW/F_GETLK) and their
open-file-description variants (F_OFD_*), as fs/locks.c.

A lock covers a byte range [start, end] (end ``OFFSET_MAX`` for "to the
end of file, however it grows") of a file identified by (st_dev, st_ino),
and has an *owner*: for classic POSIX locks the fd table (Linux's
``current->files``: every thread of a process, not a forked child), for
OFD locks the open file description (``File``). Read locks of different
owners may overlap; a write lock conflicts with every other owner's lock.
Setting a lock replaces the owner's locks on the range, splitting and
merging as needed (F_UNLCK punches a hole). A POSIX owner loses all its
locks on a file when it closes *any* fd of that file (``close_posix``,
from FdTable); an OFD lock goes with the last close of its description
(``release_ofd``). A blocked F_SETLKW sleeps on ``WAITQ`` and is
interruptible (ERESTARTSYS, as do_lock_file_wait); EDEADLK when the wait
would close a cycle of POSIX owners waiting on each other.
"""

from __future__ import annotations

import errno

from kvmsentry.kernel import sched
from kvmsentry.kernel.signals import ERESTARTSYS
from kvmsentry.kernel.syscalls.table import SyscallError

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
OFFSET_MAX = (1 << 63) - 1


class Lock:
    """One byte-range lock: ``type`` F_RDLCK or F_WRLCK, ``start`` to ``end``
    inclusive (OFFSET_MAX: to the end of file), ``pid`` what F_GETLK
    reports as l_pid (-1 for OFD locks). Compared by identity."""

    __slots__ = ("owner", "type", "start", "end", "pid")

    def __init__(self, owner: object, type: int, start: int, end: int, pid: int):
        self.owner = owner
        self.type = type
        self.start = start
        self.end = end
        self.pid = pid

    def __repr__(self) -> str:
        return f"Lock(type={self.type}, start={self.start}, end={self.end}, pid={self.pid})"


# (st_dev, st_ino) -> the locks on that file
_locks: dict[tuple[int, int], list[Lock]] = {}
# POSIX owner -> (key, the Lock it waits to set), for EDEADLK
_waiting: dict[object, tuple[tuple[int, int], Lock]] = {}
WAITQ = sched.WaitQueue()


def _conflict(key, want: Lock) -> Lock | None:
    for lk in _locks.get(key, ()):
        if lk.owner is want.owner or lk.end < want.start or lk.start > want.end:
            continue
        if want.type == F_WRLCK or lk.type == F_WRLCK:
            return lk
    return None


def get(key, want: Lock) -> Lock | None:
    """F_GETLK: the first lock that would block ``want``, or None."""
    return _conflict(key, want)


def _deadlock(key, want: Lock) -> bool:
    """Would ``want.owner`` waiting on ``key`` close a cycle of waiters?"""
    seen = set()
    blocker = _conflict(key, want)
    while blocker is not None:
        owner = blocker.owner
        if owner is want.owner:
            return True
        if id(owner) in seen or owner not in _waiting:
            return False
        seen.add(id(owner))
        k, w = _waiting[owner]
        blocker = _conflict(k, w)
    return False


def _apply(key, new: Lock, kind: int) -> None:
    """Replace ``new.owner``'s locks on [new.start, new.end] by ``new``
    (nothing for F_UNLCK), then merge it with touching same-type locks."""
    locks = _locks.get(key, [])
    out = []
    for lk in locks:
        if lk.owner is not new.owner or lk.end < new.start or lk.start > new.end:
            out.append(lk)
            continue
        if lk.start < new.start:
            out.append(Lock(lk.owner, lk.type, lk.start, new.start - 1, lk.pid))
        if lk.end > new.end:
            out.append(Lock(lk.owner, lk.type, new.end + 1, lk.end, lk.pid))
    if kind != F_UNLCK:
        merged = new
        keep = []
        for lk in out:
            if (lk.owner is new.owner and lk.type == new.type
                    and lk.start <= merged.end + 1 and merged.start <= lk.end + 1):
                merged = Lock(new.owner, new.type, min(lk.start, merged.start),
                              max(lk.end, merged.end), new.pid)
            else:
                keep.append(lk)
        keep.append(merged)
        out = keep
    out.sort(key=lambda lk: lk.start)
    if out:
        _locks[key] = out
    else:
        _locks.pop(key, None)
    WAITQ.wake_all()


def set_lock(key, new: Lock, wait: bool, task=None) -> None:
    """F_SETLK(W) / F_OFD_SETLK(W): EAGAIN on a conflict without ``wait``;
    with it, sleep until none (EDEADLK for a cycle, ERESTARTSYS when a
    signal interrupts)."""
    kind = new.type
    if kind != F_UNLCK and _conflict(key, new) is not None:
        if not wait:
            raise SyscallError(errno.EAGAIN)
        posix = new.pid != -1
        if posix and _deadlock(key, new):
            raise SyscallError(errno.EDEADLK)
        if posix:
            _waiting[new.owner] = (key, new)
        try:
            WAITQ.wait(task, lambda: _conflict(key, new) is None)
        except sched.Interrupted:
            raise SyscallError(ERESTARTSYS) from None
        finally:
            if posix:
                _waiting.pop(new.owner, None)
    _apply(key, new, kind)


def close_posix(owner, key) -> None:
    """``owner`` (an fd table) closed an fd of the file ``key``: its POSIX
    locks on the file go (locks_remove_posix)."""
    locks = _locks.get(key)
    if not locks:
        return
    rest = [lk for lk in locks if lk.owner is not owner]
    if len(rest) != len(locks):
        if rest:
            _locks[key] = rest
        else:
            del _locks[key]
        WAITQ.wake_all()


def release_ofd(file, key) -> None:
    """The last close of ``file``: its OFD locks go."""
    close_posix(file, key)


def any_locks() -> bool:
    return bool(_locks)


def owned(key, owner) -> list[tuple[int, int, int]]:
    """(type, start, end) of ``owner``'s locks on ``key`` (tests, fdinfo)."""
    return [(lk.type, lk.start, lk.end) for lk in _locks.get(key, ()) if lk.owner is owner]
