"""Test-wide set-up: the `requires_kvm` marker.

A test marked ``@pytest.mark.requires_kvm`` (or using the ``requires_kvm``
fixture) needs a /dev/kvm this process can open read-write. Where there is
none it is skipped with the reason; with ``KVMSENTRY_REQUIRE_KVM=1`` (CI)
it fails instead, so a CI run can never pass by skipping everything.

Temporary files (``tmp_path``) live under /var/tmp, not /tmp: a guest's
/tmp is its own tmpfs, so a host file given to a guest by path must be
elsewhere. Each run gets a fresh directory, removed at the end (pass
``--basetemp`` to keep one).
"""

import errno
import os
import shutil
import tempfile

import pytest

KVM_DEVICE = "/dev/kvm"


def kvm_required():
    """True when the environment demands KVM (KVMSENTRY_REQUIRE_KVM=1)."""
    return os.environ.get("KVMSENTRY_REQUIRE_KVM", "") == "1"


def kvm_available():
    """Return (True, "") if /dev/kvm opens read-write, else (False, reason)."""
    if not os.path.exists(KVM_DEVICE):
        return False, f"{KVM_DEVICE} does not exist (no KVM on this machine)"
    try:
        fd = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            return False, (
                f"{KVM_DEVICE} is not accessible to this user "
                "(add the user to group kvm, or run as root)"
            )
        return False, f"cannot open {KVM_DEVICE}: {e.strerror}"
    os.close(fd)
    return True, ""


def _skip_or_fail(reason):
    """Skip the current test, or fail it when KVMSENTRY_REQUIRE_KVM=1.

    For anything a CI run must have (KVM, musl-gcc, busybox-static).
    """
    if kvm_required():
        pytest.fail(f"{reason} (KVMSENTRY_REQUIRE_KVM=1)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_kvm") is not None:
        ok, reason = kvm_available()
        if not ok:
            _skip_or_fail(reason)


@pytest.fixture
def requires_kvm():
    """Fixture form of the requires_kvm marker."""
    ok, reason = kvm_available()
    if not ok:
        _skip_or_fail(reason)


@pytest.fixture(scope="session")
def skip_or_fail():
    """``skip_or_fail(reason)``: skip, or fail when KVMSENTRY_REQUIRE_KVM=1.

    A fixture because test modules cannot import conftest.
    """
    return _skip_or_fail


@pytest.fixture(scope="session")
def go_build(tmp_path_factory):
    """``go_build(source)``: the static (CGO_ENABLED=0) binary of the Go
    program ``source`` (a Path), built in a temp dir with its own module
    cache; skips (or fails under KVMSENTRY_REQUIRE_KVM=1) without Go."""
    import subprocess

    def build(source):
        go = shutil.which("go")
        if go is None:
            _skip_or_fail("the Go toolchain is missing (Debian package golang-go)")
        out = tmp_path_factory.mktemp("go") / source.stem
        env = dict(os.environ, CGO_ENABLED="0", GOCACHE=str(out.parent / "cache"),
                   HOME=str(out.parent), GOFLAGS="-mod=mod", GOPATH=str(out.parent / "gopath"))
        subprocess.run([go, "build", "-o", str(out), str(source)], check=True, env=env,
                       capture_output=True, timeout=600)
        return out
    return build


HOST_TMP = "/var/tmp"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if config.option.basetemp is None and os.path.isdir(HOST_TMP):
        config.option.basetemp = tempfile.mkdtemp(prefix="kvmsentry-pytest-", dir=HOST_TMP)
        config._kvmsentry_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    made = getattr(config, "_kvmsentry_basetemp", None)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
