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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* Root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (capset in a
 * child): its own mode-0000 file is closed to it until it chmods it. */
static void without_dac_caps(void) {
    int fd = open("noperm", O_WRONLY | O_CREAT | O_TRUNC, 0);
    close(fd);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct { unsigned version; int pid; } hdr = {0x20080522, 0};
        struct { unsigned effective, permitted, inheritable; } data[2];
        syscall(SYS_capget, &hdr, data);
        data[0].effective &= ~((1u << 1) | (1u << 2));
        T(syscall(SYS_capset, &hdr, data));
        try_open("noperm");
        T(chmod("noperm", 0400));
        try_open("noperm");
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    try_open("noperm");
    unlink("noperm");
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    ids();
    T(setuid(-1));
    T(setgid(-1));
    if (getuid() == 0) {
        without_dac_caps();
        int fd = open("rootonly", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        close(fd);
        T(setresgid(-1, 1000, -1));
        T(setresuid(-1, 1000, -1));
        try_open("rootonly");
        T(access("rootonly", R_OK));
        T(faccessat(AT_FDCWD, "rootonly", R_OK, AT_EACCESS));
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
