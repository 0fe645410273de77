"""CPU faults as Linux signals, and reports a person can read.

``signal_for_fault`` maps an x86 exception to the signal and si_code
Linux sends for it (arch/x86/kernel/traps.c, arch/x86/mm/fault.c).
``describe_instruction`` disassembles the faulting instruction with
capstone, imported only here and only when a report needs it (importing
capstone costs ~22 ms of start-up).
"""

from __future__ import annotations

import signal

from kvmsentry.vm import x86
from kvmsentry.vm.x86 import PAGE_SHIFT, PAGE_SIZE

SEGV_MAPERR = 1
SEGV_ACCERR = 2
ILL_ILLOPN = 2
FPE_INTDIV = 1
TRAP_BRKPT = 1
BUS_ADRALN = 1

# vector -> (signal, si_code); #PF is decided by the memory manager.
_FAULT_SIGNALS = {
    x86.X86_TRAP_DE: (signal.SIGFPE, FPE_INTDIV),
    x86.X86_TRAP_DB: (signal.SIGTRAP, TRAP_BRKPT),
    x86.X86_TRAP_BP: (signal.SIGTRAP, TRAP_BRKPT),
    x86.X86_TRAP_OF: (signal.SIGSEGV, 0),
    x86.X86_TRAP_BR: (signal.SIGSEGV, 0),
    x86.X86_TRAP_UD: (signal.SIGILL, ILL_ILLOPN),
    x86.X86_TRAP_NM: (signal.SIGFPE, 0),
    x86.X86_TRAP_TS: (signal.SIGSEGV, 0),
    x86.X86_TRAP_NP: (signal.SIGBUS, 0),
    x86.X86_TRAP_SS: (signal.SIGBUS, 0),
    x86.X86_TRAP_GP: (signal.SIGSEGV, 0),
    x86.X86_TRAP_MF: (signal.SIGFPE, 0),
    x86.X86_TRAP_AC: (signal.SIGBUS, BUS_ADRALN),
    x86.X86_TRAP_XF: (signal.SIGFPE, 0),
}


def signal_for_fault(vector: int) -> tuple[int, int]:
    """(signal number, si_code) Linux sends for exception ``vector`` in user mode."""
    return _FAULT_SIGNALS.get(vector, (signal.SIGSEGV, 0))


def signal_name(signo: int) -> str:
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


def peek(mm, gva: int, length: int) -> bytes:
    """Up to ``length`` bytes at ``gva`` from pages already present (no faulting in)."""
    out = bytearray()
    while len(out) < length:
        gpa = mm.pages.get((gva + len(out)) >> PAGE_SHIFT)
        if gpa is None:
            break
        offset = (gva + len(out)) & (PAGE_SIZE - 1)
        chunk = min(PAGE_SIZE - offset, length - len(out))
        out += mm.view[gpa + offset:gpa + offset + chunk]
    return bytes(out)


def describe_instruction(mm, rip: int) -> str:
    """``0xRIP: mnemonic operands`` for the instruction at ``rip``, or why not."""
    code = peek(mm, rip, 16)
    if not code:
        return f"{rip:#x}: <not mapped>"
    import capstone  # deferred: only fault reports need it

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for insn in md.disasm(code, rip):
        return f"{insn.address:#x}: {insn.mnemonic} {insn.op_str}".rstrip()
    return f"{rip:#x}: <undecodable bytes {code[:8].hex()}>"


REGISTER_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")


def format_registers(regs, rip: int, rsp: int, rflags: int) -> str:
    """The user registers, four per line, as a fault report shows them."""
    values = {name: getattr(regs, name) for name in REGISTER_NAMES}
    values["rsp"] = rsp
    values["rip"] = rip
    values["rflags"] = rflags
    names = list(REGISTER_NAMES) + ["rip", "rflags"]
    lines = []
    for i in range(0, len(names), 4):
        lines.append("  " + "  ".join(f"{n:>6}={values[n]:016x}" for n in names[i:i + 4]))
    return "\n".join(lines)
