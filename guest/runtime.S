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
 */
#define SYSCALL_PORT 0x10
#define EXCEPTION_PORT_BASE 0x80

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

/* The same after reloading CR3, which flushes the guest TLB after the
 * sentry removed or downgraded page-table entries. The qword below the
 * frame holds the value RCX must have in ring 3. */
    .globl flush_return
flush_return:
    mov %cr3, %rcx
    mov %rcx, %cr3
    mov -8(%rsp), %rcx
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
