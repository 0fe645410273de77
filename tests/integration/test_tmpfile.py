"""O_TMPFILE: unnamed files on tmpfs and the overlay, named by linkat (issue 3).

The tmpfile guest opens O_TMPFILE files in an empty directory and links
them with AT_EMPTY_PATH and through /proc/self/fd/N (O_EXCL forbids it),
natively in a pytest directory and under kvmsentry in /tmp, /dev/shm
(tmpfs) and an empty host directory (the overlay), same output.
"""

import pytest

pytestmark = pytest.mark.requires_kvm


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm", "overlay"])
def test_tmpfile(guests, run_native, run_sentry, assert_same, tmp_path, where):
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    native = run_native([guests["tmpfile"], native_dir, "/proc"])
    if where == "overlay":
        where = tmp_path / "host"
        where.mkdir()
    sentry = run_sentry([guests["tmpfile"], where, "/proc"])
    assert native.returncode == 0 and native.stdout.endswith(b"\ndone\n"), native.stdout
    assert_same(native, sentry)
    if where not in ("/tmp", "/dev/shm"):
        assert list(where.iterdir()) == []  # the overlay kept it all in memory


def test_tmpfile_read_only_mount(guests, run_sentry, tmp_path):
    (tmp_path / "ro").mkdir()
    sentry = run_sentry([guests["tmpfile"], "/tmp", "/ro"],
                        options=["--mount", f"{tmp_path / 'ro'}:/ro:ro"])
    assert b'open(argv[2], O_TMPFILE | O_RDWR, 0600) = -1 EROFS\n' in sentry.stdout
    assert sentry.stdout.endswith(b"\ndone\n")
