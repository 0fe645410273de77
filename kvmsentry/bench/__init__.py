"""``kvmsentry bench``: the platform-comparison harness (issue 6).

- ``workloads``: the programs and their inputs (C guests in ``guests/``).
- ``runner``: finds the platforms (native, kvmsentry, gVisor's runsc),
  runs every workload on each, interleaved, and the ``--profile`` runs.
- ``report``: medians and ratios, the terminal table (rich), JSON, Markdown
  and the PNG chart (matplotlib).
- ``profile``: ``kvmsentry boot --profile``, the exits by kind.

Only the names below are imported by ``kvmsentry``'s argument parser;
everything else (rich, matplotlib) is imported when ``bench`` runs.
"""

# Every platform the harness knows, in the report's order. kvmsentry-ring
# is `kvmsentry boot --syscall-path=ring`; the runsc ones are gVisor's
# `runsc --network=none --platform=P do`.
PLATFORM_NAMES = ("native", "kvmsentry", "kvmsentry-ring", "runsc-ptrace", "runsc-systrap", "runsc-kvm")
# The workloads (kvmsentry.bench.workloads.WORKLOADS, same order); the
# first seven run when no --workload is given (not find, futex, threads,
# dyn-true, python-start).
WORKLOAD_NAMES = ("syscall", "coldstart", "sha256", "pagefault", "fork-exec", "pipe", "files",
                  "find", "futex", "threads", "dyn-true", "python-start")
