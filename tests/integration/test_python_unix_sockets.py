"""AF_UNIX sockets from Debian's python3 (dynamic), natively and under
kvmsentry: an asyncio Unix server and clients (nonblocking sockets on
epoll), socket.socketpair, multiprocessing's duplex Pipe between
processes (a socketpair) and a file descriptor passed with
multiprocessing.reduction.send_handle (SCM_RIGHTS)."""

import os

import pytest

pytestmark = pytest.mark.requires_kvm

ASYNCIO_SCRIPT = r"""
import asyncio, os, socket, tempfile

async def main():
    path = os.path.join(tempfile.mkdtemp(), "aio.sock")
    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()
    server = await asyncio.start_unix_server(handle, path)
    async def client(i):
        reader, writer = await asyncio.open_unix_connection(path)
        replies = []
        for j in range(3):
            writer.write(b"client %d line %d\n" % (i, j))
            await writer.drain()
            replies.append(await reader.readline())
        writer.close()
        return replies
    results = await asyncio.gather(*(client(i) for i in range(4)))
    server.close()
    await server.wait_closed()
    os.unlink(path)
    os.rmdir(os.path.dirname(path))
    print(sum(len(r) for r in results), results[0][0], results[-1][-1])

asyncio.run(main())
a, b = socket.socketpair()
a.sendall(b"through a socketpair")
print(b.recv(100), a.type == socket.SOCK_STREAM, a.family == socket.AF_UNIX)
a.close()
print(b.recv(100))
"""

MULTIPROCESSING_SCRIPT = r"""
import multiprocessing as mp, os
from multiprocessing import reduction

def child(conn):
    print("child got", conn.recv(), flush=True)
    conn.send({"reply": [1, 2, 3]})
    fd = reduction.recv_handle(conn)
    with os.fdopen(fd) as f:
        conn.send(f.read())

if __name__ == "__main__":
    mp.set_start_method("fork")
    parent, kid = mp.Pipe()
    p = mp.Process(target=child, args=(kid,))
    p.start()
    parent.send("hello")
    print("parent got", parent.recv(), flush=True)
    r, w = os.pipe()
    os.write(w, b"read through a passed fd")
    os.close(w)
    reduction.send_handle(parent, r, p.pid)
    os.close(r)
    print(parent.recv(), flush=True)
    p.join()
    print("exit code", p.exitcode)
"""


def _need_python():
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("/usr/bin/python3 is not installed")


def test_python_asyncio_unix_server(run_both, assert_same):
    _need_python()
    native, sentry = run_both(["/usr/bin/python3", "-c", ASYNCIO_SCRIPT])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert_same(native, sentry)


def test_python_multiprocessing_pipe_and_fd_passing(run_both, assert_same):
    _need_python()
    native, sentry = run_both(["/usr/bin/python3", "-c", MULTIPROCESSING_SCRIPT])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"read through a passed fd" in native.stdout
    assert_same(native, sentry)


RW_MOUNT_SCRIPT = r"""
import os, socket
s = socket.socket(socket.AF_UNIX)
s.bind("/mnt/srv.sock")
s.listen()
c = socket.socket(socket.AF_UNIX)
c.connect("/mnt/srv.sock")
conn, _ = s.accept()
c.sendall(b"over a name on the host")
print(conn.recv(100).decode(), oct(os.stat("/mnt/srv.sock").st_mode))
try:
    socket.socket(socket.AF_UNIX).bind("/mnt/srv.sock")
except OSError as e:
    print(e.strerror)
s.close()
try:
    socket.socket(socket.AF_UNIX).connect("/mnt/srv.sock")
except OSError as e:
    print(e.strerror)
"""


def test_python_bind_beneath_rw_mount(run_sentry, tmp_path):
    """bind(2) beneath --mount HOST:GUEST:rw makes a socket file on the host
    (mknod(S_IFSOCK)); connect(2) by that name reaches the sandbox's socket."""
    _need_python()
    cp = run_sentry(["/usr/bin/python3", "-c", RW_MOUNT_SCRIPT],
                    options=["--mount", f"{tmp_path}:/mnt:rw"])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert cp.stdout.decode().splitlines() == [
        "over a name on the host 0o140755", "Address already in use", "Connection refused"]
    assert os.stat(tmp_path / "srv.sock").st_mode & 0o170000 == 0o140000
