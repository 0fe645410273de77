/* A thread scribbles over its own ring-path request page (kvmsentry
 * --syscall-path=ring: the one request page it can write, layout.py
 * RING_AREA_GVA) while it makes real calls: arbitrary state words
 * (CLAIMED, DONE, EXIT bits the poller never set), harmless call numbers
 * (getpid, close and write of fd -1) posted outside the stub.
 * The sentry must treat all of it as guest input: no hang, no traceback,
 * every forged post it claimed answered, and the real calls' answers
 * right once the forged ones are settled. Natively (and on the exit path)
 * no such page exists and the scribbling is skipped; the output is the
 * same. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define VCPU_STRIDE 0x10000UL
#define MAX_VCPUS 256
#define RING_AREA_GVA 0xffffff7fff000000UL

static sigjmp_buf env;
static void on_segv(int s) { (void)s; siglongjmp(env, 1); }

static volatile uint64_t *own_page(void) {
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, &old);
    volatile uint64_t *volatile found = 0;  /* set after a fault point: volatile (setjmp) */
    for (unsigned long i = 0; i < MAX_VCPUS && !found; i++) {
        volatile uint64_t *page = (volatile uint64_t *)(RING_AREA_GVA + i * VCPU_STRIDE);
        if (sigsetjmp(env, 1))
            continue;
        (void)page[1];
        found = page;
    }
    sigaction(SIGSEGV, &old, 0);
    return found;
}

/* After scribbling state word `forged`: let a claim the poller made of it
 * finish, so that the next real call is not answered with the forged
 * call's result (a thread that posts over its own pending call gets what
 * it asked for: that is its own business, not what this test checks).
 * Only a state of exactly POSTED (1) can be claimed. Returns 0 on a
 * timeout (the poller never answered). */
static int settle(volatile uint32_t *state, uint32_t forged) {
    if (__sync_bool_compare_and_swap(state, forged, 0))
        return 1;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);  /* the vDSO: no syscall */
    while (!(*state & (4 | 8))) {  /* RING_DONE | RING_EXIT */
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20)
            return 0;
    }
    *state = 0;
    return 1;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    volatile uint64_t *page = own_page();
    int fd = open("/dev/null", O_WRONLY);
    uint32_t x = 12345;
    static const long numbers[] = {SYS_getpid, SYS_close, SYS_write};  /* fd -1: EBADF */
    long bad = 0, stuck = 0;
    for (int k = 0; k < 20000; k++) {
        if (page) {
            volatile uint32_t *state = (volatile uint32_t *)page;
            x = x * 1103515245u + 12345u;
            uint32_t forged = (x >> 8) & 0x1f;  /* any state bits */
            page[1] = numbers[x % 3];
            page[2] = (uint64_t)-1;  /* fd -1 for write */
            page[3] = 0;
            page[4] = 0;
            *state = forged;
            for (volatile int spin = 0; spin < 200; spin++)
                ;  /* a chance for the poller to claim it */
            if (!settle(state, forged))
                stuck++;
        }
        if (write(fd, "x", 1) != 1)
            bad++;
        if (k % 1000 == 0 && getpid() <= 0)
            bad++;
    }
    char buf[16];
    int p[2];
    pipe(p);
    write(p[1], "pong", 4);
    ssize_t n = read(p[0], buf, sizeof buf);
    printf("real calls wrong: %ld, forged posts never answered: %ld, pipe %zd %.4s\n", bad, stuck, n, buf);
    return 0;
}
