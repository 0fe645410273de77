"""Process and thread syscalls of a single-process sandbox.

exit/exit_group end the task; the identity calls answer from the task's
Process; arch_prctl sets FS/GS; rt_sigaction and rt_sigprocmask record
what the program asks for (delivery comes with the processes issue).
Sources: exit(2), arch_prctl(2), set_tid_address(2), rt_sigaction(2),
sigprocmask(2), kernel/signal.c.
"""

from __future__ import annotations

import errno
import struct

from kvmsentry.kernel import signals
from kvmsentry.kernel.syscalls.table import SyscallError, error, syscall

ARCH_SET_GS = 0x1001
ARCH_SET_FS = 0x1002
ARCH_GET_FS = 0x1003
ARCH_GET_GS = 0x1004

SIG_BLOCK = 0
SIG_UNBLOCK = 1
SIG_SETMASK = 2
SIGKILL = 9
SIGSTOP = 19
NSIG = 64
_SIGSET_SIZE = 8
_KSIGACTION_SIZE = 32  # handler, flags, restorer, mask (arch/x86/include/uapi/asm/signal.h)
SIG_DFL = 0
SIG_IGN = 1
# Signals whose default action is to ignore them (sig_kernel_ignore):
# SIGCHLD, SIGCONT, SIGURG, SIGWINCH.
_KERNEL_IGNORE = frozenset({17, 18, 23, 28})


class TaskExit(Exception):
    """Raised by exit/exit_group: the task (or its group) ends with ``status``.

    ``status`` is the wait status byte pair as the dispatcher reports it:
    the exit code (0-255); ``group`` says exit_group.
    """

    def __init__(self, status: int, group: bool):
        super().__init__(status)
        self.status = status
        self.group = group


@syscall("exit")
def sys_exit(task, status: int) -> int:
    """Implements Linux syscall exit(2): ends the calling thread (the group, while it is the only one)."""
    raise TaskExit(status & 0xFF, group=False)


@syscall("exit_group")
def sys_exit_group(task, status: int) -> int:
    """Implements Linux syscall exit_group(2): ends every thread of the process."""
    raise TaskExit(status & 0xFF, group=True)


@syscall("getpid")
def sys_getpid(task) -> int:
    """Implements Linux syscall getpid(2): the sandbox pid (the first guest is 1)."""
    return task.process.pid


@syscall("getppid")
def sys_getppid(task) -> int:
    """Implements Linux syscall getppid(2): 0 for the sandbox's first process, as for init."""
    return task.process.ppid


@syscall("gettid")
def sys_gettid(task) -> int:
    """Implements Linux syscall gettid(2)."""
    return task.tid


@syscall("getpgrp")
def sys_getpgrp(task) -> int:
    """Implements Linux syscall getpgrp(2)."""
    return task.process.pgid


def _process_of(task, pid: int):
    pid = pid & 0xFFFFFFFF
    if pid == 0 or pid == task.process.pid:
        return task.process
    process = task.kernel.processes.get(pid) if task.kernel is not None else None
    if process is None:
        raise SyscallError(errno.ESRCH)
    return process


@syscall("getpgid")
def sys_getpgid(task, pid: int) -> int:
    """Implements Linux syscall getpgid(2). ESRCH for a pid the sandbox does not have."""
    return _process_of(task, pid).pgid


@syscall("getsid")
def sys_getsid(task, pid: int) -> int:
    """Implements Linux syscall getsid(2). ESRCH for a pid the sandbox does not have."""
    return _process_of(task, pid).sid


@syscall("set_tid_address")
def sys_set_tid_address(task, tidptr: int) -> int:
    """Implements Linux syscall set_tid_address(2): records clear_child_tid, returns the tid."""
    task.clear_child_tid = tidptr
    return task.tid


@syscall("set_robust_list")
def sys_set_robust_list(task, head: int, length: int) -> int:
    """Implements Linux syscall set_robust_list(2). EINVAL unless len is 24 (struct robust_list_head)."""
    if length != 24:
        raise SyscallError(errno.EINVAL)
    task.robust_list = (head, length)
    return 0


@syscall("get_robust_list")
def sys_get_robust_list(task, pid: int, head_ptr: int, len_ptr: int) -> int:
    """Implements Linux syscall get_robust_list(2) for the calling thread."""
    if pid not in (0, task.tid):
        raise SyscallError(errno.ESRCH)
    task.mm.copy_out(head_ptr, struct.pack("<Q", task.robust_list[0]))
    task.mm.copy_out(len_ptr, struct.pack("<Q", 24))
    return 0


error("rseq", errno.ENOSYS, "glibc falls back when restartable sequences are absent")


@syscall("arch_prctl", support="partial", note="ARCH_SET_FS/GET_FS/SET_GS/GET_GS; others EINVAL")
def sys_arch_prctl(task, code: int, addr: int) -> int:
    """Implements Linux syscall arch_prctl(2).

    EPERM for a non-canonical base (as arch/x86/kernel/process_64.c),
    EINVAL for other codes (CET, CPUID faulting, AMX permission).
    """
    ctx = task.context
    if code in (ARCH_SET_FS, ARCH_SET_GS):
        if addr >= task.mm.task_size:
            raise SyscallError(errno.EPERM)
        if code == ARCH_SET_FS:
            ctx.set_fs_base(addr)
        else:
            ctx.set_gs_base(addr)
        return 0
    if code == ARCH_GET_FS:
        task.mm.copy_out(addr, struct.pack("<Q", ctx.fs_base()))
        return 0
    if code == ARCH_GET_GS:
        task.mm.copy_out(addr, struct.pack("<Q", ctx.gs_base()))
        return 0
    raise SyscallError(errno.EINVAL)


def _check_signal(sig: int) -> None:
    if not 1 <= sig <= NSIG:
        raise SyscallError(errno.EINVAL)


@syscall("rt_sigaction", support="partial", note="actions are recorded; delivery comes with the processes issue")
def sys_rt_sigaction(task, sig: int, act: int, oldact: int, sigsetsize: int) -> int:
    """Implements Linux syscall rt_sigaction(2) (kernel struct sigaction, 32 bytes).

    EINVAL for a bad signal number, sigsetsize other than 8, or a handler
    for SIGKILL/SIGSTOP. An action that ignores the signal (SIG_IGN, or
    SIG_DFL of SIGCHLD, SIGCONT, SIGURG, SIGWINCH) discards its pending
    instances (kernel/signal.c do_sigaction).
    """
    if sigsetsize != _SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    _check_signal(sig)
    actions = task.process.sigactions
    new = task.mm.copy_in(act, _KSIGACTION_SIZE) if act else None
    if new is not None and sig in (SIGKILL, SIGSTOP):
        raise SyscallError(errno.EINVAL)
    if oldact:
        task.mm.copy_out(oldact, actions.get(sig, bytes(_KSIGACTION_SIZE)))
    if new is not None:
        actions[sig] = new
        handler = int.from_bytes(new[:8], "little")
        if handler == SIG_IGN or (handler == SIG_DFL and sig in _KERNEL_IGNORE):
            _flush_pending(task.process, sig)
    return 0


def _flush_pending(process, sig: int) -> None:
    """do_sigaction: an action that ignores ``sig`` discards its pending
    instances, the process's and every thread's (flush_sigqueue_mask)."""
    bit = 1 << (sig - 1)
    for holder in [process] + list(process.tasks):
        while holder.pending & bit:
            signals.dequeue_signal(holder, sig)


@syscall("rt_sigprocmask")
def sys_rt_sigprocmask(task, how: int, set_: int, oldset: int, sigsetsize: int) -> int:
    """Implements Linux syscall rt_sigprocmask(2). EINVAL for a bad how or sigsetsize != 8."""
    if sigsetsize != _SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    old = task.sigmask
    if set_:
        (mask,) = struct.unpack("<Q", task.mm.copy_in(set_, 8))
        if how == SIG_BLOCK:
            new = old | mask
        elif how == SIG_UNBLOCK:
            new = old & ~mask
        elif how == SIG_SETMASK:
            new = mask
        else:
            raise SyscallError(errno.EINVAL)
        task.sigmask = new & ~signals.UNBLOCKABLE & ((1 << NSIG) - 1)
    if oldset:
        task.mm.copy_out(oldset, struct.pack("<Q", old))
    return 0


@syscall("sigaltstack", support="partial", note="recorded; used when signal delivery lands")
def sys_sigaltstack(task, ss: int, old_ss: int) -> int:
    """Implements Linux syscall sigaltstack(2) (stack_t: sp, flags, size; 24 bytes).

    The old stack reports SS_ONSTACK while the caller runs on it, and it
    cannot be changed then (EPERM), as kernel/signal.c do_sigaltstack.
    """
    current = task.altstack
    rsp = task.context.user_rsp if task.context is not None else 0
    on_stack = bool(current[2]) and current[0] < rsp <= current[0] + current[2]
    if old_ss:
        flags = 1 if on_stack else current[1]  # SS_ONSTACK
        task.mm.copy_out(old_ss, struct.pack("<QiiQ", current[0], flags, 0, current[2]))
    if ss:
        sp, flags, _, size = struct.unpack("<QiiQ", task.mm.copy_in(ss, 24))
        if on_stack:
            raise SyscallError(errno.EPERM)
        if flags & ~(2 | (1 << 31)):
            raise SyscallError(errno.EINVAL)
        if not flags & 2 and size < 2048:
            raise SyscallError(errno.ENOMEM)
        task.altstack = (sp, flags, size)
    return 0


PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_GET_NAME = 16
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
TASK_COMM_LEN = 16


@syscall("prctl", support="partial",
         note="NAME, PDEATHSIG, DUMPABLE, NO_NEW_PRIVS; other options EINVAL")
def sys_prctl(task, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    """Implements Linux syscall prctl(2) for the options listed in the table note.

    EINVAL for other options and bad arguments (kernel/sys.c).
    """
    process = task.process
    if option == PR_SET_NAME:
        name = task.mm.copy_in(arg2, TASK_COMM_LEN)
        task.comm = name.split(b"\0", 1)[0][:TASK_COMM_LEN - 1]
        return 0
    if option == PR_GET_NAME:
        comm = task.comm or process.exe.rsplit("/", 1)[-1].encode()[:TASK_COMM_LEN - 1]
        task.mm.copy_out(arg2, comm.ljust(TASK_COMM_LEN, b"\0"))
        return 0
    if option == PR_SET_PDEATHSIG:
        if arg2 > NSIG:
            raise SyscallError(errno.EINVAL)
        task.pdeath_signal = arg2
        return 0
    if option == PR_GET_PDEATHSIG:
        task.mm.copy_out(arg2, struct.pack("<i", task.pdeath_signal))
        return 0
    if option == PR_GET_DUMPABLE:
        return process.dumpable
    if option == PR_SET_DUMPABLE:
        if arg2 not in (0, 1):
            raise SyscallError(errno.EINVAL)
        process.dumpable = arg2
        return 0
    if option == PR_SET_NO_NEW_PRIVS:
        if arg2 != 1 or arg3 or arg4 or arg5:
            raise SyscallError(errno.EINVAL)
        task.no_new_privs = True
        return 0
    if option == PR_GET_NO_NEW_PRIVS:
        if arg2 or arg3 or arg4 or arg5:
            raise SyscallError(errno.EINVAL)
        return int(task.no_new_privs)
    raise SyscallError(errno.EINVAL)
