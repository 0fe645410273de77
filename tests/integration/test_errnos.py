"""File syscalls and their errnos (issue 3, acceptance 3).

The errno_files guest runs one area per test, natively in a fresh pytest
tmp directory and under kvmsentry in the guest's /tmp (its tmpfs), with
gcc and musl builds. It prints one line "call(args) = result [ERRNO]" per
case, with paths relative to its base directory and nothing that depends
on the file system type, so the two outputs must be identical.

EXDEV is checked against /proc and /dev, which are other mounts both
natively and in the sandbox (never the base directory against /tmp:
natively those may share a file system).

The cases where kvmsentry differed from Linux were split off into small
areas of their own (so one difference hides nothing else), marked
xfail(strict=True) with the differing lines (native first) as the reason.
"""

import pytest

pytestmark = pytest.mark.requires_kvm

# The broad areas: each call of issue 3's list with its errnos.
AREAS = ["open", "dirs", "rename", "links", "meta", "fds", "io"]

# area -> {toolchain or "*": the differing lines, native < and kvmsentry >}
KNOWN_DIFFERENCES = {
    "opath_link": {"musl": "musl's fchmod on an O_PATH fd of a symlink falls back to"
                           " chmod(/proc/self/fd/N): < fchmod(fd, 0600) = -1 EOPNOTSUPP"
                           " > fchmod(fd, 0600) = -1 EBADF"},
    "removed_cwd": {"*": "after rmdir of the cwd: < getcwd = -1 ENOENT > getcwd = 10;"
                         " < stat(\".\") = 0 (nlink 0) > stat(\".\") = -1 ENOENT;"
                         " < open(\".\", O_DIRECTORY) = fd, getdents64 = -1 ENOENT"
                         " > open(\".\", O_DIRECTORY) = -1 ENOENT"},
    "opath_readlink": {"*": "readlinkat(O_PATH|O_NOFOLLOW fd of a symlink, \"\"):"
                            " < = 1 (\"f\") > = -1 ENOENT"},
    "seals": {"*": "memfd seals unimplemented: < fcntl(fd, F_GET_SEALS) = 1 (no"
                   " MFD_ALLOW_SEALING) / 0 / 4 / 7 > = -1 EINVAL;"
                   " < F_ADD_SEALS = 0 or EPERM > = -1 EINVAL; so < write/ftruncate"
                   " after F_SEAL_GROW/SHRINK = -1 EPERM > succeed"},
    "holes": {"*": "no holes reported for a sparse file: < lseek(fd, 0, SEEK_HOLE) = 0"
                   " > = 1048579; < lseek(fd, 0, SEEK_DATA) = 1048576 > = 0;"
                   " after ftruncate to 3 MiB < lseek(fd, 2 << 20, SEEK_HOLE) = 2097152"
                   " > = 3145728"},
}


@pytest.mark.parametrize("area", AREAS + sorted(KNOWN_DIFFERENCES))
def test_errnos(guests, toolchain, run_native, run_sentry, assert_same, tmp_path,
                request, area):
    known = KNOWN_DIFFERENCES.get(area, {})
    reason = known.get(toolchain, known.get("*"))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    work = tmp_path / "work"
    work.mkdir()
    native = run_native([guests["errno_files"], work, area])
    sentry = run_sentry([guests["errno_files"], "/tmp", area])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert native.stdout.endswith(b"\ndone\n")
    assert_same(native, sentry)
