"""Parse and validate an x86-64 ELF executable for loading (pyelftools).

``load_elf`` reads an ELF file and returns an ``ElfImage``: the PT_LOAD
segments with their file bytes and protections, the entry point, where the
program headers sit in memory (for AT_PHDR), PT_INTERP and PT_GNU_STACK.
It does not map anything: the kernel's exec code places the segments (at
their p_vaddr for ET_EXEC, at a chosen base for ET_DYN), zero-fills
``memsz - filesz``, and builds the stack (``kvmsentry.loader.stack``).

What is accepted follows fs/binfmt_elf.c load_elf_binary / load_elf_phdrs
(Linux 6.1) and the ELF gABI: ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_EXEC or
ET_DYN (a static-pie is ET_DYN without PT_INTERP; a dynamic executable is
returned with ``interp`` set and the caller decides). Everything else, and
every malformed file, raises ``ElfError`` with a short human reason; no
pyelftools or ``struct`` exception escapes.

Where this module is stricter or looser than Linux (on purpose):
- PT_LOAD entries must be in ascending p_vaddr order and their byte ranges
  ``[p_vaddr, p_vaddr + p_memsz)`` must not overlap (gABI; Linux maps later
  segments MAP_FIXED over earlier ones). Two segments sharing one page (text
  end and data start) is normal and accepted.
- A non power-of-two ``p_align`` is ignored as Linux's maximum_alignment()
  ignores it (``Segment.align`` then reads PAGE_SIZE); it is not rejected.
- A missing PT_GNU_STACK means a non-executable stack: since Linux 5.8
  (commit 9fccc5c0c99f) x86-64 no longer sets READ_IMPLIES_EXEC for it, so
  EXSTACK_DEFAULT yields VM_STACK_DEFAULT_FLAGS without VM_EXEC.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat as _stat
import struct
from kvmsentry.loader._pyelftools import ConstructError as _ConstructError
from kvmsentry.loader._pyelftools import ELFError as _PyElfError
from kvmsentry.loader._pyelftools import ELFStructs

PAGE_SIZE = 4096

#: Highest user address + 1 on x86-64 with 4-level paging (TASK_SIZE_MAX,
#: arch/x86/include/asm/page_64_types.h: (1 << 47) - PAGE_SIZE).
USER_END = 0x7FFF_FFFF_F000

#: Where Linux puts an ET_DYN that has an interpreter, before randomization
#: and alignment (arch/x86/include/asm/elf.h: DEFAULT_MAP_WINDOW / 3 * 2).
#: Aligned down to 4 KiB this is the familiar 0x555555554000.
ELF_ET_DYN_BASE = (USER_END // 3 * 2) & ~(PAGE_SIZE - 1)

#: Linux limits the program header table to 64 KiB (load_elf_phdrs).
MAX_PHDR_TABLE = 65536
#: PATH_MAX (include/uapi/linux/limits.h): bound on the PT_INTERP string.
PATH_MAX = 4096

ELF_HEADER_SIZE = 64   # sizeof(Elf64_Ehdr)
ELF_PHDR_SIZE = 56     # sizeof(Elf64_Phdr)

# p_flags bits (include/uapi/linux/elf.h)
PF_X = 0x1
PF_W = 0x2
PF_R = 0x4

_MACHINE_NAMES = {0: "EM_NONE", 3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC",
                  21: "EM_PPC64", 40: "EM_ARM", 43: "EM_SPARCV9",
                  50: "EM_IA_64", 62: "EM_X86_64", 183: "EM_AARCH64",
                  243: "EM_RISCV", 22: "EM_S390", 258: "EM_LOONGARCH"}
_TYPE_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
EM_X86_64 = 62
ET_EXEC = 2
ET_DYN = 3


class ElfError(Exception):
    """An ELF file that cannot be loaded; ``str(e)`` is a short reason.

    ``errno`` is what execve(2) returns for it: ENOEXEC for a file that is
    not a loadable ELF for this machine (fs/binfmt_elf.c), EINVAL for a
    PT_LOAD that does not fit the address space (the BAD_ADDR/TASK_SIZE
    checks of load_elf_binary).
    """

    def __init__(self, message: str, errno_: int = errno.ENOEXEC):
        super().__init__(message)
        self.errno = errno_


class Segment:
    """One PT_LOAD segment.

    ``vaddr``/``memsz``/``filesz``/``offset`` are p_vaddr, p_memsz, p_filesz,
    p_offset in bytes (``vaddr`` unrelocated: add the load base of a PIE).
    ``data`` is the ``filesz`` file bytes at ``offset`` (see below); bytes
    ``[vaddr + filesz, vaddr + memsz)`` are zero (bss). ``prot`` is
    PROT_READ|PROT_WRITE|PROT_EXEC bits (mmap module values) from p_flags.
    ``align`` is p_align when it is a power of two >= PAGE_SIZE, else
    PAGE_SIZE. Immutable by convention, equal and hashed by its fields
    (plain classes: a dataclass costs ~0.2 ms to create at every start).

    A segment of a file loaded by host path (``path``, ``data`` None)
    reads its bytes from the file when ``data`` is first asked for: the
    kernel maps such a file through the page cache and never asks, and
    reading and copying a whole program at every exec cost ~2.5 ms of a
    busybox start.
    """

    __slots__ = ("vaddr", "memsz", "filesz", "offset", "_data", "prot", "align", "_path")

    def __init__(self, vaddr: int, memsz: int, filesz: int, offset: int, data: bytes | None,
                 prot: int, align: int, path: str | None = None):
        self.vaddr = vaddr
        self.memsz = memsz
        self.filesz = filesz
        self.offset = offset
        self._data = data
        self.prot = prot
        self.align = align
        self._path = path

    @property
    def data(self) -> bytes:
        """The ``filesz`` file bytes at ``offset`` (read now from ``path``
        when not read yet; OSError when the file is gone, fewer bytes if
        it shrank)."""
        if self._data is None:
            with open(self._path, "rb") as f:
                f.seek(self.offset)
                self._data = f.read(self.filesz)
        return self._data

    def _fields(self) -> tuple:
        return (self.vaddr, self.memsz, self.filesz, self.offset, self.data, self.prot, self.align)

    def __eq__(self, other):
        return self._fields() == other._fields() if other.__class__ is Segment else NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"Segment(vaddr={self.vaddr:#x}, memsz={self.memsz:#x}, filesz={self.filesz:#x}, "
                f"offset={self.offset:#x}, prot={self.prot}, align={self.align:#x})")

    @property
    def end(self) -> int:
        """First byte past the segment in memory (``vaddr + memsz``)."""
        return self.vaddr + self.memsz


class ElfImage:
    """A validated, loadable ELF executable (result of ``load_elf``).

    - ``entry``: e_entry, unrelocated (add the load base for a PIE).
    - ``is_pie``: e_type is ET_DYN (position independent; static-pie when
      ``interp`` is None).
    - ``segments``: the PT_LOAD segments, ascending and non-overlapping.
    - ``phdr_vaddr``: unrelocated address of the program header table in
      memory, for AT_PHDR. As Linux 6.1 computes it: e_phoff translated
      through the PT_LOAD whose file range contains it; else PT_PHDR's
      p_vaddr; else 0 (Linux then passes the bare load bias).
    - ``phent``/``phnum``: e_phentsize (56) and e_phnum, for AT_PHENT/AT_PHNUM.
    - ``interp``: the PT_INTERP path (without its NUL) or None.
    - ``stack_exec``: PT_GNU_STACK has PF_X (False when absent, see module doc).
    - ``max_align``: the largest power-of-two p_align of the PT_LOADs
      (>= PAGE_SIZE): a PIE's load base must be a multiple of it.

    Immutable by convention (one image serves every exec of a file,
    ImageCache); equal when every field is.
    """

    __slots__ = ("entry", "is_pie", "segments", "phdr_vaddr", "phent", "phnum", "interp",
                 "stack_exec", "max_align")

    def __init__(self, entry: int, is_pie: bool, segments: list[Segment], phdr_vaddr: int,
                 phent: int, phnum: int, interp: str | None, stack_exec: bool,
                 max_align: int = PAGE_SIZE):
        self.entry = entry
        self.is_pie = is_pie
        self.segments = segments
        self.phdr_vaddr = phdr_vaddr
        self.phent = phent
        self.phnum = phnum
        self.interp = interp
        self.stack_exec = stack_exec
        self.max_align = max_align

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        return self._fields() == other._fields() if other.__class__ is ElfImage else NotImplemented

    __hash__ = None  # holds a list

    def __repr__(self) -> str:
        return (f"ElfImage(entry={self.entry:#x}, is_pie={self.is_pie}, "
                f"segments={self.segments!r}, interp={self.interp!r})")

    def span(self) -> tuple[int, int]:
        """``(lo, hi)``: the page-aligned range covering all segments.

        ``lo`` is the first segment's vaddr rounded down to PAGE_SIZE, ``hi``
        the last segment's end rounded up; both unrelocated. A PIE loaded at
        ``base`` occupies ``[base + lo, base + hi)``; choose ``base`` a
        multiple of ``max_align`` (Linux: ELF_PAGESTART(load_bias - lo)).
        """
        lo = self.segments[0].vaddr & ~(PAGE_SIZE - 1)
        hi = _page_up(max(s.end for s in self.segments))
        return lo, hi


def _page_up(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def _prot_from_flags(p_flags: int) -> int:
    prot = 0
    if p_flags & PF_R:
        prot |= mmap.PROT_READ
    if p_flags & PF_W:
        prot |= mmap.PROT_WRITE
    if p_flags & PF_X:
        prot |= mmap.PROT_EXEC
    return prot


class _HostFile:
    """A regular host file read piecewise, as ``_parse`` reads its input:
    ``len()`` is the file's size, a slice is read with pread(2) (an empty
    or short one past the end, as slicing bytes)."""

    __slots__ = ("fd", "path", "size")

    def __init__(self, fd: int, path: str, size: int):
        self.fd = fd
        self.path = path
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: slice) -> bytes:
        start, stop = index.start or 0, min(index.stop, self.size)
        return os.pread(self.fd, stop - start, start) if stop > start else b""


def _segment_bytes(data, offset: int, filesz: int) -> tuple[bytes | None, str | None]:
    """(bytes, None) of a segment of an image given as bytes, (None, path)
    for a host file's (Segment.data reads them when asked)."""
    if isinstance(data, _HostFile):
        return None, data.path
    return data[offset:offset + filesz], None


def _check_ident(data: bytes) -> None:
    if len(data) < 4 or data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if len(data) < 6:
        raise ElfError(f"truncated ELF: header needs {ELF_HEADER_SIZE} bytes, file has {len(data)}")
    ei_class, ei_data = data[4], data[5]
    if ei_class == 1:
        raise ElfError("32-bit ELF is not supported")
    if ei_class != 2:
        raise ElfError(f"bad ELF class {ei_class} (EI_CLASS)")
    if ei_data == 2:
        raise ElfError("big-endian ELF is not supported")
    if ei_data != 1:
        raise ElfError(f"bad ELF data encoding {ei_data} (EI_DATA)")
    if len(data) < ELF_HEADER_SIZE:
        raise ElfError(f"truncated ELF: header needs {ELF_HEADER_SIZE} bytes, file has {len(data)}")


def load_elf(path_or_bytes: str | os.PathLike | bytes | bytearray | memoryview) -> ElfImage:
    """Read and validate an x86-64 ELF executable; return its ``ElfImage``.

    ``path_or_bytes`` is a host path or the file's bytes. Of a regular
    host file only the headers and PT_INTERP are read (the segments' bytes
    when their ``data`` is asked for). Raises:
    - ``FileNotFoundError`` / ``IsADirectoryError`` / ``PermissionError``
      (OSError from opening a path; a directory is IsADirectoryError, which
      execve(2) reports as EACCES);
    - ``ElfError`` for anything not loadable: not ELF, wrong class,
      endianness, machine or type, truncated headers or segments,
      e_phentsize != 56, no/too many program headers, bad PT_INTERP,
      p_filesz > p_memsz, p_offset/p_vaddr not congruent modulo the page
      size, unsorted or overlapping PT_LOAD, segments beyond user space.

    Dynamic executables are not rejected: ``interp`` is set. Sources:
    fs/binfmt_elf.c (load_elf_binary, load_elf_phdrs), elf(5), the gABI.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return _parse_checked(bytes(path_or_bytes))
    # open() raises FileNotFoundError, IsADirectoryError, PermissionError.
    with open(path_or_bytes, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if not _stat.S_ISREG(st.st_mode):  # a pipe or a device: read it all
            return _parse_checked(f.read())
        return _parse_checked(_HostFile(f.fileno(), os.fspath(path_or_bytes), st.st_size))


def _parse_checked(data) -> ElfImage:
    """_parse of ``data`` (bytes or a _HostFile) after _check_ident."""
    _check_ident(data[:ELF_HEADER_SIZE])
    try:
        return _parse(data)
    except (_PyElfError, _ConstructError, struct.error) as e:
        # Pre-validation keeps pyelftools within bounds; this is the net for
        # anything it still chokes on.
        raise ElfError(f"malformed ELF: {e}") from e


class ImageCache:
    """Parsed executables by host file identity, so a second exec skips the parse.

    Keyed by (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): a file
    changed in place gets a new key. Holds at most ``capacity`` images
    (least recently used go first). ElfImage is immutable, so one image
    serves every exec of the file (the shell loop of `busybox true`).
    """

    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        self._images: dict[tuple, ElfImage] = {}

    def load(self, path: str | os.PathLike) -> ElfImage:
        """``load_elf(path)`` through the cache; same errors."""
        st = os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        image = self._images.pop(key, None)
        if image is None:
            image = load_elf(path)
            if len(self._images) >= self.capacity:
                self._images.pop(next(iter(self._images)))
        self._images[key] = image
        return image


IMAGES = ImageCache()


_STRUCTS: ELFStructs | None = None


def _structs() -> ELFStructs:
    """pyelftools' structs for ELF64 little-endian x86-64 files, built once.

    Only the ELF header and program headers are ever parsed (Linux reads
    nothing else to execute a file: sections may be cut off or corrupt).
    ELFStructs rather than ELFFile: importing elftools.elf.elffile brings
    its DWARF, section and relocation modules (~10 ms of every start), and
    an ELFFile builds these structs anew for each file (~1-2 ms).
    """
    global _STRUCTS
    if _STRUCTS is None:
        structs = ELFStructs(little_endian=True, elfclass=64)
        structs.create_basic_structs()  # the word types and Elf_Ehdr
        create_phdr = getattr(structs, "_create_phdr", None)
        if create_phdr is not None:
            # Elf_Phdr alone, for x86-64's p_type names; what
            # create_advanced_structs does first, before ~20 more structs
            # (sections, symbols, notes...) that nothing here parses.
            structs.e_machine = "EM_X86_64"
            create_phdr()
        else:
            structs.create_advanced_structs("ET_EXEC", "EM_X86_64", "ELFOSABI_SYSV")
        _STRUCTS = structs
    return _STRUCTS


def _parse(data: bytes | _HostFile) -> ElfImage:
    structs = _structs()
    hdr = structs.Elf_Ehdr.parse(bytes(data[:ELF_HEADER_SIZE]))

    machine = hdr["e_machine"]
    if machine != "EM_X86_64":
        if isinstance(machine, int):
            machine = _MACHINE_NAMES.get(machine, f"{machine}")
        raise ElfError(f"not an x86-64 ELF (machine {machine})")
    e_type = hdr["e_type"]
    if e_type not in ("ET_EXEC", "ET_DYN"):
        if isinstance(e_type, int):
            e_type = _TYPE_NAMES.get(e_type, f"{e_type:#x}")
        raise ElfError(f"unsupported ELF type {e_type}")
    is_pie = e_type == "ET_DYN"

    phoff, phent, phnum = hdr["e_phoff"], hdr["e_phentsize"], hdr["e_phnum"]
    if phent != ELF_PHDR_SIZE:
        raise ElfError(f"bad program header size {phent} (e_phentsize, expected {ELF_PHDR_SIZE})")
    if phnum < 1:
        raise ElfError("no program headers (e_phnum is 0)")
    if phnum * phent > MAX_PHDR_TABLE:
        raise ElfError(f"too many program headers ({phnum})")
    for i in range(phnum):
        if phoff + (i + 1) * phent > len(data):
            raise ElfError(f"truncated ELF: program header {i} extends past the end of the file")

    phdr_struct = structs.Elf_Phdr
    table = data[phoff:phoff + phnum * phent]
    entry = hdr["e_entry"]
    segments: list[Segment] = []
    interp: str | None = None
    stack_exec = False
    pt_phdr_vaddr: int | None = None
    max_align = PAGE_SIZE

    for i in range(phnum):
        ph = phdr_struct.parse(table[i * phent:(i + 1) * phent])
        p_type = ph["p_type"]
        if p_type == "PT_LOAD":
            segments.append(_load_segment(i, ph, data, is_pie))
            max_align = max(max_align, segments[-1].align)
        elif p_type == "PT_INTERP":
            interp = _interp(i, ph, data)
        elif p_type == "PT_GNU_STACK":
            stack_exec = bool(ph["p_flags"] & PF_X)
        elif p_type == "PT_PHDR":
            pt_phdr_vaddr = ph["p_vaddr"]

    if not segments:
        raise ElfError("no PT_LOAD segment")
    for prev, cur in zip(segments, segments[1:]):
        if cur.vaddr < prev.vaddr:
            raise ElfError(f"PT_LOAD segments not in ascending order "
                           f"({cur.vaddr:#x} after {prev.vaddr:#x})")
        if cur.vaddr < prev.end:
            raise ElfError(f"overlapping PT_LOAD segments "
                           f"([{prev.vaddr:#x}, {prev.end:#x}) and [{cur.vaddr:#x}, {cur.end:#x}))")

    lo = segments[0].vaddr & ~(PAGE_SIZE - 1)
    hi = _page_up(max(s.end for s in segments))
    if is_pie:
        if hi - lo > USER_END - max_align:
            raise ElfError(f"segment too large: PIE spans {hi - lo:#x} bytes", errno.EINVAL)
    elif entry >= USER_END:
        raise ElfError(f"entry point {entry:#x} outside user space", errno.EINVAL)

    phdr_vaddr = 0
    phdr_found = False
    for s in segments:
        if s.offset <= phoff < s.offset + s.filesz:
            phdr_vaddr = phoff - s.offset + s.vaddr
            phdr_found = True
            break
    if not phdr_found and pt_phdr_vaddr is not None:
        phdr_vaddr = pt_phdr_vaddr

    return ElfImage(
        entry=entry,
        is_pie=is_pie,
        segments=segments,
        phdr_vaddr=phdr_vaddr,
        phent=phent,
        phnum=phnum,
        interp=interp,
        stack_exec=stack_exec,
        max_align=max_align,
    )


def _load_segment(i: int, ph, data: bytes, is_pie: bool) -> Segment:
    vaddr, memsz, filesz = ph["p_vaddr"], ph["p_memsz"], ph["p_filesz"]
    offset, align, p_flags = ph["p_offset"], ph["p_align"], ph["p_flags"]
    if filesz > memsz:
        raise ElfError(f"PT_LOAD with filesz > memsz (program header {i})", errno.EINVAL)
    if offset + filesz > len(data):
        raise ElfError(f"truncated ELF: segment {i} (offset {offset:#x}, filesz {filesz:#x}) "
                       f"extends past the end of the file ({len(data):#x} bytes)")
    # ET_EXEC: absolute addresses must lie in user space. ET_DYN: p_vaddr is
    # relative to the load base; each segment must fit, the span is checked
    # by the caller (_parse).
    limit_vaddr = 0 if is_pie else vaddr
    if memsz > USER_END or vaddr >= USER_END or limit_vaddr + memsz > USER_END:
        raise ElfError(f"segment too large: program header {i} "
                       f"[{vaddr:#x}, {vaddr + memsz:#x}) exceeds user space", errno.EINVAL)
    if filesz and (offset - vaddr) % PAGE_SIZE:
        raise ElfError(f"PT_LOAD {i}: p_offset {offset:#x} and p_vaddr {vaddr:#x} "
                       f"differ modulo the page size")
    if align < PAGE_SIZE or align & (align - 1):
        align = PAGE_SIZE
    segment_data, path = _segment_bytes(data, offset, filesz)
    return Segment(
        vaddr=vaddr,
        memsz=memsz,
        filesz=filesz,
        offset=offset,
        data=segment_data,
        prot=_prot_from_flags(p_flags),
        align=align,
        path=path,
    )


def _interp(i: int, ph, data: bytes) -> str:
    offset, filesz = ph["p_offset"], ph["p_filesz"]
    # load_elf_binary: p_filesz > PATH_MAX || p_filesz < 2 -> ENOEXEC.
    if filesz > PATH_MAX or filesz < 2:
        raise ElfError(f"bad PT_INTERP size {filesz}")
    if offset + filesz > len(data):
        raise ElfError(f"truncated ELF: PT_INTERP (program header {i}) extends past the end of the file")
    raw = data[offset:offset + filesz]
    if raw[-1] != 0:
        raise ElfError("PT_INTERP path is not NUL-terminated")
    return raw[:-1].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def sections_and_symbols(path: str) -> tuple[dict[str, tuple[int, bytes]], dict[str, int]]:
    """The sections ({name: (sh_addr, contents)}) and the .symtab symbols
    ({name: st_value}, local labels included) of an ELF64 file that
    kvmsentry built itself (runtime.elf, vdso64.elf).

    For the sentry's own trusted images only, read with ``struct`` in a
    fraction of a millisecond (elf(5): Elf64_Shdr is 64 bytes, Elf64_Sym
    24); guest programs go through ``load_elf``. SHT_NOBITS sections have
    empty contents. Raises OSError for the file, ValueError (struct.error)
    for a file that is not such an image.
    """
    with open(path, "rb") as f:
        data = f.read()
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_offset = headers[shstrndx][4]

    def name_at(table: int, offset: int) -> str:
        end = data.index(b"\0", table + offset)
        return data[table + offset:end].decode()

    sections: dict[str, tuple[int, bytes]] = {}
    symbols: dict[str, int] = {}
    for sh_name, sh_type, _, sh_addr, sh_offset, sh_size, sh_link, _, _, sh_entsize in headers:
        contents = b"" if sh_type == 8 else data[sh_offset:sh_offset + sh_size]  # SHT_NOBITS
        sections[name_at(strtab_offset, sh_name)] = (sh_addr, contents)
        if sh_type == 2:  # SHT_SYMTAB; its names are in section sh_link
            names = headers[sh_link][4]
            for st_name, _, _, _, st_value, _ in struct.iter_unpack("<IBBHQQ", contents):
                if st_name:
                    symbols[name_at(names, st_name)] = st_value
    return sections, symbols
