/* Shared futexes between processes (LTP's checkpoints, tst_checkpoint.h,
 * wait and wake on a MAP_SHARED word from different processes): a child
 * waits on a word of a MAP_SHARED mapping made before fork, the parent
 * wakes it. Anonymous and file-backed (argv[1]: a writable directory)
 * mappings; with FUTEX_PRIVATE_FLAG the two processes must NOT meet
 * (private keys are per address space), which the parent sees as 0 woken. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* include/uapi/linux/futex.h (musl has no <linux/futex.h>) */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts) {
    return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static void pair(const char *what, uint32_t *word, int private_flag) {
    *word = 0;                       /* present before fork */
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {private_flag ? 1 : 20, 0};
        long rc = futex(word, FUTEX_WAIT | private_flag, 0, &ts);
        _exit(rc == 0 ? 0 : errno == ETIMEDOUT ? 1 : 2);
    }
    long woken = 0;
    /* Wake until the child is found waiting (at most ~2 s). */
    for (int i = 0; i < 200 && woken == 0; i++) {
        usleep(10000);
        woken = futex(word, FUTEX_WAKE | private_flag, 1, NULL);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("%s%s: woken %ld child %s\n", what, private_flag ? " private" : "", woken,
           WEXITSTATUS(status) == 0 ? "woken" : WEXITSTATUS(status) == 1 ? "timed out" : "error");
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    uint32_t *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) return 3;
    pair("anonymous", anon + 5, 0);
    pair("anonymous", anon + 6, FUTEX_PRIVATE_FLAG);

    char path[4096];
    snprintf(path, sizeof path, "%s/futex_shared.dat", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096)) return 4;
    uint32_t *file = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (file == MAP_FAILED) return 5;
    pair("file", file + 1, 0);
    return 0;
}
