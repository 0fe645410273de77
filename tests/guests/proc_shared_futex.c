/* A shared futex across fork: the child waits on a word of a MAP_SHARED
 * anonymous page, the parent wakes it (what multiprocessing's semaphores
 * and PTHREAD_PROCESS_SHARED mutexes do). alarm(10) ends a run whose wake
 * never reaches the child. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* <linux/futex.h> is not on musl-gcc's include path. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | 128)

static long futex(uint32_t *word, int op, uint32_t val) {
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

int main(void) {
    uint32_t *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (word == MAP_FAILED)
        return 1;
    word[0] = 0;
    word[1] = 0;
    alarm(10);
    pid_t pid = fork();
    if (pid == 0) {
        long r = futex(&word[0], FUTEX_WAIT, 0);
        word[1] = 7;  /* visible to the parent: the page is shared */
        printf("child: wait returned %ld\n", r);
        return 0;
    }
    long woken;
    while ((woken = futex(&word[0], FUTEX_WAKE, INT_MAX)) == 0)
        usleep(1000);
    int status;
    waitpid(pid, &status, 0);
    printf("parent: woke %ld, child wrote %u, child status %d\n", woken, word[1], WEXITSTATUS(status));
    /* A private wake does not reach a shared waiter's key in another process;
     * on a private mapping both keys are the process's own. */
    printf("private wake of nobody: %ld\n", futex(&word[0], FUTEX_WAKE_PRIVATE, 1));
    return 0;
}
