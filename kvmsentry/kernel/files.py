"""Guest path resolution (namei) and opening, creating and changing what it finds.

The guest's files come from the sandbox's mount table (``vfs.mount``): the
root is an overlay over the host directory ``task.process.root``, read-only
underneath with every change kept in memory (``vfs.overlay``), and /tmp a
tmpfs. ``lookup`` walks a guest path one component at a time
(fs/namei.c's link_path_walk): ``..`` stops at the guest root, every
symlink is resolved relative to the *guest* root (an absolute target
restarts at the guest root), so no path leaves the root. ELOOP after 40
links (MAXSYMLINKS), ENOTDIR for a non-directory in the middle,
ENAMETOOLONG for a path of 4096 bytes or more or a component over 255.

/dev and /proc are served by the sentry and never reach the host:
/dev/{null,zero,full,random,urandom,tty,stdin,stdout,stderr,fd} (plus
the mounts beneath /dev, /dev/shm), and all of /proc (procfs.py: the
sandbox's processes, never the host's).

The calls that change the tree (mkdir, unlink, rename, link, symlink,
chmod, ...) are here as ``do_*`` functions: the path checks of fs/namei.c
(".", "..", trailing slashes, EXDEV between mounts, a directory moved
into itself) then the file system's operation. Nothing reaches the host.
Host OSErrors become the guest's errno where the host is read
(``fd.host_call``).
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import weakref

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import fd as fdmod
from kvmsentry.kernel import procfs
from kvmsentry.kernel.fd import (
    O_ACCMODE, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOFOLLOW, O_PATH,
    O_RDONLY, O_TRUNC, OPEN_ONLY_FLAGS, __O_TMPFILE, Dirent, File, HostFile,
    HostStream, PathFile,
)
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs.file import DirectoryFile, OpenDirectory, RegularFile
from kvmsentry.kernel.vfs.inode import DirInode, FifoInode, Inode, RegularInode
from kvmsentry.kernel.vfs.tmpfs import Tmpfs
from kvmsentry.kernel.vfs.mount import MountNamespace
from kvmsentry.kernel.vfs.overlay import HostInode
from kvmsentry.kernel.vfs import hostfs
from kvmsentry.kernel.vfs import perm as _perm
from kvmsentry.kernel.vfs.perm import MAY_EXEC, MAY_READ, MAY_WRITE

AT_FDCWD = -100
PATH_MAX = 4096  # bytes, including the NUL (include/uapi/linux/limits.h)
NAME_MAX = 255
MAXSYMLINKS = 40  # include/linux/namei.h
S_IFMT = 0o170000  # include/uapi/linux/stat.h

# Kinds of Node.
HOST = "host"          # a host file beneath the overlay (st is its lstat)
MEM = "mem"            # an in-memory inode (tmpfs, or the overlay's copy-up)
MISSING = "missing"    # the last component does not exist (parent does)
DEVICE = "device"      # a sentry-served character device (name in Node.device)
FDLINK = "fdlink"      # /proc/self/fd/N followed: the open File itself
VDIR = "vdir"          # a sentry-made directory (/proc/self, /proc/self/fd)
MAGICLINK = "magiclink"  # a sentry-made symlink not followed (readlink target)
PROCFILE = "procfile"  # a sentry-made read-only file (its content in Node.target)

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


class Node:
    """What a guest path names.

    ``guest_path`` is absolute and normalized (bytes). For HOST, MEM and
    MISSING: ``inode`` is the file system's node (a HostInode or an Inode;
    None for MISSING), ``parent`` the directory node holding it, ``path``
    the canonical names from /, ``mount`` the Mount it is on and
    ``mount_depth`` where in ``path`` that mount starts. ``host_path`` and
    ``st`` (its lstat) are set for HOST; ``device`` names a DEVICE;
    ``file`` is the File of an FDLINK; ``target`` the readlink text of a
    MAGICLINK; ``entries`` the listing of a VDIR, (name, DT_*) pairs.
    Equal when every field is.
    """

    __slots__ = ("kind", "guest_path", "host_path", "st", "device", "file", "target", "entries",
                 "inode", "parent", "path", "mount", "mount_depth")

    def __init__(self, kind: str, guest_path: bytes, host_path: bytes | None = None,
                 st: os.stat_result | None = None, device: bytes = b"", file: File | None = None,
                 target: bytes = b"", entries: list[tuple[bytes, int]] | None = None,
                 inode: object = None, parent: object = None, path: list[bytes] | None = None,
                 mount: object = None, mount_depth: int = 0):
        self.kind = kind
        self.guest_path = guest_path
        self.host_path = host_path
        self.st = st
        self.device = device
        self.file = file
        self.target = target
        self.entries = entries
        self.inode = inode
        self.parent = parent
        self.path = path
        self.mount = mount
        self.mount_depth = mount_depth

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        if other.__class__ is not Node:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None

    def __repr__(self) -> str:
        return f"Node(kind={self.kind!r}, guest_path={self.guest_path!r})"

    def is_dir(self) -> bool:
        if self.kind == HOST:
            return _stat.S_ISDIR(self.st.st_mode)
        if self.kind == MEM:
            return self.inode.is_dir()
        if self.kind == VDIR:
            return True
        if self.kind == FDLINK:
            return self.file.is_dir()
        return False

    def is_symlink(self) -> bool:
        if self.kind in (HOST, MEM):
            return self.inode.is_symlink()
        return self.kind == MAGICLINK

    def fs_names(self) -> list[bytes]:
        """The names from the root of this node's mount down to it."""
        return self.path[self.mount_depth:]


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


def mounts_of(process) -> MountNamespace:
    """The sandbox's mount table (made on first use from ``process.root``)."""
    ns = process.mounts
    if ns is None:
        ns = process.mounts = MountNamespace.for_host_root(process.root)
    return ns


def _guest_of(cur: list[bytes]) -> bytes:
    return b"/" + b"/".join(cur)


def _split(path: bytes) -> list[bytes]:
    return [c for c in path.split(b"/") if c and c != b"."]


def fd_link_target(file: File) -> bytes:
    """What readlink(/proc/self/fd/N) says for ``file``."""
    return file.guest_path or b"anon_inode:[unknown]"


class _Walk:
    """Where a walk is: the names from / (``cur``), the node of each prefix
    (``nodes[k]`` for ``cur[:k]``; None inside a sentry-made directory)
    and the mount each node belongs to (``mnts``)."""

    __slots__ = ("cur", "nodes", "mnts")

    def __init__(self, ns: MountNamespace):
        self.cur: list[bytes] = []
        self.nodes: list = [ns.root.root]
        self.mnts: list = [ns.root]

    def copy(self) -> "_Walk":
        w = _Walk.__new__(_Walk)
        w.cur, w.nodes, w.mnts = list(self.cur), list(self.nodes), list(self.mnts)
        return w

    def push(self, name: bytes, node, mount) -> None:
        self.cur.append(name)
        self.nodes.append(node)
        self.mnts.append(mount)

    def pop(self) -> None:
        if self.cur:
            self.cur.pop()
            self.nodes.pop()
            self.mnts.pop()

    def mount_depth(self) -> int:
        """The index in ``cur`` where the last node's mount starts."""
        mount = self.mnts[-1]
        j = len(self.mnts) - 1
        while j > 0 and self.mnts[j - 1] is mount:
            j -= 1
        return j


def _start(task, ns: MountNamespace, dirfd: int, path: bytes) -> _Walk:
    """The walk state the resolution of ``path`` starts from."""
    if path.startswith(b"/"):
        return _Walk(ns)
    if dirfd == AT_FDCWD:
        saved = task.process.cwd_walk
        if saved is not None and saved.nodes[-1].nlink == 0:
            return saved.copy()  # a removed cwd: its path names nothing now
        return _dir_walk(task, ns, os.fsencode(task.process.cwd))
    file = task.fds.get(dirfd)
    if not file.is_dir():
        raise SyscallError(errno.ENOTDIR)
    return _dir_walk(task, ns, file.guest_path or b"/")


def _dir_walk(task, ns: MountNamespace, guest_path: bytes) -> _Walk:
    """The walk state of a directory's (canonical) guest path."""
    w = _Walk(ns)
    stack = guest_path.split(b"/")
    stack.reverse()
    # The start directory itself was reached before (chdir, open): its
    # ancestors' search bits are not checked again, as Linux keeps a path.
    _walk(task, ns, w, stack, True, False, search=False)
    return w


def set_cwd(task, node: Node) -> None:
    """chdir to the directory ``node`` (its guest path; for an in-memory
    directory also its place, so that it stays usable once removed:
    "." still stats (nlink 0), creating in it is ENOENT, getcwd ENOENT)."""
    process = task.process
    process.cwd = os.fsdecode(node.guest_path)
    process.cwd_walk = None
    if node.kind == MEM and isinstance(node.inode, DirInode):
        ns = mounts_of(process)
        process.cwd_walk = _dir_walk(task, ns, node.guest_path)


def cwd_removed(process) -> bool:
    """Whether the cwd is an in-memory directory that has been removed."""
    saved = process.cwd_walk
    return saved is not None and saved.nodes[-1].nlink == 0


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
    ns = mounts_of(task.process)
    w = _start(task, ns, dirfd, path)
    stack = path.split(b"/")
    stack.reverse()
    return _walk(task, ns, w, stack, follow, allow_missing)


def _walk(task, ns: MountNamespace, w: _Walk, stack: list[bytes], follow: bool,
          allow_missing: bool, search: bool = True) -> Node:
    """Resolve the components in ``stack`` (reversed) from ``w`` (fs/namei.c
    link_path_walk): ``..`` stops at /, a symlink's target is spliced in
    (an absolute one restarts at /), mounts shadow what is beneath them."""
    links = 0
    creds = task.process.creds
    # Search permission on each directory looked in (may_lookup); root
    # may search every directory (CAP_DAC_READ_SEARCH).
    search = search and not _perm.capable(creds, _perm.CAP_DAC_READ_SEARCH)
    while stack:
        name = stack.pop()
        if name == b"":
            continue
        if search and w.nodes[-1] is not None:
            _perm.permission(creds, w.nodes[-1], MAY_EXEC)  # may_lookup
        if name == b".":
            continue
        if name == b"..":
            w.pop()
            continue
        if len(name) > NAME_MAX:
            raise SyscallError(errno.ENAMETOOLONG)
        # The last component is the one with only '' (a trailing slash
        # demands a directory, so it is followed) or nothing after it.
        last = not stack
        follow_this = follow or not last
        cur = w.cur
        special = _special(task, cur, name) if cur and cur[0] in _SENTRY_DIRS else None
        if special is not None:
            kind, value = special
            if kind == "link":
                if follow_this:
                    links += 1
                    if links > MAXSYMLINKS:
                        raise SyscallError(errno.ELOOP)
                    if value.startswith(b"/"):
                        w = _Walk(ns)
                    stack.extend(reversed(value.split(b"/")))
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
                w = _dir_walk(task, ns, file.guest_path or b"/")
                continue
            if kind == "device":
                if not last:
                    raise SyscallError(errno.ENOTDIR)
                return Node(DEVICE, _guest_of(cur + [name]), device=name)
            if kind == "vdir":
                w.push(name, None, None)
                continue
            if kind == "procfile":
                if not last:
                    raise SyscallError(errno.ENOTDIR)
                return Node(PROCFILE, _guest_of(cur + [name]), target=value)
            raise SyscallError(errno.ENOENT)  # kind == "hidden"
        if not cur and name in (b"proc", b"dev"):
            # The sentry's, whatever the root has there (never the host's).
            w.push(name, None, None)
            continue
        mount = ns.mount_at(cur, name) if name in ns.point_names else None
        if mount is not None:
            w.push(name, mount.root, mount)
            continue
        parent = w.nodes[-1]
        if parent is None:  # inside a sentry-made directory
            raise SyscallError(errno.ENOENT)
        child = parent.lookup(name)
        if child is None:
            if last and allow_missing:
                j = w.mount_depth()
                return Node(MISSING, _guest_of(cur + [name]), path=cur + [name],
                            parent=parent, mount=w.mnts[-1], mount_depth=j)
            raise SyscallError(errno.ENOENT)
        if follow_this and child.is_symlink():
            links += 1
            if links > MAXSYMLINKS:
                raise SyscallError(errno.ELOOP)
            target = child.readlink()
            if target.startswith(b"/"):
                w = _Walk(ns)
            stack.extend(reversed(target.split(b"/")))
            continue
        if not last and not child.is_dir():
            raise SyscallError(errno.ENOTDIR)
        w.push(name, child, w.mnts[-1])
    return _node_of(task, w)


def _node_of(task, w: _Walk) -> Node:
    node = w.nodes[-1]
    if node is None:
        return _vdir_node(task, w.cur)
    parent = w.nodes[-2] if len(w.nodes) > 1 else node
    if parent is None:
        parent = node
    path = list(w.cur)
    if type(node) is HostInode:
        return Node(HOST, _guest_of(path), node.host_path, node.st, inode=node, parent=parent,
                    path=path, mount=w.mnts[-1], mount_depth=w.mount_depth())
    return Node(MEM, _guest_of(path), inode=node, parent=parent, path=path, mount=w.mnts[-1],
                mount_depth=w.mount_depth())


def lookup_parent(task, dirfd: int, path: bytes) -> tuple[Node, bytes, bool]:
    """(the directory, the last component, whether a slash followed it).

    As filename_parentat: the directory is resolved (symlinks followed),
    the last component is not looked up. It is b"/" for a path of only
    slashes (LAST_ROOT), b"." or b".." as written. ENOENT for an empty
    path, ENAMETOOLONG, ENOTDIR, ELOOP from the walk.
    """
    if not path:
        raise SyscallError(errno.ENOENT)
    if len(path) >= PATH_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    stripped = path.rstrip(b"/")
    trailing = len(stripped) != len(path)
    if not stripped:
        return lookup(task, dirfd, b"/"), b"/", trailing
    cut = stripped.rfind(b"/") + 1
    head, last = stripped[:cut], stripped[cut:]
    if len(last) > NAME_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    parent = lookup(task, dirfd, head or b".")
    if not parent.is_dir():
        raise SyscallError(errno.ENOTDIR)
    return parent, last, trailing


def child_of(task, parent: Node, name: bytes) -> Node:
    """The entry ``name`` of directory ``parent``, not followed (MISSING if absent)."""
    base = parent.guest_path.rstrip(b"/")
    return lookup(task, AT_FDCWD, base + b"/" + name, follow=False, allow_missing=True)


# The top directories whose contents the sentry makes (_special).
_SENTRY_DIRS = frozenset((b"proc", b"dev"))


def _special(task, cur: list[bytes], name: bytes):
    """The sentry's own answer for ``cur``/``name``, or None for the host's.

    Returns (kind, value): ("link", target), ("fd", File), ("device", None),
    ("vdir", None), ("procfile", content) or ("hidden", None). All of
    /proc is the sentry's (procfs.py); so is /dev but for its mounts
    (/dev/shm).
    """
    if cur[0] == b"proc":
        return procfs.special(task, cur[1:], name)
    if len(cur) == 1 and cur[0] == b"dev":
        if name in DEVICES:
            return "device", None
        if name in DEV_LINKS:
            return "link", DEV_LINKS[name]
    return None


def _vdir_node(task, cur: list[bytes]) -> Node:
    if cur and cur[0] == b"proc":
        entries = procfs.listing(task, cur[1:])
    elif cur == [b"dev"]:
        entries = [(n, fdmod.DT_CHR) for n in DEVICES] + [(n, fdmod.DT_LNK) for n in DEV_LINKS]
        ns = mounts_of(task.process)
        entries += [(m.point[1], fdmod.DT_DIR) for m in ns.mounts
                    if len(m.point) == 2 and m.point[0] == b"dev"]
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


def _synthetic_ino(node: Node, kind: int) -> int:
    """A stable inode number for a sentry-made /proc or /dev entry, distinct
    per path (so that find, du and ls -i tell /proc/1 from /proc/3)."""
    import zlib  # here, not at start: a shared library to load (~0.4 ms)
    return _VDIR_INO + ((zlib.crc32(node.guest_path) & 0x3FFFFFFF) << 2 | kind)


def node_stat(node: Node, follow_file: bool = True) -> Stat:
    """stat(2) of a resolved Node."""
    if node.kind == HOST:
        return Stat.from_host(node.st)
    if node.kind == MEM:
        return node.inode.stat()
    if node.kind == DEVICE:
        return device_stat(node.device)
    if node.kind == FDLINK:
        return node.file.stat()
    if node.kind == VDIR:
        return Stat(st_dev=os.makedev(0, 22), st_ino=_synthetic_ino(node, 0),
                    st_nlink=2, st_mode=_stat.S_IFDIR | 0o555, st_size=0)
    if node.kind == PROCFILE:
        return Stat(st_dev=os.makedev(0, 22), st_ino=_synthetic_ino(node, 2),
                    st_nlink=1, st_mode=_stat.S_IFREG | 0o444, st_size=0)
    if node.kind == MAGICLINK:
        return Stat(st_dev=os.makedev(0, 22), st_ino=_synthetic_ino(node, 1),
                    st_nlink=1, st_mode=_stat.S_IFLNK | 0o777, st_size=len(node.target))
    raise SyscallError(errno.ENOENT)


def node_readlink(node: Node) -> bytes:
    """readlink(2) of a Node resolved without following: EINVAL if no symlink."""
    if node.kind == MAGICLINK:
        return node.target
    if node.kind in (HOST, MEM):
        return node.inode.readlink()
    raise SyscallError(errno.EINVAL)


class SyntheticDir(OpenDirectory):
    """A directory the sentry makes up (/proc/self, /proc/self/fd, ...)."""

    def __init__(self, node: Node, flags: int):
        super().__init__(flags, node.guest_path)
        self._node = node

    def stat(self) -> Stat:
        return node_stat(self._node)

    def getdents(self):
        ino = node_stat(self._node).st_ino
        entries = [(b".", fdmod.DT_DIR), (b"..", fdmod.DT_DIR)] + list(self._node.entries)
        for i in range(self.pos, len(entries)):
            name, d_type = entries[i]
            yield i + 1, Dirent(ino + 1 + i, d_type, name)

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


def _open_host(node: Node, file_flags: int) -> HostFile:
    """A host file or directory opened read-only, beneath its mount's host
    root (vfs.hostfs: openat2 RESOLVE_IN_ROOT, or a no-symlink walk).
    EACCES for a host FIFO, socket or device (O_NONBLOCK only keeps a
    FIFO from blocking the open)."""
    oflags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    if file_flags & O_DIRECTORY:
        oflags |= os.O_DIRECTORY
    fd = fdmod.host_call(hostfs.open_beneath, node.mount.fs.host_root, node.host_path, oflags)
    st = os.fstat(fd)
    if not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode)):
        os.close(fd)
        raise SyscallError(errno.EACCES)
    return HostFile(fd, node.host_path, node.guest_path, file_flags, node.parent.ino, st)


def _open_mask(flags: int) -> int:
    """The MAY_* bits an open asks for (fs/open.c ACC_MODE, O_TRUNC writes)."""
    acc = flags & O_ACCMODE
    mask = MAY_READ if acc in (O_RDONLY, fdmod.O_RDWR) else 0
    if acc != O_RDONLY or flags & O_TRUNC:
        mask |= MAY_WRITE
    return mask


def may_exec(task, node: Node) -> None:
    """execve's permission: EACCES unless the caller may execute ``node``
    (root: any execute bit; others: their class's)."""
    if node.kind in (HOST, MEM):
        _perm.permission(task.process.creds, node.inode, MAY_EXEC)


def _wants_write(flags: int) -> bool:
    return (flags & O_ACCMODE) != O_RDONLY or bool(flags & O_TRUNC)


def _fs_of(node: Node):
    """The file system a HOST/MEM/MISSING node is on; EPERM for the sentry's own files."""
    if node.kind not in (HOST, MEM, MISSING) or node.mount is None:
        raise SyscallError(errno.EPERM)
    if node.mount.readonly:
        raise SyscallError(errno.EROFS)
    return node.mount.fs


def _writable_dir(node: Node) -> tuple[object, DirInode]:
    """(file system, writable DirInode) of directory ``node`` (copied up if
    needed). ENOENT for a removed directory (may_create's IS_DEADDIR)."""
    fs = _fs_of(node)
    if node.kind == MEM and node.inode.is_dir():
        if node.inode.nlink == 0:
            raise SyscallError(errno.ENOENT)
        return fs, node.inode
    return fs, fs.writable_dir(node.fs_names())


def _parent_dir(node: Node) -> tuple[object, DirInode]:
    """(file system, writable DirInode) of the directory holding ``node``."""
    fs = _fs_of(node)
    parent = node.parent
    if isinstance(parent, DirInode) and parent.fs is fs:
        if parent.nlink == 0:
            raise SyscallError(errno.ENOENT)  # a removed directory
        return fs, parent
    return fs, fs.writable_dir(node.fs_names()[:-1])


def writable_inode(node: Node, truncate: bool = False, task=None) -> Inode:
    """The in-memory inode of ``node``, copying a host file up first.

    EPERM for the sentry's own files (devices, /proc), which keep their
    modes. A /proc/self/fd/N link (FDLINK) changes the file open at N,
    an O_PATH one included (``task`` finds a host file again by path).
    """
    if node.kind == MEM:
        if node.mount is not None and node.mount.readonly:
            raise SyscallError(errno.EROFS)
        return node.inode
    if node.kind == FDLINK:
        return file_inode(node.file, task, allow_path=True)
    if node.kind != HOST:
        raise SyscallError(errno.EPERM)
    fs, d = _parent_dir(node)
    return fs.writable_child(d, node.path[-1], truncate)


def path_file_node(task, file: File) -> Node:
    """The Node an O_PATH descriptor was opened on (by its guest path, a
    symlink not followed): what *at calls with AT_EMPTY_PATH or "" act on."""
    return lookup(task, AT_FDCWD, file.guest_path or b"/", follow=False)


def file_inode(file: File, task=None, allow_path: bool = False) -> Inode:
    """The writable inode behind an open file (fchmod, fchown, futimens).

    A host file opened read-only is found again by its guest path and
    copied up if it is still the same file; EPERM for the sentry's own
    files, EBADF for an O_PATH descriptor unless ``allow_path`` (the
    AT_EMPTY_PATH and /proc/self/fd/N forms accept one).
    """
    if file.flags & O_PATH:
        if not allow_path or task is None:
            raise SyscallError(errno.EBADF)
        return writable_inode(path_file_node(task, file), task=task)
    inode = getattr(file, "inode", None)
    if isinstance(inode, Inode):
        return inode
    if isinstance(file, HostFile) and task is not None:
        node = lookup(task, AT_FDCWD, file.guest_path, follow=False)
        st = file._st
        if node.kind == HOST and (node.st.st_dev, node.st.st_ino) == (st.st_dev, st.st_ino):
            return writable_inode(node)
        if node.kind == MEM and (node.inode.dev, node.inode.ino) == (st.st_dev, st.st_ino):
            return node.inode
    raise SyscallError(errno.EPERM)


def _creds(task) -> tuple[int, int]:
    creds = task.process.creds
    return creds.euid, creds.egid


def open_path(task, dirfd: int, path: bytes, flags: int, mode: int = 0o666) -> File:
    """open(2)/openat(2) of a guest path: a new open file description.

    ``flags`` are open's; the File's ``flags`` keep the access mode and
    status flags plus O_LARGEFILE, as F_GETFL shows on x86-64. ``mode``
    (with the umask) is a created file's. A host file opened for writing
    or truncating is copied up first. EEXIST for O_CREAT|O_EXCL on an
    existing file, EISDIR for writing a directory or creating "name/",
    ENOTDIR for O_DIRECTORY on a non-directory, ELOOP for O_NOFOLLOW on a
    symlink, ENXIO for /dev/tty without a host terminal, EACCES for a host
    file that is not a regular file or directory (FIFOs, host devices),
    EOPNOTSUPP for O_TMPFILE.
    """
    if flags & __O_TMPFILE:
        return _open_tmpfile(task, dirfd, path, flags, mode)
    if flags & O_PATH:
        flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | fdmod.O_CLOEXEC
    creat = bool(flags & O_CREAT)
    follow = not (flags & O_NOFOLLOW) and not (creat and flags & O_EXCL)
    try:
        node = lookup(task, dirfd, path, follow=follow, allow_missing=creat)
    except SyscallError as e:
        if creat and e.errno == errno.ENOENT and path.endswith(b"/"):
            parent, last, _ = lookup_parent(task, dirfd, path)
            if child_of(task, parent, last).kind == MISSING:
                raise SyscallError(errno.EISDIR) from None
        raise
    file_flags = (flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE
    if flags & O_PATH:
        file_flags = flags & ~fdmod.O_CLOEXEC
    creds = task.process.creds
    if node.kind == MISSING:
        if not _perm.privileged(creds) and node.parent is not None:
            _perm.may_create(creds, node.parent)
        fs, d = _parent_dir(node)
        uid, gid = _creds(task)
        perm = mode & 0o7777 & ~task.process.umask
        if getattr(fs, "passthrough", False):  # a rw bind mount: on the host
            return fs.create_open(d, node.path[-1], perm, node.guest_path, flags, file_flags)
        inode = fs.create(d, node.path[-1], perm, uid, gid)
        return RegularFile(inode, file_flags, node.guest_path)
    if creat and flags & O_EXCL:
        raise SyscallError(errno.EEXIST)
    is_dir = node.is_dir()
    if creat and is_dir:
        raise SyscallError(errno.EISDIR)
    if flags & O_DIRECTORY and not is_dir:
        raise SyscallError(errno.ENOTDIR)
    if flags & O_PATH:
        return PathFile(file_flags, node.guest_path, lambda: node_stat(node),
                        host=node.host_path, is_directory=is_dir)
    if node.is_symlink():
        raise SyscallError(errno.ELOOP)
    if is_dir and ((flags & O_ACCMODE) != O_RDONLY or flags & O_TRUNC):
        raise SyscallError(errno.EISDIR)  # O_TRUNC asks for write access (fs/open.c)
    if not _perm.privileged(creds) and node.kind in (HOST, MEM):
        _perm.permission(creds, node.inode, _open_mask(flags))  # may_open
        if flags & fdmod.O_NOATIME and not _perm.is_owner(creds, node.inode):
            raise SyscallError(errno.EPERM)  # may_open: O_NOATIME is the owner's (LTP open02)
    if is_dir and node.kind in (HOST, MEM):
        file_flags |= O_DIRECTORY
    if node.kind == HOST:
        if _wants_write(flags) and _stat.S_ISREG(node.st.st_mode):
            fs = _fs_of(node)
            if getattr(fs, "passthrough", False):  # a rw bind mount: on the host
                return fs.open_existing(node.host_path, node.guest_path, flags, file_flags)
            inode = writable_inode(node, truncate=bool(flags & O_TRUNC))
            if flags & O_TRUNC:
                inode.truncate(0)
            return RegularFile(inode, file_flags, node.guest_path)
        return _open_host(node, file_flags)
    if node.kind == MEM:
        inode = node.inode
        if is_dir:
            return DirectoryFile(inode, file_flags, node.guest_path, node.parent.ino)
        if isinstance(inode, FifoInode):
            from kvmsentry.kernel.vfs.fifo import open_fifo
            return open_fifo(inode, file_flags, node.guest_path)
        if _stat.S_ISSOCK(inode.mode):
            raise SyscallError(errno.ENXIO)  # open(2) of a UNIX domain socket
        if not inode.is_reg():
            raise SyscallError(errno.EACCES)  # a copied-up FIFO or device node
        if flags & O_TRUNC:
            inode.truncate(0)
        return RegularFile(inode, file_flags, node.guest_path)
    if node.kind == DEVICE:
        return open_device(node.device, file_flags, node.guest_path)
    if node.kind == FDLINK:
        file = node.file
        if isinstance(file, HostFile) and _wants_write(flags):
            # Reopening a host file for writing copies it up, as by its path.
            return open_path(task, AT_FDCWD, file.guest_path, flags & ~(O_CREAT | O_EXCL))
        new = file.reopen(file_flags)
        if flags & O_TRUNC and isinstance(new, RegularFile):
            new.truncate(0)
        return new
    if node.kind == VDIR:
        return SyntheticDir(node, file_flags | O_DIRECTORY)
    if node.kind == PROCFILE:
        if _wants_write(flags):
            raise SyscallError(errno.EACCES)
        return RegularFile(RegularInode(_PROC_FS, 0o444, data=bytearray(node.target)),
                           file_flags, node.guest_path)
    raise SyscallError(errno.ENOENT)


# O_TMPFILE inodes that linkat may still give a name (Linux's I_LINKABLE:
# made without O_EXCL, not linked yet).
_LINKABLE: "weakref.WeakSet[Inode]" = weakref.WeakSet()


def _open_tmpfile(task, dirfd: int, path: bytes, flags: int, mode: int) -> File:
    """open(2) with O_TMPFILE: an unnamed regular file (nlink 0) on the file
    system of directory ``path``, which linkat(2) can name later unless
    O_EXCL was given (vfs_tmpfile).

    EINVAL without write access, with O_CREAT or without O_DIRECTORY (the
    O_TMPFILE mask); ENOTDIR, ENOENT from the lookup; EROFS on a read-only
    mount; EACCES without write and search permission on the directory;
    EOPNOTSUPP for the sentry's own directories (/proc, /dev) and rw bind
    mounts. /proc/self/fd shows "DIR/#INO (deleted)".
    """
    if (flags & (__O_TMPFILE | O_DIRECTORY | O_CREAT)) != (__O_TMPFILE | O_DIRECTORY) or (
            flags & O_ACCMODE) == O_RDONLY:
        raise SyscallError(errno.EINVAL)
    node = lookup(task, dirfd, path)
    if not node.is_dir():
        raise SyscallError(errno.ENOTDIR)
    if node.kind not in (HOST, MEM) or getattr(node.mount.fs, "passthrough", False):
        raise SyscallError(errno.EOPNOTSUPP)
    if node.mount.readonly:
        raise SyscallError(errno.EROFS)
    creds = task.process.creds
    if not _perm.privileged(creds):
        _perm.may_create(creds, node.inode)
    fs = node.mount.fs
    perm = mode & 0o7777 & ~task.process.umask
    d_mode, _, d_gid = _perm.ids_of(node.inode)
    gid = d_gid if d_mode & _stat.S_ISGID else creds.egid  # inode_init_owner
    inode = RegularInode(fs, perm, creds.euid, gid, seals=fs.file_seals)
    inode.nlink = 0
    if not flags & O_EXCL:
        _LINKABLE.add(inode)
    file_flags = (flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE  # F_GETFL keeps O_TMPFILE
    base = node.guest_path.rstrip(b"/")
    return RegularFile(inode, file_flags, b"%s/#%d (deleted)" % (base, inode.ino))


_PROC_FS = Tmpfs(0o555)  # holds the snapshots of sentry-made /proc files


def on_procfs(file: File) -> bool:
    """Whether ``file`` is a /proc file or directory the sentry made (procfs has
    no ->fsync: fsync(2) there is EINVAL)."""
    if isinstance(file, SyntheticDir):
        return file.guest_path == b"/proc" or file.guest_path.startswith(b"/proc/")
    return getattr(getattr(file, "inode", None), "fs", None) is _PROC_FS


def proc_mounts(task) -> bytes:
    """/proc/self/mounts (fstab format, as fs/proc_namespace.c show_vfsmnt)."""
    lines = []
    for m in mounts_of(task.process).mounts:
        fs = m.fs
        if fs.name == b"tmpfs":
            opts = b"rw,nosuid,nodev,relatime,mode=%o" % (m.root.mode & 0o7777)
        else:
            opts = b"ro,relatime" if m.readonly else b"rw,relatime"
        lines.append(b"%s %s %s %s 0 0\n" % (fs.name if m.source == b"none" else m.source,
                                             m.guest_path(), fs.name, opts))
    lines.append(b"proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n")
    return b"".join(lines)


def node_access(node: Node, mode: int, creds=None) -> None:
    """access(2)'s check of ``mode`` (R_OK 4, W_OK 2, X_OK 1) on a Node.

    For root (``creds`` None or uid 0): R_OK and W_OK pass on the overlay
    and tmpfs (a host file would be copied up to be written); R_OK/X_OK
    on a host file ask the host whether the sentry itself can, since that
    is what an open or exec will find; X_OK needs an execute bit (or a
    directory). Another uid is checked against the mode and owners
    (vfs.perm, generic_permission), and a host file must also be readable
    by the sentry. EACCES when not.
    """
    if mode == 0:
        return
    st = node_stat(node)
    if creds is not None and not _perm.privileged(creds):
        if not _perm.mode_permission(creds, st.st_mode, st.st_uid, st.st_gid, mode):
            raise SyscallError(errno.EACCES)
    if node.kind == HOST:
        host_mode = mode & (os.R_OK | os.X_OK)
        if host_mode and not os.access(node.host_path, host_mode):
            raise SyscallError(errno.EACCES)
        return
    if mode & 1 and not (_stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111):
        raise SyscallError(errno.EACCES)


# -- changing the tree (fs/namei.c) ----------------------------------------

RENAME_NOREPLACE = 1 << 0  # include/uapi/linux/fs.h
RENAME_EXCHANGE = 1 << 1
RENAME_WHITEOUT = 1 << 2


def _is_mount_point(task, node: Node) -> bool:
    return node.path is not None and mounts_of(task.process).is_mount_point(node.path)


def _new_name(task, dirfd: int, path: bytes, trailing_ok: bool = False):
    """Look up where a new name will go: (parent, last, the MISSING node).

    EEXIST when it exists (also for "/", "." and ".."), ENOENT for a
    trailing slash unless ``trailing_ok`` (mkdir accepts "name/"), and
    the lookup's ENOENT/ENOTDIR/ELOOP for the parent (namei.c
    filename_create).
    """
    parent, last, trailing = lookup_parent(task, dirfd, path)
    if last in (b"/", b".", b".."):
        raise SyscallError(errno.EEXIST)
    node = child_of(task, parent, last)
    if node.kind != MISSING:
        raise SyscallError(errno.EEXIST)
    if trailing and not trailing_ok:
        raise SyscallError(errno.ENOENT)
    return parent, last, node


def _may_create(task, parent: Node) -> None:
    creds = task.process.creds
    if not _perm.privileged(creds) and parent.kind in (HOST, MEM):
        _perm.may_create(creds, parent.inode)


def _may_delete(task, parent: Node, victim: Node) -> None:
    creds = task.process.creds
    if not _perm.privileged(creds) and parent.kind in (HOST, MEM) and victim.kind in (HOST, MEM):
        _perm.may_delete(creds, parent.inode, victim.inode)


def do_mkdir(task, dirfd: int, path: bytes, mode: int) -> None:
    """mkdir(2): EEXIST (also for "." , ".." and /), ENOENT, ENOTDIR."""
    parent, last, node = _new_name(task, dirfd, path, trailing_ok=True)
    _may_create(task, parent)
    fs, d = _parent_dir(node)
    uid, gid = _creds(task)
    fs.mkdir(d, last, mode & 0o1777 & ~task.process.umask, uid, gid)


def do_mknod(task, dirfd: int, path: bytes, mode: int, dev: int):
    """mknod(2) of a regular file (S_IFREG or 0), FIFO (opened as fifo(7)) or
    socket (metadata only: opening one is ENXIO); EPERM for devices, EINVAL
    for an unknown type. Returns the filesystem's mknod result for a FIFO
    or socket (the in-memory Inode, None for a host file), else None."""
    kind = mode & S_IFMT
    if kind not in (0, _stat.S_IFREG, _stat.S_IFIFO, _stat.S_IFSOCK, _stat.S_IFCHR,
                    _stat.S_IFBLK):
        raise SyscallError(errno.EINVAL)
    if kind in (_stat.S_IFCHR, _stat.S_IFBLK):
        raise SyscallError(errno.EPERM)
    parent, last, node = _new_name(task, dirfd, path)
    _may_create(task, parent)
    fs, d = _parent_dir(node)
    uid, gid = _creds(task)
    perm = mode & 0o7777 & ~task.process.umask
    if kind in (0, _stat.S_IFREG):
        fs.create(d, last, perm, uid, gid)
        return None
    return fs.mknod(d, last, kind | perm, 0, uid, gid)


def bind_socket_node(task, path: bytes):
    """bind(2) of an AF_UNIX socket to ``path`` (net/unix/af_unix.c unix_bind_bsd):
    a new socket inode, mode 0777 less the umask, as mknod(S_IFSOCK) makes.

    Returns what ``lookup_socket_node`` will find by that name: the
    in-memory Inode, or (st_dev, st_ino) of the host socket file made
    beneath a rw --mount. EADDRINUSE when the name exists, else mknod's
    errors (ENOENT, ENOTDIR, EACCES, EROFS).
    """
    try:
        inode = do_mknod(task, AT_FDCWD, path, _stat.S_IFSOCK | 0o777, 0)
    except SyscallError as e:
        if e.errno == errno.EEXIST:
            raise SyscallError(errno.EADDRINUSE) from None
        raise
    if inode is None:  # a rw host mount: the name is a host socket file
        st = lookup(task, AT_FDCWD, path, follow=False).st
        return (st.st_dev, st.st_ino)
    return inode


def lookup_socket_node(task, path: bytes):
    """The socket inode connect(2)/sendto(2) name by ``path`` (unix_find_bsd):
    an Inode, or (st_dev, st_ino) of a host socket file (see bind_socket_node).

    Follows symlinks; the lookup's errors (ENOENT, ENOTDIR, ELOOP),
    EACCES without write permission on the socket, ECONNREFUSED for a
    name that is not a socket or not one of the sentry's.
    """
    node = lookup(task, AT_FDCWD, path, follow=True)
    creds = task.process.creds
    if not _perm.privileged(creds) and node.kind in (HOST, MEM):
        _perm.permission(creds, node.inode, MAY_WRITE)
    if node.kind == HOST and _stat.S_ISSOCK(node.st.st_mode):
        return (node.st.st_dev, node.st.st_ino)  # a name bound beneath a rw --mount
    if node.kind != MEM or not _stat.S_ISSOCK(node.inode.mode):
        raise SyscallError(errno.ECONNREFUSED)
    return node.inode


def do_unlink(task, dirfd: int, path: bytes) -> None:
    """unlink(2): EISDIR for a directory, ENOENT, ENOTDIR ("file/")."""
    parent, last, trailing = lookup_parent(task, dirfd, path)
    if last in (b"/", b".", b".."):
        raise SyscallError(errno.EISDIR)
    node = child_of(task, parent, last)
    if trailing:
        if node.kind == MISSING:
            raise SyscallError(errno.ENOENT)
        raise SyscallError(errno.EISDIR if node.is_dir() else errno.ENOTDIR)
    if node.kind == MISSING:
        raise SyscallError(errno.ENOENT)
    _may_delete(task, parent, node)
    if node.is_dir():
        raise SyscallError(errno.EISDIR)
    fs, d = _parent_dir(node)
    fs.unlink(d, last)


def do_rmdir(task, dirfd: int, path: bytes) -> None:
    """rmdir(2): ENOTEMPTY (also for ".."), EINVAL for ".", EBUSY for / and
    mount points, ENOTDIR, ENOENT."""
    parent, last, _ = lookup_parent(task, dirfd, path)
    if last == b"..":
        raise SyscallError(errno.ENOTEMPTY)
    if last == b".":
        raise SyscallError(errno.EINVAL)
    if last == b"/":
        raise SyscallError(errno.EBUSY)
    node = child_of(task, parent, last)
    if node.kind == MISSING:
        raise SyscallError(errno.ENOENT)
    _may_delete(task, parent, node)
    if not node.is_dir():
        raise SyscallError(errno.ENOTDIR)
    if _is_mount_point(task, node):
        raise SyscallError(errno.EBUSY)
    fs, d = _parent_dir(node)
    fs.rmdir(d, last)


def _same_file(a: Node, b: Node) -> bool:
    if a.inode is b.inode:
        return True
    ia, ib = a.inode, b.inode
    return type(ia) is HostInode and type(ib) is HostInode and (ia.dev, ia.ino) == (ib.dev, ib.ino)


def do_rename(task, olddirfd: int, oldpath: bytes, newdirfd: int, newpath: bytes,
              flags: int = 0) -> None:
    """renameat2(2), in Linux's order of checks (do_renameat2, vfs_rename).

    EINVAL for unknown flags (RENAME_WHITEOUT too) or NOREPLACE with
    EXCHANGE, EXDEV between mounts, EBUSY for ".", "..", / or a mount
    point, ENOENT, EEXIST (NOREPLACE), ENOTDIR/EISDIR for mismatched
    kinds, EINVAL for a directory moved beneath itself, ENOTEMPTY.
    """
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or (
            flags & RENAME_NOREPLACE and flags & RENAME_EXCHANGE):
        raise SyscallError(errno.EINVAL)
    exchange = bool(flags & RENAME_EXCHANGE)
    oparent, olast, otrail = lookup_parent(task, olddirfd, oldpath)
    nparent, nlast, ntrail = lookup_parent(task, newdirfd, newpath)
    if oparent.mount is not nparent.mount:
        raise SyscallError(errno.EXDEV)
    if olast in (b"/", b".", b".."):
        raise SyscallError(errno.EBUSY)
    if nlast in (b"/", b".", b".."):
        raise SyscallError(errno.EEXIST if flags & RENAME_NOREPLACE else errno.EBUSY)
    old = child_of(task, oparent, olast)
    if old.kind == MISSING:
        raise SyscallError(errno.ENOENT)
    new = child_of(task, nparent, nlast)
    if flags & RENAME_NOREPLACE and new.kind != MISSING:
        raise SyscallError(errno.EEXIST)
    if exchange and new.kind == MISSING:
        raise SyscallError(errno.ENOENT)
    old_dir = old.is_dir()
    if not old_dir and (otrail or (not exchange and ntrail)):
        raise SyscallError(errno.ENOTDIR)
    if exchange and not new.is_dir() and ntrail:
        raise SyscallError(errno.ENOTDIR)
    if old.kind not in (HOST, MEM) or new.kind not in (HOST, MEM, MISSING):
        raise SyscallError(errno.EPERM)
    # A directory cannot go beneath itself (lock_rename's trap).
    if old.path == nparent.path[:len(old.path)]:
        raise SyscallError(errno.EINVAL)
    if new.kind != MISSING and new.path == oparent.path[:len(new.path)]:
        raise SyscallError(errno.EINVAL if exchange else errno.ENOTEMPTY)
    if new.kind != MISSING and _same_file(old, new):
        return
    if not _perm.privileged(task.process.creds):
        _may_delete(task, oparent, old)
        if new.kind == MISSING:
            _may_create(task, nparent)
        else:
            _may_delete(task, nparent, new)
        if old_dir and oparent.path != nparent.path and old.kind in (HOST, MEM):
            _perm.permission(task.process.creds, old.inode, MAY_WRITE)  # its ".." changes
    if new.kind != MISSING:
        if not exchange:
            if old_dir and not new.is_dir():
                raise SyscallError(errno.ENOTDIR)
            if not old_dir and new.is_dir():
                raise SyscallError(errno.EISDIR)
    if _is_mount_point(task, old) or (new.kind != MISSING and _is_mount_point(task, new)):
        raise SyscallError(errno.EBUSY)
    fs, od = _parent_dir(old)
    _, nd = _writable_dir(nparent)
    fs.rename(od, olast, nd, nlast, exchange)


def _link_open_file(task, file: File, newdirfd: int, newpath: bytes) -> None:
    """linkat of the in-memory file open as ``file`` (AT_EMPTY_PATH, or a
    followed /proc/self/fd/N): ENOENT once it has no name, unless it is an
    O_TMPFILE made without O_EXCL (I_LINKABLE); EXDEV onto another file
    system; EPERM for a directory."""
    inode = file.inode
    nparent, nlast, _ = _new_name(task, newdirfd, newpath)
    if nparent.kind not in (HOST, MEM) or nparent.mount is None or nparent.mount.fs is not inode.fs:
        raise SyscallError(errno.EXDEV)
    if inode.is_dir():
        raise SyscallError(errno.EPERM)
    creds = task.process.creds
    if not _perm.privileged(creds):
        _may_create(task, nparent)
        _perm.may_link(creds, inode)
    if inode.nlink == 0 and inode not in _LINKABLE:
        raise SyscallError(errno.ENOENT)
    fs, d = _writable_dir(nparent)
    fs.link(d, nlast, inode)
    _LINKABLE.discard(inode)


def do_link(task, olddirfd: int, oldpath: bytes, newdirfd: int, newpath: bytes,
            follow: bool, empty_path: bool = False) -> None:
    """linkat(2): ENOENT, EEXIST, EXDEV between mounts, EPERM for a directory.

    An open in-memory file (AT_EMPTY_PATH, /proc/self/fd/N) is linked by
    its inode, so an O_TMPFILE gets its name this way.
    """
    if empty_path and not oldpath:
        if olddirfd == AT_FDCWD:
            raise SyscallError(errno.ENOENT)
        file = task.fds.get(olddirfd)
        if isinstance(getattr(file, "inode", None), Inode):
            return _link_open_file(task, file, newdirfd, newpath)
        old = lookup(task, AT_FDCWD, file.guest_path or b"/", follow=False)
    else:
        old = lookup(task, olddirfd, oldpath, follow=follow)
        if old.kind == FDLINK and isinstance(getattr(old.file, "inode", None), Inode):
            return _link_open_file(task, old.file, newdirfd, newpath)
    nparent, nlast, _ = _new_name(task, newdirfd, newpath)
    if old.kind not in (HOST, MEM) or old.mount is not nparent.mount:
        raise SyscallError(errno.EXDEV)
    if old.is_dir():
        raise SyscallError(errno.EPERM)
    creds = task.process.creds
    if not _perm.privileged(creds):
        _may_create(task, nparent)
        _perm.may_link(creds, old.inode)
    inode = writable_inode(old)
    fs, d = _writable_dir(nparent)
    fs.link(d, nlast, inode)


def do_symlink(task, target: bytes, newdirfd: int, newpath: bytes) -> None:
    """symlinkat(2): ENOENT for an empty target, EEXIST, ENOENT for "name/"."""
    if not target:
        raise SyscallError(errno.ENOENT)
    parent, last, node = _new_name(task, newdirfd, newpath)
    _may_create(task, parent)
    fs, d = _parent_dir(node)
    uid, gid = _creds(task)
    fs.symlink(d, last, target, uid, gid)


def set_mode(inode: Inode, mode: int, creds=None) -> None:
    """chmod: the permission bits (07777) change, ctime := now.

    EOPNOTSUPP for a symlink (reached through an O_PATH descriptor), as
    Linux's chmod_common since 6.6.
    """
    if inode.is_symlink():
        raise SyscallError(errno.EOPNOTSUPP)
    if creds is not None:
        mode = _perm.may_chmod(creds, inode, mode)  # EPERM unless the owner
    inode.mode = (inode.mode & S_IFMT) | (mode & 0o7777)
    inode.changed()


def set_owner(inode: Inode, uid: int, gid: int, creds=None) -> None:
    """chown: -1 keeps an id; a non-directory loses set-user-ID, and
    set-group-ID when group-executable (notify_change's ATTR_KILL_S*ID).
    With ``creds``: EPERM as chown_ok/chgrp_ok (vfs.perm.may_chown)."""
    if creds is not None:
        _perm.may_chown(creds, inode, uid, gid)
    if uid != -1:
        inode.uid = uid
    if gid != -1:
        inode.gid = gid
    if not inode.is_dir():
        mode = inode.mode & ~_stat.S_ISUID
        if mode & _stat.S_IXGRP:
            mode &= ~_stat.S_ISGID
        inode.mode = mode
    inode.changed()


def set_times(inode: Inode, atime_ns: int | None, mtime_ns: int | None, creds=None,
              explicit: bool = False) -> None:
    """utimensat: each time in ns, or None to leave it; ctime := now.

    With ``creds``: an ``explicit`` time (not "now") needs the owner
    (EPERM); "now" also lets a writer (EACCES) (vfs.perm.may_set_times).
    """
    if creds is not None:
        _perm.may_set_times(creds, inode, explicit)
    if atime_ns is not None:
        inode.atime_ns = atime_ns
    if mtime_ns is not None:
        inode.mtime_ns = mtime_ns
    inode.changed()
