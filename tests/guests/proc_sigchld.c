/* A SIGCHLD handler reaping with waitpid(WNOHANG) in a loop (signals
 * merge, so it must loop) counts five children; the main thread waits in
 * sigsuspend.  Then SIGCHLD ignored (SIG_IGN): children are auto-reaped. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int reaped, status_sum, handler_calls;

static void on_chld(int sig)
{
    (void)sig;
    int status, saved = errno;
    handler_calls++;
    while (waitpid(-1, &status, WNOHANG) > 0) {
        reaped++;
        status_sum += WEXITSTATUS(status);
    }
    errno = saved;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    for (int i = 1; i <= 5; i++) {
        if (fork() == 0) {
            struct timespec ts = {0, i * 20000000L};
            nanosleep(&ts, NULL);
            _exit(i);
        }
    }
    while (reaped < 5)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("reaped %d children, status sum %d, handler ran: %d\n", reaped, status_sum,
           handler_calls >= 1);

    signal(SIGCHLD, SIG_IGN);
    for (int i = 0; i < 3; i++)
        if (fork() == 0)
            _exit(7);
    int status;
    pid_t r = wait(&status);
    printf("with SIGCHLD ignored, wait: %d %s\n", (int)r, r < 0 && errno == ECHILD ? "ECHILD" : "other");
    return 0;
}
