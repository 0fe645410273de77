"""Permission checks against the guest's credentials (fs/namei.c, fs/attr.c).

The sandbox runs as uid 0 by default (as runsc), and root passes every
check but one: executing a file without any execute bit. With ``boot
--user UID:GID`` the owner/group/other bits decide, as Linux's
generic_permission: the owner's bits if the fsuid owns the inode, else
the group's if the fsgid (or a supplementary group; the sandbox has none)
is the inode's group, else the others'. Root's capabilities are Linux's
CAP_DAC_OVERRIDE (read and write anything, execute anything with an x
bit, search any directory), CAP_DAC_READ_SEARCH and CAP_FOWNER (chmod,
utimes of any file, unlink in a sticky directory).

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


def ids_of(obj) -> tuple[int, int, int]:
    """(st_mode, st_uid, st_gid) of an Inode, HostInode or HostAttrs."""
    st = getattr(obj, "st", None)
    if st is not None:
        return st.st_mode, st.st_uid, st.st_gid
    return obj.mode, obj.uid, obj.gid


def in_group(creds, gid: int) -> bool:
    """in_group_p: the fsgid (the sandbox has no supplementary groups)."""
    return creds.egid == gid


def mode_permission(creds, mode: int, uid: int, gid: int, mask: int) -> bool:
    """generic_permission of ``mask`` (MAY_* bits) on an inode's mode and
    owners; True when granted."""
    if creds.euid == 0:
        if mask & MAY_EXEC and not _stat.S_ISDIR(mode) and not mode & 0o111:
            return False  # CAP_DAC_OVERRIDE needs one x bit to execute
        return True
    if creds.euid == uid:
        bits = mode >> 6
    elif in_group(creds, gid):
        bits = mode >> 3
    else:
        bits = mode
    return not (mask & ~bits & 7)


def permission(creds, obj, mask: int) -> None:
    """inode_permission: EACCES unless ``creds`` may ``mask`` ``obj``."""
    mode, uid, gid = ids_of(obj)
    if not mode_permission(creds, mode, uid, gid, mask):
        raise SyscallError(errno.EACCES)


def is_owner(creds, obj) -> bool:
    """inode_owner_or_capable: the fsuid owns it, or CAP_FOWNER (root)."""
    return creds.euid == 0 or creds.euid == ids_of(obj)[1]


def may_create(creds, dir_obj) -> None:
    """may_create: write and search on the directory; EACCES."""
    permission(creds, dir_obj, MAY_WRITE | MAY_EXEC)


def may_delete(creds, dir_obj, victim) -> None:
    """may_delete: write and search on the directory (EACCES), then the
    sticky bit: only the file's or the directory's owner (or CAP_FOWNER)
    may remove or rename it (EPERM; fs/namei.c check_sticky)."""
    permission(creds, dir_obj, MAY_WRITE | MAY_EXEC)
    if creds.euid == 0:
        return
    dmode, duid, _ = ids_of(dir_obj)
    if dmode & _stat.S_ISVTX and creds.euid not in (duid, ids_of(victim)[1]):
        raise SyscallError(errno.EPERM)


def may_chmod(creds, obj, mode: int) -> int:
    """setattr_prepare for ATTR_MODE: EPERM unless the owner (or root);
    returns ``mode`` without S_ISGID when the caller is not in the file's
    group (and not root), as Linux drops it silently."""
    if not is_owner(creds, obj):
        raise SyscallError(errno.EPERM)
    if creds.euid != 0 and not in_group(creds, ids_of(obj)[2]):
        mode &= ~_stat.S_ISGID
    return mode


def may_chown(creds, obj, uid: int, gid: int) -> None:
    """chown_ok/chgrp_ok: root may give any owner; the owner may keep the
    uid and set a group it is in; EPERM otherwise (-1 leaves an id)."""
    if creds.euid == 0:
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
