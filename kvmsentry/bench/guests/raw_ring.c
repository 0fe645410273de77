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
 * The VM is raw_vm.h's, plus the request page at 0xa000: state (u32:
 * 1 posted by the guest, 2 answered, 3 "stop: exit now"), the call
 * number at +8, the answer at +16.
 */
#include "raw_vm.h"
#include <pthread.h>

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

/* The host side: answer `calls` posts, then tell the guest to stop. */
static void *poller(void *arg) {
    (void)arg;
    double t0 = 0;
    for (long i = -100; i < calls; i++) {   /* 100 warm-up calls */
        while (__atomic_load_n(state, __ATOMIC_ACQUIRE) != 1)
            __builtin_ia32_pause();
        if (i == 0) t0 = raw_vm_now_ns();
        request[2] = request[1] + 1000;     /* the answer */
        __atomic_store_n(state, 2, __ATOMIC_RELEASE);
    }
    elapsed = raw_vm_now_ns() - t0;
    while (__atomic_load_n(state, __ATOMIC_ACQUIRE) != 1)
        __builtin_ia32_pause();
    __atomic_store_n(state, 3, __ATOMIC_RELEASE);
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    struct raw_vm vm = raw_vm_create(stub, sizeof stub);
    uint8_t *mem = vm.mem;
    int vcpu = vm.vcpu;
    struct kvm_run *run = vm.run;

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
