"""The VFS (kvmsentry.kernel.vfs): overlay over a read-only host root, /tmp
tmpfs, and the syscalls that change files, through the syscall table on a
fake task (as test_syscalls_fs.py). Errnos are Linux's; the host directory
must be byte-identical after every test.
"""

import errno
import hashlib
import os
import stat
import struct

import pytest

import kvmsentry.kernel.syscalls.fs  # noqa: F401 - registers the handlers
from kvmsentry.kernel.fd import FdTable
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.task import Process, Task
from kvmsentry.kernel.vfs.inode import DirInode, RegularInode
from kvmsentry.kernel.vfs.tmpfs import Tmpfs
from test_syscalls_fs import AT_FDCWD, FakeMM, call, stat_of

O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0o100, 0o200, 0o1000, 0o2000
O_DIRECTORY, O_NOFOLLOW = 0o200000, 0o400000
AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW = 0x200, 0x100
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def snapshot(path):
    """Every name, mode, size, mtime and content hash beneath ``path``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(open(p, "rb").read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, digest)
    return out


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    (r / "etc" / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    (r / "usr" / "share" / "doc").mkdir(parents=True)
    (r / "usr" / "share" / "doc" / "README").write_bytes(b"read me\n")
    (r / "empty").mkdir()
    (r / "bin").mkdir()
    (r / "bin" / "sh").write_bytes(b"\x7fELF")
    (r / "bin" / "sh").chmod(0o755)
    (r / "link").symlink_to("etc/passwd")
    (tmp_path / "secret").write_bytes(b"SECRET")
    return r


@pytest.fixture
def task(root):
    before = snapshot(root.parent)
    proc = Process(root=str(root), exe="/bin/sh", cwd="/")
    yield Task(tid=1, process=proc, mm=FakeMM(), fds=FdTable())
    assert snapshot(root.parent) == before, "the guest changed the host"


def s(task, path):
    return task.mm.cstr(path)


def open_(task, path, flags=O_RDONLY, mode=0o644, dirfd=AT_FDCWD):
    return call(task, "openat", dirfd, s(task, path), flags, mode)


def write(task, fd, data):
    return call(task, "write", fd, task.mm.alloc(len(data), data), len(data))


def read(task, fd, n=1 << 16):
    buf = task.mm.alloc(n)
    got = call(task, "read", fd, buf, n)
    assert got >= 0, got
    return task.mm.copy_in(buf, got)


def cat(task, path):
    fd = open_(task, path)
    assert fd >= 0, (path, fd)
    data = read(task, fd)
    call(task, "close", fd)
    return data


def put(task, path, data, flags=O_WRONLY | O_CREAT | O_TRUNC, mode=0o644):
    fd = open_(task, path, flags, mode)
    assert fd >= 0, (path, fd)
    assert write(task, fd, data) == len(data)
    call(task, "close", fd)


def st(task, path, flags=0):
    buf = task.mm.alloc(144)
    r = call(task, "newfstatat", AT_FDCWD, s(task, path), buf, flags)
    assert r == 0, (path, r)
    return stat_of(task, buf)


def names(task, path):
    fd = open_(task, path, O_DIRECTORY)
    assert fd >= 0
    buf = task.mm.alloc(1 << 16)
    out = []
    while True:
        n = call(task, "getdents64", fd, buf, 1 << 16)
        assert n >= 0
        if n == 0:
            break
        out += _parse_dirents(task.mm.copy_in(buf, n))
    call(task, "close", fd)
    return [name for _, _, name in out]


def _parse_dirents(raw):
    out, pos = [], 0
    while pos < len(raw):
        ino, off, reclen, _ = struct.unpack_from("<QqHB", raw, pos)
        name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
        out.append((ino, off, name))
        pos += reclen
    return out


def err(task, name, *args):
    r = call(task, name, *args)
    return -r if r < 0 else r


# -- overlay -------------------------------------------------------------------

def test_create_write_read(task):
    assert call(task, "mkdir", s(task, b"/new"), 0o755) == 0
    put(task, b"/new/f", b"hello")
    assert cat(task, b"/new/f") == b"hello"
    assert names(task, b"/new") == [b".", b"..", b"f"]
    assert b"new" in names(task, b"/")


def test_copy_up_keeps_identity_and_host(task, root):
    host_ino = os.stat(root / "etc" / "passwd").st_ino
    fd = open_(task, b"/etc/passwd", O_WRONLY | O_APPEND)
    assert write(task, fd, b"guest:x:1:1::/:/bin/sh\n") > 0
    assert cat(task, b"/etc/passwd").endswith(b"guest:x:1:1::/:/bin/sh\n")
    assert st(task, b"/etc/passwd")["st_ino"] == host_ino
    assert cat(task, b"/link").startswith(b"root:")  # the symlink sees the copy
    assert cat(task, b"/link").count(b"\n") == 2


def test_unlink_host_file_is_a_whiteout(task):
    assert call(task, "unlink", s(task, b"/etc/hosts")) == 0
    assert open_(task, b"/etc/hosts") == -errno.ENOENT
    assert names(task, b"/etc") == [b".", b"..", b"passwd"]
    put(task, b"/etc/hosts", b"new")  # the name can be made again
    assert cat(task, b"/etc/hosts") == b"new"


def test_rename_host_directory(task):
    assert call(task, "rename", s(task, b"/usr/share"), s(task, b"/shared")) == 0
    assert cat(task, b"/shared/doc/README") == b"read me\n"
    assert open_(task, b"/usr/share/doc/README") == -errno.ENOENT
    assert names(task, b"/usr") == [b".", b".."]
    put(task, b"/shared/doc/NEW", b"x")  # copies up the moved host directory
    assert sorted(names(task, b"/shared/doc")) == [b".", b"..", b"NEW", b"README"]


def test_rmdir(task):
    assert err(task, "rmdir", s(task, b"/usr")) == errno.ENOTEMPTY
    assert err(task, "rmdir", s(task, b"/etc/passwd")) == errno.ENOTDIR
    assert err(task, "rmdir", s(task, b"/nope")) == errno.ENOENT
    assert err(task, "rmdir", s(task, b"/empty/.")) == errno.EINVAL
    assert err(task, "rmdir", s(task, b"/empty/..")) == errno.ENOTEMPTY
    assert err(task, "rmdir", s(task, b"/")) == errno.EBUSY
    assert err(task, "rmdir", s(task, b"/tmp")) == errno.EBUSY
    assert err(task, "rmdir", s(task, b"/link")) == errno.ENOTDIR
    nlink = st(task, b"/")["st_nlink"]
    assert call(task, "rmdir", s(task, b"/empty/")) == 0
    assert st(task, b"/")["st_nlink"] == nlink - 1
    assert call(task, "mkdir", s(task, b"/d"), 0o700) == 0
    assert st(task, b"/")["st_nlink"] == nlink
    assert call(task, "unlinkat", AT_FDCWD, s(task, b"/d"), AT_REMOVEDIR) == 0
    assert err(task, "unlinkat", AT_FDCWD, s(task, b"/d"), 1) == errno.EINVAL


def test_unlink_errnos(task):
    assert err(task, "unlink", s(task, b"/etc")) == errno.EISDIR
    assert err(task, "unlink", s(task, b"/etc/passwd/")) == errno.ENOTDIR
    assert err(task, "unlink", s(task, b"/nope")) == errno.ENOENT
    assert err(task, "unlink", s(task, b"/nodir/x")) == errno.ENOENT
    assert err(task, "unlink", s(task, b"/etc/passwd/x")) == errno.ENOTDIR
    assert err(task, "unlink", s(task, b"/dev/null")) == errno.EPERM
    assert call(task, "unlink", s(task, b"/link")) == 0  # the link, not its target
    assert cat(task, b"/etc/passwd").startswith(b"root:")


def test_mkdir_errnos_and_modes(task):
    assert err(task, "mkdir", s(task, b"/etc"), 0o755) == errno.EEXIST
    assert err(task, "mkdir", s(task, b"/link"), 0o755) == errno.EEXIST
    assert err(task, "mkdir", s(task, b"/"), 0o755) == errno.EEXIST
    assert err(task, "mkdir", s(task, b"/a/b"), 0o755) == errno.ENOENT
    assert err(task, "mkdir", s(task, b"/etc/passwd/x"), 0o755) == errno.ENOTDIR
    assert call(task, "umask", 0o027) == 0o022
    assert call(task, "mkdir", s(task, b"/m/"), 0o7777) == 0
    assert st(task, b"/m")["st_mode"] == stat.S_IFDIR | 0o1750
    put(task, b"/m/f", b"", mode=0o666)
    assert st(task, b"/m/f")["st_mode"] == stat.S_IFREG | 0o640
    assert st(task, b"/m")["st_nlink"] == 2


def test_open_flags(task):
    put(task, b"/f", b"0123456789")
    assert open_(task, b"/f", O_WRONLY | O_CREAT | O_EXCL) == -errno.EEXIST
    assert open_(task, b"/link", O_WRONLY | O_CREAT | O_EXCL) == -errno.EEXIST
    assert open_(task, b"/link", O_RDONLY | O_NOFOLLOW) == -errno.ELOOP
    assert open_(task, b"/etc", O_WRONLY) == -errno.EISDIR
    assert open_(task, b"/etc", O_CREAT) == -errno.EISDIR
    assert open_(task, b"/f", O_DIRECTORY) == -errno.ENOTDIR
    assert open_(task, b"/nodir/f", O_CREAT | O_WRONLY) == -errno.ENOENT
    # O_APPEND: every write goes to the end, whatever the offset.
    a = open_(task, b"/f", O_WRONLY | O_APPEND)
    b = open_(task, b"/f", O_RDWR)
    assert write(task, b, b"AB") == 2
    assert write(task, a, b"xy") == 2
    assert call(task, "lseek", a, 0, 0) == 0
    assert write(task, a, b"z") == 1
    assert cat(task, b"/f") == b"AB23456789xyz"
    # O_TRUNC empties it.
    call(task, "close", open_(task, b"/f", O_WRONLY | O_TRUNC))
    assert cat(task, b"/f") == b"" and st(task, b"/f")["st_size"] == 0


def test_dangling_symlink_creates_its_target(task):
    assert call(task, "symlink", s(task, b"/made"), s(task, b"/dangling")) == 0
    put(task, b"/dangling", b"via link", flags=O_WRONLY | O_CREAT)
    assert cat(task, b"/made") == b"via link"


def test_sparse_write_and_seek(task):
    fd = open_(task, b"/tmp/sparse", O_RDWR | O_CREAT)
    assert call(task, "lseek", fd, 10, 0) == 10
    assert write(task, fd, b"x") == 1
    assert cat(task, b"/tmp/sparse") == bytes(10) + b"x"
    assert call(task, "lseek", fd, 0, 2) == 11
    assert call(task, "lseek", fd, 20, 3) == -errno.ENXIO  # SEEK_DATA past the end


def test_unlinked_open_file_stays_usable(task):
    fd = open_(task, b"/tmp/gone", O_RDWR | O_CREAT)
    assert call(task, "unlink", s(task, b"/tmp/gone")) == 0
    assert write(task, fd, b"still") == 5
    buf = task.mm.alloc(144)
    assert call(task, "fstat", fd, buf) == 0 and stat_of(task, buf)["st_nlink"] == 0
    assert call(task, "pread64", fd, task.mm.alloc(8), 5, 0) == 5


# -- rename ---------------------------------------------------------------------

def test_rename_errnos(task):
    assert call(task, "mkdir", s(task, b"/d"), 0o755) == 0
    assert call(task, "mkdir", s(task, b"/d/sub"), 0o755) == 0
    put(task, b"/f", b"f")
    assert err(task, "rename", s(task, b"/nope"), s(task, b"/x")) == errno.ENOENT
    assert err(task, "rename", s(task, b"/d"), s(task, b"/d/sub/x")) == errno.EINVAL
    assert err(task, "rename", s(task, b"/d"), s(task, b"/d/x")) == errno.EINVAL
    assert err(task, "rename", s(task, b"/d/sub"), s(task, b"/d")) == errno.ENOTEMPTY
    assert err(task, "rename", s(task, b"/d"), s(task, b"/f")) == errno.ENOTDIR
    assert err(task, "rename", s(task, b"/f"), s(task, b"/d")) == errno.EISDIR
    assert err(task, "rename", s(task, b"/d"), s(task, b"/usr")) == errno.ENOTEMPTY
    assert err(task, "rename", s(task, b"/f/"), s(task, b"/g")) == errno.ENOTDIR
    assert err(task, "rename", s(task, b"/f"), s(task, b"/g/")) == errno.ENOTDIR
    assert err(task, "rename", s(task, b"/d/."), s(task, b"/x")) == errno.EBUSY
    assert err(task, "rename", s(task, b"/tmp"), s(task, b"/x")) == errno.EBUSY
    assert err(task, "rename", s(task, b"/f"), s(task, b"/tmp/f")) == errno.EXDEV
    assert err(task, "rename", s(task, b"/nope"), s(task, b"/tmp/f")) == errno.EXDEV
    assert call(task, "rename", s(task, b"/f"), s(task, b"/f")) == 0
    assert call(task, "rename", s(task, b"/d/sub"), s(task, b"/empty")) == 0  # empty dir replaced
    assert names(task, b"/d") == [b".", b".."]


def test_rename_replaces_and_flags(task):
    put(task, b"/a", b"A")
    put(task, b"/b", b"B")
    assert err(task, "renameat2", AT_FDCWD, s(task, b"/a"), AT_FDCWD, s(task, b"/b"),
               RENAME_NOREPLACE) == errno.EEXIST
    assert err(task, "renameat2", AT_FDCWD, s(task, b"/a"), AT_FDCWD, s(task, b"/c"),
               RENAME_EXCHANGE) == errno.ENOENT
    assert err(task, "renameat2", AT_FDCWD, s(task, b"/a"), AT_FDCWD, s(task, b"/b"),
               RENAME_EXCHANGE | RENAME_NOREPLACE) == errno.EINVAL
    assert err(task, "renameat2", AT_FDCWD, s(task, b"/a"), AT_FDCWD, s(task, b"/b"),
               RENAME_WHITEOUT) == errno.EINVAL
    assert call(task, "renameat2", AT_FDCWD, s(task, b"/a"), AT_FDCWD, s(task, b"/b"),
                RENAME_EXCHANGE) == 0
    assert cat(task, b"/a") == b"B" and cat(task, b"/b") == b"A"
    assert call(task, "renameat2", AT_FDCWD, s(task, b"/a"), AT_FDCWD, s(task, b"/etc"),
                RENAME_EXCHANGE) == 0  # a file and a directory swap
    assert cat(task, b"/etc") == b"B" and cat(task, b"/a/passwd").startswith(b"root")
    assert call(task, "rename", s(task, b"/b"), s(task, b"/etc")) == 0
    assert cat(task, b"/etc") == b"A" and open_(task, b"/b") == -errno.ENOENT


def test_rename_in_tmp_and_nlink(task):
    assert call(task, "mkdir", s(task, b"/tmp/x"), 0o755) == 0
    assert call(task, "mkdir", s(task, b"/tmp/y"), 0o755) == 0
    assert call(task, "mkdir", s(task, b"/tmp/x/d"), 0o755) == 0
    assert st(task, b"/tmp/x")["st_nlink"] == 3
    assert call(task, "rename", s(task, b"/tmp/x/d"), s(task, b"/tmp/y/d")) == 0
    assert st(task, b"/tmp/x")["st_nlink"] == 2 and st(task, b"/tmp/y")["st_nlink"] == 3


# -- links ------------------------------------------------------------------------

def test_link_and_symlink(task):
    put(task, b"/tmp/f", b"data")
    assert call(task, "link", s(task, b"/tmp/f"), s(task, b"/tmp/g")) == 0
    assert st(task, b"/tmp/f")["st_nlink"] == 2
    assert st(task, b"/tmp/f")["st_ino"] == st(task, b"/tmp/g")["st_ino"]
    assert err(task, "link", s(task, b"/tmp/f"), s(task, b"/tmp/g")) == errno.EEXIST
    assert err(task, "link", s(task, b"/tmp"), s(task, b"/tmp/d")) == errno.EPERM
    assert err(task, "link", s(task, b"/tmp/f"), s(task, b"/f")) == errno.EXDEV
    assert err(task, "link", s(task, b"/nope"), s(task, b"/tmp/n")) == errno.ENOENT
    assert err(task, "link", s(task, b"/tmp/f"), s(task, b"/tmp/n/")) == errno.ENOENT
    # A host file linked: copied up once, both names are one inode.
    assert call(task, "link", s(task, b"/etc/passwd"), s(task, b"/pw")) == 0
    put(task, b"/pw", b"changed", flags=O_WRONLY | O_TRUNC)
    assert cat(task, b"/etc/passwd") == b"changed"
    # link() does not follow a symlink, linkat(AT_SYMLINK_FOLLOW) does.
    assert call(task, "link", s(task, b"/link"), s(task, b"/link2")) == 0
    assert stat.S_ISLNK(st(task, b"/link2", AT_SYMLINK_NOFOLLOW)["st_mode"])
    assert call(task, "symlink", s(task, b""), s(task, b"/x")) == -errno.ENOENT
    assert call(task, "symlink", s(task, b"t"), s(task, b"/etc")) == -errno.EEXIST
    assert call(task, "symlink", s(task, b"loop"), s(task, b"/loop")) == 0
    assert open_(task, b"/loop") == -errno.ELOOP
    buf = task.mm.alloc(64)
    assert call(task, "readlink", s(task, b"/loop"), buf, 64) == 4
    assert st(task, b"/loop", AT_SYMLINK_NOFOLLOW)["st_size"] == 4


# -- attributes --------------------------------------------------------------------

def test_chmod_chown(task):
    assert call(task, "chmod", s(task, b"/etc/passwd"), 0o4755) == 0
    assert st(task, b"/etc/passwd")["st_mode"] == stat.S_IFREG | 0o4755
    assert call(task, "chown", s(task, b"/etc/passwd"), 1000, 0xFFFFFFFF) == 0
    info = st(task, b"/etc/passwd")
    assert info["st_uid"] == 1000 and info["st_mode"] == stat.S_IFREG | 0o755  # suid dropped
    assert call(task, "lchown", s(task, b"/link"), 7, 8) == 0
    assert st(task, b"/link", AT_SYMLINK_NOFOLLOW)["st_uid"] == 7
    assert st(task, b"/link")["st_uid"] == 1000
    fd = open_(task, b"/etc")
    assert call(task, "fchmod", fd, 0o700) == 0  # a host directory copied up
    assert st(task, b"/etc")["st_mode"] == stat.S_IFDIR | 0o700
    assert call(task, "fchownat", AT_FDCWD, s(task, b"/etc"), 1, 2, 0x8) == -errno.EINVAL
    assert call(task, "fchmod", 99, 0o700) == -errno.EBADF
    assert call(task, "chmod", s(task, b"/nope"), 0o700) == -errno.ENOENT


def test_utimensat(task):
    put(task, b"/tmp/t", b"")
    times = task.mm.alloc(32, struct.pack("<qqqq", 1000, 5, 2000, 6))
    assert call(task, "utimensat", AT_FDCWD, s(task, b"/tmp/t"), times, 0) == 0
    info = st(task, b"/tmp/t")
    assert (info["st_atime"], info["st_atime_nsec"], info["st_mtime"]) == (1000, 5, 2000)
    omit = task.mm.alloc(32, struct.pack("<qqqq", 0, UTIME_OMIT, 0, UTIME_NOW))
    assert call(task, "utimensat", AT_FDCWD, s(task, b"/tmp/t"), omit, 0) == 0
    info = st(task, b"/tmp/t")
    assert info["st_atime"] == 1000 and info["st_mtime"] > 2000
    bad = task.mm.alloc(32, struct.pack("<qqqq", 0, 1 << 31, 0, 0))
    assert call(task, "utimensat", AT_FDCWD, s(task, b"/tmp/t"), bad, 0) == -errno.EINVAL
    both_omit = task.mm.alloc(32, struct.pack("<qqqq", 0, UTIME_OMIT, 0, UTIME_OMIT))
    assert call(task, "utimensat", AT_FDCWD, s(task, b"/nope"), both_omit, 0) == 0
    fd = open_(task, b"/tmp/t", O_WRONLY)
    assert call(task, "utimensat", fd, 0, times, 0) == 0  # futimens
    assert st(task, b"/tmp/t")["st_mtime"] == 2000
    tv = task.mm.alloc(32, struct.pack("<qqqq", 3, 0, 4, 999999))
    assert call(task, "utimes", s(task, b"/etc/hosts"), tv) == 0
    assert st(task, b"/etc/hosts")["st_mtime_nsec"] == 999999000
    ub = task.mm.alloc(16, struct.pack("<qq", 7, 8))
    assert call(task, "utime", s(task, b"/etc/hosts"), ub) == 0
    assert st(task, b"/etc/hosts")["st_mtime"] == 8


def test_truncate_fallocate(task):
    put(task, b"/tmp/f", b"0123456789")
    assert call(task, "truncate", s(task, b"/tmp/f"), 4) == 0
    assert cat(task, b"/tmp/f") == b"0123"
    assert call(task, "truncate", s(task, b"/tmp"), 0) == -errno.EISDIR
    assert call(task, "truncate", s(task, b"/tmp/f"), -1) == -errno.EINVAL
    assert call(task, "truncate", s(task, b"/etc/hosts"), 3) == 0
    assert cat(task, b"/etc/hosts") == b"127"
    ro = open_(task, b"/tmp/f")
    assert call(task, "ftruncate", ro, 0) == -errno.EINVAL
    rw = open_(task, b"/tmp/f", O_RDWR)
    assert call(task, "ftruncate", rw, 8) == 0 and cat(task, b"/tmp/f") == b"0123" + bytes(4)
    assert call(task, "fallocate", rw, 0, 0, 16) == 0 and st(task, b"/tmp/f")["st_size"] == 16
    assert call(task, "fallocate", rw, 1, 0, 64) == 0 and st(task, b"/tmp/f")["st_size"] == 16
    assert call(task, "fallocate", rw, 0, 0, 0) == -errno.EINVAL
    assert call(task, "fallocate", ro, 0, 0, 1) == -errno.EBADF
    assert call(task, "fallocate", rw, 0x20, 0, 1) == -errno.EOPNOTSUPP


# -- directories ----------------------------------------------------------------------

def test_getdents_offsets_survive_changes(task):
    assert call(task, "mkdir", s(task, b"/tmp/d"), 0o755) == 0
    for i in range(40):
        put(task, b"/tmp/d/f%02d" % i, b"")
    fd = open_(task, b"/tmp/d", O_DIRECTORY)
    buf = task.mm.alloc(256)
    first = _parse_dirents(task.mm.copy_in(buf, call(task, "getdents64", fd, buf, 256)))
    seen = [n for _, _, n in first]
    # Remove one entry already listed and one not yet listed, add one.
    assert call(task, "unlink", s(task, b"/tmp/d/" + seen[-1])) == 0
    assert call(task, "unlink", s(task, b"/tmp/d/f39")) == 0
    put(task, b"/tmp/d/zz", b"")
    rest = []
    while True:
        n = call(task, "getdents64", fd, buf, 256)
        if n == 0:
            break
        rest += [x for _, _, x in _parse_dirents(task.mm.copy_in(buf, n))]
    listed = seen + rest
    assert len(listed) == len(set(listed))
    assert b"f39" not in listed and b"zz" in listed
    assert set(listed) >= {b"f%02d" % i for i in range(39)}
    # An offset seeked back to is where that entry's successor starts.
    ino, off, name = first[3]
    assert call(task, "lseek", fd, off, 0) == off
    n = call(task, "getdents64", fd, buf, 256)
    assert _parse_dirents(task.mm.copy_in(buf, n))[0][2] == first[4][2]


def test_tmp_is_a_tmpfs(task):
    info = st(task, b"/tmp")
    assert info["st_mode"] == stat.S_IFDIR | 0o1777
    assert info["st_dev"] != st(task, b"/")["st_dev"]
    assert names(task, b"/tmp") == [b".", b".."]
    buf = task.mm.alloc(120)
    assert call(task, "statfs", s(task, b"/tmp"), buf) == 0
    assert struct.unpack_from("<q", task.mm.copy_in(buf, 8))[0] == 0x01021994
    put(task, b"/tmp/f", b"x")
    fd = open_(task, b"/tmp/f")
    assert call(task, "fstatfs", fd, buf) == 0
    assert struct.unpack_from("<q", task.mm.copy_in(buf, 8))[0] == 0x01021994


def test_tmpfs_sizes():
    fs = Tmpfs()
    d = fs.mkdir(fs.root, b"d", 0o755, 0, 0)
    f = fs.create(d, b"f", 0o644, 0, 0)
    assert isinstance(d, DirInode) and isinstance(f, RegularInode)
    assert d.stat().st_size == 60  # BOGO_DIRENT_SIZE * (2 + entries)
    f.write_at(b"x", 4096)
    assert f.stat().st_size == 4097 and f.stat().st_blocks == 8  # page 0 is a hole
    assert fs.root.nlink == 3
    fs.unlink(d, b"f")
    assert f.nlink == 0 and d.empty()
    assert fs.statfs()["f_type"] == 0x01021994


def test_forked_processes_share_the_tree(task):
    from kvmsentry.kernel.files import mounts_of
    put(task, b"/tmp/shared", b"1")
    child_proc = Process(root=task.process.root, exe="/bin/sh", cwd="/",
                         mounts=mounts_of(task.process))
    child = Task(tid=2, process=child_proc, mm=FakeMM(), fds=FdTable())
    assert cat(child, b"/tmp/shared") == b"1"
    other = Task(tid=3, process=Process(root=task.process.root), mm=FakeMM(), fds=FdTable())
    assert open_(other, b"/tmp/shared") == -errno.ENOENT  # another sandbox


def test_relative_paths_and_cwd(task):
    assert call(task, "mkdir", s(task, b"/tmp/w"), 0o755) == 0
    assert call(task, "chdir", s(task, b"/tmp/w")) == 0
    put(task, b"rel", b"r")
    assert call(task, "rename", s(task, b"rel"), s(task, b"../moved")) == 0
    assert cat(task, b"/tmp/moved") == b"r"
    d = open_(task, b"/tmp", O_DIRECTORY)
    assert call(task, "mkdirat", d, s(task, b"sub"), 0o755) == 0
    assert call(task, "symlinkat", s(task, b"sub"), d, s(task, b"sl")) == 0
    assert call(task, "unlinkat", d, s(task, b"sl"), 0) == 0
    assert call(task, "unlinkat", d, s(task, b"sub"), AT_REMOVEDIR) == 0


def test_holes_are_pages_never_written():
    fs = Tmpfs()
    inode = RegularInode(fs, 0o644)
    inode.write_at(b"abc", 0)
    assert inode.alloc is None  # written from the start: no map kept
    inode.write_at(b"end", 3 << 12)  # pages 1 and 2 skipped
    assert inode.seek_data(4096) == 3 << 12 and inode.seek_hole(0) == 4096
    assert inode.seek_hole(3 << 12) == inode.size
    inode.truncate(10 << 12)
    assert inode.seek_hole((3 << 12) + 1) == 4 << 12
    with pytest.raises(SyscallError) as e:
        inode.seek_data(5 << 12)
    assert e.value.errno == errno.ENXIO
    inode.punch_hole(0, 4096)  # page 0 whole: a hole, zeros
    assert inode.data[:3] == b"\0\0\0" and inode.seek_data(0) == 3 << 12
    assert inode.blocks() == 8  # one page left with data
    inode.truncate(1)
    assert inode.alloc == set() and inode.seek_hole(0) == 0


def test_seals_stop_writes_and_size_changes():
    from kvmsentry.kernel.vfs.file import RegularFile, add_seals, get_seals
    from kvmsentry.kernel.vfs.inode import F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK
    inode = RegularInode(Tmpfs(), 0o644, seals=0)
    f = RegularFile(inode, O_RDWR, b"/memfd:x")
    f.write(b"x" * 5000)
    add_seals(f, F_SEAL_GROW)
    f.lseek(0, 0)
    assert f.write(b"y" * 6000) == 4096  # stops at the page holding the end
    f.lseek(0, 2)
    for call_, err in ((lambda: f.write(b"z"), errno.EPERM),
                       (lambda: f.truncate(6000), errno.EPERM),
                       (lambda: add_seals(f, 0x40), errno.EINVAL)):
        with pytest.raises(SyscallError) as e:
            call_()
        assert e.value.errno == err
    add_seals(f, F_SEAL_SHRINK | F_SEAL_SEAL)
    assert get_seals(f) == F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL
    with pytest.raises(SyscallError) as e:
        add_seals(f, 0)
    assert e.value.errno == errno.EPERM
    with pytest.raises(SyscallError) as e:
        get_seals(RegularFile(RegularInode(Tmpfs(), 0o644), O_RDWR, b"/x"))
    assert e.value.errno == errno.EINVAL  # not sealable (as on ext4)


def test_xattrs_of_host_files_are_read_then_copied_up(task, root):
    import kvmsentry.kernel.syscalls.xattr  # noqa: F401 - the xattr handlers
    hosts = root / "etc" / "hosts"
    try:
        os.setxattr(hosts, "user.origin", b"host")
    except OSError as e:
        pytest.skip(f"no user xattrs on the host's {root}: {e.strerror}")
    buf = task.mm.alloc(64)

    def get(name):
        n = call(task, "getxattr", s(task, b"/etc/hosts"), s(task, name), buf, 64)
        return n if n < 0 else task.mm.copy_in(buf, n)

    assert get(b"user.origin") == b"host"  # read on the host
    assert call(task, "setxattr", s(task, b"/etc/hosts"), s(task, b"user.new"),
                task.mm.alloc(3, b"new"), 3, 0) == 0
    assert get(b"user.origin") == b"host" and get(b"user.new") == b"new"  # copied up
    n = call(task, "listxattr", s(task, b"/etc/hosts"), buf, 64)
    assert task.mm.copy_in(buf, n) == b"user.origin\0user.new\0"
    assert call(task, "removexattr", s(task, b"/etc/hosts"), s(task, b"user.origin")) == 0
    assert get(b"user.origin") == -errno.ENODATA
    assert os.listxattr(hosts) == ["user.origin"]  # the host file keeps its own
    assert call(task, "setxattr", s(task, b"/proc/self/status"), s(task, b"user.x"),
                buf, 1, 0) == -errno.EOPNOTSUPP
