"""A Go program (static, CGO_ENABLED=0) natively and under kvmsentry.

The Go runtime exercises threads (clone), futexes, signal-based
preemption (SIGURG via tgkill), sigaltstack, epoll and large mmap
reservations: issue 4 says Go programs run as on Linux.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_kvm
SOURCE = Path(__file__).parent.parent / "guests" / "go" / "goroutines.go"


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory, skip_or_fail):
    go = shutil.which("go")
    if go is None:
        skip_or_fail("the Go toolchain is missing (Debian package golang-go)")
    out = tmp_path_factory.mktemp("go") / "goroutines"
    env = dict(os.environ, CGO_ENABLED="0", GOCACHE=str(out.parent / "cache"),
               HOME=str(out.parent), GOFLAGS="-mod=mod", GOPATH=str(out.parent / "gopath"))
    subprocess.run([go, "build", "-o", str(out), str(SOURCE)], check=True, env=env,
                   capture_output=True, timeout=600)
    return out


def test_goroutines(go_binary, run_both, assert_same):
    native, sentry = run_both([go_binary, "x"])
    assert native.returncode == 0
    assert_same(native, sentry)
