/*
 * Memory-management churn: mmap/munmap reuse, mprotect, mremap growth,
 * madvise(MADV_DONTNEED), brk growth and shrink (the raw system call), and many large
 * malloc/free rounds (glibc and musl serve 1-4 MiB with mmap). Each check
 * prints one line ("name ok" or "name FAILED: why"); the last line is
 * "ok" and the status 0 when all passed, 1 otherwise. No address is
 * printed: they may differ between Linux and kvmsentry.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MiB (1UL << 20)
#define PAGE 4096UL

static int failures;

static void report(const char *name, const char *why)
{
    if (why == NULL) {
        printf("%s ok\n", name);
    } else {
        printf("%s FAILED: %s\n", name, why);
        failures++;
    }
    fflush(stdout);
}

static unsigned char pattern(unsigned long i, unsigned seed)
{
    return (unsigned char)((i * 2654435761UL >> 7) + seed) | 1;  /* never 0 */
}

/* One byte every 64: every page is touched, and fast enough for 64 MiB. */
static void fill(unsigned char *p, unsigned long len, unsigned seed)
{
    for (unsigned long i = 0; i < len; i += 64)
        p[i] = pattern(i, seed);
}

static int check(const unsigned char *p, unsigned long len, unsigned seed)
{
    for (unsigned long i = 0; i < len; i += 64)
        if (p[i] != pattern(i, seed))
            return 0;
    return 1;
}

static int all_zero(const unsigned char *p, unsigned long len)
{
    for (unsigned long i = 0; i < len; i += sizeof(uint64_t))
        if (*(const uint64_t *)(p + i) != 0)
            return 0;
    return 1;
}

/*
 * (d) first, so that no malloc moves the break between grow and shrink.
 * The brk system call itself: musl's sbrk() refuses any non-zero increment.
 */
static char *brk_to(char *addr)
{
    return (char *)syscall(SYS_brk, addr);
}

static const char *brk_churn(void)
{
    char *start = brk_to(NULL);
    /* Work from the next page boundary: the break's own page may hold data. */
    uintptr_t base = ((uintptr_t)start + PAGE - 1) & ~(PAGE - 1);
    unsigned long grow = 2 * MiB;
    if (brk_to(start + grow) != start + grow)
        return "brk up by 2 MiB failed";
    if (brk_to(NULL) != start + grow)
        return "brk(0) does not report the new break";
    unsigned long usable = (uintptr_t)start + grow - base;
    if (!all_zero((unsigned char *)base, usable))
        return "new break memory is not zero";
    fill((unsigned char *)base, usable, 11);
    if (!check((unsigned char *)base, usable, 11))
        return "break memory lost its contents";
    if (brk_to(start) != start)
        return "brk back down failed";
    if (brk_to(start + grow) != start + grow)
        return "brk up again failed";
    if (!all_zero((unsigned char *)base, usable))
        return "memory above a shrunk break is not zero when regrown";
    if (brk_to(start) != start)
        return "final shrink failed";
    if (brk_to((char *)PAGE) != start)
        return "brk below the data segment moved the break";
    return NULL;
}

/* (a) */
static const char *mmap_reuse(void)
{
    unsigned long len = 64 * MiB;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return "mmap 64 MiB failed";
    for (unsigned long i = 0; i < len; i += PAGE)
        p[i] = pattern(i, 1), p[i + PAGE - 1] = pattern(i, 2);
    for (unsigned long i = 0; i < len; i += PAGE)
        if (p[i] != pattern(i, 1) || p[i + PAGE - 1] != pattern(i, 2))
            return "64 MiB pattern read back wrong";
    if (munmap(p, len) != 0)
        return "munmap failed";
    unsigned char *q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return "second mmap failed";
    if (!all_zero(q, len))
        return "remapped memory is not zero";
    fill(q, len, 3);
    if (!check(q, len, 3))
        return "second mapping lost its contents";
    if (munmap(q, len) != 0)
        return "second munmap failed";
    return NULL;
}

static const char *mprotect_round_trip(void)
{
    unsigned char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return "mmap failed";
    fill(p, 4 * PAGE, 5);
    if (mprotect(p + PAGE, 2 * PAGE, PROT_READ) != 0)
        return "mprotect PROT_READ failed";
    if (!check(p, 4 * PAGE, 5))
        return "contents changed under PROT_READ";
    p[0] = 1;  /* pages outside the range stay writable */
    p[3 * PAGE] = 2;
    if (mprotect(p + PAGE, 2 * PAGE, PROT_READ | PROT_WRITE) != 0)
        return "mprotect back to PROT_READ|PROT_WRITE failed";
    p[PAGE] = 3;
    p[2 * PAGE + 7] = 4;
    if (p[0] != 1 || p[PAGE] != 3 || p[2 * PAGE + 7] != 4 || p[3 * PAGE] != 2
        || p[PAGE + 64] != pattern(PAGE + 64, 5))
        return "writes after mprotect read back wrong";
    munmap(p, 4 * PAGE);
    return NULL;
}

/* (b) */
static const char *mremap_grow(void)
{
    unsigned long small = 2 * PAGE, big = 1 * MiB;
    unsigned char *p = mmap(NULL, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return "mmap 2 pages failed";
    for (unsigned long i = 0; i < small; i++)
        p[i] = pattern(i, 7);
    /* Block the next page so that growing in place is impossible. */
    unsigned char *blocker = mmap(p + small, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    unsigned char *q = mremap(p, small, big, MREMAP_MAYMOVE);
    if (q == MAP_FAILED)
        return "mremap to 1 MiB failed";
    for (unsigned long i = 0; i < small; i++)
        if (q[i] != pattern(i, 7))
            return "contents did not move with mremap";
    if (!all_zero(q + small, big - small))
        return "grown tail is not zero";
    fill(q + small, big - small, 9);
    if (!check(q + small, big - small, 9))
        return "grown tail lost its contents";
    if (blocker != MAP_FAILED && blocker == p + small && q == p)
        return "mremap grew in place over another mapping";
    /* Shrink back in place: the head stays. */
    unsigned char *r = mremap(q, big, small, 0);
    if (r != q)
        return "mremap shrink moved or failed";
    for (unsigned long i = 0; i < small; i++)
        if (r[i] != pattern(i, 7))
            return "contents lost by mremap shrink";
    munmap(r, small);
    if (blocker != MAP_FAILED)
        munmap(blocker, PAGE);
    return NULL;
}

/* (c) */
static const char *madvise_dontneed(void)
{
    unsigned long len = 8 * MiB;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return "mmap failed";
    fill(p, len, 13);
    if (madvise(p + MiB, 4 * MiB, MADV_DONTNEED) != 0)
        return "madvise(MADV_DONTNEED) failed";
    if (!all_zero(p + MiB, 4 * MiB))
        return "dropped pages do not read zero";
    if (!check(p, MiB, 13))
        return "pages before the range lost their contents";
    for (unsigned long i = 5 * MiB; i < len; i += 64)
        if (p[i] != pattern(i, 13))
            return "pages after the range lost their contents";
    fill(p + MiB, 4 * MiB, 17);  /* dropped pages are usable again */
    if (!check(p + MiB, 4 * MiB, 17))
        return "rewritten pages read back wrong";
    munmap(p, len);
    return NULL;
}

/* (e) */
static const char *malloc_churn(void)
{
    enum { SLOTS = 4, ROUNDS = 200 };
    unsigned char *slot[SLOTS] = {0};
    unsigned long size[SLOTS] = {0};
    unsigned seed[SLOTS] = {0};
    uint32_t rng = 12345;
    for (unsigned round = 0; round < ROUNDS; round++) {
        rng = rng * 1103515245u + 12345u;
        unsigned i = (rng >> 16) % SLOTS;
        if (slot[i] != NULL) {
            if (!check(slot[i], size[i], seed[i]))
                return "a block changed before free";
            free(slot[i]);
        }
        rng = rng * 1103515245u + 12345u;
        size[i] = MiB + (rng >> 8) % (3 * MiB + 1);
        seed[i] = round;
        slot[i] = malloc(size[i]);
        if (slot[i] == NULL)
            return "malloc failed";
        fill(slot[i], size[i], seed[i]);
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        if (slot[i] != NULL && !check(slot[i], size[i], seed[i]))
            return "a block changed before the final free";
        free(slot[i]);
    }
    return NULL;
}

int main(void)
{
    report("brk", brk_churn());
    report("mmap-reuse", mmap_reuse());
    report("mprotect", mprotect_round_trip());
    report("mremap", mremap_grow());
    report("madvise", madvise_dontneed());
    report("malloc-churn", malloc_churn());
    if (failures) {
        printf("%d FAILED\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
