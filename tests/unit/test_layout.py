"""guest/runtime.S repeats offsets and ports of kvmsentry/platform/layout.py: they must agree."""

import re
from pathlib import Path

import pytest

from kvmsentry.platform import layout

RUNTIME_S = Path(__file__).resolve().parents[2] / "guest" / "runtime.S"


def _defines():
    """{name: int} for every `#define NAME <number>` in runtime.S."""
    values = {}
    for line in RUNTIME_S.read_text().splitlines():
        m = re.match(r"\s*#\s*define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)\s*(?:/\*.*)?$", line)
        if m:
            values[m.group(1)] = int(m.group(2), 0)
    return values


@pytest.mark.parametrize("name, expected", [
    ("IST_TOP_OFFSET", layout.IST_TOP_OFFSET),
    ("FRAME_PAGE_FRAME_OFFSET", layout.FRAME_PAGE_OFFSET + layout.FRAME_OFFSET),
    ("ZAP_LIST_OFFSET", layout.ZAP_LIST_OFFSET),
    ("SYSCALL_PORT", layout.SYSCALL_PORT),
    ("EXCEPTION_PORT_BASE", layout.EXCEPTION_PORT_BASE),
    ("VCPU_AREA_GVA", layout.VCPU_AREA_GVA),
    ("VCPU_STUB_OFFSET", layout.VCPU_STUB_OFFSET),
    ("FRAME_PAGE_OFFSET", layout.FRAME_PAGE_OFFSET),
    ("FAST_FRAMES_OFFSET", layout.FAST_FRAMES_OFFSET),
    ("FAST_FRAME_SIZE", layout.FAST_FRAME_SIZE),
    ("FAST_READ_FRAME", layout.FAST_READ_FRAME),
    ("FAST_READ_MASK_OFFSET", layout.FAST_READ_MASK_OFFSET),
    ("RING_WAIT_PORT", layout.RING_WAIT_PORT),
    ("RING_AREA_GVA", layout.RING_AREA_GVA),
    ("RING_SPIN_OFFSET", layout.RING_SPIN_OFFSET),
    ("RING_POSTED", layout.RING_POSTED),
    ("RING_DONE", layout.RING_DONE),
    ("RING_EXIT", layout.RING_EXIT),
    ("RING_CLAIMED", layout.RING_CLAIMED),
])
def test_runtime_define_matches_layout(name, expected):
    defines = _defines()
    assert name in defines, f"runtime.S has no numeric #define {name}"
    assert defines[name] == expected, f"runtime.S {name}={defines[name]:#x}, layout.py says {expected:#x}"


def test_exception_frame_offset_is_below_the_ist_top():
    # runtime.S: the CPU pushes 5 qwords at the IST top, the stub one more.
    assert layout.EXCEPTION_FRAME_OFFSET == layout.IST_TOP_OFFSET - 6 * 8


def test_iret_frame_fits_in_the_frame_page():
    assert 0 <= layout.FRAME_OFFSET and layout.FRAME_OFFSET + 5 * 8 <= 0x1000


def test_vcpu_slot_regions_fit_the_stride():
    end = layout.ZAP_LIST_OFFSET + layout.ZAP_LIST_PAGES * 0x1000
    assert end <= layout.VCPU_STRIDE
    assert layout.IST_TOP_OFFSET <= layout.ZAP_LIST_OFFSET
    assert layout.GDT_TSS_OFFSET + 104 + 33 <= 0x1000


def test_ring_request_pages_are_per_address_space_and_reachable():
    """vCPU i's request page is in PML4 slot 510 (not the shared 511), and the
    stub's RIP-relative operands reach it from every slot."""
    from kvmsentry.platform.kvm import Runtime
    rt = Runtime.load()
    assert rt.symbols["vcpu0_ring_request"] == layout.RING_AREA_GVA
    for index in (0, layout.MAX_VCPUS - 1):
        gva = layout.ring_request_gva(index)
        assert (gva >> 39) & 511 == layout.RING_PML4_SLOT != layout.KERNEL_PML4_SLOT
        stub = layout.vcpu_base(index) + layout.VCPU_STUB_OFFSET
        assert gva - stub == layout.RING_AREA_GVA - (layout.VCPU_AREA_GVA + layout.VCPU_STUB_OFFSET)
        assert abs(gva - stub) < 1 << 31


def test_ring_withdrawn_bit_matches_layout():
    assert 1 << _defines()["RING_WITHDRAWN_BIT"] == layout.RING_WITHDRAWN


def test_fast_frames_fit_below_the_iret_frame():
    # The fast frames, the ring path's answer frame, the read frame, the
    # served-fd mask, then the ring's spin budget.
    end = layout.FAST_FRAMES_OFFSET + (layout.FAST_READ_FRAME + 1) * layout.FAST_FRAME_SIZE
    assert end <= layout.FAST_READ_MASK_OFFSET
    assert layout.FAST_READ_MASK_OFFSET + 8 <= layout.RING_SPIN_OFFSET
    assert layout.RING_SPIN_OFFSET + 8 <= layout.FRAME_OFFSET
    assert layout.FAST_READ_MAX_FD == 64  # the stub's `cmp $64, %rdi`


def test_vcpu_stub_fast_blocks_are_where_the_platform_looks():
    """Context._interrupted_in_stub finds a call's block at vcpu_syscall_out + 3 + 12 k."""
    from kvmsentry.platform.kvm import Runtime
    rt = Runtime.load()
    stub_base = layout.VCPU_AREA_GVA + layout.VCPU_STUB_OFFSET
    out = rt.symbols["vcpu_syscall_out"] - stub_base
    assert rt.vcpu_stub[out:out + 3] == bytes.fromhex("e610f4")  # out %al,$0x10; hlt
    for k in range(len(layout.FAST_SYSCALLS)):
        block = rt.vcpu_stub[out + 3 + 12 * k:out + 3 + 12 * (k + 1)]
        assert block[:3] == bytes.fromhex("4889e0")  # mov %rsp,%rax
        assert block[3:6] == bytes.fromhex("488d25")  # lea disp32(%rip),%rsp
        assert block[10:] == bytes.fromhex("48cf")  # iretq
        # The lea reaches frame k of the frame page (same offset in every slot).
        disp = int.from_bytes(block[6:10], "little", signed=True)
        target = stub_base + out + 3 + 12 * k + 10 + disp
        assert target == (layout.VCPU_AREA_GVA + layout.FRAME_PAGE_OFFSET + layout.FAST_FRAMES_OFFSET
                          + k * layout.FAST_FRAME_SIZE)
    # Then the read block: cmp $64, %rdi; jae out; bt %rdi, <mask>; jnc out;
    # mov %rsp,%rax; lea <read frame>,%rsp; iretq.
    read = out + 3 + 12 * len(layout.FAST_SYSCALLS)
    code = rt.vcpu_stub
    assert rt.symbols["vcpu_fast_read"] - stub_base == read
    assert code[read:read + 4] == bytes.fromhex("4883ff40") and code[read + 4] == 0x73
    assert code[read + 6:read + 10] == bytes.fromhex("480fa33d")  # bt %rdi, disp32(%rip)
    disp = int.from_bytes(code[read + 10:read + 14], "little", signed=True)
    assert stub_base + read + 14 + disp == (layout.VCPU_AREA_GVA + layout.FRAME_PAGE_OFFSET
                                            + layout.FAST_READ_MASK_OFFSET)
    assert code[read + 14] == 0x73  # jnc rel8
    go = rt.symbols["vcpu_fast_read_go"] - stub_base
    assert go == read + 16 and code[go:go + 3] == bytes.fromhex("4889e0")
    disp = int.from_bytes(code[go + 6:go + 10], "little", signed=True)
    assert stub_base + go + 10 + disp == (layout.VCPU_AREA_GVA + layout.FRAME_PAGE_OFFSET
                                          + layout.FAST_FRAMES_OFFSET
                                          + layout.FAST_READ_FRAME * layout.FAST_FRAME_SIZE)
    assert rt.symbols["vcpu_stub_end"] - stub_base == go + 12


def test_vcpu_stub_dispatches_each_fast_syscall_to_its_block():
    """Each `cmp $nr, %rax; je` pair sends nr to block k of layout.FAST_SYSCALLS."""
    from kvmsentry.platform.kvm import Runtime
    rt = Runtime.load()
    stub_base = layout.VCPU_AREA_GVA + layout.VCPU_STUB_OFFSET
    code = rt.vcpu_stub
    out = rt.symbols["vcpu_syscall_out"] - stub_base
    targets = {}
    # First `test %rax,%rax; jz rel32` to the read block.
    assert code[0:5] == bytes.fromhex("4885c00f84")
    assert 9 + int.from_bytes(code[5:9], "little", signed=True) == out + 3 + 12 * len(layout.FAST_SYSCALLS)
    i = 9
    while i < out:
        if code[i:i + 3] == bytes.fromhex("4883f8"):  # cmp $imm8, %rax
            nr, i = code[i + 3], i + 4
        else:
            assert code[i:i + 2] == bytes.fromhex("483d")  # cmp $imm32, %rax
            nr, i = int.from_bytes(code[i + 2:i + 6], "little"), i + 6
        assert code[i] == 0x74  # je rel8
        targets[nr] = i + 2 + code[i + 1]
        i += 2
    assert targets == {nr: out + 3 + 12 * k for k, (_, nr) in enumerate(layout.FAST_SYSCALLS)}


def test_vdso_trampoline_marks_are_in_order():
    from kvmsentry.platform.vdso import Vdso

    class _Memory:
        def alloc_frame(self):
            return 0

        def write(self, gpa, data):
            pass

    vdso = Vdso(_Memory())
    marks = vdso.fast_return_marks
    assert 0 < marks["swapped"] < marks["flags"] < marks["sahf"] < marks["unswapped"] < marks["jump"]
    assert marks["jump"] < vdso.fast_return_size


def test_nothing_is_posted_before_vcpu_ring_post():
    """Context._interrupted hands a call kicked in [vcpu_ring_entry, vcpu_ring_post)
    to the exit path: no instruction there may touch the request page."""
    capstone = pytest.importorskip("capstone")
    from kvmsentry.platform.kvm import Runtime
    rt = Runtime.load()
    stub_base = layout.VCPU_AREA_GVA + layout.VCPU_STUB_OFFSET
    start, post, end = (rt.symbols[n] for n in ("vcpu_ring_entry", "vcpu_ring_post", "vcpu_ring_end"))
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    touches = []
    for insn in md.disasm(rt.vcpu_stub[start - stub_base:end - stub_base], start):
        for op in insn.operands:
            if op.type == capstone.x86.X86_OP_MEM and op.mem.base == capstone.x86.X86_REG_RIP:
                target = insn.address + insn.size + op.mem.disp
                if layout.RING_AREA_GVA <= target < layout.RING_AREA_GVA + 0x1000:
                    touches.append(insn.address)
    assert touches and min(touches) >= post


def test_ring_state_word_matches_layout():
    """runtime.S's state bits, sequence shift and scratch offsets are layout.py's."""
    defines = _defines()
    for name in ("RING_POSTED", "RING_CLAIMED", "RING_DONE", "RING_EXIT", "RING_WITHDRAWN",
                 "RING_SEQ_SHIFT", "RING_POST_OFFSET", "RING_SPIN_LEFT_OFFSET"):
        assert defines[name] == getattr(layout, name), name
    assert 1 << layout.RING_SEQ_SHIFT > layout.RING_FLAGS >= layout.RING_WITHDRAWN
    assert 0x08 + 7 * 8 <= layout.RING_POST_OFFSET < layout.RING_SPIN_LEFT_OFFSET  # after the call
