"""x86-64 architectural constants and descriptor encodings.

Bit names follow the Linux kernel (arch/x86/include/asm/processor-flags.h,
msr-index.h) and the Intel SDM, volume 3. Nothing here knows about Linux
system calls.
"""

from __future__ import annotations

import struct

# Control registers (processor-flags.h)
CR0_PE = 1 << 0
CR0_MP = 1 << 1
CR0_EM = 1 << 2
CR0_TS = 1 << 3
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_AM = 1 << 18
CR0_PG = 1 << 31

CR4_PAE = 1 << 5
CR4_PGE = 1 << 7
CR4_OSFXSR = 1 << 9
CR4_OSXMMEXCPT = 1 << 10
CR4_UMIP = 1 << 11
CR4_FSGSBASE = 1 << 16
CR4_OSXSAVE = 1 << 18
CR4_SMEP = 1 << 20
CR4_SMAP = 1 << 21

EFER_SCE = 1 << 0
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
EFER_NX = 1 << 11

# RFLAGS
X86_EFLAGS_CF = 1 << 0
X86_EFLAGS_FIXED = 1 << 1
X86_EFLAGS_TF = 1 << 8
X86_EFLAGS_IF = 1 << 9
X86_EFLAGS_DF = 1 << 10
X86_EFLAGS_IOPL = 3 << 12
X86_EFLAGS_NT = 1 << 14
X86_EFLAGS_RF = 1 << 16
X86_EFLAGS_AC = 1 << 18

# MSRs (msr-index.h)
MSR_EFER = 0xC0000080
MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_SYSCALL_MASK = 0xC0000084
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102
MSR_IA32_TSC = 0x10
MSR_IA32_MISC_ENABLE = 0x1A0
MSR_IA32_CR_PAT = 0x277

# CPUID bits we read
CPUID_1_ECX_XSAVE = 1 << 26
CPUID_1_ECX_OSXSAVE = 1 << 27
CPUID_7_EBX_FSGSBASE = 1 << 0
XFEATURE_MASK_FP = 1 << 0
XFEATURE_MASK_SSE = 1 << 1
XFEATURE_MASK_YMM = 1 << 2

# Page-table entry bits (pgtable_types.h)
PTE_PRESENT = 1 << 0
PTE_RW = 1 << 1
PTE_USER = 1 << 2
PTE_PWT = 1 << 3
PTE_PCD = 1 << 4
PTE_ACCESSED = 1 << 5
PTE_DIRTY = 1 << 6
PTE_PSE = 1 << 7
PTE_GLOBAL = 1 << 8
PTE_NX = 1 << 63
PTE_ADDR_MASK = 0x000F_FFFF_FFFF_F000

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
HUGE_PAGE_SIZE = 2 << 20

# Exception vectors (traps.h) and whether the CPU pushes an error code.
X86_TRAP_DE = 0
X86_TRAP_DB = 1
X86_TRAP_NMI = 2
X86_TRAP_BP = 3
X86_TRAP_OF = 4
X86_TRAP_BR = 5
X86_TRAP_UD = 6
X86_TRAP_NM = 7
X86_TRAP_DF = 8
X86_TRAP_TS = 10
X86_TRAP_NP = 11
X86_TRAP_SS = 12
X86_TRAP_GP = 13
X86_TRAP_PF = 14
X86_TRAP_MF = 16
X86_TRAP_AC = 17
X86_TRAP_MC = 18
X86_TRAP_XF = 19

TRAP_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint",
    4: "#OF overflow", 5: "#BR bound range", 6: "#UD invalid opcode",
    7: "#NM device not available", 8: "#DF double fault", 10: "#TS invalid TSS",
    11: "#NP segment not present", 12: "#SS stack fault", 13: "#GP general protection",
    14: "#PF page fault", 16: "#MF x87 floating point", 17: "#AC alignment check",
    18: "#MC machine check", 19: "#XM SIMD floating point", 20: "#VE virtualization",
    21: "#CP control protection",
}

# Page-fault error code bits (traps.h X86_PF_*)
X86_PF_PROT = 1 << 0
X86_PF_WRITE = 1 << 1
X86_PF_USER = 1 << 2
X86_PF_RSVD = 1 << 3
X86_PF_INSTR = 1 << 4


def segment_descriptor(*, code: bool, dpl: int, long_mode: bool) -> int:
    """An 8-byte flat code or data segment descriptor (SDM 3.4.5).

    Base 0, limit 4 GiB, present, accessed bit preset (so the CPU never
    writes the GDT when it loads the selector).
    """
    access = 0x80 | (dpl << 5) | 0x10  # P, DPL, S (code/data)
    access |= 0x0B if code else 0x03   # execute/read + accessed, or read/write + accessed
    flags = 0x8  # G
    if code and long_mode:
        flags |= 0x2  # L
    else:
        flags |= 0x4  # D/B
    limit = 0xFFFFF
    return (limit & 0xFFFF) | ((limit >> 16) & 0xF) << 48 | access << 40 | flags << 52


def tss_descriptor(base: int, limit: int) -> bytes:
    """The 16-byte 64-bit TSS descriptor (available TSS, type 9; SDM 7.2.3)."""
    low = (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | 0x89 << 40 | ((limit >> 16) & 0xF) << 48 | ((base >> 24) & 0xFF) << 56
    return struct.pack("<QQ", low, base >> 32)


def interrupt_gate(handler: int, selector: int, *, dpl: int, ist: int) -> bytes:
    """A 16-byte 64-bit interrupt gate (SDM 6.14.1), interrupts masked on entry."""
    low = (handler & 0xFFFF) | selector << 16 | (ist & 7) << 32 | (0x8E | dpl << 5) << 40 | ((handler >> 16) & 0xFFFF) << 48
    return struct.pack("<QQ", low, handler >> 32)


def tss64(*, rsp0: int, ist: dict[int, int], io_ports: tuple[int, ...] = ()) -> bytes:
    """A 64-bit TSS (SDM 7.7): RSP0, IST1-7 and an I/O permission bitmap.

    The bitmap covers ports 0-255 and allows only ``io_ports`` (a clear bit
    allows the port at CPL > IOPL; SDM 19.5.2). The result is 104 + 33
    bytes; the TSS limit is ``len(result) - 1``.
    """
    bitmap = bytearray(b"\xff" * 33)  # 32 bytes for ports 0-255, then the 0xff terminator
    for port in io_ports:
        bitmap[port // 8] &= ~(1 << (port % 8)) & 0xFF
    tss = bytearray(104)
    struct.pack_into("<Q", tss, 4, rsp0)
    for index, top in ist.items():
        struct.pack_into("<Q", tss, 36 + (index - 1) * 8, top)
    struct.pack_into("<H", tss, 102, 104)  # the bitmap follows the TSS proper
    return bytes(tss + bitmap)


def is_canonical(address: int) -> bool:
    """True when ``address`` is a canonical 48-bit virtual address."""
    return address < (1 << 47) or (0xFFFF_8000_0000_0000 <= address < (1 << 64))
