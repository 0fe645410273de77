"""Writing files (issue 3, first step): busybox applets that create, change
and remove files, natively and under kvmsentry, compared; and isolation:
nothing the guest writes reaches the host.

Natively a script works in a fresh directory under pytest's tmp_path;
under kvmsentry the same script works in the guest's /tmp (its tmpfs).
The base directory is the script's $1, and scripts only print what does
not depend on it or on the file system type (no directory sizes, no
inode numbers).
"""

import hashlib
import os
import shutil
import stat

import pytest

from conftest import BUSYBOX

pytestmark = pytest.mark.requires_kvm

PRELUDE = 'B=/bin/busybox; cd "$1" || exit 99\n'

SCRIPTS = {
    "mkdir_mv_rm": """
        $B mkdir -p a/b && echo hi > a/b/f && $B cat a/b/f && $B ls -la a/b | $B wc -l
        $B mv a/b/f a/g && $B ls a && $B cat a/g
        $B rmdir a; echo "rmdir $?"
        $B rm -r a && $B ls; echo "ls $?"
        $B mkdir d1 && $B mv d1 d1/sub; echo "mv into itself $?"
        $B mkdir -p d2/x && $B rmdir d2; echo "rmdir non-empty $?"
    """,
    "links_and_stat": """
        echo data > g && $B ln -s g l && $B readlink l && $B cat l
        $B ln g h && $B stat -c '%s %F %a %h' g h l
        $B ln g h; echo "ln exists $?"
        $B chmod 4751 g && $B stat -c '%a' g && $B chmod u-s,o+w g && $B stat -c '%A' h
        $B mkdir -m 700 priv && $B stat -c '%a %F %h' priv
        $B find . -type f | $B sort
        $B ls -l l | $B cut -c1-10
    """,
    "sort_sed_awk": """
        printf 'c\\nb\\na\\nb\\n' > s.txt && $B sort -o s.txt s.txt && $B cat s.txt
        $B uniq -c s.txt
        $B sed -i 's/b/B/' s.txt && $B cat s.txt
        $B awk '{print NR": "$0}' s.txt > n.txt && $B cat n.txt
        $B grep -r B . | $B sort
        $B head -n 2 n.txt && $B tail -n 1 n.txt
    """,
    "cp_tar_gzip": """
        $B mkdir -p a/b && echo one > a/one && echo two > a/b/two && $B ln -s one a/l
        $B cp -a a c && $B find c | $B sort && $B readlink c/l
        $B tar cf t.tar a && $B mkdir x && $B tar xf t.tar -C x && $B find x | $B sort
        $B cat x/a/b/two
        $B md5sum a/one x/a/one
        $B gzip a/one && $B ls a && $B gunzip a/one.gz && $B cat a/one
        $B sha1sum t.tar > /dev/null && echo sha1 ok
    """,
    "dd_touch": """
        $B dd if=/dev/zero of=z bs=1M count=4 2>/dev/null; $B stat -c %s z; $B md5sum z
        $B dd if=/dev/zero bs=1M count=16 2>/dev/null | $B wc -c
        $B touch -d '2001-02-03 04:05:06' z && $B stat -c %Y z
        $B truncate -s 10 z 2>/dev/null || $B dd if=/dev/null of=z bs=1 seek=10 2>/dev/null
        $B stat -c %s z
        echo abc >> z && $B stat -c %s z && $B tail -c 4 z
        : > z && $B stat -c %s z
    """,
    "errors": """
        $B mkdir e; $B mkdir e; echo "mkdir $?"
        $B rm nothing; echo "rm $?"
        $B rmdir nothing; echo "rmdir $?"
        echo x > f; $B mkdir f/sub; echo "mkdir in file $?"
        $B cat f/x; echo "cat $?"
        $B ln -s loop1 loop2 && $B ln -s loop2 loop1 && $B cat loop1; echo "loop $?"
    """,
}


def _write_script(tmp_path, name):
    script = tmp_path / f"{name}.sh"
    body = "\n".join(line.strip() for line in SCRIPTS[name].strip().splitlines())
    script.write_text(PRELUDE + body + "\n")
    return script


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_busybox_file_applets(busybox, run_native, run_sentry, assert_same, tmp_path, name):
    script = _write_script(tmp_path, name)
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}
    native = run_native([busybox, "sh", script, work], env=env)
    sentry = run_sentry([busybox, "sh", script, "/tmp"], env=env)
    assert native.returncode == 0, native.stderr.decode(errors="replace")
    # busybox names the directory in some messages: make them comparable.
    native.stderr = native.stderr.replace(bytes(work), b"/tmp")
    assert_same(native, sentry)


def _snapshot(path):
    """Every name beneath ``path`` with its lstat fields and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            out[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                      st.st_nlink, digest)
    return out


@pytest.fixture
def guest_root(tmp_path, busybox):
    """A small guest root: busybox, an /etc and a tree to change."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "keep.txt").write_text("keep\n")
    (root / "data" / "sub" / "deep.txt").write_text("deep\n")
    (root / "data" / "link").symlink_to("keep.txt")
    return root


def test_root_stays_untouched(run_sentry, guest_root):
    """Edits, deletes, renames, chmods under --root: the guest sees them, the host not."""
    before = _snapshot(guest_root.parent)
    script = (
        "B=/bin/busybox; set -e\n"
        "$B chown 5:5 /etc && $B chmod 000 /etc/passwd\n"
        "echo intruder >> /etc/passwd\n"
        "$B rm /data/keep.txt /data/link\n"
        "$B mv /data/sub /moved\n"
        "$B touch -d 2000-01-01 /etc/passwd\n"
        "$B mkdir -p /new/dir && echo x > /new/dir/f\n"
        "$B sed -i s/deep/DEEP/ /moved/deep.txt\n"
        "$B rm -r /data\n"
        "$B ln -s /etc/passwd /pwlink\n"
        "$B ls /; $B cat /pwlink /moved/deep.txt; $B stat -c '%a %u' /etc/passwd /etc\n"
    )
    cp = run_sentry(["/bin/busybox", "sh", "-c", script], options=["--root", guest_root])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert cp.stdout == (b"bin\netc\nmoved\nnew\npwlink\ntmp\n"
                         b"root:x:0:0:root:/root:/bin/sh\nintruder\nDEEP\n0 0\n755 5\n")
    assert _snapshot(guest_root.parent) == before


def test_default_root_writes_stay_in_memory(run_sentry, busybox, tmp_path):
    """With the host's / as the root, a guest's writes still never reach it."""
    (tmp_path / "old").write_text("old\n")
    before = _snapshot(tmp_path)
    script = (
        f"cd {tmp_path} && echo new > new && echo more >> old && /bin/busybox rm -f old"
        " && /bin/busybox mkdir d && /bin/busybox ls"
    )
    cp = run_sentry([busybox, "sh", "-c", script])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert cp.stdout == b"d\nnew\n"
    assert _snapshot(tmp_path) == before


def test_tmp_is_private_and_empty(run_sentry, busybox):
    cp = run_sentry([busybox, "sh", "-c",
                     "/bin/busybox ls -a /tmp; /bin/busybox stat -c '%a' /tmp;"
                     " /bin/busybox stat -f -c %T /tmp; /bin/busybox df /tmp >/dev/null; echo $?"])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert cp.stdout == b".\n..\n1777\ntmpfs\n0\n"


def test_root_escapes_stay_inside(run_sentry, guest_root):
    """With --root DIR: "..", absolute and relative symlinks out of DIR and
    /proc/self/root/.. all name files inside DIR (issue 3, acceptance 4);
    the sentry opens host files beneath DIR (vfs.hostfs)."""
    (guest_root.parent / "secret").write_text("SECRET\n")
    (guest_root / "data" / "abs").symlink_to(guest_root.parent / "secret")
    (guest_root / "data" / "rel").symlink_to("../../secret")
    (guest_root / "data" / "up").symlink_to("/../../..")
    (guest_root / "data" / "proc").symlink_to("/proc/self/root/..")
    script = (
        "B=/bin/busybox\n"
        "$B cat /../../etc/passwd /../secret /data/abs /data/rel /data/up/secret"
        " /proc/self/root/../secret /data/proc/secret 2>&1\n"
        "$B ls /proc/self/root/.. /data/up /data/proc | $B sort -u\n"
    )
    cp = run_sentry(["/bin/busybox", "sh", "-c", script], options=["--root", guest_root])
    out = cp.stdout.decode()
    assert "SECRET" not in out, out
    assert out.startswith("root:x:0:0:root:/root:/bin/sh\n"), out
    assert out.count("No such file or directory") == 6, out
    assert out.endswith("bin\ndata\netc\ntmp\n"), out
