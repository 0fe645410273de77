#!/usr/bin/env python3
"""Build LTP's syscall tests and run each natively and under kvmsentry.

The Linux Test Project (LTP) is not part of kvmsentry and is never
committed: fetch its public repository, check it out outside the project
(e.g. /var/tmp/ltp-src), then

    tools/ltp.py build /var/tmp/ltp-src            # static, libltp + the families
    tools/ltp.py run /var/tmp/ltp-src --markdown   # the table, then totals

``build`` needs autoconf and automake (Debian packages) when the tree has no
``configure`` yet; it configures with ``LDFLAGS=-static`` (kvmsentry runs
static executables) and makes only ``lib`` and
``testcases/kernel/syscalls/<family>`` for each family.

``run`` takes the tests of each family from LTP's ``runtest/syscalls`` (the
list LTP's own runner uses: helpers such as open12_child are left out)
and runs each one twice, with a per-test timeout (``--timeout``, seconds):

- natively, in a fresh temporary directory given as TMPDIR, under
  ``--native-tmpdir`` (default /dev/shm, a tmpfs like the guest's /tmp, so
  that both sides test the same kind of filesystem: LTP skips or adapts
  some tests by the filesystem type of TMPDIR);
- under ``kvmsentry boot`` with TMPDIR=/tmp (the guest's own tmpfs),
  started from ``busybox sh -c 'TEST; exit $?'``. The shell is the
  sandbox's pid 1, so the test's main process has a parent: LTP's forked
  test process calls ``getppid()`` at each heartbeat and reports "Main
  test process might have exit!" when its parent is pid 1, as it would in
  any fresh pid namespace (runsc, a container).

Both runs have the test's directory as working directory and on PATH (a
test may exec a helper built beside it, e.g. open12 runs open12_child).

A run's result is the counts of LTP's summary (``passed``, ``failed``,
``broken``, ``skipped``; for old-API tests that print no summary, the
TPASS/TFAIL/TBROK/TCONF lines) and its exit status, which LTP composes as
a bit mask (lib/tst_test.c: 0 all passed, 1 TFAIL, 2 TBROK, 4 TWARN,
32 TCONF). The verdict is PASS (status 0), CONF (status 32: the test does
not apply here), FAIL (any other status) or TIMEOUT.

Outputs go to ``--log-dir`` (default /var/tmp/ltp-logs): one
``<test>.native.log`` and ``<test>.kvmsentry.log`` per test, for diagnosis
(rerun one test with ``--strace`` to see the syscalls).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

FAMILIES = ("open", "read", "write", "lseek", "stat", "getdents", "mkdir", "rename",
            "unlink", "link", "symlink", "readlink", "chmod", "fcntl", "dup")

BUSYBOX = "/bin/busybox"
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# LTP's exit status bits (include/tst_res_flags.h).
TFAIL, TBROK, TWARN, TCONF = 1, 2, 4, 32

SUMMARY_RE = re.compile(r"^(passed|failed|broken|skipped|warnings)\s+(\d+)\s*$", re.M)
RESULT_RE = re.compile(r"\b(TPASS|TFAIL|TBROK|TCONF|TWARN)\b")


def syscalls_dir(src: str, family: str) -> str:
    return os.path.join(src, "testcases", "kernel", "syscalls", family)


def build(src: str, families: list[str], jobs: int) -> int:
    """Configure LTP statically (once) and make libltp and the families' tests.

    Returns 0 or the failing make's status; each step's output goes to the
    terminal.
    """
    def step(argv: list[str], cwd: str) -> int:
        print("+", " ".join(shlex.quote(a) for a in argv), f"(in {cwd})", flush=True)
        return subprocess.run(argv, cwd=cwd).returncode

    if not os.path.exists(os.path.join(src, "configure")):
        if rc := step(["make", "autotools"], src):
            return rc
    if not os.path.exists(os.path.join(src, "include", "mk", "config.mk")):
        if rc := step(["./configure", "LDFLAGS=-static"], src):
            return rc
    if rc := step(["make", f"-j{jobs}", "-C", "lib"], src):
        return rc
    for family in families:
        if rc := step(["make", f"-j{jobs}", "-C", syscalls_dir(src, family)], src):
            return rc
    return 0


def tests_of(src: str, families: list[str]) -> list[tuple[str, str, list[str]]]:
    """The (family, test name, argv) of each runtest/syscalls entry built in a family dir."""
    built: dict[str, str] = {}
    for family in families:
        d = syscalls_dir(src, family)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            path = os.path.join(d, name)
            if os.path.isfile(path) and os.access(path, os.X_OK) and not name.endswith((".c", ".h", ".o")):
                built[name] = family
    tests = []
    with open(os.path.join(src, "runtest", "syscalls")) as f:
        for line in f:
            words = shlex.split(line, comments=True)
            if len(words) >= 2 and words[1] in built:
                tests.append((built[words[1]], words[0], words[1:]))
    order = {family: i for i, family in enumerate(families)}
    tests.sort(key=lambda t: (order[t[0]], t[1]))
    return tests


class Result:
    """One run of one test: LTP's counts, the exit status, the verdict."""

    def __init__(self, output: str, status: int | None, seconds: float):
        self.output = output
        self.status = status          # None: killed at the timeout
        self.seconds = seconds
        summary = dict(SUMMARY_RE.findall(output))
        if summary:
            self.counts = {k: int(summary.get(k, 0)) for k in ("passed", "failed", "broken", "skipped")}
        else:
            lines = RESULT_RE.findall(output)
            self.counts = {"passed": lines.count("TPASS"), "failed": lines.count("TFAIL"),
                           "broken": lines.count("TBROK"), "skipped": lines.count("TCONF")}

    @property
    def verdict(self) -> str:
        if self.status is None:
            return "TIMEOUT"
        if self.status == 0:
            return "PASS"
        if self.status == TCONF:
            return "CONF"
        return "FAIL"

    def cell(self) -> str:
        c = self.counts
        status = "timeout" if self.status is None else f"exit {self.status}"
        return (f"{self.verdict} {c['passed']}p/{c['failed']}f/{c['broken']}b/{c['skipped']}c "
                f"({status})")


def run_one(argv: list[str], env: dict[str, str], cwd: str, timeout: float) -> Result:
    start = time.monotonic()
    try:
        done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, start_new_session=True)
        output, status = done.stdout, done.returncode
        if status < 0:                 # killed by a signal: as a shell shows it
            status = 128 - status
    except subprocess.TimeoutExpired as e:
        output, status = e.stdout or b"", None
    return Result(output.decode(errors="replace"), status, time.monotonic() - start)


def kvmsentry_argv(args: argparse.Namespace) -> list[str]:
    if args.kvmsentry:
        return shlex.split(args.kvmsentry)
    venv = os.path.join(PROJECT, ".venv", "bin", "kvmsentry")
    return [venv] if os.access(venv, os.X_OK) else [sys.executable, "-m", "kvmsentry"]


def run(args: argparse.Namespace) -> int:
    src = os.path.abspath(args.src)
    families = args.family or list(FAMILIES)
    tests = tests_of(src, families)
    if args.test:
        tests = [t for t in tests if t[1] in args.test]
    if not tests:
        print("no built tests found: run `tools/ltp.py build SRC` first", file=sys.stderr)
        return 2
    os.makedirs(args.log_dir, exist_ok=True)
    sentry = kvmsentry_argv(args)
    env_base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LTPROOT": src, "LANG": "C"}
    if args.timeout_mul:
        env_base["LTP_TIMEOUT_MUL"] = args.timeout_mul

    rows = []
    for family, name, argv in tests:
        cwd = syscalls_dir(src, family)
        env = dict(env_base, PATH=cwd + ":" + env_base["PATH"])
        tmp = tempfile.mkdtemp(prefix=f"ltp-{name}-", dir=args.native_tmpdir)
        os.chmod(tmp, 0o1777)   # as /tmp: old-API tests make their dir after setuid(nobody)
        try:
            native = None
            if not args.no_native:
                native = run_one(argv, dict(env, TMPDIR=tmp), cwd, args.timeout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        shell = " ".join(shlex.quote(a) for a in argv) + "; exit $?"
        boot = [*sentry, "boot", "--cwd", cwd, "--timeout", str(args.timeout)]
        if args.strace:
            boot.append("--strace")
        for key, value in dict(env, TMPDIR="/tmp").items():
            boot += ["--env", f"{key}={value}"]
        guest = run_one([*boot, BUSYBOX, "sh", "-c", shell], os.environ.copy(), cwd, args.timeout + 30)
        for side, result in (("native", native), ("kvmsentry", guest)):
            if result is not None:
                with open(os.path.join(args.log_dir, f"{name}.{side}.log"), "w") as f:
                    f.write(result.output)
        rows.append((family, name, native, guest))
        if not args.markdown:
            print(f"{name:14} {native.cell() if native else '-':34} {guest.cell()}", flush=True)

    print_table(rows, families, args.markdown)
    return 0


def print_table(rows, families: list[str], markdown: bool) -> None:
    """The per-test table (Markdown only) and the per-family totals."""
    if markdown:
        print("| test | native | kvmsentry |")
        print("|---|---|---|")
        for _, name, native, guest in rows:
            print(f"| {name} | {native.cell() if native else '-'} | {guest.cell()} |")
        print()
    header = ("family", "tests", "native PASS", "kvmsentry PASS", "native CONF", "kvmsentry CONF",
              "native TPASS", "kvmsentry TPASS")
    table = []
    total = [0] * (len(header) - 1)
    for family in families:
        mine = [r for r in rows if r[0] == family]
        if not mine:
            continue
        line = [len(mine),
                sum(1 for r in mine if r[2] and r[2].verdict == "PASS"),
                sum(1 for r in mine if r[3].verdict == "PASS"),
                sum(1 for r in mine if r[2] and r[2].verdict == "CONF"),
                sum(1 for r in mine if r[3].verdict == "CONF"),
                sum(r[2].counts["passed"] for r in mine if r[2]),
                sum(r[3].counts["passed"] for r in mine)]
        total = [a + b for a, b in zip(total, line)]
        table.append([family, *line])
    table.append(["total", *total])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in table:
            print("| " + " | ".join(str(x) for x in line) + " |")
    else:
        print()
        print("  ".join(f"{h:>15}" for h in header))
        for line in table:
            print("  ".join(f"{str(x):>15}" for x in line))
    failing = [(n, g) for _, n, nat, g in rows if g.verdict not in ("PASS", "CONF")
               or (nat and nat.verdict != g.verdict)]
    if failing:
        print()
        print("differ from native or fail under kvmsentry: "
              + ", ".join(f"{n} ({g.verdict})" for n, g in failing))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="configure LTP statically and build libltp and the families")
    b.add_argument("src", help="an LTP source tree (outside the project)")
    b.add_argument("--family", action="append", help="a syscall family (repeatable; default: all 15)")
    b.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    r = sub.add_parser("run", help="run each test natively and under kvmsentry; print the table")
    r.add_argument("src")
    r.add_argument("--family", action="append")
    r.add_argument("--test", action="append", help="only this test (repeatable), e.g. open01")
    r.add_argument("--timeout", type=float, default=120, help="seconds per test and side (default 120)")
    r.add_argument("--timeout-mul", help="LTP_TIMEOUT_MUL for both sides")
    r.add_argument("--native-tmpdir", default="/dev/shm" if os.path.isdir("/dev/shm") else "/var/tmp",
                   help="where the native runs' TMPDIRs are made (default /dev/shm)")
    r.add_argument("--kvmsentry", help="the kvmsentry command (default: the project's .venv)")
    r.add_argument("--strace", action="store_true", help="boot with --strace (into the logs)")
    r.add_argument("--no-native", action="store_true", help="skip the native runs")
    r.add_argument("--markdown", action="store_true", help="Markdown tables")
    r.add_argument("--log-dir", default="/var/tmp/ltp-logs")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(os.path.abspath(args.src), args.family or list(FAMILIES), args.jobs)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
