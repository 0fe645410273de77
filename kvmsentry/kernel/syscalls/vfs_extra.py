"""memfd_create(2), copy_file_range(2), flock(2) and the xattr calls.

Importing this module registers the handlers. A memfd is an unlinked
in-memory regular file (a ``RegularInode`` of the sentry's memfd tmpfs,
nlink 0) opened O_RDWR: read, write, mmap, ftruncate work as on a tmpfs
file; /proc/self/fd shows "/memfd:NAME (deleted)". Seals (fcntl
F_ADD_SEALS/F_GET_SEALS) are the inode's, enforced by vfs.file.
"""

from __future__ import annotations

import errno
import stat
import struct

from kvmsentry.kernel.fd import O_APPEND, O_LARGEFILE, O_PATH, O_RDWR, File, nofile_limit
from kvmsentry.kernel import files as F
from kvmsentry.kernel.files import AT_FDCWD, read_path, to_int
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall
from kvmsentry.kernel.vfs import flock as _flock
from kvmsentry.kernel.vfs import xattr as _xattr
from kvmsentry.kernel.vfs.file import RegularFile, check_size
from kvmsentry.kernel.vfs.inode import F_SEAL_EXEC, F_SEAL_SEAL, RegularInode
from kvmsentry.kernel.vfs.tmpfs import Tmpfs

# include/uapi/linux/memfd.h
MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_HUGETLB = 0x0004
MFD_NOEXEC_SEAL = 0x0008
MFD_EXEC = 0x0010
MFD_NAME_PREFIX = b"memfd:"
MFD_NAME_MAX_LEN = 255 - len(MFD_NAME_PREFIX)  # 249 bytes (mm/memfd.c)

S64 = struct.Struct("<q")
CHUNK = 1 << 20
MAX_RW_COUNT = 0x7FFFF000

_MEMFD_FS = Tmpfs(0o1777)  # the internal shmem mount memfds live on


def make_memfd(name: bytes, uid: int = 0, gid: int = 0, flags: int = 0) -> RegularFile:
    """A new memfd's open file description (O_RDWR, an unlinked 0777 file).

    Seals as mm/memfd.c memfd_create: F_SEAL_SEAL (no more seals) unless
    MFD_ALLOW_SEALING; MFD_NOEXEC_SEAL makes it 0666 with F_SEAL_EXEC and
    sealable.
    """
    mode, seals = 0o777, F_SEAL_SEAL
    if flags & MFD_NOEXEC_SEAL:
        mode, seals = 0o666, F_SEAL_EXEC
    elif flags & MFD_ALLOW_SEALING:
        seals = 0
    inode = RegularInode(_MEMFD_FS, mode, uid, gid, seals=seals)
    inode.nlink = 0
    return RegularFile(inode, O_RDWR | O_LARGEFILE, b"/memfd:" + name + b" (deleted)")


@syscall("memfd_create", PARTIAL, "no MFD_HUGETLB; F_SEAL_WRITE does not see mappings")
def sys_memfd_create(task, name, flags):
    """Implements Linux syscall memfd_create(2).

    EINVAL for unknown flags, MFD_EXEC with MFD_NOEXEC_SEAL, MFD_HUGETLB
    (no huge pages here) or a name longer than 249 bytes; EFAULT for a bad
    name pointer; EMFILE.
    """
    flags &= 0xFFFFFFFF
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC | MFD_HUGETLB):
        raise SyscallError(errno.EINVAL)
    if flags & MFD_HUGETLB or (flags & MFD_EXEC and flags & MFD_NOEXEC_SEAL):
        raise SyscallError(errno.EINVAL)
    try:
        raw = task.mm.read_cstring(name, MFD_NAME_MAX_LEN + 1)
    except SyscallError:
        raise SyscallError(errno.EINVAL) from None
    creds = task.process.creds
    file = make_memfd(raw, creds.euid, creds.egid, flags)
    return task.fds.install(file, cloexec=bool(flags & MFD_CLOEXEC),
                            limit=nofile_limit(task.process))


def _file_for(task, fd: int, write: bool) -> File:
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH or not (file.writable if write else file.readable):
        raise SyscallError(errno.EBADF)
    return file


def _offset_in(task, ptr: int) -> int | None:
    if not ptr:
        return None
    pos = S64.unpack(task.mm.copy_in(ptr, 8))[0]
    if pos < 0:
        raise SyscallError(errno.EINVAL)
    return pos


@syscall("copy_file_range")
def sys_copy_file_range(task, fd_in, off_in, fd_out, off_out, length, flags):
    """Implements Linux syscall copy_file_range(2) by reads and writes of 1 MiB.

    ``off_in``/``off_out`` (guest loff_t*, may be NULL) are used and
    advanced instead of the file offsets. EBADF for fd_in not readable,
    fd_out not writable or opened O_APPEND; EINVAL for flags != 0, a
    negative offset, a file that is not regular, or overlapping ranges of
    one file; EISDIR for a directory. Returns the bytes copied (0 at EOF).
    """
    src = _file_for(task, fd_in, False)
    dst = _file_for(task, fd_out, True)
    if flags & 0xFFFFFFFF:
        raise SyscallError(errno.EINVAL)
    if dst.flags & O_APPEND:
        raise SyscallError(errno.EBADF)
    if src.is_dir() or dst.is_dir():
        raise SyscallError(errno.EISDIR)
    st_in, st_out = src.stat(), dst.stat()
    if not stat.S_ISREG(st_in.st_mode) or not stat.S_ISREG(st_out.st_mode):
        raise SyscallError(errno.EINVAL)
    pos_in = _offset_in(task, off_in)
    pos_out = _offset_in(task, off_out)
    count = min(length, MAX_RW_COUNT)
    if (st_in.st_dev, st_in.st_ino) == (st_out.st_dev, st_out.st_ino):
        a = src.lseek(0, 1) if pos_in is None else pos_in
        b = dst.lseek(0, 1) if pos_out is None else pos_out
        span = max(0, min(count, st_in.st_size - a))  # Linux checks what it would copy
        if a < b + span and b < a + span:
            raise SyscallError(errno.EINVAL)
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        try:
            data = src.read(n) if pos_in is None else src.pread(n, pos_in + done)
            if not data:
                break
            if pos_out is None:
                w = dst.write(data)
            else:
                check_size(pos_out + done + len(data))
                w = dst.pwrite(data, pos_out + done)
        except SyscallError:
            if done:
                break
            raise
        done += w
        if w < len(data):
            if pos_in is None:
                src.lseek(w - len(data), 1)  # give back what was not written
            break
    if pos_in is not None:
        task.mm.copy_out(off_in, S64.pack(pos_in + done))
    if pos_out is not None:
        task.mm.copy_out(off_out, S64.pack(pos_out + done))
    return done


@syscall("flock")
def sys_flock(task, fd, operation):
    """Implements Linux syscall flock(2) (kvmsentry.kernel.vfs.flock).

    EBADF for a bad or O_PATH fd; EINVAL for an unknown operation;
    EWOULDBLOCK with LOCK_NB when another open file description holds a
    conflicting lock; a blocking flock is interrupted by signals
    (ERESTARTSYS: EINTR, or a restart with SA_RESTART).
    """
    file = task.fds.get(to_int(fd))
    if file.flags & O_PATH:
        raise SyscallError(errno.EBADF)
    _flock.flock(file, to_int(operation), task)
    return 0


# -- extended attributes (xattr(7)) ------------------------------------------

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
