/* sigwait, sigtimedwait, sigwaitinfo and sigqueue with blocked signals;
 * sigpending; si_pid of a signal sent by a child. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);

    raise(SIGUSR2);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("pending USR1 %d USR2 %d TERM %d\n", sigismember(&pending, SIGUSR1),
           sigismember(&pending, SIGUSR2), sigismember(&pending, SIGTERM));
    int sig;
    sigwait(&set, &sig);
    printf("sigwait: %s\n", sig == SIGUSR1 ? "SIGUSR1" : sig == SIGUSR2 ? "SIGUSR2" : "other");
    sigwait(&set, &sig);
    printf("sigwait: %s\n", sig == SIGUSR1 ? "SIGUSR1" : sig == SIGUSR2 ? "SIGUSR2" : "other");

    struct timespec timeout = {0, 100000000};
    siginfo_t info;
    int r = sigtimedwait(&set, &info, &timeout);
    printf("sigtimedwait with nothing pending: %d %s\n", r, r < 0 && errno == EAGAIN ? "EAGAIN" : "other");

    /* Real-time signals queue, standard ones do not. */
    for (int i = 0; i < 3; i++) {
        union sigval v = {.sival_int = 100 + i};
        sigqueue(getpid(), SIGRTMIN, v);
        raise(SIGUSR1);
    }
    int rt = 0, usr1 = 0;
    timeout.tv_nsec = 0;
    while ((r = sigtimedwait(&set, &info, &timeout)) > 0) {
        if (r == SIGRTMIN) {
            printf("SIGRTMIN value %d, si_code SI_QUEUE %d, si_pid is mine %d\n",
                   info.si_value.sival_int, info.si_code == SI_QUEUE, info.si_pid == getpid());
            rt++;
        } else if (r == SIGUSR1) {
            usr1++;
        }
    }
    printf("queued SIGRTMIN %d, SIGUSR1 merged into %d\n", rt, usr1);

    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    timeout.tv_sec = 10;
    r = sigtimedwait(&set, &info, &timeout);
    printf("from the child: %s, si_pid matches %d, si_code SI_USER %d\n",
           r == SIGUSR2 ? "SIGUSR2" : "other", info.si_pid == pid, info.si_code == SI_USER);
    waitpid(pid, NULL, 0);

    raise(SIGUSR1);
    r = sigwaitinfo(&set, &info);
    printf("sigwaitinfo: %s, si_code %d\n", r == SIGUSR1 ? "SIGUSR1" : "other", info.si_code);
    return 0;
}
