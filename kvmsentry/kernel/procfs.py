"""/proc, generated from the sentry's own state (fs/proc/ in Linux).

``special(task, rest, name)`` answers the walk (files.py) for a name in
the /proc directory ``/proc/<rest...>``; ``listing(task, rest)`` is that
directory's entries. Every number comes from the sandbox: pids are the
sandbox's (``Kernel.processes``), memory is the guest's (the frame
allocator), uptime counts from the sentry's start. Nothing of the host's
/proc is shown, except /proc/cpuinfo which is the host's text (the guest
runs on the host's CPUs).

The formats are Linux 6.1's: fs/proc/array.c (status, stat),
fs/proc/task_mmu.c (maps), fs/proc/fd.c (fdinfo), fs/proc/meminfo.c,
fs/proc/uptime.c, fs/proc/loadavg.c, fs/proc/stat.c, fs/proc/version.c.
"""

from __future__ import annotations

import os
import time

from kvmsentry.kernel import fd as fdmod
from kvmsentry.kernel.syscalls.table import SyscallError

# When there is no Kernel (unit tests): the sentry's start.
_BOOT = time.monotonic()
USER_HZ = 100
PAGE_KB = 4
RLIM_INFINITY = (1 << 64) - 1
CAP_FULL = (1 << 41) - 1  # CAP_LAST_CAP 40 (Linux 6.1)

DT_DIR, DT_LNK, DT_REG = fdmod.DT_DIR, fdmod.DT_LNK, fdmod.DT_REG

# The entries of /proc/<pid>/ (and /proc/<pid>/task/<tid>/, without task).
PID_ENTRIES = [
    (b"task", DT_DIR), (b"fd", DT_DIR), (b"fdinfo", DT_DIR),
    (b"cmdline", DT_REG), (b"comm", DT_REG), (b"environ", DT_REG),
    (b"exe", DT_LNK), (b"cwd", DT_LNK), (b"root", DT_LNK),
    (b"maps", DT_REG), (b"mounts", DT_REG), (b"stat", DT_REG),
    (b"statm", DT_REG), (b"status", DT_REG), (b"personality", DT_REG),
]
ROOT_FILES = [b"cpuinfo", b"meminfo", b"uptime", b"loadavg", b"stat", b"version",
              b"filesystems"]
SYS_KERNEL_FILES = [b"ostype", b"osrelease", b"hostname"]
# /proc/sys/fs/ (Documentation/admin-guide/sysctl/fs.rst): read-only here.
SYS_FS_FILES = [b"pipe-max-size"]


# -- the sandbox's state ---------------------------------------------------
def kernel_of(task):
    return getattr(task, "kernel", None)


def processes(task) -> dict:
    """pid -> Process of every sandbox process (just the caller's without a Kernel)."""
    kernel = kernel_of(task)
    if kernel is not None:
        return kernel.processes
    return {task.process.pid: task.process}


def all_tasks(task) -> dict:
    kernel = kernel_of(task)
    if kernel is not None:
        return kernel.tasks
    return {t.tid: t for t in task.process.tasks} or {task.tid: task}


def boot_time(task) -> float:
    kernel = kernel_of(task)
    return getattr(kernel, "boot_time", _BOOT) if kernel is not None else _BOOT


def leader(process, task=None):
    """The thread /proc/<pid> shows: the group leader, else any live thread."""
    threads = list(process.tasks)
    if task is not None and task.process is process and not threads:
        threads = [task]
    for t in threads:
        if t.tid == process.pid:
            return t
    return threads[0] if threads else None


def _number(name: bytes) -> int | None:
    if name.isdigit() and len(name) < 10 and not (name.startswith(b"0") and name != b"0"):
        return int(name)
    return None


def _context(task, rest: list[bytes]):
    """For ``rest`` = [pid, ...] or [pid, "task", tid, ...]: (process,
    thread, the remaining components, whether a task dir), or None."""
    pid = _number(rest[0])
    if pid is None:
        return None
    process = processes(task).get(pid)
    thread = None
    if process is None:
        thread = all_tasks(task).get(pid)  # /proc/<tid> works, unlisted
        if thread is None:
            return None
        process = thread.process
    else:
        thread = leader(process, task)
    remaining = rest[1:]
    if len(remaining) >= 2 and remaining[0] == b"task":
        tid = _number(remaining[1])
        found = None
        for t in (process.tasks or ([task] if task.process is process else [])):
            if t.tid == tid:
                found = t
        if found is None:
            return None
        return process, found, remaining[2:], True
    return process, thread, remaining, False


# -- the walk ----------------------------------------------------------------
def special(task, rest: list[bytes], name: bytes):
    """The walk's answer for ``name`` in /proc/<rest>: (kind, value) as
    files._special, ("hidden", None) for anything /proc does not have."""
    if not rest:
        if name == b"self":
            return "link", b"%d" % task.process.pid
        if name == b"thread-self":
            return "link", b"%d/task/%d" % (task.process.pid, task.tid)
        if name == b"mounts":
            return "link", b"self/mounts"
        if name == b"sys":
            return "vdir", None
        if name in ROOT_FILES:
            return "procfile", ROOT_GENERATORS[name](task)
        if _number(name) is not None and _context(task, [name]) is not None:
            return "vdir", None
        return "hidden", None
    if rest == [b"sys"]:
        return ("vdir", None) if name in (b"fs", b"kernel") else ("hidden", None)
    if rest == [b"sys", b"kernel"]:
        if name in SYS_KERNEL_FILES:
            return "procfile", sys_kernel(task, name)
        return "hidden", None
    if rest == [b"sys", b"fs"]:
        if name in SYS_FS_FILES:
            return "procfile", sys_fs(task, name)
        return "hidden", None
    ctx = _context(task, rest)
    if ctx is None:
        return "hidden", None
    process, thread, sub, in_task = ctx
    if not sub:
        if name == b"task" and in_task:
            return "hidden", None
        if name == b"task":
            return "vdir", None
        return _pid_entry(task, process, thread, name)
    if sub == [b"task"] and not in_task:
        tid = _number(name)
        if tid is not None and any(t.tid == tid for t in _threads(task, process)):
            return "vdir", None
        return "hidden", None
    if sub == [b"fd"]:
        n = _number(name)
        if thread is not None and n is not None and n in thread.fds:
            return "fd", thread.fds.get(n)
        return "hidden", None
    if sub == [b"fdinfo"]:
        n = _number(name)
        if thread is not None and n is not None and n in thread.fds:
            return "procfile", fdinfo(thread.fds, n)
        return "hidden", None
    return "hidden", None


def _threads(task, process) -> list:
    return list(process.tasks) or ([task] if task.process is process else [])


def _pid_entry(task, process, thread, name: bytes):
    if name == b"exe":
        return "link", os.fsencode(process.exe)
    if name == b"cwd":
        return "link", os.fsencode(process.cwd)
    if name == b"root":
        return "link", b"/"
    if name in (b"fd", b"fdinfo"):
        return "vdir", None
    gen = PID_GENERATORS.get(name)
    if gen is None:
        return "hidden", None
    return "procfile", gen(task, process, thread)


def listing(task, rest: list[bytes]) -> list[tuple[bytes, int]]:
    """The entries of the directory /proc/<rest> (without . and ..)."""
    if not rest:
        entries = [(n, DT_REG) for n in ROOT_FILES]
        entries += [(b"mounts", DT_LNK), (b"self", DT_LNK), (b"thread-self", DT_LNK),
                    (b"sys", DT_DIR)]
        entries += [(b"%d" % pid, DT_DIR) for pid in sorted(processes(task))]
        return entries
    if rest == [b"sys"]:
        return [(b"fs", DT_DIR), (b"kernel", DT_DIR)]
    if rest == [b"sys", b"kernel"]:
        return [(n, DT_REG) for n in SYS_KERNEL_FILES]
    if rest == [b"sys", b"fs"]:
        return [(n, DT_REG) for n in SYS_FS_FILES]
    ctx = _context(task, rest)
    if ctx is None:
        return []
    process, thread, sub, in_task = ctx
    if not sub:
        return [e for e in PID_ENTRIES if not (in_task and e[0] == b"task")]
    if sub == [b"task"]:
        return [(b"%d" % t.tid, DT_DIR) for t in sorted(_threads(task, process),
                                                        key=lambda t: t.tid)]
    if sub == [b"fd"]:
        return [(b"%d" % n, DT_LNK) for n in thread.fds.fds()] if thread else []
    if sub == [b"fdinfo"]:
        return [(b"%d" % n, DT_REG) for n in thread.fds.fds()] if thread else []
    return []


# -- /proc/<pid>/ files --------------------------------------------------------
def comm_of(process, thread) -> bytes:
    if thread is not None and thread.comm:
        return thread.comm
    return os.path.basename(os.fsencode(process.exe))[:15]


def cmdline(task, process, thread) -> bytes:
    """NUL-terminated argv (fs/proc/base.c proc_pid_cmdline_read); empty for a zombie."""
    if process.zombie:
        return b""
    return b"".join(a + b"\0" for a in process.argv)


def environ(task, process, thread) -> bytes:
    if process.zombie:
        return b""
    return b"".join(e + b"\0" for e in process.envp)


def comm(task, process, thread) -> bytes:
    return comm_of(process, thread) + b"\n"


def mounts(task, process, thread) -> bytes:
    from kvmsentry.kernel.files import proc_mounts
    return proc_mounts(task)


def _mm_of(thread):
    return getattr(thread, "mm", None) if thread is not None else None


def maps(task, process, thread) -> bytes:
    """fs/proc/task_mmu.c show_map_vma: the prefix padded to 72 columns,
    then a space and the name (the exe path, [heap], [stack], ...). File
    mappings show their offset, the file's device (major:minor) and inode
    as the guest's stat(2) sees them, and its guest path."""
    mm = _mm_of(thread)
    if mm is None or process.zombie:
        return b""
    return maps_of(getattr(mm, "vmas", ()))


def maps_of(vmas) -> bytes:
    from kvmsentry.kernel.mm import PROT_EXEC, PROT_READ, PROT_WRITE
    lines = []
    for v in vmas:
        if getattr(v, "hidden", False):
            continue
        mapping = getattr(v, "mapping", None)
        if mapping is not None:
            pgoff, dev, ino = v.pgoff << 12, mapping.dev, mapping.ino
        else:
            pgoff = dev = ino = 0
        prefix = b"%08x-%08x %c%c%c%c %08x %02x:%02x %d " % (
            v.start, v.end,
            ord("r") if v.prot & PROT_READ else ord("-"),
            ord("w") if v.prot & PROT_WRITE else ord("-"),
            ord("x") if v.prot & PROT_EXEC else ord("-"),
            ord("s") if v.shared or not getattr(v, "may_write", True) else ord("p"),
            pgoff, os.major(dev), os.minor(dev), ino)
        name = os.fsencode(v.name) if v.name else b""
        if name:
            prefix = prefix.ljust(72) + b" " + name
        lines.append(prefix + b"\n")
    return b"".join(lines)


def _vm_kb(mm, process) -> dict:
    """The VmXxx numbers of status, in kB."""
    from kvmsentry.kernel.mm import PROT_EXEC, PROT_WRITE
    out = dict(size=0, rss=0, stk=0, exe=0, data=0)
    if mm is None or process.zombie:
        return out
    exe = process.exe
    for v in getattr(mm, "vmas", ()):
        if v.hidden:
            continue
        kb = (v.end - v.start) >> 10
        out["size"] += kb
        if v.name == "[stack]":
            out["stk"] += kb
        elif v.name and v.name == exe and v.prot & PROT_EXEC:
            out["exe"] += kb
        elif v.prot & PROT_WRITE and not v.shared:
            out["data"] += kb
    out["rss"] = len(getattr(mm, "pages", ())) * PAGE_KB
    return out


def _state(process, thread) -> tuple[bytes, bytes]:
    if process.zombie or thread is None:
        return b"Z", b"zombie"
    if process.stopped:
        return b"T", b"stopped"
    if thread.waiting_on is not None:
        return b"S", b"sleeping"
    return b"R", b"running"


def _sig_masks(process) -> tuple[int, int]:
    """(ignored, caught) from the process's rt_sigaction records."""
    ign = cgt = 0
    for signo, raw in process.sigactions.items():
        handler = int.from_bytes(bytes(raw[:8]), "little") if raw else 0
        if handler == 1:
            ign |= 1 << (signo - 1)
        elif handler > 1:
            cgt |= 1 << (signo - 1)
    return ign, cgt


def _fdsize(thread) -> int:
    if thread is None:
        return 0
    fds = thread.fds.fds()
    top = max(fds) + 1 if fds else 0
    if top <= 64:
        return 64
    n = 256
    while n < top:
        n *= 2
    return n


def _ncpus() -> int:
    return os.cpu_count() or 1


def status(task, process, thread) -> bytes:
    """fs/proc/array.c proc_pid_status."""
    mm = _mm_of(thread)
    vm = _vm_kb(mm, process)
    state, state_name = _state(process, thread)
    creds = process.creds
    ign, cgt = _sig_masks(process)
    tid = thread.tid if thread is not None else process.pid
    ncpu = _ncpus()
    lines = [
        b"Name:\t%s" % comm_of(process, thread),
        b"Umask:\t%04o" % process.umask,
        b"State:\t%s (%s)" % (state, state_name),
        b"Tgid:\t%d" % process.pid,
        b"Ngid:\t0",
        b"Pid:\t%d" % tid,
        b"PPid:\t%d" % process.ppid,
        b"TracerPid:\t0",
        b"Uid:\t%d\t%d\t%d\t%d" % (creds.uid, creds.euid, creds.suid, creds.euid),
        b"Gid:\t%d\t%d\t%d\t%d" % (creds.gid, creds.egid, creds.sgid, creds.egid),
        b"FDSize:\t%d" % _fdsize(thread),
        b"Groups:\t" + b" ".join(b"%d" % gid for gid in creds.groups) + b" ",  # fs/proc/array.c: a space after
        b"NStgid:\t%d" % process.pid,
        b"NSpid:\t%d" % tid,
        b"NSpgid:\t%d" % process.pgid,
        b"NSsid:\t%d" % process.sid,
    ]
    if mm is not None and not process.zombie:
        kb = lambda name, v: b"%s\t%8d kB" % (name, v)  # noqa: E731
        lines += [
            kb(b"VmPeak:", vm["size"]), kb(b"VmSize:", vm["size"]), kb(b"VmLck:", 0),
            kb(b"VmPin:", 0), kb(b"VmHWM:", vm["rss"]), kb(b"VmRSS:", vm["rss"]),
            kb(b"RssAnon:", vm["rss"]), kb(b"RssFile:", 0), kb(b"RssShmem:", 0),
            kb(b"VmData:", vm["data"]), kb(b"VmStk:", vm["stk"]), kb(b"VmExe:", vm["exe"]),
            kb(b"VmLib:", 0), kb(b"VmPTE:", 0), kb(b"VmSwap:", 0),
            kb(b"HugetlbPages:", 0),
        ]
    sigq = bin(process.pending).count("1") + (
        bin(thread.pending).count("1") if thread is not None else 0)
    lines += [
        b"CoreDumping:\t0",
        b"THP_enabled:\t1",
        b"Threads:\t%d" % len(process.tasks),
        b"SigQ:\t%d/%d" % (sigq, 63432),
        b"SigPnd:\t%016x" % (thread.pending if thread is not None else 0),
        b"ShdPnd:\t%016x" % process.pending,
        b"SigBlk:\t%016x" % (thread.sigmask if thread is not None else 0),
        b"SigIgn:\t%016x" % ign,
        b"SigCgt:\t%016x" % cgt,
        b"CapInh:\t%016x" % creds.cap_inheritable,
        b"CapPrm:\t%016x" % creds.cap_permitted,
        b"CapEff:\t%016x" % creds.cap_effective,
        b"CapBnd:\t%016x" % CAP_FULL,
        b"CapAmb:\t%016x" % 0,
        b"NoNewPrivs:\t%d" % (1 if thread is not None and thread.no_new_privs else 0),
        b"Seccomp:\t0",
        b"Seccomp_filters:\t0",
        b"Speculation_Store_Bypass:\tthread vulnerable",
        b"SpeculationIndirectBranch:\tconditional enabled",
        b"Cpus_allowed:\t%x" % ((1 << ncpu) - 1),
        b"Cpus_allowed_list:\t%s" % (b"0" if ncpu == 1 else b"0-%d" % (ncpu - 1)),
        b"Mems_allowed:\t" + b",".join([b"00000000"] * 31 + [b"00000001"]),
        b"Mems_allowed_list:\t0",
        b"voluntary_ctxt_switches:\t0",
        b"nonvoluntary_ctxt_switches:\t0",
    ]
    return b"\n".join(lines) + b"\n"


def stat(task, process, thread) -> bytes:
    """fs/proc/array.c do_task_stat: the 52 fields, untracked ones 0."""
    mm = _mm_of(thread)
    vm = _vm_kb(mm, process)
    state, _ = _state(process, thread)
    ign, cgt = _sig_masks(process)
    start = int((getattr(process, "start_time", boot_time(task)) - boot_time(task)) * USER_HZ)
    brk_start = getattr(mm, "brk_start", 0) if mm is not None else 0
    fields = [
        b"%d" % (thread.tid if thread is not None else process.pid),
        b"(%s)" % comm_of(process, thread),
        state,
        b"%d" % process.ppid, b"%d" % process.pgid, b"%d" % process.sid,
        b"0", b"-1",                 # tty_nr, tpgid
        b"%d" % 0x400000,            # flags (PF_FORKNOEXEC clear; PF_RANDOMIZE)
        b"0", b"0", b"0", b"0",      # minflt cminflt majflt cmajflt
        b"0", b"0", b"0", b"0",      # utime stime cutime cstime
        b"20", b"0",                 # priority nice
        b"%d" % max(len(process.tasks), 0 if process.zombie else 1),
        b"0",                        # itrealvalue
        b"%d" % max(start, 0),
        b"%d" % (vm["size"] << 10),
        b"%d" % (vm["rss"] // PAGE_KB),
        b"%d" % RLIM_INFINITY,
        b"0", b"0", b"0", b"0", b"0",  # startcode endcode startstack kstkesp kstkeip
        b"%d" % (thread.pending if thread is not None else 0),
        b"%d" % (thread.sigmask if thread is not None else 0),
        b"%d" % ign, b"%d" % cgt,
        b"0", b"0", b"0",            # wchan nswap cnswap
        b"%d" % process.exit_signal,
        b"0", b"0", b"0",            # processor rt_priority policy
        b"0", b"0", b"0",            # delayacct_blkio_ticks guest_time cguest_time
        b"0", b"0", b"%d" % brk_start,  # start_data end_data start_brk
        b"0", b"0", b"0", b"0",      # arg_start arg_end env_start env_end
        b"%d" % ((process.wait_status or 0) if process.zombie else 0),
    ]
    assert len(fields) == 52
    return b" ".join(fields) + b"\n"


def statm(task, process, thread) -> bytes:
    vm = _vm_kb(_mm_of(thread), process)
    return b"%d %d 0 %d 0 %d 0\n" % (vm["size"] // PAGE_KB, vm["rss"] // PAGE_KB,
                                     vm["exe"] // PAGE_KB, vm["data"] // PAGE_KB)


def personality(task, process, thread) -> bytes:
    """fs/proc/base.c proc_pid_personality: the execution domain, 8 hex digits."""
    return b"%08x\n" % process.personality


PID_GENERATORS = {
    b"cmdline": cmdline, b"environ": environ, b"comm": comm, b"mounts": mounts,
    b"maps": maps, b"status": status, b"stat": stat, b"statm": statm,
    b"personality": personality,
}


def fdinfo(fds, n: int) -> bytes:
    """fs/proc/fd.c seq_show: pos, flags (octal, O_CLOEXEC added), mnt_id,
    ino, then the file's own lines (its ``show_fdinfo()``, as
    file_operations.show_fdinfo) if it has them."""
    file = fds.get(n)
    try:
        # Served inside the guest (kvmsentry/kernel/fastread.py): the offset is in its entry.
        pos = file.fast.offset(file) if getattr(file, "fast", None) is not None else file.lseek(0, fdmod.SEEK_CUR)
    except SyscallError:
        pos = 0
    flags = file.flags
    if fds.get_cloexec(n):
        flags |= fdmod.O_CLOEXEC
    try:
        ino = file.stat().st_ino
    except Exception:  # noqa: BLE001 - a file without stat shows 0
        ino = 0
    show = getattr(file, "show_fdinfo", None)
    extra = show() if show is not None else b""
    return b"pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t%d\n" % (pos, flags, 0, ino) + extra


# -- /proc files ------------------------------------------------------------------
_CPUINFO: bytes | None = None


def cpuinfo(task) -> bytes:
    """The host's (the guest runs on its CPUs)."""
    global _CPUINFO
    if _CPUINFO is None:
        try:
            with open("/proc/cpuinfo", "rb") as f:
                _CPUINFO = f.read()
        except OSError:
            _CPUINFO = b"".join(b"processor\t: %d\n\n" % i for i in range(_ncpus()))
    return _CPUINFO


def _memory(task) -> tuple[int, int]:
    """(total, free) guest memory in kB."""
    kernel = kernel_of(task)
    memory = getattr(getattr(kernel, "platform", None), "memory", None)
    if memory is None:
        total = os.sysconf("SC_PHYS_PAGES") * PAGE_KB
        return total, os.sysconf("SC_AVPHYS_PAGES") * PAGE_KB
    return memory.nframes * PAGE_KB, (memory.nframes - memory.frames_in_use) * PAGE_KB


def meminfo(task) -> bytes:
    """fs/proc/meminfo.c: the guest's memory; no swap, no page cache."""
    total, free = _memory(task)
    rows = [
        (b"MemTotal:", total), (b"MemFree:", free), (b"MemAvailable:", free),
        (b"Buffers:", 0), (b"Cached:", 0), (b"SwapCached:", 0),
        (b"Active:", total - free), (b"Inactive:", 0),
        (b"Active(anon):", total - free), (b"Inactive(anon):", 0),
        (b"Active(file):", 0), (b"Inactive(file):", 0), (b"Unevictable:", 0),
        (b"Mlocked:", 0), (b"SwapTotal:", 0), (b"SwapFree:", 0), (b"Zswap:", 0),
        (b"Zswapped:", 0), (b"Dirty:", 0), (b"Writeback:", 0),
        (b"AnonPages:", total - free), (b"Mapped:", 0), (b"Shmem:", 0),
        (b"KReclaimable:", 0), (b"Slab:", 0), (b"SReclaimable:", 0), (b"SUnreclaim:", 0),
        (b"KernelStack:", 0), (b"PageTables:", 0), (b"NFS_Unstable:", 0),
        (b"Bounce:", 0), (b"WritebackTmp:", 0), (b"CommitLimit:", total),
        (b"Committed_AS:", total - free), (b"VmallocTotal:", 34359738367),
        (b"VmallocUsed:", 0), (b"VmallocChunk:", 0), (b"Percpu:", 0),
        (b"HardwareCorrupted:", 0), (b"AnonHugePages:", 0), (b"ShmemHugePages:", 0),
        (b"ShmemPmdMapped:", 0), (b"FileHugePages:", 0), (b"FilePmdMapped:", 0),
    ]
    out = [b"%-16s%8d kB\n" % (name, kb) for name, kb in rows]
    out += [b"HugePages_Total:       0\n", b"HugePages_Free:        0\n",
            b"HugePages_Rsvd:        0\n", b"HugePages_Surp:        0\n",
            b"Hugepagesize:       2048 kB\n", b"Hugetlb:               0 kB\n"]
    return b"".join(out)


def _uptime(task) -> float:
    return max(time.monotonic() - boot_time(task), 0.0)


def uptime(task) -> bytes:
    up = _uptime(task)
    idle = up * _ncpus()
    return b"%d.%02d %d.%02d\n" % (int(up), int(up * 100) % 100, int(idle), int(idle * 100) % 100)


def loadavg(task) -> bytes:
    tasks = all_tasks(task)
    running = sum(1 for t in tasks.values() if t.waiting_on is None) or 1
    kernel = kernel_of(task)
    last = (getattr(kernel, "next_pid", 2) - 1) if kernel is not None else task.process.pid
    return b"0.00 0.00 0.00 %d/%d %d\n" % (running, max(len(tasks), 1), last)


def proc_stat(task) -> bytes:
    ncpu = _ncpus()
    zeros = b" 0 0 0 0 0 0 0 0 0 0\n"
    btime = int(time.time() - _uptime(task))
    tasks = all_tasks(task)
    running = sum(1 for t in tasks.values() if t.waiting_on is None) or 1
    kernel = kernel_of(task)
    forks = (getattr(kernel, "next_pid", 2) - 1) if kernel is not None else 1
    out = [b"cpu " + zeros]
    out += [b"cpu%d" % i + zeros for i in range(ncpu)]
    out += [b"intr 0\n", b"ctxt 0\n", b"btime %d\n" % btime, b"processes %d\n" % forks,
            b"procs_running %d\n" % running, b"procs_blocked 0\n",
            b"softirq 0 0 0 0 0 0 0 0 0 0 0\n"]
    return b"".join(out)


def _uts():
    from kvmsentry.kernel.syscalls import info
    return info


def version(task) -> bytes:
    """fs/proc/version.c: "Linux version <release> (<by>@<host>) (<cc>) <version>"."""
    info = _uts()
    return b"%s version %s (kvmsentry@kvmsentry) (gcc, GNU ld) %s\n" % (
        info.UTS_SYSNAME, info.UTS_RELEASE, info.UTS_VERSION)


def filesystems(task) -> bytes:
    rows = [(b"nodev", b"sysfs"), (b"nodev", b"tmpfs"), (b"nodev", b"proc"),
            (b"nodev", b"devtmpfs"), (b"nodev", b"pipefs"), (b"nodev", b"anon_inodefs"),
            (b"nodev", b"overlay")]
    return b"".join(b"%s\t%s\n" % r for r in rows)


def sys_kernel(task, name: bytes) -> bytes:
    info = _uts()
    if name == b"ostype":
        return info.UTS_SYSNAME + b"\n"
    if name == b"osrelease":
        return info.UTS_RELEASE + b"\n"
    nodename = getattr(task.process, "nodename", None) or info.UTS_NODENAME
    return os.fsencode(nodename) + b"\n"


def sys_fs(task, name: bytes) -> bytes:
    """/proc/sys/fs/pipe-max-size: the largest pipe F_SETPIPE_SZ gives an
    unprivileged task, bytes (fs/pipe.c pipe_max_size; kernel.pipe)."""
    from kvmsentry.kernel.pipe import PIPE_MAX_SIZE
    return b"%d\n" % PIPE_MAX_SIZE


ROOT_GENERATORS = {
    b"cpuinfo": cpuinfo, b"meminfo": meminfo, b"uptime": uptime, b"loadavg": loadavg,
    b"stat": proc_stat, b"version": version, b"filesystems": filesystems,
}
