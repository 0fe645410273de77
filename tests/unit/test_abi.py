"""Sizes and layouts of the ABI structs, against the kernel's headers."""

import ctypes
import os
import stat

import pytest

from kvmsentry.abi import auxv, structs


@pytest.mark.parametrize(
    "layout,size",
    [
        (structs.STAT, 144),
        (structs.STATX, 256),
        (structs.UTSNAME, 390),
        (structs.TIMESPEC, 16),
        (structs.TIMEVAL, 16),
        (structs.TIMEZONE, 8),
        (structs.STATFS, 120),
        (structs.RLIMIT, 16),
        (structs.SYSINFO, 112),
        (structs.IOVEC, 16),
        (structs.WINSIZE, 8),
        (structs.TERMIOS, 36),
        (structs.SIGACTION, 32),
        (structs.LINUX_DIRENT64_HEADER, 19),
        (structs.LINUX_DIRENT_HEADER, 18),
    ],
)
def test_struct_sizes(layout, size):
    assert layout.size == size


def test_auxv_values():
    # include/uapi/linux/auxvec.h, arch/x86/include/uapi/asm/auxvec.h
    assert (auxv.AT_NULL, auxv.AT_PHDR, auxv.AT_PHENT, auxv.AT_PHNUM) == (0, 3, 4, 5)
    assert (auxv.AT_PAGESZ, auxv.AT_BASE, auxv.AT_FLAGS, auxv.AT_ENTRY) == (6, 7, 8, 9)
    assert (auxv.AT_UID, auxv.AT_EUID, auxv.AT_GID, auxv.AT_EGID) == (11, 12, 13, 14)
    assert (auxv.AT_PLATFORM, auxv.AT_HWCAP, auxv.AT_CLKTCK) == (15, 16, 17)
    assert (auxv.AT_SECURE, auxv.AT_RANDOM, auxv.AT_HWCAP2) == (23, 25, 26)
    assert (auxv.AT_EXECFN, auxv.AT_SYSINFO_EHDR, auxv.AT_MINSIGSTKSZ) == (31, 33, 51)
    assert auxv.AT_NAMES[auxv.AT_RANDOM] == "AT_RANDOM"


def test_auxv_matches_host_getauxval():
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    assert libc.getauxval(auxv.AT_PAGESZ) == os.sysconf("SC_PAGE_SIZE")
    assert libc.getauxval(auxv.AT_UID) == os.getuid()
    assert libc.getauxval(auxv.AT_EGID) == os.getegid()
    assert ctypes.string_at(libc.getauxval(auxv.AT_PLATFORM)) == b"x86_64"


def test_pack_stat_from_host():
    st = os.stat("/")
    raw = structs.pack_stat(st)
    assert len(raw) == 144
    back = structs.unpack_stat(raw)
    assert back.st_ino == st.st_ino
    assert back.st_dev == st.st_dev
    assert stat.S_ISDIR(back.st_mode)
    assert back.st_mtime * 10**9 + back.st_mtime_nsec == st.st_mtime_ns
    # Offsets from arch/x86/include/uapi/asm/stat.h
    assert int.from_bytes(raw[8:16], "little") == st.st_ino
    assert int.from_bytes(raw[24:28], "little") == st.st_mode
    assert int.from_bytes(raw[48:56], "little") == st.st_size


def test_stat_from_host_matches_stat_fields_and_packs_pre_1970(tmp_path):
    p = tmp_path / "old"
    p.write_bytes(b"x")
    os.utime(p, ns=(-1_500_000_001, 86_400_000_000_007))
    st = os.stat(p)
    assert structs.Stat.from_host(st) == structs.Stat(**structs.stat_fields(st))
    back = structs.unpack_stat(structs.pack_stat(st))
    assert (back.st_atime, back.st_atime_nsec) == (-2, 499_999_999)
    assert (back.st_mtime, back.st_mtime_nsec) == (86_400, 7)


def test_pack_statfs_offsets():
    raw = structs.pack_statfs(structs.TMPFS_MAGIC, 4096, f_fsid=(1, 2), f_namelen=255,
                              f_frsize=4096)
    # include/uapi/asm-generic/statfs.h: f_fsid at 56, f_namelen 64, f_flags 80.
    assert int.from_bytes(raw[0:8], "little") == 0x01021994
    assert raw[56:64] == (1).to_bytes(4, "little") + (2).to_bytes(4, "little")
    assert int.from_bytes(raw[64:72], "little") == 255
    assert int.from_bytes(raw[80:88], "little") == structs.ST_VALID


def test_pack_stat_overrides_and_unknown_field():
    raw = structs.pack_stat(None, st_ino=7, st_size=12345)
    back = structs.unpack_stat(raw)
    assert (back.st_ino, back.st_size, back.st_blksize) == (7, 12345, 4096)
    with pytest.raises(TypeError):
        structs.pack_stat(st_inode=1)


def test_pack_statx_from_host():
    st = os.stat("/")
    raw = structs.pack_statx(st)
    assert len(raw) == 256
    back = structs.unpack_statx(raw)
    assert back.stx_mask & structs.STATX_BASIC_STATS == structs.STATX_BASIC_STATS
    assert back.stx_ino == st.st_ino
    assert back.stx_mode == st.st_mode
    assert back.stx_dev_major == os.major(st.st_dev)
    # include/uapi/linux/stat.h: stx_ino at 0x20, stx_mtime at 0x70
    assert int.from_bytes(raw[0x20:0x28], "little") == st.st_ino
    assert int.from_bytes(raw[0x70:0x78], "little", signed=True) == st.st_mtime_ns // 10**9
    assert structs.STATX_BASIC_STATS == 0x7FF


def test_utsname():
    raw = structs.pack_utsname(nodename=b"box")
    assert len(raw) == 390
    assert raw[0:6] == b"Linux\0"
    assert raw[65:69] == b"box\0"
    assert raw[4 * 65:4 * 65 + 7] == b"x86_64\0"
    with pytest.raises(ValueError):
        structs.pack_utsname(nodename=b"x" * 65)


def test_timespec_timeval_rlimit_roundtrip():
    assert structs.unpack_timespec(structs.pack_timespec(3, 500)) == (3, 500)
    assert structs.unpack_timespec(structs.pack_timespec_ns(3_000_000_007)) == (3, 7)
    assert structs.Timespec(1, 2).to_ns() == 1_000_000_002
    assert not structs.Timespec(0, 10**9).is_valid()
    assert structs.unpack_timeval(structs.pack_timeval(-1, 999_999)) == (-1, 999_999)
    raw = structs.pack_rlimit(1024, structs.RLIM_INFINITY)
    assert raw[8:] == b"\xff" * 8
    assert structs.unpack_rlimit(raw) == (1024, structs.RLIM_INFINITY)


def test_sysinfo_offsets():
    raw = structs.pack_sysinfo(uptime=5, loads=(1, 2, 3), totalram=100,
                               procs=7, mem_unit=4096)
    assert len(raw) == 112
    assert int.from_bytes(raw[0:8], "little") == 5
    assert int.from_bytes(raw[32:40], "little") == 100       # totalram
    assert int.from_bytes(raw[80:82], "little") == 7         # procs
    assert int.from_bytes(raw[104:108], "little") == 4096    # mem_unit


def test_iovecs():
    raw = structs.IOVEC.pack(0x1000, 5) + structs.IOVEC.pack(0x2000, 0)
    assert structs.unpack_iovecs(raw) == [(0x1000, 5), (0x2000, 0)]
    assert structs.unpack_iovec(raw[:16]).iov_len == 5


def test_winsize_termios():
    assert structs.unpack_winsize(structs.pack_winsize(50, 132)) == (50, 132, 0, 0)
    raw = structs.pack_termios(1, 2, 3, 4, 0, b"\x03\x1c")
    assert len(raw) == 36
    t = structs.unpack_termios(raw)
    assert t.c_lflag == 4 and t.c_cc[:2] == b"\x03\x1c" and len(t.c_cc) == structs.NCCS
    with pytest.raises(ValueError):
        structs.pack_termios(0, 0, 0, 0, 0, bytes(32))


def test_linux_dirent64():
    rec = structs.pack_linux_dirent64(42, 1, structs.DT_REG, b"hello.txt")
    # 19 + 9 + 1 = 29 -> 32
    assert len(rec) == 32
    assert int.from_bytes(rec[16:18], "little") == 32
    assert rec[18] == structs.DT_REG
    assert rec[19:29] == b"hello.txt\0"
    rec2 = structs.pack_linux_dirent64(43, 2, structs.DT_DIR, b"a" * 5)  # 19+6=25 -> 32
    assert len(rec2) == 32
    rec3 = structs.pack_linux_dirent64(44, 3, structs.DT_DIR, b"b" * 4)  # 19+5=24
    assert len(rec3) == 24
    entries = structs.unpack_linux_dirent64s(rec + rec2 + rec3)
    assert [e.d_name for e in entries] == [b"hello.txt", b"aaaaa", b"bbbb"]
    assert [e.d_ino for e in entries] == [42, 43, 44]
    with pytest.raises(ValueError):
        structs.pack_linux_dirent64(1, 1, 0, b"a\0b")


def test_linux_dirent_old():
    rec = structs.pack_linux_dirent(42, 1, structs.DT_DIR, b"ab")
    assert len(rec) % 8 == 0 and len(rec) == 24  # 18 + 2 + 2 = 22 -> 24
    assert rec[-1] == structs.DT_DIR
    assert rec[18:21] == b"ab\0"


def test_dt_from_mode():
    assert structs.dt_from_mode(stat.S_IFDIR | 0o755) == structs.DT_DIR
    assert structs.dt_from_mode(stat.S_IFREG) == structs.DT_REG
    assert structs.dt_from_mode(stat.S_IFLNK) == structs.DT_LNK
    assert structs.dt_from_mode(stat.S_IFSOCK) == structs.DT_SOCK


def test_sigaction_kernel_layout():
    raw = structs.pack_sigaction(0x401000, structs.SA_RESTORER | structs.SA_SIGINFO,
                                 0x402000, 1 << (10 - 1))
    assert len(raw) == 32
    assert int.from_bytes(raw[24:32], "little") == 1 << 9  # sa_mask last
    sa = structs.unpack_sigaction(raw)
    assert sa.sa_handler == 0x401000 and sa.sa_restorer == 0x402000
    assert sa.sa_flags == 0x04000004
