/* Extended attributes (xattr(7)) on a tmpfs directory, as root.
 *
 * argv[1] is an empty directory on tmpfs (natively beneath /dev/shm, in
 * the sandbox /dev/shm, /tmp or an overlay directory); the guest chdirs
 * there and prints "call = result [ERRNO]" per case, then the values
 * and name lists it read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "errname.h"

#define T(expr) do { errno = 0; long _r = (long)(expr); int _e = errno; \
    if (_r == -1) printf("%s = -1 %s\n", #expr, errname(_e)); \
    else printf("%s = %ld\n", #expr, _r); } while (0)

static char buf[1024];

static void names(ssize_t n) {
    printf("  names:");
    for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) printf(" %s", buf + i);
    printf("\n");
}

static void value(ssize_t n) {
    printf("  value: \"%.*s\"\n", n > 0 ? (int)n : 0, buf);
}

int main(int argc, char **argv) {
    int fd, p[2];
    char longname[300];
    static char big[70000];
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    fd = open("f", O_RDWR | O_CREAT, 0644);
    close(fd);
    mkdir("d", 0755);
    symlink("f", "l");
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[256] = 0;

    T(setxattr("f", "user.a", "one", 3, 0));
    T(getxattr("f", "user.a", NULL, 0));
    ssize_t n = getxattr("f", "user.a", buf, sizeof buf);
    value(n);
    T(getxattr("f", "user.a", buf, 1));
    T(setxattr("f", "user.a", "uno", 3, XATTR_CREATE));
    T(setxattr("f", "user.a", "two", 3, XATTR_REPLACE));
    n = getxattr("f", "user.a", buf, sizeof buf);
    value(n);
    T(setxattr("f", "user.b", "x", 1, XATTR_REPLACE));
    T(setxattr("f", "user.b", "x", 1, XATTR_CREATE | XATTR_REPLACE));
    T(setxattr("f", "user.b", "x", 1, 4));
    T(setxattr("f", "user.empty", "", 0, 0));
    T(getxattr("f", "user.empty", buf, sizeof buf));
    T(setxattr("f", "user.c", "three", 5, 0));
    T(setxattr("f", "trusted.t", "root only", 9, 0));
    T(setxattr("f", "security.s", "sec", 3, 0));
    T(listxattr("f", NULL, 0));
    n = listxattr("f", buf, sizeof buf);
    names(n);
    T(listxattr("f", buf, 5));

    /* names */
    T(setxattr("f", "", "v", 1, 0));
    T(setxattr("f", longname, "v", 1, 0));
    T(getxattr("f", longname, buf, sizeof buf));
    longname[255] = 0;
    T(setxattr("f", longname, "v", 1, 0));
    T(removexattr("f", longname));
    T(setxattr("f", "user.", "v", 1, 0));
    T(setxattr("f", "bogus", "v", 1, 0));
    T(setxattr("f", "other.x", "v", 1, 0));
    T(getxattr("f", "other.x", buf, sizeof buf));
    T(setxattr("f", "user.big", big, 65537, 0));
    T(getxattr("f", "user.none", buf, sizeof buf));
    T(getxattr("missing", "user.a", buf, sizeof buf));

    /* remove */
    T(removexattr("f", "user.c"));
    T(removexattr("f", "user.c"));
    T(removexattr("f", "other.c"));

    /* symlinks: user. is for files and directories only */
    T(lsetxattr("l", "user.x", "v", 1, 0));
    T(lgetxattr("l", "user.a", buf, sizeof buf));
    T(llistxattr("l", buf, sizeof buf));
    T(lsetxattr("l", "trusted.lt", "v", 1, 0));
    T(setxattr("l", "user.vialink", "v", 1, 0));
    T(lremovexattr("l", "user.vialink"));
    T(removexattr("l", "user.vialink"));
    T(setxattr("d", "user.dir", "dv", 2, 0));
    n = listxattr("d", buf, sizeof buf);
    names(n);

    /* on descriptors */
    fd = open("f", O_RDONLY);
    T(fsetxattr(fd, "user.fd", "fv", 2, 0));
    n = fgetxattr(fd, "user.fd", buf, sizeof buf);
    value(n);
    n = flistxattr(fd, buf, sizeof buf);
    names(n);
    T(fremovexattr(fd, "user.fd"));
    close(fd);
    fd = open("f", O_PATH);
    T(fgetxattr(fd, "user.a", buf, sizeof buf));
    T(flistxattr(fd, buf, sizeof buf));
    close(fd);
    T(pipe(p));
    T(fgetxattr(p[0], "user.a", buf, sizeof buf));
    T(fsetxattr(p[0], "user.a", "v", 1, 0));
    T(flistxattr(p[0], buf, sizeof buf));
    T(getxattr("/proc/self/status", "user.a", buf, sizeof buf));
    T(listxattr("/proc/self/status", buf, sizeof buf));

    /* survives a rename, goes with a hard link */
    T(rename("f", "g"));
    T(link("g", "h"));
    n = getxattr("h", "user.a", buf, sizeof buf);
    value(n);
    n = listxattr("h", buf, sizeof buf);
    names(n);
    printf("done\n");
    return 0;
}
