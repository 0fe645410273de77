/*
 * raw_exit.c: the physical floor of kvmsentry's trap path, in C.
 *
 * One vCPU runs a ring-3 loop of `syscall`; the LSTAR stub (ring 0) does
 * `out` to a port, KVM_RUN returns KVM_EXIT_IO, this program writes rax
 * through the kvm_run sync-regs area and re-enters; the stub returns to
 * ring 3 with `iretq`. That is kvmsentry's path without Python, so
 * kvmsentry's per-syscall cost divided by this one is the overhead of the
 * sentry itself. Usage: raw_exit N  -> prints "ns_per_exit <float>".
 *
 * The VM (layout, the ring-3 getpid loop, LSTAR) is raw_vm.h's.
 */
#include "raw_vm.h"

/* out %al,$0x10; then iretq through the frame this program wrote at 0xe000-40 */
static const uint8_t stub[] = {
    0xe6, 0x10,                   /* out %al, $0x10 */
    0x48, 0xcf,                   /* iretq */
};

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    struct raw_vm vm = raw_vm_create(stub, sizeof stub);
    uint8_t *mem = vm.mem;
    int vcpu = vm.vcpu;
    struct kvm_run *run = vm.run;

    run->kvm_valid_regs = KVM_SYNC_X86_REGS;
    uint64_t *frame = (uint64_t *)(mem + 0xe000 - 40);
    double t0 = 0;
    for (long i = -100; i < n; i++) {   /* 100 warm-up exits */
        if (i == 0) t0 = raw_vm_now_ns();
        if (ioctl(vcpu, KVM_RUN, 0) < 0) DIE("KVM_RUN");
        if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x10) {
            fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
            return 1;
        }
        struct kvm_regs *regs = &run->s.regs.regs;
        frame[0] = regs->rcx; frame[1] = 0x33; frame[2] = regs->r11; frame[3] = regs->rsp; frame[4] = 0x2b;
        regs->rsp = 0xe000 - 40;
        regs->rax = 1;
        run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
    }
    printf("ns_per_exit %.1f\n", (raw_vm_now_ns() - t0) / n);
    return 0;
}
