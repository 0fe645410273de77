"""Edges a newcomer hit: closed stdio, SIGPIPE, stack overflow, read-only
files, exec permission, #! scripts. Each compares with the native run."""

import os
import subprocess

import pytest

from conftest import BUSYBOX, sentry_command

pytestmark = pytest.mark.requires_kvm


def _shell(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], capture_output=True, timeout=60)


@pytest.mark.parametrize("redirect", ["<&-", ">&-"])
def test_closed_stdio_stays_closed(redirect, busybox):
    """A closed fd 0 or 1 is EBADF in the guest, not an fd kvmsentry opened."""
    applet = "cat" if redirect == "<&-" else "echo hi"
    sentry_cmd = " ".join(sentry_command()) + f" boot {BUSYBOX} {applet} {redirect}"
    native = _shell(f"{BUSYBOX} {applet} {redirect}")
    sentry = _shell(sentry_cmd)
    assert sentry.returncode == native.returncode
    assert sentry.stderr == native.stderr
    assert b"Bad file descriptor" in sentry.stderr


def test_sigpipe_kills_the_writer(busybox):
    """`yes | head -1`: yes dies of SIGPIPE (141) as on Linux."""
    sentry = " ".join(sentry_command()) + f" boot {BUSYBOX} yes"
    native = _shell(f"{BUSYBOX} yes | head -1; echo ${{PIPESTATUS[0]}}")
    ours = _shell(f"{sentry} | head -1; echo ${{PIPESTATUS[0]}}")
    assert native.stdout == b"y\n141\n"
    assert ours.stdout == native.stdout, ours.stderr


def test_stack_overflow_is_sigsegv(guests, run_both):
    """Recursion stops at RLIMIT_STACK (8 MiB) with SIGSEGV, not at guest memory."""
    native, sentry = run_both([guests["stack_overflow"]])
    assert native.returncode == sentry.returncode == 139
    assert sentry.stdout == native.stdout == b"recursing\n"
    assert "SIGSEGV" in sentry.stderr.decode()


def test_host_files_stay_unchanged(tmp_path, busybox, run_sentry):
    """Writes to host files succeed in the guest's overlay and change nothing on the host."""
    target = tmp_path / "file"
    target.write_text("original\n")
    mode = target.stat().st_mode
    for argv in (["touch", target], ["rm", target], ["mkdir", tmp_path / "d"], ["chmod", "000", target]):
        sentry = run_sentry([BUSYBOX, *argv])
        assert sentry.returncode == 0, sentry.stderr.decode(errors="replace")
        assert b"unsupported syscall" not in sentry.stderr
    assert target.read_text() == "original\n" and target.stat().st_mode == mode
    assert not (tmp_path / "d").exists()


def test_not_executable(tmp_path, busybox, run_sentry):
    copy = tmp_path / "busybox"
    copy.write_bytes(open(BUSYBOX, "rb").read())
    copy.chmod(0o644)
    sentry = run_sentry([copy, "true"])
    assert sentry.returncode == 126
    assert b"Permission denied" in sentry.stderr
    assert b"Traceback" not in sentry.stderr


def test_script_runs(tmp_path, run_sentry):
    """boot of a #! script runs its interpreter (test_boot_script.py has more)."""
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    sentry = run_sentry([script])
    assert (sentry.returncode, sentry.stdout) == (0, b"hi\n"), sentry.stderr


def test_bad_cli_options(tmp_path):
    for options in (["--env", "NOEQUALS"], ["--cwd", str(tmp_path / "missing")], ["--memory", "100T"]):
        cp = subprocess.run(sentry_command() + ["boot", *options, BUSYBOX, "true"],
                            capture_output=True, timeout=60)
        assert cp.returncode == 2, cp.stderr
        assert b"Traceback" not in cp.stderr


def test_bad_profile_json(tmp_path):
    """--profile-json where nothing can be written is a usage error, not a
    traceback after the guest ran."""
    for path in (tmp_path / "missing" / "p.json", tmp_path):
        cp = subprocess.run(sentry_command() + ["boot", "--profile-json", str(path), BUSYBOX,
                                                "true"], capture_output=True, timeout=60)
        assert cp.returncode == 2, cp.stderr
        assert b"Traceback" not in cp.stderr and b"cannot write there" in cp.stderr


def test_bad_syscall_path_variable():
    """$KVMSENTRY_SYSCALL_PATH is checked like --syscall-path (was silently taken)."""
    env = dict(os.environ, KVMSENTRY_SYSCALL_PATH="bogus")
    cp = subprocess.run(sentry_command() + ["boot", BUSYBOX, "true"], capture_output=True,
                        timeout=60, env=env)
    assert cp.returncode == 2, cp.stderr
    assert b"KVMSENTRY_SYSCALL_PATH=bogus" in cp.stderr


def test_exec_of_a_file_the_guest_wrote(busybox, run_sentry):
    """A program copied into the guest's /tmp runs; without an x bit it is EACCES."""
    script = ("cp /bin/busybox /tmp/busybox && /tmp/busybox echo from tmp; "
              "printf '#!/tmp/busybox sh\\necho script in tmp\\n' > /tmp/s.sh; chmod +x /tmp/s.sh; /tmp/s.sh; "
              "chmod -x /tmp/busybox; /tmp/busybox true; echo \"status $?\"")
    sentry = run_sentry([BUSYBOX, "sh", "-c", script])
    assert sentry.stdout == b"from tmp\nscript in tmp\nstatus 126\n", sentry.stderr
