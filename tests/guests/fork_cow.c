/*
 * fork(2) and every kind of private or shared page, over several forks in
 * a row (a shell's loop): the data and bss segments, the heap (brk), the
 * stack, private anonymous memory (written before the fork, and written
 * long before it), shared anonymous memory, a private and a shared
 * mapping of a scratch file, a read-only private mapping made writable by
 * mprotect after the fork, and a MADV_DONTFORK region. In each round the
 * parent writes a value to each page, forks, the child prints what it
 * sees, writes its own value, the parent waits and prints what it sees
 * then. Private pages keep each side's own value, shared ones show the
 * last write. The child of the last round also execs this program again
 * (argv[2] "exec"), whose pages start anew. argv[1] is a scratch
 * directory. No address is printed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define ROUNDS 4

static volatile long data_word = 1;   /* .data */
static volatile long bss_word;        /* .bss */
static char big_bss[8 * PAGE];        /* .bss, several pages */

struct region {
    const char *name;
    volatile long *word;
};

static struct region regions[16];
static int nregions;

static void add(const char *name, void *where)
{
    regions[nregions].name = name;
    regions[nregions].word = where;
    nregions++;
}

static void show(const char *who, int round)
{
    printf("round %d %s:", round, who);
    for (int i = 0; i < nregions; i++)
        printf(" %s=%ld", regions[i].name, *regions[i].word);
    printf("\n");
    fflush(stdout);
}

static void write_all(long value)
{
    for (int i = 0; i < nregions; i++)
        *regions[i].word = value + i;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[2], "exec") == 0) {
        /* A fresh image: the segments read as the file says. */
        printf("exec: data=%ld bss=%ld big_bss=%d\n", data_word, bss_word, big_bss[PAGE]);
        big_bss[PAGE] = 5;
        data_word = 6;
        printf("exec wrote: data=%ld big_bss=%d\n", data_word, big_bss[PAGE]);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: fork_cow SCRATCH_DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/fork_cow.bin", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4 * PAGE) != 0) {
        perror("scratch file");
        return 1;
    }
    volatile long stack_word = 0;
    /* The heap by brk(2) itself: musl's sbrk refuses to grow it. */
    char *heap = (char *)syscall(SYS_brk, 0);
    if ((char *)syscall(SYS_brk, heap + 2 * PAGE) != heap + 2 * PAGE) {
        fprintf(stderr, "brk failed\n");
        return 1;
    }
    char *anon = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *old_anon = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *fpriv = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *fshared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * PAGE);
    char *ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *nofork = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* More writable pages than the sentry copies at a fork (64). */
    char *big = mmap(NULL, 160 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED || big == MAP_FAILED || old_anon == MAP_FAILED || shared == MAP_FAILED || fpriv == MAP_FAILED
        || fshared == MAP_FAILED || ro == MAP_FAILED || nofork == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    add("data", (void *)&data_word);
    add("bss", (void *)&bss_word);
    add("big_bss", big_bss + 3 * PAGE);
    add("stack", (void *)&stack_word);
    add("heap", heap + PAGE);
    add("anon", anon + 2 * PAGE);
    add("shared", shared + PAGE);
    add("fpriv", fpriv + PAGE);
    add("fshared", fshared);
    add("big", big + 150 * PAGE);
    for (unsigned long i = 0; i < 160; i++)
        big[i * PAGE] = (char)i;
    *(volatile long *)(old_anon + PAGE) = 77;  /* written once, long before the forks */
    *(volatile long *)ro = 88;
    if (mprotect(ro, PAGE, PROT_READ) != 0 || madvise(nofork, PAGE, MADV_DONTFORK) != 0) {
        perror("mprotect/madvise");
        return 1;
    }
    *(volatile long *)nofork = 99;

    for (int round = 0; round < ROUNDS; round++) {
        if (round == 2) {
            /* The child writes what the parent did not touch since. */
            pid_t pid = fork();
            if (pid == 0) {
                for (unsigned long i = 0; i < 160; i += 7)
                    big[i * PAGE] = (char)(i + 1);
                _exit(0);
            }
            waitpid(pid, NULL, 0);
            long sum = 0;
            for (unsigned long i = 0; i < 160; i++)
                sum += big[i * PAGE];
            printf("big sum %ld\n", sum);
        }
        write_all(100 * (round + 1));
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            show("child sees", round);
            write_all(100 * (round + 1) + 50);
            *(volatile long *)(old_anon + PAGE) = 177;
            if (mprotect(ro, PAGE, PROT_READ | PROT_WRITE) != 0)
                _exit(3);
            *(volatile long *)ro = 188;
            show("child wrote", round);
            if (round == ROUNDS - 1) {
                execl("/proc/self/exe", argv[0], argv[1], "exec", (char *)NULL);
                _exit(4);
            }
            /* The DONTFORK page is not in the child: a fault. */
            signal(SIGSEGV, SIG_DFL);
            (void)*(volatile long *)nofork;
            _exit(5);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return 1;
        }
        printf("round %d child: %s %d\n", round,
               WIFSIGNALED(status) ? "signal" : "exit",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        show("parent sees", round);
        printf("round %d parent: old_anon=%ld ro=%ld nofork=%ld\n", round,
               *(volatile long *)(old_anon + PAGE), *(volatile long *)ro, *(volatile long *)nofork);
    }
    /* The file as the shared mapping left it, and the private one did not. */
    long word;
    if (pread(fd, &word, sizeof word, 2 * PAGE) != sizeof word)
        return 1;
    printf("file shared=%ld", word);
    if (pread(fd, &word, sizeof word, PAGE) != sizeof word)
        return 1;
    printf(" private=%ld\n", word);
    unlink(path);
    return 0;
}
