/*
 * raw_ring.c: the physical floor of kvmsentry's ring path
 * (--syscall-path=ring), in C: raw_exit.c's VM, but the LSTAR stub
 * (ring 0, on a U=1 page as PVM requires for native execution) posts
 * the call in a shared page and spins with `pause` while a host thread
 * polls the page, writes the answer and releases it; the stub returns
 * to ring 3 with `iretq`. No KVM_RUN return per call. kvmsentry's ring
 * path per call divided by this one is the overhead of the sentry on
 * that path. Needs two free cores to mean anything (the vCPU spins while
 * the poller runs). Usage: raw_ring N  -> prints "ns_per_ring <float>".
 *
 * Layout as raw_exit.c, plus the request page at 0xa000: state (u32:
 * 1 posted by the guest, 2 answered, 3 "stop: exit now"), the call
 * number at +8, the answer at +16.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <pthread.h>
#include <time.h>

#define DIE(msg) do { perror(msg); exit(1); } while (0)
#define MEM (2u << 20)

static const uint8_t user_code[] = {
    0xb8, 0x27, 0x00, 0x00, 0x00, /* mov $39, %eax */
    0x0f, 0x05,                   /* syscall */
    0xeb, 0xf7,                   /* jmp back */
};
/* Post, spin, take the answer, iretq through a frame built on 0xe000. */
static const uint8_t stub[] = {
    0x48, 0x89, 0x04, 0x25, 0x08, 0xa0, 0x00, 0x00,       /* mov %rax, 0xa008 */
    0xc7, 0x04, 0x25, 0x00, 0xa0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* movl $1, 0xa000 */
    0xf3, 0x90,                                           /* spin: pause */
    0x8b, 0x04, 0x25, 0x00, 0xa0, 0x00, 0x00,             /* mov 0xa000, %eax */
    0x83, 0xf8, 0x01,                                     /* cmp $1, %eax */
    0x74, 0xf2,                                           /* je spin */
    0x83, 0xf8, 0x03,                                     /* cmp $3, %eax */
    0x75, 0x02,                                           /* jne answered */
    0xe6, 0x10,                                           /* out %al, $0x10 (stop) */
    0x48, 0x8b, 0x04, 0x25, 0x10, 0xa0, 0x00, 0x00,       /* answered: mov 0xa010, %rax */
    0x48, 0x89, 0x0c, 0x25, 0xd8, 0xdf, 0x00, 0x00,       /* mov %rcx, 0xdfd8 (rip) */
    0x48, 0xc7, 0x04, 0x25, 0xe0, 0xdf, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00, /* movq $0x33, 0xdfe0 */
    0x4c, 0x89, 0x1c, 0x25, 0xe8, 0xdf, 0x00, 0x00,       /* mov %r11, 0xdfe8 (rflags) */
    0x48, 0x89, 0x24, 0x25, 0xf0, 0xdf, 0x00, 0x00,       /* mov %rsp, 0xdff0 */
    0x48, 0xc7, 0x04, 0x25, 0xf8, 0xdf, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, /* movq $0x2b, 0xdff8 */
    0x48, 0xc7, 0xc4, 0xd8, 0xdf, 0x00, 0x00,             /* mov $0xdfd8, %rsp */
    0x48, 0xcf,                                           /* iretq */
};

static volatile uint32_t *state;
static volatile uint64_t *request;
static long calls;
static double elapsed;

static double now(void);

/* The host side: answer `calls` posts, then tell the guest to stop. */
static void *poller(void *arg) {
    (void)arg;
    double t0 = 0;
    for (long i = -100; i < calls; i++) {   /* 100 warm-up calls */
        while (__atomic_load_n(state, __ATOMIC_ACQUIRE) != 1)
            __builtin_ia32_pause();
        if (i == 0) t0 = now();
        request[2] = request[1] + 1000;     /* the answer */
        __atomic_store_n(state, 2, __ATOMIC_RELEASE);
    }
    elapsed = now() - t0;
    while (__atomic_load_n(state, __ATOMIC_ACQUIRE) != 1)
        __builtin_ia32_pause();
    __atomic_store_n(state, 3, __ATOMIC_RELEASE);
    return NULL;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code) {
    memset(s, 0, sizeof *s);
    s->limit = 0xffffffff; s->selector = sel; s->type = type; s->present = 1;
    s->dpl = sel & 3; s->s = 1; s->l = code; s->db = !code; s->g = 1;
}

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) DIE("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) DIE("KVM_CREATE_VM");
    uint8_t *mem = mmap(0, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0, .memory_size = MEM,
                                            .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) DIE("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) DIE("KVM_CREATE_VCPU");
    struct kvm_run *run = mmap(0, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = {.c.nent = 256};
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0 || ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0) DIE("CPUID");

    uint64_t *pml4 = (uint64_t *)(mem + 0x1000), *pdpt = (uint64_t *)(mem + 0x2000), *pd = (uint64_t *)(mem + 0x3000);
    pml4[0] = 0x2000 | 7; pdpt[0] = 0x3000 | 7; pd[0] = 0 | 0x87; /* P|RW|US, PS */
    uint64_t *gdt = (uint64_t *)(mem + 0x4000);
    gdt[2] = 0x00af9b000000ffffull; gdt[3] = 0x00cf93000000ffffull;
    gdt[5] = 0x00cff3000000ffffull; gdt[6] = 0x00affb000000ffffull;
    uint64_t tss = 0x5000, limit = 104 + 33 - 1;
    gdt[8] = (limit & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ull << 40) | ((tss >> 24 & 0xff) << 56);
    gdt[9] = tss >> 32;
    memset(mem + tss + 104, 0xff, 33);
    mem[tss + 104 + 2] &= ~1;               /* allow port 0x10 */
    *(uint16_t *)(mem + tss + 102) = 104;   /* I/O bitmap offset */
    memcpy(mem + 0x8000, user_code, sizeof user_code);
    memcpy(mem + 0x9000, stub, sizeof stub);

    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) DIE("KVM_GET_SREGS");
    s.cr0 = 0x80050033; s.cr3 = 0x1000; s.cr4 = 0x620; s.efer = 0xd01;
    s.gdt.base = 0x4000; s.gdt.limit = 10 * 8 - 1; s.idt.base = 0; s.idt.limit = 0;
    seg(&s.cs, 0x33, 11, 1); seg(&s.ss, 0x2b, 3, 0); s.ds = s.es = s.fs = s.gs = s.ss;
    memset(&s.tr, 0, sizeof s.tr); s.tr.base = tss; s.tr.limit = limit; s.tr.selector = 0x40; s.tr.type = 11; s.tr.present = 1;
    s.ldt.unusable = 1;
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) DIE("KVM_SET_SREGS");
    struct { struct kvm_msrs h; struct kvm_msr_entry e[3]; } msrs = {.h.nmsrs = 3};
    msrs.e[0].index = 0xC0000081; msrs.e[0].data = (0x23ull << 48) | (0x10ull << 32); /* STAR */
    msrs.e[1].index = 0xC0000082; msrs.e[1].data = 0x9000;                           /* LSTAR */
    msrs.e[2].index = 0xC0000084; msrs.e[2].data = 0x47700;                          /* SFMASK */
    if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 3) DIE("KVM_SET_MSRS");
    struct kvm_regs g = {.rip = 0x8000, .rsp = 0xf000, .rflags = 0x202};
    if (ioctl(vcpu, KVM_SET_REGS, &g) < 0) DIE("KVM_SET_REGS");

    state = (volatile uint32_t *)(mem + 0xa000);
    request = (volatile uint64_t *)(mem + 0xa000);
    calls = n;
    pthread_t th;
    if (pthread_create(&th, NULL, poller, NULL) != 0) DIE("pthread_create");
    if (ioctl(vcpu, KVM_RUN, 0) < 0) DIE("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x10) {
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    pthread_join(th, NULL);
    printf("ns_per_ring %.1f\n", elapsed / n);
    return 0;
}
