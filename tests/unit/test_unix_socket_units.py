"""AF_UNIX sockets on fake tasks, through the syscall table (no KVM).

Nonblocking behaviour, readiness bits, the wake-up of a blocked recv by
another thread's send, SCM_RIGHTS between two fd tables, and the
sockaddr_un checks. The native comparisons are tests/integration/
test_unix_sockets.py.
"""

import errno
import struct
import threading
import time

import kvmsentry.kernel.syscalls.fs  # noqa: F401 - registers the handlers
import kvmsentry.kernel.syscalls.pipe  # noqa: F401
import kvmsentry.kernel.syscalls.socket  # noqa: F401
from kvmsentry.kernel import sched
from kvmsentry.kernel import socket as unix
from kvmsentry.kernel.fd import FdTable
from kvmsentry.kernel.pipe import POLLERR, POLLHUP, POLLIN, POLLOUT
from kvmsentry.kernel.syscalls.socket import unix_addr
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.task import Process, Task

import pytest

from fakes import FakeMM, dispatch

AF_UNIX, SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 1, 2, 5
SOCK_NONBLOCK = 0o4000
MSG_PEEK, MSG_DONTWAIT, MSG_TRUNC = 0x2, 0x40, 0x20
SOL_SOCKET, SCM_RIGHTS = 1, 1


class FakeKernel:
    def __init__(self):
        self.notes = []
        self.signals = []
        self.processes = {}

    def note_once(self, key, message):
        self.notes.append(message)

    def send_signal(self, process, signo, task=None):
        self.signals.append(signo)


def new_task(kernel=None, fds=None):
    return Task(tid=1, process=Process(), mm=FakeMM(), fds=fds or FdTable(),
                kernel=kernel or FakeKernel())


def call(task, name, *args):
    with sched.BKL:
        sched.set_current(task)
        try:
            return dispatch(task, name, *args)
        finally:
            sched.set_current(None)


def pair(task, type_=SOCK_STREAM):
    sv = task.mm.alloc(8)
    assert call(task, "socketpair", AF_UNIX, type_, 0, sv) == 0
    return struct.unpack("<ii", task.mm.copy_in(sv, 8))


def send(task, fd, data, flags=0):
    return call(task, "sendto", fd, task.mm.alloc(len(data), data), len(data), flags, 0, 0)


def recv(task, fd, n, flags=0):
    buf = task.mm.alloc(n)
    got = call(task, "recvfrom", fd, buf, n, flags, 0, 0)
    return got if got < 0 else task.mm.copy_in(buf, min(got, n))


def test_stream_pair_bytes_peek_and_eagain():
    task = new_task()
    a, b = pair(task)
    assert send(task, a, b"ab") == 2
    assert send(task, a, b"cde") == 3
    assert recv(task, b, 10, MSG_PEEK) == b"abcde"
    assert recv(task, b, 4) == b"abcd"
    assert recv(task, b, 10) == b"e"
    assert recv(task, b, 10, MSG_DONTWAIT) == -errno.EAGAIN


def test_dgram_boundaries_and_trunc():
    task = new_task()
    a, b = pair(task, SOCK_DGRAM)
    send(task, a, b"hello")
    send(task, a, b"world!")
    assert recv(task, b, 2) == b"he"  # the rest of the datagram is gone
    buf = task.mm.alloc(2)
    assert call(task, "recvfrom", b, buf, 2, MSG_TRUNC, 0, 0) == 6  # the full length
    assert task.mm.copy_in(buf, 2) == b"wo"


def test_readiness_and_close():
    task = new_task()
    a, b = pair(task)
    sa, sb = task.fds.get(a), task.fds.get(b)
    assert sb.poll_events() & (POLLIN | POLLOUT) == POLLOUT
    send(task, a, b"x")
    assert sb.poll_events() & POLLIN
    call(task, "close", b)  # with unread data: the peer is reset
    events = sa.poll_events()
    assert events & POLLHUP and events & POLLERR
    assert recv(task, a, 1) == -errno.ECONNRESET
    assert recv(task, a, 1) == b""
    assert send(task, a, b"y") == -errno.EPIPE
    assert task.kernel.signals == [13]  # SIGPIPE
    assert send(task, a, b"y", 0x4000) == -errno.EPIPE  # MSG_NOSIGNAL
    assert task.kernel.signals == [13]


def test_full_stream_buffer():
    task = new_task()
    a, b = pair(task, SOCK_STREAM | SOCK_NONBLOCK)
    sent = 0
    while True:
        n = send(task, a, b"z" * 65536)
        if n < 0:
            assert n == -errno.EAGAIN
            break
        sent += n
    assert sent >= unix.WMEM_DEFAULT // 2
    assert not task.fds.get(a).poll_events() & POLLOUT
    got = 0
    while True:
        data = recv(task, b, 65536)
        if data == -errno.EAGAIN:
            break
        got += len(data)
    assert got == sent
    assert task.fds.get(a).poll_events() & POLLOUT


def test_blocked_recv_woken_by_send():
    task = new_task()
    a, b = pair(task)
    result = []
    reader = new_task(task.kernel, task.fds)
    thread = threading.Thread(target=lambda: result.append(recv(reader, b, 10)), daemon=True)
    thread.start()
    end = time.monotonic() + 5
    while reader.waiting_on is None:
        assert time.monotonic() < end, "recv never blocked"
        time.sleep(0.001)
    assert send(task, a, b"wake") == 4
    thread.join(5)
    assert result == [b"wake"]


def test_scm_rights_between_fd_tables():
    kernel = FakeKernel()
    sender = new_task(kernel)
    a, b = pair(sender)
    fds = sender.mm.alloc(8)
    assert call(sender, "pipe2", fds, 0) == 0
    r, w = struct.unpack("<ii", sender.mm.copy_in(fds, 8))
    receiver = new_task(kernel, sender.fds.fork())
    cmsg = struct.pack("<Qiii4x", 20, SOL_SOCKET, SCM_RIGHTS, w)
    iov = sender.mm.alloc(16)
    sender.mm.copy_out(iov, struct.pack("<QQ", sender.mm.alloc(1, b"F"), 1))
    control = sender.mm.alloc(len(cmsg), cmsg)
    msg = sender.mm.alloc(56)
    sender.mm.copy_out(msg, struct.pack("<QI4xQQQQI4x", 0, 0, iov, 1, control, len(cmsg), 0))
    assert call(sender, "sendmsg", a, msg, 0) == 1
    call(sender, "close", w)
    pipe_file = sender.fds.get(r)
    rbuf = receiver.mm.alloc(1)
    riov = receiver.mm.alloc(16)
    receiver.mm.copy_out(riov, struct.pack("<QQ", rbuf, 1))
    rcontrol = receiver.mm.alloc(24)
    rmsg = receiver.mm.alloc(56)
    receiver.mm.copy_out(rmsg, struct.pack("<QI4xQQQQI4x", 0, 0, riov, 1, rcontrol, 24, 0))
    assert call(receiver, "recvmsg", b, rmsg, 0) == 1
    length, level, type_, newfd = struct.unpack("<Qiii", receiver.mm.copy_in(rcontrol, 20))
    assert (length, level, type_) == (20, SOL_SOCKET, SCM_RIGHTS)
    assert receiver.fds.get(newfd).pipe is pipe_file.pipe
    controllen, = struct.unpack("<Q", receiver.mm.copy_in(rmsg + 40, 8))
    assert controllen == 24


@pytest.mark.parametrize("raw, err", [
    (b"\x01\x00", errno.EINVAL),                      # sun_family alone (bind autobinds)
    (b"\x02\x00abc\0", errno.EINVAL),                 # another family
    (b"\x01\x00" + b"p" * 109, errno.EINVAL),         # longer than sockaddr_un
])
def test_unix_addr_rejects(raw, err):
    with pytest.raises(SyscallError) as e:
        unix_addr(raw)
    assert e.value.errno == err


def test_unix_addr_forms():
    assert unix_addr(b"\x01\x00/x\0junk") == (b"\x01\x00/x\0", b"/x")
    assert unix_addr(b"\x01\x00\0abs\0") == (b"\x01\x00\0abs\0", None)
    assert unix_addr(b"\x01\x00" + b"p" * 108) == (b"\x01\x00" + b"p" * 108 + b"\0", b"p" * 108)


def test_other_families_are_named_once():
    task = new_task()
    assert call(task, "socket", 2, SOCK_STREAM, 0) == -errno.EAFNOSUPPORT
    assert "family 2" in task.kernel.notes[0]
    assert call(task, "socket", AF_UNIX, SOCK_SEQPACKET, 0) >= 0
