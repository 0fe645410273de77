"""The ELF64 little-endian structures the sentry reads, with ``struct``.

Just the file header, program headers, section headers and symbols:
what the loader (``kvmsentry.loader.elf``) and the platform (the ring-0
runtime and the vDSO images it builds, ``runtime.elf``/``vdso64.elf``)
need. Importing pyelftools costs 30-80 ms of every ``kvmsentry boot``
(its DWARF and construct modules), more than the rest of the sentry's
start-up; these few structures cost nothing. Layouts: the gABI and
include/uapi/linux/elf.h (Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr, Elf64_Sym).

``data`` is the file's bytes. Callers bound-check what comes from
untrusted files; ``struct.error`` is what a read past the end of
``data`` raises.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# Elf64_Ehdr after e_ident[16]: e_type, e_machine, e_version, e_entry,
# e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize,
# e_shnum, e_shstrndx (64 bytes in all).
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
# Elf64_Phdr: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz,
# p_memsz, p_align (56 bytes).
_PHDR = struct.Struct("<IIQQQQQQ")
# Elf64_Shdr: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size,
# sh_link, sh_info, sh_addralign, sh_entsize (64 bytes).
_SHDR = struct.Struct("<IIQQQQIIQQ")
# Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value, st_size (24 bytes).
_SYM = struct.Struct("<IBBHQQ")

PT_LOAD = 1
PT_INTERP = 3
PT_PHDR = 6
PT_GNU_STACK = 0x6474E551
SHT_SYMTAB = 2
SHT_NOBITS = 8


class Header(NamedTuple):
    """Elf64_Ehdr without e_ident (e_type and e_machine are numbers)."""

    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_ehsize: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


class ProgramHeader(NamedTuple):
    """Elf64_Phdr."""

    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


class Section(NamedTuple):
    """Elf64_Shdr with its name resolved."""

    name: str
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int
    sh_addralign: int
    sh_entsize: int


def header(data) -> Header:
    """The file header of ``data`` (at least 64 bytes; struct.error if fewer)."""
    return Header(*_EHDR.unpack_from(data, 0)[1:])


def program_header(data, offset: int) -> ProgramHeader:
    """The 56-byte program header at byte ``offset`` of ``data``."""
    return ProgramHeader(*_PHDR.unpack_from(data, offset))


def sections(data) -> list[Section]:
    """Every section header of ``data``, named from e_shstrndx's string table."""
    hdr = header(data)
    raw = [_SHDR.unpack_from(data, hdr.e_shoff + i * _SHDR.size) for i in range(hdr.e_shnum)]
    names = raw[hdr.e_shstrndx][4] if hdr.e_shstrndx < len(raw) else None
    return [Section(_string(data, names, s[0]) if names is not None else "", *s[1:]) for s in raw]


def section(data, name: str) -> Section | None:
    """The first section called ``name``, or None."""
    for s in sections(data):
        if s.name == name:
            return s
    return None


def section_data(data, s: Section) -> bytes:
    """The file bytes of section ``s`` (empty for SHT_NOBITS)."""
    if s.sh_type == SHT_NOBITS:
        return b""
    return bytes(data[s.sh_offset:s.sh_offset + s.sh_size])


def symbols(data) -> dict[str, int]:
    """{name: st_value} of every named symbol in .symtab (local labels
    included; a later duplicate name wins, as a dict built from pyelftools'
    iter_symbols would)."""
    all_sections = sections(data)
    out: dict[str, int] = {}
    for s in all_sections:
        if s.sh_type != SHT_SYMTAB:
            continue
        strtab = all_sections[s.sh_link].sh_offset
        for offset in range(s.sh_offset, s.sh_offset + s.sh_size, _SYM.size):
            st_name, _, _, _, st_value, _ = _SYM.unpack_from(data, offset)
            if st_name:
                out[_string(data, strtab, st_name)] = st_value
    return out


def _string(data: bytes, table_offset: int, index: int) -> str:
    start = table_offset + index
    end = data.find(b"\0", start)
    return data[start:end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")
