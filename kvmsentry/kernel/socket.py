"""AF_UNIX sockets: stream, datagram and seqpacket (net/unix/af_unix.c, unix(7)).

A ``UnixSocket`` is both Linux's ``struct socket``/``struct sock`` pair
and the open file description socket(2) returns (a File subclass, as
sockfs makes one file per socket). What one socket sends is queued as
``_Skb``s on its peer's receive queue; each skb is charged to its sender
until it is read, and the sender blocks (or gets EAGAIN) while what it
has queued reaches its SO_SNDBUF, as sock_alloc_send_pskb. A listening
socket's receive queue holds the server ends made by connect(2)
("embryos", already connected to their clients) until accept(2) takes
them.

Names: a bound socket has ``addr``, the sockaddr_un bytes getsockname(2)
returns. A filesystem name is a socket inode made in the sentry's VFS
(``kvmsentry.kernel.files.bind_socket_node``), or a host socket file
beneath a rw --mount; ``_BY_INODE`` (``_BY_HOST_FILE``) maps that inode
(the host file's device and inode numbers) to its socket while it is
bound, so connect(2) finds it by path.
Abstract names (a sun_path starting with NUL) live in a per-kernel table.

Waiting: every change of a socket's state wakes its ``wait`` queue and
``POLL_WAITQUEUE`` (as pipes do, kernel/pipe.py), so blocked readers,
writers, accept, connect and poll/select/epoll see it. A signal ends a
wait with ERESTARTSYS (restarted under SA_RESTART, EINTR otherwise), or
EINTR when a SO_RCVTIMEO/SO_SNDTIMEO is set (sock_intr_errno); an expired
timeout is EAGAIN. Everything runs under the BKL.
"""

from __future__ import annotations

import collections
import errno
import stat as _stat
import struct
import time
import weakref

from kvmsentry.abi.structs import Stat
from kvmsentry.kernel import sched
from kvmsentry.kernel.fd import FIONREAD, O_NONBLOCK, O_RDWR, File, FdTable, makedev
from kvmsentry.kernel.pipe import (POLL_WAITQUEUE, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM,
                                   POLLWRBAND, POLLWRNORM, next_ino)
from kvmsentry.kernel.signals import ERESTARTSYS
from kvmsentry.kernel.syscalls.table import SyscallError

# include/linux/socket.h
AF_UNSPEC = 0
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_MAX = 46
# include/linux/net.h
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_SEQPACKET = 5
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000
# include/net/sock.h
RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2
SHUTDOWN_MASK = 3
# include/net/tcp_states.h: the states af_unix uses.
TCP_ESTABLISHED = 1
TCP_CLOSE = 7
TCP_LISTEN = 10
# include/linux/socket.h: msg_flags.
MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_CTRUNC = 0x8
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
MSG_WAITALL = 0x100
MSG_NOSIGNAL = 0x4000
MSG_CMSG_CLOEXEC = 0x40000000
# include/uapi/linux/eventpoll.h
POLLRDHUP = 0x2000

# struct sockaddr_un: sa_family_t sun_family; char sun_path[108].
SUN_PATH_OFFSET = 2
SOCKADDR_UN_SIZE = 110

# Defaults of this machine's sysctls (net.core.*, net.unix.max_dgram_qlen).
WMEM_DEFAULT = 212992
RMEM_DEFAULT = 212992
WMEM_MAX = 4194304
RMEM_MAX = 4194304
MAX_DGRAM_QLEN = 10
SOMAXCONN = 4096
# include/net/sock.h: the smallest SO_SNDBUF/SO_RCVBUF.
SOCK_MIN_SNDBUF = 4608
SOCK_MIN_RCVBUF = 2304
# What one skb costs beyond its data (a rough sk_buff truesize), bytes.
SKB_OVERHEAD = 576
# The most one stream skb carries (UNIX_SKB_FRAGS_SZ plus a head), bytes.
STREAM_SKB_MAX = 32768

# The sockfs superblock's anonymous device (0:8 on the machine this was written on).
SOCKFS_DEV = makedev(0, 8)

# Bound filesystem names: socket inode -> the socket bound to it.
_BY_INODE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# Names bound beneath a rw --mount: (st_dev, st_ino) of the host socket file -> socket.
_BY_HOST_FILE: dict = {}
# Abstract names per kernel (sandbox): kernel -> {name bytes: socket}.
_ABSTRACT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# The abstract namespace of sockets made without a kernel (unit tests).
_ABSTRACT_NO_KERNEL: dict = {}


def abstract_table(kernel) -> dict:
    """The abstract namespace of ``kernel``'s sandbox: {sockaddr bytes: UnixSocket}."""
    if kernel is None:
        return _ABSTRACT_NO_KERNEL
    table = _ABSTRACT.get(kernel)
    if table is None:
        table = _ABSTRACT[kernel] = {}
    return table


def socket_of_inode(inode) -> "UnixSocket | None":
    """The socket bound to filesystem socket ``inode`` (an Inode, or a host
    file's (st_dev, st_ino)), if one still is."""
    if isinstance(inode, tuple):
        return _BY_HOST_FILE.get(inode)
    return _BY_INODE.get(inode)


class _Skb:
    """One message (sk_buff): ``data`` after ``offset`` bytes already read
    (streams), the Files of an SCM_RIGHTS, the sender's (pid, uid, gid)
    and address, and the socket it is charged to (``charge`` bytes)."""

    __slots__ = ("data", "offset", "files", "cred", "addr", "sender", "charge")

    def __init__(self, data: bytes, files, cred, addr, sender, charge: int):
        self.data = data
        self.offset = 0
        self.files = files
        self.cred = cred
        self.addr = addr
        self.sender = sender
        self.charge = charge

    def unread(self) -> int:
        return len(self.data) - self.offset


def release_files(files) -> None:
    """Drop the references an in-flight SCM_RIGHTS held (scm_fp_destroy)."""
    for file in files or ():
        FdTable._unref(file)


class UnixSocket(File):
    """One AF_UNIX socket and its open file description.

    ``type`` is SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET; ``state``
    TCP_CLOSE (unconnected), TCP_LISTEN or TCP_ESTABLISHED; ``peer`` the
    connected socket; ``queue`` the receive queue (skbs, or embryo
    sockets while listening); ``shutdown`` RCV_SHUTDOWN/SEND_SHUTDOWN
    bits; ``err`` the pending SO_ERROR; ``wmem`` the bytes charged for
    what this socket sent and nobody read yet. ``cred`` is the creator's
    (pid, uid, gid); ``peercred`` what SO_PEERCRED reports.
    """

    # write(2) of 0 bytes still sends (an empty datagram; a stream checks its state).
    write_empty = True

    def __init__(self, type_: int, nonblocking: bool, cred: tuple[int, int, int], kernel=None):
        self.ino = next_ino()
        super().__init__(O_RDWR | (O_NONBLOCK if nonblocking else 0), b"socket:[%d]" % self.ino)
        self.type = type_
        self.kernel = kernel
        self.state = TCP_CLOSE
        self.peer: UnixSocket | None = None
        self.queue: collections.deque = collections.deque()
        self.backlog = 0
        self.shutdown = 0
        self.err = 0
        self.wmem = 0
        self.sndbuf = WMEM_DEFAULT
        self.rcvbuf = RMEM_DEFAULT
        self.rcvtimeo: float | None = None
        self.sndtimeo: float | None = None
        self.passcred = False
        self.options: dict[int, int] = {}  # plain SOL_SOCKET ints (SO_REUSEADDR, ...)
        self.addr: bytes | None = None
        self.inode = None
        self.cred = cred
        self.peercred: tuple[int, int, int] | None = None
        self.wait = sched.WaitQueue()
        self.dead = False
        self.uid = cred[1]
        self.gid = cred[2]
        now = time.time_ns()
        self.atime_ns = self.mtime_ns = self.ctime_ns = now

    # -- waking and waiting ----------------------------------------------
    def wake(self) -> None:
        """A change of this socket's state: wake its sleepers and pollers."""
        self.wait.wake_all()
        POLL_WAITQUEUE.wake_all()

    def sleep(self, predicate, timeout: float | None) -> None:
        """Wait on ``wait`` until ``predicate()``: EAGAIN when ``timeout``
        (seconds, None: forever) passes, ERESTARTSYS (EINTR with a timeout)
        for a signal."""
        try:
            done = self.wait.wait(None, predicate, timeout)
        except sched.Interrupted:
            raise SyscallError(ERESTARTSYS if timeout is None else errno.EINTR) from None
        if not done:
            raise SyscallError(errno.EAGAIN)

    # -- naming --------------------------------------------------------------
    def bind_abstract(self, name: bytes) -> None:
        """Take abstract ``name`` (sockaddr bytes from sun_family): EADDRINUSE if taken."""
        table = abstract_table(self.kernel)
        if name in table:
            raise SyscallError(errno.EADDRINUSE)
        table[name] = self
        self.addr = name

    def bind_inode(self, addr: bytes, inode) -> None:
        """Be the socket behind the new filesystem socket ``inode`` (bind(2) by path)."""
        self.addr = addr
        self.inode = inode
        if isinstance(inode, tuple):
            _BY_HOST_FILE[inode] = self
        else:
            _BY_INODE[inode] = self

    def autobind(self) -> None:
        """unix_autobind: an abstract name of five hex digits ("\\0XXXXX")."""
        table = abstract_table(self.kernel)
        n = self.ino & 0xFFFFF
        for _ in range(0x100000):
            name = struct.pack("<H", AF_UNIX) + b"\0%05x" % n
            if name not in table:
                self.bind_abstract(name)
                return
            n = (n + 1) & 0xFFFFF
        raise SyscallError(errno.ENOSPC)

    def sockaddr(self) -> bytes:
        """What getsockname reports: the bound address, or just sun_family."""
        return self.addr if self.addr is not None else struct.pack("<H", AF_UNIX)

    # -- connecting ------------------------------------------------------------
    def listen(self, backlog: int, cred) -> None:
        """unix_listen: EOPNOTSUPP for datagrams, EINVAL unbound or connected."""
        if self.type == SOCK_DGRAM:
            raise SyscallError(errno.EOPNOTSUPP)
        if self.addr is None or self.state not in (TCP_CLOSE, TCP_LISTEN):
            raise SyscallError(errno.EINVAL)
        self.backlog = backlog
        if self.state != TCP_LISTEN:
            self.state = TCP_LISTEN
            self.peercred = cred
        self.wake()

    def _queue_full(self) -> bool:
        """unix_recvq_full: more queued than the backlog allows."""
        return len(self.queue) > self.backlog

    def connect_stream(self, other: "UnixSocket", cred) -> None:
        """unix_stream_connect to listening ``other``: this socket and a new
        embryo on ``other``'s queue become each other's peers.

        EISCONN when connected, EINVAL when listening, ECONNREFUSED when
        ``other`` does not listen (or closes while we wait), EAGAIN for a
        full backlog when nonblocking, ERESTARTSYS for a signal.
        """
        if self.state == TCP_ESTABLISHED:
            raise SyscallError(errno.EISCONN)
        if self.state == TCP_LISTEN:
            raise SyscallError(errno.EINVAL)
        while True:
            if other.dead or other.state != TCP_LISTEN or other.shutdown & RCV_SHUTDOWN:
                raise SyscallError(errno.ECONNREFUSED)
            if not other._queue_full():
                break
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)
            try:
                other.wait.wait(None, lambda: other.dead or other.state != TCP_LISTEN
                                or not other._queue_full(), self.sndtimeo)
            except sched.Interrupted:
                raise SyscallError(ERESTARTSYS) from None
            if self.state == TCP_ESTABLISHED:
                raise SyscallError(errno.EISCONN)
        embryo = UnixSocket(self.type, False, other.cred, other.kernel)
        embryo.state = TCP_ESTABLISHED
        embryo.addr = other.addr
        embryo.peer = self
        embryo.peercred = cred
        embryo.passcred = other.passcred
        embryo.sndbuf, embryo.rcvbuf = other.sndbuf, other.rcvbuf
        self.peer = embryo
        self.state = TCP_ESTABLISHED
        self.peercred = other.peercred
        other.queue.append(embryo)
        other.wake()
        self.wake()

    def accept(self) -> "UnixSocket":
        """unix_accept: the oldest connection. EOPNOTSUPP for datagrams,
        EINVAL unless listening, EAGAIN when nonblocking and none waits,
        EINVAL when none waits once shut for reading (shutdown(2) wakes a
        blocked accept: skb_recv_datagram's wait ends at RCV_SHUTDOWN)."""
        if self.type == SOCK_DGRAM:
            raise SyscallError(errno.EOPNOTSUPP)
        if self.state != TCP_LISTEN:
            raise SyscallError(errno.EINVAL)
        if not self.queue:
            if self.nonblocking:
                raise SyscallError(errno.EAGAIN)
            self.sleep(lambda: bool(self.queue) or self.state != TCP_LISTEN
                       or bool(self.shutdown & RCV_SHUTDOWN), self.rcvtimeo)
            if self.state != TCP_LISTEN or not self.queue:
                raise SyscallError(errno.EINVAL)
        embryo = self.queue.popleft()
        self.wake()  # a connect waiting for room in the backlog
        return embryo

    def connect_dgram(self, other: "UnixSocket | None") -> None:
        """unix_dgram_connect: send to ``other`` by default (None: AF_UNSPEC,
        disconnect). EPERM when ``other`` is connected to a third socket."""
        if other is None:
            self.peer = None
            self.state = TCP_CLOSE
            self.wake()
            return
        if other.type != self.type:
            raise SyscallError(errno.EPROTOTYPE)
        if other is not self and other.peer is not None and other.peer is not self:
            raise SyscallError(errno.EPERM)
        self.peer = other
        self.state = TCP_ESTABLISHED
        self.wake()

    def shut(self, how: int) -> None:
        """shutdown(2): ``how`` SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2); EINVAL
        otherwise. A connected stream or seqpacket peer learns the mirror image."""
        if how < 0 or how > 2:
            raise SyscallError(errno.EINVAL)
        mode = how + 1
        self.shutdown |= mode
        self.wake()
        peer = self.peer
        if peer is not None and self.type != SOCK_DGRAM:
            if mode & RCV_SHUTDOWN:
                peer.shutdown |= SEND_SHUTDOWN
            if mode & SEND_SHUTDOWN:
                peer.shutdown |= RCV_SHUTDOWN
            peer.wake()

    # -- sending -------------------------------------------------------------
    def _uncharge(self, skb: _Skb) -> None:
        sender = skb.sender
        if sender is not None:
            sender.wmem -= skb.charge
            skb.sender = None
            sender.wake()

    def sendmsg(self, data: bytes, flags: int, to: "UnixSocket | None", files, cred,
                explicit_addr: bool) -> int:
        """Send ``data`` (unix_stream_sendmsg / unix_dgram_sendmsg); bytes sent.

        ``to`` is the target of a sendto on a datagram socket (``explicit_addr``
        when an address was given at all), ``files`` the Files of an
        SCM_RIGHTS (references already taken; dropped here on failure),
        ``cred`` the sender's (pid, uid, gid). EPIPE (the caller raises
        SIGPIPE unless MSG_NOSIGNAL), EAGAIN, ENOTCONN, EISCONN, EOPNOTSUPP,
        EMSGSIZE, ECONNREFUSED, ERESTARTSYS as Linux.
        """
        try:
            if self.type == SOCK_STREAM:
                return self._send_stream(data, flags, files, cred, explicit_addr)
            return self._send_dgram(data, flags, to, files, cred, explicit_addr)
        except BaseException:
            if files:
                release_files(files)
            raise

    def _nonblock(self, flags: int) -> bool:
        return self.nonblocking or bool(flags & MSG_DONTWAIT)

    def _wait_wmem(self, flags: int, sent: int) -> bool:
        """Wait for room under SO_SNDBUF (sock_wait_for_wmem); False to stop
        with a short count. Peer trouble ends it too (the caller checks)."""
        if self._nonblock(flags):
            if sent:
                return False
            raise SyscallError(errno.EAGAIN)
        peer = self.peer
        try:
            self.sleep(lambda: self.wmem < self.sndbuf or self.shutdown & SEND_SHUTDOWN
                       or peer is None or peer.dead or peer.shutdown & RCV_SHUTDOWN
                       or self.err != 0, self.sndtimeo)
        except SyscallError:
            if sent:
                return False
            raise
        return True

    def _send_stream(self, data, flags, files, cred, explicit_addr) -> int:
        if explicit_addr:
            raise SyscallError(errno.EISCONN if self.state == TCP_ESTABLISHED
                               else errno.EOPNOTSUPP)
        peer = self.peer
        if peer is None or self.state != TCP_ESTABLISHED:
            raise SyscallError(errno.ENOTCONN)
        if self.shutdown & SEND_SHUTDOWN:
            raise SyscallError(errno.EPIPE)
        total = len(data)
        sent = 0
        chunk_max = max(min((self.sndbuf >> 1) - 64, STREAM_SKB_MAX), 1)
        while sent < total or (total == 0 and files and not sent):
            if peer.dead or peer.shutdown & RCV_SHUTDOWN or self.shutdown & SEND_SHUTDOWN:
                if sent:
                    return sent
                raise SyscallError(errno.EPIPE)
            if self.wmem >= self.sndbuf:
                if not self._wait_wmem(flags, sent):
                    return sent
                continue
            take = min(total - sent, chunk_max)
            skb = _Skb(bytes(data[sent:sent + take]), files, cred, self.addr, self,
                       take + SKB_OVERHEAD)
            files = None
            self.wmem += skb.charge
            peer.queue.append(skb)
            peer.wake()
            sent += take
            if total == 0:
                break
        return sent

    def _send_dgram(self, data, flags, to, files, cred, explicit_addr) -> int:
        if self.type == SOCK_SEQPACKET:  # unix_seqpacket_sendmsg: connected, no address
            if self.state != TCP_ESTABLISHED:
                raise SyscallError(errno.ENOTCONN)
            to = None
        if len(data) > self.sndbuf - 32:
            raise SyscallError(errno.EMSGSIZE)
        while True:
            other = to if to is not None else self.peer
            if other is None:
                raise SyscallError(errno.ENOTCONN)
            if self.shutdown & SEND_SHUTDOWN:
                raise SyscallError(errno.EPIPE)
            if other.dead:
                if self.type == SOCK_SEQPACKET:
                    raise SyscallError(errno.EPIPE)
                if self.peer is other:  # forget it: the next send is ENOTCONN
                    self.peer = None
                    self.state = TCP_CLOSE
                raise SyscallError(errno.ECONNREFUSED)
            if other is not self and other.peer is not None and other.peer is not self:
                raise SyscallError(errno.EPERM)
            if other.shutdown & RCV_SHUTDOWN:
                raise SyscallError(errno.EPIPE)
            if self.wmem >= self.sndbuf:
                self._wait_wmem(flags, 0)
                continue
            if (self.type == SOCK_DGRAM and other is not self and other.peer is not self
                    and len(other.queue) > MAX_DGRAM_QLEN):
                if self._nonblock(flags):
                    raise SyscallError(errno.EAGAIN)
                try:
                    other.wait.wait(None, lambda: other.dead or len(other.queue) <= MAX_DGRAM_QLEN,
                                    self.sndtimeo)
                except sched.Interrupted:
                    raise SyscallError(ERESTARTSYS if self.sndtimeo is None
                                       else errno.EINTR) from None
                continue
            break
        skb = _Skb(bytes(data), files, cred, self.addr, self, len(data) + SKB_OVERHEAD)
        self.wmem += skb.charge
        other.queue.append(skb)
        other.wake()
        return len(data)

    # -- receiving -------------------------------------------------------------
    def recvmsg(self, n: int, flags: int):
        """Receive up to ``n`` bytes: returns (data, msg_flags, files, creds, addr).

        ``files`` are the Files of SCM_RIGHTS taken (their in-flight
        references handed to the caller, who installs them), ``creds``
        the sender's (pid, uid, gid) of the first skb read and ``addr``
        its address (None when unbound). For datagrams and seqpackets one
        message, MSG_TRUNC in msg_flags when cut (``data`` is then cut
        too; the caller reports the full length for MSG_TRUNC). EINVAL
        for an unconnected stream, ENOTCONN for an unconnected seqpacket,
        EAGAIN, a pending SO_ERROR, ERESTARTSYS.
        """
        if self.type == SOCK_STREAM:
            return self._recv_stream(n, flags)
        return self._recv_dgram(n, flags)

    def _take_error(self) -> int:
        err, self.err = self.err, 0
        return err

    def _wait_data(self, flags: int) -> None:
        if self._nonblock(flags):
            raise SyscallError(errno.EAGAIN)
        self.sleep(lambda: bool(self.queue) or self.shutdown & RCV_SHUTDOWN or self.err != 0,
                   self.rcvtimeo)

    def _recv_stream(self, n: int, flags: int):
        if self.state != TCP_ESTABLISHED:
            raise SyscallError(errno.EINVAL)
        peek = bool(flags & MSG_PEEK)
        target = n if flags & MSG_WAITALL else 1
        pieces: list[bytes] = []
        copied = 0
        files = None
        creds = addr = None
        index = 0  # MSG_PEEK walks the queue without taking
        while copied < n:
            queue = self.queue
            skb = queue[index] if index < len(queue) else None
            if skb is None:
                if copied >= target:
                    break
                err = self._take_error()
                if err:
                    if copied:
                        break
                    raise SyscallError(err)
                if self.shutdown & RCV_SHUTDOWN:
                    break
                try:
                    self._wait_data(flags)
                except SyscallError:
                    if copied:
                        break
                    raise
                continue
            if self.passcred and creds is not None and skb.cred != creds:
                break  # never glue messages from different writers
            if creds is None:
                creds, addr = skb.cred, skb.addr
            take = min(skb.unread(), n - copied)
            pieces.append(skb.data[skb.offset:skb.offset + take])
            copied += take
            if peek:
                index += 1
            else:
                skb.offset += take
                if not skb.unread():
                    queue.popleft()
                    self._uncharge(skb)
            if skb.files:
                files = skb.files
                if not peek:
                    skb.files = None
                break
        return b"".join(pieces), 0, files, creds, addr

    def _recv_dgram(self, n: int, flags: int):
        if self.type == SOCK_SEQPACKET and self.state != TCP_ESTABLISHED:
            raise SyscallError(errno.ENOTCONN)
        while not self.queue:
            err = self._take_error()
            if err:
                raise SyscallError(err)
            if self.shutdown & RCV_SHUTDOWN:
                return b"", 0, None, None, None
            self._wait_data(flags)
        skb = self.queue[0]
        msg_flags = 0
        data = skb.data
        if len(data) > n:
            msg_flags |= MSG_TRUNC
        files = skb.files
        if flags & MSG_PEEK:
            files = skb.files  # Linux dups the peeked fds; the caller does not take ours
        else:
            self.queue.popleft()
            skb.files = None
            self._uncharge(skb)
            self.wake()
        return data, msg_flags, files, skb.cred, skb.addr

    # -- File ------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        data, _, files, _, _ = self.recvmsg(n, 0)
        if files:
            release_files(files)  # read(2) drops passed fds, as a recvmsg without room
        return data[:n]

    def write(self, data) -> int:
        """write(2) and friends: send with no flags. EPIPE raises SIGPIPE
        (the dispatcher's) for streams only, as Linux."""
        cred = self.cred
        task = sched.current()
        if task is not None:
            creds = task.process.creds
            cred = (task.process.pid, creds.uid, creds.gid)
        try:
            return self.sendmsg(data, MSG_DONTWAIT if self.nonblocking else 0, None, None,
                                cred, False)
        except SyscallError as e:
            if e.errno == errno.EPIPE and self.type != SOCK_STREAM and task is not None:
                task.epipe_quiet = True  # seen by Kernel._finish_syscall
            raise

    def stat(self) -> Stat:
        """fstat(2) of a socket: a sockfs inode, S_IFSOCK 0777."""
        a, m, c = self.atime_ns, self.mtime_ns, self.ctime_ns
        return Stat(
            st_dev=SOCKFS_DEV, st_ino=self.ino, st_nlink=1,
            st_mode=_stat.S_IFSOCK | 0o777, st_uid=self.uid, st_gid=self.gid,
            st_blksize=4096,
            st_atime=a // 10**9, st_atime_nsec=a % 10**9,
            st_mtime=m // 10**9, st_mtime_nsec=m % 10**9,
            st_ctime=c // 10**9, st_ctime_nsec=c % 10**9,
        )

    def inq(self) -> int:
        """unix_inq_len: unread bytes (streams and seqpackets: all; datagrams: the first)."""
        if self.state == TCP_LISTEN:
            raise SyscallError(errno.EINVAL)
        if self.type == SOCK_DGRAM:
            return len(self.queue[0].data) if self.queue else 0
        return sum(skb.unread() for skb in self.queue)

    def ioctl(self, task, cmd: int, arg: int) -> int:
        """FIONREAD (SIOCINQ, ``inq``) and TIOCOUTQ (SIOCOUTQ: the bytes
        charged for what this socket sent and nobody read, skb overhead
        included as Linux's sk_wmem_alloc) as an int at ``arg``; other
        commands ENOTTY (sock_do_ioctl)."""
        if cmd == FIONREAD:
            value = self.inq()
        elif cmd == TIOCOUTQ:
            value = self.wmem
        else:
            raise SyscallError(errno.ENOTTY)
        task.mm.copy_out(arg, struct.pack("<i", min(value, 0x7FFFFFFF)))
        return 0

    def _writable(self) -> bool:
        """unix_writable: not listening and at most a quarter of SO_SNDBUF in use."""
        return self.state != TCP_LISTEN and (self.wmem << 2) <= self.sndbuf

    def poll_events(self) -> int:
        """Readiness as unix_poll (streams) and unix_dgram_poll."""
        mask = 0
        shutdown = self.shutdown
        if self.err:
            mask |= POLLERR
        if shutdown == SHUTDOWN_MASK:
            mask |= POLLHUP
        if shutdown & RCV_SHUTDOWN:
            mask |= POLLRDHUP | POLLIN | POLLRDNORM
        if self.queue:
            mask |= POLLIN | POLLRDNORM
        if self.type != SOCK_DGRAM and self.state == TCP_CLOSE:
            mask |= POLLHUP
        writable = self._writable()
        if writable and self.type != SOCK_STREAM:
            other = self.peer
            if (other is not None and other.peer is not self and self.type == SOCK_DGRAM
                    and len(other.queue) > MAX_DGRAM_QLEN):
                writable = False
        if writable:
            mask |= POLLOUT | POLLWRNORM | POLLWRBAND
        return mask

    def release(self) -> None:
        """unix_release_sock: the last fd closed."""
        if self.closed:
            return
        self.closed = True
        self.dead = True
        self.shutdown = SHUTDOWN_MASK
        if self.addr is not None and self.inode is None:
            table = abstract_table(self.kernel)
            if table.get(self.addr) is self:
                del table[self.addr]
        if self.inode is not None and socket_of_inode(self.inode) is self:
            if isinstance(self.inode, tuple):
                del _BY_HOST_FILE[self.inode]
            else:
                del _BY_INODE[self.inode]
        peer = self.peer
        self.peer = None
        self.state = TCP_CLOSE
        if peer is not None and self.type != SOCK_DGRAM:
            peer.shutdown = SHUTDOWN_MASK
            if self.queue:
                peer.err = errno.ECONNRESET
            peer.wake()
        queue = self.queue
        self.queue = collections.deque()
        for item in queue:
            if isinstance(item, UnixSocket):  # an embryo nobody accepted
                item.release_embryo()
            else:
                release_files(item.files)
                item.files = None
                self._uncharge(item)
        self.wake()

    def release_embryo(self) -> None:
        """A connection still on a closed listener's queue: its client sees ECONNRESET."""
        peer = self.peer
        self.release()
        if peer is not None:
            peer.err = errno.ECONNRESET
            peer.wake()


# include/uapi/asm-generic/ioctls.h: SIOCOUTQ is TIOCOUTQ.
TIOCOUTQ = 0x5411


def make_socketpair(type_: int, nonblocking: bool, cred, kernel) -> tuple[UnixSocket, UnixSocket]:
    """socketpair(2): two connected sockets of ``type_`` (unix_socketpair)."""
    a = UnixSocket(type_, nonblocking, cred, kernel)
    b = UnixSocket(type_, nonblocking, cred, kernel)
    a.peer, b.peer = b, a
    a.peercred = b.peercred = cred
    a.state = b.state = TCP_ESTABLISHED
    return a, b
