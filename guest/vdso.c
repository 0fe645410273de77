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
