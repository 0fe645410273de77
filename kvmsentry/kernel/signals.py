"""Signal delivery: the x86-64 signal frame, rt_sigreturn, syscall restart.

Sources: arch/x86/kernel/signal.c (get_sigframe, __setup_rt_frame,
restore_sigcontext), arch/x86/include/uapi/asm/sigcontext.h (struct
sigcontext_64, 256 bytes), arch/x86/include/uapi/asm/ucontext.h,
include/uapi/asm-generic/siginfo.h (siginfo_t, 128 bytes), signal(7).

The frame a handler starts with, from high to low addresses:

    user rsp (or the top of the alternate stack with SA_ONSTACK)
    128-byte red zone, skipped
    XSAVE image (64-byte aligned): the FPU/SSE/AVX state, magic at the end
    struct rt_sigframe (16-byte aligned, minus 8 as after a call):
        pretcode    u64   sa_restorer: where the handler returns to
        ucontext    304   uc_flags, uc_link, uc_stack, sigcontext, uc_sigmask
        siginfo     128
    <- rsp at handler entry; rdi = signo, rsi = &siginfo, rdx = &ucontext

rt_sigreturn reads the ucontext back: registers, flags (the user-settable
ones only), FPU state, signal mask, alternate stack.
"""

from __future__ import annotations

import errno
import struct

from kvmsentry.kernel.mm import GuestFault

SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

SS_ONSTACK = 1
SS_DISABLE = 2

UC_FP_XSTATE = 0x1
UC_SIGCONTEXT_SS = 0x2
UC_STRICT_RESTORE_SS = 0x4

# Kernel-internal results a handler returns to ask for a restart (include/linux/errno.h).
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516

FP_XSTATE_MAGIC1 = 0x46505853
FP_XSTATE_MAGIC2 = 0x46505845
FXSAVE_SW_BYTES_OFFSET = 464

SI_USER = 0
SI_KERNEL = 0x80
SI_TKILL = -6

SIGKILL = 9
SIGSTOP = 19
# Signals no mask blocks (sigprocmask(2)): SIGKILL and SIGSTOP.
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))

# sigcontext_64 general registers in order (then eflags, segments, ...).
_SIGCONTEXT_REGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                    "rdi", "rsi", "rbp", "rbx", "rdx", "rax", "rcx")
_SIGCONTEXT = struct.Struct("<15Q Q Q Q HHHH QQQQ Q 64x")  # ... rsp, rip, eflags; cs gs fs ss; err trapno oldmask cr2; fpstate
_UCONTEXT_HEAD = struct.Struct("<QQ QiiQ")  # uc_flags, uc_link, ss_sp, ss_flags, pad, ss_size
UCONTEXT_SIZE = _UCONTEXT_HEAD.size + _SIGCONTEXT.size + 8
SIGINFO_SIZE = 128
RT_SIGFRAME_SIZE = 8 + UCONTEXT_SIZE + SIGINFO_SIZE
assert _SIGCONTEXT.size == 256 and UCONTEXT_SIZE == 304 and RT_SIGFRAME_SIZE == 440

# RFLAGS bits a handler may change through the frame (signal.c FIX_EFLAGS).
FIX_EFLAGS = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4000 | 0x40000 | 0x10000
USER_CS = 0x33
USER_DS = 0x2B


class SigAction:
    """A decoded kernel struct sigaction (handler, flags, restorer, mask)."""

    __slots__ = ("handler", "flags", "restorer", "mask")

    def __init__(self, raw: bytes):
        self.handler, self.flags, self.restorer, self.mask = struct.unpack("<QQQQ", raw)


def siginfo(signo: int, code: int = SI_USER, *, pid: int = 0, uid: int = 0,
            addr: int | None = None, status: int | None = None, errno_: int = 0) -> bytes:
    """A 128-byte siginfo_t: kill-style (pid, uid), fault-style (addr) or SIGCHLD (status)."""
    info = bytearray(SIGINFO_SIZE)
    struct.pack_into("<iii", info, 0, signo, errno_, code)
    if addr is not None:
        struct.pack_into("<Q", info, 16, addr)
    else:
        struct.pack_into("<iI", info, 16, pid, uid)
        if status is not None:
            struct.pack_into("<i", info, 24, status)
    return bytes(info)


SIGRTMIN = 32



def queue_signal(holder, signo: int, info: bytes) -> None:
    """Mark ``signo`` pending on ``holder`` (a Task or Process) with its siginfo.

    Standard signals do not queue: a second one while the first is
    pending is merged. Real-time signals (32-64) queue every instance, in
    order (signal(7)).
    """
    holder.pending |= 1 << (signo - 1)
    if signo >= SIGRTMIN:
        holder.siginfo.setdefault(signo, []).append(info)
    else:
        holder.siginfo.setdefault(signo, info)


# SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV, SIGSYS (kernel/signal.c SYNCHRONOUS_MASK).
SYNCHRONOUS_MASK = sum(1 << (signo - 1) for signo in (4, 5, 7, 8, 11, 31))


def next_signal(ready: int) -> int:
    """The signal a dequeue takes from the set bits of ``ready`` (bit n-1
    for signal n; not 0): the lowest synchronous one if any, else the
    lowest (kernel/signal.c next_signal). Returns its number."""
    sync = ready & SYNCHRONOUS_MASK
    if sync:
        ready = sync
    return (ready & -ready).bit_length()


def next_pending(task, mask: int):
    """(holder, signo) of the pending signal of ``mask`` a dequeue takes for
    ``task``: its own pending set first, then its process's, each by
    next_signal (kernel/signal.c dequeue_signal); None when none is."""
    for holder in (task, task.process):
        ready = holder.pending & mask
        if ready:
            return holder, next_signal(ready)
    return None


def dequeue_signal(holder, signo: int) -> bytes | None:
    """Take one instance of pending ``signo`` from ``holder``; returns its siginfo."""
    bit = 1 << (signo - 1)
    if signo >= SIGRTMIN:
        queue = holder.siginfo.get(signo) or []
        info = queue.pop(0) if queue else None
        if queue:
            return info
        holder.siginfo.pop(signo, None)
    else:
        info = holder.siginfo.pop(signo, None)
    holder.pending &= ~bit
    return info


def xstate_size(platform) -> int:
    """Bytes of the XSAVE image for the enabled XCR0 features (CPUID 0xD.0 EBX)."""
    return max(platform._cpuid_leaf(0xD, 0)[1], 576)


def setup_frame(task, signo: int, action: SigAction, info: bytes, fault=None) -> None:
    """Build the frame for ``signo`` on the task's user stack and point it at the handler.

    Raises GuestFault when the stack is not writable (the caller then
    kills with SIGSEGV, as force_sigsegv does).
    """
    ctx = task.context
    regs = ctx.regs
    mm = task.mm
    sp = ctx.user_rsp
    altstack_sp, altstack_flags, altstack_size = task.altstack
    on_altstack = altstack_size and altstack_sp < sp <= altstack_sp + altstack_size
    if action.flags & SA_ONSTACK and not altstack_flags & SS_DISABLE and not on_altstack:
        sp = altstack_sp + altstack_size
    else:
        sp -= 128  # the red zone
    xsave = ctx.vcpu.get_xsave()
    size = xstate_size(task.kernel.platform)
    fp_sp = (sp - size - 4) & ~63
    image = bytearray(xsave[:size])
    # struct _fpx_sw_bytes in the software-reserved bytes of the FXSAVE area.
    xfeatures = struct.unpack_from("<Q", image, 512)[0] | 3
    struct.pack_into("<IIQI", image, FXSAVE_SW_BYTES_OFFSET, FP_XSTATE_MAGIC1, size + 4,
                     task.kernel.platform._xcr0, size)
    struct.pack_into("<Q", image, 512, xfeatures)
    image += struct.pack("<I", FP_XSTATE_MAGIC2)
    frame = ((fp_sp - RT_SIGFRAME_SIZE) & ~15) - 8
    uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
    trapno, err, cr2 = (fault.vector, fault.error_code, fault.cr2) if fault else (0, 0, 0)
    # The mask rt_sigreturn restores: the caller's own, even after rt_sigsuspend.
    saved_mask = task.sigmask if task.saved_sigmask is None else task.saved_sigmask
    values = [getattr(regs, name) for name in _SIGCONTEXT_REGS]
    sigcontext = _SIGCONTEXT.pack(*values, ctx.user_rsp, ctx.user_rip, ctx.user_rflags,
                                  USER_CS, 0, 0, USER_DS, err, trapno, saved_mask, cr2, fp_sp)
    ucontext = _UCONTEXT_HEAD.pack(uc_flags, 0, altstack_sp,
                                   SS_ONSTACK if on_altstack else (altstack_flags & SS_DISABLE),
                                   0, altstack_size) + sigcontext + struct.pack("<Q", saved_mask)
    if not action.flags & SA_RESTORER or not _canonical(action.handler):
        # No way back from the handler, or a handler the CPU cannot jump to:
        # Linux's signal delivery then fails and the task gets SIGSEGV.
        raise _NoRestorer()
    mm.copy_out(fp_sp, image)
    mm.copy_out(frame, struct.pack("<Q", action.restorer) + ucontext + info)
    # The handler's registers (signal.c __setup_rt_frame).
    regs.rdi = signo
    regs.rsi = frame + 8 + UCONTEXT_SIZE
    regs.rdx = frame + 8
    regs.rax = 0
    ctx.user_rflags &= ~(0x100 | 0x400 | 0x40000)  # TF, DF, AC cleared
    ctx.set_user_state(action.handler, frame)
    mask = task.sigmask | action.mask
    if not action.flags & SA_NODEFER:
        mask |= 1 << (signo - 1)
    task.sigmask = mask & ~UNBLOCKABLE
    task.saved_sigmask = None
    if action.flags & SA_RESETHAND:
        task.process.sigactions.pop(signo, None)


class _NoRestorer(Exception):
    """x86-64 needs SA_RESTORER: without it Linux cannot return from the handler."""


def _canonical(address: int) -> bool:
    return address < 0x8000_0000_0000 or address >= 0xFFFF_8000_0000_0000


def restore_frame(task) -> int:
    """rt_sigreturn(2): restore the state saved by setup_frame; returns the saved rax.

    Raises GuestFault for an unreadable frame (the caller kills with SIGSEGV).
    """
    ctx = task.context
    regs = ctx.regs
    mm = task.mm
    frame = ctx.user_rsp - 8
    raw = mm.copy_in(frame + 8, UCONTEXT_SIZE)
    uc_flags, _, ss_sp, ss_flags, _, ss_size = _UCONTEXT_HEAD.unpack_from(raw, 0)
    fields = _SIGCONTEXT.unpack_from(raw, _UCONTEXT_HEAD.size)
    (mask,) = struct.unpack_from("<Q", raw, _UCONTEXT_HEAD.size + _SIGCONTEXT.size)
    for name, value in zip(_SIGCONTEXT_REGS, fields):
        setattr(regs, name, value)
    rsp, rip, eflags = fields[15], fields[16], fields[17]
    if not _canonical(rip):
        # The return to ring 3 would fault (#GP on iretq): SIGSEGV, as Linux.
        raise GuestFault(rip)
    fpstate = fields[-1]
    if fpstate:
        size = xstate_size(task.kernel.platform)
        image = bytearray(mm.copy_in(fpstate, size))
        current = ctx.vcpu.get_xsave()
        ctx.vcpu.set_xsave(bytes(image) + current[size:])
    ctx.user_rflags = (ctx.user_rflags & ~FIX_EFLAGS) | (eflags & FIX_EFLAGS)
    ctx.set_user_state(rip, rsp)
    task.sigmask = mask & ~UNBLOCKABLE
    if ss_flags in (0, SS_DISABLE) and not (ss_flags == 0 and ss_size < 2048):
        task.altstack = (ss_sp, ss_flags, ss_size)
    return regs.rax


def restart_syscall(task, result: int, action: SigAction | None, nr: int) -> int:
    """What an interrupted syscall's result becomes when a signal is handled (signal.c).

    ``action`` is the handler about to run, or None when no handler runs:
    then every restartable call restarts. Restarting rewinds the user RIP
    over the 2-byte `syscall` and puts the number back in rax.
    """
    code = -result
    if code not in (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK):
        return result
    restart = (action is None or code == ERESTARTNOINTR
               or (code == ERESTARTSYS and action.flags & SA_RESTART))
    if not restart:
        return -errno.EINTR
    ctx = task.context
    ctx.set_user_state(ctx.user_rip - 2, ctx.user_rsp)
    return nr
