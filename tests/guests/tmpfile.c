/* O_TMPFILE (open(2)): an unnamed file that linkat(2) may name later.
 *
 * argv[1] is an empty writable directory (natively a pytest directory,
 * in the sandbox /tmp, /dev/shm or the overlay); the guest chdirs there and prints
 * "call = result [ERRNO]" per case, relative paths only, no inode
 * numbers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errname.h"

#define T(expr) do { errno = 0; long _r = (long)(expr); int _e = errno; \
    if (_r == -1) printf("%s = -1 %s\n", #expr, errname(_e)); \
    else printf("%s = %ld\n", #expr, _r); } while (0)
#define F(var, expr) do { errno = 0; var = (expr); int _e = errno; \
    if (var < 0) printf("%s = -1 %s\n", #expr, errname(_e)); \
    else printf("%s = fd\n", #expr); } while (0)

static void fshow(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) { printf("  fstat: -1 %s\n", errname(errno)); return; }
    printf("  fstat: %s mode %04o nlink %ld size %lld\n", S_ISREG(st.st_mode) ? "reg" : "other",
           (unsigned)(st.st_mode & 07777), (long)st.st_nlink, (long long)st.st_size);
}

static void show(const char *path) {
    struct stat st;
    if (stat(path, &st) < 0) { printf("  %s: -1 %s\n", path, errname(errno)); return; }
    printf("  %s: mode %04o nlink %ld size %lld\n", path, (unsigned)(st.st_mode & 07777),
           (long)st.st_nlink, (long long)st.st_size);
}

static int entries(void) {
    DIR *d = opendir(".");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void fdlink(int fd) {
    char p[64], t[512];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, t, sizeof t - 1);
    if (n < 0) { printf("  readlink: -1 %s\n", errname(errno)); return; }
    t[n] = 0;
    char *hash = strrchr(t, '/');
    printf("  link: name starts with #: %d, ends with (deleted): %d\n",
           hash && hash[1] == '#', n > 10 && !strcmp(t + n - 10, " (deleted)"));
}

int main(int argc, char **argv) {
    int fd, fd2;
    char buf[64], p[64];
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    umask(022);

    /* argv[2]: a directory where O_TMPFILE fails (/proc: EOPNOTSUPP; a
     * read-only mount: EROFS) */
    if (argc > 2)
        F(fd, open(argv[2], O_TMPFILE | O_RDWR, 0600));
    F(fd, open(".", O_TMPFILE | O_RDWR, 0666));
    fshow(fd);
    T(fcntl(fd, F_GETFL) & ~0x8000);
    T(write(fd, "unnamed", 7));
    printf("  entries %d\n", entries());
    fdlink(fd);
    T(linkat(fd, "", AT_FDCWD, "named", AT_EMPTY_PATH));
    fshow(fd);
    show("named");
    T(linkat(fd, "", AT_FDCWD, "named", AT_EMPTY_PATH));
    T(linkat(fd, "", AT_FDCWD, "again", AT_EMPTY_PATH));
    show("again");
    T(unlink("named"));
    T(unlink("again"));
    T(linkat(fd, "", AT_FDCWD, "third", AT_EMPTY_PATH));
    T(close(fd));

    /* through /proc/self/fd/N */
    F(fd, open(".", O_TMPFILE | O_WRONLY, 0600));
    T(write(fd, "via proc", 8));
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    T(linkat(AT_FDCWD, p, AT_FDCWD, "viaproc", AT_SYMLINK_FOLLOW));
    show("viaproc");
    F(fd2, open("viaproc", O_RDONLY));
    memset(buf, 0, sizeof buf);
    T(read(fd2, buf, sizeof buf - 1));
    printf("  content %s\n", buf);
    T(close(fd2));
    T(close(fd));

    /* O_EXCL: never linked */
    F(fd, open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600));
    T(linkat(fd, "", AT_FDCWD, "excl", AT_EMPTY_PATH));
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    T(linkat(AT_FDCWD, p, AT_FDCWD, "excl", AT_SYMLINK_FOLLOW));
    T(close(fd));

    /* an unlinked ordinary file cannot be linked again */
    F(fd, open("plain", O_RDWR | O_CREAT, 0644));
    T(unlink("plain"));
    T(linkat(fd, "", AT_FDCWD, "plain2", AT_EMPTY_PATH));
    T(close(fd));

    /* errnos */
    F(fd, open(".", O_TMPFILE | O_RDONLY, 0600));
    F(fd, open(".", O_TMPFILE | O_RDWR | O_CREAT, 0600));
    F(fd, open(".", (O_TMPFILE & ~O_DIRECTORY) | O_RDWR, 0600));
    F(fd, open("viaproc", O_TMPFILE | O_RDWR, 0600));
    F(fd, open("missing", O_TMPFILE | O_RDWR, 0600));
    T(mkdir("sub", 0755));
    F(fd, open("sub", O_TMPFILE | O_RDWR, 0640));
    fshow(fd);
    T(linkat(fd, "", AT_FDCWD, "sub/inner", AT_EMPTY_PATH));
    show("sub/inner");
    T(close(fd));
    printf("  entries %d\n", entries());
    printf("done\n");
    return 0;
}
