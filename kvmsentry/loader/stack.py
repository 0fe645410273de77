"""The initial process stack of a new program, built as Linux builds it.

Sources: fs/exec.c (copy_strings, the argument pages) and fs/binfmt_elf.c
create_elf_tables (Linux 6.1); the x86-64 psABI section 3.4.1 "Initial
Stack and Register State". Without stack randomization the bytes produced
here match what Linux writes, except for the contents of AT_RANDOM and
whatever auxv the caller passes.

Layout, from ``stack_top`` downwards (addresses decrease down the page)::

    stack_top ->  +-----------------------------+
                  | 8 zero bytes                |  (fs/exec.c: "p = vm_end - sizeof(void *)")
                  | execfn "\\0"                 |  <- AT_EXECFN
                  | envp[m-1] "\\0" ... envp[0]  |  env strings, envp[0] lowest
                  | argv[n-1] "\\0" ... argv[0]  |  arg strings, argv[0] lowest (arg_start)
                  | 0-15 bytes to align 16      |  (arch_align_stack, no random offset)
                  | platform "x86_64\\0"         |  <- AT_PLATFORM (omitted if platform is b"")
                  | 16 random bytes             |  <- AT_RANDOM
                  | 0-15 bytes to align 16      |  (STACK_ROUND)
                  | auxv pairs ..., AT_NULL, 0  |  16 bytes each
                  | NULL                        |
                  | envp[0..m-1] pointers       |
                  | NULL                        |
                  | argv[0..n-1] pointers       |
    rsp ------->  | argc                        |  rsp % 16 == 0
                  +-----------------------------+

Every slot of the table (argc, pointers, auxv) is a little-endian u64.
The psABI requires ``rsp`` 16-byte aligned at process entry with argc at
``[rsp]``; the other registers are the exec code's business (Linux's
ELF_PLAT_INIT zeroes them; rdx == 0 tells libc's _start there is no
rtld_fini to register).
"""

from __future__ import annotations

import errno
import os
import struct
from typing import NamedTuple

from kvmsentry.abi.auxv import (
    AT_BASE,
    AT_CLKTCK,
    AT_EGID,
    AT_ENTRY,
    AT_EUID,
    AT_EXECFN,
    AT_FLAGS,
    AT_GID,
    AT_HWCAP,
    AT_HWCAP2,
    AT_MINSIGSTKSZ,
    AT_NULL,
    AT_PAGESZ,
    AT_PHDR,
    AT_PHENT,
    AT_PHNUM,
    AT_PLATFORM,
    AT_RANDOM,
    AT_SECURE,
    AT_SYSINFO_EHDR,
    AT_UID,
)

#: Longest single argv/envp string including its NUL (MAX_ARG_STRLEN,
#: include/uapi/linux/binfmts.h: 32 pages).
MAX_ARG_STRLEN = 32 * 4096
#: Default bound on argv+envp strings and pointers: a quarter of the default
#: 8 MiB RLIMIT_STACK, as fs/exec.c bprm_stack_limits computes it.
DEFAULT_MAX_ARG_BYTES = 8 * 1024 * 1024 // 4
#: USER_HZ: the value of AT_CLKTCK on Linux/x86-64.
CLOCKS_PER_SEC = 100

_U64 = struct.Struct("<Q")
_FILLED_BY_BUILDER = (AT_RANDOM, AT_EXECFN, AT_PLATFORM)


class ArgListTooLong(ValueError):
    """argv/envp do not fit: execve(2) fails with E2BIG (``errno``)."""

    errno = errno.E2BIG


class InitialStack(NamedTuple):
    """Result of ``build_initial_stack``.

    - ``rsp``: initial stack pointer (16-byte aligned; ``[rsp]`` is argc).
    - ``image``: the bytes to write at ``[image_base, stack_top)``.
    - ``image_base``: guest virtual address of ``image[0]`` (== ``rsp``).
    - ``auxv``: the auxiliary vector as written, ``(a_type, a_val)`` pairs
      ending with ``(AT_NULL, 0)`` (what /proc/self/auxv shows).
    """

    rsp: int
    image: bytes
    image_base: int
    auxv: list[tuple[int, int]]

    @property
    def parsed(self) -> "ParsedStack":
        """The image parsed back (``parse_initial_stack``)."""
        return parse_initial_stack(self.image, self.image_base)

    @property
    def arg_start(self) -> int:
        """Address of the first argv string byte (mm->arg_start)."""
        return self.parsed.arg_start

    @property
    def arg_end(self) -> int:
        """One past the last argv string's NUL (mm->arg_end == env_start)."""
        return self.parsed.arg_end

    @property
    def env_start(self) -> int:
        """Address of the first envp string byte (mm->env_start)."""
        return self.parsed.arg_end

    @property
    def env_end(self) -> int:
        """One past the last envp string's NUL (mm->env_end)."""
        return self.parsed.env_end


def make_auxv(
    *,
    phdr: int,
    phnum: int,
    entry: int,
    phent: int = 56,
    base: int = 0,
    uid: int = 0,
    euid: int | None = None,
    gid: int = 0,
    egid: int | None = None,
    secure: int = 0,
    hwcap: int = 0,
    hwcap2: int | None = None,
    pagesz: int = 4096,
    clktck: int = CLOCKS_PER_SEC,
    sysinfo_ehdr: int | None = None,
    minsigstksz: int | None = None,
    flags: int = 0,
) -> list[tuple[int, int]]:
    """An auxiliary vector in Linux 6.1's order (create_elf_tables).

    Addresses are relocated guest virtual addresses (``phdr`` and ``entry``
    of a PIE include its load base; ``base`` is the interpreter's load
    address, 0 without one). AT_SYSINFO_EHDR/AT_MINSIGSTKSZ (x86's
    ARCH_DLINFO) and AT_HWCAP2 are included only when given. AT_RANDOM,
    AT_EXECFN and AT_PLATFORM are placeholders (value 0) that
    ``build_initial_stack`` fills with their addresses. No AT_NULL.
    """
    auxv: list[tuple[int, int]] = []
    if sysinfo_ehdr is not None:
        auxv.append((AT_SYSINFO_EHDR, sysinfo_ehdr))
    if minsigstksz is not None:
        auxv.append((AT_MINSIGSTKSZ, minsigstksz))
    auxv += [
        (AT_HWCAP, hwcap),
        (AT_PAGESZ, pagesz),
        (AT_CLKTCK, clktck),
        (AT_PHDR, phdr),
        (AT_PHENT, phent),
        (AT_PHNUM, phnum),
        (AT_BASE, base),
        (AT_FLAGS, flags),
        (AT_ENTRY, entry),
        (AT_UID, uid),
        (AT_EUID, uid if euid is None else euid),
        (AT_GID, gid),
        (AT_EGID, gid if egid is None else egid),
        (AT_SECURE, secure),
        (AT_RANDOM, 0),
    ]
    if hwcap2 is not None:
        auxv.append((AT_HWCAP2, hwcap2))
    auxv += [(AT_EXECFN, 0), (AT_PLATFORM, 0)]
    return auxv


def build_initial_stack(
    stack_top: int,
    argv: list[bytes],
    envp: list[bytes],
    auxv: list[tuple[int, int]],
    execfn: bytes,
    platform: bytes = b"x86_64",
    random_bytes: bytes | None = None,
    max_arg_bytes: int = DEFAULT_MAX_ARG_BYTES,
) -> InitialStack:
    """Build the initial stack image of a new process (layout: module doc).

    - ``stack_top``: guest virtual address one past the stack's highest byte
      (16-byte aligned, typically page aligned); nothing is written there.
    - ``argv``, ``envp``: strings without NULs (the builder adds them).
    - ``auxv``: ``(a_type, a_val)`` pairs, no AT_NULL (see ``make_auxv``).
      The values of AT_RANDOM, AT_EXECFN and AT_PLATFORM are replaced by
      the addresses of the random bytes, ``execfn`` and ``platform``; those
      missing from ``auxv`` are appended in that order (AT_PLATFORM only if
      ``platform`` is non-empty, as Linux adds it only with k_platform).
    - ``execfn``: the path given to execve(2) (bprm->filename).
    - ``random_bytes``: the 16 AT_RANDOM bytes; ``os.urandom(16)`` if None.

    Returns ``InitialStack(rsp, image, image_base, auxv)`` with
    ``image_base == rsp`` and ``len(image) == stack_top - rsp``.

    Raises ``ArgListTooLong`` (E2BIG) when one string with its NUL exceeds
    MAX_ARG_STRLEN or the strings plus pointers exceed ``max_arg_bytes``
    (fs/exec.c copy_strings / bprm_stack_limits); ``ValueError`` for a NUL
    inside a string, an AT_NULL in ``auxv``, a misaligned ``stack_top`` or
    ``random_bytes`` not 16 bytes long.
    """
    if stack_top % 16:
        raise ValueError(f"stack_top {stack_top:#x} is not 16-byte aligned")
    if random_bytes is None:
        random_bytes = os.urandom(16)
    if len(random_bytes) != 16:
        raise ValueError(f"random_bytes must be 16 bytes, got {len(random_bytes)}")
    for a_type, _ in auxv:
        if a_type == AT_NULL:
            raise ValueError("auxv must not contain AT_NULL (the builder appends it)")
    strings = list(argv) + list(envp) + [execfn, platform]
    for s in strings:
        if b"\0" in s:
            raise ValueError(f"NUL byte inside an argument string: {s[:40]!r}")
    total = 0
    for s in list(argv) + list(envp):
        if len(s) + 1 > MAX_ARG_STRLEN:
            raise ArgListTooLong(f"argument string of {len(s)} bytes exceeds MAX_ARG_STRLEN")
        total += len(s) + 1 + 8  # the string and its pointer
    if total > max_arg_bytes:
        raise ArgListTooLong(f"arguments and environment take {total} bytes (limit {max_arg_bytes})")

    # Strings, top down. ``placed`` collects (address, bytes) to write.
    placed: list[tuple[int, bytes]] = []
    p = stack_top - 8

    def push(s: bytes) -> int:
        nonlocal p
        p -= len(s)
        placed.append((p, s))
        return p

    execfn_addr = push(execfn + b"\0")
    envp_addrs = [push(s + b"\0") for s in reversed(envp)][::-1]
    argv_addrs = [push(s + b"\0") for s in reversed(argv)][::-1]
    p &= ~0xF
    platform_addr = push(platform + b"\0") if platform else 0
    random_addr = push(bytes(random_bytes))

    # Resolve the auxv entries the builder owns.
    filled = {AT_RANDOM: random_addr, AT_EXECFN: execfn_addr, AT_PLATFORM: platform_addr}
    resolved: list[tuple[int, int]] = []
    present = set()
    for a_type, a_val in auxv:
        if a_type in filled:
            present.add(a_type)
            if a_type == AT_PLATFORM and not platform:
                continue  # no platform string: no AT_PLATFORM entry
            a_val = filled[a_type]
        resolved.append((a_type, a_val))
    for a_type in _FILLED_BY_BUILDER:
        if a_type not in present and (a_type != AT_PLATFORM or platform):
            resolved.append((a_type, filled[a_type]))
    resolved.append((AT_NULL, 0))

    # The table: argc, argv pointers, NULL, envp pointers, NULL, auxv.
    words = [len(argv), *argv_addrs, 0, *envp_addrs, 0]
    for a_type, a_val in resolved:
        words += [a_type, a_val]
    rsp = (p - 8 * len(words)) & ~0xF

    image = bytearray(stack_top - rsp)
    table = struct.pack(f"<{len(words)}Q", *words)
    image[0:len(table)] = table
    for addr, s in placed:
        off = addr - rsp
        image[off:off + len(s)] = s
    return InitialStack(rsp=rsp, image=bytes(image), image_base=rsp, auxv=resolved)


class ParsedStack(NamedTuple):
    """An initial stack read back (``parse_initial_stack``); addresses are
    guest virtual, strings without their NUL."""

    argc: int
    argv: list[bytes]
    envp: list[bytes]
    auxv: list[tuple[int, int]]       # up to and including (AT_NULL, 0)
    argv_ptrs: list[int]
    envp_ptrs: list[int]
    arg_start: int                    # first byte of the argv strings
    arg_end: int                      # one past argv strings (== env start)
    env_end: int                      # one past the envp strings


def parse_initial_stack(image: bytes, image_base: int) -> ParsedStack:
    """Parse a stack image whose ``image[0]`` (at ``image_base``) is argc.

    Follows the pointers to read the strings. Raises ValueError when a
    pointer falls outside the image or the table runs off its end (for
    tests, /proc and debugging; the kernel never needs it for correctness).
    """
    end = image_base + len(image)

    def word(i: int) -> int:
        off = 8 * i
        if off + 8 > len(image):
            raise ValueError("initial stack table runs past the image")
        return _U64.unpack_from(image, off)[0]

    def cstr(addr: int) -> bytes:
        if not image_base <= addr < end:
            raise ValueError(f"string pointer {addr:#x} outside the stack image")
        off = addr - image_base
        nul = image.find(b"\0", off)
        if nul < 0:
            raise ValueError(f"unterminated string at {addr:#x}")
        return image[off:nul]

    argc = word(0)
    i = 1
    argv_ptrs = []
    while (ptr := word(i)) != 0:
        argv_ptrs.append(ptr)
        i += 1
    if len(argv_ptrs) != argc:
        raise ValueError(f"argc is {argc} but argv has {len(argv_ptrs)} pointers")
    i += 1
    envp_ptrs = []
    while (ptr := word(i)) != 0:
        envp_ptrs.append(ptr)
        i += 1
    i += 1
    auxv = []
    while True:
        pair = (word(i), word(i + 1))
        auxv.append(pair)
        i += 2
        if pair[0] == AT_NULL:
            break
    argv = [cstr(a) for a in argv_ptrs]
    envp = [cstr(a) for a in envp_ptrs]
    if argv_ptrs:
        arg_start = argv_ptrs[0]
        arg_end = argv_ptrs[-1] + len(argv[-1]) + 1
    else:
        # No argv strings: they would start where the env (or execfn) does.
        execfn = dict(auxv).get(AT_EXECFN, 0)
        arg_start = arg_end = envp_ptrs[0] if envp_ptrs else execfn
    env_end = envp_ptrs[-1] + len(envp[-1]) + 1 if envp_ptrs else arg_end
    return ParsedStack(argc, argv, envp, auxv, argv_ptrs, envp_ptrs,
                       arg_start, arg_end, env_end)
