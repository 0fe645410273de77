"""Dynamic executables: Debian's own programs, and PT_INTERP as Linux loads it.

Each acceptance program of the dynamic-executables issue runs natively and
under kvmsentry (same status, stdout, stderr). The loader's part is checked
with a freestanding interpreter (tests/dynamic/interp_probe.c) that
reports AT_BASE/AT_ENTRY/AT_PHDR, and with the errnos Linux's
load_elf_binary gives for a missing or unusable interpreter.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_kvm

SOURCES = Path(__file__).resolve().parent.parent / "dynamic"
LD_SO = "/lib64/ld-linux-x86-64.so.2"


def _need(*paths):
    for path in paths:
        if not os.path.exists(path):
            pytest.skip(f"{path} is not installed")


def _gcc(*args):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    subprocess.run(["gcc", *map(str, args)], check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)


# -- Debian's programs ---------------------------------------------------------
def test_ls_root(run_both, assert_same):
    _need("/bin/ls")
    assert_same(*run_both(["/bin/ls", "/"]))


def test_ls_la_directory(tmp_path, run_both, assert_same):
    _need("/bin/ls")
    (tmp_path / "file").write_text("twelve bytes")
    (tmp_path / "sub").mkdir()
    os.symlink("file", tmp_path / "link")
    os.chmod(tmp_path / "file", 0o640)
    assert_same(*run_both(["/bin/ls", "-la", tmp_path]))


def test_sort(run_both, assert_same):
    _need("/usr/bin/sort")
    assert_same(*run_both(["/usr/bin/sort"], input="pear\napple\nfig\n10\n9\n"))


def test_env_printenv(run_both, assert_same):
    _need("/usr/bin/env", "/usr/bin/printenv")
    native, sentry = run_both(["/usr/bin/env", "-i", "A=1", "/usr/bin/printenv", "A"])
    assert native.stdout == b"1\n"
    assert_same(native, sentry)


BASH_SCRIPT = r"""
x=$(echo hello world | tr a-z A-Z | cut -d' ' -f2)
echo "x=$x"
for i in 3 1 2; do echo $i; done | sort -r | head -2
n=$(ls /usr/bin | wc -l); [ "$n" -gt 10 ] && echo "many programs"
echo "$(( 6 * 7 )) $(basename /a/b/c)"
"""


def test_bash_pipes_and_substitution(run_both, assert_same):
    _need("/bin/bash")
    assert_same(*run_both(["/bin/bash", "-c", BASH_SCRIPT]))


PYTHON_SCRIPT = r"""
import hashlib, json, re, subprocess, threading
print(json.dumps({"b": [1, 2.5, None], "a": "\u00e9"}, sort_keys=True))
print(hashlib.sha256(b"kvmsentry").hexdigest(), hashlib.md5(b"").hexdigest())
print(re.findall(r"(\w)(\d+)", "a1 b22 c333"), re.sub(r"\s+", "-", "a  b \t c"))
print(subprocess.run(["/bin/echo", "from", "echo"], capture_output=True, text=True).stdout, end="")
results = [None] * 4
def work(i):
    results[i] = sum(k * k for k in range(10000 * (i + 1)))
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(results)
"""


def test_python3_script(run_both, assert_same):
    _need("/usr/bin/python3")
    assert_same(*run_both(["/usr/bin/python3", "-c", PYTHON_SCRIPT]))


def test_python3_json_tool(tmp_path, run_both, assert_same):
    _need("/usr/bin/python3")
    doc = tmp_path / "doc.json"
    doc.write_text('{"name": "kvmsentry", "list": [1, 2, {"x": null}], "ok": true}')
    assert_same(*run_both(["/usr/bin/python3", "-m", "json.tool", doc]))


PERL_SCRIPT = r"""
my %h = (pear => 3, apple => 1, fig => 2);
for my $k (sort { $h{$a} <=> $h{$b} } keys %h) { print "$k=$h{$k}\n" }
my @n = ("a1b22c333" =~ /(\d+)/g);
print join(",", sort { $b <=> $a } @n), "\n";
(my $s = "Hello World") =~ s/(\w+)/\u\L$1/g;
print "$s ", scalar(keys %h), "\n";
"""


def test_perl_hashes_sort_regex(run_both, assert_same):
    _need("/usr/bin/perl")
    assert_same(*run_both(["/usr/bin/perl", "-e", PERL_SCRIPT]))


def test_gcc_compiles_and_runs(tmp_path, run_both, assert_same):
    _need("/usr/bin/gcc", "/bin/bash")
    (tmp_path / "hello.c").write_text(
        '#include <stdio.h>\nint main(void) { printf("hello %d\\n", 6 * 7); return 3; }\n')
    script = ('out=$(mktemp /tmp/hello.XXXXXX) && gcc -O2 hello.c -o "$out" && "$out"; '
              's=$?; rm -f "$out"; exit $s')
    native, sentry = run_both(["/bin/bash", "-c", script], cwd=tmp_path)
    assert native.stdout == b"hello 42\n"
    assert_same(native, sentry)


MULTIPROCESSING_SCRIPT = r"""
import multiprocessing as mp
if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(pool.map(abs, [-1, -2, -3, -4]))
"""


def test_python3_multiprocessing_pool(run_both, assert_same):
    """Worker processes synchronize on semaphores in shared memory (shared futexes)."""
    _need("/usr/bin/python3")
    assert_same(*run_both(["/usr/bin/python3", "-c", MULTIPROCESSING_SCRIPT]))


def test_shared_futex_across_fork(guests, run_both, assert_same):
    """A FUTEX_WAKE in the parent reaches the child's FUTEX_WAIT on a MAP_SHARED page."""
    assert_same(*run_both([guests["proc_shared_futex"]]))


def test_make_runs_recipes(tmp_path, run_both, assert_same):
    """make's children call setresuid/setresgid before running the recipe's shell."""
    _need("/usr/bin/make")
    (tmp_path / "Makefile").write_text("all: a b\n\t@echo all $^\na b:\n\t@echo making $@\n")
    assert_same(*run_both(["/usr/bin/make", "-C", tmp_path], cwd=tmp_path))


@pytest.mark.skipif(os.geteuid() != 0, reason="checks root's setresuid rules natively")
def test_setresuid_setresgid(guests, run_both, assert_same):
    assert_same(*run_both([guests["dyn_setresid"]]))


def test_fd_and_xattr_calls(guests, tmp_path, run_both, assert_same):
    """close_range, posix_fadvise, getxattr/listxattr as Linux answers them."""
    target = tmp_path / "file"
    target.write_text("x")
    assert_same(*run_both([guests["dyn_fdcalls"], target]))


# -- PT_INTERP -----------------------------------------------------------------
@pytest.fixture(scope="module")
def interp_dir(tmp_path_factory):
    """The probe interpreter and programs naming it (and broken interpreters)."""
    d = tmp_path_factory.mktemp("interp")
    _gcc("-O2", "-nostdlib", "-static-pie", "-fPIE", "-ffreestanding", "-fno-stack-protector",
         "-o", d / "probe", SOURCES / "interp_probe.c")
    user = SOURCES / "interp_user.c"
    _gcc("-O2", f"-Wl,--dynamic-linker={d / 'probe'}", "-o", d / "user_pie", user)
    _gcc("-O2", "-no-pie", f"-Wl,--dynamic-linker={d / 'probe'}", "-o", d / "user_nopie", user)
    _gcc("-O2", "-Wl,--dynamic-linker=/probe", "-o", d / "user_rooted", user)
    _gcc("-O2", f"-Wl,--dynamic-linker={d / 'written'}", "-o", d / "user_written", user)
    ld_so = Path(LD_SO).read_bytes()
    broken = {
        "missing": None,
        "noexec": (ld_so, 0o644),
        "dir": None,
        "short": (b"hello\n", 0o755),
        "text": (b"x" * 200, 0o755),
        "i386": (ld_so[:18] + b"\x03\x00" + ld_so[20:], 0o755),
        "truncated": (ld_so[:100], 0o755),
    }
    for name, content in broken.items():
        interp = d / "dir" if name == "dir" else d / f"interp_{name}"
        if name == "dir":
            interp.mkdir()
        elif content is not None:
            interp.write_bytes(content[0])
            interp.chmod(content[1])
        _gcc("-O2", f"-Wl,--dynamic-linker={interp}", "-o", d / f"user_{name}", user)
    return d


@pytest.mark.parametrize("program", ["user_pie", "user_nopie"])
def test_interpreter_auxv(interp_dir, program, run_both, assert_same):
    """AT_BASE is the interpreter's base, AT_ENTRY/AT_PHDR the program's (PIE and ET_EXEC)."""
    native, sentry = run_both([interp_dir / program, "one", "two"])
    assert b": NO" not in native.stdout.replace(b"ET_DYN: NO", b"")
    assert_same(native, sentry)


def test_interpreter_base_is_random(interp_dir, run_sentry):
    """Two execs put the interpreter and the PIE at different bases (ASLR)."""
    lines = set()
    for _ in range(2):
        cp = run_sentry([interp_dir / "user_pie", "addr"])
        assert cp.returncode == 0, cp.stderr
        lines.add(cp.stdout.splitlines()[-1])
    assert len(lines) == 2


def test_interpreter_written_by_the_guest(interp_dir, run_native, run_sentry, assert_same):
    """An interpreter the guest wrote (an overlay file in memory) is found and loaded."""
    script = f"cp {interp_dir / 'probe'} {interp_dir / 'written'} && {interp_dir / 'user_written'} x"
    native = run_native(["/bin/bash", "-c", script])
    os.unlink(interp_dir / "written")
    sentry = run_sentry(["/bin/bash", "-c", script])
    assert not (interp_dir / "written").exists()  # the host is untouched
    assert_same(native, sentry)


@pytest.mark.skipif(os.geteuid() != 0, reason="the native run needs chroot (root)")
def test_interpreter_inside_root(interp_dir, tmp_path, run_native, run_sentry, assert_same):
    """With --root, PT_INTERP is looked up in the guest's root, not the host's."""
    shutil.copy(interp_dir / "probe", tmp_path / "probe")
    shutil.copy(interp_dir / "user_rooted", tmp_path / "user")
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    native = run_native([chroot, tmp_path, "/user"])
    sentry = run_sentry(["/user"], options=["--root", tmp_path])
    assert b"PT_INTERP: /probe" in native.stdout
    assert_same(native, sentry)


def test_missing_interpreter_boot(interp_dir, run_sentry):
    """`kvmsentry boot` of a program whose interpreter is missing: 127 as a shell says."""
    cp = run_sentry([interp_dir / "user_missing"])
    assert cp.returncode == 127
    assert b"required file not found" in cp.stderr
    assert str(interp_dir / "interp_missing").encode() in cp.stderr


def test_missing_interpreter_from_bash(interp_dir, run_both, assert_same):
    """execve gives ENOENT; bash says "cannot execute: required file not found"."""
    native, sentry = run_both(["/bin/bash", "-c", str(interp_dir / "user_missing")])
    assert native.returncode == 127
    assert_same(native, sentry)


EXEC_ERRNO = r"""
import errno, os, sys
for path in sys.argv[1:]:
    try:
        os.execv(path, [path])
    except OSError as e:
        print(os.path.basename(path), errno.errorcode[e.errno])
"""


def test_bad_interpreter_errnos(interp_dir, run_both, assert_same):
    """The errno of execve for each broken interpreter, as Linux 6.x gives it:
    ENOENT (missing), EACCES (no x bit, a directory), EIO (shorter than an
    ELF header), ELIBBAD (not ELF, another machine, truncated headers)."""
    _need("/usr/bin/python3")
    names = ["missing", "noexec", "dir", "short", "text", "i386", "truncated"]
    native, sentry = run_both(["/usr/bin/python3", "-c", EXEC_ERRNO]
                              + [interp_dir / f"user_{n}" for n in names])
    assert native.stdout.split(b"\n")[0] == b"user_missing ENOENT"
    assert_same(native, sentry)


def _file_mappings(maps: bytes) -> list:
    """/proc/self/maps lines of files (perms, offset, dev, inode, path), without addresses."""
    rows = []
    for line in maps.decode().splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[5].startswith("/"):
            rows.append(fields[1:])
    return rows


def test_proc_maps_shows_the_program_and_interpreter_as_files(run_both):
    """The loader maps the program's and ld.so's segments as private file
    mappings (fs/binfmt_elf.c elf_map): offsets, device and inode as Linux."""
    _need("/bin/cat")
    native, sentry = run_both(["/bin/cat", "/proc/self/maps"])
    assert sentry.returncode == 0, sentry.stderr
    rows = _file_mappings(native.stdout)
    assert any(r[4].endswith("/cat") for r in rows) and any("ld-linux" in r[4] for r in rows)
    assert _file_mappings(sentry.stdout) == rows
