/* syscall_loop N: N getpid(2) then N write(2) of one byte to /dev/null;
 * prints the cost of each kind in ns per call (CLOCK_MONOTONIC). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0) { perror("/dev/null"); return 1; }
    double t0 = now();
    for (long i = 0; i < n; i++) syscall(SYS_getpid);
    double t1 = now();
    for (long i = 0; i < n; i++) write(fd, "x", 1);
    double t2 = now();
    printf("getpid_ns %.1f\nwrite_ns %.1f\n", (t1 - t0) / n, (t2 - t1) / n);
    return 0;
}
