"""Integration harness: real programs, run natively and under kvmsentry.

Linux is the oracle (DESIGN.md): a test runs the same binary on the host
and under ``kvmsentry boot`` and compares exit status, stdout and stderr.

Fixtures:
- ``guests``: the C programs of tests/guests/ built with ``gcc -static -O2``
  and with ``musl-gcc -static -O2`` (the test runs once per toolchain),
  as ``{name: path}``. A missing compiler skips the test, or fails it
  when KVMSENTRY_REQUIRE_KVM=1.
- ``guest_builder``: ``guest_builder("gcc")`` returns the same mapping
  (or a string saying why that toolchain cannot build).
- ``run_both(argv, env=None, input=None, cwd=None)``: ``(native, sentry)``,
  two CompletedProcess.
- ``run_sentry(argv, env=None, input=None, cwd=None, options=())``: only
  the kvmsentry run, with extra ``boot`` options (e.g. ``["--strace"]``).
- ``assert_same(native, sentry)``: equal status, stdout and stderr.

Exit statuses are normalised as a shell reports them: a process killed by
signal N has status 128 + N (SIGSEGV: 139), whether it was killed or, like
kvmsentry, exited with that status.

The guest's environment is exactly ``env`` (default ``DEFAULT_ENV``): the
native run gets it as its whole environment, kvmsentry gets one
``--env K=V`` per entry, in the same order.

``KVMSENTRY_COMMAND`` (a shell-quoted command line) replaces the default
``python -m kvmsentry``, to run the suite against another build.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GUEST_SOURCES = Path(__file__).resolve().parent.parent / "guests"
GUEST_NAMES = sorted(p.stem for p in GUEST_SOURCES.glob("*.c"))

# toolchain name -> C compiler
TOOLCHAINS = {"gcc": "gcc", "musl": "musl-gcc"}
CFLAGS = ["-static", "-O2", "-Wall"]
LIBS = ["-lm"]

DEFAULT_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}

# A guard against a hung guest, in seconds; never a performance assertion.
RUN_TIMEOUT = 600


def sentry_command():
    """The command line that starts kvmsentry (without `boot`)."""
    override = os.environ.get("KVMSENTRY_COMMAND")
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "kvmsentry"]


def _status(returncode):
    """A shell's view of an exit status: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _run(cmd, env, input, cwd):
    if isinstance(input, str):
        input = input.encode()
    cp = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        timeout=RUN_TIMEOUT,
    )
    cp.returncode = _status(cp.returncode)
    return cp


def run_native(argv, env=None, input=None, cwd=None):
    """Run argv on the host with exactly the environment ``env``."""
    env = DEFAULT_ENV if env is None else env
    return _run(argv, dict(env), input, cwd)


def run_sentry(argv, env=None, input=None, cwd=None, options=()):
    """Run argv under ``kvmsentry boot``; the guest's environment is ``env``.

    kvmsentry itself (a Python process) keeps this process's environment.
    ``cwd`` is passed both as the host working directory and as ``--cwd``.
    """
    env = DEFAULT_ENV if env is None else env
    cmd = sentry_command() + ["boot", *options]
    for key, value in env.items():
        cmd += ["--env", f"{key}={value}"]
    if cwd is not None:
        cmd += ["--cwd", str(cwd)]
    cmd += [str(a) for a in argv]
    return _run(cmd, None, input, cwd)


def run_both(argv, env=None, input=None, cwd=None):
    """Run argv natively and under kvmsentry: returns (native, sentry)."""
    native = run_native(argv, env=env, input=input, cwd=cwd)
    sentry = run_sentry(argv, env=env, input=input, cwd=cwd)
    return native, sentry


def _tail(data, limit=3000):
    text = data.decode(errors="replace")
    return text if len(text) <= limit else "..." + text[-limit:]


def assert_same(native, sentry, stderr=True):
    """Assert kvmsentry behaved like Linux: status, stdout (and stderr)."""
    context = f"kvmsentry's stderr:\n{_tail(sentry.stderr)}"
    assert sentry.returncode == native.returncode, context
    if sentry.stdout != native.stdout:
        if len(native.stdout) + len(sentry.stdout) < 100_000:
            assert sentry.stdout.decode(errors="replace") == native.stdout.decode(
                errors="replace"
            ), context
        assert sentry.stdout == native.stdout, (
            f"stdout differs ({len(sentry.stdout)} bytes under kvmsentry, "
            f"{len(native.stdout)} natively)\n{context}"
        )
    if stderr:
        assert sentry.stderr.decode(errors="replace") == native.stderr.decode(
            errors="replace"
        )


def build_guests(toolchain, out_dir):
    """Compile every tests/guests/*.c with one toolchain into out_dir.

    Returns {name: path}, or a string with the reason the toolchain is
    unusable. A compiler error raises (with the compiler's output).
    """
    compiler = TOOLCHAINS[toolchain]
    if shutil.which(compiler) is None:
        hint = " (Debian package musl-tools)" if compiler == "musl-gcc" else ""
        return f"{compiler} is not installed{hint}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name in GUEST_NAMES:
        target = out_dir / f"{name}.{toolchain}"
        argv = [compiler, *CFLAGS, "-o", str(target), str(GUEST_SOURCES / f"{name}.c"), *LIBS]
        cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if cp.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{cp.stdout.decode(errors='replace')}")
        built[name] = target
    return built


@pytest.fixture(scope="session")
def guest_builder(tmp_path_factory):
    """guest_builder(toolchain) -> {name: path} or a reason string (cached)."""
    out_dir = tmp_path_factory.mktemp("guests")
    cache = {}

    def build(toolchain):
        if toolchain not in cache:
            cache[toolchain] = build_guests(toolchain, out_dir / toolchain)
        return cache[toolchain]

    return build


@pytest.fixture(params=sorted(TOOLCHAINS))
def toolchain(request):
    return request.param


@pytest.fixture
def guests(toolchain, guest_builder, skip_or_fail):
    """{name: path} of the guests built with this test's toolchain."""
    built = guest_builder(toolchain)
    if isinstance(built, str):
        skip_or_fail(built)
    return built


@pytest.fixture(scope="session", name="run_both")
def run_both_fixture():
    return run_both


@pytest.fixture(scope="session", name="run_native")
def run_native_fixture():
    return run_native


@pytest.fixture(scope="session", name="run_sentry")
def run_sentry_fixture():
    return run_sentry


@pytest.fixture(scope="session", name="assert_same")
def assert_same_fixture():
    return assert_same


BUSYBOX = "/bin/busybox"


def _is_static(path):
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        return not any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(f).iter_segments())


@pytest.fixture(scope="session")
def busybox_problem():
    """None if /bin/busybox is a static binary, else what is wrong."""
    try:
        if _is_static(BUSYBOX):
            return None
        return f"{BUSYBOX} is dynamically linked (install Debian's busybox-static)"
    except FileNotFoundError:
        return f"{BUSYBOX} is missing (install Debian's busybox-static)"


@pytest.fixture
def busybox(busybox_problem, skip_or_fail):
    """The path of Debian's static busybox (skips, or fails in CI, without it)."""
    if busybox_problem:
        skip_or_fail(busybox_problem)
    return BUSYBOX
