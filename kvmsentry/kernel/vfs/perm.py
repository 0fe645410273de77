"""Permission checks against the guest's credentials (fs/namei.c, fs/attr.c).

The sandbox runs as uid 0 by default (as runsc), with every capability,
and passes every check but one: executing a file without any execute
bit. With ``boot --user UID:GID`` (or after setuid, capset) the
owner/group/other bits decide, as Linux's generic_permission: the
owner's bits if the fsuid (the effective uid here) owns the inode, else
the group's if the fsgid (or a supplementary group; the sandbox has
none) is the inode's group, else the others'. Then the capabilities in
the effective set: CAP_DAC_OVERRIDE (read and write anything, execute
anything with an x bit), CAP_DAC_READ_SEARCH (read anything, search any
directory), CAP_FOWNER (chmod, utimes of any file, unlink in a sticky
directory), CAP_FSETID (keep S_ISGID on chmod), CAP_CHOWN (any owner),
CAP_SYS_ADMIN (trusted. xattrs). ``privileged`` says when all of them
are there, so callers skip the checks.

Host files are checked with their host mode and owners (they appear as
their host owners, so a uid 1000 guest cannot write a root-owned 0644
host file, even though the overlay would only change a copy).

The functions take ``creds`` (task.Credentials) and a file system object
(an Inode, a HostInode, or anything with ``mode``/``uid``/``gid`` or an
``st``), and raise SyscallError.
"""

from __future__ import annotations

import errno
import stat as _stat

from kvmsentry.kernel.syscalls.table import SyscallError

MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4  # include/linux/fs.h (and access(2)'s X/W/R_OK)

# include/uapi/linux/capability.h
CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_SYS_ADMIN = 21
_FILE_CAPS = sum(1 << c for c in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
                                  CAP_FOWNER, CAP_FSETID, CAP_SYS_ADMIN))


def capable(creds, cap: int) -> bool:
    """``cap`` in the effective set (credentials without sets: uid 0's)."""
    check = getattr(creds, "capable", None)
    return check(cap) if check is not None else creds.euid == 0


def privileged(creds) -> bool:
    """Every capability the checks here look at: they would all pass
    (but executing a file without x bits, which mode_permission keeps)."""
    effective = getattr(creds, "cap_effective", None)
    if effective is None:
        return creds.euid == 0
    return effective & _FILE_CAPS == _FILE_CAPS


def ids_of(obj) -> tuple[int, int, int]:
    """(st_mode, st_uid, st_gid) of an Inode, HostInode or HostAttrs."""
    st = getattr(obj, "st", None)
    if st is not None:
        return st.st_mode, st.st_uid, st.st_gid
    return obj.mode, obj.uid, obj.gid


def in_group(creds, gid: int) -> bool:
    """in_group_p (kernel/groups.c): the fsgid (the egid here) or a supplementary group."""
    return creds.egid == gid or gid in creds.groups


def mode_permission(creds, mode: int, uid: int, gid: int, mask: int) -> bool:
    """generic_permission of ``mask`` (MAY_* bits) on an inode's mode and
    owners; True when granted."""
    mask &= 7
    if creds.euid == uid:
        bits = mode >> 6
    elif in_group(creds, gid):
        bits = mode >> 3
    else:
        bits = mode
    if not (mask & ~bits & 7):
        return True
    if _stat.S_ISDIR(mode):
        if not mask & MAY_WRITE and capable(creds, CAP_DAC_READ_SEARCH):
            return True
        return capable(creds, CAP_DAC_OVERRIDE)
    if mask == MAY_READ and capable(creds, CAP_DAC_READ_SEARCH):
        return True
    # CAP_DAC_OVERRIDE executes only what has an x bit somewhere.
    return (not mask & MAY_EXEC or bool(mode & 0o111)) and capable(creds, CAP_DAC_OVERRIDE)


def permission(creds, obj, mask: int) -> None:
    """inode_permission: EACCES unless ``creds`` may ``mask`` ``obj``."""
    mode, uid, gid = ids_of(obj)
    if not mode_permission(creds, mode, uid, gid, mask):
        raise SyscallError(errno.EACCES)


def is_owner(creds, obj) -> bool:
    """inode_owner_or_capable: the fsuid owns it, or CAP_FOWNER."""
    return creds.euid == ids_of(obj)[1] or capable(creds, CAP_FOWNER)


def may_create(creds, dir_obj) -> None:
    """may_create: write and search on the directory; EACCES."""
    permission(creds, dir_obj, MAY_WRITE | MAY_EXEC)


def may_delete(creds, dir_obj, victim) -> None:
    """may_delete: write and search on the directory (EACCES), then the
    sticky bit: only the file's or the directory's owner (or CAP_FOWNER)
    may remove or rename it (EPERM; fs/namei.c check_sticky)."""
    permission(creds, dir_obj, MAY_WRITE | MAY_EXEC)
    dmode, duid, _ = ids_of(dir_obj)
    if (dmode & _stat.S_ISVTX and creds.euid not in (duid, ids_of(victim)[1])
            and not capable(creds, CAP_FOWNER)):
        raise SyscallError(errno.EPERM)


def may_chmod(creds, obj, mode: int) -> int:
    """setattr_prepare for ATTR_MODE: EPERM unless the owner (or root);
    returns ``mode`` without S_ISGID when the caller is not in the file's
    group (and not root), as Linux drops it silently."""
    if not is_owner(creds, obj):
        raise SyscallError(errno.EPERM)
    if not in_group(creds, ids_of(obj)[2]) and not capable(creds, CAP_FSETID):
        mode &= ~_stat.S_ISGID
    return mode


def may_chown(creds, obj, uid: int, gid: int) -> None:
    """chown_ok/chgrp_ok: CAP_CHOWN may give any owner; the owner may keep
    the uid and set a group it is in; EPERM otherwise (-1 leaves an id)."""
    if capable(creds, CAP_CHOWN):
        return
    _, ouid, ogid = ids_of(obj)
    if uid != -1 and not (creds.euid == ouid and uid == ouid):
        raise SyscallError(errno.EPERM)
    if gid != -1 and not (creds.euid == ouid and (in_group(creds, gid) or gid == ogid)):
        raise SyscallError(errno.EPERM)


def may_set_times(creds, obj, explicit: bool) -> None:
    """utimensat(2)'s rule: explicit times need the owner (or CAP_FOWNER),
    EPERM; setting both to now also lets a writer do it, else EACCES."""
    if is_owner(creds, obj):
        return
    if explicit:
        raise SyscallError(errno.EPERM)
    permission(creds, obj, MAY_WRITE)


def may_link(creds, obj) -> None:
    """fs.protected_hardlinks=1 (the default, fs/namei.c may_linkat): a
    file that is not the caller's may be linked only if it is a regular
    file, not set-user-ID, not executable set-group-ID, and readable and
    writable by the caller; EPERM otherwise."""
    if is_owner(creds, obj):
        return
    mode, uid, gid = ids_of(obj)
    if (not _stat.S_ISREG(mode) or mode & _stat.S_ISUID
            or (mode & (_stat.S_ISGID | _stat.S_IXGRP)) == (_stat.S_ISGID | _stat.S_IXGRP)
            or not mode_permission(creds, mode, uid, gid, MAY_READ | MAY_WRITE)):
        raise SyscallError(errno.EPERM)
