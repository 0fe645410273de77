"""``kvmsentry boot --profile``: count the sandbox's exits by kind ("the tax explained").

A workload's tax is its exit count times the exit cost (DESIGN.md, "The
trap path"). The profiler says where the exits came from: each syscall by
name, page faults, other CPU exceptions, interrupts (TRAP_INTERRUPT: a
kicked vCPU) and anything else, and how the sandbox's thread time splits
between the guest (inside KVM_RUN, which includes the exit and re-entry
themselves) and the sentry (everything between two KVM_RUNs: Python's trap
handling, and the time a syscall spent blocked).

Nothing here is on the hot path unless ``--profile`` is given: the CLI
calls :func:`install`, which wraps the kernel's ``syscall`` and ``fault``
methods on that one Kernel instance and patches ``Context.run`` and
``Vcpu.run`` on their classes for the life of the process. Without it the
kernel runs its own unwrapped methods.

Times are host ``time.perf_counter`` seconds summed over every guest
thread, so with two busy threads ``guest_s + sentry_s`` exceeds the wall
time.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from kvmsentry.abi.syscall_64 import SYSCALLS


class Profile:
    """Exit counters of one sandbox; :meth:`as_dict` gives the figures."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.exits = 0                 # KVM_RUN calls that returned
        self.kvm_run_s = 0.0           # time inside KVM_RUN
        self.context_run_s = 0.0       # time inside Context.run (KVM_RUN + the platform's Python)
        self.between_runs_s = 0.0      # from Context.run returning to the next call, same thread
        self.traps: Counter[str] = Counter()        # "syscall", "fault", "interrupt"
        self.syscalls: Counter[str] = Counter()
        self.syscall_s: Counter[str] = Counter()
        self.exceptions: Counter[str] = Counter()   # vector name -> count (page faults included)
        self._lock = threading.Lock()
        self._local = threading.local()
        # The kernel's RingStats (--syscall-path=ring): calls answered without an exit.
        self.ring_stats = None
        # The kernel, for its count of read(2) calls served without an exit
        # (kvmsentry/kernel/fastread.py; added up as each process's memory goes).
        self.kernel = None

    # -- the wrappers ---------------------------------------------------------
    def wrap_vcpu_run(self, run):
        def profiled_vcpu_run(vcpu):
            t0 = time.perf_counter()
            try:
                return run(vcpu)
            finally:
                dt = time.perf_counter() - t0
                with self._lock:
                    self.exits += 1
                    self.kvm_run_s += dt
        return profiled_vcpu_run

    def wrap_context_run(self, run, kinds: dict[int, str]):
        local = self._local

        def profiled_context_run(ctx):
            t0 = time.perf_counter()
            last = getattr(local, "last_return", None)
            kind = None
            try:
                kind = run(ctx)
                return kind
            finally:
                t1 = time.perf_counter()
                local.last_return = t1
                with self._lock:
                    self.context_run_s += t1 - t0
                    if last is not None:
                        self.between_runs_s += t0 - last
                    if kind is not None:
                        self.traps[kinds.get(kind, f"trap {kind}")] += 1
        return profiled_context_run

    def wrap_syscall(self, syscall):
        def profiled_syscall(task):
            nr = task.context.regs.rax
            t0 = time.perf_counter()
            try:
                return syscall(task)
            finally:
                dt = time.perf_counter() - t0
                name = SYSCALLS.get(nr, f"unknown_{nr}")
                with self._lock:
                    self.syscalls[name] += 1
                    self.syscall_s[name] += dt
        return profiled_syscall

    def wrap_fault(self, fault, trap_names: dict[int, str]):
        def profiled_fault(task):
            f = task.context.fault
            name = trap_names.get(f.vector, f"exception {f.vector}") if f is not None else "unknown"
            with self._lock:
                self.exceptions[name] += 1
            return fault(task)
        return profiled_fault

    # -- the figures ----------------------------------------------------------
    def as_dict(self) -> dict:
        """The breakdown as plain data (the JSON that ``--profile-json`` writes).

        ``exits`` is every KVM_RUN that returned; ``syscalls``/``page_faults``/
        ``other_exceptions``/``interrupts`` split it and ``other_exits`` is the
        rest (zero unless the runtime exits for something new).
        """
        with self._lock:
            page_faults = sum(n for name, n in self.exceptions.items() if name.startswith("#PF"))
            other = {name: n for name, n in self.exceptions.items() if not name.startswith("#PF")}
            syscall_total = sum(self.syscalls.values())
            interrupts = self.traps.get("interrupt", 0)
            ring_waits = self.traps.get("ring_wait", 0)
            counted = self.traps.get("syscall", 0) + self.traps.get("fault", 0) + interrupts + ring_waits
            ring = self.ring_stats.as_dict() if self.ring_stats is not None else None
            if ring is not None:
                ring["wait_exits"] = ring_waits
            return {
                "wall_s": time.perf_counter() - self.started,
                "exits": self.exits,
                "syscall_total": syscall_total,
                "syscalls": dict(self.syscalls.most_common()),
                "syscall_s": {name: self.syscall_s[name] for name, _ in self.syscalls.most_common()},
                "page_faults": page_faults,
                "other_exceptions": other,
                "interrupts": interrupts,
                "other_exits": max(0, self.exits - counted),
                "guest_s": self.kvm_run_s,
                "sentry_s": self.between_runs_s + (self.context_run_s - self.kvm_run_s),
                # --syscall-path=ring: calls answered in the ring (no exit), run
                # by the poller but finished through an exit, handed back unrun;
                # the exits on RING_WAIT_PORT; the pollers' spinning CPU seconds.
                "ring": ring,
                # read(2) calls the vDSO's fast-read trampoline served without an
                # exit (their count is kept by the guest side: a process may lie
                # about its own; exits above are the sentry's own count).
                "fast_reads": self.kernel.fast_reads if self.kernel is not None else 0,
            }


def format_profile(data: dict, top: int = 12) -> str:
    """The human-readable breakdown ``--profile`` prints on stderr."""
    lines = [f"kvmsentry profile: {data['exits']:,} exits in {data['wall_s']:.3f} s; "
             f"thread time in the guest (KVM_RUN) {data['guest_s']:.3f} s, "
             f"in the sentry {data['sentry_s']:.3f} s"]
    lines.append(f"  syscalls          {data['syscall_total']:>10,}")
    syscalls = list(data["syscalls"].items())
    for name, count in syscalls[:top]:
        seconds = data["syscall_s"].get(name, 0.0)
        lines.append(f"    {name:22s}{count:>10,}  {seconds * 1e6 / count:>10,.1f} us/call in the sentry")
    if len(syscalls) > top:
        rest = sum(count for _, count in syscalls[top:])
        label = f"({len(syscalls) - top} more kinds)"
        lines.append(f"    {label:22s}{rest:>10,}")
    lines.append(f"  page faults       {data['page_faults']:>10,}")
    other = data["other_exceptions"]
    lines.append(f"  other exceptions  {sum(other.values()):>10,}"
                 + ("  (" + ", ".join(f"{k} {v}" for k, v in other.items()) + ")" if other else ""))
    lines.append(f"  interrupts        {data['interrupts']:>10,}")
    lines.append(f"  other exits       {data['other_exits']:>10,}")
    if data.get("fast_reads"):
        lines.append(f"  read(2) served without an exit {data['fast_reads']:>10,}")
    ring = data.get("ring")
    if ring is not None:
        lines.append(f"  ring path: {ring['answered']:,} calls answered without an exit, "
                     f"{ring['exited']:,} run by the poller then finished by an exit "
                     f"({ring['wait_exits']:,} waits), {ring['bounced']:,} handed back; "
                     f"pollers spun {ring['poll_cpu_s']:.3f} s of CPU"
                     + (f"; auto left the ring {ring['auto_off']:,} times" if ring.get("auto_off") else ""))
    return "\n".join(lines)


class Profiler:
    """A :class:`Profile` attached to one Kernel (see :func:`install`)."""

    def __init__(self, profile: Profile):
        self.profile = profile

    def report(self, stream, json_path: str | None = None) -> None:
        data = self.profile.as_dict()
        print(format_profile(data), file=stream, flush=True)
        if json_path:
            with open(json_path, "w") as f:
                json.dump(data, f, indent=1)


def install(kernel) -> Profiler:
    """Count ``kernel``'s exits from now on; returns the Profiler to report with.

    Wraps ``kernel.syscall`` and ``kernel.fault`` on the instance (the
    dispatch loop calls ``self.syscall(task)``), and ``Context.run`` and
    ``Vcpu.run`` on their classes (this process runs one sandbox).
    """
    from kvmsentry.platform import kvm as platform_kvm
    from kvmsentry.vm import kvm as vm_kvm
    from kvmsentry.vm import x86

    profile = Profile()
    kinds = {platform_kvm.TRAP_SYSCALL: "syscall", platform_kvm.TRAP_FAULT: "fault",
             getattr(platform_kvm, "TRAP_INTERRUPT", 2): "interrupt",
             getattr(platform_kvm, "TRAP_RING_WAIT", 3): "ring_wait"}
    if kernel.platform.syscall_path == "ring":
        profile.ring_stats = kernel.ring_stats
    profile.kernel = kernel
    vm_kvm.Vcpu.run = profile.wrap_vcpu_run(vm_kvm.Vcpu.run)
    platform_kvm.Context.run = profile.wrap_context_run(platform_kvm.Context.run, kinds)
    kernel.syscall = profile.wrap_syscall(kernel.syscall)
    kernel.fault = profile.wrap_fault(kernel.fault, x86.TRAP_NAMES)
    return Profiler(profile)
