/* Pipe EOF when every writer has closed, SIGPIPE killing a writer whose
 * reader is gone (status 141 in shell terms), EPIPE with SIGPIPE ignored,
 * and a blocked writer woken by the reader closing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int shell_status(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int fds[2];
    pipe(fds);
    for (int i = 0; i < 3; i++) {
        if (fork() == 0) {
            close(fds[0]);
            char line[32];
            int n = snprintf(line, sizeof line, "writer %d\n", i);
            struct timespec ts = {0, 50000000L * i};
            nanosleep(&ts, NULL);
            write(fds[1], line, n);
            _exit(0);
        }
    }
    close(fds[1]);
    char buf[256];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        total += n;
    printf("read %zu bytes, then EOF: %d\n", total, n == 0);
    close(fds[0]);
    while (wait(NULL) > 0)
        ;

    /* The reader is gone: the writer is killed by SIGPIPE. */
    pipe(fds);
    close(fds[0]);
    pid_t pid = fork();
    if (pid == 0) {
        write(fds[1], "x", 1);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("writer without a reader: status %d\n", shell_status(status));

    /* SIGPIPE ignored: EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    n = write(fds[1], "x", 1);
    printf("with SIGPIPE ignored: %zd %s\n", n, n < 0 && errno == EPIPE ? "EPIPE" : "other");
    close(fds[1]);
    signal(SIGPIPE, SIG_DFL);

    /* A writer blocked on a full pipe, killed by SIGPIPE when the reader closes. */
    pipe(fds);
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        static char big[1 << 20];
        memset(big, 'b', sizeof big);
        write(fds[1], big, sizeof big);
        _exit(0);
    }
    close(fds[1]);
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    n = read(fds[0], buf, sizeof buf);
    close(fds[0]);
    waitpid(pid, &status, 0);
    printf("read %zd from the blocked writer, then it got status %d\n", n, shell_status(status));
    return 0;
}
