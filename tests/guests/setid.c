/* The set*id family as root and after dropping root (kernel/sys.c rules:
 * who may become what, the saved id, -1 for "unchanged", EPERM, EINVAL),
 * the capability sets that follow the uids (security/commoncap.c), and
 * capget/capset (kernel/capability.c). Each scenario runs in its own
 * child, since dropping root is for good.
 * Must start as uid 0 (natively: run as root). Found by LTP: open02,
 * stat01, mkdir04, fcntl18 and others change ids in their setup. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif
#define CAP_V1 0x19980330
#define CAP_V3 0x20080522
#define CAP_SYS_RESOURCE 24

/* A root shell on a container host may lack CAP_SYS_RESOURCE; the sandbox
 * starts with every capability: leave that bit out of what is printed. */
#define NATIVE_MAYBE (1ULL << CAP_SYS_RESOURCE)
#define CAP_SETUID 7

struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static unsigned long long caps(int which) {   /* 0 effective, 1 permitted */
    struct cap_header h = {CAP_V3, 0};
    struct cap_data d[2];
    if (syscall(SYS_capget, &h, d)) return ~0ULL;
    return which == 0 ? d[0].effective | (unsigned long long)d[1].effective << 32
                      : d[0].permitted | (unsigned long long)d[1].permitted << 32;
}

static int drop_cap(int cap, int from_permitted_too) {
    struct cap_header h = {CAP_V3, 0};
    struct cap_data d[2];
    if (syscall(SYS_capget, &h, d)) return -1;
    d[cap / 32].effective &= ~(1u << cap % 32);
    if (from_permitted_too) d[cap / 32].permitted &= ~(1u << cap % 32);
    return syscall(SYS_capset, &h, d);
}

static int raise_cap(int cap) {
    struct cap_header h = {CAP_V3, 0};
    struct cap_data d[2];
    if (syscall(SYS_capget, &h, d)) return -1;
    d[cap / 32].effective |= 1u << cap % 32;
    return syscall(SYS_capset, &h, d);
}

static int pipe_size(int size) {
    int fds[2];
    if (pipe(fds)) return -2;
    int rc = fcntl(fds[1], F_SETPIPE_SZ, size);
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    errno = err;
    return rc < 0 ? -1 : 0;
}

static void show(const char *what, int rc) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    int err = errno;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%-28s rc %2d %-6s uid %u/%u/%u gid %u/%u/%u cap %llx/%llx\n", what, rc,
           rc ? (err == EPERM ? "EPERM" : err == EINVAL ? "EINVAL" : "other") : "-",
           r, e, s, gr, ge, gs, caps(0) & ~NATIVE_MAYBE, caps(1) & ~NATIVE_MAYBE);
}

#define DO(call) do { errno = 0; show(#call, call); } while (0)

static char *self;

static int open_noatime(const char *path) {
    int fd = open(path, O_RDONLY | O_NOATIME);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static void scenario(int n) {
    switch (n) {
    case 0:
        DO(setuid(1000));
        DO(setuid(0));
        DO(seteuid(0));
        DO(setuid(1000));
        break;
    case 1:
        DO(setresuid(1000, 1001, 0));
        DO(setgid(50));
        DO(seteuid(0));
        DO(setgid(50));
        DO(setuid(2000));
        DO(setuid(0));
        break;
    case 2:
        DO(setreuid(1000, 1001));
        DO(setreuid(1001, 1000));
        DO(setreuid(-1, 5));
        DO(setreuid(5, -1));
        DO(setreuid(-1, 1001));
        break;
    case 3:
        DO(seteuid(1000));
        DO(setreuid(-1, 0));
        DO(setreuid(0, -1));
        DO(setresuid(-1, -1, -1));
        break;
    case 4:
        DO(setuid(-1));
        DO(setgid(-1));
        DO(setresgid(10, 20, 30));
        DO(setregid(-1, 40));
        DO(setuid(1000));
        DO(setresgid(30, 10, -1));
        DO(setresgid(40, -1, -1));
        DO(setgid(30));
        DO(setregid(20, -1));
        DO(setegid(30));
        break;
    case 5:
        DO(drop_cap(CAP_SYS_RESOURCE, 1));
        DO(pipe_size(2 << 20));
        DO(pipe_size(1 << 20));
        DO(raise_cap(CAP_SYS_RESOURCE));
        DO(drop_cap(CAP_SETUID, 0));
        DO(setuid(1000));
        DO(raise_cap(CAP_SETUID));
        DO(seteuid(1000));
        DO(raise_cap(CAP_SETUID));
        DO(setuid(2000));
        DO(raise_cap(CAP_SETUID));
        break;
    case 6: {
        struct cap_header h = {0x12345678, 0};
        struct cap_data d[2];
        errno = 0;
        long rc = syscall(SYS_capget, &h, NULL);
        printf("capget probe rc %ld version %x\n", rc, h.version);
        h.version = 0x12345678;
        rc = syscall(SYS_capget, &h, d);
        printf("capget bad version rc %ld errno %s version %x\n", rc,
               errno == EINVAL ? "EINVAL" : "other", h.version);
        h.version = CAP_V1;
        memset(d, 0xff, sizeof d);
        rc = syscall(SYS_capget, &h, d);
        printf("capget v1 rc %ld eff %x second word untouched %d\n", rc,
               d[0].effective & ~(uint32_t)NATIVE_MAYBE,
               d[1].effective == 0xffffffff);
        h.version = CAP_V3;
        h.pid = getppid();
        rc = syscall(SYS_capget, &h, d);
        printf("capget parent rc %ld eff %x\n", rc, d[0].effective & ~(uint32_t)NATIVE_MAYBE);
        h.pid = getppid();
        rc = syscall(SYS_capset, &h, d);
        printf("capset parent rc %ld errno %s\n", rc, errno == EPERM ? "EPERM" : "other");
        DO(setresuid(1000, 1000, 1000));
        DO(setresuid(0, 0, 0));
        break;
    }
    case 7:   /* execve: saved ids become the effective ones, capabilities are recomputed */
        DO(setresgid(0, 50, 0));
        DO(setresuid(0, 1000, 0));
        execl(self, self, "show", (char *)NULL);
        printf("execl failed\n");
        break;
    case 9: {   /* O_NOATIME is for the file's owner (or CAP_FOWNER): EPERM, not EACCES */
        char path[] = "/tmp/setid-noatime-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0 || fchmod(fd, 0644)) { printf("mkstemp failed\n"); break; }
        close(fd);
        DO(open_noatime(path));
        DO(seteuid(1000));
        DO(open_noatime(path));
        DO(seteuid(0));
        DO(chown(path, 1000, 0));
        DO(seteuid(1000));
        DO(open_noatime(path));
        DO(seteuid(0));
        unlink(path);
        break;
    }
    case 8:
        DO(setresuid(1000, 0, 1000));
        DO(drop_cap(CAP_SETUID, 0));
        execl(self, self, "show", (char *)NULL);
        printf("execl failed\n");
        break;
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    self = argv[0];
    if (argc > 1) {
        show("after execve", 0);
        return 0;
    }
    if (geteuid() != 0) {
        printf("not root\n");
        return 77;
    }
    for (int n = 0; n < 10; n++) {
        printf("scenario %d\n", n);
        pid_t pid = fork();
        if (pid == 0) {
            scenario(n);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
    }
    show("parent unchanged", 0);
    return 0;
}
