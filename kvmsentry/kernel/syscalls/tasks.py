"""Creating, replacing, waiting for and signalling processes.

fork/vfork/clone (kernel/fork.c), execve (fs/exec.c, fs/binfmt_script.c),
wait4/waitid (kernel/exit.c), kill/tgkill/tkill (kernel/signal.c), and the
process-group calls (kernel/sys.c). The kernel's run loop, exit and signal
actions live in kvmsentry.kernel.kernel; these handlers drive them.

Not yet: stopped/continued children are never reported (no job control).
"""

from __future__ import annotations

import errno
import os
import signal
import stat as _stat
import struct

from kvmsentry.kernel import fastread, sched, signals
from kvmsentry.kernel.files import (
    AT_FDCWD, HOST, MEM, lookup, may_exec, mounts_of, read_path, to_int,
)
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.syscalls.table import SyscallError, error, syscall
from kvmsentry.kernel.task import Process, Task, commit_creds
from kvmsentry.loader.elf import ELF_HEADER_SIZE, IMAGES, ElfError, load_elf
from kvmsentry.loader.stack import ArgListTooLong

CSIGNAL = 0x000000FF
CLONE_VM = 0x00000100
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_SIGHAND = 0x00000800
CLONE_PIDFD = 0x00001000
CLONE_PTRACE = 0x00002000
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000
CLONE_NEWNS = 0x00020000
CLONE_SYSVSEM = 0x00040000
CLONE_SETTLS = 0x00080000
CLONE_PARENT_SETTID = 0x00100000
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_DETACHED = 0x00400000
CLONE_UNTRACED = 0x00800000
CLONE_CHILD_SETTID = 0x01000000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_IO = 0x80000000
_NAMESPACES = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
               | CLONE_NEWPID | CLONE_NEWNET)

WNOHANG = 0x00000001
WUNTRACED = 0x00000002
WEXITED = 0x00000004
WCONTINUED = 0x00000008
WNOWAIT = 0x01000000
__WNOTHREAD = 0x20000000
__WALL = 0x40000000
__WCLONE = 0x80000000
P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6
_NO_EXITS = 0x08000000  # internal: do_wait must not report exits (waitid without WEXITED)

# personality(2) flags execve acts on (include/uapi/linux/personality.h).
ADDR_NO_RANDOMIZE = 0x0040000
READ_IMPLIES_EXEC = 0x0400000

# fs/binfmt_script.c: the #! line is read from the first BINPRM_BUF_SIZE bytes;
# fs/exec.c allows 4 levels of interpreters.
BINPRM_BUF_SIZE = 256
MAX_INTERPRETER_DEPTH = 4
MAX_ARG_STRINGS = 0x7FFFFFFF
_CORE_SIGNALS = frozenset({signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP, signal.SIGABRT,
                           signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV, signal.SIGXCPU,
                           signal.SIGXFSZ, signal.SIGSYS})


# -- fork / vfork / clone ------------------------------------------------------
def do_fork(task: Task, flags: int, stack: int = 0, parent_tid: int = 0, child_tid: int = 0,
            tls: int = 0) -> int:
    """kernel/fork.c kernel_clone for new processes; returns the child's pid.

    CLONE_THREAD makes a thread of the caller's process (with CLONE_VM
    and CLONE_SIGHAND, as Linux requires); CLONE_VM alone shares the memory
    with a new process. EINVAL for flag combinations Linux refuses, EAGAIN
    at the pid limit, EPERM for new namespaces.
    """
    kernel = task.kernel
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        raise SyscallError(errno.EINVAL)
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        raise SyscallError(errno.EINVAL)
    if flags & CLONE_THREAD:
        return _clone_thread(task, flags, stack, parent_tid, child_tid, tls)
    if flags & _NAMESPACES:
        raise SyscallError(errno.EPERM)
    if flags & CLONE_PIDFD:
        raise SyscallError(errno.EINVAL)
    pid = kernel.alloc_pid()
    parent = task.process
    child_process = Process(
        pid=pid, ppid=parent.pid, pgid=parent.pgid, sid=parent.sid,
        creds=_copy(parent.creds), exe=parent.exe, argv=list(parent.argv),
        envp=list(parent.envp), cwd=parent.cwd, cwd_walk=parent.cwd_walk, root=parent.root,
        mounts=mounts_of(parent), umask=parent.umask,
        rlimits=dict(parent.rlimits), sigactions=dict(parent.sigactions),
        dumpable=parent.dumpable, exit_signal=flags & CSIGNAL, personality=parent.personality)
    if flags & CLONE_PARENT and parent.parent is not None:
        child_process.parent = parent.parent
        child_process.ppid = parent.parent.pid
    else:
        child_process.parent = parent
    if flags & CLONE_VM:
        mm = task.mm
        mm.users += 1
        fastread.drop_entries(mm)  # a vfork child shares the memory: reads exit again
        if not flags & CLONE_VFORK:
            kernel.note_once("clone-vm", "CLONE_VM without CLONE_THREAD: two processes share memory")
    else:
        mm = task.mm.fork(kernel.platform.new_address_space())
    child = Task(tid=pid, process=child_process, mm=mm, fds=_child_fds(task, flags),
                 sigmask=task.sigmask, altstack=task.altstack, comm=task.comm,
                 mempolicy=task.mempolicy)
    _start_child_cpu(task, child, flags, stack, parent_tid, child_tid, tls)
    child_process.tasks.append(child)
    child_process.parent.children.append(child_process)
    kernel.processes[pid] = child_process
    if flags & CLONE_VFORK:
        child.vfork_parent = task
    kernel.start_task(child)
    if flags & CLONE_VFORK:
        queue = kernel._child_wait(parent)
        try:
            queue.wait(None, lambda: child.vfork_done)
        except sched.Interrupted:
            # Linux keeps waiting (killable only); a kill ends us anyway.
            if parent.wait_status is None:
                queue.wait(None, lambda: child.vfork_done or parent.wait_status is not None)
    return pid


def _clone_thread(task: Task, flags: int, stack: int, parent_tid: int, child_tid: int,
                  tls: int) -> int:
    """A new thread of ``task``'s process (pthread_create's clone); returns its tid."""
    kernel = task.kernel
    tid = kernel.alloc_pid()
    process = task.process
    mm = task.mm
    mm.users += 1
    fastread.drop_entries(mm)  # two tasks in one memory: reads exit again
    child = Task(tid=tid, process=process, mm=mm, fds=_child_fds(task, flags),
                 sigmask=task.sigmask, comm=task.comm, mempolicy=task.mempolicy)
    _start_child_cpu(task, child, flags, stack, parent_tid, child_tid, tls)
    process.tasks.append(child)
    kernel.start_task(child)
    return tid


def _child_fds(task: Task, flags: int):
    """The child's fd table: shared with CLONE_FILES, else a copy (fork(2))."""
    if flags & CLONE_FILES:
        task.fds.users = getattr(task.fds, "users", 1) + 1
        return task.fds
    return task.fds.fork()


def _start_child_cpu(task: Task, child: Task, flags: int, stack: int, parent_tid: int,
                     child_tid: int, tls: int) -> None:
    """Give ``child`` a vCPU with the caller's registers (rax 0) and do the TID/TLS flags."""
    context = task.kernel.platform.new_context(child.mm.address_space)
    context.reset(0, 0)
    context.copy_cpu_state(task.context)
    context.regs.rax = 0
    if stack:
        context.user_rsp = stack
    if flags & CLONE_SETTLS:
        context.set_fs_base(tls)
    child.context = context
    if flags & CLONE_CHILD_CLEARTID:
        child.clear_child_tid = child_tid
    if flags & CLONE_PARENT_SETTID:
        task.mm.copy_out(parent_tid, struct.pack("<i", child.tid))
    if flags & CLONE_CHILD_SETTID:
        child.mm.copy_out(child_tid, struct.pack("<i", child.tid))


def _copy(creds):
    return creds.replace()


@syscall("fork")
def sys_fork(task) -> int:
    """Implements Linux syscall fork(2): a copy-on-write copy of the process."""
    return do_fork(task, signal.SIGCHLD)


@syscall("vfork")
def sys_vfork(task) -> int:
    """Implements Linux syscall vfork(2): the child borrows the memory; we sleep until it execs or exits."""
    return do_fork(task, CLONE_VM | CLONE_VFORK | signal.SIGCHLD)


@syscall("clone", support="partial", note="no namespaces (EPERM), no CLONE_PIDFD (EINVAL)")
def sys_clone(task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int) -> int:
    """Implements Linux syscall clone(2) (x86-64 argument order: flags, stack, ptid, ctid, tls)."""
    return do_fork(task, flags & 0xFFFFFFFF, stack, parent_tid, child_tid, tls)


error("clone3", errno.ENOSYS, "libc falls back to clone")


# -- execve ----------------------------------------------------------------------
def _read_strings(task, array_gva: int) -> list[bytes]:
    """A NULL-terminated array of string pointers (argv/envp); E2BIG past the limits."""
    strings = []
    if array_gva == 0:
        return strings
    total = 0
    while True:
        (pointer,) = struct.unpack("<Q", task.mm.copy_in(array_gva + 8 * len(strings), 8))
        if pointer == 0:
            return strings
        try:
            value = task.mm.read_cstring(pointer, 32 * 4096)  # MAX_ARG_STRLEN with the NUL
        except SyscallError as e:
            if e.errno != errno.ENAMETOOLONG:
                raise
            raise SyscallError(errno.E2BIG) from None  # fs/exec.c copy_strings
        total += len(value) + 1 + 8
        if total > 2 * 1024 * 1024 or len(strings) >= MAX_ARG_STRINGS:
            raise SyscallError(errno.E2BIG)
        strings.append(value)


def _resolve_executable(task, path: bytes) -> tuple[bytes | None, bytes, bytes | None]:
    """(host path, guest path, contents) of an executable regular file.

    A host file gives its host path (contents None: read from the host);
    a file the guest wrote (in memory: /tmp, or a copied-up host file)
    gives its contents. ENOENT, ENOTDIR, ELOOP from the lookup; EACCES for
    something not a regular file or without an execute bit.
    """
    node = lookup(task, AT_FDCWD, path, follow=True)
    if node.kind == HOST:
        mode, host_path, contents = node.st.st_mode, node.host_path, None
    elif node.kind == MEM:
        node.inode.sync()  # pages written through a shared mapping
        mode, host_path, contents = node.inode.mode, None, bytes(node.inode.data)
    else:
        raise SyscallError(errno.EACCES)
    if not _stat.S_ISREG(mode) or not mode & 0o111:
        raise SyscallError(errno.EACCES)
    may_exec(task, node)  # the caller's class of x bit (boot --user)
    return host_path, node.guest_path, contents


def _head(host_path: bytes | None, contents: bytes | None) -> bytes:
    if contents is not None:
        return contents[:BINPRM_BUF_SIZE]
    try:
        with open(host_path, "rb") as f:
            return f.read(BINPRM_BUF_SIZE)
    except OSError as e:
        raise SyscallError(e.errno) from None


def _script(head: bytes) -> tuple[bytes, bytes | None] | None:
    """(interpreter, optional argument) of a #! script (fs/binfmt_script.c), else None."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise SyscallError(errno.ENOEXEC)
    parts = line.split(None, 1)
    interpreter = parts[0]
    argument = parts[1].strip(b" \t") if len(parts) > 1 else None
    return interpreter, argument or None


def load_interpreter(task: Task, interp: str) -> tuple:
    """The program interpreter a PT_INTERP names, looked up in the guest's VFS.

    Returns ``(ElfImage, guest path, host path)``; the host path is None
    for a file the guest wrote (Kernel._load copies its bytes). Errors as fs/binfmt_elf.c load_elf_binary (checked natively on
    Linux 6.18): ENOENT / ENOTDIR / ELOOP from the lookup (open_exec),
    EACCES for a directory, a non-regular file or no execute bit, EIO for
    a file shorter than an ELF header (elf_read), ELIBBAD for one that is
    not an x86-64 ELF or whose program headers are bad. Linux finds a bad
    e_type or bad PT_LOADs of the interpreter only after the point of no
    return (load_elf_interp, then SIGSEGV); here they are ELIBBAD too.
    """
    host_path, guest_path, contents = _resolve_executable(task, os.fsencode(interp))
    try:
        if contents is None:
            image = IMAGES.load(os.fsdecode(host_path))
        else:
            image = load_elf(contents)
    except ElfError:
        if contents is None:
            try:
                size = os.stat(host_path).st_size
            except OSError as e:
                raise SyscallError(e.errno) from None
        else:
            size = len(contents)
        raise SyscallError(errno.EIO if size < ELF_HEADER_SIZE else errno.ELIBBAD) from None
    except OSError as e:
        raise SyscallError(e.errno) from None
    return image, os.fsdecode(guest_path), host_path


def do_execve(task: Task, path: bytes, argv: list[bytes], envp: list[bytes]) -> None:
    """Replace the calling process's program (fs/exec.c do_execveat_common).

    Errors before the point of no return are the guest's (ENOENT, EACCES,
    ENOEXEC, E2BIG, ENOMEM); after it the old memory is gone and the task
    starts the new program with fresh registers.
    """
    kernel = task.kernel
    execfn = path
    for _ in range(MAX_INTERPRETER_DEPTH + 1):
        host_path, guest_path, contents = _resolve_executable(task, path)
        script = _script(_head(host_path, contents))
        if script is None:
            break
        interpreter, argument = script
        argv = [interpreter] + ([argument] if argument else []) + [path] + argv[1:]
        path = interpreter
    else:
        raise SyscallError(errno.ELOOP)
    try:
        image = IMAGES.load(os.fsdecode(host_path)) if contents is None else load_elf(contents)
    except ElfError as e:
        raise SyscallError(errno.ENOEXEC if e.errno == errno.ENOEXEC else e.errno) from None
    except OSError as e:
        raise SyscallError(e.errno) from None
    interp = load_interpreter(task, image.interp) if image.interp is not None else None
    platform = kernel.platform
    address_space = platform.new_address_space()
    process = task.process
    # SET_PERSONALITY (set_personality_64bit) drops READ_IMPLIES_EXEC; then
    # ADDR_NO_RANDOMIZE decides PF_RANDOMIZE (fs/binfmt_elf.c load_elf_binary).
    randomize = not process.personality & ADDR_NO_RANDOMIZE
    mm = kernel.new_mm(address_space, randomize)
    exe = os.fsdecode(guest_path)
    try:
        entry, rsp = kernel._load(mm, process.creds, exe, image, exe, argv, envp, interp=interp,
                                  source=host_path, randomize=randomize)
    except ArgListTooLong:
        mm.destroy()
        raise SyscallError(errno.E2BIG) from None
    except OSError as e:  # the host file went away after its lookup
        mm.destroy()
        raise SyscallError(e.errno) from None
    except Exception:
        mm.destroy()
        raise
    # The point of no return.
    old = task.mm
    task.mm = mm
    kernel.drop_mm(old)
    process.exe = exe
    process.personality &= ~READ_IMPLIES_EXEC
    process.argv = list(argv)
    process.envp = list(envp)
    commit_creds(task, process.creds.after_exec())
    # fs/exec.c begin_new_exec: the basename of the path execve was given
    # ("exe" for /proc/self/exe, the script for a #! script).
    task.comm = os.path.basename(execfn)[:15]
    task.fds.close_on_exec()
    from kvmsentry.kernel.syscalls.timers import delete_all_timers
    delete_all_timers(process)
    for signo, action in list(process.sigactions.items()):
        handler = int.from_bytes(action[:8], "little")
        if handler not in (0, 1):  # handlers reset to SIG_DFL; SIG_IGN stays
            process.sigactions.pop(signo)
    task.altstack = (0, 2, 0)
    task.clear_child_tid = 0
    task.robust_list = (0, 0)
    task.context.switch_address_space(address_space)
    task.context.reset(entry, rsp)
    kernel._release_vfork(task)
    del execfn


@syscall("execve")
def sys_execve(task, filename: int, argv: int, envp: int) -> int:
    """Implements Linux syscall execve(2): static ELF, static-pie, dynamic
    executables (PT_INTERP, see load_interpreter) and #! scripts."""
    path = read_path(task, filename)
    args = _read_strings(task, argv)
    env = _read_strings(task, envp)
    do_execve(task, path, args, env)
    return 0


@syscall("execveat", support="partial", note="dirfd AT_FDCWD or an absolute path; AT_EMPTY_PATH: ENOSYS")
def sys_execveat(task, dirfd: int, filename: int, argv: int, envp: int, flags: int) -> int:
    """Implements Linux syscall execveat(2) for paths the cwd or an absolute path name."""
    path = read_path(task, filename)
    if flags & 0x1000:  # AT_EMPTY_PATH
        raise SyscallError(errno.ENOSYS)
    if to_int(dirfd) != AT_FDCWD and not path.startswith(b"/"):
        raise SyscallError(errno.ENOSYS)
    do_execve(task, path, _read_strings(task, argv), _read_strings(task, envp))
    return 0


# -- wait ----------------------------------------------------------------------------
def _matches(process, child, pid: int) -> bool:
    if pid > 0:
        return child.pid == pid
    if pid == 0:
        return child.pgid == process.pgid
    if pid < -1:
        return child.pgid == -pid
    return True


def do_wait(task: Task, pid: int, options: int, reap: bool = True):
    """Wait for a matching child to exit, or stop/continue (kernel/exit.c do_wait).

    Returns ``(child, wait_status, kind)`` with kind "exit" (the child is
    reaped unless ``reap`` is False), "stop" (WUNTRACED: status
    (signal << 8) | 0x7f) or "cont" (WCONTINUED: 0xffff); None with WNOHANG
    when nothing is ready. ECHILD when no child matches; a signal ends the
    wait with ERESTARTSYS.
    """
    kernel = task.kernel
    process = task.process
    found = []

    def ready() -> bool:
        found.clear()
        candidates = [c for c in process.children if _matches(process, c, pid)]
        if not candidates:
            raise SyscallError(errno.ECHILD)
        for child in candidates:
            if child.zombie and not options & _NO_EXITS:
                found.append((child, child.wait_status, "exit"))
            elif options & WUNTRACED and child.stopped and child.stop_unreported:
                found.append((child, (child.stop_signal << 8) | 0x7F, "stop"))
            elif options & WCONTINUED and child.continue_unreported:
                found.append((child, 0xFFFF, "cont"))
            if found:
                return True
        return False

    if not ready():
        if options & WNOHANG:
            return None
        try:
            kernel._child_wait(process).wait(task, ready)
        except sched.Interrupted:
            raise SyscallError(signals.ERESTARTSYS) from None
    child, status, kind = found[0]
    if reap:
        if kind == "exit":
            process.children.remove(child)
            kernel.processes.pop(child.pid, None)
        elif kind == "stop":
            child.stop_unreported = False
        else:
            child.continue_unreported = False
    return child, status, kind


@syscall("wait4")
def sys_wait4(task, pid: int, wstatus: int, options: int, rusage: int) -> int:
    """Implements Linux syscall wait4(2). EINVAL for unknown options, ECHILD, EINTR."""
    pid = to_int(pid)
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE):
        raise SyscallError(errno.EINVAL)
    waited = do_wait(task, pid, options)
    if waited is None:
        return 0
    child, status, _ = waited
    if wstatus:
        task.mm.copy_out(wstatus, struct.pack("<i", status))
    if rusage:
        task.mm.copy_out(rusage, bytes(144))
    return child.pid


@syscall("waitid")
def sys_waitid(task, idtype: int, id_: int, infop: int, options: int, rusage: int) -> int:
    """Implements Linux syscall waitid(2) for exited children (siginfo_t, 128 bytes)."""
    if options & ~(WNOHANG | WEXITED | WUNTRACED | WCONTINUED | WNOWAIT | __WNOTHREAD | __WALL | __WCLONE):
        raise SyscallError(errno.EINVAL)
    if not options & (WEXITED | WUNTRACED | WCONTINUED):
        raise SyscallError(errno.EINVAL)
    if idtype == P_ALL:
        pid = -1
    elif idtype == P_PID:
        pid = to_int(id_)
        if pid <= 0:
            raise SyscallError(errno.EINVAL)
    elif idtype == P_PGID:
        pid = -to_int(id_) if to_int(id_) > 0 else 0
    else:
        raise SyscallError(errno.EINVAL)
    # waitid's WSTOPPED is wait4's WUNTRACED (the same bit).
    wait_options = options if options & WEXITED else options | _NO_EXITS
    waited = do_wait(task, pid, wait_options, reap=not options & WNOWAIT)
    info = bytearray(128)
    if waited is not None:
        child, status, kind = waited
        if kind == "stop":
            code, value = CLD_STOPPED, (status >> 8) & 0xFF
        elif kind == "cont":
            code, value = CLD_CONTINUED, signal.SIGCONT
        elif status & 0x7F == 0:
            code, value = CLD_EXITED, (status >> 8) & 0xFF
        else:
            signo = status & 0x7F
            code, value = (CLD_DUMPED if status & 0x80 else CLD_KILLED), signo
        # si_signo, si_errno, si_code, pad, si_pid, si_uid, si_status
        struct.pack_into("<iii4xiIi", info, 0, signal.SIGCHLD, 0, code, child.pid,
                         child.creds.uid, value)
    if infop:
        task.mm.copy_out(infop, bytes(info))
    if rusage:
        task.mm.copy_out(rusage, bytes(144))
    return 0


# -- kill ------------------------------------------------------------------------------
def _check_signo(sig: int) -> None:
    if not 0 <= sig <= 64:
        raise SyscallError(errno.EINVAL)


@syscall("kill", support="partial", note="default actions; handlers are not run yet")
def sys_kill(task, pid: int, sig: int) -> int:
    """Implements Linux syscall kill(2) inside the sandbox's pid namespace.

    pid > 0: that process; 0: our process group; -1: every process but
    pid 1 and ourselves... (Linux: all we may signal except init); < -1:
    process group -pid. ESRCH when nothing matches, EINVAL for a bad signal.
    """
    kernel = task.kernel
    pid = to_int(pid)
    sig = to_int(sig)
    _check_signo(sig)
    if pid > 0:
        targets = [p for p in kernel.processes.values() if p.pid == pid and not p.zombie]
        if not targets and pid in kernel.processes:
            return 0  # a zombie: the signal is accepted and ignored
    elif pid == 0:
        targets = [p for p in kernel.processes.values() if p.pgid == task.process.pgid and not p.zombie]
    elif pid == -1:
        targets = [p for p in kernel.processes.values()
                   if p.pid != 1 and p is not task.process and not p.zombie]
        if not targets:
            return 0
    else:
        targets = [p for p in kernel.processes.values() if p.pgid == -pid and not p.zombie]
    if not targets:
        raise SyscallError(errno.ESRCH)
    info = signals.siginfo(sig, signals.SI_USER, pid=task.process.pid, uid=task.process.creds.uid)
    for process in targets:
        if sig:
            kernel.send_signal(process, sig, info=info)
    return 0


@syscall("tgkill")
def sys_tgkill(task, tgid: int, tid: int, sig: int) -> int:
    """Implements Linux syscall tgkill(2). EINVAL for tgid/tid <= 0 or a bad signal; ESRCH."""
    tgid, tid, sig = to_int(tgid), to_int(tid), to_int(sig)
    if tgid <= 0 or tid <= 0:
        raise SyscallError(errno.EINVAL)
    _check_signo(sig)
    target = task.kernel.tasks.get(tid)
    if target is None or target.process.pid != tgid:
        raise SyscallError(errno.ESRCH)
    if sig:
        task.kernel.send_signal(target.process, sig, target, info=_tkill_info(task, sig))
    return 0


def _tkill_info(task, sig: int) -> bytes:
    return signals.siginfo(sig, signals.SI_TKILL, pid=task.process.pid, uid=task.process.creds.uid)


@syscall("tkill")
def sys_tkill(task, tid: int, sig: int) -> int:
    """Implements Linux syscall tkill(2). EINVAL for tid <= 0 or a bad signal; ESRCH."""
    tid, sig = to_int(tid), to_int(sig)
    if tid <= 0:
        raise SyscallError(errno.EINVAL)
    _check_signo(sig)
    target = task.kernel.tasks.get(tid)
    if target is None:
        raise SyscallError(errno.ESRCH)
    if sig:
        task.kernel.send_signal(target.process, sig, target, info=_tkill_info(task, sig))
    return 0


@syscall("rt_sigqueueinfo")
def sys_rt_sigqueueinfo(task, tgid: int, sig: int, info_gva: int) -> int:
    """Implements Linux syscall rt_sigqueueinfo(2) (sigqueue(3)) with the caller's siginfo.

    EPERM when the siginfo claims to come from the kernel (si_code >= 0 or
    SI_TKILL) and the target is another process; ESRCH; EINVAL. In
    kernel/signal.c's order: the siginfo is read first (EFAULT), then
    EPERM, ESRCH, and the signal number last.
    """
    kernel = task.kernel
    tgid, sig = to_int(tgid), to_int(sig)
    info = bytearray(task.mm.copy_in(info_gva, signals.SIGINFO_SIZE))
    (code,) = struct.unpack_from("<i", info, 8)
    if (code >= 0 or code == signals.SI_TKILL) and tgid != task.process.pid:
        raise SyscallError(errno.EPERM)
    target = kernel.processes.get(tgid)
    if target is None or target.zombie:
        raise SyscallError(errno.ESRCH)
    _check_signo(sig)
    struct.pack_into("<i", info, 0, sig)
    if sig:
        kernel.send_signal(target, sig, info=bytes(info))
    return 0


@syscall("rt_tgsigqueueinfo")
def sys_rt_tgsigqueueinfo(task, tgid: int, tid: int, sig: int, info_gva: int) -> int:
    """Implements Linux syscall rt_tgsigqueueinfo(2) (pthread_sigqueue(3)):
    rt_sigqueueinfo to thread ``tid`` of process ``tgid``.

    In kernel/signal.c's order: the siginfo is read (EFAULT); EINVAL for a
    tgid or tid <= 0; EPERM when the siginfo claims to come from the
    kernel (si_code >= 0 or SI_TKILL) and ``tid`` is not the caller;
    ESRCH when no such thread is in that process; EINVAL for the signal.
    """
    tgid, tid, sig = to_int(tgid), to_int(tid), to_int(sig)
    info = bytearray(task.mm.copy_in(info_gva, signals.SIGINFO_SIZE))
    if tgid <= 0 or tid <= 0:
        raise SyscallError(errno.EINVAL)
    (code,) = struct.unpack_from("<i", info, 8)
    if (code >= 0 or code == signals.SI_TKILL) and tid != task.tid:
        raise SyscallError(errno.EPERM)
    target = task.kernel.tasks.get(tid)
    if target is None or target.process.pid != tgid:
        raise SyscallError(errno.ESRCH)
    _check_signo(sig)
    struct.pack_into("<i", info, 0, sig)
    if sig:
        task.kernel.send_signal(target.process, sig, target, info=bytes(info))
    return 0


# -- process groups and sessions ----------------------------------------------------
@syscall("setpgid")
def sys_setpgid(task, pid: int, pgid: int) -> int:
    """Implements Linux syscall setpgid(2). ESRCH, EPERM, EINVAL as kernel/sys.c."""
    kernel = task.kernel
    pid, pgid = to_int(pid), to_int(pgid)
    if pgid < 0:
        raise SyscallError(errno.EINVAL)
    me = task.process
    target = me if pid in (0, me.pid) else kernel.processes.get(pid)
    if target is None or (target is not me and target.parent is not me):
        raise SyscallError(errno.ESRCH)
    if target.sid != me.sid:
        raise SyscallError(errno.EPERM)
    if target.pid == target.sid:
        raise SyscallError(errno.EPERM)  # a session leader
    pgid = pgid or target.pid
    if pgid != target.pid and not any(p.pgid == pgid and p.sid == me.sid
                                      for p in kernel.processes.values()):
        raise SyscallError(errno.EPERM)
    target.pgid = pgid
    return 0


@syscall("setsid")
def sys_setsid(task) -> int:
    """Implements Linux syscall setsid(2). EPERM for a process-group leader."""
    me = task.process
    if any(p.pgid == me.pid for p in task.kernel.processes.values()):
        raise SyscallError(errno.EPERM)
    me.sid = me.pgid = me.pid
    return me.sid


__all__ = ["do_fork", "do_execve", "do_wait", "GuestFault"]
