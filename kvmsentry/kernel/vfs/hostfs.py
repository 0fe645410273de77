"""Opening host files beneath a host root the guest must not leave.

namei (kernel/files.py) resolves every guest path itself, symlinks
included, so the host paths it hands the VFS are ``<root>/<names>`` made
of entries it looked up one at a time. Between that lookup and the open,
another host process could still swap a directory for a symlink out of
the root. ``open_beneath`` closes that window the way the host allows:

* openat2(2) (Linux 5.6+) from an O_PATH fd of the root with
  RESOLVE_IN_ROOT (".." and absolute symlinks stop at the root) and
  RESOLVE_NO_MAGICLINKS (no /proc/self/fd-style jumps), one syscall, as
  cheap as the plain open it replaces;
* else a walk one component at a time: each directory opened O_PATH |
  O_NOFOLLOW | O_DIRECTORY relative to the previous one, the last
  component opened O_NOFOLLOW, so no symlink is followed at all.

Errors are the host's OSError (the caller's ``host_call`` turns them into
the guest's errno); a path outside the root is EXDEV.
"""

from __future__ import annotations

import errno
import os

_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

_root_fds: dict[bytes, int] = {}  # host root -> an O_PATH fd of it, kept open
_have_openat2: list[bool] = []    # [] until probed, then [True] or [False]
_hows: dict = {}                  # (flags, mode) -> struct open_how *


def _root_fd(root: bytes) -> int:
    fd = _root_fds.get(root)
    if fd is None:
        fd = _root_fds[root] = os.open(root, _PATH_FLAGS)
    return fd


def relative(root: bytes, host_path: bytes) -> bytes:
    """``host_path`` relative to ``root`` (b"." for the root); EXDEV outside it."""
    root = root.rstrip(b"/") or b"/"
    if host_path == root:
        return b"."
    prefix = root if root == b"/" else root + b"/"
    if not host_path.startswith(prefix):
        raise OSError(errno.EXDEV, "not beneath the root", host_path)
    return host_path[len(prefix):].strip(b"/") or b"."


def _how(flags: int, mode: int):
    """The struct open_how for ``flags``/``mode`` (made once, then reused)."""
    key = (flags, mode)
    how = _hows.get(key)
    if how is None:
        from kvmsentry.vm._kvm import ffi, lib
        how = ffi.new("struct open_how *")
        how.flags = flags | os.O_CLOEXEC
        creating = flags & os.O_CREAT or (flags & os.O_TMPFILE) == os.O_TMPFILE
        how.mode = mode if creating else 0  # openat2 refuses a mode otherwise (EINVAL)
        how.resolve = lib.RESOLVE_IN_ROOT | lib.RESOLVE_NO_MAGICLINKS
        if len(_hows) < 64:
            _hows[key] = how
    return how


def _openat2(dirfd: int, rel: bytes, flags: int, mode: int) -> int | None:
    """openat2 beneath ``dirfd``; None when the host has no openat2."""
    if _have_openat2 == [False]:
        return None
    from kvmsentry.vm._kvm import ffi, lib
    fd = lib.kvmsentry_openat2(dirfd, rel, _how(flags, mode))
    if fd < 0:
        err = ffi.errno
        if err == errno.ENOSYS and not _have_openat2:
            _have_openat2.append(False)
            return None
        raise OSError(err, os.strerror(err), rel)
    if not _have_openat2:
        _have_openat2.append(True)
    return fd


def _walk_open(dirfd: int, rel: bytes, flags: int, mode: int) -> int:
    """The fallback: one component at a time, never following a symlink."""
    names = [n for n in rel.split(b"/") if n and n != b"."]
    if not names:
        return os.open(b".", flags | os.O_CLOEXEC, mode, dir_fd=dirfd)
    fds = []
    try:
        cur = dirfd
        for name in names[:-1]:
            if name == b"..":
                raise OSError(errno.EXDEV, "'..' in a host path", rel)
            cur = os.open(name, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=cur)
            fds.append(cur)
        return os.open(names[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=cur)
    finally:
        for fd in fds:
            os.close(fd)


def open_beneath(root: bytes, host_path: bytes, flags: int, mode: int = 0o666) -> int:
    """A host fd of ``host_path`` (absolute, beneath ``root``), opened with
    ``flags`` (O_CLOEXEC added) without leaving ``root``.

    The last component is never followed when it is a symlink (O_NOFOLLOW
    is the callers' and the walk's): ELOOP. OSError otherwise, EXDEV for
    a path outside the root.
    """
    rel = relative(root, host_path)
    dirfd = _root_fd(root)
    fd = _openat2(dirfd, rel, flags, mode)
    if fd is None:
        fd = _walk_open(dirfd, rel, flags, mode)
    return fd


def use_openat2(enabled: bool) -> None:
    """Force the fallback walk (False) or the openat2 probe (True): for tests."""
    _have_openat2.clear()
    if not enabled:
        _have_openat2.append(False)
