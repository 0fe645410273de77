"""Runs the workloads on every platform, interleaved, and collects the samples.

One bench run:
1. prepares the selected workloads in a temporary directory (compiles the
   C guests, writes the input files);
2. finds the platforms: native; kvmsentry (``python -m kvmsentry boot``,
   its bytecode compiled first as an installed package has it); gVisor's
   ``runsc --network=none --platform=P do`` for P in ptrace, systrap, kvm.
   Each is probed with ``busybox true`` within ``--probe-timeout`` seconds
   and is reported as ``ok``, ``absent``, ``fails`` or ``hangs``; only the
   ``ok`` ones run the workloads;
3. measures the raw C exit round trip (guests/raw_exit.c), the floor of an
   exiting syscall on this machine, for the predicted overheads, and the
   raw C ring round trip (guests/raw_ring.c), the floor of the ring path
   (kvmsentry-ring: ``boot --syscall-path=ring``);
4. runs every workload on every platform, ``-n`` rounds, interleaved
   (round 1: A on native, kvmsentry, runsc; B on ...; round 2: ...), so
   that machine noise hits all alike; a run that times out is not
   repeated;
5. runs each workload once more under ``kvmsentry boot --profile`` (not
   timed) for the exits by kind.

The samples go into a plain dict (see :func:`run_bench`); ``report``
turns it into medians, ratios, tables, JSON and the chart.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform as host_platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import kvmsentry
from kvmsentry.bench import PLATFORM_NAMES
from kvmsentry.bench.report import parse_figures
from kvmsentry.bench.workloads import BUSYBOX, PrepareError, Setup, Workload

GUEST_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
RAW_EXIT_ITERATIONS = 20000
RAW_RING_ITERATIONS = 20000


@dataclasses.dataclass
class Platform:
    """One way of running a program: ``prefix + argv``."""

    name: str
    prefix: list[str] | None          # None: not usable here
    status: str = "ok"                # ok | absent | fails | hangs
    detail: str = ""
    env: dict[str, str] | None = None


@dataclasses.dataclass
class RunResult:
    wall_s: float
    cpu_s: float                      # user + system of the reaped children
    returncode: int | None            # None: timed out (killed)
    stdout: str
    stderr: str



def _scratch_dir() -> str:
    """A host directory outside /tmp for the workloads' files (/var/tmp when it exists)."""
    return "/var/tmp" if os.path.isdir("/var/tmp") else os.path.expanduser("~")

def run_once(argv: list[str], *, timeout: float, env: dict | None = None,
             cwd: str | None = None) -> RunResult:
    """Run ``argv`` to completion, or kill its process group after ``timeout`` s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        returncode: int | None = proc.returncode
    except KeyboardInterrupt:  # Ctrl-C: the run is in its own session, end it too
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a grandchild outside the group holds the pipes
            proc.kill()
            stdout, stderr = b"", b""
        returncode = None
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return RunResult(wall, cpu, returncode, stdout.decode(errors="replace"),
                     stderr.decode(errors="replace"))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def kvmsentry_prefix() -> tuple[list[str], dict[str, str]]:
    """``python -m kvmsentry boot --env ...`` and the environment to start it with.

    Compiles the package's bytecode first (an editable tree under
    PYTHONDONTWRITEBYTECODE=1 would recompile every module at every start,
    ~50 ms of each coldstart), and puts the package on PYTHONPATH so the
    runs find this very kvmsentry from any working directory.
    """
    import compileall

    package_dir = os.path.dirname(os.path.abspath(kvmsentry.__file__))
    compileall.compile_dir(package_dir, quiet=1)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    parent = os.path.dirname(package_dir)
    paths = [parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    prefix = [sys.executable, "-m", "kvmsentry", "boot"]
    for key, value in GUEST_ENV.items():
        prefix += ["--env", f"{key}={value}"]
    return prefix, env


def find_platforms(names: list[str], probe_timeout: float, cwd: str) -> list[Platform]:
    """The platforms ``names`` (in PLATFORM_NAMES order), each probed with ``busybox true``."""
    found = []
    for name in PLATFORM_NAMES:
        if name not in names:
            continue
        if name == "native":
            found.append(Platform(name, [], env=GUEST_ENV))
            continue
        if name in ("kvmsentry", "kvmsentry-ring"):
            if not os.path.exists("/dev/kvm"):
                found.append(Platform(name, None, "absent", "/dev/kvm does not exist"))
                continue
            prefix, env = kvmsentry_prefix()
            if name == "kvmsentry-ring":
                prefix = prefix + ["--syscall-path=ring"]
            candidate = Platform(name, prefix, env=env)
        else:
            runsc = shutil.which("runsc")
            if runsc is None:
                found.append(Platform(name, None, "absent", "runsc is not installed"))
                continue
            if os.geteuid() != 0:
                found.append(Platform(name, None, "absent", "runsc do needs root"))
                continue
            candidate = Platform(name, [runsc, "--network=none", f"--platform={name.split('-', 1)[1]}", "do"],
                                 env=GUEST_ENV)
        probe = run_once(candidate.prefix + [BUSYBOX, "true"], timeout=probe_timeout,
                         env=candidate.env, cwd=cwd)
        if probe.returncode is None:
            candidate.prefix, candidate.status = None, "hangs"
            candidate.detail = f"busybox true did not finish in {probe_timeout:g} s"
        elif probe.returncode != 0:
            candidate.prefix, candidate.status = None, "fails"
            candidate.detail = f"status {probe.returncode}: {_last_line(probe.stderr)}"
        found.append(candidate)
    return found


def measure_raw_exit(setup: Setup, repeats: int = 3, *, guest: str = "raw_exit",
                     figure: str = "ns_per_exit", iterations: int = RAW_EXIT_ITERATIONS,
                     extra: tuple[str, ...] = ()) -> tuple[float | None, str]:
    """ns per exit of guests/raw_exit.c (median of ``repeats``), or (None, why not).

    With ``guest="raw_ring"``, ``figure="ns_per_ring"`` the same for the
    ring path's floor (guests/raw_ring.c, see :func:`measure_raw_ring`).
    """
    try:
        binary = setup.guest(guest, static=False, extra=extra)
    except PrepareError as e:
        return None, str(e)
    values = []
    for _ in range(repeats):
        result = run_once([binary, str(iterations)], timeout=120)
        figures = parse_figures(result.stdout)
        if result.returncode != 0 or figure not in figures:
            return None, f"{guest} failed: {_last_line(result.stderr) or result.returncode}"
        values.append(figures[figure])
    return statistics.median(values), ""


def measure_raw_ring(setup: Setup, repeats: int = 3) -> tuple[float | None, str]:
    """ns per call of guests/raw_ring.c (median of ``repeats``), or (None, why not)."""
    return measure_raw_exit(setup, repeats, guest="raw_ring", figure="ns_per_ring",
                            iterations=RAW_RING_ITERATIONS, extra=("-pthread",))


class _NoProgress:
    """Stands in for rich's Progress when stderr is not a terminal."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, description, total):
        return 0

    def update(self, task, description=None, advance=0, total=None):
        if description:
            print(f"kvmsentry bench: {description}", file=self.stream, flush=True)


def _progress(console):
    if console is None or not console.is_terminal:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def run_bench(workloads: list[Workload], platform_names: list[str], *, rounds: int, quick: bool,
              profile: bool = True, probe_timeout: float = 20.0, run_timeout: float | None = None,
              console=None) -> dict:
    """Run the bench; returns the samples as plain data (JSON-ready).

    Shape: ``{"machine", "date", "quick", "rounds", "raw_exit_ns",
    "raw_exit_note", "platforms": {name: {"status", "detail"}},
    "workloads": {name: {"description", "size", "argv", "note",
    "runs": {platform: {"wall_s": [..], "cpu_s": [..], "figures": {k: [..]},
    "failures": [..]}}, "profile": {...} | None}}}``.
    """
    if run_timeout is None:
        run_timeout = 120.0 if quick else 900.0
    results: dict = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "quick": quick,
        "rounds": rounds,
        "raw_exit_ns": None,
        "raw_exit_note": "",
        "raw_ring_ns": None,
        "raw_ring_note": "",
        "platforms": {},
        "workloads": {},
    }
    # Not under /tmp: the guest's /tmp is a tmpfs of its own and would hide the inputs.
    with tempfile.TemporaryDirectory(prefix="kvmsentry-bench-", dir=_scratch_dir()) as tmp, \
            _progress(console) as progress:
        setup = Setup(tmp, quick)
        bar = progress.add_task("preparing", total=None)
        prepared = {}
        for w in workloads:
            progress.update(bar, description=f"preparing {w.name}")
            entry = results["workloads"][w.name] = {
                "description": w.description, "size": "", "argv": [], "note": "", "runs": {}, "profile": None}
            try:
                p = prepared[w.name] = w.prepare(setup)
            except PrepareError as e:
                entry["note"] = f"not run: {e}"
                continue
            entry["size"], entry["argv"] = p.size, p.argv
        progress.update(bar, description="probing the platforms")
        platforms = find_platforms(platform_names, probe_timeout, tmp)
        for p in platforms:
            results["platforms"][p.name] = {"status": p.status, "detail": p.detail,
                                            "command": " ".join(p.prefix or [])}
        usable = [p for p in platforms if p.prefix is not None]
        kvm_ok = any(p.name == "kvmsentry" for p in usable)
        if kvm_ok:
            progress.update(bar, description="measuring the raw C exit round trip")
            results["raw_exit_ns"], results["raw_exit_note"] = measure_raw_exit(setup)
        if any(p.name == "kvmsentry-ring" for p in usable):
            progress.update(bar, description="measuring the raw C ring round trip")
            results["raw_ring_ns"], results["raw_ring_note"] = measure_raw_ring(setup)
        total = rounds * len(prepared) * len(usable) + (len(prepared) if profile and kvm_ok else 0)
        progress.update(bar, description="running", total=total)
        hung: set[tuple[str, str]] = set()
        for r in range(rounds):
            for name, p in prepared.items():
                for plat in usable:
                    progress.update(bar, description=f"round {r + 1}/{rounds}: {name} on {plat.name}")
                    runs = results["workloads"][name]["runs"].setdefault(
                        plat.name, {"wall_s": [], "cpu_s": [], "figures": {}, "failures": []})
                    if (name, plat.name) in hung:
                        progress.update(bar, advance=1)
                        continue
                    result = run_once(plat.prefix + p.argv, timeout=run_timeout, env=plat.env, cwd=tmp)
                    failure = _failure(result, p, run_timeout)
                    if failure is None:
                        runs["wall_s"].append(result.wall_s)
                        runs["cpu_s"].append(result.cpu_s)
                        figures = parse_figures(result.stdout) if p.figures else {}
                        for key, value in figures.items():
                            runs["figures"].setdefault(key, []).append(value)
                    else:
                        runs["failures"].append(failure)
                        if result.returncode is None:
                            hung.add((name, plat.name))
                    progress.update(bar, advance=1)
        if profile and kvm_ok:
            plat = next(p for p in usable if p.name == "kvmsentry")
            for name, p in prepared.items():
                progress.update(bar, description=f"profiling {name} under kvmsentry")
                results["workloads"][name]["profile"] = _profile_run(plat, p.argv, tmp, run_timeout)
                progress.update(bar, advance=1)
    return results


def _failure(result: RunResult, prepared, timeout: float) -> str | None:
    if result.returncode is None:
        return f"timed out after {timeout:g} s"
    if result.returncode != 0:
        return f"status {result.returncode}: {_last_line(result.stderr)}"
    if prepared.check is not None:
        return prepared.check(result.stdout)
    return None


def _profile_run(plat: Platform, argv: list[str], tmp: str, timeout: float) -> dict | None:
    path = os.path.join(tmp, "profile.json")
    if os.path.exists(path):
        os.unlink(path)
    prefix = plat.prefix[:]
    boot = prefix.index("boot") + 1
    prefix[boot:boot] = ["--profile-json", path]
    result = run_once(prefix + argv, timeout=timeout, env=plat.env, cwd=tmp)
    if result.returncode != 0 or not os.path.exists(path):
        return {"error": _failure(result, None, timeout) or "no profile written"}
    with open(path) as f:
        return json.load(f)


def machine() -> dict:
    """What the figures were measured on (ratios travel; absolute times do not)."""
    info = {"node": host_platform.node(), "kernel": host_platform.release(),
            "cpus": os.cpu_count(), "python": host_platform.python_version(), "kvm": "absent"}
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / (1 << 20))
    except (OSError, ValueError, IndexError):
        pass
    if os.path.exists("/dev/kvm"):
        info["kvm"] = "pvm" if os.path.isdir("/sys/module/kvm_pvm") else "kvm"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def main(args) -> int:
    """``kvmsentry bench``: run, then print the table and write --json/--plot.

    ``args`` is the argparse namespace of the ``bench`` subcommand.
    Returns 0, or 2 when the arguments are unusable or a needed library
    is missing.
    """
    from kvmsentry.bench import report
    from kvmsentry.bench.workloads import select

    try:
        workloads = select(args.workload)
    except KeyError as e:
        print(f"kvmsentry bench: unknown workload {e.args[0]!r}", file=sys.stderr)
        return 2
    try:
        from rich.console import Console
    except ImportError:
        Console = None
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (fail before a long run, not after it)
        except ImportError:
            print("kvmsentry bench: --plot needs matplotlib: pip install 'kvmsentry[bench]'",
                  file=sys.stderr)
            return 2
    if Console is None and not args.markdown:
        print("kvmsentry bench: the terminal table needs rich: pip install 'kvmsentry[bench]' "
              "(or use --markdown)", file=sys.stderr)
        return 2
    platforms = args.platform or list(PLATFORM_NAMES)
    console = Console(stderr=True) if Console is not None else None
    results = run_bench(workloads, platforms, rounds=args.n, quick=args.quick,
                        profile=not args.no_profile, probe_timeout=args.probe_timeout,
                        run_timeout=args.timeout, console=console)
    summary = report.summarize(results)
    if args.markdown:
        print(report.markdown(results, summary), end="")
    else:
        out = Console()
        if not out.is_terminal:  # a file or a pipe: wide enough for the tax table
            out = Console(width=max(out.width, 180))
        report.print_rich(results, out, summary)
    if args.json:
        with open(args.json, "w") as f:
            f.write(report.to_json(results, summary))
    if args.plot:
        report.plot(results, args.plot, summary)
    return 0
