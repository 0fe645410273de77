/* setresuid(2)/setresgid(2) as make(1)'s children call them, and their
 * EPERM rule once the effective uid is not 0. Run as root (the sandbox's
 * default uid, and the tests' natively). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *what, int r) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    printf("%-32s %s  uid %u/%u/%u gid %u/%u/%u\n", what, r ? strerror(errno) : "ok",
           ru, eu, su, rg, eg, sg);
}

int main(void) {
    if (geteuid() != 0) {
        puts("not root: nothing to check");
        return 0;
    }
    show("setresuid(-1, 0, -1)", setresuid(-1, 0, -1));
    show("setresgid(-1, 0, -1)", setresgid(-1, 0, -1));
    show("setresgid(100, 200, -1)", setresgid(100, 200, -1));
    show("setresuid(-1, 1000, -1)", setresuid(-1, 1000, -1));
    show("setresuid(5, -1, -1) unprivileged", setresuid(5, -1, -1));
    show("setresgid(7, -1, -1) unprivileged", setresgid(7, -1, -1));
    show("setresgid(200, 100, -1)", setresgid(200, 100, -1));
    show("setresuid(-1, 0, -1) saved is 0", setresuid(-1, 0, -1));
    show("setresuid(1, 2, 3) root", setresuid(1, 2, 3));
    return 0;
}
