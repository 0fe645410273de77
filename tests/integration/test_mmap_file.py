"""File-backed mmap (tests/guests/mmap_file.c), native vs kvmsentry.

MAP_PRIVATE copy-on-write from the page cache, MAP_SHARED coherence with
read/write/ftruncate and across fork, SIGBUS past the end of a file,
msync, madvise, mremap of a file mapping, /proc/self/maps lines (built by
the guest from its own fstat, so the device and inode numbers may differ
between the runs but the format and offsets may not) and mmap's errnos.
The scratch files live in the test's directory (the overlay's in-memory
copies under kvmsentry) and, under kvmsentry only, in the guest's tmpfs.
"""

import subprocess

import pytest

pytestmark = pytest.mark.requires_kvm

CHECKS = ["private", "shared", "truncate", "madvise", "mremap", "maps", "errnos", "seals"]
PAGE = 4096


def _host_file(tmp_path):
    path = tmp_path / "host.bin"
    path.write_bytes(bytes((i * 7 + 3) & 0xFF for i in range(5 * PAGE)))
    path.chmod(0o444)
    return path


def test_mmap_file(guests, run_both, assert_same, tmp_path):
    host = _host_file(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    native, sentry = run_both([guests["mmap_file"], host, scratch])
    expected = "".join(f"{name} ok\n" for name in CHECKS) + "ok\n"
    assert native.stdout.decode() == expected, native.stdout.decode(errors="replace")
    # stderr: kvmsentry reports the DONTFORK child's SIGSEGV there.
    assert_same(native, sentry, stderr=False)


def test_mmap_file_tmpfs(guests, run_sentry, tmp_path):
    host = _host_file(tmp_path)
    sentry = run_sentry([guests["mmap_file"], host, "/tmp"])
    expected = "".join(f"{name} ok\n" for name in CHECKS) + "ok\n"
    assert sentry.stdout.decode() == expected, sentry.stderr.decode(errors="replace")[-3000:]
    assert sentry.returncode == 0


def test_mmap_shared_host_file_is_written_back(guests, run_sentry, tmp_path):
    """MAP_SHARED of a file beneath a rw bind mount reaches the host file."""
    native_file = tmp_path / "native.dat"
    native_file.write_bytes(b"a" * 3 * PAGE)
    data = tmp_path / "data"
    data.mkdir()
    sentry_file = data / "f.dat"
    sentry_file.write_bytes(b"a" * 3 * PAGE)
    guest = guests["mmap_hostrw"]
    native = subprocess.run([guest, native_file], stdout=subprocess.PIPE, timeout=60)
    sentry = run_sentry([guest, "/mnt/data/f.dat"], options=["--mount", f"{data}:/mnt/data:rw"])
    assert sentry.stdout == native.stdout == b"pread after msync: synced, other mapping: synced\ndone\n"
    assert sentry.returncode == native.returncode == 0
    want = native_file.read_bytes()
    assert want[4097:4103] == b"synced" and want[8192:8200] == b"unmapped" and want[100:107] == b"at-exit"
    assert sentry_file.read_bytes() == want
