"""The kernel: starts a program, runs its task, dispatches its traps.

``Kernel.exec_first`` loads an ELF, and the interpreter its PT_INTERP
names, into a fresh address space (the execve path of fs/binfmt_elf.c:
PT_LOAD segments, brk, the stack with argv/envp/auxv) and ``Kernel.run`` drives the task's context: every
TRAP_SYSCALL goes through the syscall table, every TRAP_FAULT is either a
page the memory manager supplies or a signal that ends the process, as
Linux's default action would.

Exit statuses of ``run`` follow a shell's convention: the exit code, or
128 + the signal number for a process killed by a signal.
"""

from __future__ import annotations

import _thread
import errno
import os
import signal
import struct
import sys
import threading
import time

from kvmsentry.kernel import fastread, faults, ring, sched, signals
from kvmsentry.kernel.fd import FdTable
from kvmsentry.kernel.pagecache import page_cache_of
from kvmsentry.kernel.mm import (BUS_ADRERR, FAULT_SIGBUS, PROT_EXEC, PROT_READ, PROT_WRITE,
                                 GuestFault, MemoryManager, page_align_up)
from kvmsentry.kernel.syscalls import table as systable
from kvmsentry.kernel.syscalls.process import TaskExit
from kvmsentry.kernel.task import Process, Task
from kvmsentry.loader.elf import ELF_ET_DYN_BASE, IMAGES, ElfError
from kvmsentry.loader.stack import ArgListTooLong, build_initial_stack, make_auxv
from kvmsentry.platform import layout
from kvmsentry.platform.kvm import TRAP_FAULT, TRAP_RING_WAIT, TRAP_SYSCALL, KvmPlatform
from kvmsentry.vm import x86
from kvmsentry.vm.memory import OutOfGuestMemory
from kvmsentry.vm.x86 import PAGE_SIZE

# The other handler modules are imported on the first call of one of
# their syscalls (syscalls/table.py MODULES).
from kvmsentry.kernel.syscalls.signal import ForceSigsegv
from kvmsentry.kernel.syscalls.tasks import load_interpreter

# x86-64 Linux without randomization (arch/x86/include/asm/processor.h):
# the stack ends at STACK_TOP; mmap allocates top-down below MMAP_BASE.
STACK_TOP = 0x7FFF_FFFF_F000
INITIAL_STACK_SIZE = 128 * 1024
MMAP_BASE = 0x7FFF_F7FF_F000
# x86-64's default mmap_rnd_bits (CONFIG_ARCH_MMAP_RND_BITS): mmap_base and
# a PIE's load base move by up to 1 << 28 pages.
MMAP_RND_BITS = 28
# The vvar page and the vDSO above it, between the mmap area and the stack.
VVAR_GVA = MMAP_BASE
# Calls that may change what the getpid family answers (x86-64 numbers:
# execve, setuid, setgid, setreuid, setregid, setresuid, setresgid,
# execveat); see Kernel.refresh_fast_ids.
_ID_SYSCALLS = frozenset((59, 105, 106, 113, 114, 117, 119, 322))
HWCAP2_FSGSBASE = 1 << 1
# Signals sent to kvmsentry that go on to the guest's foreground group
# (Kernel._forward_host_signals), and how often, in seconds, the main thread
# wakes to run their handlers.
HOST_FORWARDED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                                    signal.SIGQUIT, signal.SIGCONT})
HOST_SIGNAL_POLL_S = 0.5
# The same page fault, resolved, coming back with the same registers: after
# this many repeats every page-table level is flushed, after the limit the
# task is stopped as a sentry bug (Kernel._check_fault_loop).
FAULT_LOOP_DEEP_FLUSH = 8
FAULT_LOOP_LIMIT = 10_000
# Status of kvmsentry itself when the sentry fails (a bug, a host error),
# as `docker run` uses 125 for its own failures.
EXIT_SENTRY_FAILURE = 125
PID_MAX = 4194304  # /proc/sys/kernel/pid_max on 64-bit
# A segment's file pages are mapped at exec (not on first touch) when it
# has at most this many: what one fault would map anyway (fault-around).
PREFAULT_SEGMENT_PAGES = 64

# The dispatcher's table: rows by number (syscalls/table.py ROWS).
_ROWS = systable.ROWS
_NR_LIMIT = len(_ROWS)
# arch/x86/entry/syscall_64.c do_syscall_64(regs, int nr): the low 32 bits
# of rax pick the call (2**32 + 39 is getpid; -1 and other negative ints ENOSYS).
_NR_BITS = 0xFFFFFFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
# How many of the last syscalls a bug report names.
RECENT_SYSCALLS = 16
_RESTART_CODES = frozenset({signals.ERESTARTSYS, signals.ERESTARTNOINTR, signals.ERESTARTNOHAND,
                            signals.ERESTART_RESTARTBLOCK})
# sendto/sendmsg raise SIGPIPE themselves (MSG_NOSIGNAL; kernel/syscalls/socket.py).
_SIGPIPE_SYSCALLS = frozenset(systable.NUMBERS[name] for name in (
    "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendfile", "splice"))


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


def _fault_loop_report(task: Task, gva: int, why: str) -> str:
    """The sentry-bug message for a page fault loop: the fault, why, and the
    page-table walk (PageTable.walk)."""
    walk = " ".join(f"[{slot:#x}]={entry:#x}" for slot, entry in task.mm.address_space.page_table.walk(gva))
    return (f"page fault loop: the fault at {gva:#x} (error code {task.context.fault.error_code:#x}) "
            f"came back {task.fault_repeats} times after being resolved: {why}; "
            f"page-table walk from CR3 {task.mm.address_space.cr3:#x}: {walk}")


class Kernel:
    """A sandbox: one platform, its processes, and the options they run with.

    ``strace`` prints each syscall to ``stderr``; ``root`` is the host
    directory that is the guest's ``/``.
    """

    def __init__(self, platform: KvmPlatform, *, strace: bool = False, root: str = "/",
                 stderr=None, pids_limit: int = 1024, binds=(), syscall_path: str = "exit"):
        self.platform = platform
        # --strace must see every call: no exit-free getpid family and no
        # ring path then (kvmsentry/kernel/ring.py).
        platform.fast_syscalls = not strace
        platform.syscall_path = "exit" if strace else ring.choose_path(syscall_path)
        self.ring_auto = syscall_path == "auto"
        self.ring_stats = ring.RingStats()
        # read(2) calls served inside the guest (kvmsentry/kernel/fastread.py),
        # added up as each process's memory goes; for --profile.
        self.fast_reads = 0
        self.boot_time = time.monotonic()  # the sandbox's boot (/proc/uptime)
        self.strace = strace
        self.root = root
        self.binds = tuple(binds)  # --mount options (vfs.mount.Bind)
        self.stderr = stderr or sys.stderr
        self.reported_unsupported: set[int] = set()
        self._unknown_reports = 0
        # (nr, result) of the last syscalls, round-robin (_finish_syscall).
        self._recent_nrs: list[int | None] = [None] * RECENT_SYSCALLS
        self._recent_results: list[int | None] = [None] * RECENT_SYSCALLS
        self._recent_next = 0
        self.tasks: dict[int, Task] = {}
        self.processes: dict[int, Process] = {}
        self.next_pid = 1
        self.pids_limit = pids_limit
        self.bug: SentryBug | None = None
        self._init_exited = threading.Event()
        self._reported_handlers: set[int] = set()
        self._notes: set[str] = set()
        self._host_kills = 0  # terminal signals kvmsentry itself received
        # /proc/sys/kernel/randomize_va_space != 0: exec randomizes the
        # mmap base and the load base of a PIE with an interpreter.
        self.randomize = True
        # False when kvmsentry exits as soon as run() returns (the boot
        # command): pid 1's memory is then left to the host to reclaim in
        # one go (MemoryManager.abandon) instead of freed frame by frame.
        self.free_at_exit = True
        self._hwcap = self._cpuid(1)[3]
        self._hwcap2 = HWCAP2_FSGSBASE if platform._cr4 & x86.CR4_FSGSBASE else 0

    def _cpuid(self, function: int) -> tuple[int, int, int, int]:
        return self.platform._cpuid_leaf(function, 0)

    # -- exec --------------------------------------------------------------
    def exec_first(self, host_path: str, argv: list[bytes], envp: list[bytes], cwd: str,
                   closed_stdio: tuple[int, ...] = (), creds=None) -> Task:
        """Load ``host_path`` as pid 1 and return its task, ready to run.

        ``creds`` (task.Credentials) are the guest's ids (boot --user),
        root when None; they are in its auxv too (AT_UID...).

        Raises FileNotFoundError / IsADirectoryError / PermissionError for
        the file, ExecError for one that cannot be run, with execve(2)'s
        errno and a reason meant for a person: ENOEXEC for a file that is
        not an x86-64 ELF, ENOENT / EACCES / ELIBBAD / EIO for the
        interpreter a dynamic executable names (see load_interpreter).
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
            image = IMAGES.load(host_path)
        except ElfError as e:
            raise ExecError(e.errno, str(e)) from None
        process = Process(pid=1, ppid=0, pgid=1, sid=1, exe=self._guest_exe(host_path),
                          argv=list(argv), envp=list(envp), cwd=cwd, root=self.root)
        if creds is not None:
            process.creds = creds
        # execve(2) keeps ignored signals ignored: a guest started by
        # nohup(1), or by a shell for a background job, ignores what
        # kvmsentry was started ignoring (those it would forward).
        for signo in host_ignored_signals():
            process.sigactions[signo] = struct.pack("<QQQQ", SIG_IGN, 0, 0, 0)
        if self.binds:
            from kvmsentry.kernel.vfs.mount import MountNamespace
            process.mounts = MountNamespace.for_host_root(self.root, self.binds)
        address_space = self.platform.new_address_space()
        mm = self.new_mm(address_space)
        task = Task(tid=1, process=process, mm=mm, fds=FdTable.with_stdio(closed_stdio))
        task.kernel = self
        interp = None
        if image.interp is not None:
            try:
                interp = load_interpreter(task, image.interp)
            except systable.SyscallError as e:
                mm.destroy()
                raise ExecError(e.errno, _interp_reason(e.errno, image.interp)) from None
        try:
            entry, rsp = self._load(mm, process.creds, process.exe, image, host_path, argv, envp,
                                    interp=interp, source=host_path)
        except OSError as e:  # the file went away between the parse and the mapping
            mm.destroy()
            raise ExecError(e.errno, e.strerror) from None
        except OutOfGuestMemory:
            mm.destroy()
            raise ExecError(errno.ENOMEM, "not enough guest memory to load the program") from None
        except ArgListTooLong as e:
            mm.destroy()
            raise ExecError(errno.E2BIG, str(e)) from None
        task.context = self.platform.new_context(address_space)
        task.context.reset(entry, rsp)
        self.next_pid = 2
        self.processes[1] = process
        self.tasks[1] = task
        process.tasks = [task]
        return task

    def new_mm(self, address_space, randomize: bool = True) -> MemoryManager:
        """A fresh user address space for exec, its mmap base randomized.

        As mm/util.c arch_pick_mmap_layout with randomize_va_space 2: the
        top-down mmap area starts ``arch_mmap_rnd()`` (28 bits of pages,
        x86-64's default mmap_rnd_bits) below MMAP_BASE; the vvar/vDSO
        pages stay at MMAP_BASE, above it. ``Kernel.randomize`` False, or
        ``randomize`` False (the process's personality(2) has
        ADDR_NO_RANDOMIZE: fs/binfmt_elf.c leaves PF_RANDOMIZE clear), gives
        the fixed layout.
        """
        return MemoryManager(address_space, self.platform.memory, task_size=layout.TASK_SIZE,
                             mmap_base=MMAP_BASE - self._mmap_rnd(randomize))

    def _mmap_rnd(self, randomize: bool = True) -> int:
        """arch_mmap_rnd(): a random page-aligned offset below 1 << (28 + 12)
        bytes; 0 without randomization (``randomize`` or Kernel.randomize False)."""
        if not (self.randomize and randomize):
            return 0
        # os.urandom, not the secrets module: it would import hmac, hashlib
        # and random (~4 ms of every start) for the same bits.
        bits = int.from_bytes(os.urandom(4), "little") & ((1 << MMAP_RND_BITS) - 1)
        return bits << 12

    def _guest_exe(self, host_path: str) -> str:
        """The guest path of the host file ``host_path`` (what /proc/self/exe
        reads): canonical, symlinks resolved, inside the guest root or
        beneath the --mount that holds it."""
        real = os.path.realpath(host_path)
        best = -1
        guest = None
        for bind in self.binds:  # a --mount's files are seen at its guest path
            if len(bind.host) >= best and (real == bind.host
                                           or real.startswith(bind.host.rstrip("/") + "/")):
                best = len(bind.host)
                guest = os.path.join(bind.guest, os.path.relpath(real, bind.host))
        if guest is not None:
            return os.path.normpath(guest)
        root = os.path.realpath(self.root or "/")
        if root == "/":
            return real
        if real == root or not real.startswith(root + os.sep):
            return "/" + os.path.basename(real)
        return "/" + os.path.relpath(real, root)

    def _load(self, mm: MemoryManager, creds, exe: str, image, host_path: str, argv,
              envp, interp=None, source=None, randomize: bool = True) -> tuple[int, int]:
        """Map ``image`` (and its interpreter), brk, vDSO and stack into ``mm``.

        fs/binfmt_elf.c load_elf_binary: an ET_EXEC image sits at its
        p_vaddr; an ET_DYN one with an interpreter at ELF_ET_DYN_BASE plus
        a random offset, aligned to its largest p_align (a static-pie at
        ELF_ET_DYN_BASE). ``interp`` is ``(ElfImage, guest path, host
        path or None)`` of the PT_INTERP file (load_interpreter): an ET_DYN
        interpreter goes in the mmap area (load_elf_interp's top-down
        mmap), an ET_EXEC one at its p_vaddr; the task starts at the
        interpreter's entry with AT_BASE its load bias, AT_ENTRY/AT_PHDR
        the program's. ``source`` is the program's host path (its
        segments become private file mappings of the page cache), None
        for a file the guest wrote (its bytes are copied in). Returns
        (entry, rsp). Raises OutOfGuestMemory, ArgListTooLong, OSError
        (the host file cannot be opened). ``randomize`` False (personality
        ADDR_NO_RANDOMIZE) leaves out the random offset.
        """
        bias = 0
        if image.is_pie:
            lo, _ = image.span()
            base = ELF_ET_DYN_BASE + (self._mmap_rnd(randomize) if interp is not None else 0)
            bias = (base - lo) & ~(image.max_align - 1)
        end = self._map_image(mm, image, bias, exe, source, denywrite=True)
        mm.brk_start = mm.brk = end
        entry = bias + image.entry
        interp_bias = 0
        if interp is not None:
            interp_image, interp_path, interp_source = interp
            if interp_image.is_pie:
                lo, hi = interp_image.span()
                align = interp_image.max_align
                start = mm.get_unmapped_area(hi - lo + align - PAGE_SIZE)
                interp_bias = ((start + align - 1) & ~(align - 1)) - lo
            self._map_image(mm, interp_image, interp_bias, interp_path, interp_source)
            entry = interp_bias + interp_image.entry
        vdso = self.platform.vdso
        mm.map_region(VVAR_GVA, PAGE_SIZE, PROT_READ, name="[vvar]")
        mm.map_region(VVAR_GVA + PAGE_SIZE, vdso.size, PROT_READ | PROT_EXEC, name="[vdso]")
        mm.share_pages(vdso.frames(VVAR_GVA))
        auxv = make_auxv(phdr=bias + image.phdr_vaddr, phnum=image.phnum, phent=image.phent,
                         entry=bias + image.entry, base=interp_bias, uid=creds.uid,
                         euid=creds.euid, gid=creds.gid, egid=creds.egid, hwcap=self._hwcap,
                         hwcap2=self._hwcap2, sysinfo_ehdr=VVAR_GVA + PAGE_SIZE)
        execfn = argv[0] if argv else os.fsencode(host_path)
        stack = build_initial_stack(STACK_TOP, argv, envp, auxv, execfn=execfn)
        # fs/exec.c setup_arg_pages: the stack holds the strings (up to
        # build_initial_stack's 2 MiB) and 128 KiB more below them.
        used = (STACK_TOP - stack.image_base + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        size = max(INITIAL_STACK_SIZE, used + INITIAL_STACK_SIZE)
        mm.map_region(STACK_TOP - size, size, PROT_READ | PROT_WRITE, name="[stack]",
                      grows_down=True)
        mm.write_bytes(stack.image_base, stack.image)
        return entry, stack.rsp

    def _map_image(self, mm: MemoryManager, image, bias: int, name: str, source,
                   denywrite: bool = False) -> int:
        """Map the PT_LOAD segments of ``image`` at ``bias`` bytes; returns their page-aligned end.

        fs/binfmt_elf.c elf_load: each segment is a MAP_PRIVATE|MAP_FIXED
        mapping of the host file ``source`` at its page-aligned p_offset
        (a later segment wins a page two share), served by the page cache:
        every process running the program shares its read-only pages and
        copies a written one. Past p_filesz the rest of the last file page
        is zeroed (padzero) when p_memsz > p_filesz, and whole bss pages
        are anonymous. Segments of
        at most PREFAULT_SEGMENT_PAGES pages are mapped now, larger ones on
        first touch. ``source`` None (a file the guest wrote): the segments'
        bytes are copied into anonymous pages. ``denywrite``: the program
        itself, not its interpreter (Linux refuses writes to it while it
        runs, ETXTBSY): a write fault copies a whole window (mm.Vma).
        """
        if source is None:
            return self._copy_image(mm, image, bias, name)
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            mapping = page_cache_of(self.platform.memory).host_mapping(os.fsencode(source), fd)
        finally:
            os.close(fd)
        for seg in image.segments:
            start = bias + seg.vaddr
            page = start & ~(PAGE_SIZE - 1)
            file_end = start + seg.filesz
            mem_end = page_align_up(start + seg.memsz)
            anon_start = page_align_up(start)
            if seg.filesz:
                anon_start = page_align_up(file_end)
                mm.map_file(page, anon_start - page, seg.prot, mapping, seg.offset - (start - page),
                            name=name, denywrite=denywrite,
                            populate=anon_start - page <= PREFAULT_SEGMENT_PAGES * PAGE_SIZE)
            if seg.memsz > seg.filesz and anon_start > file_end and mm.find_vma(file_end):
                # padzero: the whole rest of the page, not only up to p_memsz
                # (ld.so's minimal malloc hands out what follows its bss).
                mm.write_bytes(file_end, bytes(anon_start - file_end))
            if mem_end > anon_start:
                mm.map_region(anon_start, mem_end - anon_start, seg.prot)
        return page_align_up(bias + max(s.end for s in image.segments))

    def _copy_image(self, mm: MemoryManager, image, bias: int, name: str) -> int:
        """``_map_image`` for an image without a host file: anonymous pages
        holding a copy of each segment's bytes (a later segment wins a page
        it shares, as its MAP_FIXED mmap would)."""
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
                mm.map_region(run_start, page + PAGE_SIZE - run_start, page_prot[page], name=name)
                run_start = None
        for seg in image.segments:
            if seg.data:
                mm.write_bytes(bias + seg.vaddr, seg.data)
        return page_align_up(bias + max(s.end for s in image.segments))

    # -- running -----------------------------------------------------------
    def run(self, task: Task, timeout: float | None = None) -> int:
        """Run the sandbox whose first task is ``task`` until that process exits.

        Every task runs on its own thread (``_task_main``); this thread
        waits for pid 1. When pid 1 exits, every other process is killed,
        as when the init of a pid namespace dies. Returns pid 1's status as
        a shell shows it: the exit code, or 128 + the killing signal. After
        ``timeout`` seconds everything is killed and the status is 124, as
        timeout(1) says. SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to
        kvmsentry go to the guest's foreground process group (pid 1's).
        Raises SentryBug (with a report) when the sentry itself failed.
        """
        self._forward_host_signals()
        # Python runs a signal handler only on the main thread, and only when
        # that thread wakes: a host signal the kernel hands to a task thread
        # would sit unhandled while the main thread sleeps below. Task threads
        # inherit the mask of the thread that creates them, so block the
        # forwarded signals while the first one is created: every guest
        # thread descends from it, and the host delivers to the main thread.
        saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HOST_FORWARDED_SIGNALS)
        try:
            with sched.BKL:
                self.start_task(task)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        if not self._wait_init_exit(timeout):
            with sched.BKL:
                for process in list(self.processes.values()):
                    self.kill_process(process, signal.SIGKILL)
            print(f"kvmsentry: --timeout: killed the sandbox after {timeout:g} s",
                  file=self.stderr, flush=True)
            return 124
        if self.bug is not None:
            raise self.bug
        with sched.BKL:
            for process in list(self.processes.values()):
                if process.wait_status is None:
                    self.kill_process(process, signal.SIGKILL)
        status = task.process.wait_status
        return (status >> 8) & 0xFF if status & 0x7F == 0 else 128 + (status & 0x7F)

    def _wait_init_exit(self, timeout: float | None) -> bool:
        """Wait until pid 1 has exited or ``timeout`` seconds passed; True if it exited.

        Sleeps in short slices so the main thread runs pending host-signal
        handlers promptly even if a signal was taken by another thread.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = HOST_SIGNAL_POLL_S if deadline is None else min(
                HOST_SIGNAL_POLL_S, deadline - time.monotonic())
            if remaining <= 0:
                return self._init_exited.is_set()
            if self._init_exited.wait(remaining):
                return True

    def _forward_host_signals(self) -> None:
        """Pass terminal signals sent to kvmsentry on to the guest (main thread only).

        SIGCONT goes along too: timeout(1) sends SIGTERM then SIGCONT, and a
        stopped guest must wake to die of the SIGTERM, as on Linux. A second
        SIGINT/SIGTERM/SIGHUP/SIGQUIT while the first has not ended the
        sandbox kills it (SIGKILL), so kvmsentry can always be stopped.
        """
        if threading.current_thread() is not threading.main_thread():
            return

        def forward(signo, frame):
            # Not in the handler itself: the main thread may hold the BKL.
            threading.Thread(target=self._deliver_host_signal, args=(signo,), daemon=True).start()

        # Those kvmsentry was started ignoring are forwarded too: the guest
        # starts ignoring them (exec_first), but may install a handler, as
        # a server run in a shell's background job does for SIGINT.
        for signo in HOST_FORWARDED_SIGNALS:
            signal.signal(signo, forward)

    def _deliver_host_signal(self, signo: int) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, HOST_FORWARDED_SIGNALS)
        with sched.BKL:
            init = self.processes.get(1)
            if init is None:
                return
            # A signal ignored at start never escalates to SIGKILL: natively
            # it could not have stopped the program either.
            if signo != signal.SIGCONT and signo not in host_ignored_signals():
                self._host_kills += 1
                if self._host_kills > 1:
                    for process in list(self.processes.values()):
                        self.kill_process(process, signal.SIGKILL)
                    return
            for process in list(self.processes.values()):
                if process.pgid == init.pgid and not process.zombie:
                    self.send_signal(process, signo, info=signals.siginfo(signo, signals.SI_KERNEL))

    def start_task(self, task: Task) -> None:
        """Start the host thread that runs ``task`` (BKL held).

        A bare thread (_thread.start_new_thread), not threading.Thread:
        its start() waits until the new thread has run, a handshake of two
        context switches that cost 0.3-0.5 ms of every fork on a loaded
        machine here; the new thread only blocks on the BKL we hold anyway.
        """
        task.kernel = self
        self.tasks[task.tid] = task
        _thread.start_new_thread(self._task_main, (task,))

    def _task_main(self, task: Task) -> None:
        """One guest thread: run it, handle each trap under the BKL, until it exits."""
        sched.set_current(task)
        ctx = task.context
        process = task.process
        sched.BKL.acquire()
        poller = None
        try:
            try:
                self.refresh_fast_ids(task)
                if self.platform.syscall_path == "ring" and self.platform.fast_syscalls:
                    poller = ring.RingPoller(self, task, self.ring_stats, auto=self.ring_auto)
                    poller.start()
                bkl = sched.BKL
                while process.wait_status is None and not task.exited:
                    if poller is not None:
                        poller.task_in_sentry = False
                    bkl.release()
                    try:
                        kind = ctx.run()
                    finally:
                        bkl.acquire()
                    if poller is not None:
                        # A call posted while this thread runs a call or a
                        # fault is not one its vCPU made (ring.py).
                        poller.task_in_sentry = kind == TRAP_SYSCALL or kind == TRAP_FAULT
                    if kind == TRAP_SYSCALL:
                        nr = ctx.regs.rax & _NR_BITS
                        self.syscall(task)
                        if nr in _ID_SYSCALLS:
                            self.after_syscall(task, nr)
                        if poller is not None:
                            poller.wake()
                    elif kind == TRAP_RING_WAIT:
                        self._ring_wait(task, poller)
                    elif kind == TRAP_FAULT:
                        self.fault(task)
                    if task.restart is not None or task.signal_pending():
                        self.handle_signals(task)
                    if process.stopped:
                        self.stopped_wait(task)
                        # Continued: what arrived meanwhile acts before ring 3 runs again.
                        if task.signal_pending():
                            self.handle_signals(task)
            except TaskExit as e:
                if e.group or len(process.tasks) == 1:
                    self.exit_process(process, (e.status & 0xFF) << 8)
            except _Killed as k:
                self.exit_process(process, k.signo)
            except ForceSigsegv:
                self.exit_process(process, signal.SIGSEGV)
            if poller is not None:
                poller.stop()
            self.exit_task(task)
        except Exception as e:  # a sentry bug: stop everything and say it all
            self.bug = SentryBug(self.bug_report(task, e))
            self._init_exited.set()
        finally:
            sched.BKL.release()

    def after_syscall(self, task: Task, nr: int) -> None:
        """Keep the getpid family's answers current after call ``nr`` (BKL held)."""
        if nr in _ID_SYSCALLS:
            for thread in task.process.tasks:
                self.refresh_fast_ids(thread)

    def _ring_wait(self, task: Task, poller) -> None:
        """TRAP_RING_WAIT: finish the call the ring path handed to this thread (BKL held).

        The poller ran it (its result goes to rax, or its exception is
        raised here, as if the call had run on this thread), handed it
        back unrun, or never claimed it: then this thread runs it from the
        registers, which hold the call as at a plain exit.
        """
        outcome = poller.collect() if poller is not None else None
        ctx = task.context
        if outcome is None or outcome[0] == "bounce":
            nr = ctx.regs.rax & _NR_BITS
            self.syscall(task)
            self.after_syscall(task, nr)
        elif outcome[0] == "raise":
            raise outcome[1]
        else:
            ctx.regs.rax = outcome[1]
        if poller is not None:
            poller.wake()

    def refresh_fast_ids(self, task: Task) -> None:
        """Give ``task``'s vCPU the answers of its getpid family (BKL held).

        The runtime answers getpid, getppid, gettid, getuid, geteuid,
        getgid and getegid from the vCPU's frame page without an exit
        (guest/runtime.S vcpu_syscall_entry); the sentry calls this when
        one of them may have changed: at a task's start, after a call of
        _ID_SYSCALLS (for every thread: credentials are per process here)
        and for orphans when their parent exits (exit_task).
        """
        ctx = task.context
        if ctx is None or task.exited:
            return
        process = task.process
        creds = process.creds
        # The trampoline is in the process's vDSO; without one where _load
        # maps it, the calls exit as the others do.
        vma = task.mm.find_vma(VVAR_GVA + PAGE_SIZE) if task.mm is not None else None
        fast_return = 0
        if vma is not None and vma.name == "[vdso]" and vma.start == VVAR_GVA + PAGE_SIZE:
            fast_return = vma.start + self.platform.vdso.fast_return_offset
        ctx.set_fast_ids((process.pid, process.ppid, task.tid, creds.uid, creds.euid, creds.gid, creds.egid),
                         fast_return)

    # -- signals (default actions; handlers come with signal delivery) ---------
    def handle_signals(self, task: Task) -> None:
        """Act on the task's pending, unblocked signals (BKL held); signal(7).

        A handler gets a frame (kvmsentry.kernel.signals); a default action
        that terminates kills the process; ignored signals are dropped.
        An interrupted restartable syscall is restarted or fails with
        EINTR, as SA_RESTART says.
        """
        ctx = task.context
        restart = task.restart
        task.restart = None
        if ctx.in_runtime and ctx._resume_as_is:
            # Stopped inside the runtime's stubs: deliver at the next trap.
            return
        process = task.process
        delivered = None
        pending = (task.pending | process.pending) & ~task.sigmask
        while pending and delivered is None:
            holder, signo = signals.next_pending(task, pending)
            pending &= ~(1 << (signo - 1))
            info = signals.dequeue_signal(holder, signo)
            handler = _handler_of(process, signo)
            if signo == signal.SIGKILL or (handler == SIG_DFL and signo in _DEFAULT_TERMINATE):
                raise _Killed(signo)
            if handler == SIG_DFL and signo in _DEFAULT_STOP:
                self._group_stop(process, signo)
                continue
            if handler in (SIG_DFL, SIG_IGN):
                continue
            action = signals.SigAction(process.sigactions[signo])
            if restart is not None:
                ctx.regs.rax = signals.restart_syscall(task, restart[1], action, restart[0]) & _U64
                restart = None
            try:
                signals.setup_frame(task, signo, action, info or signals.siginfo(signo))
            except (GuestFault, signals._NoRestorer):
                raise _Killed(signal.SIGSEGV) from None
            delivered = signo
        if restart is not None:
            ctx.regs.rax = signals.restart_syscall(task, restart[1], None, restart[0]) & _U64
        if delivered is None and task.saved_sigmask is not None:
            task.sigmask = task.saved_sigmask
            task.saved_sigmask = None

    def send_signal(self, process, signo: int, task: Task | None = None,
                    info: bytes | None = None) -> None:
        """Queue ``signo`` for ``process`` (or one of its threads) and wake it (BKL held).

        ``info`` is the 128-byte siginfo the handler gets (SI_KERNEL when None).
        """
        if process.wait_status is not None or signo == 0:
            return
        if signo == signal.SIGCONT:
            self._continue(process)
        elif signo in _DEFAULT_STOP:
            for holder in [process] + process.tasks:
                if holder.pending & (1 << (signal.SIGCONT - 1)):
                    signals.dequeue_signal(holder, signal.SIGCONT)
        handler = _handler_of(process, signo)
        bit = 1 << (signo - 1)
        blocked = all(t.sigmask & bit for t in ([task] if task is not None else process.tasks))
        if signo != signal.SIGKILL and not blocked and (handler == SIG_IGN or (
                handler == SIG_DFL and signo not in _DEFAULT_TERMINATE and signo not in _DEFAULT_STOP)):
            return  # discarded at generation, as kernel/signal.c sig_ignored()
        if signo == signal.SIGKILL:
            self.kill_process(process, signo)
            return
        if info is None:
            info = signals.siginfo(signo, signals.SI_KERNEL)
        signals.queue_signal(task if task is not None else process, signo, info)
        targets = [task] if task is not None else list(process.tasks)
        for target in targets:
            self._wake(target)

    # -- job control ---------------------------------------------------------------
    def _group_stop(self, process, signo: int) -> None:
        """Stop every thread of ``process`` (a stop signal's default action); tell the parent."""
        if process.stopped:
            return
        process.stopped = True
        process.stop_signal = signo
        process.stop_unreported = True
        for other in process.tasks:
            other.context.kick()
        self._notify_parent(process, 5, signo)  # CLD_STOPPED

    def _continue(self, process) -> None:
        """SIGCONT: a stopped process runs again, whatever its SIGCONT handler (BKL held)."""
        for holder in [process] + process.tasks:
            for stop in _DEFAULT_STOP:
                if holder.pending & (1 << (stop - 1)):
                    signals.dequeue_signal(holder, stop)
        if not process.stopped:
            return
        process.stopped = False
        process.stop_unreported = False
        process.continue_unreported = True
        if process.stop_wait is not None:
            process.stop_wait.wake_all()
        self._notify_parent(process, 6, signal.SIGCONT)  # CLD_CONTINUED

    def _notify_parent(self, process, code: int, signo: int) -> None:
        """SIGCHLD (unless SA_NOCLDSTOP) and a wake-up for a parent in wait4."""
        parent = process.parent
        if parent is None or parent.wait_status is not None:
            return
        self._child_wait(parent).wake_all()
        action = parent.sigactions.get(signal.SIGCHLD)
        if action and int.from_bytes(action[8:16], "little") & signals.SA_NOCLDSTOP:
            return
        self.send_signal(parent, signal.SIGCHLD, info=signals.siginfo(
            signal.SIGCHLD, code, pid=process.pid, uid=process.creds.uid, status=signo))

    def stopped_wait(self, task: Task) -> None:
        """Sleep while the task's process is stopped (until SIGCONT or death)."""
        process = task.process
        if process.stop_wait is None:
            process.stop_wait = sched.WaitQueue()
        process.stop_wait.wait(task, lambda: not process.stopped or process.wait_status is not None
                               or bool(task.pending & (1 << (signal.SIGKILL - 1))),
                               interruptible=False)

    def _wake(self, task: Task) -> None:
        """Make ``task`` notice a signal soon (BKL held).

        Asleep on a wait queue, it is in the sentry and looks at its
        signals before ring 3 runs again: waking the queue is enough (a
        kick would leave immediate_exit set, one spurious exit later: one
        per child reaped by a shell's wait4). Else its vCPU may be running:
        kick it out of KVM_RUN (or out of a blocking host call).
        """
        if task.waiting_on is not None:
            task.waiting_on.wake_all()
        elif task.context is not None:
            task.context.kick()

    def kill_process(self, process, signo: int) -> None:
        """Kill every thread of ``process`` with ``signo`` (SIGKILL's path; BKL held)."""
        if process.wait_status is not None:
            return
        process.wait_status = signo
        if process.stop_wait is not None:
            process.stop_wait.wake_all()
        for task in process.tasks:
            task.pending |= 1 << (signal.SIGKILL - 1)
            self._wake(task)

    # -- exit and wait ---------------------------------------------------------
    def exit_process(self, process, wait_status: int) -> None:
        """The process ends with ``wait_status`` (exit code << 8, or a signal); BKL held.

        Every other thread is killed (exit_group(2)).
        """
        if process.wait_status is None:
            process.wait_status = wait_status
        for other in process.tasks:
            other.pending |= 1 << (signal.SIGKILL - 1)
            self._wake(other)

    def exit_task(self, task: Task) -> None:
        """Tear down ``task``; the last one out turns the process into a zombie (BKL held)."""
        process = task.process
        task.exited = True
        if task in process.tasks:
            process.tasks.remove(task)
        self.tasks.pop(task.tid, None)
        self._release_vfork(task)
        if task.clear_child_tid and task.mm.users > 1:
            # CLONE_CHILD_CLEARTID: pthread_join waits on this word (kernel/fork.c mm_release).
            try:
                task.mm.copy_out(task.clear_child_tid, b"\0\0\0\0")
                _futex_wake(task, task.clear_child_tid, 1)
            except GuestFault:
                pass
        if task.context is not None:
            task.context.release()
            task.context = None
        task.fds.users = getattr(task.fds, "users", 1) - 1
        if task.fds.users == 0:
            task.fds.close_all()
        self.drop_mm(task.mm, final=process.pid == 1 and not process.tasks
                     and not self.free_at_exit)
        if process.tasks:
            return
        if process.wait_status is None:
            process.wait_status = 0
        # Children go to pid 1 (the sandbox's init), as orphans do, and get
        # their prctl(PR_SET_PDEATHSIG) signal.
        init = self.processes.get(1)
        for child in process.children:
            for child_task in child.tasks:
                if child_task.pdeath_signal:
                    self.send_signal(child, child_task.pdeath_signal, child_task)
            child.parent = init
            child.ppid = 1
            for child_task in child.tasks:
                self.refresh_fast_ids(child_task)
            if init is not None and init is not process:
                init.children.append(child)
                if child.zombie:
                    self._child_wait(init).wake_all()
        process.children = []
        process.zombie = True
        parent = process.parent
        if process.pid == 1:
            self._init_exited.set()
        elif parent is not None and parent.wait_status is None and _reaps_itself(parent):
            # SIGCHLD ignored or SA_NOCLDWAIT: no zombie (kernel/signal.c do_notify_parent).
            parent.children.remove(process)
            self.processes.pop(process.pid, None)
            self._child_wait(parent).wake_all()
        elif parent is not None and parent.wait_status is None:
            self._child_wait(parent).wake_all()
            if process.exit_signal:
                status = process.wait_status
                code, value = ((1, (status >> 8) & 0xFF) if status & 0x7F == 0 else (2, status & 0x7F))
                self.send_signal(parent, process.exit_signal, info=signals.siginfo(
                    process.exit_signal, code, pid=process.pid, uid=process.creds.uid, status=value))
        else:
            self.processes.pop(process.pid, None)

    def alloc_pid(self) -> int:
        """A free pid/tid in the sandbox's namespace; EAGAIN at --pids-limit (BKL held).

        The limit counts tasks (threads too) and zombies, as the pids cgroup.
        """
        zombies = sum(1 for p in self.processes.values() if p.zombie)
        if len(self.tasks) + zombies >= self.pids_limit:
            raise systable.SyscallError(errno.EAGAIN)
        pid = self.next_pid
        while pid in self.processes or pid in self.tasks:
            pid = pid + 1 if pid < PID_MAX else 2
        self.next_pid = pid + 1 if pid < PID_MAX else 2
        return pid

    def note_once(self, key: str, message: str) -> None:
        """Say ``message`` on stderr the first time ``key`` comes up."""
        if key not in self._notes:
            self._notes.add(key)
            print(f"kvmsentry: {message}", file=self.stderr, flush=True)

    def drop_mm(self, mm: MemoryManager, final: bool = False) -> None:
        """One task stops using ``mm``; the last one frees it. ``final``:
        the sandbox ends with it (pid 1's exit, Kernel.free_at_exit False):
        its frames are left to the host (MemoryManager.abandon)."""
        mm.users -= 1
        if mm.users == 0:
            fastread.drop_mm(mm)
            if final:
                mm.abandon()
            else:
                mm.destroy()

    def _release_vfork(self, task: Task) -> None:
        """A vfork child exec'd or exited: its parent may run again."""
        if task.vfork_parent is not None and not task.vfork_done:
            task.vfork_done = True
            self._child_wait(task.vfork_parent.process).wake_all()

    @staticmethod
    def _child_wait(process) -> sched.WaitQueue:
        if process.child_wait is None:
            process.child_wait = sched.WaitQueue()
        return process.child_wait

    def syscall(self, task: Task) -> None:
        """Dispatch the syscall in ``task``'s registers and write rax."""
        regs = task.context.regs
        nr = regs.rax & _NR_BITS  # do_syscall_64 takes an int: the upper half is ignored
        row = _ROWS[nr] if nr < _NR_LIMIT else None
        handler = row.handler if row is not None else None
        start = time.perf_counter() if self.strace else 0.0
        if handler is None:
            result = self._unsupported(nr, row)
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
                elif n == 4:
                    result = handler(task, regs.rdi, regs.rsi, regs.rdx, regs.r10)
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
        if self.strace:
            self._trace(task, row, nr, regs, result, start)
        regs.rax = self._finish_syscall(task, nr, result)

    def _finish_syscall(self, task: Task, nr: int, result: int) -> int:
        """After call ``nr`` returned ``result`` (an int, -errno on error):
        record it, raise SIGPIPE for EPIPE, note a restartable interruption
        for handle_signals; returns the 64-bit value for rax."""
        # The last RECENT_SYSCALLS calls, for bug_report: two fixed lists
        # written round-robin (no allocation per call).
        i = self._recent_next
        self._recent_nrs[i] = nr
        self._recent_results[i] = result
        self._recent_next = (i + 1) % RECENT_SYSCALLS
        if result >= 0:
            return result & _U64
        if result == -errno.EPIPE and nr in _SIGPIPE_SYSCALLS:
            # A seqpacket socket's EPIPE comes without SIGPIPE (kernel/socket.py).
            if not task.__dict__.pop("epipe_quiet", False):
                self._sigpipe(task)
        if -result in _RESTART_CODES:
            task.restart = (nr, result)  # handle_signals decides: restart or EINTR
            result = -errno.EINTR
        return result & _U64

    def _unsupported(self, nr: int, row) -> int:
        """-ENOSYS for a call without a handler, named on stderr once per number."""
        if nr not in self.reported_unsupported and (row is not None or self._unknown_reports < 8):
            # Numbers Linux does not have are named a few times only: a
            # program probing many of them must not flood stderr.
            self.reported_unsupported.add(nr)
            self._unknown_reports += row is None
            name = row.name if row is not None else "unknown"
            print(f"kvmsentry: unsupported syscall {name} ({nr})", file=self.stderr, flush=True)
        return -errno.ENOSYS

    def dispatch(self, task: Task, nr: int, args: tuple[int, ...]) -> int:
        """Run syscall ``nr`` with ``args`` (six ints) for ``task``; returns rax (BKL held).

        What :meth:`syscall` does without the registers, for the ring
        path's poller (kvmsentry/kernel/ring.py), which reads the call from
        the request page while the vCPU spins. Never used with --strace.
        The answer is the 64-bit value for rax (-errno as two's complement).
        """
        nr &= _NR_BITS
        row = _ROWS[nr] if nr < _NR_LIMIT else None
        handler = row.handler if row is not None else None
        if handler is None:
            result = self._unsupported(nr, row)
        else:
            try:
                result = handler(task, *args[:row.nargs])
            except systable.SyscallError as e:
                result = -e.errno
            except GuestFault:
                result = -errno.EFAULT
        return self._finish_syscall(task, nr, result)

    def _sigpipe(self, task: Task) -> None:
        """A write to a broken pipe raises SIGPIPE for the writing thread (pipe(7))."""
        self.send_signal(task.process, signal.SIGPIPE, task)

    def _trace(self, task, row, nr, regs, result, start) -> None:
        from kvmsentry.kernel import strace
        line = strace.format_call(task, row, nr, regs, result, time.perf_counter() - start)
        print(line, file=self.stderr, flush=True)

    def fault(self, task: Task) -> None:
        """Resolve a CPU exception: supply the page, or kill as Linux's default action."""
        ctx = task.context
        if ctx.in_fast_read(ctx.user_rip):  # in the exit-free read's trampoline
            fastread.fault(self, task)
            return
        f = ctx.fault
        if f.vector == x86.X86_TRAP_PF:
            try:
                code = task.mm.handle_fault(f.cr2, write=bool(f.error_code & x86.X86_PF_WRITE),
                                            execute=bool(f.error_code & x86.X86_PF_INSTR))
            except OutOfGuestMemory:
                self._die(task, signal.SIGKILL, "out of guest memory")
            if code == 0:
                self._check_fault_loop(task, f.cr2)
                return
            if code == FAULT_SIGBUS:  # past the end of a mapped file (mmap(2))
                signo, why = signal.SIGBUS, f"access past the end of a mapped file at {f.cr2:#x}"
                si_code, addr = BUS_ADRERR, f.cr2
            else:
                signo, why = signal.SIGSEGV, self._pf_reason(f, code)
                si_code, addr = code, f.cr2
        else:
            signo, si_code = faults.signal_for_fault(f.vector)
            addr = ctx.user_rip if signo != signal.SIGSEGV else 0
            why = x86.TRAP_NAMES.get(f.vector, f"exception {f.vector}")
            if f.error_code:
                why += f", error code {f.error_code:#x}"
        handler = _handler_of(task.process, signo)
        if handler not in (SIG_DFL, SIG_IGN) and not task.sigmask & (1 << (signo - 1)):
            # force_sig_fault: the handler runs now, on the faulting state.
            action = signals.SigAction(task.process.sigactions[signo])
            try:
                signals.setup_frame(task, signo, action, signals.siginfo(signo, si_code, addr=addr), fault=f)
                return
            except (GuestFault, signals._NoRestorer):
                signo, why = signal.SIGSEGV, why + "; the signal frame could not be written"
        self._die(task, signo, why)

    def _check_fault_loop(self, task: Task, gva: int) -> None:
        """Stop a task whose page fault the sentry resolves without effect.

        A fault the memory manager answers "mapped" should not come back
        with the same registers while no page was unmapped (another
        thread's munmap or MADV_DONTNEED makes a new fault): if it does,
        either the MMU keeps an entry the flushes did not reach, or the
        page table does not hold what the memory manager's ``pages`` says
        (a sentry bug no flush cures). After FAULT_LOOP_DEEP_FLUSH repeats
        the leaf entry is checked against ``pages`` (a mismatch stops the
        task now) and every page-table page on the walk is flushed; after
        FAULT_LOOP_LIMIT the task is stopped. Stopping raises RuntimeError:
        the sentry-bug report, with the walk, not a hang.
        """
        regs = task.context.regs
        key = (gva, regs.rip, regs.rsp, regs.rax, regs.rcx, task.mm.drops)
        if key != task.fault_key:
            task.fault_key, task.fault_repeats = key, 0
            return
        task.fault_repeats += 1
        if task.fault_repeats == FAULT_LOOP_DEEP_FLUSH:
            frame = task.mm.pages.get(gva >> x86.PAGE_SHIFT)
            if frame is not None and task.mm.address_space.page_table.frame_of(gva) != frame:
                raise RuntimeError(_fault_loop_report(task, gva, "the page table does not map the "
                                                          f"page's frame {frame:#x}"))
            task.mm.address_space.mark_stale(gva, every_level=True)
        elif task.fault_repeats >= FAULT_LOOP_LIMIT:
            raise RuntimeError(_fault_loop_report(task, gva, "no flush cured it"))

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

    def recent_syscalls(self) -> list[tuple[int, int]]:
        """(number, result) of the last RECENT_SYSCALLS syscalls, oldest first."""
        i = self._recent_next
        pairs = zip(self._recent_nrs[i:] + self._recent_nrs[:i],
                    self._recent_results[i:] + self._recent_results[:i])
        return [(nr, result) for nr, result in pairs if nr is not None]

    def bug_report(self, task: Task, exc: BaseException) -> str:
        """Registers, the instruction at the user RIP and the last syscalls, for a sentry bug."""
        import traceback
        ctx = task.context
        names = []
        for nr, result in self.recent_syscalls():
            row = systable.entry(nr)
            names.append(f"{row.name if row else nr}={result}")
        lines = ["kvmsentry: internal error (a bug in the sentry), the guest was stopped:",
                 "".join(traceback.format_exception(exc)).rstrip()]
        if ctx is not None:
            lines += [f"  pid {task.pid} tid {task.tid} user " + faults.describe_instruction(task.mm, ctx.user_rip),
                      faults.format_registers(ctx.regs, ctx.user_rip, ctx.user_rsp, ctx.user_rflags)]
        lines.append("  last syscalls: " + " ".join(names))
        return "\n".join(lines)


SIG_DFL = 0
SIG_IGN = 1
# Signals whose default action ends the process (signal(7): Term and Core).
_DEFAULT_TERMINATE = frozenset({
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP,
    signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGKILL, signal.SIGUSR1,
    signal.SIGSEGV, signal.SIGUSR2, signal.SIGPIPE, signal.SIGALRM, signal.SIGTERM,
    signal.SIGSTKFLT, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGVTALRM, signal.SIGPROF,
    signal.SIGIO, signal.SIGPWR, signal.SIGSYS}) | frozenset(range(32, 65))  # real-time: 32-64


# Signals whose default action stops the process.
_DEFAULT_STOP = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


# Signals whose inherited disposition kvmsentry cannot know: Python sets
# SIGPIPE and SIGXFSZ to SIG_IGN itself at start-up.
_PYTHON_IGNORED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


def _read_sigign() -> frozenset[int]:
    """The signals this process ignores now, from the host kernel's SigIgn
    mask (proc(5), /proc/self/status), SIGPIPE and SIGXFSZ left out."""
    mask = 0
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigIgn:"):
                    mask = int(line.split()[1], 16)
                    break
    except OSError:
        pass
    return frozenset(signo for signo in range(1, 65)
                     if mask >> (signo - 1) & 1 and signo not in _PYTHON_IGNORED)


# Read when this module is first imported, before the platform installs
# its own handlers (KICK_SIGNAL) and run() the forwarding ones.
_STARTED_IGNORED = _read_sigign()


def host_ignored_signals() -> frozenset[int]:
    """The signals kvmsentry itself was started with ignored (SIG_IGN kept
    across its execve; signal(7)), which the guest inherits as a native
    child of the same parent would: nohup(1)'s SIGHUP, a shell's SIGINT and
    SIGQUIT for a background job, and whatever else its parent ignored
    (make(1) leaves glibc's 32 and 33 ignored, which Python cannot see).

    Python leaves an inherited SIG_IGN in place at start-up, except for
    SIGPIPE and SIGXFSZ, which it ignores itself: those two start at
    SIG_DFL in the guest whatever kvmsentry inherited. kvmsentry still
    forwards the ignored ones of HOST_FORWARDED_SIGNALS
    (Kernel._forward_host_signals), for a guest that installs its own
    handler; one that keeps them ignored drops them, as natively.
    """
    return _STARTED_IGNORED


def _interp_reason(err: int, interp: str) -> str:
    """What `kvmsentry boot` says when the interpreter ``interp`` cannot be loaded."""
    if err == errno.ENOENT:
        # bash says "required file not found" for the same ENOENT.
        return f"required file not found (the interpreter {interp} does not exist)"
    return f"the interpreter {interp}: {os.strerror(err)}"


def _handler_of(process, signo: int) -> int:
    """The sa_handler the process installed for ``signo`` (SIG_DFL when none)."""
    action = process.sigactions.get(signo)
    return int.from_bytes(action[:8], "little") if action else SIG_DFL


def _reaps_itself(parent) -> bool:
    """True when children of ``parent`` leave no zombie: SIGCHLD is SIG_IGN or has SA_NOCLDWAIT."""
    action = parent.sigactions.get(signal.SIGCHLD)
    if not action:
        return False
    handler, flags = int.from_bytes(action[:8], "little"), int.from_bytes(action[8:16], "little")
    return handler == SIG_IGN or bool(flags & signals.SA_NOCLDWAIT)


def _futex_wake(task, uaddr: int, count: int) -> None:
    """Wake futex waiters on ``uaddr`` (when the futex module is there)."""
    try:
        from kvmsentry.kernel.futex import futex_wake
    except ImportError:
        return
    futex_wake(task, uaddr, count)


class _Killed(Exception):
    def __init__(self, signo: int):
        super().__init__(signo)
        self.signo = signo
