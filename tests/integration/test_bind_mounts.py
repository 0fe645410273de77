"""--mount HOST:GUEST[:ro|rw] under the real sandbox (issue 3)."""

import os
import shutil
import subprocess

from conftest import sentry_command


def _snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else b""
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


def test_ro_mount_reads_and_gives_erofs(run_sentry, busybox, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello\n")
    before = _snapshot(data)
    script = (
        "/bin/busybox cat /mnt/data/hello.txt; "
        "/bin/busybox touch /mnt/data/hello.txt 2>&1; echo touch=$?; "
        "/bin/busybox touch /mnt/data/new 2>&1; echo new=$?; "
        "/bin/busybox grep /mnt/data /proc/mounts"
    )
    cp = run_sentry([busybox, "sh", "-c", script], options=["--mount", f"{data}:/mnt/data:ro"])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    out = cp.stdout.decode()
    assert out.startswith("hello\n")
    assert "Read-only file system" in out
    assert "touch=1" in out and "new=1" in out
    assert f"{data} /mnt/data overlay ro,relatime 0 0" in out
    assert _snapshot(data) == before


def test_rw_mount_writes_through_and_stays_confined(run_sentry, busybox, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "outside").write_text("outside\n")
    script = (
        "set -e; cd /mnt/data; echo written > out.txt; /bin/busybox mkdir d; "
        "/bin/busybox ln -s /escape abs; echo via-abs > abs; "
        "echo via-dotdot > ../../../../outside; "
        "/bin/busybox cat /outside; /bin/busybox ls /mnt/data"
    )
    cp = run_sentry([busybox, "sh", "-c", script], options=["--mount", f"{data}:/mnt/data:rw"])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert cp.stdout == b"via-dotdot\nabs\nd\nout.txt\n"
    assert (data / "out.txt").read_text() == "written\n"
    assert (data / "d").is_dir()
    assert os.readlink(data / "abs") == "/escape"
    assert (tmp_path / "outside").read_text() == "outside\n"
    assert not os.path.exists("/escape")
    assert sorted(os.listdir(tmp_path)) == ["data", "outside"]


def test_rw_mount_ftruncate_and_truncate(run_sentry, busybox, tmp_path):
    """truncate(1) uses ftruncate(2) on a file open for writing beneath a
    rw mount; truncate(2) by path works too; both reach the host file."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "t").write_bytes(b"x" * 10000)
    (data / "u").write_bytes(b"y" * 10)
    script = ("set -e; /bin/busybox truncate -s 100 /mnt/t; "
              "/bin/busybox truncate -s 20000 /mnt/u; /bin/busybox wc -c /mnt/t /mnt/u")
    cp = run_sentry([busybox, "sh", "-c", script], options=["--mount", f"{data}:/mnt:rw"])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert (data / "t").stat().st_size == 100
    assert (data / "u").read_bytes() == b"y" * 10 + bytes(19990)


def test_binary_and_cwd_beneath_a_mount(run_sentry, busybox, tmp_path):
    """`--mount DIR:/work --cwd /work/sub ../busybox`: the program and the
    working directory are found in the sandbox's tree (the guest path need
    not exist on the host), and /proc/self/exe names the guest path."""
    host = tmp_path / "d"
    (host / "sub").mkdir(parents=True)
    shutil.copy(busybox, host / "busybox")
    r = subprocess.run([*sentry_command(), "boot", "--mount", f"{host}:/kvmsentry-work",
                        "--cwd", "/kvmsentry-work/sub", "../busybox", "sh", "-c",
                        "pwd; readlink /proc/self/exe"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"/kvmsentry-work/sub\n/kvmsentry-work/busybox\n"


def test_relative_binary_is_looked_up_from_cwd(run_native, busybox, tmp_path):
    """`--cwd DIR ./prog` (no --root, no --mount) runs DIR/prog, as execve
    would from DIR, whatever kvmsentry's own working directory is; a
    relative symlink to it too. Was: "No such file or directory" (127)."""
    host = tmp_path / "d"
    host.mkdir()
    shutil.copy(busybox, host / "busybox")
    os.symlink("busybox", host / "link")
    for binary in ("./busybox", "busybox", "link"):
        argv = [binary, "sh", "-c", "pwd; readlink /proc/self/exe"]
        native = run_native([host / binary, *argv[1:]], cwd=host)
        r = subprocess.run([*sentry_command(), "boot", "--cwd", str(host), *argv],
                           capture_output=True, timeout=60, cwd="/")
        assert (r.returncode, r.stdout) == (native.returncode, native.stdout), r.stderr
