#!/usr/bin/env python3
"""The sentry's time per exit, by kind: what each syscall costs in Python.

    tools/sentry_gaps.py [--top N] BINARY [ARGS...]

runs ``kvmsentry boot BINARY ARGS`` with ``Vcpu.run`` wrapped: on each
task thread, the time from one KVM_RUN's return to the next KVM_RUN is
charged to the exit that returned (a syscall by name, a page fault,
another exception or an interrupt). That is everything the sentry does
for the exit: the dispatcher, the handler, the signal checks, the kernel
lock, the return path of Context.run (``boot --profile`` times only the
handler). A call that blocks (a read on an empty pipe, wait4) includes
its wait. The wrapper itself adds ~0.5 µs per exit.

Prints, per kind, the number of exits and the median and mean µs, most
frequent first (on stderr, after the program's own output). Use the
median: the mean carries the first calls of each kind (imports, caches)
and the machine's hiccups. BENCHMARKS.md (issue 6, the sentry's Python
per syscall) compares two trees by running this alternately on each
(PYTHONPATH=TREE) and taking each kind's smallest median.
"""

from __future__ import annotations

import collections
import statistics
import sys
import threading
import time


def main(argv: list[str]) -> int:
    top = 20
    if argv[:1] == ["--top"]:
        top, argv = int(argv[1]), argv[2:]
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2

    from kvmsentry import cli
    from kvmsentry.abi.syscall_64 import SYSCALLS
    from kvmsentry.platform import layout
    from kvmsentry.vm import kvm as vm_kvm
    from kvmsentry.vm import x86

    gaps: dict[str, list[int]] = collections.defaultdict(list)
    last = threading.local()  # (kind, ns) of this thread's last exit
    clock = time.perf_counter_ns
    run = vm_kvm.Vcpu.run

    def kind_of(vcpu, exit_) -> str:
        port = getattr(exit_, "port", None)
        if port == layout.SYSCALL_PORT:
            nr = vcpu.regs.rax
            return SYSCALLS.get(nr, f"syscall {nr}")
        if port is not None and 0 <= port - layout.EXCEPTION_PORT_BASE < layout.NUM_EXCEPTION_VECTORS:
            vector = port - layout.EXCEPTION_PORT_BASE
            return "page fault" if vector == x86.X86_TRAP_PF else x86.TRAP_NAMES.get(vector, f"vector {vector}")
        if port is not None:
            return f"port {port:#x}"
        return "interrupt"

    def timed_run(vcpu):
        entered = clock()
        previous = getattr(last, "exit", None)
        if previous is not None:
            gaps[previous[0]].append(entered - previous[1])
        exit_ = run(vcpu)
        last.exit = (kind_of(vcpu, exit_), clock())
        return exit_

    vm_kvm.Vcpu.run = timed_run
    try:
        status = cli.main(["boot", *argv])
    finally:
        rows = sorted(gaps.items(), key=lambda kv: -len(kv[1]))[:top]
        print(f"{'exit':24} {'count':>8} {'median us':>10} {'mean us':>10}", file=sys.stderr)
        for kind, values in rows:
            print(f"{kind:24} {len(values):8d} {statistics.median(values) / 1000:10.1f} "
                  f"{sum(values) / len(values) / 1000:10.1f}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
