"""The sentry's virtual file system (issue 3; DESIGN.md "Files and isolation").

* ``inode``: in-memory inodes (regular files as a bytearray, directories
  as an ordered dict with stable getdents cookies, symlinks) and
  ``Filesystem``, the superblock with the directory operations.
* ``overlay``: the guest's root, a host directory read-only (``HostInode``)
  with in-memory copy-up on first change; nothing reaches the host.
* ``tmpfs``: an in-memory file system (/tmp).
* ``mount``: the mount table (``MountNamespace``) one sandbox shares.
* ``file``: open file descriptions of in-memory inodes.

Path resolution and the checks that depend on the path (".", "..",
trailing slashes, EXDEV between mounts) are namei's: kvmsentry.kernel.files.
"""
