"""The exit-free read(2) of cached regular files (kvmsentry/kernel/fastread.py).

Linux is the oracle for every answer and offset (tests/guests/fast_read.c,
busybox tools over host files and over files the guest wrote in its
tmpfs); the exit counts come from ``--profile-json``. No time is asserted.
"""

import json
import random

import pytest

pytestmark = pytest.mark.requires_kvm


def _data_file(tmp_path, size, name="data.bin", seed=6):
    path = tmp_path / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def test_fast_read_matches_linux(guests, run_both, assert_same, tmp_path):
    # 9 MiB: four whole 2 MiB blocks, so the blocks two behind a sequential
    # reader are reused for the ones ahead, and read again on the next pass.
    size = (9 << 20) + 4321
    path = _data_file(tmp_path, size)
    native, sentry = run_both([guests["fast_read"], str(path)])
    assert native.returncode == 0, native.stderr
    assert b"whole file 3 times: %d bytes" % (3 * size) in native.stdout
    assert b"exec child status 0" in native.stdout
    assert_same(native, sentry)


@pytest.mark.parametrize("options", [["--syscall-path=ring"], ["--strace"]])
def test_fast_read_matches_linux_with_other_paths(guests, run_native, run_sentry, assert_same,
                                                   tmp_path, options):
    # The ring path (read of a served fd still goes to the trampoline, other
    # calls to the ring) and --strace (nothing served: every read exits).
    path = _data_file(tmp_path, (3 << 20) + 99)
    native = run_native([guests["fast_read"], str(path)])
    sentry = run_sentry([guests["fast_read"], str(path)], options=options)
    assert sentry.returncode == native.returncode == 0, sentry.stderr
    assert sentry.stdout == native.stdout


@pytest.mark.parametrize("script", [
    "{bb} sha256sum {f}; {bb} md5sum {f}",
    "{bb} cat {f} | {bb} md5sum",
    "{bb} head -c 10000 {f} | {bb} md5sum; {bb} tail -c 7777 {f} | {bb} md5sum",
    "{bb} dd if={f} bs=4096 skip=3 count=5 2>/dev/null | {bb} md5sum",
    "{bb} dd if={f} bs=1000 count=9 2>/dev/null | {bb} md5sum; {bb} tail -n 2 {f} | {bb} md5sum",
])
def test_busybox_reads_host_files(busybox, run_both, assert_same, tmp_path, script):
    path = _data_file(tmp_path, (9 << 20) + 99)
    native, sentry = run_both([busybox, "sh", "-c", script.format(bb=busybox, f=path)])
    assert native.returncode == 0, native.stderr
    assert_same(native, sentry)


def test_busybox_reads_tmpfs_files_written_by_the_guest(busybox, run_both, assert_same, tmp_path):
    # The guest's /tmp is its own tmpfs; natively it is the host's /tmp.
    path = _data_file(tmp_path, 300000)
    target = f"/tmp/kvmsentry-fast-read-{tmp_path.name}"
    script = (f"{busybox} head -c 200000 {path} > {target}; {busybox} sha256sum < {target}; "
              f"{busybox} cat {path} >> {target}; {busybox} md5sum < {target}; "
              f"{busybox} truncate -s 1234 {target}; {busybox} md5sum < {target}; "
              f"{busybox} dd if={target} bs=100 skip=2 count=3 2>/dev/null | {busybox} md5sum; "
              f"rm -f {target}")
    native, sentry = run_both([busybox, "sh", "-c", script])
    assert native.returncode == 0, native.stderr
    assert_same(native, sentry)


def _profile(run_sentry, tmp_path, argv, options=()):
    out = tmp_path / "profile.json"
    done = run_sentry(argv, options=["--profile-json", str(out), *options])
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done, json.loads(out.read_text())


def test_sha256sum_reads_take_no_exits(busybox, run_sentry, tmp_path):
    # 8 MiB in 4 KiB reads: 2,049 reads. The first exits, and a few that a
    # kick stops in the trampoline; a fault on a window block not mapped
    # yet maps it and resumes the trampoline (one exit per 2 MiB, a fault).
    path = _data_file(tmp_path, 8 << 20)
    done, data = _profile(run_sentry, tmp_path, [busybox, "sha256sum", str(path)])
    assert data["fast_reads"] >= 1900, data
    assert data["syscalls"].get("read", 0) < 150, data
    assert data["exits"] < 400, data


def test_strace_sees_every_read(busybox, run_sentry, tmp_path):
    path = _data_file(tmp_path, 1 << 20)
    done = run_sentry([busybox, "sha256sum", str(path)], options=["--strace"])
    assert done.returncode == 0
    lines = done.stderr.decode(errors="replace").splitlines()
    assert sum(1 for line in lines if "] read(3," in line) >= 257
