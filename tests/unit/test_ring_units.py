"""The ring path's and the exit-free calls' logic that needs no KVM.

- Context._finish_fast_return: a vCPU stopped inside the vDSO trampoline
  is completed by the sentry from the registers, whatever instruction it
  stopped at (guest/vdso.c __kvmsentry_fast_return).
- ring.choose_path and RingPoller._judge (--syscall-path=auto).
"""

import types

import pytest

from kvmsentry.kernel import ring
from kvmsentry.platform.kvm import Context

MARKS = {"swapped": 2, "flags": 4, "sahf": 16, "unswapped": 19, "jump": 21}
BASE = 0x7000_0000
USER_RSP, ANSWER, FLAGS, USER_RIP = 0x7FFF_F000, 42, 0x0000_0A93, 0x40_1234


def _stopped_at(offset, **regs):
    ctx = types.SimpleNamespace(
        regs=types.SimpleNamespace(rip=BASE + offset, rcx=USER_RIP, **regs),
        platform=types.SimpleNamespace(vdso=types.SimpleNamespace(fast_return_marks=MARKS)),
        _fast_return=BASE, _run_struct=types.SimpleNamespace(kvm_dirty_regs=0),
        in_runtime=True, _resume_as_is=True)
    Context._finish_fast_return(ctx)
    return ctx


def _swap_al_ah(value):
    return value & ~0xFFFF | (value & 0xFF) << 8 | (value >> 8) & 0xFF


@pytest.mark.parametrize("offset, regs", [
    (0, dict(rsp=ANSWER, rax=USER_RSP, r11=FLAGS)),                 # before xchg rax,rsp
    (2, dict(rsp=USER_RSP, rax=ANSWER, r11=FLAGS)),                 # before xchg rax,r11
    (4, dict(rsp=USER_RSP, rax=FLAGS, r11=ANSWER)),                 # bt / jnc / std / cld
    (14, dict(rsp=USER_RSP, rax=FLAGS, r11=ANSWER)),                # before the first xchg al,ah
    (16, dict(rsp=USER_RSP, rax=_swap_al_ah(FLAGS), r11=ANSWER)),   # sahf
    (17, dict(rsp=USER_RSP, rax=_swap_al_ah(FLAGS), r11=ANSWER)),   # the second xchg al,ah
    (19, dict(rsp=USER_RSP, rax=FLAGS, r11=ANSWER)),                # before xchg rax,r11
    (21, dict(rsp=USER_RSP, rax=ANSWER, r11=FLAGS)),                # jmp *%rcx
])
def test_finish_fast_return_from_every_instruction(offset, regs):
    ctx = _stopped_at(offset, **regs)
    assert (ctx.regs.rax, ctx.regs.r11, ctx.regs.rsp) == (ANSWER, FLAGS, USER_RSP)
    assert (ctx.user_rip, ctx.user_rsp, ctx.user_rflags) == (USER_RIP, USER_RSP, FLAGS)
    assert not ctx.in_runtime and not ctx._resume_as_is


def test_choose_path_keeps_explicit_choices():
    assert ring.choose_path("exit") == "exit"
    assert ring.choose_path("ring") == "ring"
    assert ring.choose_path("auto") in ("exit", "ring")


def _poller():
    poller = ring.RingPoller.__new__(ring.RingPoller)
    poller.context = types.SimpleNamespace(ring_enabled=True)
    poller.stats = ring.RingStats()
    poller.auto = True
    poller._window = poller._window_answered = 0
    poller._backoff = ring.AUTO_BACKOFF_S
    poller._retry_at = 0.0
    return poller


def test_auto_leaves_the_ring_when_most_calls_exit():
    poller = _poller()
    for i in range(ring.AUTO_WINDOW):
        poller._judge(i % 4 == 0)  # a quarter answered in the ring
    assert poller.context.ring_enabled is False
    assert poller.stats.auto_off == 1
    assert poller._backoff == 2 * ring.AUTO_BACKOFF_S


def test_auto_stays_on_the_ring_when_it_pays():
    poller = _poller()
    for i in range(3 * ring.AUTO_WINDOW):
        poller._judge(i % 4 != 0)
    assert poller.context.ring_enabled is True and poller.stats.auto_off == 0
