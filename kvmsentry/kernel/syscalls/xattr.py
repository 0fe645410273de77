"""Extended attributes, read side: getxattr(2) and listxattr(2) families.

Importing this module registers the handlers. The sandbox keeps no
extended attributes yet: every file has none, as on a file system
without xattrs set (the usual case for what ls(1) and cp(1) probe:
"security.selinux", "system.posix_acl_access"). getxattr gives ENODATA
after the path (or fd) and the name are checked as fs/xattr.c does;
listxattr gives an empty list. The set and remove calls are not here.
"""

from __future__ import annotations

import errno

from kvmsentry.kernel.files import AT_FDCWD, lookup, read_path, to_int
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall

XATTR_NAME_MAX = 255  # include/uapi/linux/limits.h


def _get(task, name_gva: int) -> int:
    """fs/xattr.c import_xattr_name, then no such attribute: EFAULT (a bad
    pointer), ERANGE (an empty name or one over 255 bytes), else ENODATA."""
    try:
        name = task.mm.read_cstring(name_gva, XATTR_NAME_MAX + 1)
    except SyscallError:  # ENAMETOOLONG: no NUL within the limit
        raise SyscallError(errno.ERANGE) from None
    if not name or len(name) > XATTR_NAME_MAX:
        raise SyscallError(errno.ERANGE)
    raise SyscallError(errno.ENODATA)


@syscall("getxattr", PARTIAL, "no file has extended attributes: ENODATA")
def sys_getxattr(task, pathname: int, name: int, value: int, size: int) -> int:
    """Implements Linux syscall getxattr(2): ENODATA for any name of an existing file.

    ENOENT/ENOTDIR/ELOOP/EFAULT from the path, ERANGE for an empty or
    over-long name.
    """
    lookup(task, AT_FDCWD, read_path(task, pathname), follow=True)
    return _get(task, name)


@syscall("lgetxattr", PARTIAL, "no file has extended attributes: ENODATA")
def sys_lgetxattr(task, pathname: int, name: int, value: int, size: int) -> int:
    """Implements Linux syscall lgetxattr(2) (a symlink's own): as getxattr."""
    lookup(task, AT_FDCWD, read_path(task, pathname), follow=False)
    return _get(task, name)


@syscall("fgetxattr", PARTIAL, "no file has extended attributes: ENODATA")
def sys_fgetxattr(task, fd: int, name: int, value: int, size: int) -> int:
    """Implements Linux syscall fgetxattr(2): EBADF, then as getxattr."""
    task.fds.get(to_int(fd))
    return _get(task, name)


@syscall("listxattr", PARTIAL, "no file has extended attributes: an empty list")
def sys_listxattr(task, pathname: int, list_: int, size: int) -> int:
    """Implements Linux syscall listxattr(2): 0 bytes of names for an existing file."""
    lookup(task, AT_FDCWD, read_path(task, pathname), follow=True)
    return 0


@syscall("llistxattr", PARTIAL, "no file has extended attributes: an empty list")
def sys_llistxattr(task, pathname: int, list_: int, size: int) -> int:
    """Implements Linux syscall llistxattr(2): as listxattr, on a symlink itself."""
    lookup(task, AT_FDCWD, read_path(task, pathname), follow=False)
    return 0


@syscall("flistxattr", PARTIAL, "no file has extended attributes: an empty list")
def sys_flistxattr(task, fd: int, list_: int, size: int) -> int:
    """Implements Linux syscall flistxattr(2): EBADF, else an empty list."""
    task.fds.get(to_int(fd))
    return 0
