"""Every guest address and port the KVM platform uses, in one place.

Guest-virtual layout (one PML4 slot, 511, shared by every address space;
user programs own slots 0-255, i.e. addresses below 0x0000_8000_0000_0000;
slot 510 is each address space's own, for the ring path's request pages):

    RING_AREA_GVA     KERNEL_TEXT_GVA - 16 MiB   (PML4 slot 510, per address
                                             space) vCPU i's request page at
                                             RING_AREA_GVA + i * VCPU_STRIDE,
                                             mapped only in the address space
                                             vCPU i runs (U=1, writable; see
                                             RING_AREA_GVA below)

    KERNEL_TEXT_GVA   0xffff_ff80_0000_0000  the ring-0 runtime (guest/runtime.S),
                                             linked here; read-only, executable
    IDT_GVA           KERNEL_TEXT_GVA + 1 MiB    the IDT, 256 gates (4 KiB), read-only
    VCPU_AREA_GVA     KERNEL_TEXT_GVA + 2 MiB    one VCPU_STRIDE slot per vCPU:
        + 0x0000  GDT (first 0x80 bytes) and TSS (at GDT_TSS_OFFSET), read-write
        + 0x2000  the frame page: the sentry writes the iret frame here
                  (FRAME_OFFSET) and the vCPU returns to ring 3 through it
        + 0x4000  IST1 stack (2 pages, top at + 0x6000): every exception
                  lands here, the CPU's frame at the top
        + 0x7000  the per-vCPU syscall entry (runtime.S vcpu_syscall_entry):
                  one frame of code mapped in every slot, U=1, read-only;
                  LSTAR of vCPU i points into slot i, so its RIP-relative
                  operands reach slot i's frame page
        + 0x8000  the zap list (8 pages): a count, then the physmap address
                  (+4) of each page-table page flush_handler must poke
      pages in between are unmapped guards.
    PHYSMAP_GVA       KERNEL_TEXT_GVA + 1 GiB    all guest-physical memory,
                                             2 MiB pages, supervisor-only

Under PVM (the KVM of the machines we develop on), ring 0 entered by
`syscall` runs natively only when its code and the data it reads are on
user-accessible (U=1) pages; on supervisor-only pages it faults forever
(DESIGN.md, "Notes on PVM"). The runtime text and the frame pages are
therefore mapped U=1 but read-only: the program can read them (nothing in
them is secret: its own return addresses) but cannot change them, so it
cannot forge a ring-0 frame. Exception entry is emulated by PVM and works
with supervisor-only pages: the IDT, the GDT/TSS and the IST stacks stay
supervisor-only. (PVM's sources say why, probably: a PVM guest kernel must
live in the linear range MSR_PVM_LINEAR_ADDRESS_RANGE allows, which never
includes PML4 slot 511, the host's own; moving the kernel half into that
range might let supervisor-only pages run natively. Not tried.)

Ports: the runtime reports a syscall with ``out`` to SYSCALL_PORT and
exception vector ``v`` with ``out`` to EXCEPTION_PORT_BASE + v.
"""

KERNEL_PML4_SLOT = 511
KERNEL_TEXT_GVA = 0xFFFF_FF80_0000_0000
IDT_GVA = KERNEL_TEXT_GVA + 0x10_0000
VCPU_AREA_GVA = KERNEL_TEXT_GVA + 0x20_0000
VCPU_STRIDE = 0x1_0000
MAX_VCPUS = 256

GDT_OFFSET = 0x0000
GDT_TSS_OFFSET = 0x0800
FRAME_PAGE_OFFSET = 0x2000
IST_STACK_OFFSET = 0x4000
IST_STACK_PAGES = 2
IST_TOP_OFFSET = IST_STACK_OFFSET + IST_STACK_PAGES * 0x1000

VCPU_STUB_OFFSET = 0x7000
# The ring path's request pages (runtime.S vcpu_ring_entry), U=1 and
# WRITABLE: the natively run stub under PVM can only write U=1 pages, so
# ring 3 can write them too. So they are not in the shared slot 511: vCPU
# i's page is at RING_AREA_GVA + i * VCPU_STRIDE in PML4 slot 510, which
# every address space has to itself, and is mapped only in the address
# space vCPU i runs now (Context binds it at creation, execve and exit),
# and only with --syscall-path=ring (auto's ring included).
# A program can thus post calls only for its own threads (the vCPUs of
# its address space), as it could make them with `syscall` anyway. The
# stride is the vCPU slots' so that the stub's RIP-relative operands,
# shifted by i * VCPU_STRIDE in slot i, reach page i; the area ends where
# slot 511 begins, 16 MiB below the stubs (well within rel32). The page
# carries only the call number and arguments, which the sentry reads as
# it reads registers; answers and return frames stay in the read-only
# frame page. Layout: state (u32), then at 8 the number, at 0x10 the six
# arguments (rdi rsi rdx r10 r8 r9), at RING_POST_OFFSET the guest's post
# word (u32: its last sequence number << RING_SEQ_SHIFT), at
# RING_SPIN_LEFT_OFFSET its spin count (u64): both the guest's scratch.
RING_PML4_SLOT = 510
RING_AREA_GVA = KERNEL_TEXT_GVA - MAX_VCPUS * VCPU_STRIDE
# The state word (runtime.S; the state machine is in kvmsentry/kernel/ring.py):
# flag bits, and above RING_SEQ_SHIFT the post's sequence number. The guest
# posts (post word | POSTED), the poller claims (a compare-and-swap from
# flags exactly POSTED) then adds DONE or EXIT (a compare-and-swap that
# needs its claim still there); the guest sets WITHDRAWN (lock bts) when
# its spin budget runs out.
RING_POSTED, RING_CLAIMED, RING_DONE, RING_EXIT, RING_WITHDRAWN = 1, 2, 4, 8, 16
RING_FLAGS = 0xFF
RING_SEQ_SHIFT = 8
RING_POST_OFFSET = 0x40
RING_SPIN_LEFT_OFFSET = 0x48
# In the frame page: the guest's spin budget (pause iterations, u64), and
# the ring path's answer frame: fast frame number len(FAST_SYSCALLS).
RING_SPIN_OFFSET = 0x200
# Inside the frame page: the exit-free frames, one iret frame per call of
# FAST_SYSCALLS in this order (rip = the vDSO's __kvmsentry_fast_return,
# cs, rflags, rsp = the answer, ss); runtime.S repeats the offsets.
FAST_FRAMES_OFFSET = 0x000
FAST_FRAME_SIZE = 40
# (name, x86-64 number): answered by vcpu_syscall_entry without an exit.
FAST_SYSCALLS = (("getpid", 39), ("getppid", 110), ("gettid", 186), ("getuid", 102),
                 ("geteuid", 107), ("getgid", 104), ("getegid", 108))
# The exit-free read(2)'s frame (runtime.S fast_read): rip = the vDSO's
# __kvmsentry_fast_read (0: read exits as any call), rsp = the top of the
# process's fast-read page (kvmsentry/kernel/fastread.py), cs/ss the user's.
FAST_READ_FRAME = len(FAST_SYSCALLS) + 1
# In the frame page: the served-fd mask (u64): bit n set sends read(2) of
# fd n to the trampoline through the read frame; every other read exits.
FAST_READ_MASK_OFFSET = 0x180
FAST_READ_MAX_FD = 64
# Inside the frame page: [FRAME_OFFSET, +40) is the iret frame rip, cs,
# rflags, rsp, ss. guest/runtime.S repeats these offsets (a unit test checks).
FRAME_OFFSET = 0xF00
ZAP_LIST_OFFSET = 0x8000
ZAP_LIST_PAGES = 8
ZAP_LIST_CAPACITY = ZAP_LIST_PAGES * 512 - 1
PHYSMAP_GVA = KERNEL_TEXT_GVA + 0x4000_0000
# The exception frame the CPU pushed on the IST stack, with the stub's error
# code (or 0) below it: error_code, rip, cs, rflags, rsp, ss.
EXCEPTION_FRAME_OFFSET = IST_TOP_OFFSET - 48

# GDT selectors, as Linux lays them out (arch/x86/include/asm/segment.h).
GDT_ENTRY_KERNEL_CS = 2
GDT_ENTRY_KERNEL_DS = 3
GDT_ENTRY_DEFAULT_USER32_CS = 4
GDT_ENTRY_DEFAULT_USER_DS = 5
GDT_ENTRY_DEFAULT_USER_CS = 6
GDT_ENTRY_TSS = 8
GDT_ENTRIES = 10
KERNEL_CS = GDT_ENTRY_KERNEL_CS * 8
KERNEL_DS = GDT_ENTRY_KERNEL_DS * 8
USER32_CS = GDT_ENTRY_DEFAULT_USER32_CS * 8 + 3
USER_DS = GDT_ENTRY_DEFAULT_USER_DS * 8 + 3
USER_CS = GDT_ENTRY_DEFAULT_USER_CS * 8 + 3
TSS_SELECTOR = GDT_ENTRY_TSS * 8

SYSCALL_PORT = 0x10
# The ring path's exit: the task thread must finish or wait for the call.
RING_WAIT_PORT = 0x11
EXCEPTION_PORT_BASE = 0x80
NUM_EXCEPTION_VECTORS = 32
# The TSS I/O bitmap allows these ports at CPL 3. Under PVM the runtime's
# natively-run ring-0 code is seen by the instruction emulator as CPL 3,
# so without the bitmap its `out` raises #GP (found with the probes: they
# worked only because their zeroed TSS happened to allow port 0x10). A
# ring-3 program may therefore `out` to these ports itself; the platform
# treats such forged exits as faults (see Context.run).
RUNTIME_PORTS = (SYSCALL_PORT, RING_WAIT_PORT) + tuple(range(EXCEPTION_PORT_BASE, EXCEPTION_PORT_BASE + NUM_EXCEPTION_VECTORS))

# User address space (x86-64 Linux, 4-level paging: TASK_SIZE_MAX).
TASK_SIZE = 0x0000_7FFF_FFFF_F000


def vcpu_base(index: int) -> int:
    """Guest-virtual base of vCPU ``index``'s private pages."""
    return VCPU_AREA_GVA + index * VCPU_STRIDE


def ring_request_gva(index: int) -> int:
    """Guest-virtual address of vCPU ``index``'s ring request page (PML4 slot 510)."""
    return RING_AREA_GVA + index * VCPU_STRIDE
