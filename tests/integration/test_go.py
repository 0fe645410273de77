"""A Go program (static, CGO_ENABLED=0) natively and under kvmsentry.

The Go runtime exercises threads (clone), futexes, signal-based
preemption (SIGURG via tgkill), sigaltstack, epoll and large mmap
reservations: issue 4 says Go programs run as on Linux.
"""

from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_kvm
SOURCE = Path(__file__).parent.parent / "guests" / "go" / "goroutines.go"


@pytest.fixture(scope="module")
def go_binary(go_build):
    return go_build(SOURCE)


def test_goroutines(go_binary, run_both, assert_same):
    native, sentry = run_both([go_binary, "x"])
    assert native.returncode == 0
    assert_same(native, sentry)
