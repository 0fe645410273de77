"""What kvmsentry does with files it cannot run: one clear line on stderr,
status 126 ("cannot execute") or 127 (not found), never a traceback.
Issue 2, acceptance 4."""

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.requires_kvm

EI_CLASS = 4
ELFCLASS32 = 1


@pytest.fixture
def hello(guest_builder, skip_or_fail):
    built = guest_builder("gcc")
    if isinstance(built, str):
        skip_or_fail(built)
    return built["hello"]


def _assert_rejected(sentry, status):
    stderr = sentry.stderr.decode(errors="replace")
    assert sentry.returncode == status, stderr
    assert "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, f"want one line on stderr, got:\n{stderr}"
    assert sentry.stdout == b""


def test_not_an_elf(tmp_path, run_sentry):
    text = tmp_path / "notes.txt"
    text.write_text("this is not an ELF file\n")
    text.chmod(0o755)
    _assert_rejected(run_sentry([text]), 126)


def test_32bit_elf(tmp_path, hello, run_sentry):
    elf32 = tmp_path / "hello32"
    source = tmp_path / "hello32.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    built = shutil.which("gcc") and subprocess.run(
        ["gcc", "-m32", "-static", "-o", str(elf32), str(source)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ).returncode == 0
    if not built:
        # No 32-bit toolchain (gcc-multilib): mark a copy of a 64-bit binary
        # as ELFCLASS32.
        data = bytearray(hello.read_bytes())
        data[EI_CLASS] = ELFCLASS32
        elf32.write_bytes(bytes(data))
        elf32.chmod(0o755)
    assert elf32.read_bytes()[EI_CLASS] == ELFCLASS32
    _assert_rejected(run_sentry([elf32]), 126)


def test_truncated_elf(tmp_path, hello, run_sentry):
    truncated = tmp_path / "truncated"
    truncated.write_bytes(hello.read_bytes()[:100])
    truncated.chmod(0o755)
    _assert_rejected(run_sentry([truncated]), 126)


def test_missing_file(tmp_path, run_sentry):
    _assert_rejected(run_sentry([tmp_path / "does-not-exist"]), 127)


def test_directory(tmp_path, run_sentry):
    _assert_rejected(run_sentry([tmp_path]), 126)
