"""Guest path resolution beneath the guest root, and opening what it finds.

The guest's ``/`` is the host directory ``task.process.root``, passed
through read-only. ``lookup`` walks a guest path one component at a time
(fs/namei.c's link_path_walk): ``..`` stops at the guest root, every
symlink is read with os.readlink and resolved relative to the *guest*
root (an absolute target restarts at the guest root), so no path leaves
the root. ELOOP after 40 links (MAXSYMLINKS), ENOTDIR for a non-directory
in the middle, ENAMETOOLONG for a path of 4096 bytes or more or a
component over 255.

A few guest paths are served by the sentry and never reach the host:
/dev/{null,zero,full,random,urandom,tty,stdin,stdout,stderr,fd},
/proc/self (also /proc/thread-self and /proc/<own pid>) with exe, cwd,
root and fd/N. Other /proc/<number> entries are hidden (they would be
the host's processes).

Opening a host file for writing (O_WRONLY, O_RDWR, O_TRUNC, creating) is
EROFS: nothing the guest does changes the host. Host OSErrors become the
guest's errno here (``fd.host_call``).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat as _stat

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import fd as fdmod
from kvmsentry.kernel.fd import (
    O_ACCMODE, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOFOLLOW, O_PATH,
    O_RDONLY, O_TRUNC, OPEN_ONLY_FLAGS, __O_TMPFILE, Dirent, File, HostFile,
    HostStream, PathFile, host_call,
)
from kvmsentry.kernel.syscalls.table import SyscallError

AT_FDCWD = -100
PATH_MAX = 4096  # bytes, including the NUL (include/uapi/linux/limits.h)
NAME_MAX = 255
MAXSYMLINKS = 40  # include/linux/namei.h

# Kinds of Node.
HOST = "host"          # a host file (st is its lstat)
MISSING = "missing"    # the last component does not exist (parent does)
DEVICE = "device"      # a sentry-served character device (name in Node.device)
FDLINK = "fdlink"      # /proc/self/fd/N followed: the open File itself
VDIR = "vdir"          # a sentry-made directory (/proc/self, /proc/self/fd)
MAGICLINK = "magiclink"  # a sentry-made symlink not followed (readlink target)

# Sentry-served devices: name -> (major, minor) of st_rdev.
DEVICES = {
    b"null": (1, 3), b"zero": (1, 5), b"full": (1, 7),
    b"random": (1, 8), b"urandom": (1, 9), b"tty": (5, 0),
}
# Sentry-served symlinks in /dev (as udev makes them).
DEV_LINKS = {
    b"stdin": b"/proc/self/fd/0", b"stdout": b"/proc/self/fd/1",
    b"stderr": b"/proc/self/fd/2", b"fd": b"/proc/self/fd",
}
_SELF_NAMES = (b"self", b"thread-self")
_PROC_SELF = [b"proc", b"self"]
_PROC_SELF_FD = [b"proc", b"self", b"fd"]


@dataclasses.dataclass
class Node:
    """What a guest path names.

    ``guest_path`` is absolute and normalized (bytes); ``host_path`` is set
    for HOST and MISSING; ``st`` is the host lstat for HOST; ``device``
    names a DEVICE; ``file`` is the File of an FDLINK; ``target`` the
    readlink text of a MAGICLINK; ``entries`` the listing of a VDIR.
    """

    kind: str
    guest_path: bytes
    host_path: bytes | None = None
    st: os.stat_result | None = None
    device: bytes = b""
    file: File | None = None
    target: bytes = b""
    entries: list[tuple[bytes, int]] | None = None  # (name, DT_*)

    def is_dir(self) -> bool:
        if self.kind == HOST:
            return _stat.S_ISDIR(self.st.st_mode)
        if self.kind == VDIR:
            return True
        if self.kind == FDLINK:
            return self.file.is_dir()
        return False


def to_int(value: int) -> int:
    """A raw 64-bit register as the C int the syscall declares (fd, dirfd)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def read_path(task, path_gva: int) -> bytes:
    """The NUL-terminated guest path at ``path_gva``.

    EFAULT (GuestFault) for a bad pointer, ENAMETOOLONG when it has no
    NUL within PATH_MAX bytes.
    """
    return task.mm.read_cstring(path_gva, PATH_MAX)


def _root(task) -> bytes:
    root = os.fsencode(task.process.root)
    return root.rstrip(b"/") or b"/"


def _host_of(root: bytes, cur: list[bytes]) -> bytes:
    if not cur:
        return root
    return (b"" if root == b"/" else root) + b"/" + b"/".join(cur)


def _guest_of(cur: list[bytes]) -> bytes:
    return b"/" + b"/".join(cur)


def _split(path: bytes) -> list[bytes]:
    return [c for c in path.split(b"/") if c and c != b"."]


def fd_link_target(file: File) -> bytes:
    """What readlink(/proc/self/fd/N) says for ``file``."""
    return file.guest_path or b"anon_inode:[unknown]"


def _start(task, dirfd: int, path: bytes) -> list[bytes]:
    """The resolved components the walk of ``path`` starts from."""
    if path.startswith(b"/"):
        return []
    if dirfd == AT_FDCWD:
        return _split(os.fsencode(task.process.cwd))
    file = task.fds.get(dirfd)
    if not file.is_dir():
        raise SyscallError(errno.ENOTDIR)
    return _split(file.guest_path)


def lookup(task, dirfd: int, path: bytes, follow: bool = True,
           allow_missing: bool = False) -> Node:
    """Resolve guest ``path`` (relative to ``dirfd`` or the cwd) to a Node.

    ``follow``: follow a symlink in the last component. ``allow_missing``:
    a missing last component gives a MISSING node instead of ENOENT (for
    O_CREAT). Errors: ENOENT (also for an empty path), ENOTDIR, ELOOP,
    ENAMETOOLONG, EACCES (host), EBADF (dirfd).
    """
    if not path:
        raise SyscallError(errno.ENOENT)
    if len(path) >= PATH_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    root = _root(task)
    cur = _start(task, dirfd, path)
    stack = path.split(b"/")
    stack.reverse()
    links = 0
    st: os.stat_result | None = None
    virtual = False  # cur is a sentry-made directory
    while stack:
        name = stack.pop()
        if name == b"" or name == b".":
            continue
        if name == b"..":
            if cur:
                cur.pop()
                st = None
                virtual = False
            continue
        if len(name) > NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        # The last component is the one with only '' (a trailing slash
        # demands a directory, so it is followed) or nothing after it.
        last = not stack
        follow_this = follow or not last
        special = _special(task, cur, name)
        if special is not None:
            kind, value = special
            if kind == "link":
                if follow_this:
                    links += 1
                    if links > MAXSYMLINKS:
                        raise SyscallError(errno.ELOOP)
                    if value.startswith(b"/"):
                        cur = []
                    stack.extend(reversed(value.split(b"/")))
                    st, virtual = None, False
                    continue
                return Node(MAGICLINK, _guest_of(cur + [name]), target=value)
            if kind == "fd":
                file = value
                if not follow_this:
                    return Node(MAGICLINK, _guest_of(cur + [name]), target=fd_link_target(file))
                if last:
                    return Node(FDLINK, fd_link_target(file), file=file)
                if not file.is_dir():
                    raise SyscallError(errno.ENOTDIR)
                cur = _split(file.guest_path)
                st, virtual = None, False
                continue
            if kind == "device":
                if not last:
                    raise SyscallError(errno.ENOTDIR)
                return Node(DEVICE, _guest_of(cur + [name]), device=name)
            if kind == "vdir":
                cur.append(value or name)
                st, virtual = None, True
                continue
            raise SyscallError(errno.ENOENT)  # kind == "hidden"
        if virtual:
            raise SyscallError(errno.ENOENT)
        host = _host_of(root, cur + [name])
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            if not cur and name in (b"proc", b"dev"):
                # A root without /proc or /dev still has the sentry's.
                cur.append(name)
                st, virtual = None, True
                continue
            if last and allow_missing:
                return Node(MISSING, _guest_of(cur + [name]), host_path=host)
            raise SyscallError(errno.ENOENT) from None
        except OSError as e:
            raise SyscallError(e.errno) from None
        if _stat.S_ISLNK(st.st_mode) and follow_this:
            links += 1
            if links > MAXSYMLINKS:
                raise SyscallError(errno.ELOOP)
            target = host_call(os.readlink, host)
            if target.startswith(b"/"):
                cur = []
            stack.extend(reversed(target.split(b"/")))
            st = None
            continue
        if not last and not _stat.S_ISDIR(st.st_mode):
            raise SyscallError(errno.ENOTDIR)
        cur.append(name)
    if virtual:
        return _vdir_node(task, cur)
    host = _host_of(root, cur)
    if st is None:
        st = host_call(os.lstat, host)
    return Node(HOST, _guest_of(cur), host_path=host, st=st)


def _special(task, cur: list[bytes], name: bytes):
    """The sentry's own answer for ``cur``/``name``, or None for the host's.

    Returns (kind, value): ("link", target), ("fd", File), ("device", None),
    ("vdir", None) or ("hidden", None).
    """
    depth = len(cur)
    if depth == 1:
        if cur[0] == b"dev":
            if name in DEVICES:
                return "device", None
            if name in DEV_LINKS:
                return "link", DEV_LINKS[name]
        elif cur[0] == b"proc":
            if name in _SELF_NAMES or name == b"%d" % task.process.pid:
                return "vdir", b"self"  # one /proc/self for all its names
            if name.isdigit():
                return "hidden", None
    elif depth == 2 and cur == _PROC_SELF:
        if name == b"exe":
            return "link", os.fsencode(task.process.exe)
        if name == b"cwd":
            return "link", os.fsencode(task.process.cwd)
        if name == b"root":
            return "link", b"/"
        if name == b"fd":
            return "vdir", None
        return "hidden", None
    elif depth == 3 and cur == _PROC_SELF_FD:
        if name.isdigit() and len(name) < 11 and int(name) in task.fds:
            return "fd", task.fds.get(int(name))
        return "hidden", None
    return None


def _vdir_node(task, cur: list[bytes]) -> Node:
    if cur == _PROC_SELF:
        entries = [(b"exe", fdmod.DT_LNK), (b"cwd", fdmod.DT_LNK),
                   (b"root", fdmod.DT_LNK), (b"fd", fdmod.DT_DIR)]
    elif cur == _PROC_SELF_FD:
        entries = [(b"%d" % n, fdmod.DT_LNK) for n in task.fds.fds()]
    elif cur == [b"proc"]:
        entries = [(b"self", fdmod.DT_LNK), (b"thread-self", fdmod.DT_LNK)]
    elif cur == [b"dev"]:
        entries = [(n, fdmod.DT_CHR) for n in DEVICES] + [(n, fdmod.DT_LNK) for n in DEV_LINKS]
    else:
        entries = []
    return Node(VDIR, _guest_of(cur), entries=entries)


def host_tty_fd() -> int | None:
    """The first of the sentry's fds 0, 1, 2 that is a terminal, if any."""
    for fd in (0, 1, 2):
        if os.isatty(fd):
            return fd
    return None


def device_stat(name: bytes) -> Stat:
    major, minor = DEVICES[name]
    return Stat(st_dev=os.makedev(0, 5), st_ino=0x1000 + major * 256 + minor, st_nlink=1,
                st_mode=_stat.S_IFCHR | 0o666, st_rdev=os.makedev(major, minor))


_VDIR_INO = 0x2000


def node_stat(node: Node, follow_file: bool = True) -> Stat:
    """stat(2) of a resolved Node."""
    if node.kind == HOST:
        return Stat.from_host(node.st)
    if node.kind == DEVICE:
        return device_stat(node.device)
    if node.kind == FDLINK:
        return node.file.stat()
    if node.kind == VDIR:
        return Stat(st_dev=os.makedev(0, 22), st_ino=_VDIR_INO + len(node.guest_path),
                    st_nlink=2, st_mode=_stat.S_IFDIR | 0o555, st_size=0)
    if node.kind == MAGICLINK:
        return Stat(st_dev=os.makedev(0, 22), st_ino=_VDIR_INO + 0x100 + len(node.guest_path),
                    st_nlink=1, st_mode=_stat.S_IFLNK | 0o777, st_size=len(node.target))
    raise SyscallError(errno.ENOENT)


def node_readlink(node: Node) -> bytes:
    """readlink(2) of a Node resolved without following: EINVAL if no symlink."""
    if node.kind == MAGICLINK:
        return node.target
    if node.kind == HOST and _stat.S_ISLNK(node.st.st_mode):
        return host_call(os.readlink, node.host_path)
    raise SyscallError(errno.EINVAL)


class SyntheticDir(File):
    """A directory the sentry makes up (/proc/self, /proc/self/fd, ...)."""

    def __init__(self, node: Node, flags: int):
        super().__init__(flags, node.guest_path)
        self._node = node
        self._pos = 0

    def is_dir(self) -> bool:
        return True

    def read(self, n: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def pread(self, n: int, offset: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def stat(self) -> Stat:
        return node_stat(self._node)

    def lseek(self, offset: int, whence: int) -> int:
        if whence == fdmod.SEEK_SET:
            new = offset
        elif whence == fdmod.SEEK_CUR:
            new = self._pos + offset
        else:
            raise SyscallError(errno.EINVAL)
        if new < 0:
            raise SyscallError(errno.EINVAL)
        self._pos = new
        return new

    def getdents(self):
        ino = node_stat(self._node).st_ino
        entries = [(b".", fdmod.DT_DIR), (b"..", fdmod.DT_DIR)] + list(self._node.entries)
        for i in range(self._pos, len(entries)):
            name, d_type = entries[i]
            yield i + 1, Dirent(ino + 1 + i, d_type, name)

    def seek_dir(self, position: int) -> None:
        self._pos = position

    def reopen(self, flags: int) -> "SyntheticDir":
        return SyntheticDir(self._node, flags)


def open_device(name: bytes, flags: int, guest_path: bytes) -> File:
    """A new open file of a sentry-served device."""
    if name == b"null":
        return fdmod.DevNull(flags, guest_path)
    if name == b"zero":
        return fdmod.DevZero(flags, guest_path)
    if name == b"full":
        return fdmod.DevFull(flags, guest_path)
    if name in (b"random", b"urandom"):
        return fdmod.DevUrandom(flags, guest_path, DEVICES[name][1])
    if name == b"tty":
        host_fd = host_tty_fd()
        if host_fd is None:
            raise SyscallError(errno.ENXIO)
        return HostStream(host_fd, flags, guest_path)
    raise SyscallError(errno.ENOENT)


def _wants_write(flags: int) -> bool:
    return (flags & O_ACCMODE) != O_RDONLY or bool(flags & O_TRUNC)


def _parent_ino(task, node: Node) -> int:
    parent = node.guest_path.rsplit(b"/", 1)[0]
    host = _host_of(_root(task), _split(parent))
    return host_call(os.lstat, host).st_ino


def open_path(task, dirfd: int, path: bytes, flags: int) -> File:
    """open(2)/openat(2) of a guest path: a new open file description.

    ``flags`` are open's; the File's ``flags`` keep the access mode and
    status flags plus O_LARGEFILE, as F_GETFL shows on x86-64. EROFS for
    writing or creating a host file, EEXIST for O_CREAT|O_EXCL on an
    existing file, EISDIR for writing a directory, ENOTDIR for
    O_DIRECTORY on a non-directory, ELOOP for O_NOFOLLOW on a symlink,
    ENXIO for /dev/tty without a host terminal, EACCES for a host file
    that is not a regular file or directory (FIFOs, host devices).
    """
    if flags & __O_TMPFILE:
        if (flags & O_ACCMODE) == O_RDONLY:
            raise SyscallError(errno.EINVAL)
        node = lookup(task, dirfd, path)
        if not node.is_dir():
            raise SyscallError(errno.ENOTDIR)
        raise SyscallError(errno.EROFS if node.kind == HOST else errno.EOPNOTSUPP)
    if flags & O_PATH:
        flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | fdmod.O_CLOEXEC
    creat = bool(flags & O_CREAT)
    follow = not (flags & O_NOFOLLOW) and not (creat and flags & O_EXCL)
    node = lookup(task, dirfd, path, follow=follow, allow_missing=creat)
    file_flags = (flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE
    if flags & O_PATH:
        file_flags = flags & ~fdmod.O_CLOEXEC
    if node.kind == MISSING:
        # Linux looks up the parent, then may_o_create: EROFS on a ro mount.
        raise SyscallError(errno.EROFS)
    if creat and flags & O_EXCL:
        raise SyscallError(errno.EEXIST)
    is_dir = node.is_dir()
    if creat and is_dir:
        raise SyscallError(errno.EISDIR)
    if flags & O_DIRECTORY and not is_dir:
        raise SyscallError(errno.ENOTDIR)
    is_link = node.kind == MAGICLINK or (node.kind == HOST and _stat.S_ISLNK(node.st.st_mode))
    if flags & O_PATH:
        return PathFile(file_flags, node.guest_path, lambda: node_stat(node),
                        host=node.host_path, is_directory=is_dir)
    if is_link:
        raise SyscallError(errno.ELOOP)
    if is_dir and (flags & O_ACCMODE) != O_RDONLY:
        raise SyscallError(errno.EISDIR)
    if node.kind == HOST:
        if _wants_write(flags) and (
                _stat.S_ISREG(node.st.st_mode) or _stat.S_ISDIR(node.st.st_mode)):
            raise SyscallError(errno.EROFS)
        parent = _parent_ino(task, node) if is_dir and node.guest_path != b"/" else None
        if is_dir:
            file_flags |= O_DIRECTORY
        return HostFile.open(node.host_path, node.guest_path, file_flags, parent)
    if node.kind == DEVICE:
        return open_device(node.device, file_flags, node.guest_path)
    if node.kind == FDLINK:
        # A host file stays read-only however it is reached.
        if node.file.host_path() is not None and _wants_write(flags):
            raise SyscallError(errno.EROFS)
        return node.file.reopen(file_flags)
    if node.kind == VDIR:
        return SyntheticDir(node, file_flags | O_DIRECTORY)
    raise SyscallError(errno.ENOENT)


def node_access(node: Node, mode: int) -> None:
    """access(2)'s check of ``mode`` (R_OK 4, W_OK 2, X_OK 1) on a Node.

    W_OK on a host file or directory is EROFS (Linux on a read-only
    mount); R_OK/X_OK ask the host whether the sentry itself can, since
    that is what an open or exec will find. EACCES when not.
    """
    if mode == 0:
        return
    st = node_stat(node)
    if node.kind == HOST:
        if mode & 2 and not (_stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode)
                             or _stat.S_ISFIFO(st.st_mode) or _stat.S_ISSOCK(st.st_mode)):
            raise SyscallError(errno.EROFS)
        host_mode = mode & (os.R_OK | os.X_OK)
        if host_mode and not os.access(node.host_path, host_mode):
            raise SyscallError(errno.EACCES)
        return
    if mode & 1 and not (_stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111):
        raise SyscallError(errno.EACCES)
