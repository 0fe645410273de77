/* memfd_create, copy_file_range, flock and mkfifo (issue 3); argv[1] is a
 * writable directory. Prints what native Linux and kvmsentry must agree on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[4096];
static const char *at(const char *dir, const char *name) {
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *dir = argv[1];
    char buf[256];
    long rc;
    int e;
    setvbuf(stdout, NULL, _IONBF, 0);

    /* memfd */
    int m = syscall(SYS_memfd_create, "guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    printf("memfd %d cloexec %d\n", m >= 0, fcntl(m, F_GETFD));
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", m);
    char link[256] = {0};
    readlink(buf, link, sizeof link - 1);
    printf("link %s\n", link);
    printf("write %zd\n", write(m, "memfd data", 10));
    printf("ftruncate %d\n", ftruncate(m, 4096));
    char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, m, 0);
    printf("mmap %.10s\n", p == MAP_FAILED ? "FAILED" : p);
    memset(buf, 0, sizeof buf);
    printf("pread %zd %s\n", pread(m, buf, 10, 0), buf);
    struct stat st;
    fstat(m, &st);
    printf("stat reg %d size %lld nlink %lld\n", S_ISREG(st.st_mode), (long long)st.st_size,
           (long long)st.st_nlink);
    char longname[300];
    memset(longname, 'n', 250); longname[250] = 0;
    rc = syscall(SYS_memfd_create, longname, 0); e = errno;
    printf("long name %ld %d\n", rc, e);
    rc = syscall(SYS_memfd_create, "x", 0x100); e = errno;
    printf("bad flags %ld %d\n", rc, e);

    /* copy_file_range between files of one directory, with and without offsets */
    int s = open(at(dir, "src"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(s, "source data", 11);
    lseek(s, 0, SEEK_SET);
    int f = open(at(dir, "copy"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("cfr %zd\n", copy_file_range(s, NULL, f, NULL, 10, 0));
    printf("cfr pos %lld\n", (long long)lseek(s, 0, SEEK_CUR));
    loff_t oi = 7, oo = 20;
    rc = copy_file_range(s, &oi, f, &oo, 3, 0);
    printf("cfr off %ld %lld %lld\n", rc, (long long)oi, (long long)oo);
    memset(buf, 0, sizeof buf);
    ssize_t n = pread(f, buf, sizeof buf, 0);
    printf("copy size %zd head %.10s tail %.3s\n", n, buf, buf + 20);
    printf("copy gap zero %d\n", buf[10] == 0 && buf[19] == 0);
    rc = copy_file_range(s, NULL, f, NULL, 1, 1); e = errno;
    printf("cfr flags %ld %d\n", rc, e);
    rc = copy_file_range(99, NULL, f, NULL, 1, 0); e = errno;
    printf("cfr ebadf %ld %d\n", rc, e);

    /* flock between parent and child (separate open file descriptions) */
    int l = open(at(dir, "lock"), O_RDWR | O_CREAT, 0644);
    printf("flock ex %d\n", flock(l, LOCK_EX));
    pid_t c = fork();
    if (c == 0) {
        int l2 = open(at(dir, "lock"), O_RDWR);
        int r = flock(l2, LOCK_EX | LOCK_NB); e = errno;
        printf("child nb %d %d\n", r, e == EWOULDBLOCK);
        r = flock(l, LOCK_EX | LOCK_NB);  /* inherited: same description */
        printf("child inherited %d\n", r);
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(c, &status, 0);
    printf("flock un %d\n", flock(l, LOCK_UN));
    c = fork();
    if (c == 0) {
        int l2 = open(at(dir, "lock"), O_RDWR);
        printf("child after unlock %d\n", flock(l2, LOCK_EX | LOCK_NB));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, &status, 0);

    /* mkfifo with a child writer */
    printf("mkfifo %d\n", mkfifo(at(dir, "fifo"), 0600));
    stat(path, &st);
    printf("fifo stat %d\n", S_ISFIFO(st.st_mode));
    rc = open(path, O_WRONLY | O_NONBLOCK); e = errno;
    printf("wronly nonblock %ld %d\n", rc, e);
    c = fork();
    if (c == 0) {
        int w = open(at(dir, "fifo"), O_WRONLY);
        write(w, "via fifo", 8);
        _exit(0);
    }
    int r = open(path, O_RDONLY);
    memset(buf, 0, sizeof buf);
    n = read(r, buf, sizeof buf);
    printf("fifo read %zd %s\n", n, buf);
    waitpid(c, &status, 0);
    printf("fifo eof %zd\n", read(r, buf, sizeof buf));
    return 0;
}
