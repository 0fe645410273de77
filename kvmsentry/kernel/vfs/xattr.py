"""Extended attributes (xattr(7)) of in-memory inodes, as tmpfs keeps them.

Linux's fs/xattr.c (the syscalls' checks) and mm/shmem.c with
fs/xattr.c's simple_xattr (the storage), in Python:

* In-memory inodes (tmpfs, and the overlay's copies) keep their xattrs
  in memory, in a dict per inode (``_XATTRS``, keyed weakly so a freed
  inode frees them). listxattr gives the names sorted, as simple_xattr's
  red-black tree does since Linux 6.6.
* Namespaces as tmpfs has them: ``user.`` (regular files and
  directories only, read/write permission on the file, a sticky
  directory only for its owner), ``trusted.`` (root only: set EPERM,
  get ENODATA, hidden from listxattr otherwise) and ``security.``;
  POSIX ACL names read as absent (ENODATA) but cannot be set
  (EOPNOTSUPP); another prefix is EOPNOTSUPP, a bare prefix ("user.")
  EINVAL.
* Host files beneath the overlay: their host xattrs are read (getxattr,
  listxattr, never written); the first change copies the file up with
  its host ``user.`` xattrs (``inherit``), then it is in memory like any
  other. A rw bind mount and the sentry's own files (/proc, /dev, pipes)
  answer EOPNOTSUPP (listxattr: an empty list).

Sizes are bytes: a name of 1-255 bytes (ERANGE otherwise), a value up
to 64 KiB (E2BIG), a list up to 64 KiB (fs/xattr.c limits).
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import weakref

from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs import perm as _perm

XATTR_CREATE = 0x1  # include/uapi/linux/xattr.h
XATTR_REPLACE = 0x2
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 1 << 16
XATTR_LIST_MAX = 1 << 16

PREFIXES = (b"user.", b"trusted.", b"security.")
# POSIX ACLs (system. namespace): tmpfs and ext4 know them; none is kept
# here, so reading one is ENODATA and setting one EOPNOTSUPP.
ACL_NAMES = (b"system.posix_acl_access", b"system.posix_acl_default")

_XATTRS: "weakref.WeakKeyDictionary[object, dict[bytes, bytes]]" = weakref.WeakKeyDictionary()


def check_name(name: bytes) -> None:
    """The name's length, checked as it is copied in (before the lookup):
    ERANGE for empty or over 255 bytes."""
    if not name or len(name) > XATTR_NAME_MAX:
        raise SyscallError(errno.ERANGE)


def _resolve(name: bytes) -> None:
    """xattr_resolve_name: EOPNOTSUPP for an unknown namespace, EINVAL for
    a namespace prefix alone."""
    if name in ACL_NAMES:
        return
    for prefix in PREFIXES:
        if name.startswith(prefix):
            if len(name) == len(prefix):
                raise SyscallError(errno.EINVAL)
            return
    raise SyscallError(errno.EOPNOTSUPP)


def _permission(creds, obj, name: bytes, write: bool) -> None:
    """xattr_permission: EPERM/ENODATA by namespace, then the file's own
    read or write permission (EACCES).

    ``security.`` and ``system.`` names take no file permission (fs/xattr.c
    leaves them to the LSM): anyone may read them; changing a
    ``security.`` one needs CAP_SYS_ADMIN (EPERM), as the capability LSM's
    cap_inode_setxattr/cap_inode_removexattr say (security/commoncap.c;
    security.capability's own CAP_SETFCAP and value checks are not
    modelled)."""
    mask = _perm.MAY_WRITE if write else _perm.MAY_READ
    if name.startswith((b"security.", b"system.")):
        if (write and name.startswith(b"security.")
                and not _perm.capable(creds, _perm.CAP_SYS_ADMIN)):
            raise SyscallError(errno.EPERM)
        return
    if name.startswith(b"trusted."):
        if not _perm.capable(creds, _perm.CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM if write else errno.ENODATA)
        return
    mode = _perm.ids_of(obj)[0]
    if name.startswith(b"user."):
        if not (_stat.S_ISREG(mode) or _stat.S_ISDIR(mode)):
            raise SyscallError(errno.EPERM if write else errno.ENODATA)
        if (write and _stat.S_ISDIR(mode) and mode & _stat.S_ISVTX
                and not _perm.is_owner(creds, obj)):
            raise SyscallError(errno.EPERM)
    _perm.permission(creds, obj, mask)


def unsupported(creds, mode: int, name: bytes, write: bool) -> None:
    """A file without xattrs (a pipe, /proc, a rw bind mount): the
    namespace's checks still come first (``user.`` on a pipe is EPERM to
    set, ENODATA to get), then EOPNOTSUPP."""
    if name.startswith(b"trusted.") and not _perm.capable(creds, _perm.CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM if write else errno.ENODATA)
    if name.startswith(b"user.") and not (_stat.S_ISREG(mode) or _stat.S_ISDIR(mode)):
        raise SyscallError(errno.EPERM if write else errno.ENODATA)
    raise SyscallError(errno.EOPNOTSUPP)


def _host_names(host_path: bytes) -> list[bytes]:
    try:
        return [os.fsencode(n) for n in os.listxattr(host_path, follow_symlinks=False)]
    except OSError:
        return []


def _host_get(host_path: bytes, name: bytes) -> bytes | None:
    """The host file's value, None when it has none; the host's errno
    (EOPNOTSUPP, E2BIG...) otherwise."""
    try:
        return os.getxattr(host_path, name, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise SyscallError(e.errno or errno.EIO) from None


def inherit(inode, host_path: bytes) -> None:
    """A copy-up keeps the host file's ``user.`` xattrs (read from the host)."""
    found = {}
    for name in _host_names(host_path):
        if name.startswith(b"user."):
            try:
                value = _host_get(host_path, name)
            except SyscallError:
                continue
            if value is not None:
                found[name] = value
    if found:
        _XATTRS[inode] = found


def _store(obj, create: bool) -> dict[bytes, bytes] | None:
    d = _XATTRS.get(obj)
    if d is None and create:
        d = _XATTRS[obj] = {}
    return d


def get(creds, obj, name: bytes, host_path: bytes | None = None) -> bytes:
    """getxattr: the value (ENODATA when absent). ``host_path`` reads a host file's."""
    _permission(creds, obj, name, False)
    if host_path is not None:
        value = _host_get(host_path, name)  # the host file system's own answer
    else:
        _resolve(name)
        value = (_store(obj, False) or {}).get(name)
    if value is None:
        raise SyscallError(errno.ENODATA)
    return value


def names(creds, obj, host_path: bytes | None = None) -> list[bytes]:
    """listxattr: the names the caller may see (``trusted.`` only for root), sorted."""
    if host_path is not None:
        found = _host_names(host_path)
    else:
        found = list(_store(obj, False) or ())
    if not _perm.capable(creds, _perm.CAP_SYS_ADMIN):
        found = [n for n in found if not n.startswith(b"trusted.")]
    return sorted(found, reverse=True)  # simple_xattr_list's walk of its rbtree


def set_(creds, obj, name: bytes, value: bytes, flags: int) -> None:
    """setxattr: EEXIST with XATTR_CREATE for a present name, ENODATA with
    XATTR_REPLACE for an absent one; an empty value is a value."""
    _permission(creds, obj, name, True)
    _resolve(name)
    if name in ACL_NAMES:
        raise SyscallError(errno.EOPNOTSUPP)
    d = _store(obj, True)
    if flags & XATTR_CREATE and name in d:
        raise SyscallError(errno.EEXIST)
    if flags & XATTR_REPLACE and name not in d:
        raise SyscallError(errno.ENODATA)
    d[name] = bytes(value)
    obj.changed()


def remove(creds, obj, name: bytes) -> None:
    """removexattr: ENODATA when absent."""
    _permission(creds, obj, name, True)
    _resolve(name)
    d = _store(obj, False)
    if not d or name not in d:
        raise SyscallError(errno.ENODATA)
    del d[name]
    obj.changed()
