"""vfs.hostfs: host files are opened beneath their root, whatever the path
holds by the time of the open (a directory swapped for a symlink, "..",
a /proc magic link), with openat2 and with the no-symlink walk."""

import errno
import os

import pytest

from kvmsentry.kernel.vfs import hostfs


@pytest.fixture(params=["openat2", "walk"])
def mode(request):
    hostfs.use_openat2(request.param == "openat2")
    yield request.param
    hostfs.use_openat2(True)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"inside")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file").write_bytes(b"SECRET")
    (root / "swapped").symlink_to(outside)          # was a directory when namei looked
    (root / "relative").symlink_to("../../outside")
    (root / "last").symlink_to(outside / "file")
    return os.fsencode(root)


def read(root, path, flags=os.O_RDONLY | os.O_NOFOLLOW):
    fd = hostfs.open_beneath(root, root + path, flags)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


def test_inside_opens(tree, mode):
    assert read(tree, b"/dir/file") == b"inside"
    assert hostfs._have_openat2 == ([True] if mode == "openat2" else [False])
    fd = hostfs.open_beneath(tree, tree, os.O_RDONLY | os.O_DIRECTORY)
    assert os.path.samestat(os.fstat(fd), os.stat(tree))
    os.close(fd)


@pytest.mark.parametrize("path", [b"/swapped/file", b"/relative/file", b"/dir/../../outside/file"])
def test_symlinks_and_dotdot_stay_inside(tree, mode, path):
    with pytest.raises(OSError) as e:
        read(tree, path)
    assert e.value.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV)


def test_last_component_symlink_is_not_followed(tree, mode):
    with pytest.raises(OSError) as e:
        read(tree, b"/last")
    assert e.value.errno == errno.ELOOP


def test_magic_links_are_refused(mode):
    with pytest.raises(OSError) as e:
        read(b"/", b"proc/self/root/etc/hostname")
    assert e.value.errno in (errno.ELOOP, errno.ENOTDIR, errno.EXDEV)


def test_outside_the_root_is_exdev(tree, mode):
    with pytest.raises(OSError) as e:
        hostfs.open_beneath(tree, b"/etc/hostname", os.O_RDONLY)
    assert e.value.errno == errno.EXDEV
