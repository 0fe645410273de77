/* Process groups and sessions: setpgid/getpgid/getpgrp/setsid/getsid and
 * their EPERMs; kill(0, sig) reaches the whole group and nobody else;
 * kill(-pgid, sig) from outside; waitid(P_PGID). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int report_fd;

static void on_usr1(int sig)
{
    (void)sig;
    char c = 'u';
    write(report_fd, &c, 1);
}

static const char *err(int r)
{
    if (r == 0)
        return "ok";
    return errno == EPERM ? "EPERM" : errno == ESRCH ? "ESRCH" : errno == EINVAL ? "EINVAL" : "other";
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("getpgrp == getpgid(0): %d, getsid(0) == getsid(getpid()): %d\n",
           getpgrp() == getpgid(0), getsid(0) == getsid(getpid()));
    printf("getpgid of a missing pid: %s\n", err(getpgid(999999) < 0 ? -1 : 0));

    /* A child that becomes a session leader. */
    int fds[2];
    pipe(fds);
    pid_t pid = fork();
    if (pid == 0) {
        pid_t sid = setsid();
        char line[200];
        int n = snprintf(line, sizeof line,
                         "setsid: sid is pid %d, pgid is pid %d, second setsid %s, setpgid of leader %s\n",
                         sid == getpid(), getpgid(0) == getpid(), err(setsid() < 0 ? -1 : 0),
                         err(setpgid(0, getppid())));
        write(fds[1], line, n);
        _exit(0);
    }
    char buf[512];
    ssize_t n = read(fds[0], buf, sizeof buf);
    printf("%.*s", (int)n, buf);
    waitpid(pid, NULL, 0);

    /* A group leader with three members; kill(0, SIGUSR1) from the leader. */
    int ready[2];
    pipe(ready);
    report_fd = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t leader = fork();
    if (leader == 0) {
        setpgid(0, 0);
        for (int i = 0; i < 3; i++) {
            if (fork() == 0) {
                char c = 'r';
                write(ready[1], &c, 1);
                sigsuspend(&old);
                _exit(10 + i);
            }
        }
        char c;
        for (int i = 0; i < 3; i++)
            read(ready[0], &c, 1);
        kill(0, SIGUSR1);
        sigsuspend(&old);
        int status, sum = 0;
        while (wait(&status) > 0)
            sum += WEXITSTATUS(status);
        _exit(sum);
    }
    /* The parent sets the child's group too (the classic race fix). */
    int r = setpgid(leader, leader);
    printf("parent setpgid(child, child): %s\n", r == 0 || errno == EACCES ? "ok" : err(r));
    int status;
    waitpid(leader, &status, 0);
    printf("group leader exited %d (sum of members' statuses)\n", WEXITSTATUS(status));
    int got = 0;
    char c;
    close(fds[1]);
    while (read(fds[0], &c, 1) == 1)
        got += c == 'u';
    printf("SIGUSR1 handlers run in the group: %d, parent not signalled\n", got);
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* kill(-pgid) from outside the group, and waitid(P_PGID). */
    pid_t g = fork();
    if (g == 0) {
        setpgid(0, 0);
        if (fork() == 0) {
            pause();
            _exit(1);
        }
        pause();
        _exit(1);
    }
    setpgid(g, g);
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    printf("kill(-pgid, SIGTERM): %s\n", err(kill(-g, SIGTERM)));
    siginfo_t info;
    memset(&info, 0, sizeof info);
    r = waitid(P_PGID, g, &info, WEXITED);
    printf("waitid(P_PGID): %s, si_pid matches %d, CLD_KILLED %d, si_status SIGTERM %d\n", err(r),
           info.si_pid == g, info.si_code == CLD_KILLED, info.si_status == SIGTERM);
    return 0;
}
