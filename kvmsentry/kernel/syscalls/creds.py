"""Credentials and capabilities: setuid(2), setgid(2), setreuid(2),
setregid(2), setresuid(2), setresgid(2) (kernel/sys.c), capget(2) and
capset(2) (kernel/capability.c).

Importing this module registers the handlers. Credentials are the
process's (``task.Credentials``: real, effective and saved ids, the
effective/permitted/inheritable capability sets), as glibc makes them by
changing every thread at once. Every change goes through
``task.commit_creds``; the kernel refreshes the exit-free getuid family
after these calls (Kernel.refresh_fast_ids). An id of -1 ((u32)-1)
leaves that id alone where the call allows it and is EINVAL where it
does not (setuid, setgid).
"""

from __future__ import annotations

import errno
import struct

from kvmsentry.kernel.syscalls.table import SyscallError, syscall
from kvmsentry.kernel.task import CAP_FULL, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, commit_creds

U32 = struct.Struct("<I")


# (uid_t)-1 / (gid_t)-1: "leave unchanged" for setre*id/setres*id, invalid for set*id.
ID_UNCHANGED = 0xFFFFFFFF


def _id(value: int) -> int:
    """A uid_t/gid_t argument: the low 32 bits of the register."""
    return value & 0xFFFFFFFF


def _capable(creds, gid: bool) -> bool:
    """CAP_SETGID (``gid``) or CAP_SETUID in the effective set."""
    return creds.capable(CAP_SETGID if gid else CAP_SETUID)


def _emulate_setxuid(old, new) -> None:
    """Capabilities follow a change of uids (security/commoncap.c
    cap_emulate_setxuid, without PR_SET_KEEPCAPS): when no uid is 0 any
    more, the permitted and effective sets are cleared; when the effective
    uid leaves 0 the effective set is, and when it returns to 0 it
    becomes the permitted set again. ``new`` is changed in place."""
    if 0 in (old.uid, old.euid, old.suid) and 0 not in (new.uid, new.euid, new.suid):
        new.cap_permitted = 0
        new.cap_effective = 0
    if old.euid == 0 and new.euid != 0:
        new.cap_effective = 0
    if old.euid != 0 and new.euid == 0:
        new.cap_effective = new.cap_permitted


def _set_ids(task, real: int, effective: int, saved: int, *, gid: bool) -> None:
    """setres[ug]id's core: each of ``real``/``effective``/``saved`` is an id
    or ID_UNCHANGED. Without CAP_SETUID (CAP_SETGID) each new id must be
    one of the current real, effective or saved ids, else EPERM
    (kernel/sys.c __sys_setresuid)."""
    old = task.process.creds
    current = (old.gid, old.egid, old.sgid) if gid else (old.uid, old.euid, old.suid)
    if not _capable(old, gid):
        for value in (real, effective, saved):
            if value != ID_UNCHANGED and value not in current:
                raise SyscallError(errno.EPERM)
    new_ids = tuple(c if v == ID_UNCHANGED else v for v, c in zip((real, effective, saved), current))
    _commit_ids(task, old, new_ids, gid)


def _commit_ids(task, old, ids: tuple[int, int, int], gid: bool) -> None:
    """New credentials with the (real, effective, saved) ``ids``."""
    names = ("gid", "egid", "sgid") if gid else ("uid", "euid", "suid")
    new = old.replace(**dict(zip(names, ids)))
    if not gid:
        _emulate_setxuid(old, new)
    commit_creds(task, new)


def _setid(task, value: int, *, gid: bool) -> int:
    """setuid(2)/setgid(2) (kernel/sys.c __sys_setuid): with the capability,
    real, effective and saved ids all become ``value``; without, only the
    effective one, and only to the real or saved id (else EPERM). EINVAL
    for (uid_t)-1."""
    value = _id(value)
    if value == ID_UNCHANGED:
        raise SyscallError(errno.EINVAL)
    old = task.process.creds
    if _capable(old, gid):
        _set_ids(task, value, value, value, gid=gid)
        return 0
    real, saved = (old.gid, old.sgid) if gid else (old.uid, old.suid)
    if value not in (real, saved):
        raise SyscallError(errno.EPERM)
    _set_ids(task, ID_UNCHANGED, value, ID_UNCHANGED, gid=gid)
    return 0


def _setreid(task, real: int, effective: int, *, gid: bool) -> int:
    """setreuid(2)/setregid(2) (kernel/sys.c __sys_setreuid): -1 leaves an id.
    Without the capability the real id may become the real or effective
    one, the effective id the real, effective or saved one (else EPERM).
    The saved id becomes the new effective id when the real id is set or
    the effective id is set to something other than the old real id."""
    real, effective = _id(real), _id(effective)
    old = task.process.creds
    r, e, s = (old.gid, old.egid, old.sgid) if gid else (old.uid, old.euid, old.suid)
    if not _capable(old, gid):
        if real != ID_UNCHANGED and real not in (r, e):
            raise SyscallError(errno.EPERM)
        if effective != ID_UNCHANGED and effective not in (r, e, s):
            raise SyscallError(errno.EPERM)
    new_r = r if real == ID_UNCHANGED else real
    new_e = e if effective == ID_UNCHANGED else effective
    new_s = s
    if real != ID_UNCHANGED or (effective != ID_UNCHANGED and effective != r):
        new_s = new_e
    _commit_ids(task, old, (new_r, new_e, new_s), gid)
    return 0


@syscall("setuid")
def sys_setuid(task, uid):
    """Implements Linux syscall setuid(2) (``_setid``). EINVAL, EPERM.

    Credentials belong to the process: every thread changes at once, as
    glibc's setuid makes it (setxid broadcast), where the raw syscall of
    Linux changes only the calling thread.
    """
    return _setid(task, uid, gid=False)


@syscall("setgid")
def sys_setgid(task, gid):
    """Implements Linux syscall setgid(2) (``_setid``, with CAP_SETGID). EINVAL, EPERM."""
    return _setid(task, gid, gid=True)


@syscall("setreuid")
def sys_setreuid(task, ruid, euid):
    """Implements Linux syscall setreuid(2) (``_setreid``). EPERM."""
    return _setreid(task, ruid, euid, gid=False)


@syscall("setregid")
def sys_setregid(task, rgid, egid):
    """Implements Linux syscall setregid(2) (``_setreid``). EPERM."""
    return _setreid(task, rgid, egid, gid=True)


@syscall("setresuid")
def sys_setresuid(task, ruid, euid, suid):
    """Implements Linux syscall setresuid(2) (``_set_ids``): -1 leaves an id. EPERM."""
    _set_ids(task, _id(ruid), _id(euid), _id(suid), gid=False)
    return 0


@syscall("setresgid")
def sys_setresgid(task, rgid, egid, sgid):
    """Implements Linux syscall setresgid(2) (``_set_ids``): -1 leaves an id. EPERM."""
    _set_ids(task, _id(rgid), _id(egid), _id(sgid), gid=True)
    return 0


# struct __user_cap_header_struct {u32 version; int pid;} and up to two
# struct __user_cap_data_struct {u32 effective, permitted, inheritable;}
# (include/uapi/linux/capability.h).
_LINUX_CAPABILITY_VERSION_1 = 0x19980330
_LINUX_CAPABILITY_VERSION_2 = 0x20071026
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_HEADER = struct.Struct("<Ii")
CAP_DATA = struct.Struct("<III")


def _cap_header(task, header) -> tuple[int, int]:
    """(u32 words per set, pid) of a capget/capset header (kernel/capability.c
    cap_validate_magic): 1 for version 1, 2 for versions 2 and 3. An
    unknown version is answered by writing version 3 into the header and
    EINVAL."""
    version, pid = CAP_HEADER.unpack(task.mm.copy_in(header, CAP_HEADER.size))
    if version == _LINUX_CAPABILITY_VERSION_1:
        return 1, pid
    if version in (_LINUX_CAPABILITY_VERSION_2, _LINUX_CAPABILITY_VERSION_3):
        return 2, pid
    task.mm.copy_out(header, U32.pack(_LINUX_CAPABILITY_VERSION_3))
    raise SyscallError(errno.EINVAL)


@syscall("capget")
def sys_capget(task, header, dataptr):
    """Implements Linux syscall capget(2): the effective, permitted and
    inheritable sets of process ``pid`` (0: the caller) as 1 (version 1)
    or 2 (versions 2, 3) struct __user_cap_data_struct. With a null
    ``dataptr`` it only probes the version: 0, even for an unknown one
    (whose header then says version 3). EINVAL for an unknown version or
    a negative pid, ESRCH for no such process, EFAULT.
    Source: kernel/capability.c."""
    try:
        words, pid = _cap_header(task, header)
    except SyscallError:
        if not dataptr:
            return 0
        raise
    if not dataptr:
        return 0
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    process = task.process
    if pid and pid != process.pid:
        from kvmsentry.kernel.procfs import processes
        process = processes(task).get(pid)
        if process is None:
            raise SyscallError(errno.ESRCH)
    c = process.creds
    out = b"".join(CAP_DATA.pack(c.cap_effective >> 32 * i & 0xFFFFFFFF,
                                 c.cap_permitted >> 32 * i & 0xFFFFFFFF,
                                 c.cap_inheritable >> 32 * i & 0xFFFFFFFF) for i in range(words))
    task.mm.copy_out(dataptr, out)
    return 0


@syscall("capset")
def sys_capset(task, header, data):
    """Implements Linux syscall capset(2) for the calling process.

    The new permitted set must be within the old one, the effective set
    within the new permitted one, the inheritable set within the old
    inheritable plus permitted sets (unless CAP_SETPCAP is effective):
    else EPERM. Bits past CAP_LAST_CAP are dropped. EPERM for another
    process's pid, EINVAL for an unknown version, EFAULT.
    Source: kernel/capability.c, security/commoncap.c cap_capset.
    """
    words, pid = _cap_header(task, header)
    if pid and pid != task.process.pid:
        raise SyscallError(errno.EPERM)
    raw = task.mm.copy_in(data, CAP_DATA.size * words)
    effective = permitted = inheritable = 0
    for i in range(words):
        e, p, h = CAP_DATA.unpack_from(raw, CAP_DATA.size * i)
        effective |= e << 32 * i
        permitted |= p << 32 * i
        inheritable |= h << 32 * i
    effective &= CAP_FULL
    permitted &= CAP_FULL
    inheritable &= CAP_FULL
    old = task.process.creds
    if not old.capable(CAP_SETPCAP) and inheritable & ~(old.cap_inheritable | old.cap_permitted):
        raise SyscallError(errno.EPERM)
    if permitted & ~old.cap_permitted or effective & ~permitted:
        raise SyscallError(errno.EPERM)
    commit_creds(task, old.replace(cap_effective=effective, cap_permitted=permitted,
                                   cap_inheritable=inheritable))
    return 0


NGROUPS_MAX = 65536


@syscall("setgroups")
def sys_setgroups(task, gidsetsize, grouplist):
    """Implements Linux syscall setgroups(2): the supplementary groups
    become the ``gidsetsize`` u32s at ``grouplist``, sorted, for every
    thread of the process.

    EPERM without CAP_SETGID, then EINVAL for a size above NGROUPS_MAX
    (65536, or negative), EFAULT (kernel/groups.c).
    """
    old = task.process.creds
    if not old.capable(CAP_SETGID):
        raise SyscallError(errno.EPERM)
    size = gidsetsize & 0xFFFFFFFF
    if size > NGROUPS_MAX:
        raise SyscallError(errno.EINVAL)
    groups = struct.unpack(f"<{size}I", task.mm.copy_in(grouplist, 4 * size)) if size else ()
    commit_creds(task, old.replace(groups=tuple(sorted(groups))))
    return 0
