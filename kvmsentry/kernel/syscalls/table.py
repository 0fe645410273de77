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

The handler modules are imported on a guest's first call of one of their
syscalls, not at start (a program uses a few of the 18): ``MODULES`` names
the syscalls each module registers, and until a module is imported each of
its rows holds a ``LazyHandler``, which imports it and passes the call on
to the handler it registered. A module registering a syscall that
``MODULES`` does not give it raises ValueError at import, and
tests/unit/test_syscall_table.py checks ``MODULES`` against the modules
themselves. ``load_all()`` imports every module (``kvmsentry syscalls``).
A module's import on a first call runs under the BKL, as every dispatch
does (Kernel.syscall, Kernel.dispatch): no other task can reach one of
its rows half-registered.
"""

from __future__ import annotations

import errno as _errno
import sys

from kvmsentry.abi.syscall_64 import NUMBERS, SYSCALLS

SUPPORTED = "supported"
PARTIAL = "partial"
ERROR = "error"
UNIMPLEMENTED = "unimplemented"

_PACKAGE = "kvmsentry.kernel.syscalls."

# The syscalls each handler module (kvmsentry.kernel.syscalls.<key>)
# registers, named as in syscall_64.tbl: what a first call imports.
MODULES: dict[str, str] = {
    "creds": "setuid setgid setreuid setregid setresuid setresgid capget capset setgroups",
    "epoll": "epoll_create epoll_wait epoll_ctl epoll_pwait epoll_create1 epoll_pwait2",
    "eventfd": "eventfd eventfd2",
    "fs": "read write open close stat fstat lstat lseek ioctl pread64 pwrite64 readv writev "
          "access dup dup2 sendfile fcntl fsync fdatasync truncate ftruncate getcwd chdir "
          "fchdir rename mkdir rmdir creat link unlink symlink readlink chmod fchmod chown "
          "fchown lchown umask utime mknod statfs fstatfs sync getdents64 utimes openat "
          "mkdirat mknodat fchownat futimesat newfstatat unlinkat renameat linkat symlinkat "
          "readlinkat fchmodat faccessat utimensat fallocate dup3 preadv pwritev renameat2 "
          "preadv2 pwritev2 statx close_range faccessat2 readahead sync_file_range",
    "futex": "futex futex_waitv",
    "info": "sched_yield nanosleep uname gettimeofday getrlimit sysinfo getuid getgid geteuid "
            "getegid getgroups getresuid getresgid setrlimit time sched_getaffinity "
            "clock_gettime clock_getres clock_nanosleep prlimit64 getcpu getrandom personality",
    "mm": "mmap mprotect munmap brk mremap msync madvise mlock munlock fadvise64 mlock2 mlockall "
          "munlockall mincore get_mempolicy set_mempolicy",
    "pipe": "pipe pipe2",
    "poll": "poll select pselect6 ppoll",
    "process": "rt_sigaction rt_sigprocmask getpid exit getppid getpgrp getpgid getsid "
               "sigaltstack prctl arch_prctl gettid set_tid_address exit_group "
               "set_robust_list get_robust_list rseq",
    "signal": "rt_sigreturn pause getitimer alarm setitimer rt_sigpending rt_sigtimedwait "
              "rt_sigsuspend",
    "socket": "socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen "
              "getsockname getpeername socketpair setsockopt getsockopt accept4 recvmmsg "
              "sendmmsg",
    "signalfd": "signalfd signalfd4",
    "splice": "splice tee vmsplice syncfs",
    "tasks": "clone fork vfork execve wait4 kill setpgid setsid rt_sigqueueinfo tkill tgkill "
             "waitid execveat clone3 rt_tgsigqueueinfo",
    "timerfd": "timerfd_create timerfd_settime timerfd_gettime",
    "timers": "getrusage times getpriority setpriority sched_setparam sched_getparam "
              "sched_setscheduler sched_getscheduler sched_get_priority_max "
              "sched_get_priority_min sched_setaffinity timer_create timer_settime "
              "timer_gettime timer_getoverrun timer_delete",
    "vfs_extra": "flock memfd_create copy_file_range",
    "xattr": "setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr "
             "flistxattr removexattr lremovexattr fremovexattr",
}


class SyscallError(Exception):
    """A guest-visible syscall failure: the dispatcher returns -errno.

    ``errno`` is a Linux errno value (use the names in :mod:`errno`; on
    x86-64 Linux they are the same numbers as the host's).
    """

    def __init__(self, errno: int, message: str = ""):
        super().__init__(errno, message or _errno.errorcode.get(errno, str(errno)))
        self.errno = errno


class SyscallEntry:
    """One row of the table: the Linux number, name, handler and support level.

    ``nargs`` is how many argument registers the handler takes (6 for a
    ``LazyHandler``), ``errno`` the error of a call declared with
    ``error``, ``module`` the handler module that registers it (from
    ``MODULES``; "" for a syscall no module handles).
    """

    __slots__ = ("number", "name", "handler", "support", "note", "nargs", "errno", "module")

    def __init__(self, number: int, name: str, handler=None, support: str = UNIMPLEMENTED,
                 note: str = "", nargs: int = 0, errno: int = _errno.ENOSYS, module: str = ""):
        self.number = number
        self.name = name
        self.handler = handler
        self.support = support
        self.note = note
        self.nargs = nargs
        self.errno = errno
        self.module = module

    def __repr__(self) -> str:
        return (f"SyscallEntry(number={self.number}, name={self.name!r}, "
                f"handler={self.handler!r}, support={self.support!r}, note={self.note!r}, "
                f"nargs={self.nargs}, errno={self.errno}, module={self.module!r})")


class LazyHandler:
    """A row's handler until its module is imported: a call imports the
    module, which registers the real handler in the same row, and passes
    the call on. Takes all six argument registers (the row's ``nargs`` is
    6 until then)."""

    __slots__ = ("row",)

    def __init__(self, row: SyscallEntry):
        self.row = row

    def __call__(self, task, *args) -> int:
        row = self.row
        __import__(row.module)  # not importlib.import_module: -X importtime shows this one
        if row.handler is self:  # cannot happen while _claim holds MODULES to the modules
            raise RuntimeError(f"{row.module} did not register syscall {row.name}")
        return row.handler(task, *args[:row.nargs])

    def __repr__(self) -> str:
        return f"<LazyHandler of {self.row.name} from {self.row.module}>"


TABLE: list[SyscallEntry] = [
    SyscallEntry(number=nr, name=name) for nr, name in sorted(SYSCALLS.items())
]
_BY_NUMBER: dict[int, SyscallEntry] = {e.number: e for e in TABLE}
# The rows indexed by number, None where x86-64 has no call (335-423): the
# dispatcher's table, ``ROWS[nr] if nr < len(ROWS)``. The rows themselves
# are shared with TABLE, so a handler registered later is seen here too.
ROWS: list[SyscallEntry | None] = [_BY_NUMBER.get(nr) for nr in range(max(_BY_NUMBER) + 1)]


def _lazy_rows() -> None:
    for module, names in MODULES.items():
        for name in names.split():
            row = _BY_NUMBER[NUMBERS[name]]
            row.module = _PACKAGE + module
            row.handler = LazyHandler(row)
            row.nargs = 6


_lazy_rows()


def load_all() -> None:
    """Import every handler module: afterwards no row holds a LazyHandler,
    and every support level and note is known."""
    for module in MODULES:
        __import__(_PACKAGE + module)


def entry(number: int) -> SyscallEntry | None:
    """The table row for syscall ``number``, or None for a number Linux lacks."""
    return _BY_NUMBER.get(number)


def _claim(row: SyscallEntry, module: str) -> None:
    """Check that ``module`` may register ``row``'s handler: ValueError
    when the row has its handler already, or MODULES gives it to another
    module (or to none)."""
    if row.handler is not None and not isinstance(row.handler, LazyHandler):
        raise ValueError(f"syscall {row.name} registered twice")
    if module != row.module:
        raise ValueError(f"syscall {row.name} registered by {module}, but "
                         f"kvmsentry.kernel.syscalls.table.MODULES gives it to "
                         f"{row.module or 'no module'}")


def syscall(name: str, support: str = SUPPORTED, note: str = ""):
    """Register the decorated function as the handler of syscall ``name``.

    Raises KeyError at import when ``name`` is not an x86-64 syscall in
    syscall_64.tbl, ValueError when it is registered twice or by a module
    MODULES does not give it to. ``support`` is ``supported`` or
    ``partial`` (then say what is missing in ``note``).
    """
    number = NUMBERS[name]

    def register(handler):
        row = _BY_NUMBER[number]
        _claim(row, handler.__module__)
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
    unsupported on stderr. Called at the top level of the module that
    MODULES gives ``name`` to (else ValueError, as ``syscall``).
    """
    number = NUMBERS[name]
    row = _BY_NUMBER[number]
    _claim(row, sys._getframe(1).f_globals.get("__name__", ""))

    def refuse(task):
        raise SyscallError(errno)

    row.handler = refuse
    row.support = ERROR
    row.note = note
    row.errno = errno
    row.nargs = 0
