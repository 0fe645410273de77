"""kvmsentry.vm.kvm against the real /dev/kvm: one test per wrapper, and
wrappers around a closed fd raise KvmError(EBADF) naming the ioctl
(rust-vmm kvm-ioctls' test_faulty_vm_fd idea)."""

import errno
import mmap
import struct

import pytest

from kvmsentry.vm import x86
from kvmsentry.vm._kvm import ffi, lib
from kvmsentry.vm.kvm import Kvm, KvmError, KvmUnavailable, Vcpu, Vm

pytestmark = pytest.mark.requires_kvm

MEM_SIZE = 2 << 20


@pytest.fixture
def kvm():
    k = Kvm()
    yield k
    k.close()


@pytest.fixture
def vm(kvm):
    v = kvm.create_vm()
    yield v
    v.close()


@pytest.fixture
def memory():
    m = mmap.mmap(-1, MEM_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    yield m
    m.close()


def _hva(buf):
    return int(ffi.cast("uintptr_t", ffi.from_buffer(buf)))


@pytest.fixture
def vcpu(vm, memory):
    vm.set_user_memory_region(0, 0, MEM_SIZE, _hva(memory))
    c = vm.create_vcpu(0)
    yield c
    c.close()


def test_kvm_opens_with_api_version_12(kvm):
    assert kvm.fd >= 0
    assert kvm.get_api_version() == 12


def test_kvm_missing_device_is_unavailable(tmp_path):
    with pytest.raises(KvmUnavailable, match="does not exist"):
        Kvm(str(tmp_path / "no-such-kvm"))


def test_check_extension(kvm):
    assert kvm.check_extension(lib.KVM_CAP_SYNC_REGS) > 0
    assert kvm.check_extension(lib.KVM_CAP_IMMEDIATE_EXIT) > 0
    assert kvm.check_extension(0xFFFF_FFF) == 0  # unknown capability: absent, no error


def test_vcpu_mmap_size(kvm):
    size = kvm.get_vcpu_mmap_size()
    assert size >= mmap.PAGESIZE and size % mmap.PAGESIZE == 0


def test_create_vm(kvm):
    vm = kvm.create_vm()
    try:
        assert isinstance(vm, Vm)
        assert vm.fd >= 0 and vm.fd != kvm.fd
        assert vm.check_extension(lib.KVM_CAP_SYNC_REGS) > 0
    finally:
        vm.close()
    assert vm.fd == -1
    vm.close()  # idempotent


def test_set_user_memory_region(vm, memory):
    vm.set_user_memory_region(0, 0, MEM_SIZE, _hva(memory))
    # Overlapping a second slot onto the first is refused with EEXIST.
    with pytest.raises(KvmError) as info:
        vm.set_user_memory_region(1, 0x1000, 0x1000, _hva(memory))
    assert info.value.errno == errno.EEXIST
    assert info.value.ioctl == "KVM_SET_USER_MEMORY_REGION"


def test_set_user_memory_region_unaligned_is_einval(vm, memory):
    with pytest.raises(KvmError) as info:
        vm.set_user_memory_region(0, 0x123, 0x1000, _hva(memory))
    assert info.value.errno == errno.EINVAL


def test_create_vcpu(vcpu, vm):
    assert isinstance(vcpu, Vcpu)
    assert vcpu.fd >= 0 and vcpu.vcpu_id == 0
    assert vcpu.run_struct is not None and vcpu.regs is not None


def test_regs_round_trip(vcpu):
    regs = vcpu.get_regs()
    names = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")
    values = {name: 0x0101_0101_0101_0101 * (i + 1) for i, name in enumerate(names)}
    for name, value in values.items():
        setattr(regs, name, value)
    regs.rflags = x86.X86_EFLAGS_FIXED | x86.X86_EFLAGS_CF
    vcpu.set_regs(regs)
    back = vcpu.get_regs()
    for name, value in values.items():
        assert getattr(back, name) == value, name
    assert back.rflags == x86.X86_EFLAGS_FIXED | x86.X86_EFLAGS_CF


def test_sregs_round_trip(vcpu):
    sregs = vcpu.get_sregs()
    sregs.cr3 = 0x5000
    sregs.gdt.base = 0x1234_5000
    sregs.gdt.limit = 0x7F
    sregs.idt.base = 0x6789_0000
    sregs.idt.limit = 0xFFF
    sregs.cs.selector = 0x10
    sregs.ds.selector = 0x18
    sregs.fs.base = 0x7000_0000
    vcpu.set_sregs(sregs)
    back = vcpu.get_sregs()
    assert back.cr3 == 0x5000
    assert (back.gdt.base, back.gdt.limit) == (0x1234_5000, 0x7F)
    assert (back.idt.base, back.idt.limit) == (0x6789_0000, 0xFFF)
    assert back.cs.selector == 0x10
    assert back.ds.selector == 0x18
    assert back.fs.base == 0x7000_0000


def test_msrs_round_trip(vcpu):
    value = 0xFFFF_FFFF_8123_4560
    vcpu.set_msrs({x86.MSR_LSTAR: value, x86.MSR_KERNEL_GS_BASE: 0x1000})
    got = vcpu.get_msrs([x86.MSR_LSTAR, x86.MSR_KERNEL_GS_BASE])
    assert got == {x86.MSR_LSTAR: value, x86.MSR_KERNEL_GS_BASE: 0x1000}


def test_set_msrs_refused_msr_is_named(vcpu):
    with pytest.raises(KvmError) as info:
        vcpu.set_msrs({x86.MSR_LSTAR: 0, 0xDEAD_0000: 1})
    assert info.value.errno == errno.EINVAL
    assert "0xdead0000" in str(info.value)


def test_cpuid_round_trip(kvm, vcpu):
    cpuid = kvm.get_supported_cpuid()
    assert cpuid.nent > 0
    vcpu.set_cpuid2(cpuid)


def test_fpu_and_xsave(vcpu):
    # KVM_GET_FPU/KVM_SET_FPU ignore mxcsr (arch/x86/kvm/x86.c copies only
    # the x87 fields and xmm registers), so round-trip the x87 control word.
    fpu = vcpu.get_fpu()
    assert fpu.fcw == 0x37F  # reset value
    fpu.fcw = 0x27F  # double precision
    fpu.xmm[3][5] = 0xA5
    vcpu.set_fpu(fpu)
    back = vcpu.get_fpu()
    assert back.fcw == 0x27F
    assert back.xmm[3][5] == 0xA5
    data = vcpu.get_xsave()
    assert len(data) == 4096
    assert struct.unpack_from("<I", data, 24)[0] == 0x1F80  # MXCSR at byte 24
    patched = bytearray(data)
    struct.pack_into("<I", patched, 24, 0x7F80)  # round toward zero
    # XSTATE_BV (byte 512): MXCSR is taken only with the SSE bit set.
    xstate_bv = struct.unpack_from("<Q", patched, 512)[0]
    struct.pack_into("<Q", patched, 512, xstate_bv | x86.XFEATURE_MASK_SSE)
    vcpu.set_xsave(bytes(patched))
    assert struct.unpack_from("<I", vcpu.get_xsave(), 24)[0] == 0x7F80


# -- closed fds ------------------------------------------------------------

def _assert_ebadf(info, ioctl):
    assert isinstance(info.value, KvmError)
    assert info.value.errno == errno.EBADF
    assert info.value.ioctl == ioctl
    assert ioctl in str(info.value)


def test_faulty_kvm_fd():
    kvm = Kvm()
    old_fd = kvm.fd
    kvm.close()
    assert kvm.fd == -1
    with pytest.raises(KvmError) as info:
        kvm.get_api_version()
    _assert_ebadf(info, "KVM_GET_API_VERSION")
    stale = Kvm.__new__(Kvm)  # Kvm() would open a new fd
    stale.fd = old_fd
    for call, name in [(lambda: stale.check_extension(lib.KVM_CAP_SYNC_REGS), "KVM_CHECK_EXTENSION"),
                       (stale.create_vm, "KVM_CREATE_VM"),
                       (stale.get_vcpu_mmap_size, "KVM_GET_VCPU_MMAP_SIZE"),
                       (stale.get_supported_cpuid, "KVM_GET_SUPPORTED_CPUID")]:
        with pytest.raises(KvmError) as info:
            call()
        _assert_ebadf(info, name)


def test_faulty_vm_fd(kvm, memory):
    vm = kvm.create_vm()
    old_fd = vm.fd
    vm.close()
    stale = Vm(kvm, old_fd)
    for call, name in [
        (lambda: stale.create_vcpu(0), "KVM_CREATE_VCPU"),
        (lambda: stale.set_user_memory_region(0, 0, MEM_SIZE, _hva(memory)), "KVM_SET_USER_MEMORY_REGION"),
        (lambda: stale.check_extension(lib.KVM_CAP_SYNC_REGS), "KVM_CHECK_EXTENSION"),
        (lambda: stale.set_tss_addr(0xFFFB_D000), "KVM_SET_TSS_ADDR"),
    ]:
        with pytest.raises(KvmError) as info:
            call()
        _assert_ebadf(info, name)


def test_faulty_vcpu_fd(kvm, vm, memory):
    vm.set_user_memory_region(0, 0, MEM_SIZE, _hva(memory))
    vcpu = vm.create_vcpu(0)
    old_fd = vcpu.fd
    vcpu.close()
    assert vcpu.fd == -1
    with pytest.raises(KvmError) as info:
        vcpu.get_regs()
    _assert_ebadf(info, "KVM_GET_REGS")
    # A Vcpu() maps kvm_run at construction, so build the stale wrapper by hand.
    stale = Vcpu.__new__(Vcpu)
    stale.vm, stale.fd, stale.vcpu_id = vm, old_fd, 0
    regs = ffi.new("struct kvm_regs *")
    sregs = ffi.new("struct kvm_sregs *")
    for call, name in [
        (stale.get_regs, "KVM_GET_REGS"),
        (lambda: stale.set_regs(regs), "KVM_SET_REGS"),
        (stale.get_sregs, "KVM_GET_SREGS"),
        (lambda: stale.set_sregs(sregs), "KVM_SET_SREGS"),
        (lambda: stale.set_msrs({x86.MSR_LSTAR: 0}), "KVM_SET_MSRS"),
        (lambda: stale.get_msrs([x86.MSR_LSTAR]), "KVM_GET_MSRS"),
        (stale.get_fpu, "KVM_GET_FPU"),
        (stale.get_xsave, "KVM_GET_XSAVE"),
        (lambda: stale.set_xcrs({0: 3}), "KVM_SET_XCRS"),
        (stale.run, "KVM_RUN"),
    ]:
        with pytest.raises(KvmError) as info:
            call()
        _assert_ebadf(info, name)


def test_vcpu_on_closed_fd_cannot_be_constructed(vm, memory):
    vm.set_user_memory_region(0, 0, MEM_SIZE, _hva(memory))
    vcpu = vm.create_vcpu(0)
    old_fd = vcpu.fd
    vcpu.close()
    with pytest.raises(OSError) as info:
        Vcpu(vm, old_fd, 0)
    assert info.value.errno == errno.EBADF
