"""The kernel: starts a program, runs its task, dispatches its traps.

``Kernel.exec_first`` loads a static ELF into a fresh address space (the
execve path of fs/binfmt_elf.c: PT_LOAD segments, brk, the stack with
argv/envp/auxv) and ``Kernel.run`` drives the task's context: every
TRAP_SYSCALL goes through the syscall table, every TRAP_FAULT is either a
page the memory manager supplies or a signal that ends the process, as
Linux's default action would.

Exit statuses of ``run`` follow a shell's convention: the exit code, or
128 + the signal number for a process killed by a signal.
"""

from __future__ import annotations

import collections
import errno
import os
import signal
import sys
import time

from kvmsentry.kernel import faults
from kvmsentry.kernel.fd import FdTable
from kvmsentry.kernel.mm import (PROT_READ, PROT_WRITE, GuestFault, MemoryManager,
                                 page_align_up)
from kvmsentry.kernel.syscalls import table as systable
from kvmsentry.kernel.syscalls.process import TaskExit
from kvmsentry.kernel.task import Process, Task
from kvmsentry.loader.elf import ELF_ET_DYN_BASE, ElfError, load_elf
from kvmsentry.loader.stack import ArgListTooLong, build_initial_stack, make_auxv
from kvmsentry.platform import layout
from kvmsentry.platform.kvm import TRAP_SYSCALL, KvmPlatform
from kvmsentry.vm import x86
from kvmsentry.vm.memory import OutOfGuestMemory
from kvmsentry.vm.x86 import PAGE_SIZE

# Importing the handler modules registers them in the table.
from kvmsentry.kernel.syscalls import fs as _fs  # noqa: F401
from kvmsentry.kernel.syscalls import info as _info  # noqa: F401
from kvmsentry.kernel.syscalls import mm as _mm  # noqa: F401
from kvmsentry.kernel.syscalls import process as _process  # noqa: F401

# x86-64 Linux without randomization (arch/x86/include/asm/processor.h):
# the stack ends at STACK_TOP; mmap allocates top-down below MMAP_BASE.
STACK_TOP = 0x7FFF_FFFF_F000
INITIAL_STACK_SIZE = 128 * 1024
MMAP_BASE = 0x7FFF_F7FF_F000
HWCAP2_FSGSBASE = 1 << 1
# Status of kvmsentry itself when the sentry fails (a bug, a host error),
# as `docker run` uses 125 for its own failures.
EXIT_SENTRY_FAILURE = 125

_HANDLERS: list = [None] * (max(e.number for e in systable.TABLE) + 1)
_SIGPIPE_SYSCALLS = frozenset(systable.NUMBERS[name] for name in (
    "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendfile", "sendto", "sendmsg", "splice"))


class ExecError(Exception):
    """exec of a program failed; ``errno`` is execve(2)'s, ``str`` the reason."""

    def __init__(self, err: int, message: str):
        super().__init__(message)
        self.errno = err


class SentryBug(Exception):
    """The sentry hit an internal error; ``report`` is the multi-line account."""

    def __init__(self, report: str):
        super().__init__(report)
        self.report = report


class Kernel:
    """A sandbox: one platform, its processes, and the options they run with.

    ``strace`` prints each syscall to ``stderr``; ``root`` is the host
    directory that is the guest's ``/``.
    """

    def __init__(self, platform: KvmPlatform, *, strace: bool = False, root: str = "/",
                 stderr=None):
        self.platform = platform
        self.strace = strace
        self.root = root
        self.stderr = stderr or sys.stderr
        self.reported_unsupported: set[int] = set()
        self.recent = collections.deque(maxlen=16)  # (nr, result) of the last syscalls
        self.syscall_count = 0
        self._hwcap = self._cpuid(1)[3]
        self._hwcap2 = HWCAP2_FSGSBASE if platform._cr4 & x86.CR4_FSGSBASE else 0

    def _cpuid(self, function: int) -> tuple[int, int, int, int]:
        return self.platform._cpuid_leaf(function, 0)

    # -- exec --------------------------------------------------------------
    def exec_first(self, host_path: str, argv: list[bytes], envp: list[bytes], cwd: str,
                   closed_stdio: tuple[int, ...] = ()) -> Task:
        """Load ``host_path`` as pid 1 and return its task, ready to run.

        Raises FileNotFoundError / IsADirectoryError / PermissionError for
        the file, ExecError (errno ENOEXEC) for one that is not a static
        x86-64 ELF, with a reason meant for a person.
        """
        if os.path.isdir(host_path):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", host_path)
        if not os.access(host_path, os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied", host_path)
        with open(host_path, "rb") as f:
            if f.read(2) == b"#!":
                raise ExecError(errno.ENOEXEC, "#! scripts are not supported yet "
                                               "(execve comes with the processes issue)")
        try:
            image = load_elf(host_path)
        except ElfError as e:
            raise ExecError(e.errno, str(e)) from None
        if image.interp is not None:
            raise ExecError(errno.ENOEXEC, f"dynamic executables are not supported yet "
                                           f"(PT_INTERP {image.interp})")
        process = Process(pid=1, ppid=0, pgid=1, sid=1, exe=os.path.abspath(host_path),
                          argv=list(argv), envp=list(envp), cwd=cwd, root=self.root)
        address_space = self.platform.new_address_space()
        mm = MemoryManager(address_space, self.platform.memory,
                           task_size=layout.TASK_SIZE, mmap_base=MMAP_BASE)
        task = Task(tid=1, process=process, mm=mm, fds=FdTable.with_stdio(closed_stdio))
        try:
            entry, rsp = self._load(task, image, host_path, argv, envp)
        except OutOfGuestMemory:
            mm.destroy()
            raise ExecError(errno.ENOMEM, "not enough guest memory to load the program") from None
        except ArgListTooLong as e:
            mm.destroy()
            raise ExecError(errno.E2BIG, str(e)) from None
        task.context = self.platform.new_context(address_space)
        task.context.reset(entry, rsp)
        return task

    def _load(self, task: Task, image, host_path: str, argv, envp) -> tuple[int, int]:
        """Map the segments, brk and stack of ``image``; returns (entry, rsp)."""
        mm = task.mm
        bias = 0
        if image.is_pie:
            lo, _ = image.span()
            bias = (ELF_ET_DYN_BASE - lo) & ~(image.max_align - 1)
        # Page protections: a later segment wins a page it shares (MAP_FIXED).
        page_prot: dict[int, int] = {}
        for seg in image.segments:
            start = (bias + seg.vaddr) & ~(PAGE_SIZE - 1)
            end = page_align_up(bias + seg.end)
            for page in range(start, end, PAGE_SIZE):
                page_prot[page] = seg.prot
        run_start = None
        pages = sorted(page_prot)
        for i, page in enumerate(pages):
            if run_start is None:
                run_start = page
            nxt = pages[i + 1] if i + 1 < len(pages) else None
            if nxt != page + PAGE_SIZE or page_prot[nxt] != page_prot[page]:
                mm.map_region(run_start, page + PAGE_SIZE - run_start, page_prot[page],
                              name=task.process.exe)
                run_start = None
        for seg in image.segments:
            if seg.data:
                mm.write_bytes(bias + seg.vaddr, seg.data)
        end = page_align_up(bias + max(s.end for s in image.segments))
        mm.brk_start = mm.brk = end
        stack_vma = mm.map_region(STACK_TOP - INITIAL_STACK_SIZE, INITIAL_STACK_SIZE,
                                  PROT_READ | PROT_WRITE, name="[stack]", grows_down=True)
        creds = task.process.creds
        auxv = make_auxv(phdr=bias + image.phdr_vaddr, phnum=image.phnum, phent=image.phent,
                         entry=bias + image.entry, uid=creds.uid, euid=creds.euid,
                         gid=creds.gid, egid=creds.egid, hwcap=self._hwcap, hwcap2=self._hwcap2)
        execfn = argv[0] if argv else os.fsencode(host_path)
        stack = build_initial_stack(STACK_TOP, argv, envp, auxv, execfn=execfn)
        if stack.image_base < stack_vma.start:
            raise ExecError(errno.E2BIG, "argument list too long")
        mm.write_bytes(stack.image_base, stack.image)
        return bias + image.entry, stack.rsp

    # -- running -----------------------------------------------------------
    def run(self, task: Task) -> int:
        """Run ``task`` until its process exits; returns the exit status (0-255).

        Raises SentryBug (with a report) when the sentry itself fails.
        """
        ctx = task.context
        try:
            while True:
                if ctx.run() == TRAP_SYSCALL:
                    self.syscall(task)
                else:
                    self.fault(task)
        except TaskExit as e:
            return e.status
        except _Killed as k:
            return 128 + k.signo
        except SentryBug:
            raise
        except Exception as e:  # a sentry bug: stop the VM and say everything
            raise SentryBug(self.bug_report(task, e)) from e

    def syscall(self, task: Task) -> None:
        """Dispatch the syscall in ``task``'s registers and write rax."""
        regs = task.context.regs
        nr = regs.rax
        row = systable.entry(nr) if nr < len(_HANDLERS) else None
        handler = row.handler if row is not None else None
        self.syscall_count += 1
        start = time.perf_counter() if self.strace else 0.0
        if handler is None:
            result = -errno.ENOSYS
            if nr not in self.reported_unsupported:
                self.reported_unsupported.add(nr)
                name = row.name if row is not None else "unknown"
                print(f"kvmsentry: unsupported syscall {name} ({nr})", file=self.stderr, flush=True)
        else:
            n = row.nargs
            try:
                if n == 0:
                    result = handler(task)
                elif n == 1:
                    result = handler(task, regs.rdi)
                elif n == 2:
                    result = handler(task, regs.rdi, regs.rsi)
                elif n == 3:
                    result = handler(task, regs.rdi, regs.rsi, regs.rdx)
                else:
                    args = (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9)
                    result = handler(task, *args[:n])
            except systable.SyscallError as e:
                result = -e.errno
            except GuestFault:
                result = -errno.EFAULT
            except TaskExit:
                if self.strace:
                    self._trace(task, row, nr, regs, None, start)
                raise
        self.recent.append((nr, result))
        if self.strace:
            self._trace(task, row, nr, regs, result, start)
        if result == -errno.EPIPE and nr in _SIGPIPE_SYSCALLS:
            self._sigpipe(task)
        regs.rax = result & 0xFFFF_FFFF_FFFF_FFFF

    def _sigpipe(self, task: Task) -> None:
        """A write to a broken pipe raises SIGPIPE (pipe(7)); its default action kills quietly.

        Until signal delivery lands (the processes issue), a handled or
        ignored or blocked SIGPIPE leaves only the EPIPE the call returned.
        """
        action = task.process.sigactions.get(signal.SIGPIPE)
        handler = int.from_bytes(action[:8], "little") if action else 0  # SIG_DFL is 0
        if handler == 0 and not task.sigmask & (1 << (signal.SIGPIPE - 1)):
            raise _Killed(signal.SIGPIPE)

    def _trace(self, task, row, nr, regs, result, start) -> None:
        from kvmsentry.kernel import strace
        line = strace.format_call(task, row, nr, regs, result, time.perf_counter() - start)
        print(line, file=self.stderr, flush=True)

    def fault(self, task: Task) -> None:
        """Resolve a CPU exception: supply the page, or kill as Linux's default action."""
        ctx = task.context
        f = ctx.fault
        if f.vector == x86.X86_TRAP_PF:
            try:
                code = task.mm.handle_fault(f.cr2, write=bool(f.error_code & x86.X86_PF_WRITE),
                                            execute=bool(f.error_code & x86.X86_PF_INSTR))
            except OutOfGuestMemory:
                self._die(task, signal.SIGKILL, "out of guest memory")
            if code == 0:
                return
            signo, why = signal.SIGSEGV, self._pf_reason(f, code)
        else:
            signo, _ = faults.signal_for_fault(f.vector)
            why = x86.TRAP_NAMES.get(f.vector, f"exception {f.vector}")
            if f.error_code:
                why += f", error code {f.error_code:#x}"
        self._die(task, signo, why)

    @staticmethod
    def _pf_reason(f, code: int) -> str:
        access = "executing" if f.error_code & x86.X86_PF_INSTR else (
            "writing" if f.error_code & x86.X86_PF_WRITE else "reading")
        kind = "no mapping" if code == faults.SEGV_MAPERR else "permission denied"
        return f"page fault {access} address {f.cr2:#x} ({kind})"

    def _die(self, task: Task, signo: int, why: str) -> None:
        ctx = task.context
        name = faults.signal_name(signo)
        lines = [f"kvmsentry: pid {task.pid} killed by {name}: {why}",
                 "  at " + faults.describe_instruction(task.mm, ctx.user_rip),
                 faults.format_registers(ctx.regs, ctx.user_rip, ctx.user_rsp, ctx.user_rflags)]
        print("\n".join(lines), file=self.stderr, flush=True)
        raise _Killed(signo)

    def bug_report(self, task: Task, exc: BaseException) -> str:
        """Registers, the instruction at the user RIP and the last syscalls, for a sentry bug."""
        import traceback
        ctx = task.context
        names = []
        for nr, result in self.recent:
            row = systable.entry(nr)
            names.append(f"{row.name if row else nr}={result}")
        lines = ["kvmsentry: internal error (a bug in the sentry), the guest was stopped:",
                 "".join(traceback.format_exception(exc)).rstrip(),
                 "  user " + faults.describe_instruction(task.mm, ctx.user_rip),
                 faults.format_registers(ctx.regs, ctx.user_rip, ctx.user_rsp, ctx.user_rflags),
                 "  last syscalls: " + " ".join(names)]
        return "\n".join(lines)


class _Killed(Exception):
    def __init__(self, signo: int):
        super().__init__(signo)
        self.signo = signo
