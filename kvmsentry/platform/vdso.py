"""The vDSO and its vvar page: time inside the guest without a VM exit.

guest/vdso.c, built into vdso64.elf (package data), answers clock_gettime,
gettimeofday and time from the TSC, which guest ring 3 reads natively
(rdtsc does not exit, under PVM or hardware KVM). The platform maps the
image and a read-only data page below it into every address space; the
kernel passes the image's address as AT_SYSINFO_EHDR (Linux:
arch/x86/entry/vdso/, Documentation/ABI/stable/vdso).

The data page (``VVAR`` below, ``struct vvar_data`` in vdso.c) holds one
calibration taken when the VM starts: a guest TSC reading and the host
clocks at that instant, and the TSC rate from KVM_GET_TSC_KHZ. The
guest's clocks are then exact to the rate's precision (kHz: < 1 ppm).
The sentry's own clock_gettime syscall keeps reading the host clocks; the
two agree to within the calibration's bracket (a few µs).
"""

from __future__ import annotations

import os
import struct
import time

from kvmsentry.loader.elf import sections_and_symbols
from kvmsentry.vm.x86 import MSR_IA32_TSC, PAGE_SIZE

# struct vvar_data (guest/vdso.c): magic, tsc_base, monotonic_ns,
# realtime_ns, boottime_ns, mult, shift.
VVAR = struct.Struct("<QQQQQII")
VVAR_MAGIC = 0x4F5344564D53564B  # b"KVMSVDSO"
CLOCK_BOOTTIME = 7


def tsc_scale(tsc_khz: int) -> tuple[int, int]:
    """(mult, shift) with ns = cycles * mult >> shift, mult fitting 32 bits."""
    shift = 32
    while True:
        mult = round((10**9 << shift) / (tsc_khz * 1000))
        if mult < 1 << 32:
            return mult, shift
        shift -= 1


class Vdso:
    """The vDSO image and the vvar page, each in guest frames shared by every process.

    ``frames(vvar_gva)`` gives {page number: frame} for the vvar page at
    ``vvar_gva`` and the image right above it, for MemoryManager.share_pages.
    """

    def __init__(self, memory):
        path = os.path.join(os.path.dirname(__file__), "vdso64.elf")
        with open(path, "rb") as f:
            self.image = f.read()
        self.memory = memory
        self.image_pages = (len(self.image) + PAGE_SIZE - 1) // PAGE_SIZE
        self.vvar_gpa = memory.alloc_frame()
        self.image_gpas = []
        for page in range(self.image_pages):
            gpa = memory.alloc_frame()
            memory.write(gpa, self.image[page * PAGE_SIZE:(page + 1) * PAGE_SIZE])
            self.image_gpas.append(gpa)
        self.calibrated = False
        # The exit-free getpid family's ring-3 trampoline (guest/vdso.c):
        # its offset in the image, its size, and its instruction marks.
        symbols = sections_and_symbols(path)[1]
        start = symbols["__kvmsentry_fast_return"]
        self.fast_return_offset = start
        self.fast_return_size = symbols["__kvmsentry_fr_end"] - start
        self.fast_return_marks = {name: symbols["__kvmsentry_fr_" + name] - start
                                  for name in ("swapped", "flags", "sahf", "unswapped", "jump")}
        # The exit-free read(2)'s trampoline (guest/vdso.c __kvmsentry_fast_read):
        # its offset and the offsets of its marks (saved, commit, return,
        # undone, out, end), for Context.fast_read_unwind.
        start = symbols["__kvmsentry_fast_read"]
        self.fast_read_offset = start
        self.fast_read_marks = {name: symbols["__kvmsentry_frd_" + name] - start
                                for name in ("saved", "commit", "return", "undone", "out", "end")}

    @property
    def size(self) -> int:
        """Bytes of the image's mapping (whole pages)."""
        return self.image_pages * PAGE_SIZE

    def calibrate(self, vcpu) -> None:
        """Fill the vvar page from ``vcpu``'s TSC (KVM_GET_MSRS, KVM_GET_TSC_KHZ).

        Takes the narrowest of a few host-clock brackets around one guest
        TSC read. Until this runs, the vDSO falls back to the syscall.
        """
        khz = vcpu.get_tsc_khz()
        best = None
        for _ in range(5):
            before = time.monotonic_ns()
            tsc = vcpu.get_msrs([MSR_IA32_TSC])[MSR_IA32_TSC]
            after = time.monotonic_ns()
            if best is None or after - before < best[0]:
                best = (after - before, tsc, (before + after) // 2)
        _, tsc, monotonic = best
        offset_real = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.monotonic_ns()
        offset_boot = time.clock_gettime_ns(CLOCK_BOOTTIME) - time.monotonic_ns()
        mult, shift = tsc_scale(khz)
        self.memory.write(self.vvar_gpa, VVAR.pack(VVAR_MAGIC, tsc, monotonic, monotonic + offset_real,
                                                   monotonic + offset_boot, mult, shift))
        self.calibrated = True

    def frames(self, vvar_gva: int) -> dict[int, int]:
        vpn = vvar_gva // PAGE_SIZE
        frames = {vpn: self.vvar_gpa}
        for i, gpa in enumerate(self.image_gpas):
            frames[vpn + 1 + i] = gpa
        return frames
