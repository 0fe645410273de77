"""Debian's static busybox (package busybox-static) compared with native
runs: issue 2, acceptance 2."""

import hashlib
import random

import pytest

pytestmark = pytest.mark.requires_kvm

from conftest import BUSYBOX


@pytest.fixture(scope="module")
def file_64mib(tmp_path_factory):
    path = tmp_path_factory.mktemp("busybox") / "random-64MiB.bin"
    path.write_bytes(random.Random(2).randbytes(64 << 20))
    return path


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(
        b"".join(b"line %d: %s\n" % (i, b"x" * (i % 70)) for i in range(2000))
        + b"no newline at the end \xff\xfe"
    )
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["echo", "hello", "from", "kvmsentry"],
        ["echo", "-n", "no newline"],
        ["echo", "-e", "tab\\there\\nnew line"],
        ["echo"],
    ],
    ids=["words", "-n", "-e", "empty"],
)
def test_echo(busybox, run_both, assert_same, args):
    assert_same(*run_both([busybox, *args]))


def test_true(busybox, run_both, assert_same):
    native, sentry = run_both([busybox, "true"])
    assert native.returncode == 0
    assert_same(native, sentry)


def test_false(busybox, run_both, assert_same):
    native, sentry = run_both([busybox, "false"])
    assert native.returncode == 1
    assert_same(native, sentry)


def test_cat_file(busybox, run_both, assert_same, text_file):
    native, sentry = run_both([busybox, "cat", text_file])
    assert native.stdout == text_file.read_bytes()
    assert_same(native, sentry)


def test_cat_stdin(busybox, run_both, assert_same):
    data = b"from stdin\n" * 1000
    native, sentry = run_both([busybox, "cat"], input=data)
    assert native.stdout == data
    assert_same(native, sentry)


def test_cat_missing_file(busybox, run_both, assert_same, tmp_path):
    native, sentry = run_both([busybox, "cat", tmp_path / "missing"])
    assert native.returncode == 1
    assert_same(native, sentry)


def test_sha256sum_64mib(busybox, run_both, assert_same, file_64mib):
    native, sentry = run_both([busybox, "sha256sum", file_64mib])
    digest = hashlib.sha256(file_64mib.read_bytes()).hexdigest()
    assert native.stdout == f"{digest}  {file_64mib}\n".encode()
    assert_same(native, sentry)


def test_wc_c_file(busybox, run_both, assert_same, file_64mib):
    native, sentry = run_both([busybox, "wc", "-c", file_64mib])
    assert native.stdout.split()[0] == str(64 << 20).encode()
    assert_same(native, sentry)


def test_wc_c_stdin(busybox, run_both, assert_same):
    native, sentry = run_both([busybox, "wc", "-c"], input=b"12345\n" * 777)
    assert native.stdout.strip() == str(6 * 777).encode()
    assert_same(native, sentry)


def test_seq(busybox, run_both, assert_same):
    native, sentry = run_both([busybox, "seq", "1", "1000"])
    assert native.stdout == "".join(f"{i}\n" for i in range(1, 1001)).encode()
    assert_same(native, sentry)


def test_uname_m(busybox, run_both, assert_same):
    native, sentry = run_both([busybox, "uname", "-m"])
    assert native.stdout == b"x86_64\n"
    assert_same(native, sentry)


def test_env(busybox, run_both, assert_same):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/guest",
        "GREETING": "hello world",
        "EMPTY": "",
        "EQUALS": "a=b",
    }
    native, sentry = run_both([busybox, "env"], env=env)
    assert native.stdout == b"".join(f"{k}={v}\n".encode() for k, v in env.items())
    assert_same(native, sentry)


def test_pwd_with_cwd(busybox, run_both, assert_same, tmp_path):
    native, sentry = run_both([busybox, "pwd"], cwd=tmp_path)
    assert native.stdout == f"{tmp_path}\n".encode()
    assert_same(native, sentry)
