"""Linux x86-64 userspace ABI structs, as byte packers and unpackers.

Every struct here is the layout the *kernel* reads or writes across the
syscall boundary on x86-64 (LP64, little-endian), which is not always the
layout of the same-named glibc type (``struct termios``, ``struct
sigaction`` and ``struct stat`` of i386 differ). Each layout is a
``struct.Struct`` with an explicit ``<`` format (no implicit padding: every
pad byte is written out as ``x``) whose ``size`` equals the kernel's
``sizeof``; ``tests/unit/test_abi.py`` pins those sizes.

Conventions:
- ``pack_<name>(...) -> bytes`` builds what a syscall copies out to the
  guest; ``unpack_<name>(data) -> NamedTuple`` parses what it copies in.
  An unpacker takes exactly ``<NAME>.size`` bytes (``struct.error``
  otherwise: the caller copies in exactly that many bytes, so a short buffer
  is a sentry bug, not a guest error).
- Field names are the kernel's (``st_ino``, ``tv_nsec``, ``d_reclen``).
- Times are seconds + nanoseconds (or microseconds for ``timeval``).

Errno values are Python's ``errno`` module (identical on x86-64 Linux) and
are not redefined here.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

# ---------------------------------------------------------------------------
# struct timespec / struct timeval (include/uapi/linux/time_types.h
# __kernel_timespec, include/uapi/linux/time.h timeval; both are two longs
# on x86-64).

TIMESPEC = struct.Struct("<qq")
"""struct timespec {tv_sec: s64; tv_nsec: s64} -- 16 bytes."""

TIMEVAL = struct.Struct("<qq")
"""struct timeval {tv_sec: s64; tv_usec: s64} -- 16 bytes."""

NSEC_PER_SEC = 1_000_000_000
USEC_PER_SEC = 1_000_000


class Timespec(NamedTuple):
    tv_sec: int
    tv_nsec: int

    def to_ns(self) -> int:
        """Total nanoseconds (``tv_sec * 1e9 + tv_nsec``), no validation."""
        return self.tv_sec * NSEC_PER_SEC + self.tv_nsec

    def is_valid(self) -> bool:
        """True when ``0 <= tv_nsec < 1e9`` (else syscalls return EINVAL,
        see nanosleep(2), clock_settime(2))."""
        return 0 <= self.tv_nsec < NSEC_PER_SEC


class Timeval(NamedTuple):
    tv_sec: int
    tv_usec: int


def pack_timespec(tv_sec: int, tv_nsec: int) -> bytes:
    """Pack a struct timespec (16 bytes, include/uapi/linux/time_types.h)."""
    return TIMESPEC.pack(tv_sec, tv_nsec)


def pack_timespec_ns(ns: int) -> bytes:
    """Pack a struct timespec from a count of nanoseconds (``ns >= 0``)."""
    return TIMESPEC.pack(*divmod(ns, NSEC_PER_SEC))


def unpack_timespec(data: bytes) -> Timespec:
    """Parse a struct timespec (exactly 16 bytes) into a ``Timespec``."""
    return Timespec(*TIMESPEC.unpack(data))


def pack_timeval(tv_sec: int, tv_usec: int) -> bytes:
    """Pack a struct timeval (16 bytes, include/uapi/linux/time.h)."""
    return TIMEVAL.pack(tv_sec, tv_usec)


def unpack_timeval(data: bytes) -> Timeval:
    """Parse a struct timeval (exactly 16 bytes) into a ``Timeval``."""
    return Timeval(*TIMEVAL.unpack(data))


# ---------------------------------------------------------------------------
# struct timezone (include/uapi/linux/time.h), gettimeofday(2)/settimeofday(2).

TIMEZONE = struct.Struct("<ii")
"""struct timezone {tz_minuteswest: int; tz_dsttime: int} -- 8 bytes
(include/uapi/linux/time.h)."""


def pack_timezone(tz_minuteswest: int = 0, tz_dsttime: int = 0) -> bytes:
    """Pack a struct timezone (8 bytes, include/uapi/linux/time.h)."""
    return TIMEZONE.pack(tz_minuteswest, tz_dsttime)


# ---------------------------------------------------------------------------
# struct stat (arch/x86/include/uapi/asm/stat.h, the __x86_64__ branch):
# the layout of stat(2), fstat(2), lstat(2) and newfstatat(2).

STAT = struct.Struct(
    "<"
    "Q"  # st_dev
    "Q"  # st_ino
    "Q"  # st_nlink
    "I"  # st_mode
    "I"  # st_uid
    "I"  # st_gid
    "4x"  # __pad0
    "Q"  # st_rdev
    "q"  # st_size (bytes)
    "q"  # st_blksize (bytes)
    "q"  # st_blocks (512-byte units)
    "q"  # st_atime (ulong in the header; signed here so a pre-1970
    #      time packs to the same bits cp_new_stat stores)
    "Q"  # st_atime_nsec
    "q"  # st_mtime
    "Q"  # st_mtime_nsec
    "q"  # st_ctime
    "Q"  # st_ctime_nsec
    "24x"  # __unused[3]
)
"""struct stat on x86-64 -- 144 bytes (arch/x86/include/uapi/asm/stat.h)."""

STAT_FIELDS = (
    "st_dev", "st_ino", "st_nlink", "st_mode", "st_uid", "st_gid", "st_rdev",
    "st_size", "st_blksize", "st_blocks",
    "st_atime", "st_atime_nsec", "st_mtime", "st_mtime_nsec",
    "st_ctime", "st_ctime_nsec",
)


class Stat(NamedTuple):
    """The fields of the kernel's x86-64 struct stat (times split in
    seconds and nanoseconds, as the kernel stores them)."""

    st_dev: int = 0
    st_ino: int = 0
    st_nlink: int = 0
    st_mode: int = 0
    st_uid: int = 0
    st_gid: int = 0
    st_rdev: int = 0
    st_size: int = 0
    st_blksize: int = 4096
    st_blocks: int = 0
    st_atime: int = 0
    st_atime_nsec: int = 0
    st_mtime: int = 0
    st_mtime_nsec: int = 0
    st_ctime: int = 0
    st_ctime_nsec: int = 0

    @classmethod
    def from_host(cls, st: os.stat_result) -> "Stat":
        """The ``Stat`` of a host ``os.stat_result`` (as ``stat_fields``,
        without the dict: this is on fstat(2)'s hot path)."""
        a, m, c = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
        return cls(
            st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid,
            st.st_rdev, st.st_size, st.st_blksize, st.st_blocks,
            a // NSEC_PER_SEC, a % NSEC_PER_SEC,
            m // NSEC_PER_SEC, m % NSEC_PER_SEC,
            c // NSEC_PER_SEC, c % NSEC_PER_SEC,
        )


def stat_fields(st: os.stat_result) -> dict[str, int]:
    """Map a host ``os.stat_result`` to the kernel's struct stat fields.

    Times come from the ``st_*time_ns`` attributes (exact, no float
    rounding). Returns a dict suitable for ``Stat(**d)`` / ``pack_stat``.
    """
    out = {
        "st_dev": st.st_dev,
        "st_ino": st.st_ino,
        "st_nlink": st.st_nlink,
        "st_mode": st.st_mode,
        "st_uid": st.st_uid,
        "st_gid": st.st_gid,
        "st_rdev": st.st_rdev,
        "st_size": st.st_size,
        "st_blksize": st.st_blksize,
        "st_blocks": st.st_blocks,
    }
    for name in ("atime", "mtime", "ctime"):
        sec, nsec = divmod(getattr(st, f"st_{name}_ns"), NSEC_PER_SEC)
        out[f"st_{name}"] = sec
        out[f"st_{name}_nsec"] = nsec
    return out


def pack_stat(st: os.stat_result | Stat | None = None, **fields: int) -> bytes:
    """Pack a Linux x86-64 ``struct stat`` (144 bytes).

    ``st`` is a host ``os.stat_result`` (converted with ``Stat.from_host``), a
    ``Stat``, or None (all fields zero except ``st_blksize`` = 4096).
    Keyword ``fields`` (names from ``STAT_FIELDS``) override it, e.g.
    ``pack_stat(host_st, st_dev=0x2a)``. Unknown names raise TypeError.
    Source: arch/x86/include/uapi/asm/stat.h; stat(2) (type
    ``struct stat``; the kernel's is this one, glibc's x86-64 is the same).
    """
    if st is None:
        base = Stat()
    elif isinstance(st, Stat):
        base = st
    else:
        base = Stat.from_host(st)
    if fields:
        unknown = set(fields) - set(STAT_FIELDS)
        if unknown:
            raise TypeError(f"unknown struct stat fields: {sorted(unknown)}")
        base = base._replace(**fields)
    return STAT.pack(*base)


def unpack_stat(data: bytes) -> Stat:
    """Parse a 144-byte struct stat into a ``Stat`` (for tests/tracing)."""
    return Stat(*STAT.unpack(data))


# ---------------------------------------------------------------------------
# struct statx (include/uapi/linux/stat.h), statx(2).

STATX_TYPE = 0x00000001         # stx_mode & S_IFMT
STATX_MODE = 0x00000002         # stx_mode & ~S_IFMT
STATX_NLINK = 0x00000004
STATX_UID = 0x00000008
STATX_GID = 0x00000010
STATX_ATIME = 0x00000020
STATX_MTIME = 0x00000040
STATX_CTIME = 0x00000080
STATX_INO = 0x00000100
STATX_SIZE = 0x00000200
STATX_BLOCKS = 0x00000400
STATX_BASIC_STATS = 0x000007FF  # everything struct stat has
STATX_BTIME = 0x00000800
STATX_MNT_ID = 0x00001000
STATX_DIOALIGN = 0x00002000
STATX_ALL = 0x00000FFF          # deprecated: BASIC_STATS | BTIME
STATX__RESERVED = 0x80000000    # reserved: statx(2) fails with EINVAL

STATX_ATTR_COMPRESSED = 0x00000004
STATX_ATTR_IMMUTABLE = 0x00000010
STATX_ATTR_APPEND = 0x00000020
STATX_ATTR_NODUMP = 0x00000040
STATX_ATTR_ENCRYPTED = 0x00000800
STATX_ATTR_AUTOMOUNT = 0x00001000
STATX_ATTR_MOUNT_ROOT = 0x00002000
STATX_ATTR_VERITY = 0x00100000
STATX_ATTR_DAX = 0x00200000

STATX = struct.Struct(
    "<"
    "I"  # stx_mask
    "I"  # stx_blksize
    "Q"  # stx_attributes
    "I"  # stx_nlink
    "I"  # stx_uid
    "I"  # stx_gid
    "H"  # stx_mode
    "2x"  # __spare0
    "Q"  # stx_ino
    "Q"  # stx_size
    "Q"  # stx_blocks
    "Q"  # stx_attributes_mask
    "qI4x"  # stx_atime {tv_sec s64, tv_nsec u32, __reserved s32}
    "qI4x"  # stx_btime
    "qI4x"  # stx_ctime
    "qI4x"  # stx_mtime
    "I"  # stx_rdev_major
    "I"  # stx_rdev_minor
    "I"  # stx_dev_major
    "I"  # stx_dev_minor
    "Q"  # stx_mnt_id
    "I"  # stx_dio_mem_align
    "I"  # stx_dio_offset_align
    "96x"  # __spare3[12]
)
"""struct statx -- 256 bytes (include/uapi/linux/stat.h)."""


class Statx(NamedTuple):
    """Fields of struct statx, in layout order (timestamps split)."""

    stx_mask: int = 0
    stx_blksize: int = 4096
    stx_attributes: int = 0
    stx_nlink: int = 0
    stx_uid: int = 0
    stx_gid: int = 0
    stx_mode: int = 0
    stx_ino: int = 0
    stx_size: int = 0
    stx_blocks: int = 0
    stx_attributes_mask: int = 0
    stx_atime_sec: int = 0
    stx_atime_nsec: int = 0
    stx_btime_sec: int = 0
    stx_btime_nsec: int = 0
    stx_ctime_sec: int = 0
    stx_ctime_nsec: int = 0
    stx_mtime_sec: int = 0
    stx_mtime_nsec: int = 0
    stx_rdev_major: int = 0
    stx_rdev_minor: int = 0
    stx_dev_major: int = 0
    stx_dev_minor: int = 0
    stx_mnt_id: int = 0
    stx_dio_mem_align: int = 0
    stx_dio_offset_align: int = 0


def statx_fields(st: os.stat_result) -> dict[str, int]:
    """Map a host ``os.stat_result`` to struct statx fields.

    Sets ``stx_mask`` to STATX_BASIC_STATS (plus STATX_BTIME when the host
    result carries ``st_birthtime_ns``). Device numbers are split with
    ``os.major``/``os.minor``; ``stx_mode`` keeps type and permission bits.
    """
    mask = STATX_BASIC_STATS
    out = {
        "stx_blksize": st.st_blksize,
        "stx_nlink": st.st_nlink,
        "stx_uid": st.st_uid,
        "stx_gid": st.st_gid,
        "stx_mode": st.st_mode & 0xFFFF,
        "stx_ino": st.st_ino,
        "stx_size": st.st_size,
        "stx_blocks": st.st_blocks,
        "stx_rdev_major": os.major(st.st_rdev),
        "stx_rdev_minor": os.minor(st.st_rdev),
        "stx_dev_major": os.major(st.st_dev),
        "stx_dev_minor": os.minor(st.st_dev),
    }
    for name in ("atime", "mtime", "ctime"):
        sec, nsec = divmod(getattr(st, f"st_{name}_ns"), NSEC_PER_SEC)
        out[f"stx_{name}_sec"] = sec
        out[f"stx_{name}_nsec"] = nsec
    birth_ns = getattr(st, "st_birthtime_ns", None)
    if birth_ns is not None:
        mask |= STATX_BTIME
        out["stx_btime_sec"], out["stx_btime_nsec"] = divmod(birth_ns, NSEC_PER_SEC)
    out["stx_mask"] = mask
    return out


def pack_statx(st: os.stat_result | Statx | None = None, **fields: int) -> bytes:
    """Pack a ``struct statx`` (256 bytes, include/uapi/linux/stat.h).

    ``st`` is a host ``os.stat_result`` (via ``statx_fields``), a
    ``Statx``, or None (zeros, ``stx_blksize`` 4096); keyword ``fields``
    (``Statx`` field names) override it. Unknown names raise TypeError.
    The caller masks ``stx_mask`` to what statx(2) may report.
    """
    if st is None:
        base = Statx()
    elif isinstance(st, Statx):
        base = st
    else:
        base = Statx(**statx_fields(st))
    if fields:
        unknown = set(fields) - set(Statx._fields)
        if unknown:
            raise TypeError(f"unknown struct statx fields: {sorted(unknown)}")
        base = base._replace(**fields)
    return STATX.pack(*base)


def unpack_statx(data: bytes) -> Statx:
    """Parse a 256-byte struct statx into a ``Statx``."""
    return Statx(*STATX.unpack(data))


# ---------------------------------------------------------------------------
# struct statfs (include/uapi/asm-generic/statfs.h, which x86-64 uses with
# __statfs_word = __kernel_long_t), statfs(2)/fstatfs(2).

STATFS = struct.Struct(
    "<"
    "q"  # f_type (a *_SUPER_MAGIC, include/uapi/linux/magic.h)
    "q"  # f_bsize (bytes)
    "Q"  # f_blocks (f_frsize units)
    "Q"  # f_bfree
    "Q"  # f_bavail
    "Q"  # f_files
    "Q"  # f_ffree
    "II"  # f_fsid (__kernel_fsid_t: int val[2])
    "q"  # f_namelen
    "q"  # f_frsize (bytes)
    "q"  # f_flags (ST_* | ST_VALID)
    "32x"  # f_spare[4]
)
"""struct statfs on x86-64 -- 120 bytes (include/uapi/asm-generic/statfs.h)."""

ST_RDONLY = 0x0001  # include/linux/statfs.h
ST_VALID = 0x0020   # f_flags is meaningful (include/linux/statfs.h)

EXT4_SUPER_MAGIC = 0xEF53     # include/uapi/linux/magic.h
TMPFS_MAGIC = 0x01021994
PROC_SUPER_MAGIC = 0x9FA0


def pack_statfs(f_type: int, f_bsize: int, f_blocks: int = 0, f_bfree: int = 0,
                f_bavail: int = 0, f_files: int = 0, f_ffree: int = 0,
                f_fsid: tuple[int, int] = (0, 0), f_namelen: int = 255,
                f_frsize: int = 0, f_flags: int = ST_VALID) -> bytes:
    """Pack a struct statfs (120 bytes) for statfs(2)/fstatfs(2).

    ``f_fsid`` is the two 32-bit words of __kernel_fsid_t. Source:
    include/uapi/asm-generic/statfs.h.
    """
    return STATFS.pack(f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files,
                       f_ffree, *f_fsid, f_namelen, f_frsize, f_flags)


# ---------------------------------------------------------------------------
# struct new_utsname (include/uapi/linux/utsname.h), uname(2).

UTSNAME_FIELD_LEN = 65  # __NEW_UTS_LEN + 1
UTSNAME = struct.Struct("<65s65s65s65s65s65s")
"""struct new_utsname: sysname, nodename, release, version, machine,
domainname; each char[65], NUL-padded -- 390 bytes."""


def pack_utsname(
    sysname: bytes = b"Linux",
    nodename: bytes = b"localhost",
    release: bytes = b"6.1.0",
    version: bytes = b"#1 SMP",
    machine: bytes = b"x86_64",
    domainname: bytes = b"(none)",
) -> bytes:
    """Pack a struct new_utsname (390 bytes) for uname(2).

    Each field is at most 64 bytes (the 65th is the NUL); longer values
    raise ValueError. Source: include/uapi/linux/utsname.h.
    """
    fields = (sysname, nodename, release, version, machine, domainname)
    for f in fields:
        if len(f) >= UTSNAME_FIELD_LEN:
            raise ValueError(f"utsname field longer than 64 bytes: {f!r}")
    return UTSNAME.pack(*fields)


# ---------------------------------------------------------------------------
# struct rlimit (include/uapi/linux/resource.h), getrlimit(2)/prlimit64(2).

RLIMIT = struct.Struct("<QQ")
"""struct rlimit {rlim_cur: u64; rlim_max: u64} -- 16 bytes (as
struct rlimit64 of prlimit64(2); the same on x86-64)."""

RLIM_INFINITY = 0xFFFF_FFFF_FFFF_FFFF  # ~0UL


class Rlimit(NamedTuple):
    rlim_cur: int
    rlim_max: int


def pack_rlimit(rlim_cur: int, rlim_max: int) -> bytes:
    """Pack a struct rlimit (16 bytes); use RLIM_INFINITY for unlimited."""
    return RLIMIT.pack(rlim_cur, rlim_max)


def unpack_rlimit(data: bytes) -> Rlimit:
    """Parse a 16-byte struct rlimit."""
    return Rlimit(*RLIMIT.unpack(data))


# ---------------------------------------------------------------------------
# struct sysinfo (include/uapi/linux/sysinfo.h), sysinfo(2).

SYSINFO = struct.Struct(
    "<"
    "q"  # uptime (seconds)
    "3Q"  # loads[3] (fixed point, 1 << SI_LOAD_SHIFT == 1.0)
    "Q"  # totalram
    "Q"  # freeram
    "Q"  # sharedram
    "Q"  # bufferram
    "Q"  # totalswap
    "Q"  # freeswap
    "H"  # procs
    "H"  # pad
    "4x"  # alignment of totalhigh
    "Q"  # totalhigh
    "Q"  # freehigh
    "I"  # mem_unit (bytes)
    "4x"  # _f[0] + tail padding to 8
)
"""struct sysinfo on x86-64 -- 112 bytes (include/uapi/linux/sysinfo.h)."""

SI_LOAD_SHIFT = 16


def pack_sysinfo(
    uptime: int = 0,
    loads: tuple[int, int, int] = (0, 0, 0),
    totalram: int = 0,
    freeram: int = 0,
    sharedram: int = 0,
    bufferram: int = 0,
    totalswap: int = 0,
    freeswap: int = 0,
    procs: int = 1,
    totalhigh: int = 0,
    freehigh: int = 0,
    mem_unit: int = 1,
) -> bytes:
    """Pack a struct sysinfo (112 bytes) for sysinfo(2).

    Memory sizes are in units of ``mem_unit`` bytes; ``loads`` are fixed
    point with SI_LOAD_SHIFT fractional bits; ``uptime`` is seconds.
    """
    return SYSINFO.pack(
        uptime, *loads, totalram, freeram, sharedram, bufferram,
        totalswap, freeswap, procs, 0, totalhigh, freehigh, mem_unit,
    )


# ---------------------------------------------------------------------------
# struct iovec (include/uapi/linux/uio.h), readv(2)/writev(2).

IOVEC = struct.Struct("<QQ")
"""struct iovec {iov_base: void *; iov_len: size_t} -- 16 bytes."""

UIO_MAXIOV = 1024  # IOV_MAX: more iovecs make readv/writev fail EINVAL


class Iovec(NamedTuple):
    iov_base: int  # guest virtual address
    iov_len: int   # bytes


def unpack_iovec(data: bytes) -> Iovec:
    """Parse one 16-byte struct iovec."""
    return Iovec(*IOVEC.unpack(data))


def unpack_iovecs(data: bytes) -> list[Iovec]:
    """Parse an array of struct iovec; ``len(data)`` must be a multiple of
    16 (struct.error otherwise). The caller checks ``iovcnt <= UIO_MAXIOV``
    and the ssize_t overflow of the total length (EINVAL, readv(2))."""
    return [Iovec(*t) for t in IOVEC.iter_unpack(data)]


# ---------------------------------------------------------------------------
# struct winsize (include/uapi/asm-generic/termios.h), TIOCGWINSZ/TIOCSWINSZ.

WINSIZE = struct.Struct("<HHHH")
"""struct winsize {ws_row, ws_col, ws_xpixel, ws_ypixel: u16} -- 8 bytes."""


class Winsize(NamedTuple):
    ws_row: int = 24
    ws_col: int = 80
    ws_xpixel: int = 0
    ws_ypixel: int = 0


def pack_winsize(ws_row: int = 24, ws_col: int = 80, ws_xpixel: int = 0,
                 ws_ypixel: int = 0) -> bytes:
    """Pack a struct winsize (8 bytes) for ioctl TIOCGWINSZ (ioctl_tty(2))."""
    return WINSIZE.pack(ws_row, ws_col, ws_xpixel, ws_ypixel)


def unpack_winsize(data: bytes) -> Winsize:
    """Parse an 8-byte struct winsize (ioctl TIOCSWINSZ)."""
    return Winsize(*WINSIZE.unpack(data))


# ---------------------------------------------------------------------------
# struct termios, the kernel's (include/uapi/asm-generic/termbits.h, used by
# x86): ioctl TCGETS/TCSETS*. glibc's userland struct termios is larger
# (NCCS 32 plus c_ispeed/c_ospeed) and is converted by glibc; the guest's
# ioctl passes this 36-byte layout.

NCCS = 19
TERMIOS = struct.Struct("<IIIIB19s")
"""Kernel struct termios {c_iflag, c_oflag, c_cflag, c_lflag: u32;
c_line: u8; c_cc[19]: u8} -- 36 bytes."""


class Termios(NamedTuple):
    c_iflag: int
    c_oflag: int
    c_cflag: int
    c_lflag: int
    c_line: int
    c_cc: bytes  # NCCS (19) bytes, indexed by VINTR, VQUIT, ... (termbits.h)


def pack_termios(c_iflag: int, c_oflag: int, c_cflag: int, c_lflag: int,
                 c_line: int, c_cc: bytes) -> bytes:
    """Pack the kernel's struct termios (36 bytes) for ioctl TCGETS.

    ``c_cc`` is at most NCCS (19) bytes (shorter is NUL-padded, longer
    raises ValueError). Host ``termios.tcgetattr`` returns glibc's view
    (``cc`` of 32 entries); pass only its first 19 control characters.
    """
    if len(c_cc) > NCCS:
        raise ValueError(f"c_cc has {len(c_cc)} bytes, the kernel's has {NCCS}")
    return TERMIOS.pack(c_iflag, c_oflag, c_cflag, c_lflag, c_line, bytes(c_cc))


def unpack_termios(data: bytes) -> Termios:
    """Parse the kernel's 36-byte struct termios (ioctl TCSETS/TCSETSW/TCSETSF)."""
    return Termios(*TERMIOS.unpack(data))


# ---------------------------------------------------------------------------
# struct linux_dirent64 (include/linux/dirent.h), getdents64(2); and the old
# struct linux_dirent (fs/readdir.c), getdents(2).

S_IFMT = 0o170000  # file type bits of st_mode (include/uapi/linux/stat.h)

DT_UNKNOWN = 0
DT_FIFO = 1
DT_CHR = 2
DT_DIR = 4
DT_BLK = 6
DT_REG = 8
DT_LNK = 10
DT_SOCK = 12
DT_WHT = 14

LINUX_DIRENT64_HEADER = struct.Struct("<QqHB")
"""linux_dirent64 header {d_ino: u64; d_off: s64; d_reclen: u16;
d_type: u8} -- 19 bytes, followed by d_name (NUL-terminated)."""

LINUX_DIRENT_HEADER = struct.Struct("<QQH")
"""old linux_dirent header {d_ino: ulong; d_off: ulong; d_reclen: u16} --
18 bytes, then d_name, NUL, padding, and d_type in the record's last byte."""


def dt_from_mode(st_mode: int) -> int:
    """The DT_* type for an st_mode (fs_umode_to_dtype, include/linux/fs.h)."""
    return (st_mode & S_IFMT) >> 12


def _align8(n: int) -> int:
    return (n + 7) & ~7


def linux_dirent64_reclen(name: bytes) -> int:
    """d_reclen of a linux_dirent64 naming ``name``: 19 + len(name) + 1,
    rounded up to 8 bytes (fs/readdir.c filldir64)."""
    return _align8(LINUX_DIRENT64_HEADER.size + len(name) + 1)


def pack_linux_dirent64(d_ino: int, d_off: int, d_type: int, name: bytes) -> bytes:
    """Pack one struct linux_dirent64 record for getdents64(2).

    Returns ``d_reclen`` bytes (a multiple of 8): header, ``name``, NUL,
    zero padding. ``d_off`` is the opaque position of the *next* entry
    (what lseek(2) on the directory accepts). ``name`` must not contain
    NUL or be empty (ValueError). Source: include/linux/dirent.h,
    fs/readdir.c filldir64.
    """
    if not name or b"\0" in name:
        raise ValueError(f"bad directory entry name {name!r}")
    reclen = linux_dirent64_reclen(name)
    head = LINUX_DIRENT64_HEADER.pack(d_ino, d_off, reclen, d_type)
    return (head + name).ljust(reclen, b"\0")


def pack_linux_dirent(d_ino: int, d_off: int, d_type: int, name: bytes) -> bytes:
    """Pack one old struct linux_dirent record for getdents(2).

    Layout (fs/readdir.c filldir): 18-byte header, ``name``, NUL, zero
    padding, and ``d_type`` in the last byte; reclen = align8(18 +
    len(name) + 2). ValueError for an empty name or one containing NUL.
    """
    if not name or b"\0" in name:
        raise ValueError(f"bad directory entry name {name!r}")
    reclen = _align8(LINUX_DIRENT_HEADER.size + len(name) + 2)
    head = LINUX_DIRENT_HEADER.pack(d_ino, d_off, reclen)
    return (head + name).ljust(reclen - 1, b"\0") + bytes([d_type])


class LinuxDirent64(NamedTuple):
    d_ino: int
    d_off: int
    d_reclen: int
    d_type: int
    d_name: bytes


def unpack_linux_dirent64s(data: bytes) -> list[LinuxDirent64]:
    """Parse a getdents64(2) buffer into its records (tests/tracing).
    Raises ValueError on a malformed record (d_reclen too small/past end)."""
    out = []
    pos = 0
    while pos < len(data):
        d_ino, d_off, reclen, d_type = LINUX_DIRENT64_HEADER.unpack_from(data, pos)
        if reclen < LINUX_DIRENT64_HEADER.size + 1 or pos + reclen > len(data):
            raise ValueError(f"bad d_reclen {reclen} at offset {pos}")
        raw = data[pos + LINUX_DIRENT64_HEADER.size: pos + reclen]
        out.append(LinuxDirent64(d_ino, d_off, reclen, d_type, raw.split(b"\0", 1)[0]))
        pos += reclen
    return out


# ---------------------------------------------------------------------------
# struct sigaction, the kernel's x86-64 layout (include/linux/signal_types.h
# struct sigaction with arch/x86/include/asm/signal.h sigset_t), as passed to
# rt_sigaction(2). glibc's userland struct sigaction differs (its sigset_t is
# 128 bytes and sa_mask comes second).

SIGSET_SIZE = 8  # sizeof(sigset_t) in the kernel: _NSIG (64) bits
SIGACTION = struct.Struct("<QQQQ")
"""Kernel struct sigaction {sa_handler: ptr; sa_flags: ulong;
sa_restorer: ptr; sa_mask: u64} -- 32 bytes."""

SIG_DFL = 0
SIG_IGN = 1

SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_UNSUPPORTED = 0x00000400
SA_EXPOSE_TAGBITS = 0x00000800
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000


class Sigaction(NamedTuple):
    sa_handler: int = SIG_DFL   # guest address, SIG_DFL or SIG_IGN
    sa_flags: int = 0           # SA_* bits
    sa_restorer: int = 0        # guest address (with SA_RESTORER)
    sa_mask: int = 0            # bit (signo - 1) blocks signo


def pack_sigaction(sa_handler: int = SIG_DFL, sa_flags: int = 0,
                   sa_restorer: int = 0, sa_mask: int = 0) -> bytes:
    """Pack the kernel's struct sigaction (32 bytes) for rt_sigaction(2)'s
    ``oldact``."""
    return SIGACTION.pack(sa_handler, sa_flags, sa_restorer, sa_mask)


def unpack_sigaction(data: bytes) -> Sigaction:
    """Parse the kernel's 32-byte struct sigaction (rt_sigaction(2) ``act``)."""
    return Sigaction(*SIGACTION.unpack(data))
