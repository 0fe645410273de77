"""The syscall table: Linux x86-64 syscall numbers to handlers, as data.

Every number in the kernel's arch/x86/entry/syscalls/syscall_64.tbl has an
entry (``kvmsentry.abi.syscall_64.SYSCALLS``). Handlers register with the
``@syscall("name")`` decorator, which looks the number up by name, so a
misspelt name fails at import. A number with no handler returns ENOSYS and
is reported once per name (the dispatcher does that).

A handler is ``def sys_<name>(task, a0, a1, ...) -> int``: it receives the
raw argument registers (rdi, rsi, rdx, r10, r8, r9) as unsigned 64-bit
ints, only as many as it declares, and returns the non-negative result.
Guest-visible errors are raised as ``SyscallError(errno.EBADF)``; only the
dispatcher turns them into ``-errno`` in rax (STYLE.md, three error
channels). A handler that must block or that changes the task's registers
(execve, rt_sigreturn) says so through the task, not through its result.
"""

from __future__ import annotations

import dataclasses
import errno as _errno
from typing import Callable

from kvmsentry.abi.syscall_64 import NUMBERS, SYSCALLS

SUPPORTED = "supported"
PARTIAL = "partial"
ERROR = "error"
UNIMPLEMENTED = "unimplemented"


class SyscallError(Exception):
    """A guest-visible syscall failure: the dispatcher returns -errno.

    ``errno`` is a Linux errno value (use the names in :mod:`errno`; on
    x86-64 Linux they are the same numbers as the host's).
    """

    def __init__(self, errno: int, message: str = ""):
        super().__init__(errno, message or _errno.errorcode.get(errno, str(errno)))
        self.errno = errno


@dataclasses.dataclass(slots=True)
class SyscallEntry:
    """One row of the table: the Linux number, name, handler and support level."""

    number: int
    name: str
    handler: Callable[..., int] | None = None
    support: str = UNIMPLEMENTED
    note: str = ""
    nargs: int = 0
    errno: int = _errno.ENOSYS


TABLE: list[SyscallEntry] = [
    SyscallEntry(number=nr, name=name) for nr, name in sorted(SYSCALLS.items())
]
_BY_NUMBER: dict[int, SyscallEntry] = {e.number: e for e in TABLE}
# The rows indexed by number, None where x86-64 has no call (335-423): the
# dispatcher's table, ``ROWS[nr] if nr < len(ROWS)``. The rows themselves
# are shared with TABLE, so a handler registered later is seen here too.
ROWS: list[SyscallEntry | None] = [_BY_NUMBER.get(nr) for nr in range(max(_BY_NUMBER) + 1)]


def entry(number: int) -> SyscallEntry | None:
    """The table row for syscall ``number``, or None for a number Linux lacks."""
    return _BY_NUMBER.get(number)


def syscall(name: str, support: str = SUPPORTED, note: str = ""):
    """Register the decorated function as the handler of syscall ``name``.

    Raises KeyError at import when ``name`` is not an x86-64 syscall in
    syscall_64.tbl. ``support`` is ``supported`` or ``partial`` (then say
    what is missing in ``note``).
    """
    number = NUMBERS[name]

    def register(handler):
        row = _BY_NUMBER[number]
        if row.handler is not None:
            raise ValueError(f"syscall {name} registered twice")
        code = getattr(handler, "__wrapped__", handler).__code__
        row.handler = handler
        row.support = support
        row.note = note
        row.nargs = code.co_argcount - 1  # the arguments after ``task``
        return handler

    return register


def error(name: str, errno: int, note: str = "") -> None:
    """Declare that syscall ``name`` always fails with ``errno``, on purpose.

    Used for calls a sandbox refuses (EPERM) or that libc probes and falls
    back from (rseq, clone3: ENOSYS). Such calls are not reported as
    unsupported on stderr.
    """
    number = NUMBERS[name]
    row = _BY_NUMBER[number]
    if row.handler is not None:
        raise ValueError(f"syscall {name} registered twice")

    def refuse(task):
        raise SyscallError(errno)

    row.handler = refuse
    row.support = ERROR
    row.note = note
    row.errno = errno
    row.nargs = 0
