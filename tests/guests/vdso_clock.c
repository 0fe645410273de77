/* Clocks through the vDSO (AT_SYSINFO_EHDR): monotonic, consistent with the
 * clock_gettime syscall, realtime consistent with time() and gettimeofday(). */
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void) {
    printf("vdso present %d\n", getauxval(AT_SYSINFO_EHDR) != 0);
    struct timespec prev, now, sys;
    clock_gettime(CLOCK_MONOTONIC, &prev);
    int monotonic = 1;
    for (int i = 0; i < 100000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ns(now) < ns(prev)) monotonic = 0;
        prev = now;
    }
    printf("monotonic over 100000 reads %d\n", monotonic);
    int bracketed = 1;
    for (int i = 0; i < 20; i++) {
        struct timespec before, after;
        clock_gettime(CLOCK_MONOTONIC, &before);
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &sys);
        clock_gettime(CLOCK_MONOTONIC, &after);
        /* Allow 50 us of calibration error on either side. */
        if (ns(sys) + 50000 < ns(before) || ns(sys) > ns(after) + 50000) bracketed = 0;
    }
    printf("syscall between vdso reads %d\n", bracketed);
    struct timeval tv;
    struct timespec real;
    gettimeofday(&tv, NULL);
    clock_gettime(CLOCK_REALTIME, &real);
    long t = time(NULL);
    printf("realtime agrees %d\n", (t - tv.tv_sec) <= 1 && (real.tv_sec - tv.tv_sec) <= 1 && real.tv_sec >= tv.tv_sec);
    return 0;
}
