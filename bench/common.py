"""Helpers shared by the benchmark scripts: running, parsing, runsc, tables."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys


def numbers(output: str) -> dict[str, float]:
    """The ``name value`` lines a benchmark guest prints."""
    return {k: float(v) for k, v in re.findall(r"^(\w+) ([\d.]+)$", output, re.M)}


def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess | None:
    """Run ``argv``; None when it did not finish within ``timeout`` seconds."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def runsc_argv() -> list[str] | None:
    """gVisor's ``runsc do`` (ptrace platform) when installed and working, else None."""
    runsc = shutil.which("runsc")
    if not runsc or os.geteuid() != 0:
        return None
    probe = run([runsc, "--network=none", "--platform=ptrace", "do", "/bin/true"], timeout=30)
    if probe is None or probe.returncode != 0:
        return None
    return [runsc, "--network=none", "--platform=ptrace", "do"]


def kvmsentry_argv() -> list[str]:
    """``python -m kvmsentry boot``, its bytecode compiled first as an installed package has it."""
    import compileall

    import kvmsentry as package
    compileall.compile_dir(os.path.dirname(package.__file__), quiet=1)
    return [sys.executable, "-m", "kvmsentry", "boot"]


def median(values: list[float]) -> float:
    return statistics.median(values)

