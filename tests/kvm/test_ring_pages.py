"""The ring path's request pages are per address space (layout.RING_AREA_GVA).

vCPU i's request page must be mapped only in the address space vCPU i
runs: at creation, after execve (switch_address_space) and never after
the thread exits (release); a ring-3 write to another address space's
vCPU's page must be a page fault, a write to its own page must work.
"""

import shutil
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from kvmsentry.platform import layout
from kvmsentry.platform.kvm import TRAP_FAULT, TRAP_SYSCALL, KvmPlatform
from kvmsentry.vm import x86

pytestmark = pytest.mark.requires_kvm

CODE_GVA = 0x40_0000
STACK_GVA = 0x7FFF_0000


@pytest.fixture
def platform():
    p = KvmPlatform(64 << 20)
    p.syscall_path = "ring"  # request pages exist only on the ring path
    yield p
    p.close()


def _mapped(space, gva):
    return bool(space.entry(gva) & x86.PTE_PRESENT)


def test_each_vcpu_page_is_mapped_in_its_own_address_space_only(platform):
    a, b = platform.new_address_space(), platform.new_address_space()
    ca, cb1, cb2 = platform.new_context(a), platform.new_context(b), platform.new_context(b)
    for ctx in (ca, cb1, cb2):
        assert layout.RING_AREA_GVA <= ctx._request_gva < layout.KERNEL_TEXT_GVA
    entry = a.entry(ca._request_gva)
    assert entry & x86.PTE_PRESENT and entry & x86.PTE_RW and entry & x86.PTE_USER and entry & x86.PTE_NX
    assert entry & x86.PTE_ADDR_MASK == ca._request_gpa
    assert not _mapped(a, cb1._request_gva) and not _mapped(a, cb2._request_gva)
    assert _mapped(b, cb1._request_gva) and _mapped(b, cb2._request_gva)  # threads of one process
    assert not _mapped(b, ca._request_gva)
    # execve: the page moves with the vCPU, zeroed.
    platform.memory.view[cb2._request_gpa + 8] = 0x5A
    c = platform.new_address_space()
    cb2.switch_address_space(c)
    assert not _mapped(b, cb2._request_gva) and _mapped(c, cb2._request_gva)
    assert platform.memory.view[cb2._request_gpa + 8] == 0
    # exit: gone, and a recycled vCPU starts with a fresh page.
    old_gpa, gva = cb1._request_gpa, cb1._request_gva
    cb1.release()
    assert not _mapped(b, gva)
    reused = platform.new_context(a)
    assert reused._request_gva == gva and reused._request_gpa != old_gpa
    assert _mapped(a, gva) and not _mapped(b, gva)


@pytest.fixture
def assembled(tmp_path):
    if shutil.which("as") is None:
        pytest.skip("GNU as is not installed (binutils)")

    def build(source):
        src, obj = tmp_path / "s.S", tmp_path / "s.o"
        src.write_text("    .text\n    .code64\n" + source + "\n")
        subprocess.run(["as", "--64", "-o", str(obj), str(src)], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with open(obj, "rb") as f:
            return ELFFile(f).get_section_by_name(".text").data()

    return build


def _program(platform, space, text):
    mem = platform.memory
    code = mem.alloc_frame()
    mem.write(code, text)
    space.map(CODE_GVA, code, writable=False, executable=True)
    space.map(STACK_GVA, mem.alloc_frame(), writable=True, executable=False)
    ctx = platform.new_context(space)
    ctx.reset(CODE_GVA, STACK_GVA + x86.PAGE_SIZE - 64)
    return ctx


def test_no_request_page_on_the_exit_path(platform):
    platform.syscall_path = "exit"
    space = platform.new_address_space()
    ctx = platform.new_context(space)
    assert ctx._request_gpa is None and not _mapped(space, ctx._request_gva)
    ctx.switch_address_space(platform.new_address_space())
    ctx.release()


def test_ring3_cannot_post_in_another_address_space(platform, assembled):
    victim_space, attacker_space = platform.new_address_space(), platform.new_address_space()
    victim = platform.new_context(victim_space)
    source = """
    movabs ${own:#x}, %rax
    movl $1, (%rax)
    syscall
    movabs ${foreign:#x}, %rax
    movl $1, (%rax)
    syscall
    """
    # The attacker's context is created after the victim's: it must know
    # its own page's address first, so assemble with a placeholder.
    attacker = _program(platform, attacker_space, assembled(source.format(own=0, foreign=0)))
    text = assembled(source.format(own=attacker._request_gva, foreign=victim._request_gva))
    platform.memory.write(attacker_space.entry(CODE_GVA) & x86.PTE_ADDR_MASK, text)
    assert attacker.run() == TRAP_SYSCALL  # its own page: written
    assert platform.memory.view[attacker._request_gpa] == 1
    assert attacker.run() == TRAP_FAULT
    assert attacker.fault.vector == x86.X86_TRAP_PF and attacker.fault.cr2 == victim._request_gva
    assert platform.memory.view[victim._request_gpa] == 0
    attacker.release()
    victim.release()
