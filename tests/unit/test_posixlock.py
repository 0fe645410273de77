"""fcntl record locks (kvmsentry.kernel.vfs.posixlock; fs.py's fcntl)."""

import errno

import pytest

from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import FdTable
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.vfs import posixlock as PL

KEY = (1, 99)


@pytest.fixture(autouse=True)
def clean():
    PL._locks.clear()
    with sched.BKL:  # wake_all needs the kernel lock, as in a syscall
        yield
    PL._locks.clear()


def lock(owner, kind, start, end, pid=1, wait=False):
    PL.set_lock(KEY, PL.Lock(owner, kind, start, end, pid), wait)


def test_split_merge_and_unlock():
    a = object()
    lock(a, PL.F_WRLCK, 0, 99)
    lock(a, PL.F_UNLCK, 10, 19)
    assert PL.owned(KEY, a) == [(PL.F_WRLCK, 0, 9), (PL.F_WRLCK, 20, 99)]
    lock(a, PL.F_RDLCK, 50, 59)
    assert PL.owned(KEY, a) == [(PL.F_WRLCK, 0, 9), (PL.F_WRLCK, 20, 49),
                                (PL.F_RDLCK, 50, 59), (PL.F_WRLCK, 60, 99)]
    lock(a, PL.F_WRLCK, 10, 59)
    assert PL.owned(KEY, a) == [(PL.F_WRLCK, 0, 99)]
    lock(a, PL.F_UNLCK, 0, PL.OFFSET_MAX)
    assert PL._locks == {}


def test_conflicts_and_getlk():
    a, b = object(), object()
    lock(a, PL.F_RDLCK, 0, 9, pid=5)
    lock(b, PL.F_RDLCK, 5, 15, pid=6)  # read locks share
    with pytest.raises(SyscallError) as info:
        lock(b, PL.F_WRLCK, 9, 9, pid=6)
    assert info.value.errno == errno.EAGAIN
    got = PL.get(KEY, PL.Lock(b, PL.F_WRLCK, 0, PL.OFFSET_MAX, 6))
    assert (got.type, got.start, got.end, got.pid) == (PL.F_RDLCK, 0, 9, 5)
    assert PL.get(KEY, PL.Lock(b, PL.F_WRLCK, 10, 20, 6)) is None
    assert PL.get(KEY, PL.Lock(a, PL.F_WRLCK, 0, 4, 5)) is None  # its own lock


def test_deadlock_detected():
    a, b = object(), object()
    lock(a, PL.F_WRLCK, 0, 0)
    lock(b, PL.F_WRLCK, 1, 1)
    PL._waiting[b] = (KEY, PL.Lock(b, PL.F_WRLCK, 0, 0, 2))  # b waits for a
    try:
        with pytest.raises(SyscallError) as info:
            lock(a, PL.F_WRLCK, 1, 1, wait=True)
        assert info.value.errno == errno.EDEADLK
    finally:
        PL._waiting.clear()


class _File:
    refs = 0
    flock_key = None

    def stat(self):
        import types
        return types.SimpleNamespace(st_dev=KEY[0], st_ino=KEY[1])

    def release(self):
        pass


def test_close_of_any_fd_drops_the_tables_locks():
    table = FdTable()
    f1, f2 = _File(), _File()
    fd1 = table.install(f1)
    fd2 = table.install(f2)
    lock(table, PL.F_WRLCK, 0, 10)
    other = object()
    lock(other, PL.F_RDLCK, 20, 30)
    table.close(fd2)  # another description of the same file
    assert PL.owned(KEY, table) == []
    assert PL.owned(KEY, other) == [(PL.F_RDLCK, 20, 30)]
    table.close(fd1)
