"""A host directory bound read-write at a guest path (``--mount HOST:GUEST:rw``).

The user asked for it: changes go through to the host directory. Paths
stay confined beneath it exactly as for the overlay's host root: namei
(files.py) looks every component up one at a time with lstat (a
``HostInode``) and resolves symlinks itself, relative to the *guest*
root, so a host path is only ever ``<host root>/<names>`` of entries that
are not symlinks. Every change is then made relative to its parent
directory opened beneath the root (vfs.hostfs: openat2 RESOLVE_IN_ROOT,
or a walk that follows no symlink), so a host directory swapped for a
symlink meanwhile cannot lead out; the final component is used without
following a symlink (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW).

The directory operations take the parent as a ``HostInode`` (a directory
beneath the root) instead of a ``DirInode``; writable inodes are
``HostAttrs`` proxies whose ``changed`` applies chmod/chown/utimes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as _stat

from kvmsentry.kernel.fd import HostFile, host_call
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs import hostfs
from kvmsentry.kernel.vfs.inode import Filesystem
from kvmsentry.kernel.vfs.overlay import EXT4_SUPER_MAGIC, HostInode, host_statfs


def _join(parent: HostInode, name: bytes) -> bytes:
    base = parent.host_path
    return (b"" if base == b"/" else base) + b"/" + name


@contextlib.contextmanager
def _at(root: bytes, host_path: bytes):
    """(an O_PATH fd of ``host_path``'s directory, opened beneath ``root``,
    and the last name) for the *at calls; the fd is closed after. The
    root itself gives (None, its path): the calls then use the path."""
    if host_path == root:
        yield None, host_path
        return
    parent, _, name = host_path.rpartition(b"/")
    dfd = host_call(hostfs.open_beneath, root, parent or b"/",
                    os.O_PATH | os.O_DIRECTORY)
    try:
        yield dfd, name
    finally:
        os.close(dfd)


class HostRWFile(HostFile):
    """A host regular file opened for writing beneath a rw bind mount."""

    @classmethod
    def open_rw(cls, root: bytes, host_path: bytes, guest_path: bytes, flags: int,
                oflags: int, mode: int = 0o666) -> "HostRWFile":
        fd = host_call(hostfs.open_beneath, root, host_path, oflags | os.O_NOFOLLOW, mode)
        st = os.fstat(fd)
        if not _stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise SyscallError(errno.EACCES)
        return cls(fd, host_path, guest_path, flags)

    def write(self, data) -> int:
        return host_call(os.write, self.host_fd, data)

    def pwrite(self, data, offset: int) -> int:
        return host_call(os.pwrite, self.host_fd, data, offset)

    def truncate(self, length: int) -> None:
        host_call(os.ftruncate, self.host_fd, length)

    def reopen(self, flags: int):
        raise SyscallError(errno.EOPNOTSUPP)


class HostAttrs:
    """A host file's attributes, to change (chmod, chown, utimes, truncate, link).

    ``set_mode``/``set_owner``/``set_times`` (files.py) set the fields then
    call ``changed``, which applies what differs to the host file.
    """

    def __init__(self, fs, host_path: bytes):
        self.fs = fs
        self.host_path = host_path
        st = host_call(os.lstat, host_path)
        self._st = st
        self.mode, self.uid, self.gid = st.st_mode, st.st_uid, st.st_gid
        self.atime_ns, self.mtime_ns = st.st_atime_ns, st.st_mtime_ns
        self.dev, self.ino = st.st_dev, st.st_ino

    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.mode)

    def is_reg(self) -> bool:
        return _stat.S_ISREG(self.mode)

    def is_symlink(self) -> bool:
        return _stat.S_ISLNK(self.mode)

    def changed(self, t=None) -> None:
        st = self._st
        link = _stat.S_ISLNK(st.st_mode)
        with _at(self.fs.host_root, self.host_path) as (dfd, name):
            if (self.uid, self.gid) != (st.st_uid, st.st_gid):
                host_call(os.chown, name, self.uid, self.gid, dir_fd=dfd,
                          follow_symlinks=False)
            if self.mode != st.st_mode and not link:
                host_call(os.chmod, name, _stat.S_IMODE(self.mode), dir_fd=dfd)
            if (self.atime_ns, self.mtime_ns) != (st.st_atime_ns, st.st_mtime_ns):
                host_call(os.utime, name, ns=(self.atime_ns, self.mtime_ns), dir_fd=dfd,
                          follow_symlinks=False)
            self._st = host_call(os.stat, name, dir_fd=dfd, follow_symlinks=False)

    def modified(self, t=None) -> None:
        self.changed(t)

    def truncate(self, length: int) -> None:
        if not self.is_reg():
            raise SyscallError(errno.EINVAL)
        fd = host_call(hostfs.open_beneath, self.fs.host_root, self.host_path,
                       os.O_WRONLY | os.O_NOFOLLOW)
        try:
            host_call(os.ftruncate, fd, length)
        finally:
            os.close(fd)


class HostBind(Filesystem):
    """A host directory, read and written through (a rw bind mount)."""

    magic = EXT4_SUPER_MAGIC
    name = b"hostbind"
    passthrough = True

    def __init__(self, host_root: bytes):
        super().__init__()
        self.host_root = host_root
        st = host_call(os.stat, host_root)
        if not _stat.S_ISDIR(st.st_mode):
            raise SyscallError(errno.ENOTDIR)
        self.root = HostInode(host_root, st)

    # -- the walk to a directory to change ---------------------------------
    def writable_dir(self, names: list[bytes]) -> HostInode:
        d = self.root
        for name in names:
            d = d.lookup(name)
            if d is None:
                raise SyscallError(errno.ENOENT)
            if not d.is_dir():
                raise SyscallError(errno.ENOTDIR)
        return d

    def writable_child(self, parent: HostInode, name: bytes, truncate: bool = False):
        if parent.lookup(name) is None:
            raise SyscallError(errno.ENOENT)
        return HostAttrs(self, _join(parent, name))

    def dir_empty(self, node) -> bool:
        return node.empty()

    # -- opening -------------------------------------------------------------
    def open_existing(self, host_path: bytes, guest_path: bytes, flags: int,
                      file_flags: int) -> HostRWFile:
        oflags = flags & (os.O_ACCMODE | os.O_APPEND | os.O_TRUNC)
        return HostRWFile.open_rw(self.host_root, host_path, guest_path, file_flags, oflags)

    def create_open(self, parent: HostInode, name: bytes, perm: int, guest_path: bytes,
                    flags: int, file_flags: int) -> HostRWFile:
        oflags = flags & (os.O_ACCMODE | os.O_APPEND | os.O_TRUNC) | os.O_CREAT | os.O_EXCL
        return HostRWFile.open_rw(self.host_root, _join(parent, name), guest_path, file_flags,
                                  oflags, perm)

    # -- directory operations ------------------------------------------------
    def _at(self, parent, name: bytes):
        return _at(self.host_root, _join(parent, name))

    def create(self, parent, name, mode, uid, gid):
        with self._at(parent, name) as (dfd, leaf):
            fd = host_call(os.open, leaf,
                           os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                           mode & 0o7777, dir_fd=dfd)
        os.close(fd)

    def mknod(self, parent, name, mode, rdev, uid, gid):
        if _stat.S_ISSOCK(mode):  # a bound AF_UNIX socket's name (no host socket behind it)
            with self._at(parent, name) as (dfd, leaf):
                host_call(os.mknod, leaf, _stat.S_IFSOCK | (mode & 0o7777), dir_fd=dfd)
            return None
        if not _stat.S_ISFIFO(mode):
            raise SyscallError(errno.EPERM)
        with self._at(parent, name) as (dfd, leaf):
            host_call(os.mkfifo, leaf, mode & 0o7777, dir_fd=dfd)

    def mkdir(self, parent, name, mode, uid, gid):
        with self._at(parent, name) as (dfd, leaf):
            host_call(os.mkdir, leaf, mode & 0o7777, dir_fd=dfd)

    def symlink(self, parent, name, target, uid, gid):
        with self._at(parent, name) as (dfd, leaf):
            host_call(os.symlink, target, leaf, dir_fd=dfd)

    def link(self, parent, name, inode) -> None:
        src = getattr(inode, "host_path", None)
        if src is None:
            raise SyscallError(errno.EXDEV)
        with _at(self.host_root, src) as (sfd, sleaf), self._at(parent, name) as (dfd, leaf):
            host_call(os.link, sleaf, leaf, src_dir_fd=sfd, dst_dir_fd=dfd,
                      follow_symlinks=False)

    def unlink(self, parent, name) -> None:
        with self._at(parent, name) as (dfd, leaf):
            host_call(os.unlink, leaf, dir_fd=dfd)

    def rmdir(self, parent, name) -> None:
        with self._at(parent, name) as (dfd, leaf):
            host_call(os.rmdir, leaf, dir_fd=dfd)

    def rename(self, old_dir, old_name, new_dir, new_name, exchange: bool = False) -> None:
        if exchange:
            raise SyscallError(errno.EINVAL)
        with self._at(old_dir, old_name) as (sfd, sleaf), \
                self._at(new_dir, new_name) as (dfd, leaf):
            host_call(os.rename, sleaf, leaf, src_dir_fd=sfd, dst_dir_fd=dfd)

    def statfs(self) -> dict:
        return host_statfs(self.host_root, self.magic)
