/*
 * mm_threads.c: threads unmapping memory while other threads run, in
 * several processes at once.
 *
 * Each of THREADS threads in each of PROCS processes maps a private
 * region, fills it with a pattern of its own (process, thread, round),
 * checks it, and unmaps it, ROUNDS times, while the other threads of the
 * process do the same. A frame freed by one thread's munmap while
 * another vCPU of the process could still reach it, then reused for
 * another process's region, would show up as a wrong word here. Prints
 * one "ok" line per process (in process order), "FAILED" lines otherwise.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCS 3
#define THREADS 4
#define ROUNDS 300
#define PAGES 16
#define PAGE 4096

static int proc_index;

static void *churn(void *arg)
{
    uintptr_t thread = (uintptr_t)arg;
    for (unsigned round = 0; round < ROUNDS; round++) {
        uint64_t *p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return (void *)"mmap";
        uint64_t tag = ((uint64_t)proc_index << 48) | ((uint64_t)thread << 32) | round;
        size_t words = PAGES * PAGE / 8;
        for (size_t i = 0; i < words; i++)
            p[i] = tag ^ i;
        for (size_t i = 0; i < words; i++)
            if (p[i] != (tag ^ i))
                return (void *)"pattern";
        if (munmap(p, PAGES * PAGE) != 0)
            return (void *)"munmap";
    }
    return NULL;
}

static int run_process(void)
{
    pthread_t threads[THREADS];
    int failed = 0;
    for (uintptr_t t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, churn, (void *)t);
    for (int t = 0; t < THREADS; t++) {
        void *why;
        pthread_join(threads[t], &why);
        if (why != NULL) {
            printf("process %d thread %d FAILED: %s\n", proc_index, t, (const char *)why);
            failed = 1;
        }
    }
    return failed;
}

int main(void)
{
    pid_t pids[PROCS];
    for (int i = 0; i < PROCS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            proc_index = i + 1;
            int failed = run_process();
            fflush(stdout);
            _exit(failed);
        }
    }
    int failed = 0;
    for (int i = 0; i < PROCS; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            printf("process %d ok\n", i + 1);
        else {
            printf("process %d FAILED (status %#x)\n", i + 1, status);
            failed = 1;
        }
    }
    return failed;
}
