/* pagefault MIB: touch MIB MiB of fresh anonymous memory, one write per
 * 4 KiB page (each a first-touch page fault on Linux), timed inside the
 * program with CLOCK_MONOTONIC; prints "page_ns <ns per page>" and
 * "total_ms <ms for the whole region>". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 1024;
    size_t size = (size_t)mib << 20, pages = size >> 12;
    volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    double t0 = now();
    for (size_t i = 0; i < pages; i++) p[i << 12] = (char)i;
    double t1 = now();
    unsigned long sum = 0;
    for (size_t i = 0; i < pages; i += 4096) sum += p[i << 12];
    printf("page_ns %.1f\ntotal_ms %.1f\n", (t1 - t0) / pages, (t1 - t0) / 1e6);
    return sum == 0xdeadbeef;  /* keeps the reads */
}
