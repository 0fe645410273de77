"""System information, limits, clocks, randomness and credentials syscalls.

uname, sysinfo, getrandom, prlimit64/getrlimit/setrlimit,
sched_getaffinity, sched_yield, getcpu, clock_gettime/clock_getres,
gettimeofday, time, nanosleep/clock_nanosleep and the uid/gid getters.
Importing this module registers its handlers in the syscall table.
"""

from __future__ import annotations

import errno
import os
import struct
import time

from kvmsentry.abi.structs import (
    pack_timespec_ns,
    NSEC_PER_SEC, RLIM_INFINITY, RLIMIT, SI_LOAD_SHIFT, TIMESPEC, TIMEVAL, TIMEZONE,
    UTSNAME, UTSNAME_FIELD_LEN, pack_sysinfo,
)
from kvmsentry.kernel.fd import NOFILE_DEFAULT, NR_OPEN, RLIMIT_NOFILE
from kvmsentry.kernel.files import to_int
from kvmsentry.kernel import sched
from kvmsentry.kernel.syscalls.table import PARTIAL, SyscallError, syscall
from kvmsentry.kernel.task import CAP_SYS_RESOURCE

# uname(2)'s answer (struct new_utsname fields, at most 64 bytes each).
UTS_SYSNAME = b"Linux"
UTS_NODENAME = b"kvmsentry"
# glibc refuses kernels older than its --enable-kernel (3.2); musl does not check.
UTS_RELEASE = b"6.1.0-kvmsentry"
UTS_VERSION = b"#1 SMP PREEMPT_DYNAMIC kvmsentry"
UTS_MACHINE = b"x86_64"
UTS_DOMAINNAME = b"(none)"

U32 = struct.Struct("<I")
Q = struct.Struct("<Q")

# include/uapi/linux/random.h
GRND_NONBLOCK = 0x1
GRND_RANDOM = 0x2
GRND_INSECURE = 0x4
MAX_RW_COUNT = 0x7FFFF000
CHUNK = 1 << 20

# include/uapi/asm-generic/resource.h
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE = 0, 1, 2, 3, 4
RLIMIT_RSS, RLIMIT_NPROC = 5, 6
RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_LOCKS, RLIMIT_SIGPENDING = 8, 9, 10, 11
RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_RTPRIO, RLIMIT_RTTIME = 12, 13, 14, 15
RLIM_NLIMITS = 16

# What a process gets on a stock Linux system (include/asm-generic/resource.h
# INIT_RLIMITS, with systemd's NOFILE and Linux 5.16+'s 8 MiB MEMLOCK).
# NPROC and SIGPENDING scale with memory there; fixed here.
RLIMIT_DEFAULTS: dict[int, tuple[int, int]] = {
    RLIMIT_CPU: (RLIM_INFINITY, RLIM_INFINITY),
    RLIMIT_FSIZE: (RLIM_INFINITY, RLIM_INFINITY),
    RLIMIT_DATA: (RLIM_INFINITY, RLIM_INFINITY),
    RLIMIT_STACK: (8 << 20, RLIM_INFINITY),
    RLIMIT_CORE: (0, RLIM_INFINITY),
    RLIMIT_RSS: (RLIM_INFINITY, RLIM_INFINITY),
    RLIMIT_NPROC: (63704, 63704),
    RLIMIT_NOFILE: NOFILE_DEFAULT,
    RLIMIT_MEMLOCK: (8 << 20, 8 << 20),
    RLIMIT_AS: (RLIM_INFINITY, RLIM_INFINITY),
    RLIMIT_LOCKS: (RLIM_INFINITY, RLIM_INFINITY),
    RLIMIT_SIGPENDING: (63704, 63704),
    RLIMIT_MSGQUEUE: (819200, 819200),
    RLIMIT_NICE: (0, 0),
    RLIMIT_RTPRIO: (0, 0),
    RLIMIT_RTTIME: (RLIM_INFINITY, RLIM_INFINITY),
}

# include/uapi/linux/time.h
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
CLOCK_MONOTONIC_RAW = 4
CLOCK_REALTIME_COARSE = 5
CLOCK_MONOTONIC_COARSE = 6
CLOCK_BOOTTIME = 7
CLOCK_REALTIME_ALARM = 8
CLOCK_BOOTTIME_ALARM = 9
CLOCK_TAI = 11
TIMER_ABSTIME = 1

# Guest clock id -> the host clock read for it.
_HOST_CLOCKS = {
    CLOCK_REALTIME: time.CLOCK_REALTIME,
    CLOCK_MONOTONIC: time.CLOCK_MONOTONIC,
    CLOCK_MONOTONIC_RAW: time.CLOCK_MONOTONIC_RAW,
    CLOCK_REALTIME_COARSE: getattr(time, "CLOCK_REALTIME_COARSE", 5),
    CLOCK_MONOTONIC_COARSE: getattr(time, "CLOCK_MONOTONIC_COARSE", 6),
    CLOCK_BOOTTIME: time.CLOCK_BOOTTIME,
    CLOCK_REALTIME_ALARM: time.CLOCK_REALTIME,
    CLOCK_BOOTTIME_ALARM: time.CLOCK_BOOTTIME,
    CLOCK_TAI: getattr(time, "CLOCK_TAI", 11),
}
# Clocks clock_nanosleep can sleep on (others EOPNOTSUPP, CPU clocks EINVAL).
_SLEEP_CLOCKS = (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI,
                 CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM)


def get_rlimit(process, resource: int) -> tuple[int, int]:
    """(soft, hard) of RLIMIT ``resource`` for ``process``."""
    return process.rlimits.get(resource, RLIMIT_DEFAULTS[resource])


# -- identity -------------------------------------------------------------------

@syscall("uname")
def sys_uname(task, buf):
    """Implements Linux syscall uname(2): struct new_utsname (390 bytes).

    Reports Linux 6.1.0-kvmsentry on x86_64, nodename "kvmsentry" (or
    ``task.process.nodename`` if the process has one).
    """
    nodename = getattr(task.process, "nodename", None) or UTS_NODENAME
    if isinstance(nodename, str):
        nodename = nodename.encode()
    fields = (UTS_SYSNAME, nodename, UTS_RELEASE, UTS_VERSION, UTS_MACHINE, UTS_DOMAINNAME)
    task.mm.copy_out(buf, UTSNAME.pack(*(f[:UTSNAME_FIELD_LEN - 1] for f in fields)))
    return 0


@syscall("sysinfo")
def sys_sysinfo(task, info):
    """Implements Linux syscall sysinfo(2): struct sysinfo (112 bytes).

    Uptime from the host's CLOCK_BOOTTIME (as clock_gettime reports it),
    load and memory from the host, mem_unit 1, procs 1, no swap.
    """
    uptime = int(time.clock_gettime(time.CLOCK_BOOTTIME))
    loads = [int(x * (1 << SI_LOAD_SHIFT)) for x in os.getloadavg()]
    page = os.sysconf("SC_PAGE_SIZE")
    total = os.sysconf("SC_PHYS_PAGES") * page
    free = os.sysconf("SC_AVPHYS_PAGES") * page
    data = pack_sysinfo(uptime, loads, totalram=total, freeram=free, procs=1, mem_unit=1)
    task.mm.copy_out(info, data)
    return 0


@syscall("getrandom")
def sys_getrandom(task, buf, buflen, flags):
    """Implements Linux syscall getrandom(2) from the host's os.urandom.

    Never blocks (the host pool is initialized), so GRND_NONBLOCK and
    GRND_RANDOM change nothing. EINVAL for unknown flag bits or
    GRND_INSECURE with GRND_RANDOM. ``buflen`` is clamped to MAX_RW_COUNT.
    """
    flags &= 0xFFFFFFFF
    if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE):
        raise SyscallError(errno.EINVAL)
    if flags & GRND_INSECURE and flags & GRND_RANDOM:
        raise SyscallError(errno.EINVAL)
    count = min(buflen, MAX_RW_COUNT)
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        task.mm.copy_out(buf + done, os.urandom(n))
        done += n
    return count


# -- limits ----------------------------------------------------------------------

def _prlimit(task, resource: int, new: tuple[int, int] | None) -> tuple[int, int]:
    """Set (if ``new``) and return the old (soft, hard) of ``resource``."""
    if resource < 0 or resource >= RLIM_NLIMITS:
        raise SyscallError(errno.EINVAL)
    old = get_rlimit(task.process, resource)
    if new is not None:
        soft, hard = new
        if soft > hard:
            raise SyscallError(errno.EINVAL)
        if hard > old[1] and not task.process.creds.capable(CAP_SYS_RESOURCE):
            raise SyscallError(errno.EPERM)
        if resource == RLIMIT_NOFILE and hard > NR_OPEN:
            raise SyscallError(errno.EPERM)
        task.process.rlimits[resource] = (soft, hard)
    return old


@syscall("prlimit64")
def sys_prlimit64(task, pid, resource, new_limit, old_limit):
    """Implements Linux syscall prlimit64(2) for the calling process only.

    ``pid`` 0 or the caller's pid (ESRCH otherwise). EINVAL for a bad
    resource or soft > hard; EPERM for raising the hard limit without
    CAP_SYS_RESOURCE, or RLIMIT_NOFILE above nr_open (1048576). Limits are stored
    in ``task.process.rlimits``; only RLIMIT_NOFILE is enforced so far.
    """
    pid = to_int(pid)
    if pid != 0 and pid != task.process.pid:
        raise SyscallError(errno.ESRCH)
    new = RLIMIT.unpack(task.mm.copy_in(new_limit, RLIMIT.size)) if new_limit else None
    old = _prlimit(task, resource & 0xFFFFFFFF, new)
    if old_limit:
        task.mm.copy_out(old_limit, RLIMIT.pack(*old))
    return 0


@syscall("getrlimit")
def sys_getrlimit(task, resource, rlim):
    """Implements Linux syscall getrlimit(2). EINVAL for a bad resource."""
    old = _prlimit(task, resource & 0xFFFFFFFF, None)
    task.mm.copy_out(rlim, RLIMIT.pack(*old))
    return 0


@syscall("setrlimit")
def sys_setrlimit(task, resource, rlim):
    """Implements Linux syscall setrlimit(2). Errnos as prlimit64."""
    new = RLIMIT.unpack(task.mm.copy_in(rlim, RLIMIT.size))
    _prlimit(task, resource & 0xFFFFFFFF, new)
    return 0


# -- scheduling --------------------------------------------------------------------

def nr_cpus() -> int:
    """CPUs offered to the guest: those the sentry may run on."""
    return len(os.sched_getaffinity(0))


@syscall("sched_getaffinity")
def sys_sched_getaffinity(task, pid, len_, user_mask_ptr):
    """Implements Linux syscall sched_getaffinity(2).

    The mask has CPUs 0..n-1 for the n host CPUs the sentry may use.
    Returns the bytes written, as the raw syscall does: min(len,
    cpumask size) with the cpumask size nr_cpu_ids bits rounded up to
    whole longs. EINVAL when len is not a multiple of 8 or too small for
    nr_cpu_ids bits (checked first, as kernel/sched/core.c); ESRCH for
    another pid.
    """
    length = len_ & 0xFFFFFFFF
    ncpu = nr_cpus()
    if length * 8 < ncpu or length & 7:
        raise SyscallError(errno.EINVAL)
    pid = to_int(pid)
    if pid != 0 and pid != task.process.pid and pid != task.tid:
        raise SyscallError(errno.ESRCH)
    mask_size = (ncpu + 63) // 64 * 8
    mask = ((1 << ncpu) - 1).to_bytes(mask_size, "little")
    retlen = min(length, mask_size)
    task.mm.copy_out(user_mask_ptr, mask[:retlen])
    return retlen


@syscall("sched_yield")
def sys_sched_yield(task):
    """Implements Linux syscall sched_yield(2): yields the host thread."""
    os.sched_yield()
    return 0


@syscall("getcpu")
def sys_getcpu(task, cpu, node, cache):
    """Implements Linux syscall getcpu(2): always CPU 0 on node 0.

    Either pointer may be NULL; ``cache`` is ignored as since Linux 2.6.24.
    """
    if cpu:
        task.mm.copy_out(cpu, U32.pack(0))
    if node:
        task.mm.copy_out(node, U32.pack(0))
    return 0


# -- clocks ---------------------------------------------------------------------------

def _cpu_clock_ns(task, clockid: int) -> int:
    """Process or thread CPU time in ns for a CPU clock id; EINVAL otherwise.

    Negative ids are the kernel's encoding of another task's CPU clock
    (~pid << 3 | type, bit 2 for a thread); only the caller's own work.
    """
    if clockid == CLOCK_PROCESS_CPUTIME_ID:
        return time.process_time_ns()
    if clockid == CLOCK_THREAD_CPUTIME_ID:
        return time.thread_time_ns()
    if clockid < 0:
        if clockid & 3 == 3:
            raise SyscallError(errno.EINVAL)
        pid = ~(clockid >> 3)
        thread = bool(clockid & 4)
        if thread:
            if pid in (0, task.tid):
                return time.thread_time_ns()
        elif pid in (0, task.process.pid):
            return time.process_time_ns()
    raise SyscallError(errno.EINVAL)


def clock_ns(task, clockid: int) -> int:
    """The time of guest clock ``clockid`` in ns. EINVAL for an unknown id."""
    host = _HOST_CLOCKS.get(clockid)
    if host is not None:
        return time.clock_gettime_ns(host)
    return _cpu_clock_ns(task, clockid)


def _put_timespec(task, gva: int, ns: int) -> None:
    task.mm.copy_out(gva, TIMESPEC.pack(ns // NSEC_PER_SEC, ns % NSEC_PER_SEC))


def _get_timespec(task, gva: int) -> int:
    """A guest struct timespec as ns; EINVAL when not normalized or negative."""
    sec, nsec = TIMESPEC.unpack(task.mm.copy_in(gva, TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < NSEC_PER_SEC:
        raise SyscallError(errno.EINVAL)
    return sec * NSEC_PER_SEC + nsec


@syscall("clock_gettime")
def sys_clock_gettime(task, which_clock, tp):
    """Implements Linux syscall clock_gettime(2).

    REALTIME, MONOTONIC, MONOTONIC_RAW, BOOTTIME, TAI, the _COARSE and
    _ALARM variants read the host clock; PROCESS_CPUTIME_ID and
    THREAD_CPUTIME_ID the sentry's CPU time (which includes the guest's,
    run by the same host threads). EINVAL for other ids.
    """
    _put_timespec(task, tp, clock_ns(task, to_int(which_clock)))
    return 0


@syscall("clock_getres")
def sys_clock_getres(task, which_clock, tp):
    """Implements Linux syscall clock_getres(2). ``tp`` may be NULL. EINVAL."""
    clockid = to_int(which_clock)
    host = _HOST_CLOCKS.get(clockid)
    if host is not None:
        res_ns = round(time.clock_getres(host) * NSEC_PER_SEC)
    else:
        _cpu_clock_ns(task, clockid)  # validates
        res_ns = 1
    if tp:
        _put_timespec(task, tp, res_ns)
    return 0


@syscall("gettimeofday")
def sys_gettimeofday(task, tv, tz):
    """Implements Linux syscall gettimeofday(2).

    Either pointer may be NULL; the timezone is always UTC (0, 0).
    """
    if tv:
        ns = time.time_ns()
        task.mm.copy_out(tv, TIMEVAL.pack(ns // NSEC_PER_SEC, ns % NSEC_PER_SEC // 1000))
    if tz:
        task.mm.copy_out(tz, TIMEZONE.pack(0, 0))
    return 0


@syscall("time")
def sys_time(task, tloc):
    """Implements Linux syscall time(2): seconds since the epoch; tloc may be NULL."""
    now = time.time_ns() // NSEC_PER_SEC
    if tloc:
        task.mm.copy_out(tloc, Q.pack(now))
    return now


ERESTART_RESTARTBLOCK = 516  # include/linux/errno.h


def _sleep_ns(task, ns: int, rem: int = 0) -> None:
    """Sleep ``ns`` nanoseconds without the kernel lock; a signal ends it early.

    Interrupted: the remaining time goes to ``rem`` (when given) and the
    call fails with ERESTART_RESTARTBLOCK (EINTR after a handler; a restart
    without one, which sleeps the whole time again).
    """
    if ns <= 0:
        return
    deadline = time.monotonic() + ns / NSEC_PER_SEC
    try:
        sched.WaitQueue().wait(task, lambda: False, ns / NSEC_PER_SEC)
    except sched.Interrupted:
        if rem:
            left = max(0, int((deadline - time.monotonic()) * NSEC_PER_SEC))
            task.mm.copy_out(rem, pack_timespec_ns(left))
        raise SyscallError(ERESTART_RESTARTBLOCK) from None


@syscall("nanosleep", PARTIAL, "a restart after a signal without a handler sleeps the whole time again")
def sys_nanosleep(task, req, rem):
    """Implements Linux syscall nanosleep(2) without holding the kernel lock.

    EINVAL for tv_nsec outside [0, 999999999] or a negative tv_sec. A
    handled signal ends it with EINTR and the remaining time in ``rem``.
    """
    _sleep_ns(task, _get_timespec(task, req), rem)
    return 0


@syscall("clock_nanosleep", PARTIAL, "a restart after a signal without a handler sleeps the whole time again")
def sys_clock_nanosleep(task, which_clock, flags, req, rem):
    """Implements Linux syscall clock_nanosleep(2) by blocking the host thread.

    Relative, or absolute with TIMER_ABSTIME, on REALTIME, MONOTONIC,
    BOOTTIME, TAI and the _ALARM clocks. EOPNOTSUPP for the other
    non-CPU clocks (MONOTONIC_RAW, _COARSE), EINVAL for CPU clocks,
    unknown ids and a bad timespec.
    """
    clockid = to_int(which_clock)
    flags = to_int(flags)
    if clockid not in _SLEEP_CLOCKS:
        if clockid in _HOST_CLOCKS:
            raise SyscallError(errno.EOPNOTSUPP)
        raise SyscallError(errno.EINVAL)
    ns = _get_timespec(task, req)
    if flags & TIMER_ABSTIME:
        ns -= clock_ns(task, clockid)
    _sleep_ns(task, ns, 0 if flags & TIMER_ABSTIME else rem)
    return 0


# -- credentials ------------------------------------------------------------------------

@syscall("getuid")
def sys_getuid(task):
    """Implements Linux syscall getuid(2): the sandbox's uid (root by default)."""
    return task.process.creds.uid


@syscall("geteuid")
def sys_geteuid(task):
    """Implements Linux syscall geteuid(2)."""
    return task.process.creds.euid


@syscall("getgid")
def sys_getgid(task):
    """Implements Linux syscall getgid(2)."""
    return task.process.creds.gid


@syscall("getegid")
def sys_getegid(task):
    """Implements Linux syscall getegid(2)."""
    return task.process.creds.egid


def _put_ids(task, ptrs, ids) -> None:
    for gva, value in zip(ptrs, ids):
        task.mm.copy_out(gva, U32.pack(value))


@syscall("getresuid")
def sys_getresuid(task, ruid, euid, suid):
    """Implements Linux syscall getresuid(2): three u32 writes. EFAULT."""
    c = task.process.creds
    _put_ids(task, (ruid, euid, suid), (c.uid, c.euid, c.suid))
    return 0


@syscall("getresgid")
def sys_getresgid(task, rgid, egid, sgid):
    """Implements Linux syscall getresgid(2): three u32 writes. EFAULT."""
    c = task.process.creds
    _put_ids(task, (rgid, egid, sgid), (c.gid, c.egid, c.sgid))
    return 0


@syscall("getgroups")
def sys_getgroups(task, gidsetsize, grouplist):
    """Implements Linux syscall getgroups(2): the supplementary groups
    (setgroups(2)), as u32s at ``grouplist``; returns their number.

    ``gidsetsize`` 0 only counts them. EINVAL for a negative size or one
    below the number; EFAULT (kernel/groups.c).
    """
    size = to_int(gidsetsize)
    groups = task.process.creds.groups
    if size < 0:
        raise SyscallError(errno.EINVAL)
    if size:
        if len(groups) > size:
            raise SyscallError(errno.EINVAL)
        task.mm.copy_out(grouplist, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


PER_QUERY = 0xFFFFFFFF


@syscall("personality", support=PARTIAL,
         note="recorded and returned; no flag changes behaviour (no address randomization to turn off)")
def sys_personality(task, persona):
    """Implements Linux syscall personality(2): returns the process's
    previous execution domain; 0xffffffff only asks. The value is kept
    (fork and execve keep it) but changes nothing: kvmsentry never
    randomizes addresses (ADDR_NO_RANDOMIZE holds anyway), and
    READ_IMPLIES_EXEC and the other flags are not applied
    (kernel/exec_domain.c).
    """
    persona &= 0xFFFFFFFF  # an unsigned int
    process = task.process
    old = process.personality
    if persona != PER_QUERY:
        process.personality = persona
    return old


