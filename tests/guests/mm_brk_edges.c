/*
 * brk(2) at its edges (mm/mmap.c brk): grow, fill, fork (the child sees
 * the parent's bytes, its writes stay its own), shrink and grow again
 * (zero-filled), a break below its start or into a mapping (unchanged),
 * and one 32 TiB higher: more than the memory there is, refused by
 * heuristic overcommit (mm/util.c __vm_enough_memory), the break unchanged.
 * Prints one line per step; the raw syscall, as libc's brk() hides the
 * kernel's answer.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *kbrk(void *want) { return (char *)syscall(SYS_brk, want); }

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    char *start = kbrk(0);
    for (int round = 0; round < 3; round++) {
        size_t n = (size_t)(round + 1) * 3 << 20;
        char *end = kbrk(start + n);
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i += 1000)
            nonzero += start[i] != 0;
        memset(start, 0x5a, n);
        pid_t child = fork();
        if (child == 0) {
            size_t bad = 0;
            for (size_t i = 0; i < n; i += 4096)
                bad += start[i] != 0x5a;
            memset(start, 1, n);
            _exit(bad > 255 ? 255 : (int)bad);
        }
        int status;
        waitpid(child, &status, 0);
        printf("round %d: grew %d, nonzero %zu, child bad %d, parent kept %d\n", round,
               end == start + n, nonzero, WEXITSTATUS(status), start[n - 1] == 0x5a);
        printf("  shrunk %d\n", kbrk(start) == start);
    }
    printf("below start unchanged %d\n", kbrk(start - (64 << 20)) == start);
    printf("32 TiB unchanged %d\n", kbrk(start + (1UL << 45)) == start);
    void *m = mmap(start + (1 << 20), 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    printf("mapped %d\n", m != MAP_FAILED);
    printf("into a mapping unchanged %d\n", kbrk(start + (2 << 20)) == start);
    printf("below the mapping %d\n", kbrk(start + 4096) == start + 4096);
    return 0;
}
