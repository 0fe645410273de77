"""AF_UNIX sockets (kvmsentry/kernel/socket.py, kernel/syscalls/socket.py):
the unix_sockets guest natively and under kvmsentry, same output and
status, with gcc and musl builds. It covers socketpair of each type,
fork and talk, shutdown/EOF, EPIPE and SIGPIPE, MSG_* flags, full
buffers, poll/epoll, path and abstract names, SCM_RIGHTS and
SCM_CREDENTIALS, options, signals and the errnos of net/unix/af_unix.c."""

import os

import pytest

pytestmark = pytest.mark.requires_kvm


def test_unix_sockets(guests, run_both, assert_same):
    native, sentry = run_both([guests["unix_sockets"]])
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    assert b"pipe got through the socket" in native.stdout
    assert_same(native, sentry)


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to uid 1000 natively, which needs root")
def test_unix_socket_permissions(guests, run_both, assert_same):
    """connect(2) needs write permission on the socket file (EACCES), bind(2)
    the directory's (as uid 1000 after setuid from root)."""
    native, sentry = run_both([guests["unix_sockets"], "perm"])
    assert b"connect closed: -1 EACCES" in native.stdout, native.stdout.decode(errors="replace")
    assert_same(native, sentry)


def test_socket_huge_values(guests, run_both, assert_same):
    """A 10^12 s SO_RCVTIMEO, recvmmsg's largest timeout and a 1 GiB
    msg_controllen are errnos or waits, as on Linux, never a sentry
    exception (OverflowError, struct.error, a 1 GiB copy)."""
    native, sentry = run_both([guests["socket_huge_values"]])
    assert b"recv cut by SIGALRM: -1 EINTR" in native.stdout, native.stdout
    assert_same(native, sentry)
