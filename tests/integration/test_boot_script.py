"""boot of a #! script runs its interpreter, as execve(2) does
(fs/binfmt_script.c): argv is the interpreter, its optional argument,
the script as named, then the script's arguments; a script may name a
script (up to 4 levels). Compared with the native execve of the same
file.
"""

import os

import pytest

pytestmark = pytest.mark.requires_kvm


def test_boot_script(busybox, tmp_path, run_native, run_sentry, assert_same):
    inner = tmp_path / "inner.sh"
    inner.write_text(f'#!{busybox} sh\necho "$0" "$#" "$@"\n')
    outer = tmp_path / "outer.sh"
    outer.write_text(f"#!{inner} -x\n")
    for script in (inner, outer):
        os.chmod(script, 0o755)
        native = run_native([script, "a", "b c"])
        sentry = run_sentry([script, "a", "b c"])
        assert native.returncode == 0, native.stderr
        assert_same(native, sentry)


def test_boot_script_errors(tmp_path, run_sentry):
    """An empty #! line is 126 (ENOEXEC), a missing interpreter 127."""
    empty = tmp_path / "empty.sh"
    empty.write_text("#!\n")
    missing = tmp_path / "missing.sh"
    missing.write_text("#!/nonexistent/sh\n")
    for script in (empty, missing):
        os.chmod(script, 0o755)
    assert run_sentry([empty]).returncode == 126
    assert run_sentry([missing]).returncode == 127
