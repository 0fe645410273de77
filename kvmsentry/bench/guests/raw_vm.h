/*
 * raw_vm.h: the one-vCPU VM that raw_exit.c and raw_ring.c measure in.
 *
 * Guest-physical = guest-virtual, one 2 MiB page mapped U=1 (PVM runs
 * ring-0 code natively only from user-accessible pages, DESIGN.md "Notes
 * on PVM"). Layout:
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD, 0x4000 GDT, 0x5000 TSS (+ an I/O
 *   bitmap allowing port 0x10), 0x8000 user code (a loop of getpid
 *   `syscall`s), 0x9000 the LSTAR stub the caller supplies, 0xa000 free
 *   for the caller (raw_ring.c's request page), 0xe000 the top of the
 *   stub's stack, 0xf000 the top of the user stack.
 * The vCPU starts in ring 3 at 0x8000 with LSTAR = 0x9000.
 */
#ifndef RAW_VM_H
#define RAW_VM_H

#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#define DIE(msg) do { perror(msg); exit(1); } while (0)
#define RAW_VM_MEM (2u << 20)
#define RAW_VM_PORT 0x10

struct raw_vm {
    uint8_t *mem;          /* guest-physical 0 */
    int vcpu;
    struct kvm_run *run;
};

static const uint8_t raw_vm_user_code[] = {
    0xb8, 0x27, 0x00, 0x00, 0x00, /* mov $39, %eax (getpid) */
    0x0f, 0x05,                   /* syscall */
    0xeb, 0xf7,                   /* jmp back */
};

static double raw_vm_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void raw_vm_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, int code) {
    memset(s, 0, sizeof *s);
    s->limit = 0xffffffff; s->selector = sel; s->type = type; s->present = 1;
    s->dpl = sel & 3; s->s = 1; s->l = code; s->db = !code; s->g = 1;
}

/* Create the VM with `stub` (ring-0 code, at most 4 KiB) as the LSTAR entry. */
static struct raw_vm raw_vm_create(const uint8_t *stub, size_t stub_len) {
    struct raw_vm vm;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) DIE("/dev/kvm");
    int fd = ioctl(kvm, KVM_CREATE_VM, 0);
    if (fd < 0) DIE("KVM_CREATE_VM");
    vm.mem = mmap(0, RAW_VM_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm.mem == MAP_FAILED) DIE("mmap");
    struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0, .memory_size = RAW_VM_MEM,
                                            .userspace_addr = (uint64_t)vm.mem};
    if (ioctl(fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) DIE("KVM_SET_USER_MEMORY_REGION");
    vm.vcpu = ioctl(fd, KVM_CREATE_VCPU, 0);
    if (vm.vcpu < 0) DIE("KVM_CREATE_VCPU");
    vm.run = mmap(0, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, vm.vcpu, 0);
    if (vm.run == MAP_FAILED) DIE("mmap kvm_run");
    struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = {.c.nent = 256};
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0 || ioctl(vm.vcpu, KVM_SET_CPUID2, &cpuid) < 0)
        DIE("CPUID");

    uint8_t *mem = vm.mem;
    uint64_t *pml4 = (uint64_t *)(mem + 0x1000), *pdpt = (uint64_t *)(mem + 0x2000), *pd = (uint64_t *)(mem + 0x3000);
    pml4[0] = 0x2000 | 7; pdpt[0] = 0x3000 | 7; pd[0] = 0 | 0x87; /* P|RW|US, PS */
    uint64_t *gdt = (uint64_t *)(mem + 0x4000);
    gdt[2] = 0x00af9b000000ffffull; gdt[3] = 0x00cf93000000ffffull;  /* kernel CS, DS */
    gdt[5] = 0x00cff3000000ffffull; gdt[6] = 0x00affb000000ffffull;  /* user DS, CS */
    uint64_t tss = 0x5000, limit = 104 + 33 - 1;
    gdt[8] = (limit & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ull << 40) | ((tss >> 24 & 0xff) << 56);
    gdt[9] = tss >> 32;
    memset(mem + tss + 104, 0xff, 33);
    mem[tss + 104 + RAW_VM_PORT / 8] &= ~(1 << (RAW_VM_PORT % 8));  /* allow the port */
    *(uint16_t *)(mem + tss + 102) = 104;                            /* I/O bitmap offset */
    memcpy(mem + 0x8000, raw_vm_user_code, sizeof raw_vm_user_code);
    memcpy(mem + 0x9000, stub, stub_len);

    struct kvm_sregs s;
    if (ioctl(vm.vcpu, KVM_GET_SREGS, &s) < 0) DIE("KVM_GET_SREGS");
    s.cr0 = 0x80050033; s.cr3 = 0x1000; s.cr4 = 0x620; s.efer = 0xd01;
    s.gdt.base = 0x4000; s.gdt.limit = 10 * 8 - 1; s.idt.base = 0; s.idt.limit = 0;
    raw_vm_segment(&s.cs, 0x33, 11, 1);
    raw_vm_segment(&s.ss, 0x2b, 3, 0);
    s.ds = s.es = s.fs = s.gs = s.ss;
    memset(&s.tr, 0, sizeof s.tr);
    s.tr.base = tss; s.tr.limit = limit; s.tr.selector = 0x40; s.tr.type = 11; s.tr.present = 1;
    s.ldt.unusable = 1;
    if (ioctl(vm.vcpu, KVM_SET_SREGS, &s) < 0) DIE("KVM_SET_SREGS");
    struct { struct kvm_msrs h; struct kvm_msr_entry e[3]; } msrs = {.h.nmsrs = 3};
    msrs.e[0].index = 0xC0000081; msrs.e[0].data = (0x23ull << 48) | (0x10ull << 32); /* STAR */
    msrs.e[1].index = 0xC0000082; msrs.e[1].data = 0x9000;                           /* LSTAR */
    msrs.e[2].index = 0xC0000084; msrs.e[2].data = 0x47700;                          /* SFMASK */
    if (ioctl(vm.vcpu, KVM_SET_MSRS, &msrs) != 3) DIE("KVM_SET_MSRS");
    struct kvm_regs g = {.rip = 0x8000, .rsp = 0xf000, .rflags = 0x202};
    if (ioctl(vm.vcpu, KVM_SET_REGS, &g) < 0) DIE("KVM_SET_REGS");
    return vm;
}

#endif
