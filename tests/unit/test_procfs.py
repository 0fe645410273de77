"""/proc generated from the sentry's state (kernel/procfs.py): formats, with
a fake kernel, processes and tasks; lookups through files.py."""

import os
import re
import types

import pytest

from kvmsentry.kernel import files as F
from kvmsentry.kernel import procfs
from kvmsentry.kernel.fd import O_CLOEXEC, O_DIRECTORY, O_RDONLY, DevNull, FdTable
from kvmsentry.kernel.mm import PROT_EXEC, PROT_READ, PROT_WRITE, Vma
from kvmsentry.kernel.syscalls.table import SyscallError
from kvmsentry.kernel.task import Process, Task


class FakeMM:
    def __init__(self, vmas=(), pages=0):
        self.vmas = list(vmas)
        self.pages = {i: 0 for i in range(pages)}
        self.brk_start = 0x600000


EXE = "/usr/bin/prog"
VMAS = [
    Vma(0x400000, 0x401000, PROT_READ, name=EXE),
    Vma(0x401000, 0x480000, PROT_READ | PROT_EXEC, name=EXE),
    Vma(0x480000, 0x490000, PROT_READ | PROT_WRITE, name=EXE),
    Vma(0x490000, 0x4b0000, PROT_READ | PROT_WRITE, name="[heap]"),
    Vma(0x7f0000000000, 0x7f0000002000, PROT_READ | PROT_WRITE, shared=True),
    Vma(0x7ffffffde000, 0x7ffffffff000, PROT_READ | PROT_WRITE, name="[stack]"),
]


@pytest.fixture
def kernel(tmp_path):
    memory = types.SimpleNamespace(nframes=1 << 18, frames_in_use=1 << 10)
    k = types.SimpleNamespace(processes={}, tasks={}, next_pid=4, boot_time=0.0,
                              platform=types.SimpleNamespace(memory=memory))
    init = Process(pid=1, ppid=0, exe=EXE, argv=[b"prog", b"-x", b""], envp=[b"A=1"],
                   root=str(tmp_path), cwd="/")
    child = Process(pid=3, ppid=1, exe="/bin/sh", argv=[b"sh"], root=str(tmp_path),
                    mounts=F.mounts_of(init))
    t1 = Task(tid=1, process=init, mm=FakeMM(VMAS, pages=5), fds=FdTable(), kernel=k)
    t2 = Task(tid=2, process=init, mm=t1.mm, fds=t1.fds, kernel=k)
    t3 = Task(tid=3, process=child, mm=FakeMM(), fds=FdTable(), kernel=k, comm=b"sh")
    init.tasks, child.tasks = [t1, t2], [t3]
    t2.waiting_on = object()
    k.processes = {1: init, 3: child}
    k.tasks = {1: t1, 2: t2, 3: t3}
    return k


@pytest.fixture
def task(kernel):
    return kernel.tasks[1]


def read(task, path):
    f = F.open_path(task, F.AT_FDCWD, path, O_RDONLY)
    return f.read(1 << 20)


def ls(task, path):
    d = F.open_path(task, F.AT_FDCWD, path, O_DIRECTORY)
    return [e.d_name for _, e in d.getdents()][2:]


def test_maps_format(task):
    lines = procfs.maps_of(VMAS).decode().splitlines()
    assert lines[0] == "00400000-00401000 r--p 00000000 00:00 0" + " " * 34 + EXE
    assert lines[1].startswith("00401000-00480000 r-xp ") and lines[1].index(EXE) == 73
    assert lines[3].endswith(" [heap]") and lines[3].index("[heap]") == 73
    assert lines[4] == "7f0000000000-7f0000002000 rw-s 00000000 00:00 0 "
    assert lines[5].startswith("7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 ")
    assert lines[5].index("[stack]") == 73
    assert read(task, b"/proc/self/maps") == procfs.maps_of(VMAS)


def test_status(task):
    text = read(task, b"/proc/self/status").decode()
    fields = dict(line.split(":\t", 1) for line in text.splitlines())
    assert fields["Name"] == "prog" and fields["Pid"] == "1" and fields["PPid"] == "0"
    assert fields["Tgid"] == "1" and fields["Threads"] == "2" and fields["Umask"] == "0022"
    assert fields["State"] == "R (running)"
    assert fields["Uid"] == "0\t0\t0\t0" and fields["FDSize"] == "64"
    size_kb = sum(v.end - v.start for v in VMAS) >> 10
    assert fields["VmSize"] == "%8d kB" % size_kb and fields["VmRSS"] == "%8d kB" % 20
    assert fields["VmStk"] == "%8d kB" % 132
    for key in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"):
        assert re.fullmatch(r"[0-9a-f]{16}", fields[key])
    assert fields["Cpus_allowed_list"].startswith("0")


def test_status_signal_masks(task):
    task.process.sigactions = {2: (1).to_bytes(8, "little") + bytes(24),
                               15: (0x401000).to_bytes(8, "little") + bytes(24)}
    task.sigmask = 1 << 9
    text = read(task, b"/proc/self/status").decode()
    assert "SigIgn:\t0000000000000002\n" in text
    assert "SigCgt:\t0000000000004000\n" in text
    assert "SigBlk:\t0000000000000200\n" in text


def test_stat_fields(task, kernel):
    fields = read(task, b"/proc/self/stat").decode().split()
    assert len(fields) == 52
    assert fields[:8] == ["1", "(prog)", "R", "0", "1", "1", "0", "-1"]
    assert fields[19] == "2"  # num_threads
    child = read(task, b"/proc/3/stat").decode().split()
    assert child[:4] == ["3", "(sh)", "R", "1"]
    assert read(task, b"/proc/1/task/2/stat").decode().split()[:3] == ["2", "(prog)", "S"]


def test_cmdline_environ_comm(task):
    assert read(task, b"/proc/self/cmdline") == b"prog\0-x\0\0"
    assert read(task, b"/proc/self/environ") == b"A=1\0"
    assert read(task, b"/proc/self/comm") == b"prog\n"
    assert read(task, b"/proc/3/comm") == b"sh\n"


def test_links(task):
    look = lambda p: F.node_readlink(F.lookup(task, F.AT_FDCWD, p, follow=False))  # noqa
    assert look(b"/proc/self") == b"1"
    assert look(b"/proc/thread-self") == b"1/task/1"
    assert look(b"/proc/self/exe") == EXE.encode()
    assert look(b"/proc/3/exe") == b"/bin/sh"
    assert look(b"/proc/self/cwd") == b"/" and look(b"/proc/self/root") == b"/"


def test_listings_show_only_the_sandbox(task):
    names = ls(task, b"/proc")
    assert [n for n in names if n.isdigit()] == [b"1", b"3"]
    for n in (b"self", b"thread-self", b"cpuinfo", b"meminfo", b"mounts", b"sys"):
        assert n in names
    assert ls(task, b"/proc/self/task") == [b"1", b"2"]
    assert b"task" not in ls(task, b"/proc/1/task/2")
    assert set(ls(task, b"/proc/1")) >= {b"exe", b"cmdline", b"maps", b"status", b"fd"}
    # A host pid, or a tid not in the list, is not there.
    with pytest.raises(SyscallError):
        F.lookup(task, F.AT_FDCWD, b"/proc/%d/status" % os.getpid())
    assert F.lookup(task, F.AT_FDCWD, b"/proc/2/status").kind == F.PROCFILE  # a tid
    assert ls(task, b"/proc/sys/kernel") == [b"ostype", b"osrelease", b"hostname"]


def test_fd_and_fdinfo(task):
    fd = task.fds.install(DevNull(guest_path=b"/dev/null"), cloexec=True)
    assert ls(task, b"/proc/self/fd") == [b"%d" % fd]
    assert ls(task, b"/proc/self/fdinfo") == [b"%d" % fd]
    info = read(task, b"/proc/self/fdinfo/%d" % fd).decode()
    flags = int(re.search(r"^flags:\t(0[0-7]+)$", info, re.M).group(1), 8)
    assert info.startswith("pos:\t0\nflags:\t0") and flags & O_CLOEXEC
    assert "mnt_id:\t" in info
    assert F.node_readlink(F.lookup(task, F.AT_FDCWD, b"/proc/1/fd/%d" % fd,
                                    follow=False)) == b"/dev/null"


def test_root_files(task, kernel):
    mem = read(task, b"/proc/meminfo").decode()
    assert "MemTotal:        1048576 kB\n" in mem
    assert "MemFree:         1044480 kB\n" in mem  # (nframes - frames_in_use) pages
    assert re.fullmatch(rb"\d+\.\d\d \d+\.\d\d\n", read(task, b"/proc/uptime"))
    assert read(task, b"/proc/loadavg") == b"0.00 0.00 0.00 2/3 3\n"
    stat = read(task, b"/proc/stat").decode()
    assert stat.startswith("cpu  0 0 0") and re.search(r"^btime \d+$", stat, re.M)
    assert read(task, b"/proc/version").startswith(b"Linux version 6.1.0-kvmsentry (")
    assert b"\ttmpfs\n" in read(task, b"/proc/filesystems")
    assert read(task, b"/proc/sys/kernel/ostype") == b"Linux\n"
    assert read(task, b"/proc/sys/kernel/osrelease") == b"6.1.0-kvmsentry\n"
    assert read(task, b"/proc/sys/kernel/hostname") == b"kvmsentry\n"
    # LTP fcntl30/fcntl37 read it (fs/pipe.c pipe_max_size, 1 MiB by default).
    assert ls(task, b"/proc/sys") == [b"fs", b"kernel"]
    assert ls(task, b"/proc/sys/fs") == [b"pipe-max-size"]
    assert read(task, b"/proc/sys/fs/pipe-max-size") == b"1048576\n"
    assert read(task, b"/proc/cpuinfo").count(b"processor") >= 1
    assert b" /tmp tmpfs " in read(task, b"/proc/mounts")


def test_dev_listing(task):
    names = ls(task, b"/dev")
    for n in (b"null", b"zero", b"full", b"random", b"urandom", b"tty", b"stdin",
              b"stdout", b"stderr", b"fd", b"shm"):
        assert n in names
    f = F.open_path(task, F.AT_FDCWD, b"/dev/shm/x", os.O_CREAT | os.O_RDWR)
    assert f.write(b"hi") == 2
    assert ls(task, b"/dev/shm") == [b"x"]
