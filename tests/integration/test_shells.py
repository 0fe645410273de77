"""Shell scripts (tests/scripts/) run by Debian's static busybox sh and
bash-static, natively and under kvmsentry, compared: issue 4, acceptance
1 (busybox sh) and 2 (bash).

The scripts call external commands as ``/bin/busybox APPLET`` so that they
depend on nothing of the host but /bin/busybox, and write no files of
their own (busybox diff of two <( ) substitutions uses a temporary file in
/tmp, the guest's tmpfs under kvmsentry).
"""

from pathlib import Path

import shutil

import pytest

from conftest import BUSYBOX

pytestmark = pytest.mark.requires_kvm

SOURCE_SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    """The scripts, copied beside the test's temp files.

    The checkout may live under the host's /tmp, which the guest cannot
    see (its /tmp is a tmpfs of its own); pytest's temp dirs are elsewhere
    (tests/conftest.py).
    """
    target = tmp_path_factory.mktemp("scripts")
    for script in SOURCE_SCRIPTS.glob("*.sh"):
        shutil.copy(script, target / script.name)
    return target
BASH = "/bin/bash-static"

# script -> (native exit status, a line native stdout must contain):
# checks that the script tests what it says, before comparing.
BUSYBOX_SH = {
    "sh_pipelines.sh": (0, b"997 987 979 \n"),
    "sh_loops.sh": (0, b"read name=second value=two words\n"),
    "sh_trap.sh": (5, b"got USR1\nafter kill\n"),
    "sh_jobs.sh": (7, b"killed job status 143\n"),
    # busybox timeout execs the command in its own process and a forked
    # child kills it with SIGTERM when the time is up: 143, not coreutils' 124.
    "sh_xargs_timeout.sh": (0, b"timeout status 143\n"),
    "sh_set_e.sh": (13, b"before the failure\n"),
    "sh_exec.sh": (0, b"killed by KILL: 137\n"),
}

BASH_SCRIPTS = {
    "bash_functions_arrays.sh": (0, b"fib: 0 1 1 2 3 5 8 13 21 34 55 89 "),
    "bash_io.sh": (0, b"PIPESTATUS=0 3 0 $?=0\n"),
    "bash_jobs_traps.sh": (7, b"wait -n first: 22\nwait -n second: 21\n"),
}


@pytest.fixture
def bash(skip_or_fail):
    """Debian's bash-static (installed by `make deps`)."""
    if not Path(BASH).exists():
        skip_or_fail(f"{BASH} is missing (install Debian's bash-static)")
    return BASH


def _check(native, sentry, assert_same, expected):
    status, needle = expected
    assert native.returncode == status, native.stderr.decode(errors="replace")
    assert needle in native.stdout
    assert_same(native, sentry)


@pytest.mark.parametrize("script", sorted(BUSYBOX_SH))
def test_busybox_sh(busybox, run_both, assert_same, script, scripts):
    native, sentry = run_both([busybox, "sh", scripts / script])
    _check(native, sentry, assert_same, BUSYBOX_SH[script])


# Scripts expected to fail under kvmsentry, with the reason.
BASH_XFAIL = {}


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=BASH_XFAIL[s]))
        if s in BASH_XFAIL
        else s
        for s in sorted(BASH_SCRIPTS)
    ],
)
def test_bash(bash, busybox, run_both, assert_same, script, scripts):
    native, sentry = run_both([bash, scripts / script])
    _check(native, sentry, assert_same, BASH_SCRIPTS[script])


def test_busybox_sh_dash_c(busybox, run_both, assert_same):
    """`sh -c` with positional parameters and a pipeline."""
    native, sentry = run_both(
        [busybox, "sh", "-c", 'echo "$0 $#: $*" | /bin/busybox rev; exit 3', "name", "a", "b"]
    )
    assert native.returncode == 3
    assert native.stdout == b"b a :2 eman\n"
    assert_same(native, sentry)


def test_busybox_sh_stdin_script(busybox, run_both, assert_same):
    """A script read from stdin, with `read` consuming the same stdin."""
    script = b"read -r line\necho \"got: $line\"\nread -r line\necho \"then: $line\"\n"
    native, sentry = run_both([busybox, "sh", "-s"], input=script + b"")
    assert_same(native, sentry)


def test_bash_stdin_lines(bash, run_both, assert_same):
    """bash reading its script from a pipe on stdin."""
    script = b"for i in {1..3}; do echo \"line $i\"; done | while read -r l; do echo \"<$l>\"; done\n"
    native, sentry = run_both([bash, "-s"], input=script)
    assert native.stdout == b"<line 1>\n<line 2>\n<line 3>\n"
    assert_same(native, sentry)
