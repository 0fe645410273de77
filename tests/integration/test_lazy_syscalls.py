"""Syscalls whose handler modules are imported on their first call
(kvmsentry/kernel/syscalls/table.py MODULES): they answer as Linux does,
--strace names them with their own arguments, and a call without a
handler is still reported by name (tests/guests/lazy_syscalls.c)."""

import pytest

from conftest import DEFAULT_ENV

pytestmark = pytest.mark.requires_kvm


def _lines(out: bytes) -> list[str]:
    # getpriority's answer is 20 - the nice value, which the host may have changed
    return [line for line in out.decode().splitlines() if not line.startswith("getpriority")]


def test_lazily_imported_handlers_answer_as_linux(guests, run_both):
    native, sentry = run_both([guests["lazy_syscalls"]])
    assert native.returncode == sentry.returncode == 0, sentry.stderr
    assert _lines(sentry.stdout) == _lines(native.stdout)
    assert "sched_get_priority_max = 99 errno 0" in _lines(sentry.stdout)
    assert b"getpriority = 20 errno 0" in sentry.stdout  # the sandbox's nice value is 0
    assert b"kvmsentry: unsupported syscall unknown (1000)" in sentry.stderr


def test_a_syscall_without_handler_is_named(guests, run_sentry):
    sentry = run_sentry([guests["lazy_syscalls"]], env={**DEFAULT_ENV, "LAZY_VHANGUP": "1"})
    assert sentry.returncode == 0, sentry.stderr
    assert sentry.stdout.decode().splitlines()[-1] == "vhangup = -1 errno 38"  # ENOSYS
    assert b"kvmsentry: unsupported syscall vhangup (153)" in sentry.stderr


def test_strace_names_lazily_loaded_calls(guests, run_sentry):
    """The first call of a module's syscall is traced after its handler is
    in place: its name and its own number of arguments."""
    sentry = run_sentry([guests["lazy_syscalls"]], options=["--strace"])
    assert sentry.returncode == 0, sentry.stderr
    err = sentry.stderr.decode()
    assert "] getpriority(0, 0) = 20 (" in err
    assert "] sched_get_priority_max(1) = 99 (" in err
    assert "] setresuid(0xffffffff, 0xffffffff, 0xffffffff) = 0 (" in err
    assert "] syscall_1000(" in err
