/* read(2) of a regular file, which kvmsentry serves inside the guest once
 * the file is cached (kvmsentry/kernel/fastread.py): the offset must stay
 * exact whoever looks at it (lseek, pread, /proc/self/fdinfo, dup'ed fds,
 * a fork'ed child sharing the description, execve), EOF, short counts,
 * bad buffers, lazily mapped buffers, close/dup2 over the fd, threads and
 * signals arriving during a read loop. Prints only what Linux determines.
 * argv[1]: a file of at least 3 MiB. argv[2] == "exec" FD: the re-executed
 * image continues reading the inherited FD. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long sum(const unsigned char *p, long n)
{
    unsigned long h = 1469598103934665603UL;
    for (long i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211UL;
    return h;
}

static long rd(int fd, void *buf, long n) { return syscall(SYS_read, fd, buf, n); }

static long cur(int fd) { return lseek(fd, 0, SEEK_CUR); }

static long fdinfo_pos(int fd)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY);
    if (f < 0)
        return -2;
    long n = read(f, text, sizeof text - 1);
    close(f);
    if (n <= 0)
        return -3;
    text[n] = 0;
    char *p = strstr(text, "pos:");
    return p ? strtol(p + 4, NULL, 10) : -4;
}

static void report(const char *what, long r, const unsigned char *buf)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, strerror(errno));
    else
        printf("%s: %ld %016lx\n", what, r, buf ? sum(buf, r) : 0UL);
}

static volatile long ticks;
static void on_alarm(int signo) { (void)signo; ticks++; }

static int thread_fd;
static long thread_result;
static void *thread_main(void *arg)
{
    unsigned char buf[100];
    (void)arg;
    thread_result = rd(thread_fd, buf, sizeof buf);
    return NULL;
}

static int exec_child(int fd)
{
    unsigned char buf[4096];
    printf("exec: offset %ld\n", cur(fd));
    long r = rd(fd, buf, 1000);
    report("exec: read 1000", r, buf);
    r = rd(fd, buf, 1000);
    report("exec: read 1000 again", r, buf);
    printf("exec: offset %ld fdinfo %ld\n", cur(fd), fdinfo_pos(fd));
    return 0;
}

/* A file in /tmp (the guest's own tmpfs under kvmsentry): read while it
 * is written, appended, truncated and extended through other fds. */
static void tmpfs_part(void)
{
    static unsigned char buf[1 << 18], data[1 << 18];
    char path[64];
    snprintf(path, sizeof path, "/tmp/kvmsentry-fast-read-%d", (int)getpid());
    for (int i = 0; i < (int)sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + i / 4096);
    int w = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (w < 0) {
        perror(path);
        return;
    }
    write(w, data, 100000);
    int fd = open(path, O_RDONLY);
    unlink(path);
    report("tmpfs: read 5000", rd(fd, buf, 5000), buf);
    report("tmpfs: read 5000 more", rd(fd, buf, 5000), buf);
    pwrite(w, "hello", 5, 10002);  /* overwrite just ahead of the offset */
    report("tmpfs: read after an overwrite", rd(fd, buf, 10), buf);
    lseek(fd, 99990, SEEK_SET);
    report("tmpfs: read to EOF", rd(fd, buf, 100), buf);
    report("tmpfs: read at EOF", rd(fd, buf, 100), buf);
    write(w, data, 3000);  /* append */
    report("tmpfs: read after an append", rd(fd, buf, 5000), buf);
    ftruncate(w, 50000);
    report("tmpfs: read after a truncate", rd(fd, buf, 100), buf);
    lseek(fd, 49990, SEEK_SET);
    report("tmpfs: read across the new EOF", rd(fd, buf, 100), buf);
    ftruncate(w, 60000);
    report("tmpfs: read after extending", rd(fd, buf, 100000), buf);
    lseek(w, 0, SEEK_END);
    write(w, data, sizeof data);  /* grows past any window */
    report("tmpfs: read after a big append", rd(fd, buf, sizeof buf), buf);
    report("tmpfs: read the rest", rd(fd, buf, sizeof buf), buf);
    lseek(fd, 0, SEEK_SET);
    pid_t pid = fork();
    if (pid == 0) {
        pwrite(w, "child", 5, 3);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    report("tmpfs: read after a child's write", rd(fd, buf, 16), buf);
    printf("tmpfs: offset %ld fdinfo %ld\n", cur(fd), fdinfo_pos(fd));
    close(fd);
    close(w);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[2], "exec") == 0)
        return exec_child(atoi(argv[3]));
    if (argc < 2) {
        fprintf(stderr, "usage: fast_read FILE\n");
        return 2;
    }
    static unsigned char buf[1 << 20];
    const char *path = argv[1];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    long size = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);

    /* Plain reads: the first exits, the rest are served; offsets agree. */
    report("read 100", rd(fd, buf, 100), buf);
    report("read 4096", rd(fd, buf, 4096), buf);
    report("read 3", rd(fd, buf, 3), buf);
    report("read 0", rd(fd, buf, 0), buf);
    printf("offset %ld fdinfo %ld\n", cur(fd), fdinfo_pos(fd));
    report("read 5000", rd(fd, buf, 5000), buf);
    report("pread 64 at 10", pread(fd, buf, 64, 10), buf);
    printf("offset after pread %ld\n", cur(fd));
    report("read 10", rd(fd, buf, 10), buf);

    /* lseek moves it; reads continue from there. */
    printf("lseek SET 1000000: %ld\n", (long)lseek(fd, 1000000, SEEK_SET));
    report("read 7", rd(fd, buf, 7), buf);
    printf("lseek CUR -7: %ld\n", (long)lseek(fd, -7, SEEK_CUR));
    report("read 7 again", rd(fd, buf, 7), buf);

    /* EOF: a short read, then 0, 0; past the end 0. */
    lseek(fd, size - 5, SEEK_SET);
    report("read near EOF", rd(fd, buf, 100), buf);
    report("read at EOF", rd(fd, buf, 100), buf);
    report("read at EOF again", rd(fd, buf, 100), buf);
    lseek(fd, size + 100, SEEK_SET);
    report("read past EOF", rd(fd, buf, 100), buf);
    printf("offset %ld\n", cur(fd));

    /* Bad buffers: EFAULT (the offset is set again after: see COMPAT.md). */
    lseek(fd, 0, SEEK_SET);
    report("read 1", rd(fd, buf, 1), buf);
    report("read into NULL", rd(fd, NULL, 10), NULL);
    report("read into a kernel address", rd(fd, (void *)0xffffffff80000000UL, 10), NULL);
    report("read count past TASK_SIZE", rd(fd, buf, 0x7ffffffff000L), NULL);
    lseek(fd, 1, SEEK_SET);
    unsigned char *ro = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report("read into a read-only page", rd(fd, ro, 10), NULL);
    lseek(fd, 1, SEEK_SET);
    /* A fresh anonymous mapping: the buffer's pages are mapped on first touch. */
    unsigned char *fresh = mmap(NULL, 3 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report("read 2 MiB into fresh memory", rd(fd, fresh + 100, 2 << 20), fresh + 100);
    printf("offset %ld fdinfo %ld\n", cur(fd), fdinfo_pos(fd));

    /* dup: one description, two fds, one offset. */
    int fd2 = dup(fd);
    report("read 50 via dup", rd(fd2, buf, 50), buf);
    printf("offsets %ld %ld\n", cur(fd), cur(fd2));
    report("read 50 via fd", rd(fd, buf, 50), buf);
    printf("offsets %ld %ld\n", cur(fd), cur(fd2));
    close(fd2);
    report("read 50 after closing the dup", rd(fd, buf, 50), buf);
    report("read 50 more", rd(fd, buf, 50), buf);
    printf("offset %ld\n", cur(fd));

    /* fork: the child's reads move the parent's offset. */
    report("read before fork", rd(fd, buf, 20), buf);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char b[64];
        long a = rd(fd, b, 30);
        long c = rd(fd, b, 30);
        _exit(a == 30 && c == 30 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child status %d, offset %ld\n", WEXITSTATUS(status), cur(fd));
    report("read after the child", rd(fd, buf, 20), buf);
    report("read again", rd(fd, buf, 20), buf);

    /* close, dup2 over the fd. */
    int keep = dup(fd);
    close(fd);
    report("read after close", rd(fd, buf, 10), buf);
    fd = keep;
    report("read on the moved fd", rd(fd, buf, 10), buf);
    report("read on the moved fd again", rd(fd, buf, 10), buf);
    int other = open("/proc/self/cmdline", O_RDONLY);
    dup2(other, fd);
    close(other);
    long r = rd(fd, buf, 10);
    printf("read after dup2 of another file: %ld\n", r);
    close(fd);

    /* A whole-file read 4 KiB at a time, with a 1 ms timer ticking. */
    fd = open(path, O_RDONLY);
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned long h = 1469598103934665603UL;
    long total = 0;
    for (int pass = 0; pass < 3; pass++) {
        lseek(fd, 0, SEEK_SET);
        while ((r = rd(fd, buf, 4096)) > 0) {
            for (long i = 0; i < r; i++)
                h = (h ^ buf[i]) * 1099511628211UL;
            total += r;
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("whole file 3 times: %ld bytes %016lx, last %ld\n", total, h, r);

    /* A second thread: the process's reads all go through the exit path. */
    lseek(fd, 0, SEEK_SET);
    report("read 100 before the thread", rd(fd, buf, 100), buf);
    thread_fd = fd;
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    printf("thread read %ld, offset %ld\n", thread_result, cur(fd));
    report("read 100 after the thread", rd(fd, buf, 100), buf);

    /* execve: the fd (no O_CLOEXEC) and its offset carry over. */
    report("read 100 before exec", rd(fd, buf, 100), buf);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char fdtext[16];
        snprintf(fdtext, sizeof fdtext, "%d", fd);
        char *args[] = {argv[0], (char *)path, "exec", fdtext, NULL};
        execv(argv[0], args);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    printf("exec child status %d, offset %ld\n", WEXITSTATUS(status), cur(fd));
    report("read 100 after exec child", rd(fd, buf, 100), buf);
    (void)ticks;
    tmpfs_part();
    return 0;
}
