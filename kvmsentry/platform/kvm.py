"""The KVM platform: runs a task's ring-3 code in a vCPU until it traps.

One ``KvmPlatform`` owns the VM, its guest-physical memory and the ring-0
runtime (guest/runtime.S, shipped as runtime.elf). ``AddressSpace`` is one
page-table tree (one CR3); ``Context`` is one guest thread's vCPU.

The trap path (DESIGN.md): the program's ``syscall`` enters the runtime's
``syscall_entry``, which does ``out`` to SYSCALL_PORT; KVM_RUN returns
KVM_EXIT_IO and :meth:`Context.run` returns TRAP_SYSCALL with the user
registers in ``context.regs`` (the kvm_run sync-regs area: no
KVM_GET_REGS). To resume, the context writes the iret frame (user RIP,
CS, RFLAGS, RSP, SS) into this vCPU's frame page, points RSP at it and RIP
at ``iret_return`` (or ``flush_return`` when the address space dropped
mappings) and calls KVM_RUN again. CPU exceptions arrive the same way on
EXCEPTION_PORT_BASE + vector, with the CPU's frame on the IST stack.
"""

from __future__ import annotations

import os
import signal
import struct
import threading


from kvmsentry.loader.elf import sections_and_symbols
from kvmsentry.platform import layout
from kvmsentry.platform.vdso import Vdso
from kvmsentry.vm import x86
from kvmsentry.vm._kvm import ffi, lib
from kvmsentry.vm.kvm import ExitIo, Kvm, KvmUnavailable, Vm
from kvmsentry.vm.memory import GuestMemory
from kvmsentry.vm.paging import PageTable

TRAP_SYSCALL = 0
TRAP_FAULT = 1
# KVM_RUN returned without a trap: another thread kicked this vCPU (a
# signal for the task, a kill). The guest resumes where it was.
TRAP_INTERRUPT = 2
# The ring path (--syscall-path=ring) left through RING_WAIT_PORT: the call
# posted in the request page is the sentry's poller's (running, finished
# with an answer the task thread must deliver, or handed back); the user
# registers are as on TRAP_SYSCALL. See kvmsentry/kernel/ring.py.
TRAP_RING_WAIT = 3
# The ring path's request page from offset 8: number, six arguments, post word.
_RING_REQUEST = struct.Struct("<7QI")
_RING_SEQ_SHIFT = layout.RING_SEQ_SHIFT
# The host signal that kicks a vCPU thread out of KVM_RUN (its handler does
# nothing; the EINTR is the point).
KICK_SIGNAL = signal.SIGUSR2

_FRAME = struct.Struct("<5Q")  # rip, cs, rflags, rsp, ss
_EXCEPTION_FRAME = struct.Struct("<6Q")  # error_code, rip, cs, rflags, rsp, ss
_SYNC_REGS = lib.KVM_SYNC_X86_REGS
_SYNC_SREGS = lib.KVM_SYNC_X86_SREGS
_KERNEL_HALF = 0xFFFF_8000_0000_0000
_USER_CS = layout.USER_CS
_USER_DS = layout.USER_DS
_SYSCALL_PORT = layout.SYSCALL_PORT
_RING_WAIT_PORT = layout.RING_WAIT_PORT
_get_ident = threading.get_ident
# XCR0 features a Linux process may use without asking (x87, SSE, AVX,
# AVX-512 opmask/ZMM state); not MPX (3-4), PKRU (9) or AMX (17-18).
_XCR0_ALLOWED = 0xE7
# RFLAGS bits cleared on `syscall` entry (Linux: arch/x86/kernel/cpu/common.c).
_SYSCALL_MASK = (x86.X86_EFLAGS_TF | x86.X86_EFLAGS_DF | x86.X86_EFLAGS_IF
                 | x86.X86_EFLAGS_IOPL | x86.X86_EFLAGS_NT | x86.X86_EFLAGS_AC)
USER_RFLAGS_INIT = x86.X86_EFLAGS_IF | x86.X86_EFLAGS_FIXED
# RFLAGS bits a ring-3 program may change itself (popf): CF PF AF ZF SF TF
# DF OF AC ID. What the sentry takes from a register or memory the program
# controls is masked with this (plus IF and the fixed bit): never IOPL, NT, VM.
_USER_RFLAGS_MASK = 0x240DD5
# How long the ring path's guest spins for an answer before it exits (ns):
# about one exit's cost here (DESIGN.md), enough for the sentry to run a
# simple call, and what a call costs at worst beyond its exit when the
# poller has no core.
RING_GUEST_SPIN_NS = 30_000


# User-mode instruction-set extensions (CPUID leaf, subleaf, register, bits)
# that need nothing from a kernel or hypervisor but XSAVE state, which KVM
# saves for every feature in its supported XCR0 (CPUID 0xD). Bit names
# from arch/x86/include/asm/cpufeatures.h.
_USER_ISA = (
    # leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 FMA CX16 SSE4_1 SSE4_2 MOVBE POPCNT AES XSAVE AVX F16C RDRAND
    (1, 0, "ecx", (1 << 0 | 1 << 1 | 1 << 9 | 1 << 12 | 1 << 13 | 1 << 19 | 1 << 20 | 1 << 22
                   | 1 << 23 | 1 << 25 | 1 << 26 | 1 << 28 | 1 << 29 | 1 << 30)),
    # leaf 7 EBX: BMI1 AVX2 BMI2 ERMS AVX512F AVX512DQ RDSEED ADX AVX512IFMA CLFLUSHOPT CLWB
    #             AVX512CD SHA_NI AVX512BW AVX512VL
    (7, 0, "ebx", (1 << 3 | 1 << 5 | 1 << 8 | 1 << 9 | 1 << 16 | 1 << 17 | 1 << 18 | 1 << 19
                   | 1 << 21 | 1 << 23 | 1 << 24 | 1 << 28 | 1 << 29 | 1 << 30 | 1 << 31)),
    # leaf 7 ECX: AVX512VBMI AVX512_VBMI2 GFNI VAES VPCLMULQDQ AVX512_VNNI AVX512_BITALG AVX512_VPOPCNTDQ
    (7, 0, "ecx", (1 << 1 | 1 << 6 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12 | 1 << 14)),
    # leaf 7 EDX: FSRM
    (7, 0, "edx", 1 << 4),
    # leaf 7.1 EAX: AVX_VNNI AVX512_BF16
    (7, 1, "eax", 1 << 4 | 1 << 5),
    # leaf 0x80000001 ECX: ABM (LZCNT) PREFETCHW
    (0x8000_0001, 0, "ecx", 1 << 5 | 1 << 8),
)


def _pass_through_user_isa(cpuid) -> None:
    """Add the host's user-mode ISA extensions to ``cpuid`` (KVM_GET_SUPPORTED_CPUID).

    Guest ring 3 runs on the host CPU itself, so these instructions work
    whatever CPUID says; but libc picks its string and math routines from
    CPUID. Under PVM, KVM_GET_SUPPORTED_CPUID leaves out SSE3-SSE4.2, AVX,
    AVX2 and AVX-512 although the host has them (measured: leaf 1 ECX
    0x81202000 against the host's 0xfffa3203), and glibc would fall back to
    SSE2. On hardware KVM the supported set already has them. AVX and
    AVX-512 also need XCR0 (set from CPUID 0xD, see _supported_xcr0).
    """
    host = ffi.new("uint32_t[4]")
    registers = ("eax", "ebx", "ecx", "edx")
    for leaf, subleaf, register, mask in _USER_ISA:
        lib.kvmsentry_host_cpuid(leaf, subleaf, host)
        host_bits = host[registers.index(register)] & mask
        for i in range(cpuid.nent):
            entry = cpuid.entries[i]
            if entry.function == leaf and entry.index == subleaf:
                setattr(entry, register, getattr(entry, register) | host_bits)



def _noncanonical(address: int) -> bool:
    """Whether a 64-bit ``address`` is not canonical: bits 63..47 not all
    equal (Intel SDM vol. 1, 3.3.7.1); loading one into RIP is a #GP."""
    top = address >> 47
    return top != 0 and top != 0x1FFFF

class PlatformError(RuntimeError):
    """The VM did something the sentry cannot explain (a sentry bug or host failure)."""


class Fault:
    """A CPU exception taken in ring 3: vector, error code, CR2 (for #PF)."""

    __slots__ = ("vector", "error_code", "cr2")

    def __init__(self, vector: int, error_code: int, cr2: int = 0):
        self.vector = vector
        self.error_code = error_code
        self.cr2 = cr2

    def __eq__(self, other):
        if other.__class__ is not Fault:
            return NotImplemented
        return (self.vector, self.error_code, self.cr2) == (other.vector, other.error_code, other.cr2)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Fault(vector={self.vector}, error_code={self.error_code:#x}, cr2={self.cr2:#x})"


class Runtime:
    """The assembled ring-0 runtime: its text and the addresses of its labels.

    ``vcpu_stub`` is the per-vCPU syscall entry (section .vcpu_stub),
    linked in vCPU 0's slot.
    """

    __slots__ = ("text", "base", "symbols", "vcpu_stub")

    def __init__(self, text: bytes, base: int, symbols: dict[str, int], vcpu_stub: bytes = b""):
        self.text = text
        self.base = base
        self.symbols = symbols
        self.vcpu_stub = vcpu_stub

    @classmethod
    def load(cls) -> "Runtime":
        """Read runtime.elf (package data, built from guest/runtime.S)."""
        # A plain path: importlib.resources costs ~5 ms of imports at start-up.
        sections, symbols = sections_and_symbols(
            os.path.join(os.path.dirname(__file__), "runtime.elf"))
        base, text = sections[".text"]
        stub = sections.get(".vcpu_stub")
        if stub is None or stub[0] != layout.VCPU_AREA_GVA + layout.VCPU_STUB_OFFSET:
            raise PlatformError("runtime.elf has no .vcpu_stub section in vCPU 0's slot")
        return cls(text, base, symbols, stub[1])


class AddressSpace:
    """One user address space: a page-table tree sharing the kernel half.

    ``map_entry`` adds 4 KiB user pages; ``set_entry``/``unmap`` change or
    drop present ones, which the guest must then flush: the next
    :meth:`Context.run` in this address space returns to ring 3 through
    flush_return, which pokes every changed table page.
    """

    def __init__(self, platform: "KvmPlatform"):
        self.platform = platform
        self.page_table = PageTable(platform.memory, {layout.KERNEL_PML4_SLOT: platform.kernel_pdpt})
        self.cr3 = self.page_table.cr3
        # The contexts (vCPUs) running in this address space: after one of
        # them flushes, the others must too (a TLB shootdown).
        self.contexts: set = set()
        # Frames unmapped while other vCPUs may still reach them through a
        # cached translation, freed after a flush (defer_release).
        self._pending_release: list[int] = []
        # After destroy(): its table frames may be reused, so nothing walks it.
        self.destroyed = False

    def map(self, gva: int, gpa: int, *, writable: bool, executable: bool) -> None:
        self.page_table.map(gva, gpa, writable=writable, executable=executable, user=True)

    def map_entry(self, gva: int, entry: int) -> None:
        """Install a leaf entry where none was present (no flush needed)."""
        self.page_table.set_entry(gva, entry)

    def map_entries(self, entries: dict[int, int]) -> None:
        """Install many leaf entries {gva: entry} where none were present."""
        self.page_table.map_new(entries)

    def map_huge(self, gva: int, entry: int) -> None:
        """Install a 2 MiB leaf entry at ``gva`` where no 4 KiB page is present."""
        self.page_table.map_huge_user(gva, entry)

    def entry(self, gva: int) -> int:
        return self.page_table.entry(gva)

    def fork_into(self, child: "AddressSpace", keep: list[tuple[int, int]],
                  child_entries: dict[int, int] | None = None) -> None:
        """fork: copy every 4 KiB user entry into ``child``, write-protected here
        and there except in ``keep`` ranges, ``child_entries`` the child's
        own (PageTable.fork_into)."""
        self.page_table.fork_into(child.page_table, keep, child_entries)

    def leaves_with(self, bits: int, blocks=None) -> list[int]:
        """Page addresses whose leaf entry has ``bits`` (PageTable.leaves_with)."""
        return self.page_table.leaves_with(bits, blocks)

    def set_entry(self, gva: int, entry: int) -> None:
        """Replace a leaf entry (0 unmaps); the guest flushes before it runs again."""
        self.page_table.set_entry(gva, entry)

    def unmap(self, gva: int) -> None:
        self.page_table.set_entry(gva, 0)

    def set_entries(self, entries: dict[int, int]) -> None:
        """set_entry() each of {gva: entry} (one walk per page table)."""
        self.page_table.set_entries(entries)

    def unmap_pages(self, gvas) -> None:
        """unmap() each page address in ``gvas`` (one walk per page table)."""
        self.page_table.clear_entries(gvas)

    def defer_release(self, gpas: list[int]) -> bool:
        """Keep the references on frames just unmapped from this tree until a flush.

        Returns False when no other vCPU runs in this address space: the
        caller drops them now (the one vCPU, if any, is in the sentry and
        flushes before it runs). Otherwise the frames stay referenced until
        a vCPU's flush, written after the unmapping, has run
        (Context._confirm_zap): a thread running meanwhile could still reach
        them through a cached translation, and a frame reused by another
        process must not be (Linux frees pages after the TLB shootdown:
        mm/mmu_gather.c). Kernel lock held.
        """
        if len(self.contexts) <= 1:
            return False
        with self.platform._lock:
            self._pending_release.extend(gpas)
        return True

    def take_pending_release(self) -> list[int]:
        """The frames waiting for a flush (a vCPU about to flush takes them)."""
        with self.platform._lock:
            pending, self._pending_release = self._pending_release, []
        return pending

    def give_back_release(self, gpas: list[int]) -> None:
        """Frames a vCPU took but never flushed (it left): wait for another."""
        if self.destroyed:
            self.platform.memory.free_later(gpas)
            return
        with self.platform._lock:
            self._pending_release.extend(gpas)

    def mark_stale(self, gva: int, *, every_level: bool = False) -> None:
        """The MMU faulted on ``gva`` although its entry allows the access: flush it
        (``every_level``: each page-table page on the walk, see PageTable.mark_stale)."""
        self.page_table.mark_stale(gva, every_level=every_level)

    def destroy(self) -> None:
        """Drop the tree; its table frames are freed after a guest flush.

        No vCPU runs in it any more, so pending releases happen now.
        """
        self.destroyed = True
        self.platform.memory.put_frames(self.take_pending_release())
        self.platform.retire_tables(self.page_table.destroy())


class KvmPlatform:
    """The VM with ``memory_size`` bytes of guest-physical memory.

    Raises KvmUnavailable when /dev/kvm is unusable or lacks a capability
    we rely on (KVM_CAP_SYNC_REGS, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_XCRS).
    """

    def __init__(self, memory_size: int = 4 << 30):
        self.kvm = Kvm()
        self.kvm.require(lib.KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS")
        self.kvm.require(lib.KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT")
        self.kvm.require(lib.KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID")
        self.vm: Vm = self.kvm.create_vm()
        # Guest memory becomes KVM memory slots as the frame allocator
        # reaches it (_expose_memory), not all at start.
        self._slots = 0
        self._max_slots = max(1, self.kvm.check_extension(lib.KVM_CAP_NR_MEMSLOTS))
        self.memory = GuestMemory(memory_size, expose=self._expose_memory)
        self.cpuid = self.kvm.get_supported_cpuid()
        _pass_through_user_isa(self.cpuid)
        self.runtime = Runtime.load()
        # Serve the getpid family in the guest (runtime.S vcpu_syscall_entry);
        # the kernel turns it off for --strace, which must see every call.
        self.fast_syscalls = True
        # "exit": every other call exits (syscall_entry's `out`); "ring":
        # vcpu_ring_entry posts it to the request page for a polling host
        # thread first (kvmsentry/kernel/ring.py). Read at each Context.run.
        self.syscall_path = "exit"
        # The ring path's guest spin budget, in `pause` iterations: past it
        # the guest withdraws the call and exits. RING_GUEST_SPIN_NS worth,
        # from this CPU's cost of one iteration (pause takes ~10-140 cycles
        # depending on the CPU).
        self.ring_guest_spin = max(100, int(RING_GUEST_SPIN_NS / max(lib.kvmsentry_pause_ns(), 1.0)))
        self._lock = threading.Lock()
        self._free_vcpus: list = []
        self._nvcpus = 0
        # Table frames of destroyed trees: poked by the next flush, then freed.
        self._retired_tables: list[int] = []
        # The FPU/SSE/AVX state of a fresh vCPU (execve's starting state).
        self._initial_xsave: bytes | None = None
        if threading.current_thread() is threading.main_thread():
            signal.signal(KICK_SIGNAL, lambda signo, frame: None)
        self._build_kernel_half()
        self.vdso = Vdso(self.memory)

    # -- boot-time set-up -------------------------------------------------
    def _expose_memory(self, gpa: int, length: int) -> int:
        """Register guest-physical [gpa, gpa + length) as the next memory slot.

        Called by GuestMemory before it hands out a frame there (ranges
        ascending and contiguous, doubling). KVM allocates metadata per
        page of a slot (api.rst 4.35), so a slot for all of a 4 GiB guest
        at start costs ~4-9 ms that a small program never needed. Adding
        a slot while vCPUs run is allowed (slots are read under SRCU).
        The last slot KVM allows (KVM_CAP_NR_MEMSLOTS) takes the rest.
        Returns the length registered. Raises KvmError.
        """
        if self._slots >= self._max_slots - 1:
            length = self.memory.size - gpa
        self.vm.set_user_memory_region(self._slots, gpa, length, self.memory.hva + gpa)
        self._slots += 1
        return length

    def _build_kernel_half(self) -> None:
        """Map the runtime text and the IDT into a template tree (PML4 slot 511)."""
        template = PageTable(self.memory)
        self._kernel_template = template
        rt = self.runtime
        if rt.base != layout.KERNEL_TEXT_GVA:
            raise PlatformError(f"runtime.elf is linked at {rt.base:#x}, not {layout.KERNEL_TEXT_GVA:#x}")
        for offset in range(0, len(rt.text), x86.PAGE_SIZE):
            gpa = self.memory.alloc_frame()
            self.memory.write(gpa, rt.text[offset:offset + x86.PAGE_SIZE])
            template.map(rt.base + offset, gpa, writable=False, executable=True, user=True)
        idt_gpa = self.memory.alloc_frame()
        stubs = rt.symbols["exception_stubs"]
        for vector in range(layout.NUM_EXCEPTION_VECTORS):
            # int3 and into are allowed from ring 3 (Linux: DPL 3 gates).
            dpl = 3 if vector in (x86.X86_TRAP_BP, x86.X86_TRAP_OF) else 0
            gate = x86.interrupt_gate(stubs + 16 * vector, layout.KERNEL_CS, dpl=dpl, ist=1)
            self.memory.write(idt_gpa + 16 * vector, gate)
        ud_gate = x86.interrupt_gate(rt.symbols["ud_entry"], layout.KERNEL_CS, dpl=0, ist=1)
        self.memory.write(idt_gpa + 16 * x86.X86_TRAP_UD, ud_gate)
        template.map(layout.IDT_GVA, idt_gpa, writable=False, executable=False, user=False)
        # One frame holds the per-vCPU syscall entry; every slot maps it.
        self._vcpu_stub_gpa = self.memory.alloc_frame()
        self.memory.write(self._vcpu_stub_gpa, rt.vcpu_stub)
        # The physmap: flush_handler reaches page-table pages through it.
        template.map_huge_range(layout.PHYSMAP_GVA, 0, self.memory.size - self.memory.size % x86.HUGE_PAGE_SIZE,
                                writable=True, user=False)
        pml4_entry = struct.unpack_from("<Q", self.memory.view, template.cr3 + layout.KERNEL_PML4_SLOT * 8)[0]
        self.kernel_pdpt = pml4_entry & x86.PTE_ADDR_MASK
        self._xcr0 = self._supported_xcr0()
        self._cr4 = x86.CR4_PAE | x86.CR4_OSFXSR | x86.CR4_OSXMMEXCPT
        if self._cpuid_leaf(1, 0)[2] & x86.CPUID_1_ECX_XSAVE:
            self._cr4 |= x86.CR4_OSXSAVE
        if self._cpuid_leaf(7, 0)[1] & x86.CPUID_7_EBX_FSGSBASE:
            self._cr4 |= x86.CR4_FSGSBASE

    def _cpuid_leaf(self, function: int, index: int) -> tuple[int, int, int, int]:
        for i in range(self.cpuid.nent):
            e = self.cpuid.entries[i]
            if e.function == function and e.index == index:
                return e.eax, e.ebx, e.ecx, e.edx
        return 0, 0, 0, 0

    def _supported_xcr0(self) -> int:
        eax, _, _, edx = self._cpuid_leaf(0xD, 0)
        return ((edx << 32) | eax) & _XCR0_ALLOWED | x86.XFEATURE_MASK_FP | x86.XFEATURE_MASK_SSE

    def _map_vcpu_pages(self, index: int) -> tuple[int, int, int, list[int]]:
        """Allocate and map vCPU ``index``'s GDT/TSS, frame, IST and zap-list pages.

        Returns the GPAs of the GDT page and the frame page, the GVA base
        of its slot and the GPAs of the zap-list pages. (The ring path's
        request page is not in the shared kernel half: each Context maps
        its own into its address space, see Context._bind_ring_page.)
        """
        base = layout.vcpu_base(index)
        gdt_gpa = self.memory.alloc_frame()
        frame_gpa = self.memory.alloc_frame()
        t = self._kernel_template
        t.map(base + layout.GDT_OFFSET, gdt_gpa, writable=True, executable=False, user=False)
        t.map(base + layout.FRAME_PAGE_OFFSET, frame_gpa, writable=False, executable=False, user=True)
        t.map(base + layout.VCPU_STUB_OFFSET, self._vcpu_stub_gpa, writable=False, executable=True, user=True)
        for page in range(layout.IST_STACK_PAGES):
            t.map(base + layout.IST_STACK_OFFSET + page * x86.PAGE_SIZE, self.memory.alloc_frame(),
                  writable=True, executable=False, user=False)
        gdt = bytearray(layout.GDT_ENTRIES * 8)
        descriptors = {
            layout.GDT_ENTRY_KERNEL_CS: x86.segment_descriptor(code=True, dpl=0, long_mode=True),
            layout.GDT_ENTRY_KERNEL_DS: x86.segment_descriptor(code=False, dpl=0, long_mode=False),
            layout.GDT_ENTRY_DEFAULT_USER32_CS: x86.segment_descriptor(code=True, dpl=3, long_mode=False),
            layout.GDT_ENTRY_DEFAULT_USER_DS: x86.segment_descriptor(code=False, dpl=3, long_mode=False),
            layout.GDT_ENTRY_DEFAULT_USER_CS: x86.segment_descriptor(code=True, dpl=3, long_mode=True),
        }
        for entry, value in descriptors.items():
            struct.pack_into("<Q", gdt, entry * 8, value)
        zap_gpas = []
        for page in range(layout.ZAP_LIST_PAGES):
            gpa = self.memory.alloc_frame()
            zap_gpas.append(gpa)
            t.map(base + layout.ZAP_LIST_OFFSET + page * x86.PAGE_SIZE, gpa,
                  writable=False, executable=False, user=False)
        ist_top = base + layout.IST_TOP_OFFSET
        tss = x86.tss64(rsp0=ist_top, ist={1: ist_top}, io_ports=layout.RUNTIME_PORTS)
        self._tss_limit = len(tss) - 1
        tss_gva = base + layout.GDT_TSS_OFFSET
        gdt[layout.GDT_ENTRY_TSS * 8:layout.GDT_ENTRY_TSS * 8 + 16] = x86.tss_descriptor(tss_gva, self._tss_limit)
        self.memory.write(gdt_gpa, gdt)
        self.memory.write(gdt_gpa + layout.GDT_TSS_OFFSET, tss)
        return gdt_gpa, frame_gpa, base, zap_gpas

    # -- public -----------------------------------------------------------
    def new_address_space(self) -> AddressSpace:
        return AddressSpace(self)

    def new_context(self, address_space: AddressSpace) -> "Context":
        """A vCPU (new or recycled: KVM cannot destroy one) running in ``address_space``."""
        with self._lock:
            if self._free_vcpus:
                vcpu, pages = self._free_vcpus.pop()
            else:
                index = self._nvcpus
                if index >= layout.MAX_VCPUS:
                    raise PlatformError("out of vCPUs")
                self._nvcpus += 1
                pages = self._map_vcpu_pages(index)
                vcpu = self.vm.create_vcpu(index)
                vcpu.set_cpuid2(self.cpuid)
                if self._initial_xsave is None:
                    self._initial_xsave = vcpu.get_xsave()
                if not self.vdso.calibrated:
                    self.vdso.calibrate(vcpu)
        context = Context(self, vcpu, pages, address_space)
        address_space.contexts.add(context)
        return context

    def release_context(self, context: "Context") -> None:
        context.address_space.contexts.discard(context)
        with self._lock:
            self._free_vcpus.append((context.vcpu, context.pages))

    def retire_tables(self, table_gpas: list[int]) -> None:
        """Free these table frames after the next guest flush pokes them."""
        with self._lock:
            self._retired_tables.extend(table_gpas)

    def close(self) -> None:
        for vcpu, _ in self._free_vcpus:
            vcpu.close()
        self.vm.close()
        self.kvm.close()


class Context:
    """One guest thread's registers and vCPU.

    ``regs`` is the kvm_run sync-regs ``struct kvm_regs``: while the
    thread is stopped in a trap, its general registers are there (rax
    holds the syscall number on TRAP_SYSCALL). The user-mode RIP, RSP and
    RFLAGS are ``user_rip``, ``user_rsp``, ``user_rflags`` (for a syscall
    the CPU put RIP in rcx and RFLAGS in r11; for a fault they come from
    the exception frame). Change any of them before :meth:`run` resumes.
    """

    def __init__(self, platform: KvmPlatform, vcpu, pages, address_space: AddressSpace):
        self.platform = platform
        self.vcpu = vcpu
        self.pages = pages
        gdt_gpa, frame_gpa, base, zap_gpas = pages
        self.address_space = address_space
        # The ring path's request page: this vCPU's own frame, mapped only in
        # the address space it runs (layout.RING_AREA_GVA), and only with
        # --syscall-path=ring; ring_state is its state word, for the
        # poller's C spin (no GIL).
        self._request_gva = base - layout.VCPU_AREA_GVA + layout.RING_AREA_GVA
        self._request_gpa = None
        self.ring_state = ffi.new("uint32_t *")
        if platform.syscall_path == "ring":
            self._bind_ring_page()
        self.ring_stop = ffi.new("uint32_t *")
        self.ring_spun_ns = ffi.new("uint64_t *")  # CPU ns of ring_poll's spins (--profile)
        self._ring_frame_gpa = frame_gpa + layout.FAST_FRAMES_OFFSET + len(layout.FAST_SYSCALLS) * layout.FAST_FRAME_SIZE
        # The ring frame's RSP: the answer (kvmsentry_ring_answer writes it).
        self._ring_answer_slot = ffi.cast("uint64_t *", platform.memory.hva + self._ring_frame_gpa + 24)
        struct.pack_into("<Q", platform.memory.view, frame_gpa + layout.RING_SPIN_OFFSET,
                         max(1, platform.ring_guest_spin))
        self._zap_gpas = zap_gpas
        self._view = platform.memory.view
        self._frame_gpa = frame_gpa + layout.FRAME_OFFSET
        self._frame_gva = base + layout.FRAME_PAGE_OFFSET + layout.FRAME_OFFSET
        self._exception_frame_gpa = None  # found through the page table on first use
        self._ist_frame_gva = base + layout.EXCEPTION_FRAME_OFFSET
        self._iret_return = platform.runtime.symbols["iret_return"]
        # RIP after the `out` in syscall_entry (2 bytes: e6 10), and in
        # this vCPU's copy of vcpu_syscall_entry.
        symbols = platform.runtime.symbols
        self._syscall_return_rip = symbols["syscall_entry"] + 2
        slot_shift = base - layout.VCPU_AREA_GVA
        self._vcpu_entry = symbols["vcpu_syscall_entry"] + slot_shift
        self._vcpu_syscall_out = symbols["vcpu_syscall_out"] + slot_shift
        self._vcpu_syscall_return_rip = self._vcpu_syscall_out + 2
        self._vcpu_stub_end = symbols["vcpu_stub_end"] + slot_shift
        self._ring_entry = symbols["vcpu_ring_entry"] + slot_shift
        self._ring_post = symbols["vcpu_ring_post"] + slot_shift
        self._ring_wait_return_rip = symbols["vcpu_ring_wait_out"] + slot_shift + 2
        self._ring_syscall_return_rip = symbols["vcpu_ring_syscall_out"] + slot_shift + 2
        self._plain_entry = symbols["syscall_entry"]
        self._lstar = 0  # LSTAR as last loaded into the vCPU
        # The exit-free frames (set_fast_ids) and the vDSO trampoline they
        # return to; 0 until the kernel supplies them.
        self._fast_frames_gpa = frame_gpa + layout.FAST_FRAMES_OFFSET
        self._fast_return = 0
        self._fast_ids: tuple | None = None
        # The exit-free read(2) (set_fast_read): the read frame, the vDSO's
        # __kvmsentry_fast_read (0: off), the process's fast-read page.
        self._fast_read_frame_gpa = frame_gpa + layout.FAST_FRAMES_OFFSET + layout.FAST_READ_FRAME * layout.FAST_FRAME_SIZE
        self._fast_read_mask_gpa = frame_gpa + layout.FAST_READ_MASK_OFFSET
        self._vcpu_fast_read = symbols["vcpu_fast_read"] + slot_shift
        self._vcpu_fast_read_go = symbols["vcpu_fast_read_go"] + slot_shift
        self._fast_read = 0
        self._fast_read_end = 0
        self._fast_read_out_rip = -1
        self._fast_read_page_gpa = 0
        self.fast_read_rollbacks = 0
        # With syscall_path "ring": whether this vCPU uses it now (--syscall-path=auto
        # turns it off while the poller cannot keep up; kvmsentry/kernel/ring.py).
        self.ring_enabled = True
        self._flush_return = platform.runtime.symbols["flush_return"]
        self.regs = vcpu.regs
        self._sync_sregs = vcpu.sync.sregs  # current after every exit (reset: kvm_valid_regs)
        self._run_struct = vcpu.run_struct
        self._dirty_tables = address_space.page_table.dirty_tables
        self._retired_tables = platform._retired_tables
        self.user_rip = 0
        self.user_rsp = 0
        self.user_rflags = USER_RFLAGS_INIT
        self.fault: Fault | None = None
        self._started = False
        # After TRAP_INTERRUPT: resume the vCPU exactly where it stopped,
        # unless the kernel changes the user state (set_user_state).
        self._resume_as_is = False
        self._thread_id: int | None = None
        self.in_runtime = False
        # Another vCPU of this address space flushed: flush before running on.
        self._tlb_stale = False
        # What the zap list last written holds, until the guest has certainly
        # run flush_handler over it (_confirm_zap): this address space's
        # dirty tables {page: generation} (settled then), retired table
        # frames and frames of AddressSpace.defer_release (freed then).
        self._zap_snapshot: dict[int, int] = {}
        self._zap_retired: list[int] = []
        self._zap_released: list[int] = []
        self._zap_unconfirmed = False
        # The newest dirty-table generation this vCPU has flushed: newer
        # ones are news the other vCPUs of the address space must hear.
        self._zap_seen_generation = 0
        self._base = base
        self._gdt_gpa = gdt_gpa
        self.exits = 0

    def reset(self, rip: int, rsp: int) -> None:
        """Put the thread at ring-3 ``rip`` with stack ``rsp``, all else zero.

        Loads segments, control registers, MSRs, XCR0 and CPUID (execve's
        state, arch/x86/kernel/process_64.c start_thread).
        """
        p = self.platform
        vcpu = self.vcpu
        sregs = vcpu.get_sregs()
        sregs.cr0 = x86.CR0_PE | x86.CR0_MP | x86.CR0_ET | x86.CR0_NE | x86.CR0_WP | x86.CR0_AM | x86.CR0_PG
        sregs.cr3 = self.address_space.cr3
        sregs.cr4 = p._cr4
        sregs.efer = x86.EFER_SCE | x86.EFER_LME | x86.EFER_LMA | x86.EFER_NX
        sregs.gdt.base = self._base + layout.GDT_OFFSET
        sregs.gdt.limit = layout.GDT_ENTRIES * 8 - 1
        sregs.idt.base = layout.IDT_GVA
        sregs.idt.limit = layout.NUM_EXCEPTION_VECTORS * 16 - 1
        _set_segment(sregs.cs, layout.USER_CS, code=True)
        for seg in (sregs.ds, sregs.es, sregs.ss, sregs.fs, sregs.gs):
            _set_segment(seg, layout.USER_DS, code=False)
        tr = sregs.tr
        tr.base = self._base + layout.GDT_TSS_OFFSET
        tr.limit = p._tss_limit
        tr.selector = layout.TSS_SELECTOR
        tr.type = 11
        tr.present = 1
        tr.dpl = tr.db = tr.s = tr.l = tr.g = tr.avl = 0
        tr.unusable = 0
        sregs.ldt.unusable = 1
        vcpu.set_sregs(sregs)
        vcpu.set_msrs({
            x86.MSR_STAR: layout.USER32_CS << 48 | layout.KERNEL_CS << 32,
            x86.MSR_LSTAR: self._wanted_lstar(),
            x86.MSR_CSTAR: p.runtime.symbols["syscall_entry"],
            x86.MSR_SYSCALL_MASK: _SYSCALL_MASK,
            x86.MSR_KERNEL_GS_BASE: 0,
        })
        self._lstar = self._wanted_lstar()
        if p._cr4 & x86.CR4_OSXSAVE:
            vcpu.set_xcrs({0: p._xcr0})
        if p._initial_xsave is not None:
            vcpu.set_xsave(p._initial_xsave)
        regs = self.regs
        for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9",
                     "r10", "r11", "r12", "r13", "r14", "r15"):
            setattr(regs, name, 0)
        self.user_rip = rip
        self.user_rsp = rsp
        self.user_rflags = USER_RFLAGS_INIT
        regs.rip = rip
        regs.rsp = rsp
        regs.rflags = USER_RFLAGS_INIT
        vcpu.run_struct.kvm_dirty_regs = _SYNC_REGS
        # Exits also copy out the special registers (kvm_run's s.regs.sregs):
        # a page fault reads CR2 there instead of a KVM_GET_SREGS ioctl
        # (~9 µs each here; the copy costs no measurable time per exit).
        vcpu.run_struct.kvm_valid_regs = _SYNC_REGS | _SYNC_SREGS
        self.set_fast_read(0)  # a new program: the kernel serves its reads anew
        self._started = False
        self._resume_as_is = False

    def set_fs_base(self, value: int) -> None:
        """Set FS.base (arch_prctl ARCH_SET_FS) through MSR_FS_BASE."""
        self.vcpu.set_msrs({x86.MSR_FS_BASE: value})

    def fs_base(self) -> int:
        return self.vcpu.get_msrs([x86.MSR_FS_BASE])[x86.MSR_FS_BASE]

    def set_gs_base(self, value: int) -> None:
        """Set GS.base (arch_prctl ARCH_SET_GS) through MSR_GS_BASE."""
        self.vcpu.set_msrs({x86.MSR_GS_BASE: value})

    def gs_base(self) -> int:
        return self.vcpu.get_msrs([x86.MSR_GS_BASE])[x86.MSR_GS_BASE]

    def run(self) -> int:
        """Resume ring 3 until the next trap: TRAP_SYSCALL or TRAP_FAULT.

        On TRAP_FAULT ``self.fault`` describes the exception. Raises
        PlatformError for an exit the runtime never makes (a sentry bug or
        a fault in ring 0).
        """
        regs = self.regs
        self._thread_id = _get_ident()
        if self._resume_as_is and self._tlb_stale and not self.in_runtime:
            self._resume_as_is = False  # interrupted in ring 3: return through the flush
        if self._resume_as_is:
            self._resume_as_is = False
        elif self._started:
            rip = self.user_rip
            if _noncanonical(rip):
                raise PlatformError(f"return to non-canonical RIP {rip:#x}")
            _FRAME.pack_into(self._view, self._frame_gpa, rip, _USER_CS,
                             self.user_rflags, self.user_rsp, _USER_DS)
            regs.rsp = self._frame_gva
            if (self._dirty_tables or self._retired_tables or self._tlb_stale or self._zap_unconfirmed
                    or self.address_space._pending_release):
                self._write_zap_list()
                regs.rip = self._flush_return
            else:
                regs.rip = self._iret_return
            self._run_struct.kvm_dirty_regs = _SYNC_REGS
        self._started = True
        lstar = self._wanted_lstar()
        if self._lstar != lstar:
            self._lstar = lstar
            self.vcpu.set_msrs({x86.MSR_LSTAR: lstar})
        vcpu_run = self.vcpu.run
        while True:
            exit_ = vcpu_run()
            self.exits += 1
            if exit_.__class__ is ExitIo:
                if self._zap_unconfirmed:
                    # An `out` comes from ring 3 or a stub it entered, so
                    # flush_handler has run and returned to ring 3.
                    self._confirm_zap()
                port = exit_.port
                if port == _SYSCALL_PORT:
                    rip = regs.rip
                    rcx = regs.rcx
                    # Ring 3 can reach these `out`s with registers of its own
                    # (the stub pages are U=1; the fast-read trampoline restores
                    # RCX/R11 from the process's page): a non-canonical return
                    # address is the #GP it would be, and only flags a program
                    # may set with popf are taken (never IOPL).
                    if ((rip != self._vcpu_syscall_return_rip and rip != self._syscall_return_rip
                            and rip != self._ring_syscall_return_rip and rip != self._fast_read_out_rip)
                            or _noncanonical(rcx)):
                        return self._forged_exit()
                    self.user_rip = rcx
                    self.user_rflags = regs.r11 & _USER_RFLAGS_MASK | USER_RFLAGS_INIT
                    self.user_rsp = regs.rsp
                    return TRAP_SYSCALL
                if port == _RING_WAIT_PORT:
                    rcx = regs.rcx
                    if regs.rip != self._ring_wait_return_rip or _noncanonical(rcx):
                        return self._forged_exit()
                    self.user_rip = rcx
                    self.user_rflags = regs.r11 & _USER_RFLAGS_MASK | USER_RFLAGS_INIT
                    self.user_rsp = regs.rsp
                    return TRAP_RING_WAIT
                vector = port - layout.EXCEPTION_PORT_BASE
                if 0 <= vector < layout.NUM_EXCEPTION_VECTORS:
                    return self._exception(vector)
                raise PlatformError(f"unexpected KVM_EXIT_IO on port {port:#x}")
            if exit_.reason == lib.KVM_EXIT_INTR:
                return self._interrupted()
            raise PlatformError(f"unexpected exit: {exit_.detail}")

    def _write_zap_list(self) -> None:
        """Fill this vCPU's zap list with the table pages flush_handler must poke.

        That is every unsettled dirty table of the address space (see
        kvmsentry/vm/paging.py: records stay until a flush has run) and the
        retired table frames this vCPU takes. Frames are freed only after
        the poke (_confirm_zap): flush_handler's `lock orq $0` rewrites 8 bytes
        of each page, so a frame freed earlier and reused (by another thread
        filling a page-cache page, say) would get them back as they were.
        """
        platform = self.platform
        address_space = self.address_space
        # vCPUs flush without the kernel lock: exactly one takes each
        # retired table (two would free its frame twice).
        with platform._lock:
            retired = platform._retired_tables[:]
            platform._retired_tables.clear()
        released = address_space.take_pending_release()
        snapshot = address_space.page_table.dirty_snapshot()
        self._zap_snapshot = snapshot
        self._zap_retired.extend(retired)
        self._zap_released.extend(released)
        pages = list(snapshot) + self._zap_retired
        if len(pages) > layout.ZAP_LIST_CAPACITY:
            raise PlatformError(f"{len(pages)} page-table pages to flush at once "
                                f"(the zap list holds {layout.ZAP_LIST_CAPACITY})")
        words = [len(pages)] + [layout.PHYSMAP_GVA + gpa + 4 for gpa in pages]
        data = struct.pack(f"<{len(words)}Q", *words)
        view = self._view
        for i, gpa in enumerate(self._zap_gpas):
            chunk = data[i * x86.PAGE_SIZE:(i + 1) * x86.PAGE_SIZE]
            if not chunk:
                break
            view[gpa:gpa + len(chunk)] = chunk
        self._zap_unconfirmed = True
        self._tlb_stale = False
        newest = max(snapshot.values(), default=0)
        if newest > self._zap_seen_generation:
            # Tell the others only of changes new to this vCPU: telling again
            # would let two vCPUs that interrupt each other before their
            # flushes run do so forever. A snapshot of the set: other threads
            # add and remove contexts (clone, exit, exec) without the kernel lock.
            self._zap_seen_generation = max(newest, self._zap_seen_generation)
            for other in tuple(address_space.contexts):
                if other is not self:
                    other._tlb_stale = True
                    other.kick()

    def _confirm_zap(self) -> None:
        """The guest ran flush_handler over the zap list: settle its tables, free its frames."""
        if self._zap_snapshot:
            self.address_space.page_table.settle(self._zap_snapshot)
            self._zap_snapshot = {}
        if self._zap_retired or self._zap_released:
            # No kernel lock here: GuestMemory frees them at its next allocation.
            self.platform.memory.free_later(self._zap_retired + self._zap_released)
            self._zap_retired = []
            self._zap_released = []
        self._zap_unconfirmed = False

    def _abandon_zap(self) -> None:
        """Leave this address space (execve) or the vCPU (exit) with a zap list
        the guest may not have run: what it would have freed waits for others
        (its dirty tables stay recorded until some flush settles them)."""
        if not self._zap_unconfirmed:
            return
        self._zap_snapshot = {}
        if self._zap_retired:
            self.platform.retire_tables(self._zap_retired)
            self._zap_retired = []
        if self._zap_released:
            self.address_space.give_back_release(self._zap_released)
            self._zap_released = []
        self._zap_unconfirmed = False

    def _exception(self, vector: int) -> int:
        if self._exception_frame_gpa is None:
            self._exception_frame_gpa = self.address_space.page_table.translate(self._ist_frame_gva)
        error_code, rip, cs, rflags, rsp, ss = _EXCEPTION_FRAME.unpack_from(self._view, self._exception_frame_gpa)
        # Clear the frame's CS so that a ring-3 `out` to an exception port
        # (allowed by the TSS bitmap, see layout.RUNTIME_PORTS) finds no frame.
        struct.pack_into("<Q", self._view, self._exception_frame_gpa + 16, 0)
        if cs == 0:
            return self._forged_exit()
        if self._fast_return <= rip < self._fast_return + self.platform.vdso.fast_return_size:
            # A fault inside the trampoline (say its vDSO page is gone):
            # finish the call here and resume at the caller.
            self.regs.rsp = rsp
            self.regs.rip = rip
            self._finish_fast_return()
            return TRAP_INTERRUPT
        if cs & 3 != 3:
            raise PlatformError(
                f"CPU exception {x86.TRAP_NAMES.get(vector, vector)} in ring 0 at {rip:#x} "
                f"(error code {error_code:#x}): a fault inside the runtime")
        cr2 = self._sync_sregs.cr2 if vector == x86.X86_TRAP_PF else 0
        self.user_rip = rip
        self.user_rsp = rsp
        self.user_rflags = rflags
        # The IST stack pointer is in regs.rsp now; keep the user's value visible.
        self.regs.rsp = rsp
        self.fault = Fault(vector, error_code, cr2)
        return TRAP_FAULT

    def _interrupted(self) -> int:
        """KVM_RUN returned EINTR: note where the guest is, to resume it as is."""
        self._resume_as_is = True
        rip = self.regs.rip
        if (rip == self._iret_return or rip == self._flush_return) and not self._event_in_flight():
            # Kicked before the return to ring 3 that run() aimed at began
            # (immediate_exit set between run()'s frame and KVM_RUN): the
            # user state is still user_rip/rsp/rflags, which run() packed.
            # Returned as from ring 3, so that a pending signal is delivered
            # and a flush made now, not at the program's next trap, which a
            # loop without system calls never makes. (Found on branch pipe2.)
            self._resume_as_is = False
            self.in_runtime = False
            return TRAP_INTERRUPT
        if self._vcpu_entry <= rip < self._vcpu_stub_end:
            return self._interrupted_in_stub(rip)
        if self._ring_entry <= rip < self._ring_post:
            # In the ring entry's FAST_DISPATCH: as in vcpu_syscall_entry's,
            # the call goes to the exit path, so that a pending signal is
            # delivered (resumed as is, a loop of exit-free calls would be
            # kicked back into the stub again and again: fast_ids under a
            # 1 ms ITIMER_REAL took seconds per tick). ring_fast_read (the
            # fd test before the trampoline) is in this range too.
            return self._interrupted_in_stub(self._vcpu_entry)
        self.in_runtime = _KERNEL_HALF <= rip
        if not self.in_runtime:
            if self._fast_return <= rip < self._fast_return + self.platform.vdso.fast_return_size:
                self._finish_fast_return()
                return TRAP_INTERRUPT
            if self._fast_read <= rip < self._fast_read_end:
                if not self._event_in_flight():
                    return self.fast_read_unwind(rip)
                # An exception in flight, as below: resumed as is it traps
                # at once, and the fault path unwinds the trampoline.
                self.in_runtime = True
                return TRAP_INTERRUPT
            if self._event_in_flight():
                # KVM stopped while delivering an exception (a page fault of
                # this RIP, say): the frame it will push names the RIP that
                # KVM_RUN resumes at, so neither a flush nor a signal may move
                # it. Treat it as inside the runtime: resumed as is, it traps
                # at once. (Moving it sent such a #PF's frame to flush_return,
                # which then became the "user" RIP and looped there.)
                self.in_runtime = True
                return TRAP_INTERRUPT
            # Stopped in ring 3: its registers are the user state.
            self.user_rip = rip
            self.user_rsp = self.regs.rsp
            self.user_rflags = self.regs.rflags
        return TRAP_INTERRUPT

    def _event_in_flight(self) -> bool:
        """Whether KVM holds an exception or interrupt it has begun to deliver
        (KVM_GET_VCPU_EVENTS, api.rst 4.31)."""
        events = self.vcpu.get_vcpu_events()
        return bool(events.exception.injected or events.exception.pending
                    or events.interrupt.injected or events.nmi.injected)

    def _finish_fast_return(self) -> None:
        """Complete the vDSO's __kvmsentry_fast_return for a vCPU stopped inside it.

        Signal delivery needs the user state of the call's caller, and the
        trampoline holds it in registers whose roles change instruction by
        instruction (guest/vdso.c): find the answer, the user RSP and
        RFLAGS by RIP, and resume at RCX as if the syscall had returned.
        """
        regs = self.regs
        marks = self.platform.vdso.fast_return_marks
        at = regs.rip - self._fast_return
        if at < marks["swapped"]:
            answer, user_rsp, flags = regs.rsp, regs.rax, regs.r11
        elif at < marks["flags"]:
            answer, user_rsp, flags = regs.rax, regs.rsp, regs.r11
        elif at < marks["jump"]:
            answer, user_rsp, flags = regs.r11, regs.rsp, regs.rax
            if marks["sahf"] <= at < marks["unswapped"]:
                flags = flags & ~0xFFFF | (flags & 0xFF) << 8 | (flags >> 8) & 0xFF
        else:
            answer, user_rsp, flags = regs.rax, regs.rsp, regs.r11
        flags = flags & _USER_RFLAGS_MASK | USER_RFLAGS_INIT  # a register the program controls
        regs.rax = answer
        regs.r11 = flags
        regs.rsp = user_rsp
        self.user_rip = regs.rcx
        self.user_rsp = user_rsp
        self.user_rflags = flags
        self.in_runtime = False
        self._resume_as_is = False
        self._run_struct.kvm_dirty_regs = _SYNC_REGS

    # -- the ring path (kvmsentry/kernel/ring.py drives these) --------------
    def _bind_ring_page(self) -> None:
        """Map a fresh zeroed request page for this vCPU into its address space only.

        A process can then post calls only on the vCPUs of its own threads
        (layout.RING_AREA_GVA). A fresh frame for each vCPU's life: the
        frame of an earlier life may still be cached by a vCPU of the
        address space it was in until that vCPU flushes.
        """
        memory = self.platform.memory
        gpa = memory.alloc_frame()
        self._request_gpa = gpa
        self.ring_state = ffi.cast("uint32_t *", memory.hva + gpa)
        self.address_space.map(self._request_gva, gpa, writable=True, executable=False)

    def _move_ring_page(self, address_space: "AddressSpace") -> None:
        """execve: the request page leaves the old address space for ``address_space``.

        Zeroed, so nothing posted before the exec is taken after it. The
        frame stays: execve left no other thread in the old address space
        (a vfork parent waits in the sentry and flushes before it runs).
        """
        if self._request_gpa is None:
            return
        if not self.address_space.destroyed:  # execve dropped the old mm first
            self.address_space.unmap(self._request_gva)
        self._view[self._request_gpa:self._request_gpa + x86.PAGE_SIZE] = bytes(x86.PAGE_SIZE)
        address_space.map(self._request_gva, self._request_gpa, writable=True, executable=False)

    def _unbind_ring_page(self) -> None:
        """The thread exited: unmap its request page and give the frame back.

        The address space's other vCPUs may cache the entry: they flush
        before they run on (kicked now), and the frame is freed only after
        such a flush (AddressSpace.defer_release, as munmap's frames), or,
        with no other vCPU there, like a retired page table. A poller that
        outlived its task (KvmPlatform never waits for it forever) writes a
        host word instead.
        """
        gpa = self._request_gpa
        if gpa is None:
            return
        address_space = self.address_space
        deferred = False
        if not address_space.destroyed:
            address_space.unmap(self._request_gva)
            for other in tuple(address_space.contexts):
                if other is not self:
                    other._tlb_stale = True
                    other.kick()
            deferred = address_space.defer_release([gpa])
        if not deferred:
            self.platform.retire_tables([gpa])
        self.ring_state = ffi.new("uint32_t *")
        self._request_gpa = None

    def ring_request(self, claimed: int) -> tuple[int, tuple[int, ...]] | None:
        """The call claimed as ``claimed``: (number, six arguments), as the guest posted them.

        None when the guest's post word (layout.RING_POST_OFFSET, written
        before the arguments) carries another sequence number than the
        claimed state word (written after them): a post made outside the
        stub, or one whose arguments may belong to another call. The
        caller hands such a call back unrun (the task thread runs it from
        the registers, if it was a real call).
        """
        gpa = self._request_gpa
        if gpa is None:  # the thread has exited (release): nothing to take
            return None
        words = _RING_REQUEST.unpack_from(self._view, gpa + 8)
        if words[7] >> _RING_SEQ_SHIFT != claimed >> _RING_SEQ_SHIFT:
            return None
        return words[0], words[1:7]

    def ring_answer(self, claimed: int, result: int) -> bool:
        """Let the spinning guest return ``result`` to ring 3 (adds RING_DONE to ``claimed``).

        The answer travels as the RSP of the ring frame (runtime.S
        ring_done, then the vDSO trampoline), so it must be a canonical
        address: False (nothing written) when it is not; the caller then
        answers with :meth:`ring_exit`. The state word changes only if it
        still holds this claim (kvmsentry_ring_answer), so the answer can
        reach no other call than the one claimed; True either way.
        """
        return lib.kvmsentry_ring_answer(self.ring_state, claimed, self._ring_answer_slot,
                                         result & 0xFFFF_FFFF_FFFF_FFFF) >= 0

    def ring_exit(self, claimed: int) -> None:
        """Make the spinning guest exit on RING_WAIT_PORT (adds RING_EXIT to ``claimed``, if still there)."""
        lib.kvmsentry_ring_finish(self.ring_state, claimed, layout.RING_EXIT)

    def ring_poll(self, spin_ns: int) -> int:
        """Spin (no GIL) until the guest posts a call and claim it.

        Returns the claimed state word (> 0: flags POSTED|CLAIMED and the
        post's sequence number), 0 after ``spin_ns`` ns without a post,
        -1 once stopped (kvmsentry_ring_poll). Adds the CPU time of the
        spin to ``ring_spun_ns``.
        """
        return lib.kvmsentry_ring_poll(self.ring_state, spin_ns, self.ring_stop, self.ring_spun_ns)

    def ring_waiting_claim(self) -> int:
        """After TRAP_RING_WAIT: the claimed word the guest waits on, or 0 if the word says unclaimed.

        That is the state word without DONE, EXIT and WITHDRAWN, when it
        has CLAIMED: the same value :meth:`ring_poll` returned for that
        claim (guest-writable: a hint, matched against the poller's own
        record in RingPoller.collect).
        """
        state = self.ring_state[0]
        if not state & layout.RING_CLAIMED:
            return 0
        return state & ~(layout.RING_DONE | layout.RING_EXIT | layout.RING_WITHDRAWN)

    def needs_flush(self) -> bool:
        """Page-table changes wait for this vCPU's next return through flush_return."""
        return bool(self._dirty_tables or self._retired_tables or self._tlb_stale or self._zap_unconfirmed
                    or self.address_space._pending_release)

    def _wanted_lstar(self) -> int:
        """This vCPU's vcpu_syscall_entry once the exit-free frames are set, else syscall_entry."""
        platform = self.platform
        if platform.fast_syscalls and self._fast_return:
            return self._ring_entry if platform.syscall_path == "ring" and self.ring_enabled else self._vcpu_entry
        return self._plain_entry

    def _interrupted_in_stub(self, rip: int) -> int:
        """Kicked inside vcpu_syscall_entry: hand the call to the sentry as a syscall.

        Before its `iretq` the stub has not answered yet: the call is
        taken by the exit path instead (TRAP_SYSCALL), so that a signal
        waiting for this task is delivered when it returns. In a fast
        block (mov, lea, iretq: 12 bytes each, in FAST_SYSCALLS order)
        RAX may already hold the user RSP; the block says which call it was.
        """
        regs = self.regs
        if rip >= self._vcpu_fast_read:
            if rip > self._vcpu_fast_read_go:  # the mov saved the user RSP in RAX
                regs.rsp = regs.rax
            regs.rax = 0
        elif rip > self._vcpu_syscall_out:
            block, offset = divmod(rip - (self._vcpu_syscall_out + 3), 12)
            if offset:
                regs.rsp = regs.rax
            regs.rax = layout.FAST_SYSCALLS[block][1]
        if _noncanonical(regs.rcx):
            regs.rcx = 0  # ring 3 jumped into the stub: a fault at 0, not a sentry error
        self.user_rip = regs.rcx
        self.user_rflags = regs.r11 & _USER_RFLAGS_MASK | USER_RFLAGS_INIT
        self.user_rsp = regs.rsp
        self._resume_as_is = False
        self.in_runtime = False
        return TRAP_SYSCALL

    def set_fast_ids(self, ids: tuple[int, ...], fast_return: int) -> None:
        """Keep the exit-free answers current: ``ids`` in layout.FAST_SYSCALLS order.

        ``ids`` are (pid, ppid, tid, uid, euid, gid, egid) of the task on
        this vCPU as getpid(2), getppid(2), gettid(2), getuid(2) ... return
        them; ``fast_return`` is the guest address of the process's vDSO
        __kvmsentry_fast_return. Callable from any thread while the vCPU
        runs: each answer is one aligned 8-byte store. Takes effect for
        LSTAR at the next reset() (execve, fork, clone).
        """
        if ids == self._fast_ids and fast_return == self._fast_return:
            return
        view = self._view
        if fast_return != self._fast_return:
            for k in range(len(layout.FAST_SYSCALLS) + 1):  # and the ring path's answer frame
                _FRAME.pack_into(view, self._fast_frames_gpa + k * layout.FAST_FRAME_SIZE,
                                 fast_return, _USER_CS, USER_RFLAGS_INIT, 0, _USER_DS)
            self._fast_return = fast_return
        for k, value in enumerate(ids):
            struct.pack_into("<Q", view, self._fast_frames_gpa + k * layout.FAST_FRAME_SIZE + 24,
                             value & 0xFFFF_FFFF_FFFF_FFFF)
        self._fast_ids = ids

    def set_fast_read(self, trampoline: int, page_gva: int = 0, page_gpa: int = 0) -> None:
        """Serve read(2) through the vDSO's __kvmsentry_fast_read, or not (``trampoline`` 0).

        ``trampoline`` is the guest address of the process's
        __kvmsentry_fast_read; ``page_gva``/``page_gpa`` locate its
        fast-read page (kvmsentry/kernel/fastread.py), whose top holds the
        trampoline's scratch stack. Writes this vCPU's read frame
        (runtime.S vcpu_fast_read); call with the BKL held while the
        task is stopped (its own thread, or before it first runs).
        """
        if trampoline:
            vdso = self.platform.vdso
            self._fast_read_page_gpa = page_gpa
            self._fast_read_end = trampoline + vdso.fast_read_marks["end"]
            self._fast_read_out_rip = trampoline + vdso.fast_read_marks["out"] + 2
            _FRAME.pack_into(self._view, self._fast_read_frame_gpa, trampoline, _USER_CS,
                             USER_RFLAGS_INIT, page_gva + x86.PAGE_SIZE, _USER_DS)
        else:
            struct.pack_into("<Q", self._view, self._fast_read_mask_gpa, 0)
            struct.pack_into("<Q", self._view, self._fast_read_frame_gpa, 0)
            self._fast_read_end = 0
            self._fast_read_out_rip = -1
        self._fast_read = trampoline

    def set_fast_read_fds(self, mask: int) -> None:
        """The fds whose read(2) goes to the trampoline: bit n for fd n (< layout.FAST_READ_MAX_FD).

        One aligned 8-byte store in the frame page (read-only to the
        guest); callable while the vCPU runs. Does nothing while
        set_fast_read is off (released contexts included).
        """
        if self._fast_read:
            struct.pack_into("<Q", self._view, self._fast_read_mask_gpa,
                             mask & ((1 << layout.FAST_READ_MAX_FD) - 1))

    def fast_read_on(self) -> bool:
        """Whether read(2) goes to the vDSO's fast-read trampoline on this vCPU."""
        return self._fast_read != 0

    def in_fast_read(self, rip: int) -> bool:
        """Whether ``rip`` is inside this vCPU's fast-read trampoline."""
        return self._fast_read <= rip < self._fast_read_end

    def fast_read_unwind(self, rip: int) -> int:
        """Leave the vDSO's __kvmsentry_fast_read, stopped (a kick or a fault) at ``rip``.

        Before its commit (the offset's update) the call is rolled back:
        the registers are the `syscall`'s again (RAX 0 = read, from the
        trampoline's scratch stack or its registers) and TRAP_SYSCALL is
        returned, for the sentry to run the read as if it had exited. At
        or after it, the call is finished: RAX is the result, the other
        registers come from the scratch stack, the caller resumes
        (TRAP_INTERRUPT). The scratch stack is the process's own memory,
        read as guest input: a process that scribbles there only changes
        its own registers, as it could anyway.
        """
        regs = self.regs
        marks = self.platform.vdso.fast_read_marks
        at = rip - self._fast_read
        if at < marks["saved"]:
            # Still pushing: RAX is the user RSP, the call's registers are intact.
            regs.rsp = regs.rax
            regs.rax = 0
            finished = False
        else:
            top = self._fast_read_page_gpa + x86.PAGE_SIZE
            rdx, rsi, rdi, rcx, r11, user_rsp = struct.unpack_from("<6Q", self._view, top - 48)
            finished = marks["commit"] < at < marks["undone"]
            if not finished:
                regs.rax = 0
            if _noncanonical(rcx):
                rcx = 0  # the process wrote its scratch stack: a fault at 0, not a sentry error
            r11 = r11 & _USER_RFLAGS_MASK | USER_RFLAGS_INIT
            regs.rdx, regs.rsi, regs.rdi, regs.rcx, regs.r11, regs.rsp = rdx, rsi, rdi, rcx, r11, user_rsp
        self.user_rip = regs.rcx
        self.user_rflags = regs.r11 & _USER_RFLAGS_MASK | USER_RFLAGS_INIT
        self.user_rsp = regs.rsp
        self.in_runtime = False
        self._resume_as_is = False
        self._run_struct.kvm_dirty_regs = _SYNC_REGS
        if finished:
            return TRAP_INTERRUPT
        self.fast_read_rollbacks += 1
        return TRAP_SYSCALL

    def set_user_state(self, rip: int, rsp: int) -> None:
        """Make the thread resume at ``rip`` with stack ``rsp`` (signal delivery, sigreturn)."""
        self.user_rip = rip
        self.user_rsp = rsp
        self._resume_as_is = False
        self._started = True

    def kick(self) -> None:
        """From another thread: make this vCPU's KVM_RUN return (TRAP_INTERRUPT) soon.

        Sets kvm_run.immediate_exit (api.rst, "immediate_exit") for a vCPU
        about to enter, and signals its thread for one already inside.
        """
        self._run_struct.immediate_exit = 1
        thread_id = self._thread_id
        if thread_id is not None:
            try:
                signal.pthread_kill(thread_id, KICK_SIGNAL)
            except ProcessLookupError:
                pass

    def switch_address_space(self, address_space: "AddressSpace") -> None:
        """Run in another address space from the next reset() on (execve)."""
        self._abandon_zap()
        self._move_ring_page(address_space)
        self.address_space.contexts.discard(self)
        address_space.contexts.add(self)
        self.address_space = address_space
        self._dirty_tables = address_space.page_table.dirty_tables
        self._zap_seen_generation = 0

    def copy_cpu_state(self, parent: "Context") -> None:
        """Take ``parent``'s registers, FS/GS base and FPU state (fork, clone).

        Call after reset(); the user RIP/RSP/RFLAGS are the parent's too.
        """
        source, regs = parent.regs, self.regs
        for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9",
                     "r10", "r11", "r12", "r13", "r14", "r15"):
            setattr(regs, name, getattr(source, name))
        self.vcpu.set_xsave(parent.vcpu.get_xsave())
        bases = parent.vcpu.get_msrs([x86.MSR_FS_BASE, x86.MSR_GS_BASE])
        self.vcpu.set_msrs(bases)
        self.user_rip = parent.user_rip
        self.user_rsp = parent.user_rsp
        self.user_rflags = parent.user_rflags
        self._started = True

    def _forged_exit(self) -> int:
        """A runtime port written from ring 3: report it as the #GP it would be."""
        self.user_rip = self.regs.rip
        self.user_rsp = self.regs.rsp
        self.user_rflags = self.regs.rflags
        self.fault = Fault(x86.X86_TRAP_GP, 0, 0)
        return TRAP_FAULT

    def release(self) -> None:
        """Give the vCPU back to the platform's pool (the thread has exited)."""
        self._unbind_ring_page()
        self._thread_id = None
        self._run_struct.immediate_exit = 0
        self._abandon_zap()
        self.set_fast_read(0)
        self.platform.release_context(self)


def _set_segment(seg, selector: int, *, code: bool) -> None:
    seg.base = 0
    seg.limit = 0xFFFFFFFF
    seg.selector = selector
    seg.type = 0xB if code else 0x3
    seg.present = 1
    seg.dpl = selector & 3
    seg.db = 0 if code else 1
    seg.s = 1
    seg.l = 1 if code else 0
    seg.g = 1
    seg.avl = 0
    seg.unusable = 0


__all__ = ["KvmPlatform", "AddressSpace", "Context", "Fault", "PlatformError",
           "KvmUnavailable", "TRAP_SYSCALL", "TRAP_FAULT", "TRAP_INTERRUPT", "TRAP_RING_WAIT"]
