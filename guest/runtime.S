/*
 * kvmsentry ring-0 runtime: the only code that runs in guest ring 0.
 *
 * It turns every `syscall` and every CPU exception of the ring-3 program
 * into a VM exit (an `out` to a port the sentry reserves) and returns to
 * ring 3 with `iretq` once the sentry has answered. The sentry (Python)
 * decides where the vCPU resumes: after each exit it sets RIP to one of
 * the return labels below and RSP to an iret frame it wrote itself
 * (kvmsentry/platform/layout.py describes the pages). The stubs never
 * touch the user stack (its red zone stays intact) and clobber no
 * register the program can see, so each is as short as it can be: under
 * PVM ring-0 instructions may be emulated at ~1 us each (DESIGN.md).
 *
 * Ports (must match kvmsentry/platform/layout.py):
 *   SYSCALL_PORT        0x10        a `syscall` from ring 3
 *   EXCEPTION_PORT_BASE 0x80 + v    CPU exception vector v (0..31), with
 *                                   the error code (or 0) pushed under
 *                                   the CPU's frame on the IST1 stack.
 * Vector 6 (#UD) enters ud_entry first: flush_return's ud2 is a flush.
 */
#define SYSCALL_PORT 0x10
#define EXCEPTION_PORT_BASE 0x80
/* Offsets inside a vCPU's slot (layout.py): the IST1 stack top, the iret
 * frame in the frame page, the zap list. The handler finds them relative
 * to its stack: the CPU pushed 5 qwords at the IST top, then 3 pushes. */
#define IST_TOP_OFFSET 0x6000
#define FRAME_PAGE_FRAME_OFFSET 0x2F00
#define ZAP_LIST_OFFSET 0x8000
#define ZAP_LIST_FROM_HANDLER_RSP (ZAP_LIST_OFFSET - (IST_TOP_OFFSET - 64))
#define FRAME_FROM_INT_RSP (FRAME_PAGE_FRAME_OFFSET - (IST_TOP_OFFSET - 40))
/* The per-vCPU syscall entry (see vcpu_syscall_entry below): vCPU 0's
 * slot, the stub page and the exit-free frames in the frame page. */
#define VCPU_AREA_GVA 0xffffff8000200000
#define VCPU_STUB_OFFSET 0x7000
#define FRAME_PAGE_OFFSET 0x2000
#define FAST_FRAMES_OFFSET 0x000
#define FAST_FRAME_SIZE 40

    .text
    .code64

/* LSTAR: entered from ring 3 by `syscall` with RCX = user RIP,
 * R11 = user RFLAGS, still on the user stack. */
    .globl syscall_entry
syscall_entry:
    out %al, $SYSCALL_PORT
    /* Not reached: the sentry sets RIP to a return label. */
    hlt

/* RSP points at an iret frame [rip, cs, rflags, rsp, ss]. */
    .globl iret_return
iret_return:
    iretq

/* The same after the page tables lost entries: the `ud2` raises #UD,
 * whose gate (ud_entry) sees it came from here and runs flush_handler on
 * the IST1 stack. (Under PVM an `int` here raises #UD too; an exception
 * is the way into emulated ring 0, where privileged instructions work.) */
    .globl flush_return
flush_return:
    ud2

/* The #UD gate: our own ud2 is a flush request, any other is the program's. */
    .globl ud_entry
ud_entry:
    push %rax
    lea flush_return(%rip), %rax
    cmp %rax, 8(%rsp)
    pop %rax
    je flush_handler
    jmp exception_stubs + 16 * 6

/* Interrupt FLUSH_VECTOR: make the MMU forget page-table entries the
 * sentry removed or downgraded. The sentry wrote, in this vCPU's zap
 * list, a count and then the physmap address (+4) of each page-table page
 * it changed. A misaligned write to a page-table page makes a shadow MMU
 * (PVM, or KVM without EPT) drop its whole shadow of that page
 * (arch/x86/kvm/mmu/mmu.c, detect_write_misaligned); `orq $0` writes the
 * bytes back unchanged. Reloading CR3 flushes a hardware TLB. Under PVM
 * this handler runs emulated (~1 us per instruction), so it is short.
 * Then it returns to ring 3 through the iret frame in the frame page. */
    .balign 16
    .globl flush_handler
flush_handler:
    push %rax
    push %rcx
    push %rdx
    lea ZAP_LIST_FROM_HANDLER_RSP(%rsp), %rdx
    mov (%rdx), %rcx
1:  test %rcx, %rcx
    jz 2f
    mov (%rdx,%rcx,8), %rax
    orq $0, (%rax)
    dec %rcx
    jmp 1b
2:  mov %cr3, %rax
    mov %rax, %cr3
    pop %rdx
    pop %rcx
    pop %rax
    lea FRAME_FROM_INT_RSP(%rsp), %rsp
    iretq

/* IDT stubs for vectors 0..31, 16 bytes apart from exception_stubs. The
 * CPU switched to the IST1 stack and pushed [ss, rsp, rflags, cs, rip]
 * and, for vectors 8, 10-14, 17, 21, 29, 30, an error code; the others
 * push 0 in its place so the frame has one shape. */
    .balign 16
    .globl exception_stubs
exception_stubs:
    .set vector, 0
    .rept 32
    .balign 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    nop
    nop
    .else
    pushq $0
    .endif
    out %al, $(EXCEPTION_PORT_BASE + vector)
    hlt
    .set vector, vector + 1
    .endr
    .globl runtime_end
runtime_end:

/*
 * The per-vCPU syscall entry: LSTAR of vCPU i is this code's copy in
 * vCPU i's slot (one frame mapped at VCPU_STUB_OFFSET of every slot,
 * U=1, read-only), linked at vCPU 0's slot. Its RIP-relative operands
 * therefore reach the slot's own frame page, which is how a stub that
 * may clobber no register finds per-vCPU data.
 *
 * getpid, getppid, gettid, getuid, geteuid, getgid and getegid are
 * answered without a VM exit: the sentry keeps, in the frame page
 * (read-only to the guest), one iret frame per call whose RIP is the
 * vDSO's __kvmsentry_fast_return (ring 3), whose RSP is the answer, and
 * whose CS/SS are the user's. The stub saves the user RSP in RAX and
 * irets through that frame; the ring-3 trampoline swaps RAX and RSP,
 * restores the user's flags from R11 and jumps to RCX (guest/vdso.c).
 * Nothing the program can write is ever loaded by ring 0: the frames
 * are sentry-written, so a program cannot forge a ring-0 return. Every
 * other number leaves through the `out` as syscall_entry does.
 * Fast-path indices (layout.FAST_SYSCALLS): 0 getpid 39, 1 getppid 110,
 * 2 gettid 186, 3 getuid 102, 4 geteuid 107, 5 getgid 104, 6 getegid 108.
 */
/* vcpu0_fast_frames is defined by runtime.ld (an absolute address, so that
 * the RIP-relative displacement is the linker's). */
    .section .vcpu_stub, "ax"
    .globl vcpu_syscall_entry
vcpu_syscall_entry:
    cmp $39, %rax
    je 0f
    cmp $186, %rax
    je 2f
    cmp $110, %rax
    je 1f
    cmp $102, %rax
    je 3f
    cmp $107, %rax
    je 4f
    cmp $104, %rax
    je 5f
    cmp $108, %rax
    je 6f
    .globl vcpu_syscall_out
vcpu_syscall_out:
    out %al, $SYSCALL_PORT
    /* Not reached: the sentry sets RIP to a return label. */
    hlt
0:  mov %rsp, %rax
    lea vcpu0_fast_frames + 0 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
1:  mov %rsp, %rax
    lea vcpu0_fast_frames + 1 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
2:  mov %rsp, %rax
    lea vcpu0_fast_frames + 2 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
3:  mov %rsp, %rax
    lea vcpu0_fast_frames + 3 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
4:  mov %rsp, %rax
    lea vcpu0_fast_frames + 4 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
5:  mov %rsp, %rax
    lea vcpu0_fast_frames + 5 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
6:  mov %rsp, %rax
    lea vcpu0_fast_frames + 6 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
    .globl vcpu_stub_end
vcpu_stub_end:
