/*
 * proc_loops MODE N: the process benchmarks of issue 4, timed inside the
 * program with CLOCK_MONOTONIC; prints "<mode>_ns <ns per iteration>".
 *   forkexec   N x (fork, execve /bin/busybox true, waitpid)
 *   pipe       N round trips of one byte between two processes over two pipes
 *   futex      N round trips between two threads over two futex words
 *   threads    the same compute on 1 thread, then split over 2 threads:
 *              prints threads1_ns and threads2_ns (total, not per iteration)
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static atomic_int turn;

static void futex_wait(atomic_int *addr, int value) {
    while (atomic_load(addr) == value)
        syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(atomic_int *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static long rounds;

static void *futex_partner(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        futex_wait(&turn, 0);
        atomic_store(&turn, 0);
        futex_wake(&turn);
    }
    return NULL;
}

static volatile unsigned long sink;

static void *compute(void *arg) {
    unsigned long n = (unsigned long)arg, x = 1;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink += x;
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "forkexec";
    long n = argc > 2 ? atol(argv[2]) : 100;
    double t0 = now();
    if (!strcmp(mode, "forkexec")) {
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0) {
                execl("/bin/busybox", "true", (char *)NULL);
                _exit(127);
            }
            int status;
            waitpid(pid, &status, 0);
        }
    } else if (!strcmp(mode, "pipe")) {
        int ab[2], ba[2];
        if (pipe(ab) || pipe(ba)) return 1;
        pid_t pid = fork();
        char c = 0;
        if (pid == 0) {
            for (long i = 0; i < n; i++) {
                if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1) _exit(1);
            }
            _exit(0);
        }
        t0 = now();
        for (long i = 0; i < n; i++) {
            if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) return 1;
        }
        waitpid(pid, NULL, 0);
    } else if (!strcmp(mode, "futex")) {
        rounds = n;
        pthread_t t;
        pthread_create(&t, NULL, futex_partner, NULL);
        t0 = now();
        for (long i = 0; i < n; i++) {
            atomic_store(&turn, 1);
            futex_wake(&turn);
            futex_wait(&turn, 1);
        }
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "threads")) {
        unsigned long work = (unsigned long)n * 1000000UL;
        t0 = now();
        compute((void *)work);
        double t1 = now();
        pthread_t a, b;
        pthread_create(&a, NULL, compute, (void *)(work / 2));
        pthread_create(&b, NULL, compute, (void *)(work / 2));
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        double t2 = now();
        printf("threads1_ns %.0f\nthreads2_ns %.0f\n", t1 - t0, t2 - t1);
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("%s_ns %.1f\n", mode, (now() - t0) / n);
    return 0;
}
