"""Side-by-side figures for issue 2, in one run (see BENCHMARKS.md).

1. Per-syscall cost: bench/syscall_loop.c natively, under kvmsentry and
   under gVisor's runsc (ptrace platform) where installed, next to
   bench/raw_exit.c, the same ring-3 syscall -> ring-0 out -> iretq loop
   driven from C (the floor of our trap path on this machine).
2. Coldstart: `busybox true`, median of N runs, native / kvmsentry / runsc.

Runs are interleaved (A B C A B C ...) so machine noise hits all alike.
Usage: python3 bench/boot_bench.py [--rounds 5] [--coldstart 10]
Prints a Markdown table; nothing is asserted.
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
BUSYBOX = "/bin/busybox"


def build(tmp: str) -> tuple[str, str]:
    raw = os.path.join(tmp, "raw_exit")
    loop = os.path.join(tmp, "syscall_loop")
    subprocess.run(["gcc", "-O2", "-o", raw, os.path.join(HERE, "raw_exit.c")], check=True)
    subprocess.run(["gcc", "-O2", "-static", "-o", loop, os.path.join(HERE, "syscall_loop.c")], check=True)
    return raw, loop


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--coldstart", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=20000)
    args = ap.parse_args()
    # Bytecode compiled, as `pip install` leaves it (an editable tree under
    # PYTHONDONTWRITEBYTECODE=1 recompiles every module at every start).
    kvmsentry = kvmsentry_argv()
    runsc = runsc_argv()
    with tempfile.TemporaryDirectory() as tmp:
        raw, loop = build(tmp)
        n = str(args.iterations)
        samples: dict[str, list[float]] = {}

        def add(key: str, value: float) -> None:
            samples.setdefault(key, []).append(value)

        for _ in range(args.rounds):
            out = run([raw, n])
            add("raw C exit round trip", numbers(out.stdout)["ns_per_exit"])
            for label, prefix in (("native", []), ("kvmsentry", kvmsentry), ("runsc-ptrace", runsc)):
                if prefix is None:
                    continue
                out = run(prefix + [loop, n])
                if out is None or out.returncode != 0:
                    continue
                for name, value in numbers(out.stdout).items():
                    add(f"{label} {name[:-3]}", value)
        cold: dict[str, list[float]] = {}
        for _ in range(args.coldstart):
            for label, prefix in (("native", []), ("kvmsentry", kvmsentry), ("runsc-ptrace", runsc)):
                if prefix is None:
                    continue
                t0 = time.perf_counter()
                out = run(prefix + [BUSYBOX, "true"])
                if out is not None and out.returncode == 0:
                    cold.setdefault(label, []).append((time.perf_counter() - t0) * 1e3)

    raw_ns = statistics.median(samples["raw C exit round trip"])
    print(f"machine: {platform.node()} {platform.release()}, {os.cpu_count()} cpus, "
          f"{time.strftime('%Y-%m-%d')}, runsc {'used' if runsc else 'absent'}\n")
    print("| per-syscall | median ns | min | max | / raw C exit | / native |")
    print("|---|---|---|---|---|---|")
    for key, values in samples.items():
        med = statistics.median(values)
        kind = key.split()[-1]
        native = samples.get(f"native {kind}")
        vs_native = f"{med / statistics.median(native):.0f}x" if native and not key.startswith("native") else ""
        print(f"| {key} | {med:,.0f} | {min(values):,.0f} | {max(values):,.0f} | "
              f"{med / raw_ns:.2f} | {vs_native} |")
    print("\n| `busybox true` coldstart | median ms | min | max | / native |")
    print("|---|---|---|---|---|")
    native_ms = statistics.median(cold["native"])
    for label, values in cold.items():
        med = statistics.median(values)
        print(f"| {label} | {med:.1f} | {min(values):.1f} | {max(values):.1f} | {med / native_ms:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
