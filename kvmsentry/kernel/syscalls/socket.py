"""Socket syscalls (net/socket.c) for AF_UNIX sockets (kvmsentry.kernel.socket).

Decodes the guest's arguments (struct sockaddr_un, struct msghdr, its
iovecs and control messages, struct mmsghdr) and hands them to the
socket. Other address families are EAFNOSUPPORT, named once on stderr
(the network is not emulated), except glibc's probe for nscd, which is
an AF_UNIX connect that finds no /var/run/nscd/socket (ENOENT), as on a
machine without nscd. A call on a fd that is not a socket is ENOTSOCK
(EBADF first, as sockfd_lookup).
"""

from __future__ import annotations

import errno
import struct
import time

from kvmsentry.kernel import socket as unix
from kvmsentry.kernel.fd import nofile_limit
from kvmsentry.kernel.files import (AT_FDCWD, bind_socket_node, do_unlink, lookup_socket_node,
                                    to_int)
from kvmsentry.kernel.mm import GuestFault
from kvmsentry.kernel.socket import (AF_INET, AF_INET6, AF_MAX, AF_UNIX, AF_UNSPEC,
                                     MSG_CMSG_CLOEXEC, MSG_CTRUNC, MSG_DONTWAIT, MSG_NOSIGNAL,
                                     MSG_OOB, MSG_PEEK, MSG_TRUNC, SOCK_CLOEXEC, SOCK_DGRAM,
                                     SOCK_NONBLOCK, SOCK_RAW, SOCK_SEQPACKET, SOCK_STREAM,
                                     SOCK_TYPE_MASK, SUN_PATH_OFFSET, SOCKADDR_UN_SIZE,
                                     TCP_LISTEN, UnixSocket, make_socketpair)
from kvmsentry.kernel.syscalls.fs import CHUNK, TASK_SIZE_MAX, UIO_MAXIOV, _read_iovec
from kvmsentry.kernel.syscalls.poll import (NSEC_PER_SEC, TIMESPEC, TIMEVAL, _read_timespec,
                                            _remaining_ns)
from kvmsentry.kernel.syscalls.table import SyscallError, syscall
from kvmsentry.kernel.task import CAP_SETGID, CAP_SETUID

CAP_SYS_ADMIN = 21  # include/uapi/linux/capability.h
# /proc/sys/net/core/optmem_max (Linux 6.9's default, 128 KiB): the largest
# msg_controllen sendmsg(2) takes (ENOBUFS beyond, net/socket.c).
OPTMEM_MAX = 131072

# struct sockaddr_storage
SOCKADDR_STORAGE_SIZE = 128
# struct msghdr (x86-64): name, namelen, iov, iovlen, control, controllen, flags.
MSGHDR = struct.Struct("<QI4xQQQQI4x")
MSG_CONTROLLEN_OFFSET = 40
MSG_FLAGS_OFFSET = 48
MSG_NAMELEN_OFFSET = 8
# struct mmsghdr: a msghdr and the unsigned msg_len.
MMSGHDR_SIZE = 64
MSG_LEN_OFFSET = 56
# struct cmsghdr: size_t cmsg_len; int cmsg_level; int cmsg_type; then data, 8-aligned.
CMSGHDR = struct.Struct("<Qii")
SOL_SOCKET = 1
SCM_RIGHTS = 1
SCM_CREDENTIALS = 2
SCM_MAX_FD = 253  # include/net/scm.h
UCRED = struct.Struct("<iII")  # struct ucred: pid, uid, gid
INT = struct.Struct("<i")
INT_MAX = 0x7FFFFFFF
MSG_WAITFORONE = 0x10000

# include/uapi/asm-generic/socket.h
SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_DONTROUTE = 5
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_OOBINLINE = 10
SO_NO_CHECK = 11
SO_PRIORITY = 12
SO_LINGER = 13
SO_REUSEPORT = 15
SO_PASSCRED = 16
SO_PEERCRED = 17
SO_RCVLOWAT = 18
SO_SNDLOWAT = 19
SO_RCVTIMEO = 20
SO_SNDTIMEO = 21
SO_ACCEPTCONN = 30
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_PASSSEC = 34
SO_PROTOCOL = 38
SO_DOMAIN = 39
# Options kept as plain ints (set and read back, no effect): option -> default.
_PLAIN_OPTIONS = {SO_REUSEADDR: 0, SO_DONTROUTE: 0, SO_BROADCAST: 0, SO_KEEPALIVE: 0,
                  SO_OOBINLINE: 0, SO_NO_CHECK: 0, SO_PRIORITY: 0, SO_RCVLOWAT: 1,
                  SO_PASSSEC: 0}

_U32 = 0xFFFFFFFF


# -- helpers -------------------------------------------------------------------

def sock_of(task, fd: int) -> UnixSocket:
    """The socket behind ``fd``: EBADF, ENOTSOCK (sockfd_lookup)."""
    file = task.fds.get(to_int(fd))
    if not isinstance(file, UnixSocket):
        raise SyscallError(errno.ENOTSOCK)
    return file


def _cred(task) -> tuple[int, int, int]:
    """(pid, euid, egid): what SO_PEERCRED reports of ``task`` (cred_to_ucred)."""
    creds = task.process.creds
    return task.process.pid, creds.euid, creds.egid


def _scm_cred(task) -> tuple[int, int, int]:
    """(pid, uid, gid) a message carries by default (scm_send's scm_set_cred)."""
    creds = task.process.creds
    return task.process.pid, creds.uid, creds.gid


def _copy_in(task, gva: int, length: int) -> bytes:
    try:
        return task.mm.copy_in(gva, length)
    except GuestFault:
        raise SyscallError(errno.EFAULT) from None


def _copy_out(task, gva: int, data: bytes) -> None:
    try:
        task.mm.copy_out(gva, data)
    except GuestFault:
        raise SyscallError(errno.EFAULT) from None


def move_addr_to_kernel(task, gva: int, addrlen: int) -> bytes:
    """The sockaddr at ``gva`` (net/socket.c move_addr_to_kernel): EINVAL for
    a length over sizeof(sockaddr_storage) or negative, EFAULT."""
    addrlen = to_int(addrlen)
    if addrlen < 0 or addrlen > SOCKADDR_STORAGE_SIZE:
        raise SyscallError(errno.EINVAL)
    if addrlen == 0:
        return b""
    return _copy_in(task, gva, addrlen)


def move_addr_to_user(task, kaddr: bytes, uaddr: int, ulen_gva: int) -> None:
    """Store ``kaddr`` at ``uaddr`` cut to the int at ``ulen_gva``, then its
    full length there (move_addr_to_user). EINVAL for a negative length, EFAULT."""
    ulen, = INT.unpack(_copy_in(task, ulen_gva, 4))
    length = min(ulen, len(kaddr))
    if length < 0:
        raise SyscallError(errno.EINVAL)
    if length:
        _copy_out(task, uaddr, kaddr[:length])
    _copy_out(task, ulen_gva, INT.pack(len(kaddr)))


def unix_addr(addr: bytes) -> tuple[bytes, bytes | None]:
    """Check a sockaddr_un (unix_validate_addr): (canonical sockaddr, path).

    ``path`` is the filesystem name (None for an abstract one); the
    canonical sockaddr is what getsockname will report: sun_family, then
    the path and its NUL, or the whole abstract name. EINVAL for a length
    outside (2, 110] or another family.
    """
    if len(addr) <= SUN_PATH_OFFSET or len(addr) > SOCKADDR_UN_SIZE:
        raise SyscallError(errno.EINVAL)
    if struct.unpack_from("<H", addr)[0] != AF_UNIX:
        raise SyscallError(errno.EINVAL)
    if addr[SUN_PATH_OFFSET] == 0:
        return addr, None
    path = addr[SUN_PATH_OFFSET:].split(b"\0", 1)[0]
    return addr[:SUN_PATH_OFFSET] + path + b"\0", path


def find_other(task, addr: bytes, type_: int) -> UnixSocket:
    """The socket a sockaddr_un names (unix_find_other): ENOENT and the
    lookup's errors or ECONNREFUSED for a path, ECONNREFUSED for a free
    abstract name, EPROTOTYPE for another socket type, EINVAL."""
    canonical, path = unix_addr(addr)
    if path is None:
        other = unix.abstract_table(task.kernel).get(canonical)
    else:
        other = unix.socket_of_inode(lookup_socket_node(task, path))
    if other is None or other.dead:
        raise SyscallError(errno.ECONNREFUSED)
    if other.type != type_:
        raise SyscallError(errno.EPROTOTYPE)
    return other


def _install(task, sock: UnixSocket, flags: int) -> int:
    try:
        return task.fds.install(sock, bool(flags & SOCK_CLOEXEC), limit=nofile_limit(task.process))
    except SyscallError:
        sock.release()
        raise


def _sigpipe(task, sock: UnixSocket, flags: int) -> None:
    """unix_stream_sendmsg's pipe_err: SIGPIPE unless MSG_NOSIGNAL (streams only)."""
    if sock.type == SOCK_STREAM and not flags & MSG_NOSIGNAL:
        task.kernel.send_signal(task.process, 13, task)


# -- socket, socketpair -----------------------------------------------------------

def _socket_type(family: int, type_: int, protocol: int, what: str, task) -> tuple[int, int]:
    """__sys_socket's checks: (socket type, SOCK_* flags). EINVAL for unknown
    flags or type, EAFNOSUPPORT for other families, EPROTONOSUPPORT,
    ESOCKTNOSUPPORT."""
    flags = type_ & ~SOCK_TYPE_MASK
    kind = type_ & SOCK_TYPE_MASK
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    if family < 0 or family >= AF_MAX:
        raise SyscallError(errno.EAFNOSUPPORT)
    if family != AF_UNIX:
        task.kernel.note_once(f"socket-{family}", f"only AF_UNIX sockets are supported "
                                                  f"({what} family {family}: EAFNOSUPPORT)")
        raise SyscallError(errno.EAFNOSUPPORT)
    if kind >= 11:  # SOCK_MAX
        raise SyscallError(errno.EINVAL)
    if protocol not in (0, AF_UNIX):
        raise SyscallError(errno.EPROTONOSUPPORT)
    if kind == SOCK_RAW:
        kind = SOCK_DGRAM  # unix_create
    if kind not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        raise SyscallError(errno.ESOCKTNOSUPPORT)
    return kind, flags


@syscall("socket", support="partial",
         note="AF_UNIX stream, datagram and seqpacket; other families EAFNOSUPPORT")
def sys_socket(task, family: int, type_: int, protocol: int) -> int:
    """Implements Linux syscall socket(2) for AF_UNIX (unix(7)).

    ``type_`` is SOCK_STREAM, SOCK_DGRAM (SOCK_RAW too, as Linux) or
    SOCK_SEQPACKET, with SOCK_NONBLOCK/SOCK_CLOEXEC. Other families are
    EAFNOSUPPORT (named once on stderr); EINVAL, EPROTONOSUPPORT,
    ESOCKTNOSUPPORT, EMFILE as Linux.
    """
    kind, flags = _socket_type(to_int(family), to_int(type_), to_int(protocol), "socket", task)
    sock = UnixSocket(kind, bool(flags & SOCK_NONBLOCK), _cred(task), task.kernel)
    return _install(task, sock, flags)


@syscall("socketpair", support="partial", note="AF_UNIX only")
def sys_socketpair(task, family: int, type_: int, protocol: int, sv: int) -> int:
    """Implements Linux syscall socketpair(2) for AF_UNIX.

    Stores the two fds at ``sv`` (int[2]); EFAULT after closing them
    again. AF_INET/AF_INET6 are EOPNOTSUPP (as sock_no_socketpair), other
    families EAFNOSUPPORT.
    """
    family = to_int(family)
    if family in (AF_INET, AF_INET6) and not to_int(type_) & ~(SOCK_TYPE_MASK | SOCK_CLOEXEC
                                                                 | SOCK_NONBLOCK):
        raise SyscallError(errno.EOPNOTSUPP)
    kind, flags = _socket_type(family, to_int(type_), to_int(protocol), "socketpair", task)
    a, b = make_socketpair(kind, bool(flags & SOCK_NONBLOCK), _cred(task), task.kernel)
    try:
        fd_a = _install(task, a, flags)
    except SyscallError:
        b.release()
        raise
    fd_b = _install(task, b, flags)  # releases b on EMFILE; a goes with its fd
    try:
        task.mm.copy_out(sv, struct.pack("<ii", fd_a, fd_b))
    except GuestFault:
        task.fds.close(fd_a)
        task.fds.close(fd_b)
        raise SyscallError(errno.EFAULT) from None
    return 0


# -- naming and connecting ----------------------------------------------------------

@syscall("bind", support="partial", note="AF_UNIX only")
def sys_bind(task, fd: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall bind(2) for AF_UNIX (unix_bind).

    A path makes a socket file in the sentry's VFS (beneath a rw --mount,
    on the host: a name only, reached from the sandbox alone; EADDRINUSE when the
    name exists; mknod's ENOENT, EACCES, EROFS); an abstract name (a
    leading NUL) is EADDRINUSE when taken; a bare sun_family (addrlen 2)
    autobinds to a five-hex-digit abstract name. EINVAL for a socket
    already bound or a bad sockaddr_un, EFAULT.
    """
    sock = sock_of(task, fd)
    raw = move_addr_to_kernel(task, addr, addrlen)
    if len(raw) == SUN_PATH_OFFSET and struct.unpack("<H", raw)[0] == AF_UNIX:
        if sock.addr is not None:
            raise SyscallError(errno.EINVAL)
        sock.autobind()
        return 0
    canonical, path = unix_addr(raw)
    if path is None:
        if sock.addr is not None:
            raise SyscallError(errno.EINVAL)
        sock.bind_abstract(canonical)
        return 0
    inode = bind_socket_node(task, path)  # EADDRINUSE before EINVAL, as unix_bind_bsd
    if sock.addr is not None:
        do_unlink(task, AT_FDCWD, path)
        raise SyscallError(errno.EINVAL)
    sock.bind_inode(canonical, inode)
    return 0


@syscall("listen")
def sys_listen(task, fd: int, backlog: int) -> int:
    """Implements Linux syscall listen(2) (unix_listen): backlog capped at
    somaxconn (4096); EOPNOTSUPP for datagram sockets, EINVAL unbound."""
    sock = sock_of(task, fd)
    backlog = to_int(backlog) & _U32
    sock.listen(min(backlog, unix.SOMAXCONN), _cred(task))
    return 0


def _do_accept(task, fd: int, addr: int, addrlen: int, flags: int) -> int:
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    sock = sock_of(task, fd)
    new = sock.accept()
    if flags & SOCK_NONBLOCK:
        new.flags |= unix.O_NONBLOCK
    if addr:
        peer = new.peer
        try:
            move_addr_to_user(task, peer.sockaddr() if peer is not None else
                              struct.pack("<H", AF_UNIX), addr, addrlen)
        except SyscallError:
            new.release()
            raise
    return _install(task, new, flags)


@syscall("accept")
def sys_accept(task, fd: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall accept(2): accept4 without flags."""
    return _do_accept(task, fd, addr, addrlen, 0)


@syscall("accept4")
def sys_accept4(task, fd: int, addr: int, addrlen: int, flags: int) -> int:
    """Implements Linux syscall accept4(2) (unix_accept).

    Waits for a connection (EAGAIN when nonblocking, ERESTARTSYS for a
    signal); stores the client's address (sun_family alone when it is
    unbound). EINVAL for unknown flags or a socket not listening,
    EOPNOTSUPP for datagram sockets, EFAULT (the connection is dropped).
    """
    return _do_accept(task, fd, addr, addrlen, to_int(flags))


@syscall("connect")
def sys_connect(task, fd: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall connect(2) (unix_stream_connect, unix_dgram_connect).

    Stream and seqpacket sockets connect to a listening socket (at once:
    the server end waits on its queue for accept); ECONNREFUSED when
    nobody listens, EAGAIN when the backlog is full and the socket
    nonblocking, EISCONN. A datagram socket sets its default
    destination (AF_UNSPEC: none). ENOENT, EACCES, EPROTOTYPE, EINVAL,
    EFAULT as Linux.
    """
    sock = sock_of(task, fd)
    raw = move_addr_to_kernel(task, addr, addrlen)
    if sock.type == SOCK_DGRAM:
        if len(raw) < SUN_PATH_OFFSET:
            raise SyscallError(errno.EINVAL)
        if struct.unpack_from("<H", raw)[0] == AF_UNSPEC:
            sock.connect_dgram(None)
            return 0
        other = find_other(task, raw, sock.type)
        if sock.passcred and sock.addr is None:
            sock.autobind()
        sock.connect_dgram(other)
        return 0
    unix_addr(raw)
    if sock.passcred and sock.addr is None:
        sock.autobind()
    other = find_other(task, raw, sock.type)
    sock.connect_stream(other, _cred(task))
    return 0


@syscall("getsockname")
def sys_getsockname(task, fd: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall getsockname(2): the bound sockaddr_un, or
    sun_family alone (length 2). EBADF, ENOTSOCK, EINVAL, EFAULT."""
    sock = sock_of(task, fd)
    move_addr_to_user(task, sock.sockaddr(), addr, addrlen)
    return 0


@syscall("getpeername")
def sys_getpeername(task, fd: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall getpeername(2): the peer's sockaddr_un.
    ENOTCONN when not connected; EBADF, ENOTSOCK (shells ask of fd 0), EFAULT."""
    sock = sock_of(task, fd)
    peer = sock.peer
    if peer is None:
        raise SyscallError(errno.ENOTCONN)
    move_addr_to_user(task, peer.sockaddr(), addr, addrlen)
    return 0


@syscall("shutdown")
def sys_shutdown(task, fd: int, how: int) -> int:
    """Implements Linux syscall shutdown(2) (unix_shutdown): SHUT_RD, SHUT_WR,
    SHUT_RDWR (EINVAL otherwise); a connected peer sees EOF or EPIPE."""
    sock_of(task, fd).shut(to_int(how))
    return 0


# -- sending --------------------------------------------------------------------------

def _parse_control(task, control: bytes):
    """The SCM_RIGHTS Files and SCM_CREDENTIALS of a sendmsg's control data
    (__scm_send): (files with a reference taken, creds or None). EINVAL for
    a malformed header or unknown type, EBADF for a bad fd, EPERM for
    credentials the sender may not claim. Other levels are skipped."""
    files: list = []
    creds = None
    offset = 0
    try:
        while offset + CMSGHDR.size <= len(control):
            cmsg_len, level, type_ = CMSGHDR.unpack_from(control, offset)
            if cmsg_len < CMSGHDR.size or cmsg_len > len(control) - offset:
                raise SyscallError(errno.EINVAL)
            data = control[offset + CMSGHDR.size:offset + cmsg_len]
            if level == SOL_SOCKET:
                if type_ == SCM_RIGHTS:
                    count = len(data) // 4
                    if count > 0:
                        if len(files) + count > SCM_MAX_FD:  # several are merged (scm_fp_copy)
                            raise SyscallError(errno.EINVAL)
                        for (fd,) in INT.iter_unpack(data[:count * 4]):
                            file = task.fds.get(fd)
                            file.refs += 1
                            files.append(file)
                elif type_ == SCM_CREDENTIALS:
                    if cmsg_len != CMSGHDR.size + UCRED.size:
                        raise SyscallError(errno.EINVAL)
                    creds = UCRED.unpack(data)
                    _check_creds(task, creds)
                else:
                    raise SyscallError(errno.EINVAL)
            offset += (cmsg_len + 7) & ~7
    except BaseException:
        unix.release_files(files)
        raise
    return files or None, creds


def _check_creds(task, creds) -> None:
    """scm_check_creds: a process may claim its own pid and real, effective
    or saved ids (any with CAP_SYS_ADMIN/CAP_SETUID/CAP_SETGID): else EPERM."""
    pid, uid, gid = creds
    c = task.process.creds
    if pid != task.process.pid and not c.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    if uid not in (c.uid, c.euid, c.suid) and not c.capable(CAP_SETUID):
        raise SyscallError(errno.EPERM)
    if gid not in (c.gid, c.egid, c.sgid) and not c.capable(CAP_SETGID):
        raise SyscallError(errno.EPERM)
    if pid != task.process.pid and pid not in task.kernel.processes:
        raise SyscallError(errno.ESRCH)


def _gather(task, iovs) -> bytes:
    return b"".join(_copy_in(task, base, length) for base, length in iovs if length)


def _pieces(task, iovs):
    """The bytes of ``iovs`` in pieces of at most CHUNK (a stream's huge
    send is never one Python copy); EFAULT for a bad buffer."""
    piece: list[bytes] = []
    size = 0
    for base, length in iovs:
        while length:
            take = min(length, CHUNK - size)
            piece.append(_copy_in(task, base, take))
            size += take
            base += take
            length -= take
            if size == CHUNK:
                yield b"".join(piece)
                piece, size = [], 0
    if size or not piece:
        yield b"".join(piece)


class _Oversized:
    """Stands for a message too big to send (only its length is looked at:
    EMSGSIZE), so that it is never copied in."""

    def __init__(self, length: int):
        self.length = length

    def __len__(self) -> int:
        return self.length


def _send(task, sock: UnixSocket, iovs, flags: int, raw_addr: bytes, files, creds) -> int:
    """The socket-level part of sendto/sendmsg: the destination, then send
    the bytes of ``iovs`` (a stream's in CHUNK pieces, stopping at a short
    one; the Files of an SCM_RIGHTS go with the first)."""
    if flags & MSG_OOB:
        unix.release_files(files)
        raise SyscallError(errno.EOPNOTSUPP)
    to = None
    explicit = bool(raw_addr)
    try:
        if explicit and sock.type == SOCK_DGRAM:
            to = find_other(task, raw_addr, sock.type)
        elif explicit and sock.type == SOCK_SEQPACKET:
            explicit = False  # unix_seqpacket_sendmsg ignores the address
        if sock.passcred and sock.addr is None and sock.type == SOCK_DGRAM:
            sock.autobind()
    except BaseException:
        unix.release_files(files)
        raise
    if sock.nonblocking:
        flags |= MSG_DONTWAIT
    creds = creds or _scm_cred(task)
    total = sum(length for _, length in iovs)
    sent = 0
    try:
        if sock.shutdown & unix.SEND_SHUTDOWN and (sock.type == SOCK_STREAM
                                                   or total <= sock.sndbuf - 32):
            # The socket's own SEND_SHUTDOWN is EPIPE before any byte is
            # copied in (unix_stream_sendmsg; sock_alloc_send_pskb for the
            # others), after ENOTCONN, EISCONN, EMSGSIZE: a bad buffer is
            # EPIPE, not EFAULT. sendmsg picks the error; it always fails.
            return sock.sendmsg(b"", flags, to, files, creds, explicit)
        if sock.type != SOCK_STREAM:
            if total > sock.sndbuf:
                return sock.sendmsg(_Oversized(total), flags, to, files, creds, explicit)
            try:
                data = _gather(task, iovs)
            except SyscallError:
                unix.release_files(files)
                raise
            return sock.sendmsg(data, flags, to, files, creds, explicit)
        pieces = _pieces(task, iovs)
        while True:
            try:
                piece = next(pieces, None)
            except SyscallError:
                unix.release_files(files)
                if sent:
                    return sent
                raise
            if piece is None:
                return sent
            n = sock.sendmsg(piece, flags, None, files, creds, explicit)
            files = None
            sent += n
            if n < len(piece):
                return sent
    except SyscallError as e:
        if sent:
            return sent
        if e.errno == errno.EPIPE:
            _sigpipe(task, sock, flags)
        raise


@syscall("sendto", support="partial", note="AF_UNIX; MSG_OOB is EOPNOTSUPP (Linux streams carry one out-of-band byte)")
def sys_sendto(task, fd: int, buf: int, length: int, flags: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall sendto(2) (and send(2)) on AF_UNIX sockets.

    ``addr`` names the destination of a datagram; a stream socket given
    one is EISCONN or EOPNOTSUPP, a seqpacket ignores it. EPIPE with
    SIGPIPE on a stream whose peer is gone or shut (not with
    MSG_NOSIGNAL; a seqpacket gets EPIPE alone), EAGAIN (MSG_DONTWAIT or
    O_NONBLOCK), ENOTCONN, ECONNREFUSED, EMSGSIZE, EFAULT.
    """
    sock = sock_of(task, fd)
    flags = to_int(flags)
    length = min(length, INT_MAX)
    if buf + length > TASK_SIZE_MAX:
        raise SyscallError(errno.EFAULT)  # import_ubuf's access_ok
    raw = move_addr_to_kernel(task, addr, addrlen) if addr else b""
    return _send(task, sock, [(buf, length)], flags, raw, None, None)


def _read_msghdr(task, msg: int):
    name, namelen, iov, iovlen, control, controllen, _ = MSGHDR.unpack(
        _copy_in(task, msg, MSGHDR.size))
    if namelen & 0x80000000:
        raise SyscallError(errno.EINVAL)
    if iovlen > UIO_MAXIOV:
        raise SyscallError(errno.EMSGSIZE)
    return name, namelen, iov, iovlen, control, controllen


def _sendmsg(task, sock: UnixSocket, msg: int, flags: int) -> int:
    """____sys_sendmsg: decode ``msg`` (struct msghdr) and send it."""
    name, namelen, iov, iovlen, control, controllen = _read_msghdr(task, msg)
    raw = b""
    if name and namelen:
        raw = _copy_in(task, name, min(namelen, SOCKADDR_STORAGE_SIZE))
    try:
        iovs = _read_iovec(task, iov, iovlen)
    except GuestFault:
        raise SyscallError(errno.EFAULT) from None
    if controllen > OPTMEM_MAX:  # sock_kmalloc refuses it: nothing is copied in
        raise SyscallError(errno.ENOBUFS)
    files = creds = None
    if controllen >= CMSGHDR.size:
        if sock.type == SOCK_SEQPACKET and sock.state != unix.TCP_ESTABLISHED:
            raise SyscallError(errno.ENOTCONN)
        files, creds = _parse_control(task, _copy_in(task, control, controllen))
    return _send(task, sock, iovs, flags, raw, files, creds)


@syscall("sendmsg", support="partial", note="AF_UNIX; SCM_RIGHTS, SCM_CREDENTIALS; MSG_OOB is EOPNOTSUPP (Linux streams carry one out-of-band byte)")
def sys_sendmsg(task, fd: int, msg: int, flags: int) -> int:
    """Implements Linux syscall sendmsg(2) on AF_UNIX sockets.

    Control messages: SCM_RIGHTS (up to 253 fds, passed as references to
    their open files, installed by the receiver's recvmsg) and
    SCM_CREDENTIALS (checked: EPERM). Otherwise as sendto. EMSGSIZE for
    more than 1024 iovecs, ENOBUFS for a huge msg_controllen, EINVAL for
    a malformed control message, EBADF for a bad fd in SCM_RIGHTS.
    """
    sock = sock_of(task, fd)
    return _sendmsg(task, sock, msg, to_int(flags))


@syscall("sendmmsg", support="partial", note="as sendmsg")
def sys_sendmmsg(task, fd: int, mmsg: int, vlen: int, flags: int) -> int:
    """Implements Linux syscall sendmmsg(2): sendmsg for each struct mmsghdr
    (at most 1024), storing each msg_len; the count sent, or the first
    message's error."""
    sock = sock_of(task, fd)
    vlen = min(vlen & _U32, UIO_MAXIOV)
    flags = to_int(flags)
    sent = 0
    while sent < vlen:
        entry = mmsg + sent * MMSGHDR_SIZE
        try:
            n = _sendmsg(task, sock, entry, flags)
            _copy_out(task, entry + MSG_LEN_OFFSET, struct.pack("<I", n))
        except SyscallError:
            if sent:
                break
            raise
        sent += 1
    return sent


# -- receiving --------------------------------------------------------------------------

def _put_cmsg(task, control: int, room: int, level: int, type_: int, data: bytes):
    """put_cmsg: write one control message; (bytes used, truncated)."""
    if room < CMSGHDR.size:
        return 0, True
    cmlen = CMSGHDR.size + len(data)
    truncated = room < cmlen
    if truncated:
        cmlen = room
    msg = CMSGHDR.pack(CMSGHDR.size + len(data), level, type_) + data
    _copy_out(task, control, msg[:cmlen])
    return min((CMSGHDR.size + len(data) + 7) & ~7, room), truncated


def _deliver(task, sock: UnixSocket, data: bytes, msg_flags: int, files, creds, peek: bool,
             iovs, control: int, controllen: int, flags: int):
    """Copy a received message to the guest, the data first (EFAULT drops
    the fds, as Linux), then the control messages (scm_recv): (bytes
    stored, msg_flags, control used)."""
    stored = 0
    try:
        for base, length in iovs:
            if stored >= len(data):
                break
            piece = data[stored:stored + length]
            if piece:
                _copy_out(task, base, piece)
            stored += len(piece)
    except SyscallError:
        if files and not peek:
            unix.release_files(files)
        raise
    used = 0
    if control and controllen:
        if sock.passcred and creds is not None:
            n, trunc = _put_cmsg(task, control, controllen, SOL_SOCKET, SCM_CREDENTIALS,
                                 UCRED.pack(creds[0], creds[1] & _U32, creds[2] & _U32))
            used += n
            if trunc:
                msg_flags |= MSG_CTRUNC
        if files:
            room = controllen - used
            fit = max(0, (room - CMSGHDR.size) // 4) if room > CMSGHDR.size else 0
            fit = min(fit, len(files))
            fds = []
            cloexec = bool(flags & MSG_CMSG_CLOEXEC)
            limit = nofile_limit(task.process)
            for file in files[:fit]:
                try:
                    fds.append(task.fds.install(file, cloexec, limit=limit))
                except SyscallError:
                    break
            if fds:
                n, _ = _put_cmsg(task, control + used, room, SOL_SOCKET, SCM_RIGHTS,
                                 b"".join(INT.pack(fd) for fd in fds))
                used += n
            if len(fds) < len(files):
                msg_flags |= MSG_CTRUNC
    elif files:
        msg_flags |= MSG_CTRUNC
    if files and not peek:
        unix.release_files(files)  # the in-flight references (the installed fds hold their own)
    return stored, msg_flags, used


def _recv(task, sock: UnixSocket, iovs, flags: int, control: int, controllen: int):
    """The socket-level part of recvfrom/recvmsg: (result, msg_flags, addr, control used)."""
    if flags & MSG_OOB:
        raise SyscallError(errno.EINVAL if sock.type == SOCK_STREAM else errno.EOPNOTSUPP)
    if sock.nonblocking:
        flags |= MSG_DONTWAIT
    want = sum(length for _, length in iovs)
    data, msg_flags, files, creds, addr = sock.recvmsg(want, flags)
    full = len(data)
    data = data[:want]
    stored, msg_flags, used = _deliver(task, sock, data, msg_flags, files, creds,
                                       bool(flags & MSG_PEEK), iovs, control, controllen, flags)
    result = full if (flags & MSG_TRUNC and sock.type != SOCK_STREAM) else stored
    return result, msg_flags, addr, used


@syscall("recvfrom", support="partial", note="AF_UNIX; MSG_OOB is EOPNOTSUPP (Linux streams carry one out-of-band byte); SO_PEEK_OFF is not kept")
def sys_recvfrom(task, fd: int, buf: int, length: int, flags: int, addr: int, addrlen: int) -> int:
    """Implements Linux syscall recvfrom(2) (and recv(2)) on AF_UNIX sockets.

    Streams return what is there (MSG_WAITALL: all ``length`` bytes
    unless EOF, a signal or an error), 0 at EOF; datagrams and
    seqpackets one message, cut to ``length`` (MSG_TRUNC: its full
    length returned). MSG_PEEK leaves it queued. ``addr`` receives the
    sender's address (length 0 when it is unbound). EAGAIN, EINVAL for
    an unconnected stream, ENOTCONN for an unconnected seqpacket,
    ECONNRESET once when the peer closed with unread data, EFAULT.
    """
    sock = sock_of(task, fd)
    length = min(length, INT_MAX)
    result, _, sender, _ = _recv(task, sock, [(buf, length)], to_int(flags), 0, 0)
    if addr:
        move_addr_to_user(task, sender or b"", addr, addrlen)
    return result


def _recvmsg(task, sock: UnixSocket, msg: int, flags: int) -> int:
    name, namelen, iov, iovlen, control, controllen = _read_msghdr(task, msg)
    try:
        iovs = _read_iovec(task, iov, iovlen)
    except GuestFault:
        raise SyscallError(errno.EFAULT) from None
    result, msg_flags, sender, used = _recv(task, sock, iovs, flags, control,
                                            min(controllen, INT_MAX))
    if name:
        move_addr_to_user(task, sender or b"", name, msg + MSG_NAMELEN_OFFSET)
    else:
        _copy_out(task, msg + MSG_NAMELEN_OFFSET, INT.pack(0))
    msg_flags |= flags & MSG_CMSG_CLOEXEC
    _copy_out(task, msg + MSG_FLAGS_OFFSET, struct.pack("<I", msg_flags & _U32))
    _copy_out(task, msg + MSG_CONTROLLEN_OFFSET, struct.pack("<Q", used))
    return result


@syscall("recvmsg", support="partial", note="AF_UNIX; MSG_OOB is EOPNOTSUPP (Linux streams carry one out-of-band byte); SO_PEEK_OFF is not kept")
def sys_recvmsg(task, fd: int, msg: int, flags: int) -> int:
    """Implements Linux syscall recvmsg(2) on AF_UNIX sockets.

    As recvfrom, with control messages: SCM_CREDENTIALS (with
    SO_PASSCRED) then SCM_RIGHTS, whose fds are installed now
    (MSG_CMSG_CLOEXEC: close-on-exec); what does not fit in
    msg_controllen is dropped and MSG_CTRUNC set. msg_namelen,
    msg_controllen and msg_flags (MSG_TRUNC, MSG_CTRUNC) are written back.
    """
    sock = sock_of(task, fd)
    return _recvmsg(task, sock, msg, to_int(flags))


@syscall("recvmmsg", support="partial", note="as recvmsg")
def sys_recvmmsg(task, fd: int, mmsg: int, vlen: int, flags: int, timeout: int) -> int:
    """Implements Linux syscall recvmmsg(2): recvmsg into each struct mmsghdr
    (at most 1024); MSG_WAITFORONE makes every one after the first
    nonblocking. The count received, or the first one's error.

    ``timeout`` (a struct __kernel_timespec, EINVAL when invalid) is
    checked after each message, as Linux does (do_recvmmsg: a wait for
    one message is not cut short); the time left is written back.
    """
    deadline = _read_timespec(task, timeout)
    sock = sock_of(task, fd)
    vlen = min(vlen & _U32, UIO_MAXIOV)
    flags = to_int(flags)
    got = 0
    while got < vlen:
        entry = mmsg + got * MMSGHDR_SIZE
        try:
            n = _recvmsg(task, sock, entry, flags)
            _copy_out(task, entry + MSG_LEN_OFFSET, struct.pack("<I", n))
        except SyscallError:
            if got:
                break
            raise
        got += 1
        if flags & MSG_WAITFORONE:
            flags |= MSG_DONTWAIT
        if deadline is not None and time.monotonic() >= deadline:
            break
    if deadline is not None:
        _copy_out(task, timeout, TIMESPEC.pack(*divmod(_remaining_ns(deadline), NSEC_PER_SEC)))
    return got


# -- options ---------------------------------------------------------------------------

def _timeval_get(timeout: float | None) -> bytes:
    if timeout is None:
        return TIMEVAL.pack(0, 0)
    usec = round(timeout * 1_000_000)
    return TIMEVAL.pack(usec // 1_000_000, usec % 1_000_000)


def _timeval_set(raw: bytes) -> float | None:
    """sock_set_timeout: None (forever) for 0; EDOM for tv_usec outside [0, 1e6)."""
    sec, usec = TIMEVAL.unpack(raw)
    if usec < 0 or usec >= 1_000_000:
        raise SyscallError(errno.EDOM)
    if sec < 0:
        return 0.0
    if sec == 0 and usec == 0:
        return None
    return sec + usec / 1_000_000


@syscall("getsockopt", support="partial",
         note="SOL_SOCKET options of AF_UNIX sockets; other levels EOPNOTSUPP")
def sys_getsockopt(task, fd: int, level: int, optname: int, optval: int, optlen: int) -> int:
    """Implements Linux syscall getsockopt(2) at SOL_SOCKET (sk_getsockopt).

    SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ERROR (and clears it),
    SO_ACCEPTCONN, SO_PEERCRED (struct ucred; pid 0 and ids -1 when
    unconnected), SO_SNDBUF, SO_RCVBUF, SO_PASSCRED, SO_RCVTIMEO,
    SO_SNDTIMEO, SO_LINGER and a few flags kept as set. The value is cut
    to ``*optlen``, which receives the length stored. ENOPROTOOPT for
    other options, EOPNOTSUPP for other levels, EINVAL for a negative
    length, EFAULT.
    """
    sock = sock_of(task, fd)
    level, optname = to_int(level), to_int(optname)
    if level != SOL_SOCKET:
        raise SyscallError(errno.EOPNOTSUPP)
    length, = INT.unpack(_copy_in(task, optlen, 4))
    if length < 0:
        raise SyscallError(errno.EINVAL)
    if optname == SO_TYPE:
        value = INT.pack(sock.type)
    elif optname == SO_DOMAIN:
        value = INT.pack(AF_UNIX)
    elif optname == SO_PROTOCOL:
        value = INT.pack(0)
    elif optname == SO_ERROR:
        value = INT.pack(sock._take_error())
    elif optname == SO_ACCEPTCONN:
        value = INT.pack(int(sock.state == TCP_LISTEN))
    elif optname == SO_PEERCRED:
        pid, uid, gid = sock.peercred or (0, -1, -1)
        value = UCRED.pack(pid, uid & _U32, gid & _U32)
    elif optname == SO_SNDBUF:
        value = INT.pack(sock.sndbuf)
    elif optname == SO_RCVBUF:
        value = INT.pack(sock.rcvbuf)
    elif optname == SO_PASSCRED:
        value = INT.pack(int(sock.passcred))
    elif optname == SO_RCVTIMEO:
        value = _timeval_get(sock.rcvtimeo)
    elif optname == SO_SNDTIMEO:
        value = _timeval_get(sock.sndtimeo)
    elif optname == SO_LINGER:
        value = bytes(8)
    elif optname == SO_SNDLOWAT:
        value = INT.pack(1)
    elif optname in _PLAIN_OPTIONS:
        value = INT.pack(sock.options.get(optname, _PLAIN_OPTIONS[optname]))
    else:
        raise SyscallError(errno.ENOPROTOOPT)
    length = min(length, len(value))
    if length:
        _copy_out(task, optval, value[:length])
    _copy_out(task, optlen, INT.pack(length))
    return 0


@syscall("setsockopt", support="partial",
         note="SOL_SOCKET options of AF_UNIX sockets; other levels EOPNOTSUPP")
def sys_setsockopt(task, fd: int, level: int, optname: int, optval: int, optlen: int) -> int:
    """Implements Linux syscall setsockopt(2) at SOL_SOCKET (sk_setsockopt).

    SO_SNDBUF/SO_RCVBUF (doubled, capped at net.core.[wr]mem_max, at
    least 4608/2304 bytes), SO_PASSCRED, SO_RCVTIMEO/SO_SNDTIMEO
    (EDOM for a bad tv_usec), SO_LINGER and plain flags (kept, no
    effect). EINVAL for a short value, ENOPROTOOPT for other options,
    EOPNOTSUPP for other levels (and SO_REUSEPORT), EFAULT.
    """
    sock = sock_of(task, fd)
    level, optname, optlen = to_int(level), to_int(optname), to_int(optlen)
    if level != SOL_SOCKET:
        raise SyscallError(errno.EOPNOTSUPP)
    if optname in (SO_RCVTIMEO, SO_SNDTIMEO):
        if optlen < TIMEVAL.size:
            raise SyscallError(errno.EINVAL)
        timeout = _timeval_set(_copy_in(task, optval, TIMEVAL.size))
        if optname == SO_RCVTIMEO:
            sock.rcvtimeo = timeout
        else:
            sock.sndtimeo = timeout
        return 0
    if optname == SO_LINGER:
        if optlen < 8:
            raise SyscallError(errno.EINVAL)
        _copy_in(task, optval, 8)
        return 0
    if optlen < 4:
        raise SyscallError(errno.EINVAL)
    value, = INT.unpack(_copy_in(task, optval, 4))
    if optname in (SO_SNDBUF, SO_SNDBUFFORCE):
        sock.sndbuf = max(min(value & _U32, unix.WMEM_MAX) * 2, unix.SOCK_MIN_SNDBUF)
        sock.wake()
    elif optname in (SO_RCVBUF, SO_RCVBUFFORCE):
        sock.rcvbuf = max(min(value & _U32, unix.RMEM_MAX) * 2, unix.SOCK_MIN_RCVBUF)
    elif optname == SO_PASSCRED:
        sock.passcred = value != 0
    elif optname == SO_REUSEPORT:
        if value:
            raise SyscallError(errno.EOPNOTSUPP)
    elif optname in _PLAIN_OPTIONS:
        sock.options[optname] = value if optname in (SO_PRIORITY, SO_RCVLOWAT) else int(value != 0)
    else:
        raise SyscallError(errno.ENOPROTOOPT)
    return 0
