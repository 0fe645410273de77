"""The guest's root: a host directory read-only, with writes kept in memory.

Like Linux's overlayfs (Documentation/filesystems/overlayfs.rst) with a
tmpfs upper layer, in a simpler shape: the tree the guest changes is made
of in-memory directories, and everything it has not changed is still the
host's.

* A ``HostInode`` is a host file, directory or symlink, looked up with
  lstat beneath the host root and never written. Walking a host directory
  looks each name up on the host (no cache, no listing).
* Copy-up of a directory (``materialize``): the first change inside a
  host directory turns it (and its ancestors) into a ``DirInode`` whose
  entries are the host listing as ``Lower`` placeholders. From then on the
  dict *is* the directory: a deleted host entry is simply gone from it (a
  whiteout), a created one is added, a renamed one moves, and getdents64
  lists the dict (host order first, then new names), so offsets are stable.
* Copy-up of a file (``copy_up``): the first write-open, truncate, chmod,
  chown, utimes or link of a host file reads its content into a
  ``RegularInode`` that keeps the host's st_dev/st_ino/mode/owner/times
  and its ``user.`` xattrs (vfs.xattr; host files' xattrs are read, never
  written).
  A descriptor opened read-only before the copy-up keeps reading the host
  file (as overlayfs before Linux 4.19).

The host root is never opened for writing, and host paths are only formed
as ``<host root>/<names>`` from entries looked up one at a time with
lstat, so ``..`` and symlinks cannot leave it (namei resolves symlinks);
files are opened beneath the root (vfs.hostfs: openat2 RESOLVE_IN_ROOT),
so a host directory swapped for a symlink meanwhile cannot lead out.
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel.fd import dt_from_mode, host_call
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs import hostfs, xattr
from kvmsentry.kernel.vfs.inode import (
    DirInode, Filesystem, Inode, Lower, RegularInode, SpecialInode, SymlinkInode,
)

EXT4_SUPER_MAGIC = 0xEF53
_S_IFMT = 0o170000  # stat(7): the file type bits of st_mode
_S_IFDIR, _S_IFLNK = _stat.S_IFDIR, _stat.S_IFLNK


class HostInode:
    """A host file beneath the overlay's host root, as lstat saw it.

    ``host_path`` is absolute (bytes), ``st`` its os.lstat. Read-only: the
    overlay copies it up before any change.
    """

    __slots__ = ("host_path", "st")

    def __init__(self, host_path: bytes, st: os.stat_result):
        self.host_path = host_path
        self.st = st

    @classmethod
    def lookup_host(cls, host_path: bytes) -> "HostInode | None":
        """lstat ``host_path``: a HostInode, None if it does not exist.

        Other host errors (EACCES, ENAMETOOLONG) are the guest's.
        """
        try:
            return cls(host_path, os.lstat(host_path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None

    @property
    def mode(self) -> int:
        return self.st.st_mode

    @property
    def ino(self) -> int:
        return self.st.st_ino

    @property
    def dev(self) -> int:
        return self.st.st_dev

    # The file type bits tested directly (as S_ISDIR, S_ISLNK): every
    # component of a path walk asks both.
    def is_dir(self) -> bool:
        return self.st.st_mode & _S_IFMT == _S_IFDIR

    def is_symlink(self) -> bool:
        return self.st.st_mode & _S_IFMT == _S_IFLNK

    def is_reg(self) -> bool:
        return _stat.S_ISREG(self.st.st_mode)

    def d_type(self) -> int:
        return dt_from_mode(self.st.st_mode)

    def stat(self) -> Stat:
        return Stat.from_host(self.st)

    def readlink(self) -> bytes:
        if not self.is_symlink():
            raise SyscallError(errno.EINVAL)
        return host_call(os.readlink, self.host_path)

    def lookup(self, name: bytes) -> "HostInode | None":
        """The host entry ``name`` in this host directory, or None (lookup_host)."""
        base = self.host_path
        return self.lookup_host((b"" if base == b"/" else base) + b"/" + name)

    def empty(self) -> bool:
        with host_call(os.scandir, self.host_path) as it:
            return next(it, None) is None


def _list_host(host_path: bytes) -> dict[bytes, Lower]:
    """The entries of a host directory as Lower placeholders, in host order."""
    out = {}
    with host_call(os.scandir, host_path) as it:
        for e in it:
            try:
                if e.is_symlink():
                    d_type = 10
                elif e.is_dir(follow_symlinks=False):
                    d_type = 4
                elif e.is_file(follow_symlinks=False):
                    d_type = 8
                else:
                    d_type = dt_from_mode(e.stat(follow_symlinks=False).st_mode)
            except OSError:
                d_type = 0
            out[os.fsencode(e.name)] = Lower(e.inode(), d_type)
    return out


class Overlay(Filesystem):
    """A read-only host directory with an in-memory writable layer on top.

    ``host_root`` is the host directory (bytes, absolute). ``root`` is its
    copied-up root directory (always a DirInode).
    """

    magic = EXT4_SUPER_MAGIC
    name = b"overlay"

    def __init__(self, host_root: bytes):
        super().__init__()
        self.host_root = host_root
        st = host_call(os.stat, host_root)
        self.root = self._materialize(HostInode(host_root, st), None)

    # -- copy-up ------------------------------------------------------------
    def _materialize(self, host: HostInode, parent: DirInode | None) -> DirInode:
        st = host.st
        d = DirInode(self, st.st_mode, st.st_uid, st.st_gid, parent=parent,
                     lower=host.host_path, host_size=st.st_size,
                     dev=st.st_dev, ino=st.st_ino, t=0)
        d.atime_ns, d.mtime_ns, d.ctime_ns = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
        d.nlink = st.st_nlink
        for name, lower in _list_host(host.host_path).items():
            d.add(name, lower)
        d.version = 0
        xattr.inherit(d, host.host_path)
        return d

    def copy_up(self, host: HostInode, parent: DirInode, truncate: bool = False) -> Inode:
        """An in-memory copy of ``host`` (content unless ``truncate``), same identity."""
        st = host.st
        kw = dict(dev=st.st_dev, ino=st.st_ino, t=0)
        mode = st.st_mode
        if _stat.S_ISDIR(mode):
            return self._materialize(host, parent)
        if _stat.S_ISREG(mode):
            data = bytearray()
            if not truncate:
                fd = host_call(hostfs.open_beneath, self.host_root, host.host_path,
                               os.O_RDONLY | os.O_NOFOLLOW)
                with open(fd, "rb", buffering=0) as f:
                    data = bytearray(host_call(f.read))
            inode = RegularInode(self, mode, st.st_uid, st.st_gid, data=data, **kw)
        elif _stat.S_ISLNK(mode):
            inode = SymlinkInode(self, host.readlink(), st.st_uid, st.st_gid, **kw)
        else:
            inode = SpecialInode(self, mode, st.st_uid, st.st_gid, rdev=st.st_rdev, **kw)
        inode.atime_ns, inode.mtime_ns, inode.ctime_ns = (
            st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)
        xattr.inherit(inode, host.host_path)
        return inode

    def writable_dir(self, names: list[bytes]) -> DirInode:
        """Copy up every directory on the way to ``names`` (from the root)."""
        d = self.root
        for name in names:
            child = d.lookup(name)
            if child is None:
                raise SyscallError(errno.ENOENT)
            if isinstance(child, HostInode):
                if not child.is_dir():
                    raise SyscallError(errno.ENOTDIR)
                child = self._materialize(child, d)
                d.replace(name, child)
            elif not isinstance(child, DirInode):
                raise SyscallError(errno.ENOTDIR)
            d = child
        return d

    def writable_child(self, parent: DirInode, name: bytes, truncate: bool = False) -> Inode:
        child = parent.lookup(name)
        if child is None:
            raise SyscallError(errno.ENOENT)
        if isinstance(child, HostInode):
            child = self.copy_up(child, parent, truncate)
            parent.replace(name, child)
        return child

    def dir_empty(self, node) -> bool:
        return node.empty()

    def link(self, parent: DirInode, name: bytes, inode) -> None:
        if isinstance(inode, HostInode):
            raise SyscallError(errno.EXDEV)  # namei copies it up first
        super().link(parent, name, inode)

    def statfs(self) -> dict:
        return host_statfs(self.host_root, self.magic)


def host_statfs(host_root: str, magic: int) -> dict:
    """statfs(2) fields of the host filesystem under ``host_root`` as a
    filesystem of type ``magic`` shows them (statvfs of the host, read-only
    flag dropped: the mount's own flags say that). OSError -> SyscallError."""
    vfs = host_call(os.statvfs, host_root)
    return dict(f_type=magic, f_bsize=vfs.f_bsize, f_blocks=vfs.f_blocks,
                f_bfree=vfs.f_bfree, f_bavail=vfs.f_bavail, f_files=vfs.f_files,
                f_ffree=vfs.f_ffree,
                f_fsid=(vfs.f_fsid & 0xFFFFFFFF, (vfs.f_fsid >> 32) & 0xFFFFFFFF),
                f_namelen=vfs.f_namemax, f_frsize=vfs.f_frsize,
                f_flags=vfs.f_flag & ~os.ST_RDONLY)
