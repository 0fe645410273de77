"""fork(2) over every kind of private and shared page, in several rounds
(tests/guests/fork_cow.c), native vs kvmsentry.

The sentry copies at fork the private pages the parent wrote since its
previous fork instead of sharing them copy-on-write (mm.FORK_COPY_PAGES),
and maps at execve the pages earlier runs of the same program touched
(mm._WORKING_SETS): what each process sees must stay Linux's.
"""

import pytest

pytestmark = pytest.mark.requires_kvm


def test_fork_cow(guests, run_both, assert_same, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    native, sentry = run_both([guests["fork_cow"], scratch])
    out = native.stdout.decode()
    assert native.returncode == 0, out
    assert "round 3 child: exit 0" in out and "exec wrote: data=6 big_bss=5" in out, out
    # stderr: kvmsentry reports the DONTFORK children's SIGSEGV there.
    assert_same(native, sentry, stderr=False)


def test_fork_cow_runs_again_alike(guests, run_sentry, tmp_path):
    """A second run in one sandbox maps the first's working set at exec."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    program = guests["fork_cow"]
    script = f"{program} {scratch} && {program} {scratch}"
    sentry = run_sentry(["/bin/busybox", "sh", "-c", script])
    out = sentry.stdout.decode()
    assert sentry.returncode == 0, out
    first, second = out[:len(out) // 2], out[len(out) // 2:]
    assert first == second
