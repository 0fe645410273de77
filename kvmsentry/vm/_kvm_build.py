"""cffi builder (API mode) for the KVM ioctl interface.

Every ioctl number, capability number and struct offset used by
kvmsentry comes from the compiler reading <linux/kvm.h> here: the cdef
below declares names and the fields we touch, with ``...`` where the
compiler fills in the rest (cffi "API mode"). Nothing is typed by hand.

Built by ``pip install .`` through ``cffi_modules`` in setup.py; the
result is the extension module ``kvmsentry.vm._kvm``.
"""

import cffi

ffibuilder = cffi.FFI()

_IOCTLS = """
KVM_GET_API_VERSION KVM_CREATE_VM KVM_CHECK_EXTENSION KVM_GET_VCPU_MMAP_SIZE
KVM_GET_SUPPORTED_CPUID KVM_GET_MSR_INDEX_LIST
KVM_SET_USER_MEMORY_REGION KVM_CREATE_VCPU KVM_ENABLE_CAP KVM_SET_TSS_ADDR
KVM_SET_IDENTITY_MAP_ADDR
KVM_RUN KVM_GET_REGS KVM_SET_REGS KVM_GET_SREGS KVM_SET_SREGS
KVM_SET_CPUID2 KVM_GET_CPUID2 KVM_GET_MSRS KVM_SET_MSRS KVM_GET_XCRS KVM_SET_XCRS
KVM_GET_XSAVE KVM_SET_XSAVE KVM_GET_FPU KVM_SET_FPU KVM_GET_STATS_FD
KVM_SET_SIGNAL_MASK KVM_GET_TSC_KHZ KVM_GET_VCPU_EVENTS
""".split()

_CONSTANTS = """
KVM_API_VERSION
KVM_CAP_USER_MEMORY KVM_CAP_SYNC_REGS KVM_CAP_EXT_CPUID KVM_CAP_XCRS KVM_CAP_XSAVE
KVM_CAP_IMMEDIATE_EXIT KVM_CAP_NR_VCPUS KVM_CAP_MAX_VCPUS KVM_CAP_GET_MSR_FEATURES
KVM_CAP_X86_USER_SPACE_MSR KVM_CAP_NR_MEMSLOTS KVM_CAP_SET_TSS_ADDR KVM_CAP_GET_TSC_KHZ
KVM_SYNC_X86_REGS KVM_SYNC_X86_SREGS KVM_SYNC_X86_EVENTS
KVM_EXIT_UNKNOWN KVM_EXIT_EXCEPTION KVM_EXIT_IO KVM_EXIT_HYPERCALL KVM_EXIT_DEBUG
KVM_EXIT_HLT KVM_EXIT_MMIO KVM_EXIT_IRQ_WINDOW_OPEN KVM_EXIT_SHUTDOWN
KVM_EXIT_FAIL_ENTRY KVM_EXIT_INTR KVM_EXIT_NMI KVM_EXIT_INTERNAL_ERROR
KVM_EXIT_SYSTEM_EVENT KVM_EXIT_X86_RDMSR KVM_EXIT_X86_WRMSR
KVM_EXIT_IO_IN KVM_EXIT_IO_OUT
KVM_INTERNAL_ERROR_EMULATION KVM_INTERNAL_ERROR_SIMUL_EX
KVM_INTERNAL_ERROR_DELIVERY_EV
MAP_NORESERVE

""".split()

_CDEF = (
    "\n".join(f"#define {name} ..." for name in _IOCTLS + _CONSTANTS)
    + """
typedef int... __u8;
typedef int... __u16;
typedef int... __u32;
typedef int... __u64;

struct kvm_regs {
    __u64 rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    __u64 r8, r9, r10, r11, r12, r13, r14, r15;
    __u64 rip, rflags;
};

struct kvm_segment {
    __u64 base;
    __u32 limit;
    __u16 selector;
    __u8 type;
    __u8 present, dpl, db, s, l, g, avl;
    __u8 unusable;
    ...;
};

struct kvm_dtable {
    __u64 base;
    __u16 limit;
    ...;
};

struct kvm_sregs {
    struct kvm_segment cs, ds, es, fs, gs, ss;
    struct kvm_segment tr, ldt;
    struct kvm_dtable gdt, idt;
    __u64 cr0, cr2, cr3, cr4, cr8;
    __u64 efer;
    __u64 apic_base;
    __u64 interrupt_bitmap[...];
};

struct kvm_userspace_memory_region {
    __u32 slot;
    __u32 flags;
    __u64 guest_phys_addr;
    __u64 memory_size;
    __u64 userspace_addr;
};

struct kvm_msr_entry {
    __u32 index;
    __u64 data;
    ...;
};

struct kvm_msrs {
    __u32 nmsrs;
    struct kvm_msr_entry entries[];
    ...;
};

struct kvm_cpuid_entry2 {
    __u32 function;
    __u32 index;
    __u32 flags;
    __u32 eax;
    __u32 ebx;
    __u32 ecx;
    __u32 edx;
    ...;
};

struct kvm_cpuid2 {
    __u32 nent;
    struct kvm_cpuid_entry2 entries[];
    ...;
};

struct kvm_xcr {
    __u32 xcr;
    __u64 value;
    ...;
};

struct kvm_xcrs {
    __u32 nr_xcrs;
    __u32 flags;
    struct kvm_xcr xcrs[...];
    ...;
};

struct kvm_fpu {
    __u8 fpr[8][16];
    __u16 fcw;
    __u16 fsw;
    __u8 ftwx;
    __u16 last_opcode;
    __u64 last_ip;
    __u64 last_dp;
    __u8 xmm[16][16];
    __u32 mxcsr;
    ...;
};

struct kvm_xsave {
    __u32 region[...];
    ...;
};

struct kvm_enable_cap {
    __u32 cap;
    __u32 flags;
    __u64 args[4];
    ...;
};

/* The members of struct kvm_run's anonymous exit union that we read. */
typedef struct {
    __u8 direction;
    __u8 size;
    __u16 port;
    __u32 count;
    __u64 data_offset;
} kvmsentry_run_io;

typedef struct {
    __u32 suberror;
    __u32 ndata;
    __u64 data[16];
} kvmsentry_run_internal;

typedef struct {
    __u64 hardware_entry_failure_reason;
    __u32 cpu;
} kvmsentry_run_fail_entry;

typedef struct {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    ...;
} kvmsentry_sync_regs;

/* The events KVM holds for a vCPU (api.rst, KVM_GET_VCPU_EVENTS): an
 * exception or interrupt it has begun to deliver when KVM_RUN returned. */
struct kvm_vcpu_events {
    struct {
        __u8 injected;
        __u8 nr;
        __u8 has_error_code;
        __u8 pending;
        __u32 error_code;
    } exception;
    struct {
        __u8 injected;
        __u8 nr;
        __u8 soft;
        __u8 shadow;
    } interrupt;
    struct {
        __u8 injected;
        __u8 pending;
        __u8 masked;
        __u8 pad;
    } nmi;
    ...;
};

struct kvm_run {
    __u8 request_interrupt_window;
    __u8 immediate_exit;
    __u32 exit_reason;
    __u64 kvm_valid_regs;
    __u64 kvm_dirty_regs;
    ...;
};

kvmsentry_run_io *kvmsentry_run_io_of(struct kvm_run *run);
kvmsentry_run_internal *kvmsentry_run_internal_of(struct kvm_run *run);
kvmsentry_run_fail_entry *kvmsentry_run_fail_entry_of(struct kvm_run *run);
kvmsentry_sync_regs *kvmsentry_run_sync_regs_of(struct kvm_run *run);

int ioctl(int fd, unsigned long request, ...);
void kvmsentry_host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
int kvmsentry_run_vcpu(int fd);

/* openat2(2) for the sentry's own host lookups (kernel/vfs/hostfs.py):
 * how the sentry opens host files beneath a root it must not leave. */
#define RESOLVE_NO_MAGICLINKS ...
#define RESOLVE_NO_SYMLINKS ...
#define RESOLVE_IN_ROOT ...
struct open_how {
    __u64 flags;
    __u64 mode;
    __u64 resolve;
    ...;
};
int kvmsentry_openat2(int dirfd, const char *path, struct open_how *how);
int64_t kvmsentry_ring_poll(uint32_t *state, uint64_t spin_ns, uint32_t *stop, uint64_t *spun_ns);
int kvmsentry_ring_finish(uint32_t *state, uint32_t claimed, uint32_t bit);
int kvmsentry_ring_answer(uint32_t *state, uint32_t claimed, uint64_t *slot, uint64_t value);
double kvmsentry_pause_ns(void);
"""
)

ffibuilder.cdef(_CDEF)

ffibuilder.set_source(
    "kvmsentry.vm._kvm",
    r"""
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cpuid.h>
#include <time.h>

typedef __typeof__(((struct kvm_run *)0)->io) kvmsentry_run_io;
typedef __typeof__(((struct kvm_run *)0)->internal) kvmsentry_run_internal;
typedef __typeof__(((struct kvm_run *)0)->fail_entry) kvmsentry_run_fail_entry;
typedef struct kvm_sync_regs kvmsentry_sync_regs;

static kvmsentry_run_io *kvmsentry_run_io_of(struct kvm_run *run) { return &run->io; }
static kvmsentry_run_internal *kvmsentry_run_internal_of(struct kvm_run *run) { return &run->internal; }
static kvmsentry_run_fail_entry *kvmsentry_run_fail_entry_of(struct kvm_run *run) { return &run->fail_entry; }
static kvmsentry_sync_regs *kvmsentry_run_sync_regs_of(struct kvm_run *run) { return &run->s.regs; }

/* CPUID of the host CPU (the one guest ring 3 runs on natively under PVM). */
static void kvmsentry_host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    __cpuid_count(leaf, subleaf, out[0], out[1], out[2], out[3]);
}

/* KVM_RUN, called without the GIL (cffi releases it around every call). */
static int kvmsentry_run_vcpu(int fd) { return ioctl(fd, KVM_RUN, 0); }

/* openat2(2) by number (glibc has no wrapper); -1 and errno ENOSYS on a
 * host older than Linux 5.6. */
static int kvmsentry_openat2(int dirfd, const char *path, struct open_how *how) {
    return (int)syscall(SYS_openat2, dirfd, path, how, sizeof *how);
}

/* ns per iteration of a `pause` + load + compare loop on this CPU (the
 * ring stub's spin, guest/runtime.S ring_spin): the best of a few runs. */
static double kvmsentry_pause_ns(void) {
    volatile uint32_t word = 0;
    double best = 1e9;
    for (int run = 0; run < 5; run++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 2000; i++) {
            __builtin_ia32_pause();
            if (word == 4) break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 2000;
        if (ns < best) best = ns;
    }
    return best;
}

/* The ring path's poller (kvmsentry/kernel/ring.py), without the GIL:
 * spin on a request page's state word (a guest frame, shared with the
 * spinning vCPU) until the guest posts a call (flags exactly RING_POSTED,
 * any sequence number in the bits above RING_SEQ_SHIFT), then claim it
 * with a compare-and-swap that adds RING_CLAIMED; the guest may withdraw
 * it at the same time (lock bts of another bit): exactly one wins.
 * Returns the claimed word (> 0), 0 after spin_ns ns with no call, -1 as
 * soon as *stop is non-zero; adds the thread CPU time it spun to
 * *spun_ns. The bits are guest/runtime.S's RING_* (and layout.py's);
 * `pause` between reads, as a spin-wait should. */
static uint64_t kvmsentry_thread_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int64_t kvmsentry_ring_poll(uint32_t *state, uint64_t spin_ns, uint32_t *stop, uint64_t *spun_ns) {
    struct timespec t0, t;
    uint64_t cpu0 = kvmsentry_thread_ns();
    int64_t got = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        for (int i = 0; i < 200; i++) {
            uint32_t s = __atomic_load_n(state, __ATOMIC_ACQUIRE);
            if ((s & 0xff) == 1 && __atomic_compare_exchange_n(state, &s, s | 2, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                got = (int64_t)(s | 2);
                goto out;
            }
            __builtin_ia32_pause();
        }
        if (__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
            got = -1;
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)(t.tv_nsec - t0.tv_nsec) >= spin_ns)
            goto out;
    }
out:
    *spun_ns += kvmsentry_thread_ns() - cpu0;
    return got;
}

/* Finish the call claimed as `claimed` (kvmsentry_ring_poll's word): add
 * `bit` (RING_DONE or RING_EXIT) with a compare-and-swap, only while the
 * word is still that claim, with or without the guest's RING_WITHDRAWN
 * (16). Returns 1 when set, 0 when the word holds anything else (the
 * guest wrote over its own request page: nothing of a later call is
 * ever overwritten). The compare-and-swap orders every store before it
 * (the answer) before the guest can see the bit. */
static int kvmsentry_ring_finish(uint32_t *state, uint32_t claimed, uint32_t bit) {
    uint32_t s = __atomic_load_n(state, __ATOMIC_ACQUIRE);
    while ((s & ~16u) == claimed) {
        if (__atomic_compare_exchange_n(state, &s, s | bit, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 1;
    }
    return 0;
}

/* Answer the call claimed as `claimed` with `value`: the ring frame's RSP
 * (*slot) = value, then RING_DONE (kvmsentry_ring_finish). -1 and nothing
 * written when value is not a canonical address (iretq would fault: the
 * caller sends the call through RING_EXIT instead); else finish's 1 or 0. */
static int kvmsentry_ring_answer(uint32_t *state, uint32_t claimed, uint64_t *slot, uint64_t value) {
    if ((uint64_t)((int64_t)(value << 16) >> 16) != value)
        return -1;
    __atomic_store_n(slot, value, __ATOMIC_RELEASE);
    return kvmsentry_ring_finish(state, claimed, 4);
}
""",
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
