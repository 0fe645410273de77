"""Tasks and processes: the kernel state one guest thread runs with.

A ``Task`` is one guest thread (Linux's task_struct): its tid, the
``Process`` (thread group) it belongs to, the address space ``mm`` and the
file-descriptor table ``fds``. Syscall handlers receive the calling task
as their first argument and reach everything through it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kvmsentry.kernel.fd import FdTable
    from kvmsentry.kernel.mm import MemoryManager


# Capabilities (include/uapi/linux/capability.h): bit numbers, and every
# capability of Linux 6.1 (CAP_LAST_CAP 40).
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_SYS_RESOURCE = 24
CAP_LAST_CAP = 40
CAP_FULL = (1 << (CAP_LAST_CAP + 1)) - 1


@dataclasses.dataclass
class Credentials:
    """uid/gid and capability sets of a process inside the sandbox (root
    with every capability by default, as runsc).

    The capability sets are CAP_* bit masks. Left out (None), they are
    what execve gives a program without file capabilities
    (security/commoncap.c): every capability permitted when the real or
    effective uid is 0, effective when the effective uid is 0, none
    otherwise. The bounding set is always full; there are no ambient
    capabilities.
    """

    uid: int = 0
    euid: int = 0
    suid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    cap_inheritable: int = 0
    cap_permitted: int | None = None
    cap_effective: int | None = None

    def __post_init__(self):
        if self.cap_permitted is None:
            self.cap_permitted = CAP_FULL if 0 in (self.uid, self.euid) else 0
        if self.cap_effective is None:
            self.cap_effective = self.cap_permitted if self.euid == 0 else 0

    def capable(self, cap: int) -> bool:
        """Whether ``cap`` (a CAP_* number) is in the effective set (capable())."""
        return bool(self.cap_effective >> cap & 1)

    def after_exec(self) -> "Credentials":
        """The credentials execve gives a program without set-user-ID bits or
        file capabilities: saved ids become the effective ones and the
        capability sets are recomputed from the uids (fs/exec.c,
        security/commoncap.c cap_bprm_creds_from_file)."""
        return Credentials(self.uid, self.euid, self.euid, self.gid, self.egid, self.egid,
                           cap_inheritable=self.cap_inheritable)


def commit_creds(task, new: Credentials) -> None:
    """Install ``new`` as the credentials of ``task``'s process (kernel/cred.c
    commit_creds). Every set*id, capset and execve goes through here, so
    anything that caches the ids (a page answering getuid without an exit)
    has one place to follow. Credentials belong to the process: all its
    threads change at once, as glibc's set*id make it (setxid broadcast).
    """
    task.process.creds = new


@dataclasses.dataclass
class Process:
    """A thread group (Linux: signal_struct plus the per-process parts).

    ``pid`` and ``ppid`` are the sandbox's own (the first guest is pid 1),
    never the host's. ``exe`` is the guest path of the executable (what
    /proc/self/exe resolves to), ``cwd`` the guest working directory (an
    absolute guest path), ``root`` the host directory the guest's / maps
    to. ``mounts`` is the sandbox's MountNamespace (kernel.vfs.mount),
    shared by every process forked from the first; made from ``root`` on
    first use. ``rlimits`` maps RLIMIT_* numbers to (soft, hard).
    """

    pid: int = 1
    ppid: int = 0
    pgid: int = 1
    sid: int = 1
    creds: Credentials = dataclasses.field(default_factory=Credentials)
    exe: str = ""
    argv: list[bytes] = dataclasses.field(default_factory=list)
    envp: list[bytes] = dataclasses.field(default_factory=list)
    cwd: str = "/"
    # The cwd's place in the tree when it is an in-memory directory
    # (kernel.files.set_cwd): what a removed cwd is still resolved from.
    cwd_walk: Any = None
    root: str = "/"
    mounts: Any = None
    umask: int = 0o022
    rlimits: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
    # rt_sigaction records: signal number -> raw struct k_sigaction bytes.
    sigactions: dict[int, bytes] = dataclasses.field(default_factory=dict)
    exit_status: int | None = None
    dumpable: int = 1
    # Signals sent to the whole process and not yet taken by a thread
    # (bit n-1 for signal n), as Linux's shared_pending.
    pending: int = 0
    siginfo: dict = dataclasses.field(default_factory=dict)
    # The family: live tasks (threads), child processes, the parent Process.
    tasks: list = dataclasses.field(default_factory=list)
    children: list = dataclasses.field(default_factory=list)
    parent: Any = None
    # Linux wait status once the process has exited (exit code << 8, or
    # the killing signal); it is a zombie until its parent reaps it.
    wait_status: int | None = None
    zombie: bool = False
    exit_signal: int = 17  # SIGCHLD: what the parent is sent at exit (clone's low byte)
    # Waiters: the parent in wait4 sleeps on child_wait of its own Process.
    child_wait: Any = None
    # Job control (signal(7) "Stop", "Cont"): stopped by stop_signal; what
    # wait4 has still to report with WUNTRACED / WCONTINUED.
    stopped: bool = False
    stop_signal: int = 0
    stop_unreported: bool = False
    continue_unreported: bool = False
    stop_wait: Any = None
    # time.monotonic() at fork (what /proc/<pid>/stat's starttime counts from boot).
    start_time: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass
class Task:
    """One guest thread.

    ``mm`` is the process's MemoryManager (copy_in/copy_out of guest
    memory), ``fds`` its FdTable. ``sigmask`` is the blocked-signal mask
    (bit n-1 for signal n). ``clear_child_tid`` is the address given to
    set_tid_address(2). ``context`` is the platform's register context for
    this thread (kvmsentry.platform), ``exited`` is set by exit/exit_group.
    """

    tid: int
    process: Process
    mm: "MemoryManager"
    fds: "FdTable"
    sigmask: int = 0
    clear_child_tid: int = 0
    robust_list: tuple[int, int] = (0, 0)
    # sigaltstack(2): (ss_sp, ss_flags, ss_size); SS_DISABLE (2) at first.
    altstack: tuple[int, int, int] = (0, 2, 0)
    comm: bytes = b""  # prctl(PR_SET_NAME); empty: the executable's name
    # Signals sent to this thread (bit n-1 for signal n), not yet delivered,
    # and the siginfo of each.
    pending: int = 0
    siginfo: dict = dataclasses.field(default_factory=dict)
    # (nr, -ERESTART*) of a syscall a signal interrupted, until handled.
    restart: Any = None
    # The mask to restore after rt_sigsuspend's temporary one (None: none).
    saved_sigmask: int | None = None
    # The WaitQueue this task sleeps on, if any (to wake it for a signal).
    waiting_on: Any = None
    # A call parked (Kernel.park) and woken without its go-ahead: its result
    # when one was decided for it (a futex wait woken), else what to undo
    # before the call is made again (park_cancel, a function or None).
    park_result: Any = None
    park_cancel: Any = None
    kernel: Any = None
    # A vfork child: the parent task waits until this task execs or exits.
    vfork_parent: Any = None
    vfork_done: bool = False
    pdeath_signal: int = 0
    no_new_privs: bool = False
    context: Any = None
    exited: bool = False
    # Set by a handler that replaced the registers (execve): the
    # dispatcher must not write rax.
    regs_replaced: bool = False
    # The last resolved page fault (address and registers) and how many
    # times in a row it came back (Kernel._check_fault_loop).
    fault_key: Any = None
    fault_repeats: int = 0
    # The last fault resolved inside the exit-free read's trampoline
    # (kvmsentry/kernel/fastread.py fault): the same again is rolled back.
    fast_read_fault: Any = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal_pending(self) -> bool:
        """True when a signal not blocked by ``sigmask`` waits for this task."""
        return bool((self.pending | self.process.pending) & ~self.sigmask)


def host_pid() -> int:
    """The sentry's own host pid (only for messages; the guest never sees it)."""
    return os.getpid()
