/* alarm() interrupting a read on an empty pipe: without SA_RESTART the
 * read fails with EINTR; with SA_RESTART it is restarted and completes
 * when a child writes after 1.5 s.  Also setitimer(ITIMER_REAL) and pause. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void install(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int fds[2];
    char buf[64];
    pipe(fds);

    install(0);
    alarm(1);
    ssize_t n = read(fds[0], buf, sizeof buf);
    printf("without SA_RESTART: read returned %zd, errno %s, alarms %d\n", n,
           n < 0 && errno == EINTR ? "EINTR" : "other", alarms);

    install(SA_RESTART);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {1, 500000000};
        nanosleep(&ts, NULL);
        write(fds[1], "late data", 9);
        _exit(0);
    }
    alarm(1);
    n = read(fds[0], buf, sizeof buf);
    printf("with SA_RESTART: read returned %zd (%.*s), alarms %d\n", n, n > 0 ? (int)n : 0, buf,
           alarms);
    waitpid(pid, NULL, 0);

    unsigned first = alarm(5);
    unsigned left = alarm(0);
    printf("alarm(5) returned %u, then alarm(0) returned 4 or 5: %d\n", first, left == 4 || left == 5);

    struct itimerval it = {{0, 100000}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (alarms < 6)
        pause();
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    printf("interval timer fired, alarms %d, disarmed %d\n", alarms,
           now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0);

    /* nanosleep interrupted by a handled signal: EINTR with the time left. */
    install(0);
    alarm(1);
    struct timespec req = {3, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    printf("nanosleep: %d %s, remaining between 1 and 2.5 s: %d\n", r,
           r < 0 && errno == EINTR ? "EINTR" : "other",
           rem.tv_sec >= 1 && (rem.tv_sec < 2 || (rem.tv_sec == 2 && rem.tv_nsec < 500000000)));
    return 0;
}
