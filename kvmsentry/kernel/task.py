"""Tasks and processes: the kernel state one guest thread runs with.

A ``Task`` is one guest thread (Linux's task_struct): its tid, the
``Process`` (thread group) it belongs to, the address space ``mm`` and the
file-descriptor table ``fds``. Syscall handlers receive the calling task
as their first argument and reach everything through it.
"""

from __future__ import annotations

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


class Credentials:
    """uid/gid and capability sets of a process inside the sandbox (root
    with every capability by default, as runsc).

    The capability sets are CAP_* bit masks. Left out (None), they are
    what execve gives a program without file capabilities
    (security/commoncap.c): every capability permitted when the real or
    effective uid is 0, effective when the effective uid is 0, none
    otherwise. The bounding set is always full; there are no ambient
    capabilities. ``groups`` are the supplementary group ids, sorted
    (setgroups(2)). Equal when every field is (a plain class: a dataclass
    costs ~0.2 ms to create at every start).
    """

    __slots__ = ("uid", "euid", "suid", "gid", "egid", "sgid",
                 "cap_inheritable", "cap_permitted", "cap_effective", "groups")

    def __init__(self, uid: int = 0, euid: int = 0, suid: int = 0, gid: int = 0, egid: int = 0,
                 sgid: int = 0, cap_inheritable: int = 0, cap_permitted: int | None = None,
                 cap_effective: int | None = None, groups: tuple[int, ...] = ()):
        self.uid = uid
        self.euid = euid
        self.suid = suid
        self.gid = gid
        self.egid = egid
        self.sgid = sgid
        self.cap_inheritable = cap_inheritable
        if cap_permitted is None:
            cap_permitted = CAP_FULL if 0 in (uid, euid) else 0
        self.cap_permitted = cap_permitted
        if cap_effective is None:
            cap_effective = cap_permitted if euid == 0 else 0
        self.cap_effective = cap_effective
        self.groups = groups

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # mutable, compared by value

    def __repr__(self) -> str:
        return "Credentials(" + ", ".join(f"{name}={getattr(self, name)!r}"
                                          for name in self.__slots__) + ")"

    def replace(self, **changes) -> "Credentials":
        """A copy with ``changes`` (field names as keywords), as
        dataclasses.replace; TypeError for a name that is not a field."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Credentials(**fields)

    def capable(self, cap: int) -> bool:
        """Whether ``cap`` (a CAP_* number) is in the effective set (capable())."""
        return bool(self.cap_effective >> cap & 1)

    def after_exec(self) -> "Credentials":
        """The credentials execve gives a program without set-user-ID bits or
        file capabilities: saved ids become the effective ones and the
        capability sets are recomputed from the uids (fs/exec.c,
        security/commoncap.c cap_bprm_creds_from_file)."""
        return Credentials(self.uid, self.euid, self.euid, self.gid, self.egid, self.egid,
                           cap_inheritable=self.cap_inheritable, groups=self.groups)


def commit_creds(task, new: Credentials) -> None:
    """Install ``new`` as the credentials of ``task``'s process (kernel/cred.c
    commit_creds). Every set*id, capset and execve goes through here, so
    anything that caches the ids (a page answering getuid without an exit)
    has one place to follow. Credentials belong to the process: all its
    threads change at once, as glibc's set*id make it (setxid broadcast).
    """
    task.process.creds = new


class Process:
    """A thread group (Linux: signal_struct plus the per-process parts).

    ``pid`` and ``ppid`` are the sandbox's own (the first guest is pid 1),
    never the host's. ``exe`` is the guest path of the executable (what
    /proc/self/exe resolves to), ``cwd`` the guest working directory (an
    absolute guest path), ``root`` the host directory the guest's / maps
    to. ``mounts`` is the sandbox's MountNamespace (kernel.vfs.mount),
    shared by every process forked from the first; made from ``root`` on
    first use. ``rlimits`` maps RLIMIT_* numbers to (soft, hard).
    Compared by identity.
    """

    def __init__(self, pid: int = 1, ppid: int = 0, pgid: int = 1, sid: int = 1,
                 creds: Credentials | None = None, exe: str = "", argv: list[bytes] | None = None,
                 envp: list[bytes] | None = None, cwd: str = "/", cwd_walk: Any = None,
                 root: str = "/", mounts: Any = None, umask: int = 0o022,
                 rlimits: dict[int, tuple[int, int]] | None = None, sigactions: dict[int, bytes] | None = None,
                 exit_status: int | None = None, dumpable: int = 1, pending: int = 0,
                 siginfo: dict | None = None, tasks: list | None = None,
                 children: list | None = None, parent: Any = None, wait_status: int | None = None,
                 zombie: bool = False, exit_signal: int = 17, child_wait: Any = None,
                 stopped: bool = False, stop_signal: int = 0, stop_unreported: bool = False,
                 continue_unreported: bool = False, stop_wait: Any = None,
                 start_time: float | None = None, personality: int = 0):
        self.pid = pid
        self.ppid = ppid
        self.pgid = pgid
        self.sid = sid
        self.creds = Credentials() if creds is None else creds
        self.exe = exe
        self.argv = [] if argv is None else argv
        self.envp = [] if envp is None else envp
        self.cwd = cwd
        # The cwd's place in the tree when it is an in-memory directory
        # (kernel.files.set_cwd): what a removed cwd is still resolved from.
        self.cwd_walk = cwd_walk
        self.root = root
        self.mounts = mounts
        self.umask = umask
        self.rlimits = {} if rlimits is None else rlimits
        # rt_sigaction records: signal number -> raw struct k_sigaction bytes.
        self.sigactions = {} if sigactions is None else sigactions
        self.exit_status = exit_status
        self.dumpable = dumpable
        # Signals sent to the whole process and not yet taken by a thread
        # (bit n-1 for signal n), as Linux's shared_pending.
        self.pending = pending
        self.siginfo = {} if siginfo is None else siginfo
        # The family: live tasks (threads), child processes, the parent Process.
        self.tasks = [] if tasks is None else tasks
        self.children = [] if children is None else children
        self.parent = parent
        # Linux wait status once the process has exited (exit code << 8, or
        # the killing signal); it is a zombie until its parent reaps it.
        self.wait_status = wait_status
        self.zombie = zombie
        self.exit_signal = exit_signal  # SIGCHLD: what the parent is sent at exit (clone's low byte)
        # Waiters: the parent in wait4 sleeps on child_wait of its own Process.
        self.child_wait = child_wait
        # Job control (signal(7) "Stop", "Cont"): stopped by stop_signal; what
        # wait4 has still to report with WUNTRACED / WCONTINUED.
        self.stopped = stopped
        self.stop_signal = stop_signal
        self.stop_unreported = stop_unreported
        self.continue_unreported = continue_unreported
        self.stop_wait = stop_wait
        # time.monotonic() at fork (what /proc/<pid>/stat's starttime counts from boot).
        self.start_time = time.monotonic() if start_time is None else start_time
        # personality(2)'s execution domain and flags (PER_LINUX: 0); kept
        # by fork and execve (which drops READ_IMPLIES_EXEC); execve and
        # uname(2) read it (include/uapi/linux/personality.h).
        self.personality = personality

    def __repr__(self) -> str:
        return f"Process(pid={self.pid}, ppid={self.ppid}, exe={self.exe!r})"


class Task:
    """One guest thread.

    ``mm`` is the process's MemoryManager (copy_in/copy_out of guest
    memory), ``fds`` its FdTable. ``sigmask`` is the blocked-signal mask
    (bit n-1 for signal n). ``clear_child_tid`` is the address given to
    set_tid_address(2). ``context`` is the platform's register context for
    this thread (kvmsentry.platform), ``exited`` is set by exit/exit_group.
    Compared by identity.
    """

    def __init__(self, tid: int, process: Process, mm: "MemoryManager", fds: "FdTable",
                 sigmask: int = 0, clear_child_tid: int = 0, robust_list: tuple[int, int] = (0, 0),
                 altstack: tuple[int, int, int] = (0, 2, 0), comm: bytes = b"",
                 pending: int = 0, siginfo: dict | None = None, restart: Any = None,
                 saved_sigmask: int | None = None, waiting_on: Any = None, kernel: Any = None,
                 vfork_parent: Any = None, vfork_done: bool = False, pdeath_signal: int = 0,
                 no_new_privs: bool = False, context: Any = None, exited: bool = False,
                 regs_replaced: bool = False, fault_key: Any = None, fault_repeats: int = 0,
                 fast_read_fault: Any = None, mempolicy: tuple[int, int, int] = (0, 0, 0)):
        self.tid = tid
        self.process = process
        self.mm = mm
        self.fds = fds
        self.sigmask = sigmask
        self.clear_child_tid = clear_child_tid
        self.robust_list = robust_list
        # sigaltstack(2): (ss_sp, ss_flags, ss_size); SS_DISABLE (2) at first.
        self.altstack = altstack
        self.comm = comm  # prctl(PR_SET_NAME); empty: the executable's name
        # Signals sent to this thread (bit n-1 for signal n), not yet delivered,
        # and the siginfo of each.
        self.pending = pending
        self.siginfo = {} if siginfo is None else siginfo
        # (nr, -ERESTART*) of a syscall a signal interrupted, until handled.
        self.restart = restart
        # The mask to restore after rt_sigsuspend's temporary one (None: none).
        self.saved_sigmask = saved_sigmask
        # The WaitQueue this task sleeps on, if any (to wake it for a signal).
        self.waiting_on = waiting_on
        self.kernel = kernel
        # A vfork child: the parent task waits until this task execs or exits.
        self.vfork_parent = vfork_parent
        self.vfork_done = vfork_done
        self.pdeath_signal = pdeath_signal
        self.no_new_privs = no_new_privs
        # set_mempolicy(2): (mode, mode flags, node mask); kept by clone.
        self.mempolicy = mempolicy
        self.context = context
        self.exited = exited
        # Set by a handler that replaced the registers (execve): the
        # dispatcher must not write rax.
        self.regs_replaced = regs_replaced
        # The last resolved page fault (address and registers) and how many
        # times in a row it came back (Kernel._check_fault_loop).
        self.fault_key = fault_key
        self.fault_repeats = fault_repeats
        # The last fault resolved inside the exit-free read's trampoline
        # (kvmsentry/kernel/fastread.py fault): the same again is rolled back.
        self.fast_read_fault = fast_read_fault

    def __repr__(self) -> str:
        return f"Task(tid={self.tid}, process={self.process!r})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal_pending(self) -> bool:
        """True when a signal not blocked by ``sigmask`` waits for this task."""
        return bool((self.pending | self.process.pending) & ~self.sigmask)


def host_pid() -> int:
    """The sentry's own host pid (only for messages; the guest never sees it)."""
    return os.getpid()
