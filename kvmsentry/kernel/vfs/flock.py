"""BSD locks (flock(2)) between open file descriptions, as fs/locks.c.

A lock belongs to an open file description (a ``File``): dup'd and
inherited fds share it, a second open(2) of the same file does not. The
file is identified by (st_dev, st_ino), so host files, in-memory files and
memfds all work. A lock is shared (LOCK_SH) or exclusive (LOCK_EX); an
exclusive lock conflicts with every other description's lock. A blocked
flock sleeps on ``WAITQ`` (woken by every unlock) and is interruptible
(ERESTARTSYS). Changing a held lock's kind first drops it (as Linux: the
conversion is not atomic). The last close of the description releases
its lock (``release``, called by FdTable).
"""

from __future__ import annotations

import errno

from kvmsentry.kernel import sched
from kvmsentry.kernel.signals import ERESTARTSYS
from kvmsentry.kernel.syscalls.table import SyscallError

LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8

# (st_dev, st_ino) -> {File: LOCK_SH or LOCK_EX}
_locks: dict[tuple[int, int], dict[object, int]] = {}
WAITQ = sched.WaitQueue()


def _conflicts(holders: dict, file, kind: int) -> bool:
    for other, other_kind in holders.items():
        if other is file:
            continue
        if kind == LOCK_EX or other_kind == LOCK_EX:
            return True
    return False


def _unlock(file) -> None:
    key = file.flock_key
    if key is None:
        return
    holders = _locks.get(key)
    if holders is not None and holders.pop(file, None) is not None:
        if not holders:
            del _locks[key]
        WAITQ.wake_all()
    file.flock_key = None


def flock(file, operation: int, task=None) -> None:
    """flock(2) on ``file``: EINVAL for a bad operation, EWOULDBLOCK with
    LOCK_NB on a conflict, ERESTARTSYS when a signal interrupts the wait."""
    nb = bool(operation & LOCK_NB)
    cmd = operation & ~LOCK_NB
    if cmd == LOCK_UN:
        _unlock(file)
        return
    if cmd not in (LOCK_SH, LOCK_EX):
        raise SyscallError(errno.EINVAL)
    st = file.stat()
    key = (st.st_dev, st.st_ino)
    if file.flock_key == key and _locks.get(key, {}).get(file) == cmd:
        return  # already held as asked
    _unlock(file)  # a conversion drops the old lock first
    holders = _locks.setdefault(key, {})
    if _conflicts(holders, file, cmd):
        if nb:
            if not holders:
                _locks.pop(key, None)
            raise SyscallError(errno.EWOULDBLOCK)
        try:
            WAITQ.wait(task, lambda: not _conflicts(_locks.setdefault(key, {}), file, cmd))
        except sched.Interrupted:
            if not _locks.get(key):
                _locks.pop(key, None)
            raise SyscallError(ERESTARTSYS) from None
        holders = _locks.setdefault(key, {})
    holders[file] = cmd
    file.flock_key = key


def release(file) -> None:
    """The last fd of ``file`` closed: drop its lock."""
    _unlock(file)


def held(file) -> int:
    """The kind of lock ``file`` holds (0 for none); for tests and fdinfo."""
    key = file.flock_key
    return 0 if key is None else _locks.get(key, {}).get(file, 0)
