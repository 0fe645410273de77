"""Small C guests (tests/guests/), static glibc and static musl, compared
with native runs: issue 2, acceptance 1 and 3."""

import re

import pytest

pytestmark = pytest.mark.requires_kvm


def test_hello(guests, run_both, assert_same):
    native, sentry = run_both([guests["hello"]])
    assert native.stdout == b"hello, world\n"
    assert_same(native, sentry)


def test_args_and_env(guests, run_both, assert_same):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",
        "SPACES": "a b  c",
        "EMPTY": "",
        "EQUALS": "x=y=z",
        "UTF8": "h\u00e9llo w\u00f6rld",
    }
    args = ["one", "two words", "", "--flag=value", "\u00e9t\u00e9", "*", "$HOME"]
    native, sentry = run_both([guests["args"], *args], env=env)
    assert native.stdout.startswith(b"argc=8\n")
    assert b"envp[5]=UTF8=" in native.stdout
    assert_same(native, sentry)


def test_no_args_no_env(guests, run_both, assert_same):
    native, sentry = run_both([guests["args"]], env={})
    assert native.stdout.endswith(b"argc=1\n" + b"argv[0]=" + str(guests["args"]).encode() + b"\n")
    assert_same(native, sentry)


@pytest.mark.parametrize("status", [0, 1, 42, 255, 256])
def test_exit_code(guests, run_both, assert_same, status):
    native, sentry = run_both([guests["exit_code"], str(status)])
    assert native.returncode == status % 256
    assert_same(native, sentry)


def test_malloc_256mib_touched(guests, run_both, assert_same):
    native, sentry = run_both([guests["malloc_touch"]])
    assert native.returncode == 0
    assert native.stdout.startswith(b"pages=65536 ")
    assert_same(native, sentry)


def test_doubles(guests, run_both, assert_same):
    native, sentry = run_both([guests["doubles"]])
    assert b"sqrt(2)=1.4142135623730951\n" in native.stdout
    assert_same(native, sentry)


def test_memops_64mib(guests, run_both, assert_same):
    native, sentry = run_both([guests["memops"]])
    assert native.stdout.startswith(b"checksum=")
    assert_same(native, sentry)


def _assert_fault_report(sentry, signal_name, instruction_re):
    stderr = sentry.stderr.decode(errors="replace")
    assert signal_name in stderr, stderr
    assert re.search(instruction_re, stderr), f"no disassembled instruction in:\n{stderr}"
    assert "Traceback" not in stderr, stderr


def test_null_write_is_sigsegv(guests, run_both, assert_same):
    native, sentry = run_both([guests["nullwrite"]])
    assert native.returncode == 139
    assert_same(native, sentry, stderr=False)
    # The faulting store, e.g. "mov dword ptr [rax], 0x2a" (capstone).
    _assert_fault_report(sentry, "SIGSEGV", r"\bmov")


def test_ud2_is_sigill(guests, run_both, assert_same):
    native, sentry = run_both([guests["ud2"]])
    assert native.returncode == 132
    assert_same(native, sentry, stderr=False)
    _assert_fault_report(sentry, "SIGILL", r"\bud2\b")


def test_strace(guests, run_sentry, run_native):
    native = run_native([guests["hello"]])
    sentry = run_sentry([guests["hello"]], options=["--strace"])
    assert sentry.returncode == native.returncode == 0
    assert sentry.stdout == native.stdout
    stderr = sentry.stderr.decode(errors="replace")
    # One line per syscall: "[pid:tid] name(args) = result (elapsed)".
    assert re.search(r"^\[\d+:\d+\] writev?\(1, .* = 13\b", stderr, re.M), stderr
    assert re.search(r"^\[\d+:\d+\] exit_group\(0", stderr, re.M), stderr


def test_simd(guests, run_both, assert_same):
    """CPUID shows the host's SSE4.2/AVX/AVX2/AVX-512 and XCR0 enables their
    state, so SIMD code and libc's AVX2/AVX-512 routines run as natively."""
    native, sentry = run_both([guests["simd"]])
    assert_same(native, sentry)


def test_int3_is_sigtrap(guests, run_both, assert_same):
    native, sentry = run_both([guests["int3"]])
    assert native.returncode == 133
    assert_same(native, sentry, stderr=False)
    _assert_fault_report(sentry, "SIGTRAP", r"\bint3\b|\bmov\b|\bxor\b|\bret\b")


def test_division_by_zero_is_sigfpe(guests, run_both, assert_same):
    native, sentry = run_both([guests["divzero"]])
    assert native.returncode == 136
    assert_same(native, sentry, stderr=False)
    _assert_fault_report(sentry, "SIGFPE", r"\bidiv\b|\bdiv\b")


def test_vdso_clocks(guests, run_both, run_sentry, assert_same):
    """clock_gettime/gettimeofday/time come from the vDSO: right, and without a syscall."""
    native, sentry = run_both([guests["vdso_clock"]])
    assert native.stdout.count(b" 1\n") == 4
    assert_same(native, sentry)
    traced = run_sentry([guests["vdso_clock"]], options=["--strace"])
    lines = [line for line in traced.stderr.decode().splitlines() if "clock_gettime(" in line]
    assert len(lines) == 20, lines[:3]  # only the explicit syscall(SYS_clock_gettime) calls


def test_brk_edges(guests, run_both, assert_same):
    """brk(2): grow, fork, shrink, regrow zeroed; below the start, into a
    mapping and 32 TiB up (heuristic overcommit) leave the break alone."""
    native, sentry = run_both([guests["mm_brk_edges"]])
    assert_same(native, sentry)
    assert b"32 TiB unchanged 1\n" in native.stdout
