"""File descriptors and open file descriptions.

Linux keeps two levels, and so do we (include/linux/fdtable.h, fs/file.c):

* ``FdTable`` maps a process's fd numbers to open files plus the per-fd
  close-on-exec flag. New fds take the lowest free number, bounded by
  RLIMIT_NOFILE. dup/dup2/dup3/F_DUPFD make a second fd for the *same*
  open file.
* ``File`` is an open file description (Linux's ``struct file``): the
  offset, the access mode and the status flags (O_APPEND, O_NONBLOCK, ...).
  Everything on it is shared by every fd that refers to it, as in Linux.

Implementations here: ``HostFile`` (a host file or directory the sentry
opened read-only beneath the guest root), ``HostStream`` (the sentry's own
stdin/stdout/stderr, passed through), ``DevNull``, ``DevZero``, ``DevFull``,
``DevUrandom`` and ``PathFile`` (an O_PATH descriptor). Methods raise
``SyscallError`` with the Linux errno; a host ``OSError`` is translated
where the host is touched (``host_call``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import sys

from kvmsentry.kernel import fastread, sched
import stat as _stat
from typing import Callable, Iterator, TypeVar

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel.syscalls.table import SyscallError

# include/uapi/asm-generic/fcntl.h (x86-64 values). Python's os.O_LARGEFILE
# is 0 on x86-64 glibc; the kernel's flag is 0o100000 and open(2) sets it.
O_ACCMODE = 0o3
O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DSYNC = 0o10000
O_ASYNC = 0o20000
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_SYNC = 0o4010000
O_PATH = 0o10000000
O_TMPFILE = 0o20200000
__O_TMPFILE = 0o20000000

# fcntl(F_SETFL) may change only these (fs/fcntl.c SETFL_MASK).
SETFL_MASK = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME
# open(2) drops these from f_flags after the open (fs/open.c do_dentry_open).
OPEN_ONLY_FLAGS = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC

SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4

# include/uapi/asm-generic/ioctls.h
TCGETS = 0x5401
TIOCGWINSZ = 0x5413
FIONREAD = 0x541B
FIONBIO = 0x5421
FIONCLEX = 0x5450
FIOCLEX = 0x5451
# Sizes of what TCGETS/TIOCGWINSZ write: struct termios (kernel's, 36
# bytes: 4 x tcflag_t, c_line, c_cc[19]) and struct winsize (4 x u16).
TERMIOS_SIZE = 36
WINSIZE_SIZE = 8

# include/uapi/asm-generic/resource.h
RLIMIT_NOFILE = 7
# Defaults as a Linux system with systemd gives (soft, hard); fs/file.c's
# sysctl_nr_open caps the hard limit at 1048576.
NOFILE_DEFAULT = (1024, 1048576)
ERESTARTSYS = 512  # include/linux/errno.h: restart, or EINTR after a handler
NR_OPEN = 1048576

# MAX_RW_COUNT (include/linux/fs.h): one read/write moves at most this.
MAX_RW_COUNT = 0x7FFFF000

T = TypeVar("T")


def host_call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call a host function, turning its OSError into the guest's errno.

    The single place a host OSError becomes a SyscallError (x86-64 Linux
    errno numbers are the host's).
    """
    try:
        return fn(*args, **kwargs)
    except OSError as e:
        raise SyscallError(e.errno or errno.EIO) from None


# os.fsencode's codec, named once: a directory listing encodes every name.
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class Dirent:
    """One directory entry as getdents64(2) reports it (d_type is DT_*)."""

    __slots__ = ("d_ino", "d_type", "d_name")

    def __init__(self, d_ino: int, d_type: int, d_name: bytes):
        self.d_ino = d_ino
        self.d_type = d_type
        self.d_name = d_name

    def __eq__(self, other):
        if other.__class__ is not Dirent:
            return NotImplemented
        return (self.d_ino, self.d_type, self.d_name) == (other.d_ino, other.d_type, other.d_name)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Dirent(d_ino={self.d_ino}, d_type={self.d_type}, d_name={self.d_name!r})"


# include/linux/fs_types.h: DT_* from the S_IFMT bits.
DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12


def dt_from_mode(mode: int) -> int:
    """The DT_* type of a st_mode (the S_IFMT bits shifted right by 12)."""
    return (mode >> 12) & 0o17


class File:
    """An open file description (Linux ``struct file``).

    ``flags`` is what F_GETFL reports: the access mode plus status flags
    (O_APPEND, O_NONBLOCK, O_LARGEFILE, ...). ``guest_path`` is the guest
    path it was opened by (what /proc/self/fd/N reads), bytes. Subclasses
    override what they support; the defaults are Linux's answers for a
    file without that operation. Every operation raises SyscallError.
    """

    # True when a read returns less than asked only at EOF (regular files,
    # /dev/zero): read(2) then loops over host reads to fill a big buffer.
    full_reads = False
    # (st_dev, st_ino) of the file while this description holds a flock(2)
    # lock (kvmsentry.kernel.vfs.flock), else None.
    flock_key = None
    # The kvmsentry.kernel.fastread.FastRead that serves this description's
    # reads inside the guest (its offset is there then), else None.
    fast = None

    def __init__(self, flags: int = O_RDWR, guest_path: bytes = b""):
        self.flags = flags
        self.guest_path = guest_path
        self.refs = 0
        self.closed = False

    # -- access mode ---------------------------------------------------
    @property
    def readable(self) -> bool:
        return (self.flags & O_PATH) == 0 and (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR)

    @property
    def writable(self) -> bool:
        return (self.flags & O_PATH) == 0 and (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR)

    @property
    def nonblocking(self) -> bool:
        return bool(self.flags & O_NONBLOCK)

    def is_dir(self) -> bool:
        return False

    def fast_readable(self) -> bool:
        """Whether read(2) may be served inside the guest from the page cache
        (kvmsentry/kernel/fastread.py): a regular file whose cached pages are its content."""
        return False

    # -- I/O ------------------------------------------------------------
    def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes at the file offset and advance it."""
        raise SyscallError(errno.EINVAL)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` at the offset (or the end with O_APPEND); bytes written."""
        raise SyscallError(errno.EINVAL)

    def pread(self, n: int, offset: int) -> bytes:
        """Read up to ``n`` bytes at ``offset``; the file offset is unchanged."""
        raise SyscallError(errno.ESPIPE)

    def pwrite(self, data: bytes | bytearray | memoryview, offset: int) -> int:
        raise SyscallError(errno.ESPIPE)

    def lseek(self, offset: int, whence: int) -> int:
        """Reposition the offset; returns the new offset in bytes."""
        raise SyscallError(errno.ESPIPE)

    def stat(self) -> Stat:
        raise SyscallError(errno.EBADF)

    def ioctl(self, task, cmd: int, arg: int) -> int:
        """Device-specific ioctl; generic ones (FIONBIO, FIOCLEX) are in fs.py."""
        raise SyscallError(errno.ENOTTY)

    def getdents(self) -> Iterator[tuple[int, Dirent]]:
        """Yield (d_off, entry) from the current position (directories only).

        ``d_off`` is the position just after the entry; ``seek_dir(d_off)``
        resumes there.
        """
        raise SyscallError(errno.ENOTDIR)

    def seek_dir(self, position: int) -> None:
        raise SyscallError(errno.ENOTDIR)

    def host_path(self) -> bytes | None:
        """The host path behind this file, if it is one (fchdir, statfs)."""
        return None

    def reopen(self, flags: int) -> "File":
        """A new open file description of the same file (/proc/self/fd/N)."""
        raise SyscallError(errno.ENXIO)

    def release(self) -> None:
        """Drop host resources; called when the last fd referring to it closes."""
        self.closed = True


class HostFile(File):
    """A host file or directory opened read-only beneath the guest root.

    The host fd (O_RDONLY|O_CLOEXEC|O_NOFOLLOW) carries the offset, so it
    is shared by every guest fd dup'd from this description. Directories
    list their entries once per rewind (so d_off stays stable across
    getdents64 calls) and add ``.`` and ``..``.
    """

    full_reads = True

    def __init__(self, host_fd: int, host_path: bytes, guest_path: bytes, flags: int,
                 parent_ino: int | None = None, st: os.stat_result | None = None):
        super().__init__(flags, guest_path)
        self.host_fd = host_fd
        self._host_path = host_path
        # ``st``: the fstat the opener already made of ``host_fd``.
        self._st = os.fstat(host_fd) if st is None else st
        self._parent_ino = parent_ino
        self._dir_entries: list[Dirent] | None = None
        self._dir_pos = 0

    @classmethod
    def open(cls, host_path: bytes, guest_path: bytes, flags: int,
             parent_ino: int | None = None) -> "HostFile":
        oflags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        if flags & O_DIRECTORY:
            oflags |= os.O_DIRECTORY
        fd = host_call(os.open, host_path, oflags)
        # O_NONBLOCK only kept a host FIFO from blocking the open; regular
        # files and directories ignore it, and other kinds are refused.
        st = os.fstat(fd)
        if not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode)):
            os.close(fd)
            raise SyscallError(errno.EACCES)
        return cls(fd, host_path, guest_path, flags, parent_ino, st)

    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self._st.st_mode)

    def host_path(self) -> bytes:
        return self._host_path

    def fast_readable(self) -> bool:
        # Its page cache is the immutable HostMapping of the file as first cached.
        return not self.flags & O_DIRECT and _stat.S_ISREG(self._st.st_mode)

    def _check_dir_io(self) -> None:
        if self.is_dir():
            raise SyscallError(errno.EISDIR)

    def read(self, n: int) -> bytes:
        self._check_dir_io()
        return host_call(os.read, self.host_fd, n)

    def pread(self, n: int, offset: int) -> bytes:
        self._check_dir_io()
        return host_call(os.pread, self.host_fd, n, offset)

    def write(self, data) -> int:
        # Opened read-only by construction; fs.py checks the mode first.
        raise SyscallError(errno.EBADF)

    def pwrite(self, data, offset: int) -> int:
        raise SyscallError(errno.EBADF)

    def lseek(self, offset: int, whence: int) -> int:
        if not self.is_dir():
            return host_call(os.lseek, self.host_fd, offset, whence)
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = self._dir_pos + offset
        else:
            raise SyscallError(errno.EINVAL)
        if new < 0:
            raise SyscallError(errno.EINVAL)
        self.seek_dir(new)
        return new

    def stat(self) -> Stat:
        return Stat.from_host(host_call(os.fstat, self.host_fd))

    def _list_dir(self) -> list[Dirent]:
        own_ino = self._st.st_ino
        entries = [
            Dirent(own_ino, DT_DIR, b"."),
            Dirent(self._parent_ino if self._parent_ino is not None else own_ino, DT_DIR, b".."),
        ]
        # os.scandir on an fd dups it, so our offset is untouched.
        with host_call(os.scandir, self.host_fd) as it:
            for e in it:
                if e.is_symlink():
                    d_type = DT_LNK
                elif e.is_dir(follow_symlinks=False):
                    d_type = DT_DIR
                elif e.is_file(follow_symlinks=False):
                    d_type = DT_REG
                else:
                    try:
                        d_type = dt_from_mode(e.stat(follow_symlinks=False).st_mode)
                    except OSError:
                        d_type = DT_UNKNOWN
                entries.append(Dirent(e.inode(), d_type, e.name.encode(_FS_ENCODING, _FS_ERRORS)))
        return entries

    def getdents(self) -> Iterator[tuple[int, Dirent]]:
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)
        if self._dir_entries is None:
            self._dir_entries = self._list_dir()
        entries = self._dir_entries
        for i in range(self._dir_pos, len(entries)):
            yield i + 1, entries[i]

    def seek_dir(self, position: int) -> None:
        if position == 0:
            self._dir_entries = None  # a rewind sees new entries, as readdir
        self._dir_pos = position

    def reopen(self, flags: int) -> "HostFile":
        return HostFile.open(self._host_path, self.guest_path, flags, self._parent_ino)

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.host_fd)


class HostStream(File):
    """One of the sentry's own stdin/stdout/stderr, passed through.

    Reads go to host fd ``host_fd`` (0), writes to it (1 or 2). The host
    fd's own flags are never changed: O_NONBLOCK is emulated with poll.
    TCGETS and TIOCGWINSZ are answered from the host terminal when the
    host fd is a tty; every other ioctl is ENOTTY.
    """

    def __init__(self, host_fd: int, flags: int | None = None, guest_path: bytes = b""):
        if flags is None:
            try:
                flags = fcntl.fcntl(host_fd, fcntl.F_GETFL) & (O_ACCMODE | O_APPEND)
            except OSError:
                flags = O_RDWR
            flags |= O_LARGEFILE
        super().__init__(flags, guest_path or b"/dev/fd/%d" % host_fd)
        self.host_fd = host_fd

    def isatty(self) -> bool:
        return os.isatty(self.host_fd)

    def _wait(self, events: int) -> None:
        if self.nonblocking:
            p = select.poll()
            p.register(self.host_fd, events)
            if not p.poll(0):
                raise SyscallError(errno.EAGAIN)

    def _block_until(self, events: int) -> None:
        """Wait for the host fd without the kernel lock, interruptible by signals.

        Polls in 50 ms slices so that a signal for the task (or its death)
        ends the wait with ERESTARTSYS (the dispatcher restarts or fails the
        call with EINTR, signal(7)).
        """
        task = sched.current()
        if task is None:
            return
        p = select.poll()
        p.register(self.host_fd, events)
        with sched.blocking():
            while not p.poll(50):
                if task.signal_pending() or task.process.wait_status is not None:
                    raise SyscallError(ERESTARTSYS)

    def read(self, n: int) -> bytes:
        self._wait(select.POLLIN)
        if not self.nonblocking:
            self._block_until(select.POLLIN)
        return host_call(os.read, self.host_fd, n)

    def write(self, data) -> int:
        self._wait(select.POLLOUT)
        if not self.nonblocking:
            self._block_until(select.POLLOUT)
        return host_call(os.write, self.host_fd, data)

    def pread(self, n: int, offset: int) -> bytes:
        return host_call(os.pread, self.host_fd, n, offset)

    def pwrite(self, data, offset: int) -> int:
        return host_call(os.pwrite, self.host_fd, data, offset)

    def lseek(self, offset: int, whence: int) -> int:
        return host_call(os.lseek, self.host_fd, offset, whence)

    def stat(self) -> Stat:
        return Stat.from_host(host_call(os.fstat, self.host_fd))

    def ioctl(self, task, cmd: int, arg: int) -> int:
        if cmd in (TCGETS, TIOCGWINSZ) and self.isatty():
            size = TERMIOS_SIZE if cmd == TCGETS else WINSIZE_SIZE
            buf = bytearray(size)
            host_call(fcntl.ioctl, self.host_fd, cmd, buf, True)
            task.mm.copy_out(arg, buf)
            return 0
        raise SyscallError(errno.ENOTTY)

    def reopen(self, flags: int) -> "HostStream":
        return HostStream(self.host_fd, (flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE, self.guest_path)


def makedev(major: int, minor: int) -> int:
    """Linux's new_encode_dev layout, as glibc's makedev (st_rdev)."""
    return os.makedev(major, minor)


class _CharDevice(File):
    """A sentry-served character device from drivers/char/mem.c."""

    MINOR = 0
    NAME = b""
    full_reads = True

    def __init__(self, flags: int = O_RDWR | O_LARGEFILE, guest_path: bytes = b""):
        super().__init__(flags, guest_path or b"/dev/" + self.NAME)

    def lseek(self, offset: int, whence: int) -> int:
        # null/zero/full/random all seek to 0 and report 0 (noop/null_lseek).
        return 0

    def stat(self) -> Stat:
        return Stat(
            st_dev=makedev(0, 5),
            st_ino=0x1000 + self.MINOR,
            st_nlink=1,
            st_mode=_stat.S_IFCHR | 0o666,
            st_rdev=makedev(1, self.MINOR),
            st_blksize=4096,
        )

    def pread(self, n: int, offset: int) -> bytes:
        return self.read(n)

    def pwrite(self, data, offset: int) -> int:
        return self.write(data)

    def reopen(self, flags: int) -> "File":
        return type(self)((flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE)


class DevNull(_CharDevice):
    """/dev/null: reads are EOF, writes are discarded."""

    MINOR, NAME = 3, b"null"

    def read(self, n: int) -> bytes:
        return b""

    def write(self, data) -> int:
        return len(data)


class DevZero(_CharDevice):
    """/dev/zero: reads give zeros, writes are discarded."""

    MINOR, NAME = 5, b"zero"

    def read(self, n: int) -> bytes:
        return bytes(n)

    def write(self, data) -> int:
        return len(data)


class DevFull(_CharDevice):
    """/dev/full: reads give zeros, writes fail with ENOSPC."""

    MINOR, NAME = 7, b"full"

    def read(self, n: int) -> bytes:
        return bytes(n)

    def write(self, data) -> int:
        raise SyscallError(errno.ENOSPC)


class DevUrandom(_CharDevice):
    """/dev/urandom (and /dev/random, ``MINOR`` 8): the host's os.urandom.

    Writes are accepted and discarded (Linux mixes them into the pool,
    crediting no entropy).
    """

    MINOR, NAME = 9, b"urandom"

    def __init__(self, flags: int = O_RDWR | O_LARGEFILE, guest_path: bytes = b"", minor: int = 9):
        self.MINOR = minor
        super().__init__(flags, guest_path or (b"/dev/random" if minor == 8 else b"/dev/urandom"))

    def read(self, n: int) -> bytes:
        return os.urandom(n)

    def write(self, data) -> int:
        return len(data)

    def reopen(self, flags: int) -> "DevUrandom":
        return DevUrandom((flags & ~OPEN_ONLY_FLAGS) | O_LARGEFILE, self.guest_path, self.MINOR)


class PathFile(File):
    """An O_PATH descriptor: a location, good for fstat, fchdir, *at and close.

    read/write give EBADF (the mode check in fs.py sees O_PATH);
    ``host`` is the host path (not opened), ``is_directory`` its kind.
    ``stat_fn`` returns its Stat (host lstat/stat, or a device's).
    """

    def __init__(self, flags: int, guest_path: bytes, stat_fn: Callable[[], Stat],
                 host: bytes | None = None, is_directory: bool = False):
        super().__init__(flags, guest_path)
        self._stat_fn = stat_fn
        self._host = host
        self._is_directory = is_directory

    def is_dir(self) -> bool:
        return self._is_directory

    def host_path(self) -> bytes | None:
        return self._host

    def stat(self) -> Stat:
        return self._stat_fn()

    def lseek(self, offset: int, whence: int) -> int:
        raise SyscallError(errno.EBADF)

    def ioctl(self, task, cmd: int, arg: int) -> int:
        raise SyscallError(errno.EBADF)

    def getdents(self):
        raise SyscallError(errno.EBADF)


class FdTable:
    """A process's file-descriptor table (Linux ``struct files_struct``).

    ``get(fd)`` returns the File or raises EBADF. ``install`` takes the
    lowest free fd at or above ``minfd`` below ``limit`` (the caller passes
    RLIMIT_NOFILE's soft value, ``nofile_limit(process)``) and raises
    EMFILE when none is left. ``close`` releases the File when its last fd
    goes. ``fork`` makes a copy that shares the Files, as fork(2).
    """

    def __init__(self):
        self._files: dict[int, File] = {}
        self._cloexec: set[int] = set()

    @classmethod
    def with_stdio(cls, closed: tuple[int, ...] = ()) -> "FdTable":
        """A table whose fds 0, 1, 2 pass through the sentry's own stdio.

        ``closed`` lists the ones kvmsentry was started without: the guest
        finds them closed too (EBADF), as a natively started program would.
        """
        table = cls()
        for fd in (0, 1, 2):
            if fd not in closed:
                table.install_at(fd, HostStream(fd))
        return table

    def __contains__(self, fd: int) -> bool:
        return fd in self._files

    def __len__(self) -> int:
        return len(self._files)

    def fds(self) -> list[int]:
        return sorted(self._files)

    def get(self, fd: int) -> File:
        try:
            file = self._files[fd]
        except KeyError:
            raise SyscallError(errno.EBADF) from None
        if getattr(file, "fast", None) is not None:  # its offset is in the guest: take it back first
            fastread.touched(file)
        return file

    def get_cloexec(self, fd: int) -> bool:
        self.get(fd)
        return fd in self._cloexec

    def set_cloexec(self, fd: int, cloexec: bool) -> None:
        self.get(fd)
        if cloexec:
            self._cloexec.add(fd)
        else:
            self._cloexec.discard(fd)

    def _lowest_free(self, minfd: int, limit: int) -> int:
        fd = minfd
        while fd in self._files:
            fd += 1
        if fd >= limit:
            raise SyscallError(errno.EMFILE)
        return fd

    def install(self, file: File, cloexec: bool = False, minfd: int = 0,
                limit: int = NOFILE_DEFAULT[0]) -> int:
        """Give ``file`` the lowest free fd >= minfd; EMFILE at ``limit``."""
        fd = self._lowest_free(minfd, limit)
        self._set(fd, file, cloexec)
        return fd

    def install_at(self, fd: int, file: File, cloexec: bool = False) -> int:
        """Put ``file`` at ``fd``, closing what was there (dup2's semantics)."""
        old = self._files.get(fd)
        if old is not None:
            fastread.closing(self, old)
        self._set(fd, file, cloexec)
        if old is not None:
            self._closing(old)
            self._unref(old)
        return fd

    def _closing(self, file: File) -> None:
        """An fd of ``file`` is closing: this table's POSIX record locks on
        the file go, whichever fd set them (vfs.posixlock)."""
        # Not imported: no lock was ever set (and closing does not import it).
        posixlock = sys.modules.get("kvmsentry.kernel.vfs.posixlock")
        if posixlock is not None and posixlock.any_locks():
            key = _lock_key(file)
            if key is not None:
                posixlock.close_posix(self, key)
                if file.refs == 1:
                    posixlock.release_ofd(file, key)

    def _set(self, fd: int, file: File, cloexec: bool) -> None:
        file.refs += 1
        if getattr(file, "fast", None) is not None:  # a second reference (dup, fork): not served any more
            fastread.shared(file)
        self._files[fd] = file
        if cloexec:
            self._cloexec.add(fd)
        else:
            self._cloexec.discard(fd)

    @staticmethod
    def _unref(file: File) -> None:
        file.refs -= 1
        if file.refs == 0:
            if file.flock_key is not None:
                from kvmsentry.kernel.vfs import flock
                flock.release(file)
            file.release()

    def close(self, fd: int) -> None:
        """close(2): EBADF when ``fd`` is not open."""
        file = self._files.get(fd)
        if file is None:
            raise SyscallError(errno.EBADF)
        fastread.closing(self, file)
        del self._files[fd]
        self._cloexec.discard(fd)
        self._closing(file)
        self._unref(file)

    def dup(self, oldfd: int, minfd: int = 0, cloexec: bool = False,
            limit: int = NOFILE_DEFAULT[0]) -> int:
        """dup(2) / F_DUPFD(_CLOEXEC): EBADF, EINVAL for minfd >= limit, EMFILE."""
        file = self.get(oldfd)
        if minfd < 0 or minfd >= limit:
            raise SyscallError(errno.EINVAL)
        return self.install(file, cloexec, minfd, limit)

    def dup3(self, oldfd: int, newfd: int, cloexec: bool = False,
             limit: int = NOFILE_DEFAULT[0]) -> int:
        """dup2/dup3 onto ``newfd``: EBADF for a bad oldfd or newfd out of range.

        The caller handles oldfd == newfd (dup2 returns it, dup3 is EINVAL).
        """
        file = self.get(oldfd)
        if newfd < 0 or newfd >= limit:
            raise SyscallError(errno.EBADF)
        return self.install_at(newfd, file, cloexec)

    def close_range(self, first: int, last: int, cloexec: bool = False) -> None:
        """close_range(2)'s core: close, or mark close-on-exec, the open fds in [first, last]."""
        for fd in sorted(fd for fd in self._files if first <= fd <= last):
            if cloexec:
                self._cloexec.add(fd)
            else:
                self.close(fd)

    def close_on_exec(self) -> None:
        """execve(2): close every fd marked close-on-exec."""
        for fd in sorted(self._cloexec):
            self.close(fd)

    def fork(self) -> "FdTable":
        """A copy sharing every open file description (fork without CLONE_FILES)."""
        table = FdTable()
        for fd, file in self._files.items():
            table._set(fd, file, fd in self._cloexec)
        return table

    def close_all(self) -> None:
        """Close everything (process exit)."""
        fastread.detach(self)  # the windows go with the memory, not one by one
        for fd in sorted(self._files):
            self.close(fd)


def _lock_key(file: File):
    """(st_dev, st_ino) of the file behind ``file``, None if it has none."""
    try:
        st = file.stat()
    except Exception:  # a file without a stat (or a host error): no locks on it
        return None
    return (st.st_dev, st.st_ino)


def nofile_limit(process) -> int:
    """RLIMIT_NOFILE's soft value for ``process``: the fd numbers it may use."""
    return process.rlimits.get(RLIMIT_NOFILE, NOFILE_DEFAULT)[0]
