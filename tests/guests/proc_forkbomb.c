/* Fork until fork fails (each child waits in pause), print how many and
 * the errno, then kill and reap them all.  Stops at argv[1] children
 * (default 4096) so that it never runs away where there is no limit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int cap = argc > 1 ? atoi(argv[1]) : 4096;
    int count = 0, error = 0;
    pid_t *pids = calloc(cap, sizeof *pids);
    while (count < cap) {
        pid_t pid = fork();
        if (pid < 0) {
            error = errno;
            break;
        }
        if (pid == 0) {
            pause();
            _exit(0);
        }
        pids[count++] = pid;
    }
    printf("forked %d children, then %s\n", count,
           error == 0 ? "stopped at the cap" : error == EAGAIN ? "EAGAIN" : "another error");
    /* One by one: kill(0, ...) would reach the test harness natively. */
    for (int i = 0; i < count; i++)
        kill(pids[i], SIGTERM);
    int reaped = 0, status, killed = 0;
    while (wait(&status) > 0) {
        reaped++;
        killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;
    }
    printf("reaped %d, killed by SIGTERM %d\n", reaped, killed);
    pid_t pid = fork();
    if (pid == 0)
        _exit(9);
    waitpid(pid, &status, 0);
    printf("fork after the children are gone: %s, status %d\n", pid > 0 ? "ok" : "failed",
           WEXITSTATUS(status));
    return 0;
}
