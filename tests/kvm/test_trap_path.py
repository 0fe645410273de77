"""The ring-3 trap path through the real /dev/kvm (kvmsentry.platform.kvm).

Hand-assembled snippets (GNU as, then the .text bytes and label offsets
read back with pyelftools) run in ring 3 of a small KvmPlatform: a
`syscall` must reach the sentry with every general register intact, a
resume must give them back, CPU exceptions must arrive as faults with the
right vector, error code and CR2, a ring-3 `out` to a runtime port must
look like the #GP it would be, and remapping a page the program already
read must be seen after the flush.
"""

import shutil
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from kvmsentry.platform import layout
from kvmsentry.platform.kvm import TRAP_FAULT, TRAP_INTERRUPT, TRAP_SYSCALL, KvmPlatform
from kvmsentry.vm import x86
from kvmsentry.vm.paging import pte

pytestmark = pytest.mark.requires_kvm

CODE_GVA = 0x40_0000
STACK_GVA = 0x7FFF_0000  # one page; rsp starts at its top minus a little
DATA_GVA = 0x60_0000
STACK_TOP = STACK_GVA + x86.PAGE_SIZE - 64
UNMAPPED_GVA = 0x1234_5678_9000

# Distinct 64-bit constants, one per register the snippet loads.
LOADED = {
    "rbx": 0x1111_2222_3333_4444, "rdx": 0x5555_6666_7777_8888,
    "rsi": 0x9999_AAAA_BBBB_CCCC, "rdi": 0xDDDD_EEEE_FFFF_0001,
    "rbp": 0x0123_4567_89AB_CDEF, "r8": 0xFEDC_BA98_7654_3210,
    "r9": 0x0F0F_0F0F_F0F0_F0F0, "r10": 0xA5A5_5A5A_A5A5_5A5A,
    "r12": 0x1357_9BDF_2468_ACE0, "r13": 0x8000_0000_0000_0001,
    "r14": 0x7FFF_FFFF_FFFF_FFFE, "r15": 0xC0DE_CAFE_BEEF_F00D,
}


@pytest.fixture(scope="module")
def assemble(tmp_path_factory):
    """assemble(source) -> (text bytes, {label: offset of each label})."""
    if shutil.which("as") is None:
        pytest.skip("GNU as is not installed (binutils)")
    tmp = tmp_path_factory.mktemp("snippets")
    counter = iter(range(1000))

    def build(source):
        n = next(counter)
        src, obj = tmp / f"s{n}.S", tmp / f"s{n}.o"
        src.write_text("    .text\n    .code64\n" + source + "\n")
        subprocess.run(["as", "--64", "-o", str(obj), str(src)], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with open(obj, "rb") as f:
            elf = ELFFile(f)
            text = elf.get_section_by_name(".text").data()
            assert elf.get_section_by_name(".rela.text") is None, "snippets must need no relocation"
            symtab = elf.get_section_by_name(".symtab")
            labels = {s.name: s["st_value"] for s in (symtab.iter_symbols() if symtab else ())
                      if s.name and s["st_info"]["type"] == "STT_NOTYPE"}
        return text, labels

    return build


@pytest.fixture
def platform():
    p = KvmPlatform(64 << 20)
    yield p
    p.close()


class Snippet:
    """One address space with the code at CODE_GVA and a stack page, and its context."""

    def __init__(self, platform, text, labels):
        self.platform = platform
        self.labels = labels
        mem = platform.memory
        self.space = platform.new_address_space()
        assert len(text) <= x86.PAGE_SIZE
        code = mem.alloc_frame()
        mem.write(code, text)
        self.space.map(CODE_GVA, code, writable=False, executable=True)
        self.stack = mem.alloc_frame()
        self.space.map(STACK_GVA, self.stack, writable=True, executable=False)
        self.context = platform.new_context(self.space)
        self.context.reset(CODE_GVA, STACK_TOP)

    def address(self, label):
        return CODE_GVA + self.labels[label]

    def close(self):
        self.context.release()


@pytest.fixture
def snippet(platform, assemble):
    made = []

    def make(source):
        s = Snippet(platform, *assemble(source))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _load_all():
    return "\n".join(f"    movabs ${value:#x}, %{reg}" for reg, value in LOADED.items())


def _regs(ctx):
    return {name: getattr(ctx.regs, name) for name in LOADED}


def test_syscall_then_ud2_round_trip(snippet):
    s = snippet(f"""
{_load_all()}
    mov $39, %eax
    syscall
after_syscall:
at_ud2:
    ud2
""")
    ctx = s.context
    assert ctx.run() == TRAP_SYSCALL
    assert ctx.regs.rax == 39
    assert _regs(ctx) == LOADED
    # The CPU put the return RIP in rcx and RFLAGS in r11; rsp is untouched.
    assert ctx.regs.rcx == s.address("at_ud2")
    assert ctx.user_rip == s.address("at_ud2")
    assert ctx.regs.rsp == STACK_TOP
    assert ctx.user_rsp == STACK_TOP
    assert ctx.user_rflags & x86.X86_EFLAGS_IF
    assert ctx.regs.r11 == ctx.user_rflags

    ctx.regs.rax = 1234
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_UD
    assert ctx.fault.error_code == 0
    assert ctx.user_rip == s.address("at_ud2")
    assert ctx.user_rsp == STACK_TOP
    assert ctx.regs.rsp == STACK_TOP
    assert ctx.regs.rax == 1234
    assert _regs(ctx) == LOADED


def test_syscall_result_and_changed_registers_reach_ring3(snippet):
    """What the sentry writes into regs before resuming is what ring 3 sees."""
    s = snippet("""
    mov $60, %eax
    syscall
    mov %rax, %rbx
    mov %rdi, %r12
    mov %rsp, %r13
    mov $1, %eax
    syscall
""")
    ctx = s.context
    assert ctx.run() == TRAP_SYSCALL and ctx.regs.rax == 60
    ctx.regs.rax = (-38) & (2**64 - 1)  # -ENOSYS
    ctx.regs.rdi = 0xABCD_EF01_2345_6789
    ctx.user_rsp = STACK_TOP - 128
    assert ctx.run() == TRAP_SYSCALL and ctx.regs.rax == 1
    assert ctx.regs.rbx == (-38) & (2**64 - 1)
    assert ctx.regs.r12 == 0xABCD_EF01_2345_6789
    assert ctx.regs.r13 == STACK_TOP - 128


def test_stack_and_red_zone_survive_a_syscall(snippet):
    """The runtime never touches the user stack: values below rsp stay put."""
    s = snippet("""
    movabs $0x1122334455667788, %rax
    push %rax
    mov %rax, -8(%rsp)
    mov %rax, -128(%rsp)
    mov $39, %eax
    syscall
    mov -8(%rsp), %rbx
    mov -128(%rsp), %rdx
    pop %rsi
    mov $39, %eax
    syscall
""")
    ctx = s.context
    assert ctx.run() == TRAP_SYSCALL
    assert ctx.run() == TRAP_SYSCALL
    assert ctx.regs.rbx == ctx.regs.rdx == ctx.regs.rsi == 0x1122334455667788


def test_write_to_unmapped_address_is_page_fault(snippet):
    s = snippet(f"""
    movabs ${UNMAPPED_GVA + 0x10:#x}, %rax
at_store:
    movq $1, (%rax)
""")
    ctx = s.context
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_PF
    assert ctx.fault.cr2 == UNMAPPED_GVA + 0x10
    assert ctx.fault.error_code & x86.X86_PF_WRITE
    assert ctx.fault.error_code & x86.X86_PF_USER
    assert not ctx.fault.error_code & x86.X86_PF_PROT  # not present
    assert ctx.user_rip == s.address("at_store")
    assert ctx.regs.rsp == STACK_TOP


def test_write_to_read_only_page_is_protection_fault(snippet):
    s = snippet("""
    lea at_store(%rip), %rax
at_store:
    movb $1, (%rax)
""")
    ctx = s.context
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_PF
    assert ctx.fault.cr2 == s.address("at_store")
    assert ctx.fault.error_code & (x86.X86_PF_PROT | x86.X86_PF_WRITE | x86.X86_PF_USER) == \
        x86.X86_PF_PROT | x86.X86_PF_WRITE | x86.X86_PF_USER


def test_ring3_cannot_touch_the_runtime_frame_page(snippet, platform):
    """The frame page is mapped U=1 (for PVM) but read-only: no forged iret frame."""
    frame = layout.vcpu_base(0) + layout.FRAME_PAGE_OFFSET + layout.FRAME_OFFSET
    s = snippet(f"""
    movabs ${frame:#x}, %rax
    mov (%rax), %rbx
    movq $0, (%rax)
""")
    ctx = s.context
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_PF
    assert ctx.fault.cr2 == frame
    assert ctx.fault.error_code & x86.X86_PF_WRITE


@pytest.mark.parametrize("port", [layout.SYSCALL_PORT, layout.EXCEPTION_PORT_BASE + 6,
                                  layout.EXCEPTION_PORT_BASE + 14])
def test_ring3_out_to_a_runtime_port_is_forged_exit(snippet, port):
    """The TSS bitmap lets ring 3 reach the runtime's ports; the platform calls it #GP."""
    s = snippet(f"""
    nop
    nop
    nop
    xor %eax, %eax
at_out:
    out %al, ${port:#x}
after_out:
    mov $39, %eax
    syscall
""")
    ctx = s.context
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_GP
    assert ctx.regs.rsp == STACK_TOP


def test_ring3_out_to_a_denied_port_is_gp(snippet):
    s = snippet("""
    xor %eax, %eax
at_out:
    out %al, $0x70
""")
    ctx = s.context
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_GP
    assert ctx.fault.error_code == 0
    assert ctx.user_rip == s.address("at_out")


def test_int3_is_breakpoint_after_the_instruction(snippet):
    s = snippet("""
    int3
after:
    nop
""")
    ctx = s.context
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_BP
    assert ctx.user_rip == s.address("after")


def test_fault_then_resume_after_fixing_the_mapping(snippet, platform):
    """A #PF handled by mapping the page: resuming re-executes the access."""
    s = snippet(f"""
    movabs ${DATA_GVA:#x}, %rsi
    mov (%rsi), %rbx
    mov $39, %eax
    syscall
""")
    ctx = s.context
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_PF and ctx.fault.cr2 == DATA_GVA
    frame = platform.memory.alloc_frame()
    platform.memory.write(frame, (0xFEED_FACE_0000_1234).to_bytes(8, "little"))
    s.space.map_entry(DATA_GVA, pte(frame, writable=False, executable=False, user=True))
    assert ctx.run() == TRAP_SYSCALL
    assert ctx.regs.rbx == 0xFEED_FACE_0000_1234


READ_TWICE = f"""
    movabs ${DATA_GVA:#x}, %rsi
    mov (%rsi), %rax
    syscall
    mov (%rsi), %rbx
    mov $39, %eax
    syscall
    mov (%rsi), %rdx
    mov $39, %eax
    syscall
"""
VALUE_A = 0xAAAA_AAAA_0000_000A
VALUE_B = 0xBBBB_BBBB_0000_000B


def _data_frame(platform, value):
    frame = platform.memory.alloc_frame()
    platform.memory.write(frame, value.to_bytes(8, "little"))
    return frame


@pytest.mark.parametrize("how", ["unmap_then_map_entry", "set_entry"])
def test_remap_is_seen_after_the_flush(snippet, platform, how):
    """Without flush_return/flush_handler a shadow MMU (PVM) would still show frame A."""
    s = snippet(READ_TWICE)
    a, b = _data_frame(platform, VALUE_A), _data_frame(platform, VALUE_B)
    s.space.map(DATA_GVA, a, writable=False, executable=False)
    ctx = s.context
    assert ctx.run() == TRAP_SYSCALL
    assert ctx.regs.rax == VALUE_A
    entry = pte(b, writable=False, executable=False, user=True)
    if how == "set_entry":
        s.space.set_entry(DATA_GVA, entry)
    else:
        s.space.unmap(DATA_GVA)
        s.space.map_entry(DATA_GVA, entry)
    assert s.space.page_table.dirty_tables
    assert ctx.run() == TRAP_SYSCALL
    assert not s.space.page_table.dirty_tables  # the flush ran: settled
    assert ctx.regs.rbx == VALUE_B
    assert ctx.regs.rsi == DATA_GVA  # flush_handler restores what it used
    # A later plain resume (iret_return) keeps seeing B.
    assert ctx.run() == TRAP_SYSCALL
    assert ctx.regs.rdx == VALUE_B


def test_unmap_is_seen_after_the_flush(snippet, platform):
    s = snippet(READ_TWICE)
    s.space.map(DATA_GVA, _data_frame(platform, VALUE_A), writable=False, executable=False)
    ctx = s.context
    assert ctx.run() == TRAP_SYSCALL and ctx.regs.rax == VALUE_A
    s.space.unmap(DATA_GVA)
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_PF
    assert ctx.fault.cr2 == DATA_GVA
    assert not ctx.fault.error_code & x86.X86_PF_PROT


def test_write_protect_is_seen_after_the_flush(snippet, platform):
    s = snippet(f"""
    movabs ${DATA_GVA:#x}, %rsi
    movq $1, (%rsi)
    mov $39, %eax
    syscall
second_store:
    movq $2, (%rsi)
    mov $39, %eax
    syscall
""")
    frame = _data_frame(platform, 0)
    s.space.map(DATA_GVA, frame, writable=True, executable=False)
    ctx = s.context
    assert ctx.run() == TRAP_SYSCALL
    s.space.set_entry(DATA_GVA, pte(frame, writable=False, executable=False, user=True))
    assert ctx.run() == TRAP_FAULT
    assert ctx.fault.vector == x86.X86_TRAP_PF
    assert ctx.fault.error_code & x86.X86_PF_PROT and ctx.fault.error_code & x86.X86_PF_WRITE
    assert ctx.user_rip == s.address("second_store")
    assert platform.memory.read(frame, 8) == (1).to_bytes(8, "little")


@pytest.mark.parametrize("flush", [False, True])
def test_a_kick_before_the_return_to_ring3_is_an_interrupt_in_ring3(snippet, platform, flush):
    """A kick landing between run()'s frame and KVM_RUN (immediate_exit set)
    stops the vCPU at iret_return (or flush_return): that must count as
    stopped in ring 3 at the user state, so the kernel can deliver a signal
    or flush now; resumed "as is" inside the runtime, a pending signal
    waited for a trap a program in a loop without system calls never makes."""
    s = snippet(READ_TWICE)
    s.space.map(DATA_GVA, _data_frame(platform, VALUE_A), writable=False, executable=False)
    ctx = s.context
    assert ctx.run() == TRAP_SYSCALL
    user_rip, user_rsp = ctx.user_rip, ctx.user_rsp
    if flush:
        s.space.set_entry(DATA_GVA, pte(_data_frame(platform, VALUE_B), writable=False,
                                        executable=False, user=True))
    ctx.vcpu.run_struct.immediate_exit = 1  # what kick() does before KVM_RUN
    assert ctx.run() == TRAP_INTERRUPT
    assert not ctx.in_runtime
    assert (ctx.user_rip, ctx.user_rsp) == (user_rip, user_rsp)
    # Resumed, it returns to ring 3 through the frame as a fresh run would.
    assert ctx.run() == TRAP_SYSCALL
    assert ctx.regs.rbx == (VALUE_B if flush else VALUE_A)
