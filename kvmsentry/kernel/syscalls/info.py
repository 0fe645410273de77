"""System information, limits, clocks, randomness and credentials syscalls.

uname, sysinfo, getrandom, prlimit64/getrlimit/setrlimit,
sched_getaffinity, sched_yield, getcpu, clock_gettime/clock_getres,
gettimeofday, time, nanosleep/clock_nanosleep and the uid/gid getters.
Importing this module registers its handlers in the syscall table.
"""

from __future__ import annotations

import dataclasses
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
from kvmsentry.kernel.task import (CAP_FULL, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_RESOURCE,
                                   commit_creds)

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
    nr_cpu_ids bits; ESRCH for another pid.
    """
    pid = to_int(pid)
    if pid != 0 and pid != task.process.pid and pid != task.tid:
        raise SyscallError(errno.ESRCH)
    length = len_ & 0xFFFFFFFF
    ncpu = nr_cpus()
    if length * 8 < ncpu or length & 7:
        raise SyscallError(errno.EINVAL)
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


# (uid_t)-1 / (gid_t)-1: "leave unchanged" for setre*id/setres*id, invalid for set*id.
ID_UNCHANGED = 0xFFFFFFFF


def _id(value: int) -> int:
    """A uid_t/gid_t argument: the low 32 bits of the register."""
    return value & 0xFFFFFFFF


def _capable(creds, gid: bool) -> bool:
    """CAP_SETGID (``gid``) or CAP_SETUID in the effective set."""
    return creds.capable(CAP_SETGID if gid else CAP_SETUID)


def _emulate_setxuid(old, new) -> None:
    """Capabilities follow a change of uids (security/commoncap.c
    cap_emulate_setxuid, without PR_SET_KEEPCAPS): when no uid is 0 any
    more, the permitted and effective sets are cleared; when the effective
    uid leaves 0 the effective set is, and when it returns to 0 it
    becomes the permitted set again. ``new`` is changed in place."""
    if 0 in (old.uid, old.euid, old.suid) and 0 not in (new.uid, new.euid, new.suid):
        new.cap_permitted = 0
        new.cap_effective = 0
    if old.euid == 0 and new.euid != 0:
        new.cap_effective = 0
    if old.euid != 0 and new.euid == 0:
        new.cap_effective = new.cap_permitted


def _set_ids(task, real: int, effective: int, saved: int, *, gid: bool) -> None:
    """setres[ug]id's core: each of ``real``/``effective``/``saved`` is an id
    or ID_UNCHANGED. Without CAP_SETUID (CAP_SETGID) each new id must be
    one of the current real, effective or saved ids, else EPERM
    (kernel/sys.c __sys_setresuid)."""
    old = task.process.creds
    current = (old.gid, old.egid, old.sgid) if gid else (old.uid, old.euid, old.suid)
    if not _capable(old, gid):
        for value in (real, effective, saved):
            if value != ID_UNCHANGED and value not in current:
                raise SyscallError(errno.EPERM)
    new_ids = tuple(c if v == ID_UNCHANGED else v for v, c in zip((real, effective, saved), current))
    _commit_ids(task, old, new_ids, gid)


def _commit_ids(task, old, ids: tuple[int, int, int], gid: bool) -> None:
    """New credentials with the (real, effective, saved) ``ids``."""
    names = ("gid", "egid", "sgid") if gid else ("uid", "euid", "suid")
    new = dataclasses.replace(old, **dict(zip(names, ids)))
    if not gid:
        _emulate_setxuid(old, new)
    commit_creds(task, new)


def _setid(task, value: int, *, gid: bool) -> int:
    """setuid(2)/setgid(2) (kernel/sys.c __sys_setuid): with the capability,
    real, effective and saved ids all become ``value``; without, only the
    effective one, and only to the real or saved id (else EPERM). EINVAL
    for (uid_t)-1."""
    value = _id(value)
    if value == ID_UNCHANGED:
        raise SyscallError(errno.EINVAL)
    old = task.process.creds
    if _capable(old, gid):
        _set_ids(task, value, value, value, gid=gid)
        return 0
    real, saved = (old.gid, old.sgid) if gid else (old.uid, old.suid)
    if value not in (real, saved):
        raise SyscallError(errno.EPERM)
    _set_ids(task, ID_UNCHANGED, value, ID_UNCHANGED, gid=gid)
    return 0


def _setreid(task, real: int, effective: int, *, gid: bool) -> int:
    """setreuid(2)/setregid(2) (kernel/sys.c __sys_setreuid): -1 leaves an id.
    Without the capability the real id may become the real or effective
    one, the effective id the real, effective or saved one (else EPERM).
    The saved id becomes the new effective id when the real id is set or
    the effective id is set to something other than the old real id."""
    real, effective = _id(real), _id(effective)
    old = task.process.creds
    r, e, s = (old.gid, old.egid, old.sgid) if gid else (old.uid, old.euid, old.suid)
    if not _capable(old, gid):
        if real != ID_UNCHANGED and real not in (r, e):
            raise SyscallError(errno.EPERM)
        if effective != ID_UNCHANGED and effective not in (r, e, s):
            raise SyscallError(errno.EPERM)
    new_r = r if real == ID_UNCHANGED else real
    new_e = e if effective == ID_UNCHANGED else effective
    new_s = s
    if real != ID_UNCHANGED or (effective != ID_UNCHANGED and effective != r):
        new_s = new_e
    _commit_ids(task, old, (new_r, new_e, new_s), gid)
    return 0


@syscall("setuid")
def sys_setuid(task, uid):
    """Implements Linux syscall setuid(2) (``_setid``). EINVAL, EPERM.

    Credentials belong to the process: every thread changes at once, as
    glibc's setuid makes it (setxid broadcast), where the raw syscall of
    Linux changes only the calling thread.
    """
    return _setid(task, uid, gid=False)


@syscall("setgid")
def sys_setgid(task, gid):
    """Implements Linux syscall setgid(2) (``_setid``, with CAP_SETGID). EINVAL, EPERM."""
    return _setid(task, gid, gid=True)


@syscall("setreuid")
def sys_setreuid(task, ruid, euid):
    """Implements Linux syscall setreuid(2) (``_setreid``). EPERM."""
    return _setreid(task, ruid, euid, gid=False)


@syscall("setregid")
def sys_setregid(task, rgid, egid):
    """Implements Linux syscall setregid(2) (``_setreid``). EPERM."""
    return _setreid(task, rgid, egid, gid=True)


@syscall("setresuid")
def sys_setresuid(task, ruid, euid, suid):
    """Implements Linux syscall setresuid(2) (``_set_ids``): -1 leaves an id. EPERM."""
    _set_ids(task, _id(ruid), _id(euid), _id(suid), gid=False)
    return 0


@syscall("setresgid")
def sys_setresgid(task, rgid, egid, sgid):
    """Implements Linux syscall setresgid(2) (``_set_ids``): -1 leaves an id. EPERM."""
    _set_ids(task, _id(rgid), _id(egid), _id(sgid), gid=True)
    return 0


# struct __user_cap_header_struct {u32 version; int pid;} and up to two
# struct __user_cap_data_struct {u32 effective, permitted, inheritable;}
# (include/uapi/linux/capability.h).
_LINUX_CAPABILITY_VERSION_1 = 0x19980330
_LINUX_CAPABILITY_VERSION_2 = 0x20071026
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_HEADER = struct.Struct("<Ii")
CAP_DATA = struct.Struct("<III")


def _cap_header(task, header) -> tuple[int, int]:
    """(u32 words per set, pid) of a capget/capset header (kernel/capability.c
    cap_validate_magic): 1 for version 1, 2 for versions 2 and 3. An
    unknown version is answered by writing version 3 into the header and
    EINVAL."""
    version, pid = CAP_HEADER.unpack(task.mm.copy_in(header, CAP_HEADER.size))
    if version == _LINUX_CAPABILITY_VERSION_1:
        return 1, pid
    if version in (_LINUX_CAPABILITY_VERSION_2, _LINUX_CAPABILITY_VERSION_3):
        return 2, pid
    task.mm.copy_out(header, U32.pack(_LINUX_CAPABILITY_VERSION_3))
    raise SyscallError(errno.EINVAL)


@syscall("capget")
def sys_capget(task, header, dataptr):
    """Implements Linux syscall capget(2): the effective, permitted and
    inheritable sets of process ``pid`` (0: the caller) as 1 (version 1)
    or 2 (versions 2, 3) struct __user_cap_data_struct. With a null
    ``dataptr`` it only probes the version: 0, even for an unknown one
    (whose header then says version 3). EINVAL for an unknown version or
    a negative pid, ESRCH for no such process, EFAULT.
    Source: kernel/capability.c."""
    try:
        words, pid = _cap_header(task, header)
    except SyscallError:
        if not dataptr:
            return 0
        raise
    if not dataptr:
        return 0
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    process = task.process
    if pid and pid != process.pid:
        from kvmsentry.kernel.procfs import processes
        process = processes(task).get(pid)
        if process is None:
            raise SyscallError(errno.ESRCH)
    c = process.creds
    out = b"".join(CAP_DATA.pack(c.cap_effective >> 32 * i & 0xFFFFFFFF,
                                 c.cap_permitted >> 32 * i & 0xFFFFFFFF,
                                 c.cap_inheritable >> 32 * i & 0xFFFFFFFF) for i in range(words))
    task.mm.copy_out(dataptr, out)
    return 0


@syscall("capset")
def sys_capset(task, header, data):
    """Implements Linux syscall capset(2) for the calling process.

    The new permitted set must be within the old one, the effective set
    within the new permitted one, the inheritable set within the old
    inheritable plus permitted sets (unless CAP_SETPCAP is effective):
    else EPERM. Bits past CAP_LAST_CAP are dropped. EPERM for another
    process's pid, EINVAL for an unknown version, EFAULT.
    Source: kernel/capability.c, security/commoncap.c cap_capset.
    """
    words, pid = _cap_header(task, header)
    if pid and pid != task.process.pid:
        raise SyscallError(errno.EPERM)
    raw = task.mm.copy_in(data, CAP_DATA.size * words)
    effective = permitted = inheritable = 0
    for i in range(words):
        e, p, h = CAP_DATA.unpack_from(raw, CAP_DATA.size * i)
        effective |= e << 32 * i
        permitted |= p << 32 * i
        inheritable |= h << 32 * i
    effective &= CAP_FULL
    permitted &= CAP_FULL
    inheritable &= CAP_FULL
    old = task.process.creds
    if not old.capable(CAP_SETPCAP) and inheritable & ~(old.cap_inheritable | old.cap_permitted):
        raise SyscallError(errno.EPERM)
    if permitted & ~old.cap_permitted or effective & ~permitted:
        raise SyscallError(errno.EPERM)
    commit_creds(task, dataclasses.replace(old, cap_effective=effective, cap_permitted=permitted,
                                           cap_inheritable=inheritable))
    return 0


@syscall("getgroups")
def sys_getgroups(task, gidsetsize, grouplist):
    """Implements Linux syscall getgroups(2): no supplementary groups.

    Returns 0. EINVAL for a negative ``gidsetsize``.
    """
    if to_int(gidsetsize) < 0:
        raise SyscallError(errno.EINVAL)
    return 0
