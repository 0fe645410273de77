/*
 * File-backed mmap: MAP_PRIVATE copy-on-write, MAP_SHARED coherence with
 * read/write/ftruncate and between processes, SIGBUS past the end of the
 * file, msync, madvise (DONTNEED, WILLNEED, DONTFORK), mremap of a file
 * mapping, /proc/self/maps lines, and mmap's errnos. argv[1] is a host
 * file the test made (read-only for the guest), argv[2] a scratch
 * directory (the guest's /tmp). Each check prints "name ok" or
 * "name FAILED: why"; the last line is "ok" when all passed. No address
 * is printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL

static int failures;
static char why[4096];

static void report(const char *name, int ok)
{
    if (ok)
        printf("%s ok\n", name);
    else {
        printf("%s FAILED: %s\n", name, why);
        failures++;
    }
    fflush(stdout);
}

#define CHECK(cond, ...) do { if (!(cond)) { snprintf(why, sizeof why, __VA_ARGS__); return 0; } } while (0)

static unsigned char pat(unsigned long i) { return (unsigned char)(i * 7 + 3); }

static char scratch[512];

static int make_file(const char *name, unsigned long size)
{
    snprintf(scratch, sizeof scratch, "%s/%s", getenv("MMAP_DIR"), name);
    int fd = open(scratch, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    unsigned char *buf = malloc(size);
    for (unsigned long i = 0; i < size; i++)
        buf[i] = pat(i);
    if (write(fd, buf, size) != (long)size)
        return -1;
    free(buf);
    return fd;
}

static sigjmp_buf jump;
static volatile int bus_signals;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
    (void)sig; (void)ctx;
    if (info->si_code == BUS_ADRERR)
        bus_signals++;
    siglongjmp(jump, 1);
}

/* 1 if reading *p raises SIGBUS. */
static int bus_on_read(volatile unsigned char *p)
{
    int before = bus_signals;
    if (sigsetjmp(jump, 1) == 0)
        (void)*p;
    return bus_signals != before;
}

static int t_private(void)
{
    int fd = make_file("private", 3 * PAGE + 100);
    CHECK(fd >= 0, "make_file: %s", strerror(errno));
    unsigned char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    for (unsigned long i = 0; i < 3 * PAGE + 100; i++)
        CHECK(p[i] == pat(i), "byte %lu", i);
    for (unsigned long i = 3 * PAGE + 100; i < 4 * PAGE; i++)
        CHECK(p[i] == 0, "tail byte %lu not zero", i);
    unsigned char *q = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
    CHECK(q != MAP_FAILED, "mmap offset: %s", strerror(errno));
    CHECK(q[0] == pat(PAGE) && q[PAGE - 1] == pat(2 * PAGE - 1), "offset mapping content");
    p[PAGE] = 0xAA;
    unsigned char c;
    CHECK(pread(fd, &c, 1, PAGE) == 1 && c == pat(PAGE), "private write reached the file");
    CHECK(q[0] == pat(PAGE), "private write reached another mapping");
    /* Pages not written yet see write(2) (Linux shares the page cache). */
    c = 0x55;
    CHECK(pwrite(fd, &c, 1, 2 * PAGE) == 1, "pwrite");
    CHECK(p[2 * PAGE] == 0x55, "untouched private page misses pwrite");
    CHECK(p[PAGE] == 0xAA, "written private page lost");
    CHECK(mprotect(q, PAGE, PROT_READ | PROT_EXEC) == 0, "mprotect exec: %s", strerror(errno));
    CHECK(mprotect(q, PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect write: %s", strerror(errno));
    q[1] = 0x11;
    CHECK(pread(fd, &c, 1, PAGE + 1) == 1 && c == pat(PAGE + 1), "write after mprotect reached the file");
    munmap(p, 4 * PAGE);
    munmap(q, PAGE);
    close(fd);
    return 1;
}

static int t_shared(void)
{
    int fd = make_file("shared", 2 * PAGE);
    CHECK(fd >= 0, "make_file: %s", strerror(errno));
    unsigned char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    unsigned char *q = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, PAGE);
    CHECK(p != MAP_FAILED && q != MAP_FAILED, "mmap: %s", strerror(errno));
    p[PAGE + 5] = 0x42;
    unsigned char c = 0;
    CHECK(pread(fd, &c, 1, PAGE + 5) == 1 && c == 0x42, "read(2) misses a write through the mapping");
    CHECK(q[5] == 0x42, "another mapping misses it");
    c = 0x77;
    CHECK(pwrite(fd, &c, 1, 10) == 1, "pwrite");
    CHECK(p[10] == 0x77, "mapping misses write(2)");
    pid_t pid = fork();
    if (pid == 0) {
        p[20] = 0x99;
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(p[20] == 0x99, "parent misses the child's write");
    CHECK(pread(fd, &c, 1, 20) == 1 && c == 0x99, "file misses the child's write");
    CHECK(msync(p, 2 * PAGE, MS_SYNC) == 0, "msync: %s", strerror(errno));
    CHECK(msync(p, PAGE, MS_ASYNC | MS_INVALIDATE) == 0, "msync async: %s", strerror(errno));
    /* A new mapping in another process sees it all. */
    pid = fork();
    if (pid == 0) {
        int fd2 = open(scratch, O_RDONLY);
        unsigned char *r = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd2, 0);
        _exit(r != MAP_FAILED && r[20] == 0x99 && r[PAGE + 5] == 0x42 && r[10] == 0x77 ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a new mapping in a child differs");
    /* MADV_DONTNEED on a shared mapping keeps the data. */
    CHECK(madvise(p, 2 * PAGE, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
    CHECK(p[20] == 0x99 && p[PAGE + 5] == 0x42, "DONTNEED lost shared data");
    munmap(p, 2 * PAGE);
    munmap(q, PAGE);
    close(fd);
    return 1;
}

static int t_truncate(void)
{
    int fd = make_file("trunc", 3 * PAGE);
    CHECK(fd >= 0, "make_file: %s", strerror(errno));
    unsigned char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    CHECK(p[2 * PAGE] == pat(2 * PAGE), "content");
    CHECK(ftruncate(fd, PAGE + 10) == 0, "ftruncate: %s", strerror(errno));
    CHECK(p[PAGE + 9] == pat(PAGE + 9), "kept byte");
    CHECK(p[PAGE + 10] == 0, "byte past the new end not zero");
    CHECK(bus_on_read(p + 2 * PAGE), "no SIGBUS past the new end");
    CHECK(ftruncate(fd, 3 * PAGE) == 0, "ftruncate up: %s", strerror(errno));
    CHECK(!bus_on_read(p + 2 * PAGE) && p[2 * PAGE] == 0, "grown page not zero");
    p[2 * PAGE + 1] = 0x31;
    unsigned char c;
    CHECK(pread(fd, &c, 1, 2 * PAGE + 1) == 1 && c == 0x31, "write after regrow");
    munmap(p, 3 * PAGE);
    /* A mapping longer than the file: SIGBUS on the pages past its end. */
    unsigned char *q = mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(q != MAP_FAILED, "mmap long: %s", strerror(errno));
    CHECK(!bus_on_read(q + 3 * PAGE - 1), "SIGBUS inside the file");
    CHECK(bus_on_read(q + 3 * PAGE), "no SIGBUS past the end");
    /* write(2) from such a page is EFAULT, not a signal. */
    int pfd[2];
    pipe(pfd);
    CHECK(write(pfd[1], q + 3 * PAGE, 1) == -1 && errno == EFAULT, "write from past the end: %s",
          strerror(errno));
    close(pfd[0]);
    close(pfd[1]);
    munmap(q, 4 * PAGE);
    close(fd);
    return 1;
}

static int t_madvise(void)
{
    int fd = make_file("madv", 2 * PAGE);
    CHECK(fd >= 0, "make_file: %s", strerror(errno));
    unsigned char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    p[0] = 0xEE;
    CHECK(madvise(p, 2 * PAGE, MADV_DONTNEED) == 0, "DONTNEED: %s", strerror(errno));
    CHECK(p[0] == pat(0), "private DONTNEED did not refetch the file");
    CHECK(madvise(p, 2 * PAGE, MADV_WILLNEED) == 0, "WILLNEED: %s", strerror(errno));
    errno = 0;
    CHECK(madvise(p, PAGE, MADV_FREE) == -1 && errno == EINVAL, "FREE on a file: %s", strerror(errno));
    errno = 0;
    CHECK(madvise(p, PAGE, MADV_REMOVE) == -1 && errno == EACCES, "REMOVE on a private file: %s",
          strerror(errno));
    unsigned char *s = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED, "mmap shared: %s", strerror(errno));
    CHECK(madvise(s + PAGE, PAGE, MADV_REMOVE) == 0, "REMOVE: %s", strerror(errno));
    unsigned char c = 1;
    CHECK(pread(fd, &c, 1, PAGE + 1) == 1 && c == 0 && s[PAGE + 1] == 0 && s[1] == pat(1),
          "REMOVE did not punch a hole");
    munmap(s, 2 * PAGE);
    unsigned char *a = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    a[2 * PAGE] = 2;
    CHECK(madvise(a + PAGE, PAGE, MADV_DONTFORK) == 0, "DONTFORK: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        if (a[0] != 1 || a[2 * PAGE] != 2)
            _exit(3);
        (void)*(volatile unsigned char *)(a + PAGE);
        _exit(4);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "DONTFORK range present in the child (status %#x)",
          status);
    CHECK(madvise(a + PAGE, PAGE, MADV_DOFORK) == 0, "DOFORK: %s", strerror(errno));
    munmap(a + PAGE, PAGE);
    errno = 0;
    CHECK(madvise(a, 3 * PAGE, MADV_DONTNEED) == -1 && errno == ENOMEM, "madvise over a hole: %s",
          strerror(errno));
    CHECK(a[0] == 0, "DONTNEED over a hole skipped the mapped part");
    munmap(a, 3 * PAGE);
    /* Shared anonymous memory keeps its data through DONTNEED. */
    unsigned char *sa = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sa != MAP_FAILED, "mmap shared anon: %s", strerror(errno));
    pid = fork();
    if (pid == 0) {
        sa[7] = 9;
        _exit(0);
    }
    waitpid(pid, &status, 0);
    CHECK(madvise(sa, 2 * PAGE, MADV_DONTNEED) == 0, "DONTNEED shared anon: %s", strerror(errno));
    CHECK(sa[7] == 9, "DONTNEED lost shared anonymous data");
    munmap(sa, 2 * PAGE);
    munmap(p, 2 * PAGE);
    close(fd);
    return 1;
}

static int t_mremap(void)
{
    int fd = make_file("remap", 4 * PAGE);
    CHECK(fd >= 0, "make_file: %s", strerror(errno));
    unsigned char *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    CHECK(p[0] == pat(PAGE), "content");
    /* Block growth in place so it must move. */
    unsigned char *block = mmap(p + PAGE, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    unsigned char *q = mremap(p, PAGE, 3 * PAGE, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED, "mremap: %s", strerror(errno));
    CHECK(q[0] == pat(PAGE) && q[PAGE] == pat(2 * PAGE) && q[2 * PAGE] == pat(3 * PAGE),
          "moved mapping lost its file offset");
    if (block != MAP_FAILED)
        munmap(block, PAGE);
    munmap(q, 3 * PAGE);
    close(fd);
    return 1;
}

/* The /proc/self/maps line of the mapping at p, or "". */
static const char *maps_line(void *p)
{
    static char line[1024];
    char want[32];
    snprintf(want, sizeof want, "%08lx-", (unsigned long)p);
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return "";
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, strlen(want)) == 0) {
            fclose(f);
            line[strcspn(line, "\n")] = 0;
            return line;
        }
    }
    fclose(f);
    return "";
}

static int check_maps(const char *name, void *p, unsigned long len, const char *perms,
                      unsigned long off, int fd, const char *path)
{
    struct stat st;
    fstat(fd, &st);
    char prefix[256], want[1024];
    int n = snprintf(prefix, sizeof prefix, "%08lx-%08lx %s %08lx %02x:%02x %lu ", (unsigned long)p,
                     (unsigned long)p + len, perms, off, major(st.st_dev), minor(st.st_dev),
                     (unsigned long)st.st_ino);
    snprintf(want, sizeof want, "%s%*s%s", prefix, n < 73 ? 73 - n : 0, "", path);
    const char *got = maps_line(p);
    CHECK(strcmp(got, want) == 0, "%s: got '%s' want '%s'", name, got, want);
    return 1;
}

static int t_maps(const char *host_file)
{
    int hfd = open(host_file, O_RDONLY);
    CHECK(hfd >= 0, "open %s: %s", host_file, strerror(errno));
    void *p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, hfd, PAGE);
    CHECK(p != MAP_FAILED, "mmap host file: %s", strerror(errno));
    if (!check_maps("host shared", p, PAGE, "r--s", PAGE, hfd, host_file))
        return 0;
    CHECK(((unsigned char *)p)[0] == pat(PAGE), "host file content");
    void *q = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, hfd, 0);
    CHECK(q != MAP_FAILED, "mmap host private: %s", strerror(errno));
    ((unsigned char *)q)[PAGE] = 1;
    CHECK(((unsigned char *)p)[0] == pat(PAGE), "private write reached a shared mapping");
    if (!check_maps("host private", q, 2 * PAGE, "rw-p", 0, hfd, host_file))
        return 0;
    CHECK(mprotect(p, PAGE, PROT_READ | PROT_WRITE) == -1 && errno == EACCES,
          "mprotect(PROT_WRITE) of MAP_SHARED on O_RDONLY: %s", strerror(errno));
    int fd = make_file("maps", 3 * PAGE);
    void *r = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * PAGE);
    CHECK(r != MAP_FAILED, "mmap: %s", strerror(errno));
    if (!check_maps("tmp shared", r, PAGE, "rw-s", 2 * PAGE, fd, scratch))
        return 0;
    munmap(p, PAGE);
    munmap(q, 2 * PAGE);
    munmap(r, PAGE);
    close(fd);
    close(hfd);
    return 1;
}

static int t_seals(void)
{
    int fd = memfd_create("sealed", MFD_ALLOW_SEALING);
    CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
    CHECK(ftruncate(fd, PAGE) == 0, "ftruncate: %s", strerror(errno));
    unsigned char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    p[0] = 5;
    errno = 0;
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EBUSY,
          "F_SEAL_WRITE with a writable shared mapping: %s", strerror(errno));
    munmap(p, PAGE);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0, "F_SEAL_WRITE: %s", strerror(errno));
    errno = 0;
    CHECK(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM,
          "writable shared mmap of a sealed file: %s", strerror(errno));
    p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED && p[0] == 5, "read-only mmap of a sealed file: %s", strerror(errno));
    errno = 0;
    CHECK(mprotect(p, PAGE, PROT_READ | PROT_WRITE) == -1 && errno == EACCES,
          "mprotect(PROT_WRITE) of a sealed file: %s", strerror(errno));
    unsigned char *q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(q != MAP_FAILED, "private mmap of a sealed file: %s", strerror(errno));
    q[0] = 6;
    CHECK(p[0] == 5, "a private write reached the sealed file");
    munmap(p, PAGE);
    munmap(q, PAGE);
    close(fd);
    return 1;
}

static int expect_err(void *r, int err, const char *what)
{
    if (r != MAP_FAILED) {
        snprintf(why, sizeof why, "%s: succeeded, want %s", what, strerror(err));
        return 0;
    }
    if (errno != err) {
        snprintf(why, sizeof why, "%s: %s, want %s", what, strerror(errno), strerror(err));
        return 0;
    }
    return 1;
}

#define EXPECT(call, err) do { errno = 0; if (!expect_err((call), (err), #call)) return 0; } while (0)

static int t_errnos(const char *host_file)
{
    int rw = make_file("errnos", PAGE);
    int ro = open(scratch, O_RDONLY);
    int wo = open(scratch, O_WRONLY);
    int pfd[2];
    pipe(pfd);
    int dir = open(getenv("MMAP_DIR"), O_RDONLY | O_DIRECTORY);
    int null = open("/dev/null", O_RDWR);
    int path = open(scratch, O_PATH);
    int hfd = open(host_file, O_RDONLY);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, -1, 0), EBADF);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 0), EBADF);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, path, 0), EBADF);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 1), EINVAL);
    EXPECT(mmap(NULL, 0, PROT_READ, MAP_PRIVATE, rw, 0), EINVAL);
    EXPECT(mmap(NULL, PAGE, PROT_READ, 0, rw, 0), EINVAL);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, wo, 0), EACCES);
    EXPECT(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), EACCES);
    EXPECT(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, hfd, 0), EACCES);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, pfd[0], 0), ENODEV);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, pfd[1], 0), EACCES);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, dir, 0), ENODEV);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_SHARED, null, 0), ENODEV);
    int procfd = open("/proc/self/status", O_RDONLY);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, procfd, 0), ENODEV);
    close(procfd);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN, rw, 0), EINVAL);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0), EINVAL);
    EXPECT(mmap(NULL, 1UL << 47, PROT_READ, MAP_PRIVATE, rw, 0), ENOMEM);
    EXPECT(mmap(NULL, -PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), ENOMEM);
    EXPECT(mmap(NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | 0x400000, rw, 0), EOPNOTSUPP);
    void *p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, rw, 0);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    EXPECT(mmap(p, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, rw, 0), EEXIST);
    EXPECT(mmap((char *)p + 1, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, rw, 0), EINVAL);
    void *q = mmap(p, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, rw, 0);
    CHECK(q == p, "MAP_FIXED over a mapping: %s", strerror(errno));
    errno = 0;
    CHECK(msync(p, PAGE, MS_SYNC | MS_ASYNC) == -1 && errno == EINVAL, "msync SYNC|ASYNC: %s", strerror(errno));
    CHECK(msync(p, PAGE, 8) == -1 && errno == EINVAL, "msync bad flag: %s", strerror(errno));
    CHECK(msync((char *)p + 1, PAGE, MS_SYNC) == -1 && errno == EINVAL, "msync unaligned: %s", strerror(errno));
    munmap(p, 2 * PAGE);
    CHECK(msync(p, PAGE, MS_SYNC) == -1 && errno == ENOMEM, "msync unmapped: %s", strerror(errno));
    /* MAP_POPULATE, MAP_NORESERVE, /dev/zero */
    unsigned char *pop = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_POPULATE, rw, 0);
    CHECK(pop != MAP_FAILED && pop[1] == pat(1), "MAP_POPULATE: %s", strerror(errno));
    unsigned char *nr = mmap(NULL, 1UL << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(nr != MAP_FAILED, "MAP_NORESERVE: %s", strerror(errno));
    nr[12345] = 1;
    munmap(nr, 1UL << 30);
    int zero = open("/dev/zero", O_RDWR);
    unsigned char *z = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, zero, 0);
    CHECK(z != MAP_FAILED && z[100] == 0, "/dev/zero shared: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        z[100] = 7;
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(z[100] == 7, "/dev/zero MAP_SHARED not shared with the child");
    close(rw); close(ro); close(wo); close(pfd[0]); close(pfd[1]); close(dir); close(null);
    close(path); close(hfd); close(zero);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mmap_file HOST_FILE DIR\n");
        return 2;
    }
    setenv("MMAP_DIR", argv[2], 1);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, NULL);
    report("private", t_private());
    report("shared", t_shared());
    report("truncate", t_truncate());
    report("madvise", t_madvise());
    report("mremap", t_mremap());
    report("maps", t_maps(argv[1]));
    report("errnos", t_errnos(argv[1]));
    report("seals", t_seals());
    printf(failures ? "FAILED\n" : "ok\n");
    return failures != 0;
}
