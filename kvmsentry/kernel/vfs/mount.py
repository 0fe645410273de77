"""The mount table: which file system serves which guest path.

A ``MountNamespace`` (Linux's ``struct mnt_namespace``) is shared by every
process of one sandbox (fork copies the reference). Its root mount is the
overlay over the host root; ``/tmp`` and ``/dev/shm`` are tmpfs. Mount points are keyed
by their canonical guest path components, so the walk (files.py) checks
each step with one dict lookup per depth that has mounts. A mount shadows
whatever its parent file system has at that name; a host root without a
/tmp directory gets an in-memory one to mount on.
"""

from __future__ import annotations

import os

from kvmsentry.kernel.vfs.inode import Filesystem
from kvmsentry.kernel.vfs.overlay import Overlay
from kvmsentry.kernel.vfs.tmpfs import Tmpfs


class Bind:
    """A --mount HOST:GUEST[:ro|rw] option: ``host`` and ``guest`` paths.
    Immutable by convention; equal and hashed by its fields."""

    __slots__ = ("host", "guest", "rw")

    def __init__(self, host: str, guest: str, rw: bool = False):
        self.host = host
        self.guest = guest
        self.rw = rw

    def __eq__(self, other):
        if other.__class__ is not Bind:
            return NotImplemented
        return (self.host, self.guest, self.rw) == (other.host, other.guest, other.rw)

    def __hash__(self) -> int:
        return hash((self.host, self.guest, self.rw))

    def __repr__(self) -> str:
        return f"Bind(host={self.host!r}, guest={self.guest!r}, rw={self.rw})"


class Mount:
    """A file system attached at ``point`` (guest path components; () is /).
    ``readonly``: a ro bind mount, every change is EROFS."""

    __slots__ = ("fs", "point", "source", "readonly", "__weakref__")

    def __init__(self, fs: Filesystem, point: tuple[bytes, ...], source: bytes = b"none",
                 readonly: bool = False):
        self.fs = fs
        self.point = point
        self.source = source
        self.readonly = readonly

    def __repr__(self) -> str:
        return f"Mount(point={self.point!r}, source={self.source!r}, readonly={self.readonly})"

    @property
    def root(self):
        return self.fs.root

    def guest_path(self) -> bytes:
        return b"/" + b"/".join(self.point)


class MountNamespace:
    """The sandbox's mounts: ``root`` (a Mount at /) and the others by point."""

    def __init__(self, root_fs: Filesystem):
        self.root = Mount(root_fs, ())
        self._by_depth: dict[int, dict[tuple[bytes, ...], Mount]] = {}
        self.mounts: list[Mount] = [self.root]
        # The last name of every mount point: a walk asks mount_at only
        # for these (kept with _by_depth; mounts are only ever added).
        self.point_names: set[bytes] = set()

    @classmethod
    def for_host_root(cls, host_root: str | bytes, binds=()) -> "MountNamespace":
        """The default sandbox: an overlay over ``host_root``, a tmpfs on /tmp,
        and the ``binds`` (``Bind``s from --mount) in order."""
        root = os.fsencode(host_root).rstrip(b"/") or b"/"
        ns = cls(Overlay(root))
        ns.mount(Tmpfs(0o1777), b"/tmp", b"tmpfs")
        ns.mount(Tmpfs(0o1777), b"/dev/shm", b"tmpfs")
        for b in binds:
            ns.bind(b.host, b.guest, b.rw)
        return ns

    def bind(self, host: str | bytes, guest: str | bytes, rw: bool) -> Mount:
        """Bind the host directory ``host`` at ``guest``: read-only (every
        change EROFS) or read-write (changes go through to the host)."""
        from kvmsentry.kernel.vfs.hostbind import HostBind
        host = os.fsencode(os.path.realpath(host))
        fs = HostBind(host) if rw else Overlay(host)
        return self.mount(fs, os.fsencode(guest), host, readonly=not rw)

    def mount(self, fs: Filesystem, guest_path: bytes, source: bytes = b"none",
              readonly: bool = False) -> Mount:
        point = tuple(c for c in guest_path.split(b"/") if c)
        self._make_point(point)
        m = Mount(fs, point, source, readonly)
        self._by_depth.setdefault(len(point), {})[point] = m
        self.mounts.append(m)
        if point:
            self.point_names.add(point[-1])
        return m

    def _make_point(self, point: tuple[bytes, ...]) -> None:
        """Make the directories of a mount point missing from the root (in
        memory), so that it is listed in its parent as on Linux."""
        if point[:1] in ((b"proc",), (b"dev",)):
            return  # the sentry's own directories (files.py lists their mounts)
        if any(m.point and m.point == point[:len(m.point)] for m in self.mounts):
            return  # beneath another mount: shown by the walk only
        fs = self.root.fs
        d = self.root.root
        for k, name in enumerate(point):
            child = d.lookup(name)
            if child is None:
                d = fs.writable_dir(list(point[:k]))
                child = fs.mkdir(d, name, 0o755, 0, 0)
            elif not child.is_dir():
                return
            d = child

    def mount_at(self, cur: list[bytes], name: bytes) -> Mount | None:
        """The mount whose point is ``cur`` + ``name``, if any."""
        points = self._by_depth.get(len(cur) + 1)
        if points is None:
            return None
        return points.get((*cur, name))

    def is_mount_point(self, names: list[bytes]) -> bool:
        points = self._by_depth.get(len(names))
        return bool(points) and tuple(names) in points
