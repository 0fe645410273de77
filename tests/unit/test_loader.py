"""kvmsentry.loader: ELF parsing/rejection and the initial stack layout.

Real ELFs are built once per module with gcc (skipped without gcc); the
facts they are checked against come from readelf. Rejections are made by
editing single fields of a valid ELF: each must raise ElfError with a
reason, never another exception.
"""

import os
import random
import re
import shutil
import struct
import subprocess

import pytest

from kvmsentry.abi import auxv as at
from kvmsentry.loader.elf import USER_END, ElfError, ElfImage, load_elf
from kvmsentry.loader.stack import (
    MAX_ARG_STRLEN,
    ArgListTooLong,
    build_initial_stack,
    make_auxv,
    parse_initial_stack,
)

PROGRAM = r"""
#include <stdio.h>
int counter = 5;
char zeroes[100000];
int main(int argc, char **argv) { printf("hi %d\n", counter + argc + zeroes[argc]); return 0; }
"""

# Offsets in Elf64_Ehdr / Elf64_Phdr (include/uapi/linux/elf.h)
E_TYPE, E_MACHINE, E_ENTRY, E_PHOFF = 16, 18, 24, 32
E_PHENTSIZE, E_PHNUM = 54, 56
P_TYPE, P_FLAGS, P_OFFSET, P_VADDR, P_FILESZ, P_MEMSZ, P_ALIGN = 0, 4, 8, 16, 32, 40, 48
PT_NULL, PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 0, 1, 3, 6, 0x6474E551


@pytest.fixture(scope="module")
def elves(tmp_path_factory):
    """Paths of {'static', 'static_pie', 'dynamic'} builds of PROGRAM."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    d = tmp_path_factory.mktemp("elves")
    src = d / "prog.c"
    src.write_text(PROGRAM)
    out = {}
    for name, flags in [("static", ["-static"]), ("static_pie", ["-static-pie"]),
                        ("dynamic", [])]:
        exe = d / name
        r = subprocess.run(["gcc", "-O1", *flags, "-o", str(exe), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"gcc {' '.join(flags)} failed: {r.stderr[:300]}")
        out[name] = exe
    return out


def readelf_facts(path):
    """Entry, type, phoff, LOAD rows and PHDR vaddr, from `readelf -lhW`."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed")
    text = subprocess.run(["readelf", "-lhW", str(path)], capture_output=True,
                          text=True, check=True).stdout
    facts = {
        "entry": int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", text).group(1), 16),
        "type": re.search(r"Type:\s+(\w+)", text).group(1),
        "phoff": int(re.search(r"Start of program headers:\s+(\d+)", text).group(1)),
        "phnum": int(re.search(r"Number of program headers:\s+(\d+)", text).group(1)),
        "loads": [],
        "phdr": None,
        "interp": None,
        "stack_flags": None,
    }
    row = re.compile(r"^\s+(\w+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+"
                     r"(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]+?)\s+(0x[0-9a-f]+)\s*$")
    for line in text.splitlines():
        m = row.match(line)
        if not m:
            continue
        kind, off, vaddr, filesz, memsz, flg, align = m.groups()
        vals = dict(offset=int(off, 16), vaddr=int(vaddr, 16), filesz=int(filesz, 16),
                    memsz=int(memsz, 16), flags=flg.replace(" ", ""), align=int(align, 16))
        if kind == "LOAD":
            facts["loads"].append(vals)
        elif kind == "PHDR":
            facts["phdr"] = vals["vaddr"]
        elif kind == "GNU_STACK":
            facts["stack_flags"] = vals["flags"]
    m = re.search(r"\[Requesting program interpreter: (.*)\]", text)
    if m:
        facts["interp"] = m.group(1)
    return facts


def prot_of(flags):
    return (1 if "R" in flags else 0) | (2 if "W" in flags else 0) | (4 if "E" in flags else 0)


# --------------------------------------------------------------------------
# Accepting real executables


@pytest.mark.parametrize("kind", ["static", "static_pie", "dynamic"])
def test_matches_readelf(elves, kind):
    path = elves[kind]
    facts = readelf_facts(path)
    img = load_elf(str(path))
    raw = path.read_bytes()
    assert isinstance(img, ElfImage)
    assert img.entry == facts["entry"]
    assert img.is_pie == (facts["type"] == "DYN")
    assert img.phnum == facts["phnum"]
    assert img.phent == 56
    assert img.interp == facts["interp"]
    assert img.stack_exec == ("E" in (facts["stack_flags"] or ""))
    assert len(img.segments) == len(facts["loads"])
    for seg, load in zip(img.segments, facts["loads"]):
        assert (seg.vaddr, seg.memsz, seg.filesz, seg.offset) == (
            load["vaddr"], load["memsz"], load["filesz"], load["offset"])
        assert seg.prot == prot_of(load["flags"])
        assert seg.align == load["align"]
        assert seg.data == raw[seg.offset:seg.offset + seg.filesz]
        assert len(seg.data) == seg.filesz
    # AT_PHDR: e_phoff through the PT_LOAD that maps it (and PT_PHDR agrees)
    containing = [s for s in facts["loads"]
                  if s["offset"] <= facts["phoff"] < s["offset"] + s["filesz"]]
    assert img.phdr_vaddr == facts["phoff"] - containing[0]["offset"] + containing[0]["vaddr"]
    if facts["phdr"] is not None:
        assert img.phdr_vaddr == facts["phdr"]
    lo, hi = img.span()
    assert lo == facts["loads"][0]["vaddr"] & ~0xFFF
    assert hi == (max(s["vaddr"] + s["memsz"] for s in facts["loads"]) + 0xFFF) & ~0xFFF
    assert lo % 4096 == 0 and hi % 4096 == 0

@pytest.mark.parametrize("kind", ["static", "static_pie", "dynamic"])
def test_header_structs_parse_as_pyelftools_full_set(elves, kind):
    """The loader builds only Elf_Ehdr and Elf_Phdr (kvmsentry.loader.elf._structs):
    they parse every header as pyelftools' whole ELFStructs does."""
    from elftools.elf.structs import ELFStructs

    from kvmsentry.loader import elf
    full = ELFStructs(little_endian=True, elfclass=64)
    full.create_basic_structs()
    full.create_advanced_structs("ET_EXEC", "EM_X86_64", "ELFOSABI_SYSV")
    ours = elf._structs()
    raw = elves[kind].read_bytes()
    assert ours.Elf_Ehdr.parse(raw[:64]) == full.Elf_Ehdr.parse(raw[:64])
    hdr = full.Elf_Ehdr.parse(raw[:64])
    for i in range(hdr["e_phnum"]):
        ph = raw[hdr["e_phoff"] + i * 56:hdr["e_phoff"] + (i + 1) * 56]
        assert ours.Elf_Phdr.parse(ph) == full.Elf_Phdr.parse(ph)


def test_path_load_reads_segment_bytes_only_when_asked(elves, tmp_path):
    """By host path only the headers are read; a segment's data is read
    from the file when asked for, and equals what a bytes load gives."""
    copy = tmp_path / "prog"
    copy.write_bytes(elves["static"].read_bytes())
    by_path = load_elf(str(copy))
    assert all(seg._data is None for seg in by_path.segments)
    by_bytes = load_elf(copy.read_bytes())
    assert all(seg._data is not None for seg in by_bytes.segments)
    assert by_path == by_bytes
    assert [seg.data for seg in by_path.segments] == [seg.data for seg in by_bytes.segments]


def test_fifo_is_read_whole(elves, tmp_path):
    """A path that is not a regular file (a FIFO) is read to its end, as before."""
    import threading
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    raw = elves["static"].read_bytes()
    writer = threading.Thread(target=fifo.write_bytes, args=(raw,))
    writer.start()
    try:
        img = load_elf(str(fifo))
    finally:
        writer.join()
    assert img == load_elf(raw)


def test_static_pie_has_no_interp(elves):
    img = load_elf(elves["static_pie"])
    assert img.is_pie and img.interp is None
    assert img.span()[0] == 0


def test_bytes_and_path_agree(elves):
    path = elves["static"]
    assert load_elf(path.read_bytes()) == load_elf(str(path)) == load_elf(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_elf(str(tmp_path / "nope"))
    with pytest.raises(IsADirectoryError):
        load_elf(str(tmp_path))


def test_host_busybox_if_present():
    for path in ("/bin/busybox", "/usr/bin/bash-static"):
        if os.path.exists(path):
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            img = load_elf(path)
            assert img.segments and img.phnum >= 1


# --------------------------------------------------------------------------
# Editing helpers


def phdr_off(raw, i):
    phoff = struct.unpack_from("<Q", raw, E_PHOFF)[0]
    return phoff + i * 56


def phdrs(raw):
    phnum = struct.unpack_from("<H", raw, E_PHNUM)[0]
    out = []
    for i in range(phnum):
        off = phdr_off(raw, i)
        p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, p_align = \
            struct.unpack_from("<IIQQQQQQ", raw, off)
        out.append(dict(i=i, off=off, type=p_type, flags=p_flags, offset=p_offset,
                        vaddr=p_vaddr, filesz=p_filesz, memsz=p_memsz, align=p_align))
    return out


def loads(raw):
    return [p for p in phdrs(raw) if p["type"] == PT_LOAD]


def edited(path, edit):
    raw = bytearray(path.read_bytes())
    edit(raw)
    return bytes(raw)


def rejects(data, *words):
    with pytest.raises(ElfError) as ei:
        load_elf(data)
    msg = str(ei.value)
    for w in words:
        assert w in msg, msg
    return ei.value


# --------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize("byte", [0, 1, 2, 3])
def test_bad_magic(elves, byte):
    data = edited(elves["static"], lambda r: r.__setitem__(byte, r[byte] ^ 0x20))
    rejects(data, "not an ELF file")


def test_empty_and_tiny_files():
    rejects(b"", "not an ELF file")
    rejects(b"\x7fEL", "not an ELF file")
    rejects(b"#!/bin/sh\necho hi\n", "not an ELF file")
    rejects(b"\x7fELF\x02\x01", "truncated")


def test_elfclass32(elves):
    rejects(edited(elves["static"], lambda r: r.__setitem__(4, 1)), "32-bit ELF is not supported")


def test_bad_class_and_endianness(elves):
    rejects(edited(elves["static"], lambda r: r.__setitem__(4, 7)), "EI_CLASS")
    rejects(edited(elves["static"], lambda r: r.__setitem__(5, 2)), "big-endian")
    rejects(edited(elves["static"], lambda r: r.__setitem__(5, 0)), "EI_DATA")


@pytest.mark.parametrize("machine,name", [(183, "EM_AARCH64"), (3, "EM_386"), (0x1234, "4660")])
def test_wrong_machine(elves, machine, name):
    data = edited(elves["static"], lambda r: struct.pack_into("<H", r, E_MACHINE, machine))
    rejects(data, "not an x86-64 ELF", name)


@pytest.mark.parametrize("e_type,name", [(1, "ET_REL"), (4, "ET_CORE"), (0, "ET_NONE"), (0xFE00, "0xfe00")])
def test_wrong_type(elves, e_type, name):
    data = edited(elves["static"], lambda r: struct.pack_into("<H", r, E_TYPE, e_type))
    rejects(data, "unsupported ELF type", name)


@pytest.mark.parametrize("kind", ["static", "static_pie"])
def test_truncation(elves, kind):
    raw = elves[kind].read_bytes()
    needed = max(p["offset"] + p["filesz"] for p in loads(raw))
    ph_end = phdr_off(raw, len(phdrs(raw)))
    for n in [4, 5, 16, 63, 64, 64 + 56, ph_end - 1, ph_end, needed // 2, needed - 1]:
        rejects(raw[:n], "truncated")
    # Cutting only the section headers (past every segment) loads, as on Linux.
    assert load_elf(raw[:needed]).segments


def test_program_header_past_end(elves):
    raw = elves["static"].read_bytes()
    data = edited(elves["static"], lambda r: struct.pack_into("<Q", r, E_PHOFF, len(raw) - 100))
    rejects(data, "truncated ELF: program header")
    data = edited(elves["static"], lambda r: struct.pack_into("<Q", r, E_PHOFF, 2**64 - 8))
    rejects(data, "program header")


def test_bad_phentsize_and_phnum(elves):
    rejects(edited(elves["static"], lambda r: struct.pack_into("<H", r, E_PHENTSIZE, 32)),
            "e_phentsize")
    rejects(edited(elves["static"], lambda r: struct.pack_into("<H", r, E_PHNUM, 0)),
            "no program headers")
    rejects(edited(elves["static"], lambda r: struct.pack_into("<H", r, E_PHNUM, 0xFFFF)),
            "program header")


def test_filesz_past_end_of_file(elves):
    raw = elves["static"].read_bytes()
    seg = loads(raw)[1]

    def edit(r):
        struct.pack_into("<QQ", r, seg["off"] + P_FILESZ, len(raw), len(raw))
    rejects(edited(elves["static"], edit), "truncated", "segment 1")


def test_filesz_greater_than_memsz(elves):
    seg = loads(elves["static"].read_bytes())[1]
    data = edited(elves["static"],
                  lambda r: struct.pack_into("<Q", r, seg["off"] + P_MEMSZ, seg["filesz"] - 1))
    e = rejects(data, "filesz > memsz")
    assert e.errno == 22  # EINVAL, as load_elf_binary


def test_overlapping_loads(elves):
    raw = elves["static"].read_bytes()
    a, b = loads(raw)[1], loads(raw)[2]
    grow = b["vaddr"] - a["vaddr"] + 0x10  # a now covers b's first bytes
    data = edited(elves["static"], lambda r: struct.pack_into("<Q", r, a["off"] + P_MEMSZ, grow))
    rejects(data, "overlapping PT_LOAD")


def test_unsorted_loads(elves):
    raw = elves["static"].read_bytes()
    a, b = loads(raw)[1], loads(raw)[2]

    def swap(r):
        r[a["off"]:a["off"] + 56], r[b["off"]:b["off"] + 56] = \
            raw[b["off"]:b["off"] + 56], raw[a["off"]:a["off"] + 56]
    rejects(edited(elves["static"], swap), "ascending")


def test_segments_sharing_a_page_are_legal(elves):
    """Text end and data start on one page (distinct bytes) must load."""
    raw = elves["static"].read_bytes()
    segs = loads(raw)
    prev, cur = segs[-2], segs[-1]
    new_vaddr = (prev["vaddr"] + prev["memsz"] + 0xF) & ~0xF
    assert new_vaddr & 0xFFF, "test needs an unaligned end"
    new_offset = (cur["offset"] & ~0xFFF) + (new_vaddr & 0xFFF)
    filesz = min(cur["filesz"], len(raw) - new_offset)

    def edit(r):
        struct.pack_into("<QQQQQ", r, cur["off"] + P_OFFSET, new_offset, new_vaddr,
                         new_vaddr, filesz, max(filesz, cur["memsz"]))
    img = load_elf(edited(elves["static"], edit))
    assert img.segments[-1].vaddr == new_vaddr
    assert img.segments[-1].vaddr >> 12 == (img.segments[-2].end - 1) >> 12


@pytest.mark.parametrize("kind", ["static", "static_pie"])
@pytest.mark.parametrize("memsz", [2**63, 2**64 - 1, USER_END + 1])
def test_huge_memsz(elves, kind, memsz):
    seg = loads(elves[kind].read_bytes())[-1]
    data = edited(elves[kind], lambda r: struct.pack_into("<Q", r, seg["off"] + P_MEMSZ, memsz))
    rejects(data, "segment too large")


def test_segment_beyond_user_space(elves):
    seg = loads(elves["static"].read_bytes())[-1]

    def edit(r):
        vaddr = (USER_END - 0x1000) | (seg["offset"] & 0xFFF)
        struct.pack_into("<QQ", r, seg["off"] + P_VADDR, vaddr, vaddr)
        struct.pack_into("<Q", r, seg["off"] + P_MEMSZ, 0x10000)
    rejects(edited(elves["static"], edit), "segment too large")


def test_pie_span_too_large(elves):
    seg = loads(elves["static_pie"].read_bytes())[-1]

    def edit(r):
        vaddr = (USER_END - 0x1000) | (seg["offset"] & 0xFFF)
        struct.pack_into("<QQ", r, seg["off"] + P_VADDR, vaddr, vaddr)
        struct.pack_into("<Q", r, seg["off"] + P_MEMSZ, seg["filesz"])
    rejects(edited(elves["static_pie"], edit), "too large")


def test_offset_vaddr_not_congruent(elves):
    seg = loads(elves["static"].read_bytes())[1]
    data = edited(elves["static"],
                  lambda r: struct.pack_into("<Q", r, seg["off"] + P_VADDR, seg["vaddr"] + 8))
    rejects(data, "modulo the page size")


def test_entry_outside_user_space(elves):
    data = edited(elves["static"], lambda r: struct.pack_into("<Q", r, E_ENTRY, 2**63))
    rejects(data, "entry point")


def test_no_pt_load(elves):
    def edit(r):
        for p in loads(bytes(r)):
            struct.pack_into("<I", r, p["off"] + P_TYPE, PT_NULL)
    rejects(edited(elves["static"], edit), "no PT_LOAD segment")


def test_bad_interp(elves):
    raw = elves["dynamic"].read_bytes()
    interp = next(p for p in phdrs(raw) if p["type"] == PT_INTERP)
    # Drop the NUL terminator.
    data = edited(elves["dynamic"],
                  lambda r: struct.pack_into("<Q", r, interp["off"] + P_FILESZ, interp["filesz"] - 1))
    rejects(data, "PT_INTERP")
    data = edited(elves["dynamic"],
                  lambda r: struct.pack_into("<Q", r, interp["off"] + P_FILESZ, 10**6))
    rejects(data, "PT_INTERP")


def test_gnu_stack(elves):
    raw = elves["static"].read_bytes()
    st = next(p for p in phdrs(raw) if p["type"] == PT_GNU_STACK)
    data = edited(elves["static"], lambda r: struct.pack_into("<I", r, st["off"] + P_FLAGS, 7))
    assert load_elf(data).stack_exec is True
    data = edited(elves["static"], lambda r: struct.pack_into("<I", r, st["off"] + P_TYPE, PT_NULL))
    assert load_elf(data).stack_exec is False  # x86-64 default since Linux 5.8


def test_non_power_of_two_align_is_ignored(elves):
    seg = loads(elves["static"].read_bytes())[0]
    data = edited(elves["static"], lambda r: struct.pack_into("<Q", r, seg["off"] + P_ALIGN, 0x3000))
    assert load_elf(data).segments[0].align == 4096


@pytest.mark.parametrize("kind", ["static", "static_pie", "dynamic"])
def test_random_header_corruption_never_escapes(elves, kind):
    """Random byte edits in the headers: an ElfImage or an ElfError, nothing else."""
    raw = elves[kind].read_bytes()
    end = phdr_off(raw, len(phdrs(raw)))
    rng = random.Random(1234)
    for _ in range(1500):
        r = bytearray(raw[:end + 4096])
        for _ in range(rng.randint(1, 3)):
            r[rng.randrange(end)] = rng.randrange(256)
        try:
            load_elf(bytes(r) + raw[end + 4096:])
        except ElfError as e:
            assert str(e)


# --------------------------------------------------------------------------
# Initial stack

TOP = 0x7FFF_FFFF_F000
RAND = bytes(range(16))


def small_auxv():
    return make_auxv(phdr=0x400040, phnum=10, entry=0x401000, hwcap=0x178BFBFF)


def test_stack_roundtrip():
    argv = [b"/bin/prog", b"-x", b"hello world"]
    envp = [b"PATH=/bin", b"HOME=/root"]
    st = build_initial_stack(TOP, argv, envp, small_auxv(), b"/bin/prog", random_bytes=RAND)
    rsp, image, base, aux = st
    assert rsp == base and rsp % 16 == 0
    assert len(image) == TOP - rsp
    assert image[-8:] == bytes(8)
    p = parse_initial_stack(image, base)
    assert p.argc == 3 and p.argv == argv and p.envp == envp
    assert p.auxv == aux and aux[-1] == (at.AT_NULL, 0)
    d = dict(aux)
    assert d[at.AT_PHDR] == 0x400040 and d[at.AT_ENTRY] == 0x401000
    assert d[at.AT_PAGESZ] == 4096 and d[at.AT_PHENT] == 56

    def at_addr(addr, n):
        return image[addr - base:addr - base + n]
    assert at_addr(d[at.AT_RANDOM], 16) == RAND
    assert at_addr(d[at.AT_PLATFORM], 7) == b"x86_64\0"
    assert at_addr(d[at.AT_EXECFN], 10) == b"/bin/prog\0"
    # Strings ascending: argv, envp, execfn; execfn ends 8 bytes below the top.
    assert p.argv_ptrs == sorted(p.argv_ptrs) and p.argv_ptrs[-1] < p.envp_ptrs[0]
    assert d[at.AT_EXECFN] + len(b"/bin/prog\0") == TOP - 8
    assert d[at.AT_RANDOM] + 16 <= d[at.AT_PLATFORM] < p.arg_start
    assert (st.arg_start, st.arg_end, st.env_end) == (
        p.argv_ptrs[0], p.envp_ptrs[0], d[at.AT_EXECFN])
    # Linux order: the builder-filled entries keep their place.
    types = [t for t, _ in aux]
    assert types.index(at.AT_RANDOM) < types.index(at.AT_EXECFN) < types.index(at.AT_PLATFORM)


@pytest.mark.parametrize("extra", range(0, 18))
def test_stack_alignment(extra):
    argv = [b"a" * extra] + [b"b"] * (extra % 3)
    envp = [b"E" * (extra * 7 % 11)] * (extra % 2)
    st = build_initial_stack(TOP, argv, envp, small_auxv()[: extra % 5 + 1], b"x" * extra,
                             random_bytes=RAND)
    assert st.rsp % 16 == 0
    p = parse_initial_stack(st.image, st.image_base)
    assert p.argv == argv and p.envp == envp


def test_stack_empty_argv_envp():
    st = build_initial_stack(TOP, [], [], [], b"/p", random_bytes=RAND)
    p = st.parsed
    assert p.argc == 0 and p.argv == [] and p.envp == []
    # Missing builder-owned entries are appended.
    assert [t for t, _ in st.auxv] == [at.AT_RANDOM, at.AT_EXECFN, at.AT_PLATFORM, at.AT_NULL]
    assert st.arg_start == st.env_end == dict(st.auxv)[at.AT_EXECFN]


def test_stack_no_platform():
    st = build_initial_stack(TOP, [b"a"], [], small_auxv(), b"a", platform=b"", random_bytes=RAND)
    assert at.AT_PLATFORM not in dict(st.auxv)


def test_stack_errors():
    with pytest.raises(ValueError):
        build_initial_stack(TOP, [b"a\0b"], [], [], b"a")
    with pytest.raises(ValueError):
        build_initial_stack(TOP, [b"a"], [], [(at.AT_NULL, 0)], b"a")
    with pytest.raises(ValueError):
        build_initial_stack(TOP + 8, [b"a"], [], [], b"a")
    with pytest.raises(ValueError):
        build_initial_stack(TOP, [b"a"], [], [], b"a", random_bytes=b"short")
    with pytest.raises(ArgListTooLong) as ei:
        build_initial_stack(TOP, [b"a" * MAX_ARG_STRLEN], [], [], b"a")
    assert ei.value.errno == 7  # E2BIG
    with pytest.raises(ArgListTooLong):
        build_initial_stack(TOP, [b"a" * 1000] * 3000, [], [], b"a")


def test_random_bytes_default_is_random():
    a = build_initial_stack(TOP, [b"a"], [], [], b"a")
    b = build_initial_stack(TOP, [b"a"], [], [], b"a")
    ra, rb = dict(a.auxv)[at.AT_RANDOM], dict(b.auxv)[at.AT_RANDOM]
    assert a.image[ra - a.rsp:ra - a.rsp + 16] != b.image[rb - b.rsp:rb - b.rsp + 16]


DUMP = r"""
#include <stdio.h>
int main(int argc, char **argv, char **envp) {
    printf("rsp %lx\n", (unsigned long)((unsigned long *)argv - 1));
    char **e = envp; while (*e) e++;
    for (unsigned long *a = (unsigned long *)(e + 1); a[0]; a += 2)
        printf("aux %lu %lx\n", a[0], a[1]);
    for (int i = 0; i < argc; i++) printf("argv %lx\n", (unsigned long)argv[i]);
    for (e = envp; *e; e++) printf("envp %lx\n", (unsigned long)*e);
    return 0;
}
"""


def test_stack_matches_native_linux(tmp_path):
    """Oracle: a native run without ASLR puts everything where we do."""
    if shutil.which("gcc") is None or shutil.which("setarch") is None:
        pytest.skip("needs gcc and setarch")
    (tmp_path / "dump.c").write_text(DUMP)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(tmp_path / "dump"),
                    str(tmp_path / "dump.c")], check=True)
    argv = [b"./dump", b"x", b"yy", b"a longer argument"]
    envp = [b"A=1", b"BB=22"]
    r = subprocess.run(["env", "-i", "A=1", "BB=22", "setarch", "-R", *map(bytes.decode, argv)],
                       cwd=tmp_path, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"setarch -R unavailable: {r.stderr.strip()}")
    native_aux, native_argv, native_envp, rsp = [], [], [], None
    for line in r.stdout.splitlines():
        kind, *vals = line.split()
        if kind == "rsp":
            rsp = int(vals[0], 16)
        elif kind == "aux":
            native_aux.append((int(vals[0]), int(vals[1], 16)))
        elif kind == "argv":
            native_argv.append(int(vals[0], 16))
        elif kind == "envp":
            native_envp.append(int(vals[0], 16))
    top = (native_argv[-1] + 0xFFF) & ~0xFFF  # the stack's vm_end without ASLR
    st = build_initial_stack(top, argv, envp, list(native_aux), b"./dump", random_bytes=RAND)
    p = st.parsed
    assert st.rsp == rsp
    assert p.argv_ptrs == native_argv and p.envp_ptrs == native_envp
    assert st.auxv[:-1] == native_aux  # incl. AT_RANDOM/AT_EXECFN/AT_PLATFORM addresses


@pytest.mark.parametrize("image", ["runtime.elf", "vdso64.elf"])
def test_sections_and_symbols_match_pyelftools(image):
    """The sentry's own images are read with struct at start-up
    (sections_and_symbols): the same sections and symbols as ELFFile's."""
    from elftools.elf.elffile import ELFFile
    import kvmsentry.platform
    from kvmsentry.loader.elf import sections_and_symbols
    path = os.path.join(os.path.dirname(kvmsentry.platform.__file__), image)
    sections, symbols = sections_and_symbols(path)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        assert symbols == {s.name: s["st_value"]
                           for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name}
        for section in elf.iter_sections():
            if section.name:
                addr, data = sections[section.name]
                assert addr == section["sh_addr"]
                if section["sh_type"] != "SHT_NOBITS":
                    assert data == section.data()
