"""AF_UNIX sockets from Go's net package (static, CGO_ENABLED=0), natively
and under kvmsentry: a stream server with concurrent clients on the epoll
netpoller (nonblocking sockets, accept4, SO_ERROR), datagrams between
named sockets, a seqpacket echo and an fd passed with SCM_RIGHTS."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_kvm
SOURCE = Path(__file__).parent.parent / "guests" / "go" / "unixsock.go"


@pytest.fixture(scope="module")
def unixsock_binary(go_build):
    return go_build(SOURCE)


def test_go_unix_sockets(unixsock_binary, run_both, assert_same):
    native, sentry = run_both([unixsock_binary])
    assert native.returncode == 0, native.stdout.decode(errors="replace")
    assert b"read through passed fd" in native.stdout
    assert_same(native, sentry)
