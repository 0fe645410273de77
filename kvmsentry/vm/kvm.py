"""Kvm, Vm and Vcpu: one class per KVM file descriptor, one method per ioctl.

The source of truth is Documentation/virt/kvm/api.rst in the Linux tree;
each method names the ioctl it wraps. Numbers and struct layouts come from
<linux/kvm.h> through the cffi module built by ``_kvm_build.py``.

Errors: a failing ioctl raises :class:`KvmError` carrying the ioctl's name
and errno. Opening /dev/kvm raises :class:`KvmUnavailable` with a message
meant for a person ("this machine has no KVM: ...").
"""

from __future__ import annotations

import errno
import mmap
import os

from kvmsentry.vm._kvm import ffi, lib

KVM_DEVICE = "/dev/kvm"


class KvmError(OSError):
    """A KVM ioctl failed. ``ioctl`` is its name, ``errno`` the host errno."""

    def __init__(self, ioctl: str, err: int):
        super().__init__(err, f"{ioctl}: {os.strerror(err)}")
        self.ioctl = ioctl


class KvmUnavailable(RuntimeError):
    """KVM cannot be used on this machine; the message says why and what to do."""


def _check(name: str, result: int) -> int:
    if result < 0:
        raise KvmError(name, ffi.errno)
    return result


class Kvm:
    """The /dev/kvm system file descriptor.

    Raises KvmUnavailable when /dev/kvm is missing, not openable, or of an
    API version other than 12 (KVM_GET_API_VERSION).
    """

    def __init__(self, path: str = KVM_DEVICE):
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KvmUnavailable(
                f"this machine has no KVM: {path} does not exist (enable "
                "virtualization in the firmware or the cloud instance, and "
                "load kvm_intel, kvm_amd or kvm_pvm)") from None
        except PermissionError:
            raise KvmUnavailable(
                f"no permission to open {path}: add your user to group kvm "
                f"(sudo usermod -aG kvm $USER, then log in again) or run as root"
            ) from None
        except OSError as e:
            raise KvmUnavailable(f"cannot open {path}: {e.strerror}") from None
        try:
            version = self.get_api_version()
        except KvmError as e:
            self.close()
            raise KvmUnavailable(f"{path} is not a KVM device (KVM_GET_API_VERSION: {os.strerror(e.errno)})") from None
        if version != lib.KVM_API_VERSION:
            raise KvmUnavailable(f"{path} speaks KVM API {version}, not {lib.KVM_API_VERSION}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def get_api_version(self) -> int:
        """Wraps KVM_GET_API_VERSION (api.rst 4.1)."""
        return _check("KVM_GET_API_VERSION", lib.ioctl(self.fd, lib.KVM_GET_API_VERSION, ffi.cast("int", 0)))

    def check_extension(self, cap: int) -> int:
        """Wraps KVM_CHECK_EXTENSION (api.rst 4.4): 0 when ``cap`` is absent."""
        return _check("KVM_CHECK_EXTENSION", lib.ioctl(self.fd, lib.KVM_CHECK_EXTENSION, ffi.cast("long", cap)))

    def get_vcpu_mmap_size(self) -> int:
        """Wraps KVM_GET_VCPU_MMAP_SIZE (api.rst 4.5): bytes of the kvm_run mapping."""
        return _check("KVM_GET_VCPU_MMAP_SIZE", lib.ioctl(self.fd, lib.KVM_GET_VCPU_MMAP_SIZE, ffi.cast("int", 0)))

    def get_supported_cpuid(self, max_entries: int = 256):
        """Wraps KVM_GET_SUPPORTED_CPUID (api.rst 4.46).

        Returns a cffi ``struct kvm_cpuid2 *`` with ``nent`` entries, ready
        to pass to :meth:`Vcpu.set_cpuid2`.
        """
        cpuid = ffi.new("struct kvm_cpuid2 *", {"nent": max_entries, "entries": max_entries})
        _check("KVM_GET_SUPPORTED_CPUID", lib.ioctl(self.fd, lib.KVM_GET_SUPPORTED_CPUID, cpuid))
        return cpuid

    def create_vm(self) -> "Vm":
        """Wraps KVM_CREATE_VM (api.rst 4.2)."""
        fd = _check("KVM_CREATE_VM", lib.ioctl(self.fd, lib.KVM_CREATE_VM, ffi.cast("long", 0)))
        return Vm(self, fd)

    def require(self, cap: int, name: str) -> None:
        """Raise KvmUnavailable naming ``name`` when the capability is absent."""
        if not self.check_extension(cap):
            raise KvmUnavailable(f"this KVM lacks the capability {name}, which kvmsentry needs")


class Vm:
    """A VM file descriptor (from KVM_CREATE_VM)."""

    def __init__(self, kvm: Kvm, fd: int):
        self.kvm = kvm
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def check_extension(self, cap: int) -> int:
        """Wraps KVM_CHECK_EXTENSION on the VM fd (api.rst 4.4)."""
        return _check("KVM_CHECK_EXTENSION", lib.ioctl(self.fd, lib.KVM_CHECK_EXTENSION, ffi.cast("long", cap)))

    def set_user_memory_region(self, slot: int, guest_phys_addr: int, memory_size: int,
                               userspace_addr: int, flags: int = 0) -> None:
        """Wraps KVM_SET_USER_MEMORY_REGION (api.rst 4.35).

        ``guest_phys_addr``, ``memory_size`` and ``userspace_addr`` are
        bytes, page aligned; ``userspace_addr`` is a host virtual address.
        """
        region = ffi.new("struct kvm_userspace_memory_region *", {
            "slot": slot, "flags": flags, "guest_phys_addr": guest_phys_addr,
            "memory_size": memory_size, "userspace_addr": userspace_addr})
        _check("KVM_SET_USER_MEMORY_REGION", lib.ioctl(self.fd, lib.KVM_SET_USER_MEMORY_REGION, region))

    def set_tss_addr(self, gpa: int) -> None:
        """Wraps KVM_SET_TSS_ADDR (api.rst 4.48); needed on Intel hosts only."""
        _check("KVM_SET_TSS_ADDR", lib.ioctl(self.fd, lib.KVM_SET_TSS_ADDR, ffi.cast("long", gpa)))

    def create_vcpu(self, vcpu_id: int) -> "Vcpu":
        """Wraps KVM_CREATE_VCPU (api.rst 4.7) and maps its kvm_run page."""
        fd = _check("KVM_CREATE_VCPU", lib.ioctl(self.fd, lib.KVM_CREATE_VCPU, ffi.cast("long", vcpu_id)))
        return Vcpu(self, fd, vcpu_id)


class ExitIo:
    """KVM_EXIT_IO: ``port``, ``direction`` (KVM_EXIT_IO_IN/OUT), ``size``
    bytes. Immutable by convention (one instance per kind is reused);
    equal and hashed by its fields."""

    __slots__ = ("port", "direction", "size")

    def __init__(self, port: int, direction: int, size: int):
        self.port = port
        self.direction = direction
        self.size = size

    def _key(self) -> tuple:
        return (self.port, self.direction, self.size)

    def __eq__(self, other):
        return self._key() == other._key() if other.__class__ is ExitIo else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"ExitIo(port={self.port:#x}, direction={self.direction}, size={self.size})"


class ExitOther:
    """Any other exit: ``reason`` is the KVM_EXIT_* number, ``detail`` text.
    Equal and hashed by its fields."""

    __slots__ = ("reason", "detail")

    def __init__(self, reason: int, detail: str = ""):
        self.reason = reason
        self.detail = detail

    def __eq__(self, other):
        if other.__class__ is not ExitOther:
            return NotImplemented
        return (self.reason, self.detail) == (other.reason, other.detail)

    def __hash__(self) -> int:
        return hash((self.reason, self.detail))

    def __repr__(self) -> str:
        return f"ExitOther(reason={self.reason}, detail={self.detail!r})"


# ExitIo values are immutable: one instance per (port, direction, size),
# so the hot path allocates nothing.
_IO_EXITS: dict[tuple[int, int, int], ExitIo] = {}

EXIT_NAMES = {getattr(lib, n): n for n in dir(lib) if n.startswith("KVM_EXIT_") and n not in ("KVM_EXIT_IO_IN", "KVM_EXIT_IO_OUT")}


class Vcpu:
    """A vCPU file descriptor with its ``kvm_run`` mapping.

    ``run_struct`` is the mapped ``struct kvm_run``; ``sync`` points at its
    ``s.regs`` (KVM_CAP_SYNC_REGS), so that the hot path reads and writes
    general registers without KVM_GET_REGS/KVM_SET_REGS (api.rst 5,
    "kvm_valid_regs"/"kvm_dirty_regs").
    """

    def __init__(self, vm: Vm, fd: int, vcpu_id: int):
        self.vm = vm
        self.fd = fd
        self.vcpu_id = vcpu_id
        size = vm.kvm.get_vcpu_mmap_size()
        self._run_map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.run_struct = ffi.cast("struct kvm_run *", ffi.from_buffer(self._run_map))
        self.io = lib.kvmsentry_run_io_of(self.run_struct)
        self.sync = lib.kvmsentry_run_sync_regs_of(self.run_struct)
        self.regs = self.sync.regs

    def close(self) -> None:
        if self.fd >= 0:
            self.run_struct = self.io = self.sync = self.regs = None
            self._run_map.close()
            os.close(self.fd)
            self.fd = -1

    # -- registers ---------------------------------------------------
    def get_regs(self):
        """Wraps KVM_GET_REGS (api.rst 4.11): a new ``struct kvm_regs *``."""
        regs = ffi.new("struct kvm_regs *")
        _check("KVM_GET_REGS", lib.ioctl(self.fd, lib.KVM_GET_REGS, regs))
        return regs

    def set_regs(self, regs) -> None:
        """Wraps KVM_SET_REGS (api.rst 4.12)."""
        _check("KVM_SET_REGS", lib.ioctl(self.fd, lib.KVM_SET_REGS, regs))

    def get_sregs(self):
        """Wraps KVM_GET_SREGS (api.rst 4.13): a new ``struct kvm_sregs *``."""
        sregs = ffi.new("struct kvm_sregs *")
        _check("KVM_GET_SREGS", lib.ioctl(self.fd, lib.KVM_GET_SREGS, sregs))
        return sregs

    def get_vcpu_events(self):
        """Wraps KVM_GET_VCPU_EVENTS (api.rst 4.31): a new ``struct kvm_vcpu_events *``."""
        events = ffi.new("struct kvm_vcpu_events *")
        _check("KVM_GET_VCPU_EVENTS", lib.ioctl(self.fd, lib.KVM_GET_VCPU_EVENTS, events))
        return events

    def set_sregs(self, sregs) -> None:
        """Wraps KVM_SET_SREGS (api.rst 4.14)."""
        _check("KVM_SET_SREGS", lib.ioctl(self.fd, lib.KVM_SET_SREGS, sregs))

    def set_cpuid2(self, cpuid) -> None:
        """Wraps KVM_SET_CPUID2 (api.rst 4.73); ``cpuid`` from get_supported_cpuid."""
        _check("KVM_SET_CPUID2", lib.ioctl(self.fd, lib.KVM_SET_CPUID2, cpuid))

    def set_msrs(self, msrs: dict[int, int]) -> None:
        """Wraps KVM_SET_MSRS (api.rst 4.19); raises KvmError(EINVAL) naming a refused MSR."""
        items = list(msrs.items())
        buf = ffi.new("struct kvm_msrs *", {"nmsrs": len(items), "entries": len(items)})
        for i, (index, value) in enumerate(items):
            buf.entries[i].index = index
            buf.entries[i].data = value
        done = _check("KVM_SET_MSRS", lib.ioctl(self.fd, lib.KVM_SET_MSRS, buf))
        if done != len(items):
            raise KvmError(f"KVM_SET_MSRS (MSR {items[done][0]:#x})", errno.EINVAL)

    def get_msrs(self, indices: list[int]) -> dict[int, int]:
        """Wraps KVM_GET_MSRS (api.rst 4.18)."""
        buf = ffi.new("struct kvm_msrs *", {"nmsrs": len(indices), "entries": len(indices)})
        for i, index in enumerate(indices):
            buf.entries[i].index = index
        done = _check("KVM_GET_MSRS", lib.ioctl(self.fd, lib.KVM_GET_MSRS, buf))
        return {buf.entries[i].index: buf.entries[i].data for i in range(done)}

    def set_xcrs(self, xcrs: dict[int, int]) -> None:
        """Wraps KVM_SET_XCRS (api.rst 4.99): e.g. {0: XCR0 value}."""
        buf = ffi.new("struct kvm_xcrs *")
        buf.nr_xcrs = len(xcrs)
        for i, (xcr, value) in enumerate(xcrs.items()):
            buf.xcrs[i].xcr = xcr
            buf.xcrs[i].value = value
        _check("KVM_SET_XCRS", lib.ioctl(self.fd, lib.KVM_SET_XCRS, buf))

    def get_xsave(self) -> bytes:
        """Wraps KVM_GET_XSAVE (api.rst 4.96): the 4 KiB legacy XSAVE area."""
        buf = ffi.new("struct kvm_xsave *")
        _check("KVM_GET_XSAVE", lib.ioctl(self.fd, lib.KVM_GET_XSAVE, buf))
        return bytes(ffi.buffer(buf))

    def set_xsave(self, data: bytes) -> None:
        """Wraps KVM_SET_XSAVE (api.rst 4.97)."""
        buf = ffi.new("struct kvm_xsave *")
        ffi.memmove(buf, data, min(len(data), ffi.sizeof(buf[0])))
        _check("KVM_SET_XSAVE", lib.ioctl(self.fd, lib.KVM_SET_XSAVE, buf))

    def get_tsc_khz(self) -> int:
        """Wraps KVM_GET_TSC_KHZ (api.rst 4.56): the guest TSC frequency in kHz."""
        return _check("KVM_GET_TSC_KHZ", lib.ioctl(self.fd, lib.KVM_GET_TSC_KHZ, ffi.cast("int", 0)))

    def get_fpu(self):
        """Wraps KVM_GET_FPU (api.rst 4.22)."""
        buf = ffi.new("struct kvm_fpu *")
        _check("KVM_GET_FPU", lib.ioctl(self.fd, lib.KVM_GET_FPU, buf))
        return buf

    def set_fpu(self, fpu) -> None:
        """Wraps KVM_SET_FPU (api.rst 4.23)."""
        _check("KVM_SET_FPU", lib.ioctl(self.fd, lib.KVM_SET_FPU, fpu))

    # -- running -----------------------------------------------------
    def run(self):
        """Wraps KVM_RUN (api.rst 4.10), without the GIL held.

        Returns ``ExitIo`` or ``ExitOther`` for the exit. A run interrupted
        by a host signal (or immediate_exit) returns ExitOther(KVM_EXIT_INTR).
        Other failures raise KvmError.
        """
        if lib.kvmsentry_run_vcpu(self.fd) < 0:
            err = ffi.errno
            if err == errno.EINTR:
                self.run_struct.immediate_exit = 0
                return ExitOther(lib.KVM_EXIT_INTR)
            raise KvmError("KVM_RUN", err)
        reason = self.run_struct.exit_reason
        if reason == lib.KVM_EXIT_IO:
            io = self.io
            key = (io.port, io.direction, io.size)
            exit_ = _IO_EXITS.get(key)
            if exit_ is None:
                exit_ = _IO_EXITS[key] = ExitIo(*key)
            return exit_
        return ExitOther(reason, self.describe_exit(reason))

    def describe_exit(self, reason: int) -> str:
        """A one-line description of a non-IO exit for error reports."""
        name = EXIT_NAMES.get(reason, f"exit {reason}")
        if reason == lib.KVM_EXIT_INTERNAL_ERROR:
            internal = lib.kvmsentry_run_internal_of(self.run_struct)
            data = " ".join(f"{internal.data[i]:#x}" for i in range(min(internal.ndata, 16)))
            return f"{name} suberror={internal.suberror} data=[{data}]"
        if reason == lib.KVM_EXIT_FAIL_ENTRY:
            fail = lib.kvmsentry_run_fail_entry_of(self.run_struct)
            return f"{name} hardware_entry_failure_reason={fail.hardware_entry_failure_reason:#x}"
        return name
