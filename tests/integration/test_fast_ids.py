"""The exit-free getpid family (guest/runtime.S vcpu_syscall_entry): exact answers, no exits.

Linux is the oracle for the answers (threads, fork, execve, reparenting,
signals arriving while only exit-free calls run); the exit counts come
from ``--profile-json``. No time is asserted.
"""

import json

import pytest

pytestmark = pytest.mark.requires_kvm


def test_fast_ids_match_linux(guests, run_both, assert_same):
    native, sentry = run_both([guests["fast_ids"]])
    assert native.stdout == (
        b"libc agrees: 1 1 1\n"
        b"ids: uid 0 euid 0 gid 0 egid 0\n"
        b"threads: same pid 1, distinct tids 1, tid != pid 1\n"
        b"signals during getpid loop: 100 ticks, wrong answers 0\n"
        b"child: new pid 1, ppid is parent 1, tid == pid 1\n"
        b"after execve: same pid 1, tid == pid 1\n"
        b"child status 0\n"
        b"orphan: parent changed 1\n"), native.stderr
    assert_same(native, sentry)


def _profile(run_sentry, tmp_path, argv, options=()):
    out = tmp_path / "profile.json"
    done = run_sentry(argv, options=["--profile-json", str(out), *options])
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(out.read_text())


def test_getpid_family_takes_no_exit(guests, run_sentry, tmp_path):
    # fast_ids makes well over 300,000 calls of the family. A few exit all
    # the same: a call that a kick (a timer signal, a TLB shootdown while
    # threads start and end) stops in the runtime's stub is finished by
    # the exit path; on a loaded machine there are more of those.
    data = _profile(run_sentry, tmp_path, [guests["fast_ids"]])
    names = ("getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid")
    assert sum(data["syscalls"].get(name, 0) for name in names) < 5000, data
    assert data["exits"] < 30000, data


def test_strace_still_sees_every_getpid(guests, run_sentry):
    done = run_sentry([guests["fast_ids"]], options=["--strace"])
    assert done.returncode == 0
    lines = done.stderr.decode(errors="replace").splitlines()
    assert sum(1 for line in lines if "getpid()" in line) > 20000
