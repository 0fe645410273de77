"""tmpfs: a file system that lives in the sentry's memory (mm/shmem.c).

Starts as one empty root directory (mode 1777 for /tmp, as systemd mounts
it). Its size limit is reported as half the host's RAM, as tmpfs's
default, and no write is refused for space yet.
"""

from __future__ import annotations

import os

from kvmsentry.abi.structs import TMPFS_MAGIC
from kvmsentry.kernel.vfs.inode import F_SEAL_SEAL, DirInode, Filesystem, RegularInode


class Tmpfs(Filesystem):
    """An in-memory file system; ``root`` is its root directory."""

    magic = TMPFS_MAGIC
    name = b"tmpfs"
    file_seals = F_SEAL_SEAL  # shmem_get_inode: sealable, but sealed against seals

    def __init__(self, mode: int = 0o1777, uid: int = 0, gid: int = 0):
        super().__init__()
        self.root = DirInode(self, mode, uid, gid)

    def _used(self) -> tuple[int, int]:
        """(4 KiB pages, inodes) in use, by walking the tree."""
        pages = inodes = 0
        seen = set()
        stack = [self.root]
        while stack:
            d = stack.pop()
            inodes += 1
            for child in d.entries.values():
                if id(child) in seen:
                    continue
                seen.add(id(child))
                if isinstance(child, DirInode):
                    stack.append(child)
                else:
                    inodes += 1
                    if isinstance(child, RegularInode):
                        pages += (child.size + 4095) >> 12
        return pages, inodes

    def statfs(self) -> dict:
        try:
            phys_pages = os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            phys_pages = 1 << 20
        blocks = phys_pages // 2
        files = phys_pages // 2
        pages, inodes = self._used()
        return dict(f_type=self.magic, f_bsize=4096, f_blocks=blocks,
                    f_bfree=max(blocks - pages, 0), f_bavail=max(blocks - pages, 0),
                    f_files=files, f_ffree=max(files - inodes, 0), f_fsid=(0, 0),
                    f_namelen=255, f_frsize=4096, f_flags=os.ST_NOSUID | os.ST_NODEV)
