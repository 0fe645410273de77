"""Extended attributes: the {,l,f}{set,get,list,remove}xattr(2) calls.

Importing this module registers the handlers; the attributes and their
rules are kvmsentry.kernel.vfs.xattr's (in memory on tmpfs and overlay
inodes, a host file's read on the host). The path and fd come first,
then the name's checks, as fs/xattr.c: EFAULT for a bad pointer, ERANGE
for an empty name or one over 255 bytes, E2BIG for a value over 64 KiB.
"""

from __future__ import annotations

import errno

from kvmsentry.kernel import files as F
from kvmsentry.kernel.fd import O_PATH, File
from kvmsentry.kernel.files import AT_FDCWD, read_path, to_int
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall
from kvmsentry.kernel.vfs import xattr as _xattr
from kvmsentry.kernel.vfs.inode import RegularInode

def _xattr_target(task, node, write: bool):
    """(object, host path or None, st_mode) whose xattrs a call on ``node`` uses.

    A host file on the overlay is read on the host, and copied up to be
    changed; EROFS on a read-only mount. The object is None for a file
    without xattrs (a rw bind mount, the sentry's own files).
    """
    if node.kind == F.FDLINK:
        return _xattr_file_target(task, node.file, write)
    if node.kind not in (F.HOST, F.MEM) or node.mount is None or getattr(
            node.mount.fs, "passthrough", False):
        return None, None, F.node_stat(node).st_mode
    if write and node.mount.readonly:
        raise SyscallError(errno.EROFS)
    mode = F.node_stat(node).st_mode
    if node.kind == F.HOST:
        if write:
            return F.writable_inode(node, task=task), None, mode
        return node.inode, node.host_path, mode
    return node.inode, None, mode


def _xattr_file_target(task, file: File, write: bool):
    if file.flags & O_PATH:
        raise SyscallError(errno.EBADF)
    inode = getattr(file, "inode", None)
    if isinstance(inode, RegularInode) or getattr(inode, "entries", None) is not None:
        return inode, None, inode.mode
    if file.host_path() is not None and file.guest_path:
        return _xattr_target(task, F.lookup(task, AT_FDCWD, file.guest_path, follow=False),
                             write)
    return None, None, file.stat().st_mode


def _xattr_at(task, path_gva: int, fd: int | None, follow: bool, write: bool):
    if fd is not None:
        return _xattr_file_target(task, task.fds.get(to_int(fd)), write)
    node = F.lookup(task, AT_FDCWD, read_path(task, path_gva), follow=follow)
    return _xattr_target(task, node, write)


def _xattr_name(task, name_gva: int) -> bytes:
    try:
        name = task.mm.read_cstring(name_gva, _xattr.XATTR_NAME_MAX + 1)
    except SyscallError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise SyscallError(errno.ERANGE) from None
        raise
    _xattr.check_name(name)
    return name


def _setxattr(task, path, fd, name, value, size, flags, follow=True):
    flags = to_int(flags)
    if flags & ~(_xattr.XATTR_CREATE | _xattr.XATTR_REPLACE):
        raise SyscallError(errno.EINVAL)
    key = _xattr_name(task, name)
    if size > _xattr.XATTR_SIZE_MAX:
        raise SyscallError(errno.E2BIG)
    data = task.mm.copy_in(value, size) if size else b""
    obj, _, mode = _xattr_at(task, path, fd, follow, True)
    if obj is None:
        _xattr.unsupported(task.process.creds, mode, key, True)
    _xattr.set_(task.process.creds, obj, key, data, flags)
    return 0


def _getxattr(task, path, fd, name, value, size, follow=True):
    key = _xattr_name(task, name)
    obj, host, mode = _xattr_at(task, path, fd, follow, False)
    if obj is None:
        _xattr.unsupported(task.process.creds, mode, key, False)
    data = _xattr.get(task.process.creds, obj, key, host)
    size = min(size, _xattr.XATTR_SIZE_MAX)
    if size:
        if len(data) > size:
            raise SyscallError(errno.ERANGE)
        task.mm.copy_out(value, data)
    return len(data)


def _listxattr(task, path, fd, out, size, follow=True):
    obj, host, _ = _xattr_at(task, path, fd, follow, False)
    if obj is None:
        return 0  # no xattr handlers: an empty list
    data = b"".join(n + b"\0" for n in _xattr.names(task.process.creds, obj, host))
    size = min(size, _xattr.XATTR_LIST_MAX)
    if size:
        if len(data) > size:
            raise SyscallError(errno.E2BIG if size >= _xattr.XATTR_LIST_MAX else errno.ERANGE)
        task.mm.copy_out(out, data)
    return len(data)


def _removexattr(task, path, fd, name, follow=True):
    key = _xattr_name(task, name)
    obj, _, mode = _xattr_at(task, path, fd, follow, True)
    if obj is None:
        _xattr.unsupported(task.process.creds, mode, key, True)
    _xattr.remove(task.process.creds, obj, key)
    return 0


_XATTR_NOTE = "in memory on tmpfs/overlay files (user., trusted., security.); host files read"


@syscall("setxattr", PARTIAL, _XATTR_NOTE)
def sys_setxattr(task, path, name, value, size, flags):
    """Implements Linux syscall setxattr(2) (kvmsentry.kernel.vfs.xattr).

    ``flags`` XATTR_CREATE (EEXIST) or XATTR_REPLACE (ENODATA), others
    EINVAL; ERANGE for a bad name length, E2BIG over 64 KiB, EOPNOTSUPP
    for an unknown namespace, EPERM/EACCES by namespace and permission.
    """
    return _setxattr(task, path, None, name, value, size, flags)


@syscall("lsetxattr", PARTIAL, _XATTR_NOTE)
def sys_lsetxattr(task, path, name, value, size, flags):
    """Implements Linux syscall lsetxattr(2): setxattr of a symlink itself."""
    return _setxattr(task, path, None, name, value, size, flags, follow=False)


@syscall("fsetxattr", PARTIAL, _XATTR_NOTE)
def sys_fsetxattr(task, fd, name, value, size, flags):
    """Implements Linux syscall fsetxattr(2): setxattr of an open file (EBADF for O_PATH)."""
    return _setxattr(task, 0, fd, name, value, size, flags)


@syscall("getxattr", PARTIAL, _XATTR_NOTE)
def sys_getxattr(task, path, name, value, size):
    """Implements Linux syscall getxattr(2).

    Returns the value's size in bytes (only that when ``size`` is 0);
    ERANGE when it does not fit in ``size``, ENODATA when absent.
    """
    return _getxattr(task, path, None, name, value, size)


@syscall("lgetxattr", PARTIAL, _XATTR_NOTE)
def sys_lgetxattr(task, path, name, value, size):
    """Implements Linux syscall lgetxattr(2): getxattr of a symlink itself."""
    return _getxattr(task, path, None, name, value, size, follow=False)


@syscall("fgetxattr", PARTIAL, _XATTR_NOTE)
def sys_fgetxattr(task, fd, name, value, size):
    """Implements Linux syscall fgetxattr(2): getxattr of an open file."""
    return _getxattr(task, 0, fd, name, value, size)


@syscall("listxattr", PARTIAL, _XATTR_NOTE)
def sys_listxattr(task, path, list_, size):
    """Implements Linux syscall listxattr(2).

    The names, each NUL-terminated, sorted; returns their total size
    (only that when ``size`` is 0); ERANGE when they do not fit.
    """
    return _listxattr(task, path, None, list_, size)


@syscall("llistxattr", PARTIAL, _XATTR_NOTE)
def sys_llistxattr(task, path, list_, size):
    """Implements Linux syscall llistxattr(2): listxattr of a symlink itself."""
    return _listxattr(task, path, None, list_, size, follow=False)


@syscall("flistxattr", PARTIAL, _XATTR_NOTE)
def sys_flistxattr(task, fd, list_, size):
    """Implements Linux syscall flistxattr(2): listxattr of an open file."""
    return _listxattr(task, 0, fd, list_, size)


@syscall("removexattr", PARTIAL, _XATTR_NOTE)
def sys_removexattr(task, path, name):
    """Implements Linux syscall removexattr(2). ENODATA when absent."""
    return _removexattr(task, path, None, name)


@syscall("lremovexattr", PARTIAL, _XATTR_NOTE)
def sys_lremovexattr(task, path, name):
    """Implements Linux syscall lremovexattr(2): removexattr of a symlink itself."""
    return _removexattr(task, path, None, name, follow=False)


@syscall("fremovexattr", PARTIAL, _XATTR_NOTE)
def sys_fremovexattr(task, fd, name):
    """Implements Linux syscall fremovexattr(2): removexattr of an open file."""
    return _removexattr(task, 0, fd, name)
