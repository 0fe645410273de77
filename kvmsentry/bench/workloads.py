"""The benchmark workloads of issue 6: each a real program and its inputs.

A :class:`Workload` names a program (``argv``), made ready once per bench
run by its ``prepare`` function: C guests are compiled from
``kvmsentry/bench/guests/`` with ``gcc -static -O2`` into the run's
temporary directory, input files are written there. The same argv then
runs natively, under kvmsentry and under runsc, so the wall times compare
directly. A guest that times itself prints ``name value`` lines (e.g.
``getpid_ns 30603.1``); they are reported as the workload's figures.

Sizes: the full size is issue 6's; ``--quick`` uses a small one (for a
smoke run and the integration test), so quick figures are not comparable
with full ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import subprocess
from importlib import resources
from typing import Callable

BUSYBOX = "/bin/busybox"

FILES_COUNT = 2000          # small files in the `files` tree
FILES_QUICK_COUNT = 200
FILES_SIZE = 1024           # bytes each (the last one of a directory varies)


class PrepareError(Exception):
    """A workload cannot be set up here (no compiler, no busybox)."""


@dataclasses.dataclass
class Setup:
    """What ``prepare`` functions share: the temporary directory and the size."""

    tmp: str
    quick: bool
    _binaries: dict[str, str] = dataclasses.field(default_factory=dict)

    def guest(self, name: str, *, static: bool = True, extra: tuple[str, ...] = ()) -> str:
        """Compile ``guests/<name>.c`` once into the temp dir; returns the binary's path."""
        if name in self._binaries:
            return self._binaries[name]
        binary = os.path.join(self.tmp, name)
        source = resources.files("kvmsentry.bench").joinpath("guests", f"{name}.c")
        with resources.as_file(source) as path:
            argv = ["gcc", "-O2", "-o", binary, str(path), *extra]
            if static:
                argv.insert(1, "-static")
            try:
                done = subprocess.run(argv, capture_output=True, text=True)
            except FileNotFoundError:
                raise PrepareError("gcc is not installed") from None
        if done.returncode != 0:
            raise PrepareError(f"cannot build {name}.c: {done.stderr.strip()[-400:]}")
        self._binaries[name] = binary
        return binary


@dataclasses.dataclass
class Prepared:
    """A workload ready to run: its argv and how to check a run's output."""

    argv: list[str]
    # Returns None when the output is right, else what is wrong.
    check: Callable[[str], str | None] | None = None
    # What one run does, for the report ("20000 getpid + 20000 write").
    size: str = ""
    # The program prints its own ``name value`` figures (our C guests do).
    figures: bool = False


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    description: str
    prepare: Callable[[Setup], Prepared]
    default: bool = True     # in the set run when no --workload is given


def _need_busybox() -> None:
    if not os.access(BUSYBOX, os.X_OK):
        raise PrepareError(f"{BUSYBOX} is missing (Debian: busybox-static)")


def _syscall(setup: Setup) -> Prepared:
    n = 2000 if setup.quick else 20000
    return Prepared([setup.guest("syscall_loop"), str(n)], size=f"{n} getpid + {n} write", figures=True)


def _coldstart(setup: Setup) -> Prepared:
    _need_busybox()
    return Prepared([BUSYBOX, "true"], size="one process")


def _sha256(setup: Setup) -> Prepared:
    _need_busybox()
    mib = 16 if setup.quick else 256
    path = os.path.join(setup.tmp, "sha256.input")
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            chunk = block[i % 251:] + block[:i % 251]   # each MiB different
            digest.update(chunk)
            f.write(chunk)
    expected = digest.hexdigest()

    def check(stdout: str) -> str | None:
        return None if stdout.split()[:1] == [expected] else f"wrong digest {stdout.strip()[:80]!r}"
    return Prepared([BUSYBOX, "sha256sum", path], check, size=f"{mib} MiB")


def _pagefault(setup: Setup) -> Prepared:
    mib = 64 if setup.quick else 1024
    return Prepared([setup.guest("pagefault"), str(mib)], size=f"{mib} MiB, one write per 4 KiB page",
                    figures=True)


def _fork_exec(setup: Setup) -> Prepared:
    _need_busybox()
    n = 20 if setup.quick else 200
    script = f"i=0; while [ $i -lt {n} ]; do {BUSYBOX} true; i=$((i+1)); done"
    return Prepared([BUSYBOX, "sh", "-c", script], size=f"{n} x fork+exec `true` from sh")


def _pipe(setup: Setup) -> Prepared:
    n = 200 if setup.quick else 2000
    return Prepared([setup.guest("proc_loops", extra=("-pthread",)), "pipe", str(n)],
                    size=f"{n} one-byte round trips", figures=True)


def make_tree(root: str, count: int) -> int:
    """Write ``count`` small files under ``root`` (20 per directory); returns their total bytes."""
    total = 0
    for i in range(count):
        directory = os.path.join(root, f"d{i // 100:02d}", f"e{i // 20 % 5}")
        os.makedirs(directory, exist_ok=True)
        data = (f"file {i}\n".encode() * (FILES_SIZE // 8))[:FILES_SIZE - i % 7]
        with open(os.path.join(directory, f"f{i:04d}.txt"), "wb") as f:
            f.write(data)
        total += len(data)
    return total


def _files(setup: Setup) -> Prepared:
    _need_busybox()
    count = FILES_QUICK_COUNT if setup.quick else FILES_COUNT
    root = os.path.join(setup.tmp, "tree")
    total = make_tree(root, count)

    def check(stdout: str) -> str | None:
        got = len(stdout.encode())
        return None if got == total else f"read {got} bytes, expected {total}"
    return Prepared([BUSYBOX, "find", root, "-type", "f", "-exec", BUSYBOX, "cat", "{}", "+"],
                    check, size=f"find + cat over {count} files")


FIND_ROOT = "/usr"


def count_regular_files(root: str) -> int:
    """What ``find ROOT -type f | wc -l`` prints: regular files under ``root``, symlinks not followed."""
    count = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                if stat.S_ISREG(os.lstat(os.path.join(directory, name)).st_mode):
                    count += 1
            except OSError:
                pass
    return count


def _find(setup: Setup) -> Prepared:
    _need_busybox()
    root = os.path.join(FIND_ROOT, "include") if setup.quick else FIND_ROOT
    expected = count_regular_files(root)

    def check(stdout: str) -> str | None:
        return None if stdout.strip() == str(expected) else f"counted {stdout.strip()[:40]!r}, expected {expected}"
    script = f"{BUSYBOX} find {root} -type f | {BUSYBOX} wc -l"
    return Prepared([BUSYBOX, "sh", "-c", script], check, size=f"{expected} files under {root}")


def _futex(setup: Setup) -> Prepared:
    n = 200 if setup.quick else 2000
    return Prepared([setup.guest("proc_loops", extra=("-pthread",)), "futex", str(n)],
                    size=f"{n} round trips between two threads", figures=True)


def _threads(setup: Setup) -> Prepared:
    n = 30 if setup.quick else 300
    return Prepared([setup.guest("proc_loops", extra=("-pthread",)), "threads", str(n)],
                    size=f"{n}M LCG steps on one thread, then split over two", figures=True)


def _dyn_true(setup: Setup) -> Prepared:
    if not os.path.exists("/bin/true"):
        raise PrepareError("/bin/true is missing")
    return Prepared(["/bin/true"], size="one dynamic process (ld.so + libc)")


def _python_start(setup: Setup) -> Prepared:
    if not os.path.exists("/usr/bin/python3"):
        raise PrepareError("/usr/bin/python3 is missing")
    return Prepared(["/usr/bin/python3", "-c", "pass"], size="python3 -c pass")


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("syscall", "getpid(2) and write(2) to /dev/null in a loop (ns per call)", _syscall),
    Workload("coldstart", "busybox true, start to exit", _coldstart),
    Workload("sha256", "busybox sha256sum of a file (compute-bound; 4 KiB reads)", _sha256),
    Workload("pagefault", "touch fresh anonymous memory, one write per page", _pagefault),
    Workload("fork-exec", "a shell loop starting `busybox true`", _fork_exec),
    Workload("pipe", "one-byte ping-pong between two processes over pipes", _pipe),
    Workload("files", "busybox find + cat over a tree of small files", _files),
    Workload("find", "busybox find /usr -type f | wc -l: a walk of the host's tree (issue 3)",
             _find, default=False),
    Workload("futex", "futex ping-pong between two threads", _futex, default=False),
    Workload("threads", "the same compute on one thread, then on two", _threads, default=False),
    Workload("dyn-true", "Debian's dynamic /bin/true, start to exit", _dyn_true, default=False),
    Workload("python-start", "python3 -c pass, start to exit", _python_start, default=False),
)}


def select(names: list[str] | None) -> list[Workload]:
    """The workloads to run, in the table's order: ``names`` (deduplicated) or the default set.

    Raises KeyError naming an unknown workload.
    """
    if not names:
        return [w for w in WORKLOADS.values() if w.default]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise KeyError(unknown[0])
    wanted = set(names)
    return [w for w in WORKLOADS.values() if w.name in wanted]
