"""Test doubles shared by the unit tests (tests/unit is on sys.path under pytest)."""

import errno

from kvmsentry.abi.syscall_64 import NUMBERS
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.syscalls.table import SyscallError, entry

U64 = (1 << 64) - 1


class FakeMM:
    """Guest memory: a bytearray at ``base``; GuestFault outside it.

    ``alloc`` hands out guest buffers (bump allocation, 16-byte aligned).
    """

    def __init__(self, base=0x400000, size=4 << 20):
        self.base = base
        self.mem = bytearray(size)
        self.brk = base

    def _off(self, gva, n):
        if gva < self.base or gva + n > self.base + len(self.mem):
            raise GuestFault(gva)
        return gva - self.base

    def copy_in(self, gva, length):
        off = self._off(gva, length)
        return bytes(self.mem[off:off + length])

    def copy_out(self, gva, data):
        off = self._off(gva, len(data))
        self.mem[off:off + len(data)] = data

    def read_cstring(self, gva, limit=4096):
        off = self._off(gva, 1)
        end = self.mem.find(b"\0", off, off + limit)
        if end < 0:
            if off + limit > len(self.mem):
                raise GuestFault(self.base + len(self.mem))
            raise SyscallError(errno.ENAMETOOLONG)
        return bytes(self.mem[off:end])

    def find_vma(self, gva):
        """No VMAs: the memory is private (a futex's key is (mm, address))."""
        return None

    def alloc(self, n, data=b""):
        gva = self.brk
        self.brk += (max(n, len(data)) + 15) & ~15
        if data:
            self.copy_out(gva, data)
        return gva

    def cstr(self, s):
        return self.alloc(len(s) + 1, s + b"\0")


def dispatch(task, name, *args):
    """Call syscall ``name``'s handler as the dispatcher does: result or -errno."""
    row = entry(NUMBERS[name])
    assert row.handler is not None, name
    args = [a & U64 for a in args] + [0] * (row.nargs - len(args))
    try:
        return row.handler(task, *args)
    except SyscallError as e:
        return -e.errno
    except GuestFault:
        return -errno.EFAULT
