/* The set*id family as root and after dropping root (kernel/sys.c rules:
 * who may become what, the saved id, -1 for "unchanged", EPERM, EINVAL).
 * Each scenario runs in its own child, since dropping root is for good.
 * Must start as uid 0 (natively: run as root). Found by LTP: open02,
 * stat01, mkdir04, fcntl18 and others change ids in their setup. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, int rc) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    int err = errno;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%-28s rc %2d %-6s uid %u/%u/%u gid %u/%u/%u\n", what, rc,
           rc ? (err == EPERM ? "EPERM" : err == EINVAL ? "EINVAL" : "other") : "-",
           r, e, s, gr, ge, gs);
}

#define DO(call) do { errno = 0; show(#call, call); } while (0)

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
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) {
        printf("not root\n");
        return 77;
    }
    for (int n = 0; n < 5; n++) {
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
