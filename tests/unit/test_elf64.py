"""kvmsentry.loader.elf64 (struct reads of ELF64 headers, sections and
symbols) against pyelftools as the oracle, on the runtime and vDSO images
the platform reads and on host executables the loader reads."""

import os

import pytest
from elftools.elf.elffile import ELFFile

from kvmsentry.loader import elf64
from kvmsentry.platform import kvm as platform_kvm

PLATFORM_DIR = os.path.dirname(platform_kvm.__file__)
IMAGES = [os.path.join(PLATFORM_DIR, name) for name in ("runtime.elf", "vdso64.elf")]
PROGRAMS = [p for p in ("/bin/busybox", "/usr/bin/python3", "/bin/true") if os.path.exists(p)]


def _read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("path", IMAGES + PROGRAMS)
def test_header_and_program_headers_match_pyelftools(path):
    data = _read(path)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        hdr = elf64.header(data)
        assert (hdr.e_entry, hdr.e_phoff, hdr.e_phnum, hdr.e_phentsize, hdr.e_shnum) == (
            elf["e_entry"], elf["e_phoff"], elf["e_phnum"], elf["e_phentsize"], elf["e_shnum"])
        for i, segment in enumerate(elf.iter_segments()):
            ph = elf64.program_header(data, hdr.e_phoff + i * hdr.e_phentsize)
            want = segment.header
            assert (ph.p_offset, ph.p_vaddr, ph.p_filesz, ph.p_memsz, ph.p_align, ph.p_flags) == (
                want["p_offset"], want["p_vaddr"], want["p_filesz"], want["p_memsz"],
                want["p_align"], want["p_flags"])
            if want["p_type"] in ("PT_LOAD", "PT_INTERP", "PT_PHDR", "PT_GNU_STACK"):
                assert ph.p_type == getattr(elf64, want["p_type"])


@pytest.mark.parametrize("path", IMAGES)
def test_sections_and_symbols_match_pyelftools(path):
    data = _read(path)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        names = [s.name for s in elf.iter_sections()]
        assert [s.name for s in elf64.sections(data)] == names
        for name in (".text", ".symtab"):
            ours, theirs = elf64.section(data, name), elf.get_section_by_name(name)
            assert ours.sh_addr == theirs["sh_addr"]
            assert elf64.section_data(data, ours) == theirs.data()
        want = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name}
    assert elf64.symbols(data) == want
    assert elf64.section(data, ".no-such-section") is None
