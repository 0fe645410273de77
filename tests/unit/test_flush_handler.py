"""guest/runtime.S flush_handler: its poke of each page-table page is one
atomic read-modify-write.

The sentry writes page-table entries on one host thread while another
vCPU of the same process may be running flush_handler over the same page.
A plain `orq $0, (addr)` reads bytes 4-11 and writes them back later: a
leaf entry the sentry wrote in between (entry 1's low half, with its
present bit and frame) came back as it was, leaving 0x8000000000000000
(NX alone) and a page fault nothing could resolve (CI, test_mm_threads,
about one run in a hundred under load). The race itself is too rare to
provoke in a test, so this reads the built runtime instead. No /dev/kvm.
"""

import os

import capstone

import kvmsentry.platform
from kvmsentry.loader.elf import sections_and_symbols


def _flush_handler_instructions():
    path = os.path.join(os.path.dirname(kvmsentry.platform.__file__), "runtime.elf")
    sections, symbols = sections_and_symbols(path)
    base, text = sections[".text"]
    start = symbols["flush_handler"] - base
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    instructions = []
    for insn in md.disasm(text[start:], symbols["flush_handler"]):
        instructions.append(insn)
        if insn.mnemonic == "iretq":
            break
    return instructions


def test_the_page_table_poke_is_locked():
    writes = [insn for insn in _flush_handler_instructions()
              if insn.mnemonic.startswith(("or", "lock or")) and "ptr [" in insn.op_str]
    assert writes, "flush_handler no longer pokes with `or`: update this test"
    for insn in writes:
        assert insn.mnemonic.startswith("lock "), f"{insn.mnemonic} {insn.op_str} is not atomic"
