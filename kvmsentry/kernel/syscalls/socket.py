"""Sockets: not there yet (their own issue). What exists answers as Linux does
for file descriptors that are not sockets, which is every fd here."""

from __future__ import annotations

import errno

from kvmsentry.kernel.files import to_int
from kvmsentry.kernel.syscalls.table import SyscallError, syscall


def _not_a_socket(task, fd: int) -> int:
    task.fds.get(to_int(fd))  # EBADF first, as sockfd_lookup
    raise SyscallError(errno.ENOTSOCK)


@syscall("getpeername", support="partial", note="no sockets yet: ENOTSOCK (or EBADF)")
def sys_getpeername(task, fd: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall getpeername(2) for non-sockets: EBADF or ENOTSOCK.

    Shells call it on fd 0 to see whether they run under a network daemon.
    """
    return _not_a_socket(task, fd)


@syscall("getsockname", support="partial", note="no sockets yet: ENOTSOCK (or EBADF)")
def sys_getsockname(task, fd: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall getsockname(2) for non-sockets: EBADF or ENOTSOCK."""
    return _not_a_socket(task, fd)


@syscall("getsockopt", support="partial", note="no sockets yet: ENOTSOCK (or EBADF)")
def sys_getsockopt(task, fd: int, level: int, optname: int, optval: int, optlen: int) -> int:
    """Implements Linux syscall getsockopt(2) for non-sockets: EBADF or ENOTSOCK."""
    return _not_a_socket(task, fd)


AF_UNIX = 1


@syscall("socket", support="partial",
         note="no sockets yet: EAFNOSUPPORT (quiet for AF_UNIX, which glibc probes for nscd)")
def sys_socket(task, family: int, type_: int, protocol: int) -> int:
    """Implements Linux syscall socket(2) as "address family not supported".

    glibc asks for an AF_UNIX socket to reach nscd on every user lookup and
    falls back quietly when it cannot; other families are named once on
    stderr, since a program that wants the network will not work yet.
    """
    if family != AF_UNIX:
        task.kernel.note_once(f"socket-{family}", f"sockets are not supported yet "
                                                  f"(socket family {family}: EAFNOSUPPORT)")
    raise SyscallError(errno.EAFNOSUPPORT)
