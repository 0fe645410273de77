/*
 * mincore_big.c: mincore(2) over a 64 GiB PROT_NONE reservation with one
 * page touched (vec is 16 MiB), then past its end (ENOMEM after the
 * bytes of the mapped part). Prints the count of resident pages.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <errno.h>
int main(void) {
    size_t len = 64UL << 30;
    char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    unsigned char *vec = mmap(NULL, len >> 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(p + (5UL << 30), 4096, PROT_READ | PROT_WRITE);
    p[5UL << 30] = 1;
    int r = mincore(p, len, vec);
    long sum = 0;
    for (size_t i = 0; i < (len >> 12); i++) sum += vec[i] & 1;
    printf("mincore = %d sum %ld at %d\n", r, sum, vec[(5UL << 30) >> 12] & 1);
    r = mincore(p, len + (1UL << 40), vec);
    printf("past the end = %d errno %d\n", r, errno);
    return 0;
}
