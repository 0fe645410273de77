"""Side-by-side process figures for issue 4, in one run (see BENCHMARKS.md).

bench/proc_loops.c natively, under kvmsentry and under gVisor's runsc
(ptrace platform) where installed: fork+execve+wait of `busybox true`, a
one-byte pipe ping-pong between two processes, a futex ping-pong between
two threads (ns per round trip), and the same compute on one thread then
on two (the ratio shows whether guest threads run in parallel).
Interleaved rounds, medians. Usage: python3 bench/proc_bench.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from common import kvmsentry_argv, numbers, run, runsc_argv

HERE = os.path.dirname(os.path.abspath(__file__))
# Iterations per platform: fewer under the sandboxes, whose round trips cost more.
WORKLOADS = {
    "forkexec": {"native": 200, "kvmsentry": 40, "runsc-ptrace": 40},
    "pipe": {"native": 20000, "kvmsentry": 2000, "runsc-ptrace": 2000},
    "futex": {"native": 20000, "kvmsentry": 2000, "runsc-ptrace": 2000},
    "threads": {"native": 300, "kvmsentry": 300, "runsc-ptrace": 300},
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    platforms = {"native": [], "kvmsentry": kvmsentry_argv(), "runsc-ptrace": runsc_argv()}
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "proc_loops")
        subprocess.run(["gcc", "-O2", "-static", "-pthread", "-o", binary,
                        os.path.join(HERE, "proc_loops.c")], check=True)
        for _ in range(args.rounds):
            for mode, counts in WORKLOADS.items():
                for name, prefix in platforms.items():
                    if prefix is None:
                        continue
                    out = run(prefix + [binary, mode, str(counts[name])], timeout=600)
                    if out is None or out.returncode != 0:
                        continue
                    for key, value in numbers(out.stdout).items():
                        samples.setdefault((key[:-3], name), []).append(value)
    print(f"machine: {platform.node()} {platform.release()}, {os.cpu_count()} cpus, "
          f"{time.strftime('%Y-%m-%d')}, runsc {'used' if platforms['runsc-ptrace'] else 'absent'}\n")
    print("| workload | native µs | kvmsentry µs | runsc-ptrace µs | kvmsentry / native | kvmsentry / runsc |")
    print("|---|---|---|---|---|---|")
    for workload in ("forkexec", "pipe", "futex", "threads1", "threads2"):
        med = {name: statistics.median(samples[(workload, name)]) / 1000
               for name in platforms if (workload, name) in samples}
        native, ours, runsc = med.get("native"), med.get("kvmsentry"), med.get("runsc-ptrace")
        fmt = lambda v: f"{v:,.1f}" if v is not None else "-"  # noqa: E731
        print(f"| {workload} | {fmt(native)} | {fmt(ours)} | {fmt(runsc)} | "
              f"{ours / native:.1f}x | {(f'{ours / runsc:.2f}x' if runsc else '-')} |")
    for name in platforms:
        one, two = samples.get(("threads1", name)), samples.get(("threads2", name))
        if one and two:
            print(f"\n{name}: two threads take {statistics.median(two) / statistics.median(one):.2f}x "
                  f"the wall time of one thread doing the same work", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
