/* File permissions for a user that is not root (boot --user, issue 3).
 *
 * Run as uid/gid 1000 (natively under setpriv, in the sandbox with
 * --user 1000:1000) in argv[1], a directory the test made as root:
 * mode 1777 holding root-owned files and directories of known modes
 * (rootfile 0644, secret 0600, shared 0666, rootdir 0755 with f,
 * closed 0700 with f, searchonly 0711 with f, groupdir 0770 root:1000,
 * sticky 1777 with rootf 0666, mine 0644 1000:1000, prog700 and prog755
 * copies of this program). Each case prints "call = result [ERRNO]"
 * with relative paths only. argv[1] "exec-probe" just prints and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "errname.h"

#define T(expr) do { errno = 0; long _r = (long)(expr); int _e = errno; \
    if (_r == -1) printf("%s = -1 %s\n", #expr, errname(_e)); \
    else printf("%s = %ld\n", #expr, _r); } while (0)
#define F(var, expr) do { errno = 0; var = (expr); int _e = errno; \
    if (var < 0) printf("%s = -1 %s\n", #expr, errname(_e)); \
    else printf("%s = fd\n", #expr); } while (0)

static void show(const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0) { printf("  %s: -1 %s\n", path, errname(errno)); return; }
    printf("  %s: mode %04o uid %d gid %d\n", path, (unsigned)(st.st_mode & 07777),
           (int)st.st_uid, (int)st.st_gid);
}

static void run(const char *prog) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)prog, "exec-probe", NULL};
        char *envp[] = {NULL};
        execve(prog, argv, envp);
        printf("execve(%s) = -1 %s\n", prog, errname(errno));
        fflush(stdout);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("  %s: exit %d\n", prog, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(int argc, char **argv) {
    int fd;
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    if (argc > 1 && !strcmp(argv[1], "exec-probe")) {
        printf("  exec-probe as uid %d\n", (int)getuid());
        return 0;
    }
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    umask(022);
    printf("ids %d %d %d %d\n", (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());

    /* open: the class's read and write bits */
    F(fd, open("rootfile", O_RDONLY)); close(fd);
    F(fd, open("rootfile", O_WRONLY));
    F(fd, open("rootfile", O_RDWR));
    F(fd, open("rootfile", O_RDONLY | O_TRUNC));
    F(fd, open("rootfile", O_WRONLY | O_CREAT, 0644));
    F(fd, open("rootfile", O_RDONLY | O_CREAT | O_EXCL, 0644));
    F(fd, open("secret", O_RDONLY));
    F(fd, open("shared", O_RDWR)); T(write(fd, "x", 1)); close(fd);
    F(fd, open("rootdir", O_RDONLY | O_DIRECTORY)); close(fd);
    F(fd, open("rootdir", O_WRONLY));

    /* directories: search (x) and list (r) */
    F(fd, open("closed", O_RDONLY | O_DIRECTORY));
    T(access("closed/f", F_OK));
    F(fd, open("closed/f", O_RDONLY));
    T(chdir("closed"));
    F(fd, open("searchonly", O_RDONLY | O_DIRECTORY));
    F(fd, open("searchonly/f", O_RDONLY)); close(fd);
    T(chdir("searchonly"));
    T(chdir(".."));

    /* changing a directory: write and search on it */
    F(fd, open("rootdir/new", O_WRONLY | O_CREAT, 0644));
    T(mkdir("rootdir/x", 0755));
    T(symlink("x", "rootdir/l"));
    T(unlink("rootdir/f"));
    T(rename("rootdir/f", "moved"));
    T(rename("mine", "rootdir/mine"));
    T(link("mine", "rootdir/hl"));
    T(rmdir("rootdir"));
    F(fd, open("groupdir/new", O_WRONLY | O_CREAT, 0640)); close(fd);
    show("groupdir/new");
    T(unlink("groupdir/new"));

    /* the sticky bit */
    T(unlink("sticky/rootf"));
    T(rename("sticky/rootf", "sticky/other"));
    F(fd, open("sticky/minef", O_WRONLY | O_CREAT, 0644)); close(fd);
    show("sticky/minef");
    T(rename("sticky/minef", "sticky/minef2"));
    T(unlink("sticky/minef2"));

    /* my own files */
    T(mkdir("mydir", 0755));
    show("mydir");
    T(chmod("mydir", 0555));
    F(fd, open("mydir/x", O_WRONLY | O_CREAT, 0644));
    T(chmod("mydir", 0755));
    F(fd, open("mydir/x", O_WRONLY | O_CREAT, 0644)); close(fd);
    T(chmod("mydir/x", 0));
    F(fd, open("mydir/x", O_RDONLY));
    T(access("mydir/x", R_OK));
    T(chmod("mydir/x", 0644));
    T(unlink("mydir/x"));
    T(rmdir("mydir"));

    /* chmod, chown, utimes: owner rules */
    T(chmod("rootfile", 0666));
    T(chmod("mine", 04755)); show("mine");
    T(chmod("mine", 02755)); show("mine");
    T(chown("mine", 1000, 1000)); show("mine");
    T(chown("mine", 0, -1));
    T(chown("mine", -1, 0));
    T(chown("rootfile", 1000, -1));
    T(chown("rootfile", -1, -1));
    T(utimensat(AT_FDCWD, "rootfile", NULL, 0));
    T(utimensat(AT_FDCWD, "rootfile", ts, 0));
    T(utimensat(AT_FDCWD, "shared", NULL, 0));
    T(utimensat(AT_FDCWD, "shared", ts, 0));
    T(utimensat(AT_FDCWD, "mine", ts, 0));
    T(truncate("rootfile", 0));
    T(truncate("shared", 2));

    /* hard links of others' files (fs.protected_hardlinks = 1) */
    T(link("rootfile", "hl1"));
    T(link("shared", "hl2"));
    T(link("mine", "hl3"));

    /* access(2) */
    T(access("rootfile", R_OK));
    T(access("rootfile", W_OK));
    T(access("secret", R_OK));
    T(access("prog700", X_OK));
    T(access("prog755", X_OK));
    T(access("rootdir", W_OK));
    T(access("groupdir", W_OK | X_OK));
    T(faccessat(AT_FDCWD, "shared", R_OK | W_OK, AT_EACCESS));

    /* xattrs: the file's permission for user., root only for trusted. */
    T(setxattr("rootfile", "user.x", "v", 1, 0));
    T(setxattr("shared", "user.x", "v", 1, 0));
    T(getxattr("shared", "user.x", NULL, 0));
    T(getxattr("secret", "user.x", NULL, 0));
    T(setxattr("mine", "user.mine", "v", 1, 0));
    T(listxattr("mine", NULL, 0));
    T(setxattr("mine", "trusted.t", "v", 1, 0));
    T(getxattr("mine", "trusted.t", NULL, 0));
    T(removexattr("shared", "user.x"));
    T(setxattr("sticky", "user.d", "v", 1, 0));

    /* execve: the class's x bit */
    run("./prog700");
    run("./prog755");
    printf("done\n");
    return 0;
}
