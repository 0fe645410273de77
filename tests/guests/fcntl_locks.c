/* fcntl(2) record locks through the real struct flock layout (LTP fcntl05,
 * fcntl11, fcntl14, fcntl17-21 found it packed without the padding after
 * l_whence). argv[1] is a writable directory. The parent holds locks, a
 * child asks F_GETLK and tries F_SETLK; both print what Linux and kvmsentry
 * must agree on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void getlk(int fd, short type, off_t start, off_t len) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    int rc = fcntl(fd, F_GETLK, &fl);
    printf("getlk(%lld,%lld) rc %d type %d whence %d start %lld len %lld owner_is_parent %d\n",
           (long long)start, (long long)len, rc, fl.l_type, fl.l_whence,
           (long long)fl.l_start, (long long)fl.l_len, fl.l_pid == getppid());
}

static void setlk(int fd, short type, short whence, off_t start, off_t len) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = whence;
    fl.l_start = start;
    fl.l_len = len;
    int rc = fcntl(fd, F_SETLK, &fl);
    printf("setlk(%d,%d,%lld,%lld) rc %d errno %s\n", type, whence, (long long)start,
           (long long)len, rc, rc ? strerror(errno) : "-");
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/fcntl_locks.dat", argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 3;
    if (write(fd, "0123456789abcdefghij", 20) != 20) return 4;

    setlk(fd, F_WRLCK, SEEK_SET, 10, 5);      /* [10, 15) */
    setlk(fd, F_RDLCK, SEEK_END, -3, 0);      /* [17, EOF) */
    lseek(fd, 4, SEEK_SET);
    setlk(fd, F_WRLCK, SEEK_CUR, 0, -2);      /* [2, 4): a negative length */
    setlk(fd, F_WRLCK, SEEK_SET, -1, 1);      /* EINVAL */

    int pipefd[2];
    if (pipe(pipefd)) return 5;
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = open(path, O_RDWR);
        getlk(cfd, F_WRLCK, 0, 0);
        getlk(cfd, F_WRLCK, 5, 5);            /* [5, 10): free */
        getlk(cfd, F_WRLCK, 12, 1);
        getlk(cfd, F_RDLCK, 18, 100);         /* read vs read: free */
        getlk(cfd, F_WRLCK, 18, 100);
        setlk(cfd, F_WRLCK, SEEK_SET, 14, 1); /* EAGAIN */
        setlk(cfd, F_RDLCK, SEEK_SET, 18, 1); /* shares the read lock */
        setlk(cfd, F_WRLCK, SEEK_SET, 15, 2); /* between: free */
        char c = 0;
        write(pipefd[1], &c, 1);
        return 0;
    }
    char c;
    read(pipefd[0], &c, 1);
    int status;
    waitpid(pid, &status, 0);
    printf("child status %d\n", WEXITSTATUS(status));
    setlk(fd, F_UNLCK, SEEK_SET, 0, 0);
    return 0;
}
