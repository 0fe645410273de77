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
#define RING_WAIT_PORT 0x11
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
/* The exit-free read's frame: after the 7 getpid-family frames and the
 * ring path's answer frame (layout.FAST_READ_FRAME). */
#define FAST_READ_FRAME 8
/* In the frame page: the served-fd mask of the exit-free read (u64). */
#define FAST_READ_MASK_OFFSET 0x180
/* The ring path (vcpu_ring_entry): the request pages (vCPU i's at
 * RING_AREA_GVA + i * VCPU_STRIDE, in PML4 slot 510, mapped only in the
 * address space vCPU i runs; runtime.ld's vcpu0_ring_request), their
 * states, and the spin budget the sentry keeps in the frame page. */
#define RING_AREA_GVA 0xffffff7fff000000
#define RING_SPIN_OFFSET 0x200
/* The request's state word (layout.py, ring.py): flag bits, and above
 * RING_SEQ_SHIFT the sequence number of the post. In the page: the
 * guest's post word (its last sequence number << RING_SEQ_SHIFT) and its
 * spin count, both the guest's own scratch. */
#define RING_POSTED 1
#define RING_CLAIMED 2
#define RING_DONE 4
#define RING_EXIT 8
#define RING_WITHDRAWN 16
#define RING_WITHDRAWN_BIT 4
#define RING_SEQ_SHIFT 8
#define RING_POST_OFFSET 0x40
#define RING_SPIN_LEFT_OFFSET 0x48

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
 * (arch/x86/kvm/mmu/mmu.c, detect_write_misaligned); `lock orq $0`
 * writes the bytes back unchanged. The lock matters: the sentry may be
 * writing entries of the same page on another thread meanwhile (another
 * vCPU of the process taking a fault), and a plain `orq` (a read, then a
 * write) would put back bytes 8-11 as they were before such a write: the
 * low half of entry 1, its present bit and frame, under the new high
 * half (seen: entry 1 left as 0x8000000000000000, NX alone, a fault
 * nothing could resolve). Reloading CR3 flushes a hardware TLB. Under PVM
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
    lock orq $0, (%rax)
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
/* getpid first: the most frequent of them. */
.macro FAST_DISPATCH read_label
    /* read(2) first (nr 0): the exit-free read of a cached regular file
     * (vcpu_fast_read below); one test+jz more for every other call. */
    test %rax, %rax
    jz \read_label
    cmp $39, %rax
    je fast_0
    cmp $186, %rax
    je fast_2
    cmp $110, %rax
    je fast_1
    cmp $102, %rax
    je fast_3
    cmp $107, %rax
    je fast_4
    cmp $104, %rax
    je fast_5
    cmp $108, %rax
    je fast_6
.endm

    .section .vcpu_stub, "ax"
    .globl vcpu_syscall_entry
vcpu_syscall_entry:
    FAST_DISPATCH vcpu_fast_read
    .globl vcpu_syscall_out
vcpu_syscall_out:
    out %al, $SYSCALL_PORT
    /* Not reached: the sentry sets RIP to a return label. */
    hlt
fast_0:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 0 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
fast_1:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 1 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
fast_2:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 2 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
fast_3:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 3 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
fast_4:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 4 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
fast_5:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 5 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
fast_6:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 6 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
/*
 * read(2): the sentry serves reads of some fds without an exit
 * (kvmsentry/kernel/fastread.py). Their numbers (below 64) are the bits
 * of the served-fd mask in the frame page (FAST_READ_MASK_OFFSET); for
 * those the read frame (fast frame number FAST_READ_FRAME) has RIP = the
 * vDSO's __kvmsentry_fast_read and RSP = the top of the process's
 * fast-read page (its per-process table and the trampoline's scratch
 * stack; U=1, writable by that process only). The trampoline copies from
 * the file's window in ring 3, or leaves through an `out` of its own;
 * ring 0 loads nothing the program wrote. Any other fd exits here as any
 * other call (RAX is 0 = read).
 */
    .globl vcpu_fast_read
vcpu_fast_read:
    cmp $64, %rdi
    jae vcpu_syscall_out
    bt %rdi, vcpu0_fast_frames - FAST_FRAMES_OFFSET + FAST_READ_MASK_OFFSET(%rip)
    jnc vcpu_syscall_out
    .globl vcpu_fast_read_go
vcpu_fast_read_go:
    mov %rsp, %rax
    lea vcpu0_fast_frames + FAST_READ_FRAME * FAST_FRAME_SIZE(%rip), %rsp
    iretq
    .globl vcpu_stub_end
vcpu_stub_end:

/*
 * The ring path (kvmsentry boot --syscall-path=ring): LSTAR of a vCPU is
 * this entry's copy in its slot. After the exit-free calls above, the
 * call is posted in the vCPU's request page (U=1, writable, at the same
 * RIP-relative distance from every slot's stub, but mapped only in the
 * address space this vCPU runs: layout.py RING_AREA_GVA) and the vCPU spins with
 * `pause` while a host thread of the sentry polls the page
 * (kvmsentry/kernel/ring.py, in C: kvmsentry_ring_poll). The state
 * machine is written down in ring.py; in short:
 * - Each post has a sequence number: the guest adds 1 << RING_SEQ_SHIFT
 *   to its post word (RING_POST_OFFSET) first, then writes the number and
 *   arguments, and last stores the state word = post word | RING_POSTED.
 * - The poller claims with a compare-and-swap from a word whose flags are
 *   exactly RING_POSTED (adding RING_CLAIMED), and finishes with a
 *   compare-and-swap that adds RING_DONE or RING_EXIT only while the word
 *   still holds the sequence number it claimed (WITHDRAWN may be set).
 * - The guest acts only on a word that carries its own sequence number
 *   (state XOR post word): POSTED|CLAIMED|DONE: the answer is in the ring
 *   frame (frame page, read-only to the guest, written by the sentry) as
 *   its RSP: return to ring 3 through the vDSO trampoline exactly as the
 *   exit-free calls do; POSTED|CLAIMED|EXIT: the sentry wants the task
 *   thread to finish the call (a signal to deliver, page tables to flush,
 *   or a call the ring never runs): exit on RING_WAIT_PORT. A word of
 *   another call (an answer of an earlier one, say) is not this call's.
 * No answer within the spin budget (counted in the request page: RAX is
 * the only free register): set the WITHDRAWN bit atomically (lock bts),
 * after which the poller's claim cannot succeed, and look once more: the
 * answer if it came, RING_WAIT_PORT if the call is claimed (the task
 * thread sleeps until the poller is done, so a blocking call holds no
 * spinning core), else the ordinary syscall exit.
 * RCX, R11 and the call's argument registers are never changed; RAX is
 * the call number again at both exits.
 */
    .globl vcpu_ring_entry
vcpu_ring_entry:
    FAST_DISPATCH ring_fast_read
    jmp vcpu_ring_post
/* read(2) on the ring path: the trampoline for a served fd, else posted
 * to the ring like any other call. */
ring_fast_read:
    cmp $64, %rdi
    jae vcpu_ring_post
    bt %rdi, vcpu0_fast_frames - FAST_FRAMES_OFFSET + FAST_READ_MASK_OFFSET(%rip)
    jnc vcpu_ring_post
    jmp vcpu_fast_read_go
    /* Kicked before this label, the call is handed to the sentry as a
     * plain syscall (kvm.py Context._interrupted): nothing is posted yet. */
    .globl vcpu_ring_post
vcpu_ring_post:
    addl $(1 << RING_SEQ_SHIFT), vcpu0_ring_request + RING_POST_OFFSET(%rip)
    mov %rax, vcpu0_ring_request + 0x08(%rip)
    mov %rdi, vcpu0_ring_request + 0x10(%rip)
    mov %rsi, vcpu0_ring_request + 0x18(%rip)
    mov %rdx, vcpu0_ring_request + 0x20(%rip)
    mov %r10, vcpu0_ring_request + 0x28(%rip)
    mov %r8, vcpu0_ring_request + 0x30(%rip)
    mov %r9, vcpu0_ring_request + 0x38(%rip)
    mov vcpu0_ring_spin(%rip), %rax
    mov %rax, vcpu0_ring_request + RING_SPIN_LEFT_OFFSET(%rip)
    mov vcpu0_ring_request + RING_POST_OFFSET(%rip), %eax
    or $RING_POSTED, %eax
    mov %eax, vcpu0_ring_request(%rip)
ring_spin:
    pause
    mov vcpu0_ring_request(%rip), %eax
    xor vcpu0_ring_request + RING_POST_OFFSET(%rip), %eax
    cmp $(RING_POSTED | RING_CLAIMED | RING_DONE), %eax
    je ring_done
    cmp $(RING_POSTED | RING_CLAIMED | RING_EXIT), %eax
    je ring_exit
    decq vcpu0_ring_request + RING_SPIN_LEFT_OFFSET(%rip)
    jnz ring_spin
    lock btsl $RING_WITHDRAWN_BIT, vcpu0_ring_request(%rip)
    mov vcpu0_ring_request(%rip), %eax
    xor vcpu0_ring_request + RING_POST_OFFSET(%rip), %eax
    cmp $(RING_POSTED | RING_CLAIMED | RING_DONE | RING_WITHDRAWN), %eax
    je ring_done
    cmp $(RING_POSTED | RING_CLAIMED | RING_WITHDRAWN), %eax
    je ring_exit
    cmp $(RING_POSTED | RING_CLAIMED | RING_EXIT | RING_WITHDRAWN), %eax
    jne ring_withdrawn
ring_exit:
    mov vcpu0_ring_request + 0x08(%rip), %rax
    .globl vcpu_ring_wait_out
vcpu_ring_wait_out:
    out %al, $RING_WAIT_PORT
    hlt
ring_withdrawn:
    mov vcpu0_ring_request + 0x08(%rip), %rax
    .globl vcpu_ring_syscall_out
vcpu_ring_syscall_out:
    out %al, $SYSCALL_PORT
    hlt
ring_done:
    mov %rsp, %rax
    lea vcpu0_fast_frames + 7 * FAST_FRAME_SIZE(%rip), %rsp
    iretq
    .globl vcpu_ring_end
vcpu_ring_end:
