"""Changing credentials: setuid(2), setgid(2), setreuid(2), setregid(2),
setresuid(2), setresgid(2) (kernel/sys.c).

Importing this module registers the handlers. Credentials are the
process's (``task.Credentials``: real, effective and saved ids; the
filesystem ids follow the effective ones), as glibc makes them by
changing every thread at once. Root (euid 0) holds CAP_SETUID and
CAP_SETGID; anyone else may only move between the ids it already has,
EPERM otherwise. An id of -1 ((u32)-1) leaves that id alone where the
call allows it and is EINVAL where it does not (setuid, setgid). The
kernel refreshes the exit-free getuid family after these calls
(Kernel.refresh_fast_ids).
"""

from __future__ import annotations

import errno

from kvmsentry.kernel.syscalls.table import SyscallError, syscall

NO_ID = 0xFFFFFFFF  # (uid_t)-1


def _id(value: int) -> int | None:
    """A uid_t/gid_t register: None for -1 ("unchanged")."""
    value &= 0xFFFFFFFF
    return None if value == NO_ID else value


def _set_one(task, value: int, group: bool) -> int:
    """setuid/setgid: root sets all three ids; others only the effective
    one, to the real or saved id."""
    new = _id(value)
    if new is None:
        raise SyscallError(errno.EINVAL)
    c = task.process.creds
    real, eff, saved = ("gid", "egid", "sgid") if group else ("uid", "euid", "suid")
    if c.euid == 0:  # CAP_SETUID / CAP_SETGID
        setattr(c, real, new)
        setattr(c, saved, new)
    elif new not in (getattr(c, real), getattr(c, saved)):
        raise SyscallError(errno.EPERM)
    setattr(c, eff, new)
    return 0


def _set_re(task, rvalue: int, evalue: int, group: bool) -> int:
    """setreuid/setregid: the real id may become the real or effective one,
    the effective id any of the three; the saved id follows the new
    effective one when the real id was set or the effective id moved off
    the real one."""
    c = task.process.creds
    real, eff, saved = ("gid", "egid", "sgid") if group else ("uid", "euid", "suid")
    old = (getattr(c, real), getattr(c, eff), getattr(c, saved))
    r, e = _id(rvalue), _id(evalue)
    if c.euid != 0:
        if r is not None and r not in old[:2]:
            raise SyscallError(errno.EPERM)
        if e is not None and e not in old:
            raise SyscallError(errno.EPERM)
    new_real = old[0] if r is None else r
    new_eff = old[1] if e is None else e
    if r is not None or (e is not None and e != old[0]):
        setattr(c, saved, new_eff)
    setattr(c, real, new_real)
    setattr(c, eff, new_eff)
    return 0


def _set_res(task, rvalue: int, evalue: int, svalue: int, group: bool) -> int:
    """setresuid/setresgid: each id that is not -1 becomes its new value,
    which for a non-root caller must be one of its current three."""
    c = task.process.creds
    names = ("gid", "egid", "sgid") if group else ("uid", "euid", "suid")
    old = tuple(getattr(c, n) for n in names)
    new = [_id(v) for v in (rvalue, evalue, svalue)]
    if c.euid != 0 and any(v is not None and v not in old for v in new):
        raise SyscallError(errno.EPERM)
    for name, value in zip(names, new):
        if value is not None:
            setattr(c, name, value)
    return 0


@syscall("setuid")
def sys_setuid(task, uid):
    """Implements Linux syscall setuid(2). EINVAL for -1, EPERM."""
    return _set_one(task, uid, False)


@syscall("setgid")
def sys_setgid(task, gid):
    """Implements Linux syscall setgid(2). EINVAL for -1, EPERM."""
    return _set_one(task, gid, True)


@syscall("setreuid")
def sys_setreuid(task, ruid, euid):
    """Implements Linux syscall setreuid(2). EPERM."""
    return _set_re(task, ruid, euid, False)


@syscall("setregid")
def sys_setregid(task, rgid, egid):
    """Implements Linux syscall setregid(2). EPERM."""
    return _set_re(task, rgid, egid, True)


@syscall("setresuid")
def sys_setresuid(task, ruid, euid, suid):
    """Implements Linux syscall setresuid(2). EPERM."""
    return _set_res(task, ruid, euid, suid, False)


@syscall("setresgid")
def sys_setresgid(task, rgid, egid, sgid):
    """Implements Linux syscall setresgid(2). EPERM."""
    return _set_res(task, rgid, egid, sgid, True)
