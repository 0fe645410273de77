/* setuid(2) and friends, as root (the default) or as uid/gid 1000.
 *
 * argv[1] is a directory the guest may write (mode 0777 natively, /tmp
 * in the sandbox). Prints each call and the ids after it; as root it
 * also shows the effective uid deciding file access (a 0600 file of
 * root's) and that dropping every id is final. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *en(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    default: return "E?";
    }
}

#define T(expr) do { errno = 0; long _r = (long)(expr); int _e = errno; \
    if (_r == -1) printf("%s = -1 %s\n", #expr, en(_e)); \
    else printf("%s = %ld\n", #expr, _r); \
    ids(); } while (0)

static void ids(void) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("  uid %d %d %d gid %d %d %d (getuid %d geteuid %d)\n", (int)r, (int)e, (int)s,
           (int)gr, (int)ge, (int)gs, (int)getuid(), (int)geteuid());
}

static void try_open(const char *path) {
    int fd = open(path, O_RDONLY);
    printf("  open(%s) = %s\n", path, fd >= 0 ? "fd" : en(errno));
    if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    ids();
    T(setuid(-1));
    T(setgid(-1));
    if (getuid() == 0) {
        int fd = open("rootonly", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        close(fd);
        T(setresgid(-1, 1000, -1));
        T(setresuid(-1, 1000, -1));
        try_open("rootonly");
        T(seteuid(0));
        try_open("rootonly");
        T(setreuid(1000, 2000));
        T(setreuid(-1, 0));
        T(setresuid(0, 0, 0));
        T(setregid(1000, 1000));
        T(setuid(1000));
        T(setuid(0));
        T(seteuid(0));
        T(setgid(0));
        try_open("rootonly");
        unlink("rootonly");
    } else {
        T(setuid(0));
        T(setuid(getuid()));
        T(setgid(0));
        T(setgid(getgid()));
        T(setresuid(-1, -1, -1));
        T(setresuid(0, -1, -1));
        T(setreuid(-1, 0));
        T(setresgid(-1, -1, 0));
    }
    printf("done\n");
    return 0;
}
