/*
 * kvmsentry's vDSO: clock_gettime, gettimeofday, time and getcpu answered
 * inside the guest, in ring 3, without a VM exit (~28 us each here).
 *
 * The sentry maps this image into every process (AT_SYSINFO_EHDR) with
 * one read-only data page, the vvar page, just below it. Time is
 * computed from the TSC, which guest ring 3 reads natively:
 *     ns = base_ns[clock] + ((rdtsc() - tsc_base) * mult) >> shift
 * with the sentry's calibration in the vvar page (layout: struct
 * vvar_data below = kvmsentry/platform/vdso.py VVAR). Clocks the page
 * does not cover fall back to the real system call.
 */
#include <stdint.h>

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define NR_clock_gettime 228
#define NR_gettimeofday 96
#define NR_getcpu 309
#define NR_clock_getres 229

struct timespec { long tv_sec; long tv_nsec; };
struct timeval { long tv_sec; long tv_usec; };
struct timezone { int tz_minuteswest; int tz_dsttime; };

struct vvar_data {
    uint64_t magic;        /* "KVMSVDSO": the page is set up */
    uint64_t tsc_base;     /* guest TSC at the calibration instant */
    uint64_t monotonic_ns; /* CLOCK_MONOTONIC at that instant */
    uint64_t realtime_ns;  /* CLOCK_REALTIME at that instant */
    uint64_t boottime_ns;  /* CLOCK_BOOTTIME at that instant */
    uint32_t mult;         /* ns = cycles * mult >> shift */
    uint32_t shift;
};

/* Placed by vdso.lds one page below the image. */
extern const struct vvar_data vvar_page __attribute__((visibility("hidden")));

#define VVAR_MAGIC 0x4f5344564d53564bULL /* "KVMSVDSO" little-endian */

static inline long syscall2(long nr, long a, long b) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return ret;
}

static inline long syscall3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static inline uint64_t rdtsc_ordered(void) {
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((uint64_t)hi << 32) | lo;
}

/* ns of ``clock`` now, or -1 when the vvar page does not serve it. */
static long long clock_ns(int clock) {
    const volatile struct vvar_data *v = &vvar_page;
    uint64_t base;
    if (v->magic != VVAR_MAGIC) return -1;
    switch (clock) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: base = v->realtime_ns; break;
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE: base = v->monotonic_ns; break;
    case CLOCK_BOOTTIME: base = v->boottime_ns; break;
    default: return -1;
    }
    uint64_t cycles = rdtsc_ordered() - v->tsc_base;
    return (long long)(base + (uint64_t)(((unsigned __int128)cycles * v->mult) >> v->shift));
}

int __vdso_clock_gettime(int clock, struct timespec *ts) {
    long long ns = clock_ns(clock);
    if (ns < 0) return (int)syscall2(NR_clock_gettime, clock, (long)ts);
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    return 0;
}

int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz) {
    long long ns = clock_ns(CLOCK_REALTIME);
    if (ns < 0 || tz) return (int)syscall2(NR_gettimeofday, (long)tv, (long)tz);
    if (tv) {
        tv->tv_sec = ns / 1000000000;
        tv->tv_usec = (ns % 1000000000) / 1000;
    }
    return 0;
}

long __vdso_time(long *t) {
    long long ns = clock_ns(CLOCK_REALTIME);
    long seconds;
    if (ns < 0) {
        struct timespec ts;
        syscall2(NR_clock_gettime, CLOCK_REALTIME, (long)&ts);
        seconds = ts.tv_sec;
    } else {
        seconds = ns / 1000000000;
    }
    if (t) *t = seconds;
    return seconds;
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused) {
    return (int)syscall3(NR_getcpu, (long)cpu, (long)node, (long)unused);
}

int __vdso_clock_getres(int clock, struct timespec *res) {
    return (int)syscall2(NR_clock_getres, clock, (long)res);
}

int clock_gettime(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval *, struct timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_getres")));

/*
 * The ring-3 half of the exit-free getpid family (guest/runtime.S,
 * vcpu_syscall_entry). The runtime irets here with RAX = the user's RSP,
 * RSP = the answer, RCX = the user's RIP and R11 = the user's RFLAGS (as
 * `syscall` left them). Swap RSP back, put the answer in RAX, restore
 * DF and the arithmetic flags SF ZF AF PF CF from R11 (sahf), and return.
 * Nothing here touches memory: the user stack's red zone stays intact.
 * OF is left as the trampoline's last flag-setting instruction left it,
 * and AC/TF are not restored (the iret frame has IF only); the syscall
 * ABI declares the flags clobbered ("cc" in libc's syscall asm).
 * The labels __kvmsentry_fr_* mark each instruction: the sentry completes
 * the trampoline itself when a kick stops the vCPU inside it
 * (kvmsentry/platform/kvm.py, Context._finish_fast_return).
 */
__asm__(
    ".text\n"
    ".globl __kvmsentry_fast_return\n"
    ".type __kvmsentry_fast_return, @function\n"
    "__kvmsentry_fast_return:\n"
    "    xchg %rax, %rsp\n"
    "__kvmsentry_fr_swapped:\n"
    "    xchg %rax, %r11\n"
    "__kvmsentry_fr_flags:\n"
    "    btl $10, %eax\n"
    "    jnc 1f\n"
    "    std\n"
    "    jmp 2f\n"
    "1:  cld\n"
    "2:  xchg %al, %ah\n"
    "__kvmsentry_fr_sahf:\n"
    "    sahf\n"
    "    xchg %al, %ah\n"
    "__kvmsentry_fr_unswapped:\n"
    "    xchg %rax, %r11\n"
    "__kvmsentry_fr_jump:\n"
    "    jmp *%rcx\n"
    "__kvmsentry_fr_end:\n"
    ".size __kvmsentry_fast_return, . - __kvmsentry_fast_return\n");

/*
 * The ring-3 half of the exit-free read(2) of a cached regular file
 * (guest/runtime.S fast_read; the sentry side is
 * kvmsentry/kernel/fastread.py). The runtime irets here with RAX = the
 * user's RSP, RSP = the top of this process's fast-read page (from the
 * sentry-written read frame), RCX = the user's RIP, R11 = the user's
 * RFLAGS, RDI/RSI/RDX = fd, buf, count, and RFLAGS = IF (DF clear).
 *
 * The page (process-private, writable by the process: fastread.py says
 * why that is safe): one 32-byte entry per fd below FR_MAX_FD, {window
 * (the address where the sentry mapped the file's cached pages
 * read-only; 0: fd not served), size (bytes), offset (the open file's
 * offset: the truth while the entry is set)}; a count of served reads at
 * FR_COUNT_OFFSET; the top 48 bytes are this trampoline's scratch stack,
 * where it saves the user's registers.
 *
 * Served: n = min(count, size - offset) bytes (0 at or past EOF) copied
 * with `rep movsb`, then the offset advanced (the commit), then every
 * register but RAX (= n) restored and a jump to the caller. Anything
 * else (fd not served, count > MAX_RW_COUNT, a buffer past TASK_SIZE_MAX)
 * restores the call's registers and leaves through `out` on the syscall
 * port: the sentry runs the read as if it had exited at `syscall`. A
 * fault or a kick before the commit is rolled back by the sentry the same
 * way (kvmsentry/platform/kvm.py, Context.fast_read_unwind); one after
 * it finishes the call from the saved registers. The labels
 * __kvmsentry_frd_* mark those ranges for the sentry.
 */
#define FR_MAX_FD 64
#define FR_COUNT_OFFSET 0xF00
#define FR_PAGE 4096
#define FR_SAVED 48
#define FR_MAX_COUNT 0x7ffff000
#define FR_TASK_SIZE_MAX 0x7ffffffff000
#define FR_STR2(x) #x
#define FR_STR(x) FR_STR2(x)
__asm__(
    ".text\n"
    ".globl __kvmsentry_fast_read\n"
    ".type __kvmsentry_fast_read, @function\n"
    "__kvmsentry_fast_read:\n"
    "    push %rax\n"                       /* T-8:  user RSP */
    "    push %r11\n"                       /* T-16: user RFLAGS */
    "    push %rcx\n"                       /* T-24: user RIP */
    "    push %rdi\n"                       /* T-32: fd */
    "    push %rsi\n"                       /* T-40: buf */
    "    push %rdx\n"                       /* T-48: count */
    "__kvmsentry_frd_saved:\n"
    "    cmp $" FR_STR(FR_MAX_FD) ", %rdi\n"
    "    jae 9f\n"
    "    cmp $" FR_STR(FR_MAX_COUNT) ", %rdx\n"
    "    ja 9f\n"
    "    movabs $" FR_STR(FR_TASK_SIZE_MAX) ", %rax\n"
    "    cmp %rax, %rsi\n"
    "    ja 9f\n"
    "    sub %rdx, %rax\n"
    "    cmp %rax, %rsi\n"                  /* buf + count > TASK_SIZE_MAX */
    "    ja 9f\n"
    "    shl $5, %rdi\n"
    "    lea (" FR_STR(FR_SAVED) " - " FR_STR(FR_PAGE) ")(%rsp,%rdi), %rdi\n"  /* the fd's entry */
    "    mov (%rdi), %rax\n"                /* window */
    "    test %rax, %rax\n"
    "    jz 9f\n"
    "    mov 8(%rdi), %rcx\n"               /* size */
    "    mov 16(%rdi), %r11\n"              /* offset */
    "    sub %r11, %rcx\n"
    "    jbe __kvmsentry_frd_undone\n"      /* offset >= size: EOF, 0 */
    "    cmp %rdx, %rcx\n"
    "    cmova %rdx, %rcx\n"                /* n = min(count, size - offset) */
    "    add %r11, %rax\n"                  /* source = window + offset */
    "    mov %rdi, %r11\n"
    "    mov %rsi, %rdi\n"
    "    mov %rax, %rsi\n"
    "    mov %rcx, %rax\n"
    "    rep movsb\n"
    "__kvmsentry_frd_commit:\n"
    "    add %rax, 16(%r11)\n"              /* the offset: done from here on */
    "    incq (" FR_STR(FR_COUNT_OFFSET) " + " FR_STR(FR_SAVED) " - " FR_STR(FR_PAGE) ")(%rsp)\n"
    "__kvmsentry_frd_return:\n"
    "    pop %rdx\n"
    "    pop %rsi\n"
    "    pop %rdi\n"
    "    pop %rcx\n"
    "    mov (%rsp), %r11\n"
    "    popfq\n"                           /* the user's RFLAGS, from the scratch stack */
    "    mov (%rsp), %rsp\n"
    "    jmp *%rcx\n"
    "__kvmsentry_frd_undone:\n"
    "    xor %eax, %eax\n"
    "    jmp __kvmsentry_frd_return\n"
    "9:  pop %rdx\n"
    "    pop %rsi\n"
    "    pop %rdi\n"
    "    pop %rcx\n"
    "    pop %r11\n"
    "    pop %rsp\n"
    "    xor %eax, %eax\n"
    "__kvmsentry_frd_out:\n"
    "    out %al, $0x10\n"
    "    hlt\n"
    "__kvmsentry_frd_end:\n"
    ".size __kvmsentry_fast_read, . - __kvmsentry_fast_read\n");
