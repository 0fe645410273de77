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

import dataclasses
import os

from kvmsentry.kernel.vfs.inode import Filesystem
from kvmsentry.kernel.vfs.overlay import Overlay
from kvmsentry.kernel.vfs.tmpfs import Tmpfs


@dataclasses.dataclass(eq=False)
class Mount:
    """A file system attached at ``point`` (guest path components; () is /)."""

    fs: Filesystem
    point: tuple[bytes, ...]
    source: bytes = b"none"

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

    @classmethod
    def for_host_root(cls, host_root: str | bytes) -> "MountNamespace":
        """The default sandbox: an overlay over ``host_root``, a tmpfs on /tmp."""
        root = os.fsencode(host_root).rstrip(b"/") or b"/"
        ns = cls(Overlay(root))
        ns.mount(Tmpfs(0o1777), b"/tmp", b"tmpfs")
        ns.mount(Tmpfs(0o1777), b"/dev/shm", b"tmpfs")
        return ns

    def mount(self, fs: Filesystem, guest_path: bytes, source: bytes = b"none") -> Mount:
        point = tuple(c for c in guest_path.split(b"/") if c)
        if len(point) == 1 and self.root.root.lookup(point[0]) is None:
            # A host root without the directory gets one (in memory), so
            # that the mount point is listed in / as on Linux.
            self.root.fs.mkdir(self.root.root, point[0], 0o755, 0, 0)
        m = Mount(fs, point, source)
        self._by_depth.setdefault(len(point), {})[point] = m
        self.mounts.append(m)
        return m

    def mount_at(self, cur: list[bytes], name: bytes) -> Mount | None:
        """The mount whose point is ``cur`` + ``name``, if any."""
        points = self._by_depth.get(len(cur) + 1)
        if points is None:
            return None
        return points.get((*cur, name))

    def is_mount_point(self, names: list[bytes]) -> bool:
        points = self._by_depth.get(len(names))
        return bool(points) and tuple(names) in points
