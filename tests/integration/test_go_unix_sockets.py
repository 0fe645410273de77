"""AF_UNIX sockets from Go's net package (static, CGO_ENABLED=0), natively
and under kvmsentry: a stream server with concurrent clients on the epoll
netpoller (nonblocking sockets, accept4, SO_ERROR), datagrams between
named sockets, a seqpacket echo and an fd passed with SCM_RIGHTS."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_kvm
SOURCE = Path(__file__).parent.parent / "guests" / "go" / "unixsock.go"


@pytest.fixture(scope="module")
def unixsock_binary(tmp_path_factory, skip_or_fail):
    go = shutil.which("go")
    if go is None:
        skip_or_fail("the Go toolchain is missing (Debian package golang-go)")
    out = tmp_path_factory.mktemp("gounix") / "unixsock"
    env = dict(os.environ, CGO_ENABLED="0", GOCACHE=str(out.parent / "cache"),
               HOME=str(out.parent), GOFLAGS="-mod=mod", GOPATH=str(out.parent / "gopath"))
    subprocess.run([go, "build", "-o", str(out), str(SOURCE)], check=True, env=env,
                   capture_output=True, timeout=600)
    return out


def test_go_unix_sockets(unixsock_binary, run_both, assert_same):
    native, sentry = run_both([unixsock_binary])
    assert native.returncode == 0, native.stdout.decode(errors="replace")
    assert b"read through passed fd" in native.stdout
    assert_same(native, sentry)
