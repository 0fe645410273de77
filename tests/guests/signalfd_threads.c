/*
 * signalfd_threads.c: signalfd(2) with threads, fork, exec, epoll and
 * POSIX timers.
 *
 * A read takes the reading thread's own pending signals (tgkill) and the
 * process's (kill), never another thread's; a forked child reads its own
 * signals through the inherited fd, and an exec'd program through the
 * fd number it is given; epoll reports the signalfd beside a pipe; a
 * POSIX timer's real-time signal is pending once (one 128-byte read
 * however many expiries), counted in ssi_overrun; a read blocked in one thread outlives close(2) of the
 * fd in another; an ignored blocked signal stays pending until its
 * action is set to ignore it again; synchronous signals are taken first; /proc/self/fdinfo shows the mask; lseek is a no-op (0); signalfd4 reports a bad mask
 * pointer before bad flags. Prints one line per check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sfd;
static volatile int ready;

static void show(const char *what, long r)
{
    printf("%s = %ld", what, r);
    if (r < 0)
        printf(" (errno %d)", errno);
    printf("\n");
    fflush(stdout);
    errno = 0;
}

static void take(int fd, const char *what)
{
    struct signalfd_siginfo si[4];
    ssize_t n = read(fd, si, sizeof si);
    if (n < 0) {
        show(what, n);
        return;
    }
    printf("%s: %zd bytes\n", what, n);
    for (ssize_t i = 0; i < n / (ssize_t)sizeof si[0]; i++)
        printf("  signo %u code %d pid-is-me %d\n", si[i].ssi_signo, si[i].ssi_code,
               si[i].ssi_pid == (unsigned)getpid());
    fflush(stdout);
}

static void *reader_thread(void *arg)
{
    (void)arg;
    take(sfd, "thread read (main's tgkill pending)");
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR2);
    take(sfd, "thread read own tgkill");
    return NULL;
}

static void *blocked_reader(void *arg)
{
    struct signalfd_siginfo si;
    ready = 1;
    ssize_t n = read(*(int *)arg, &si, sizeof si);
    printf("blocked reader: %zd bytes signo %u\n", n, n > 0 ? si.ssi_signo : 0);
    fflush(stdout);
    return NULL;
}

static char order[8];
static volatile int handled;

static void record(int signo)
{
    order[handled++] = (char)signo;
}

/* Synchronous signals (SIGSEGV, SIGBUS...) are taken before lower numbers. */
static void dequeue_order(void)
{
    int sigs[4] = {SIGHUP, SIGSEGV, SIGINT, SIGBUS};
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < 4; i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_NONBLOCK);
    for (int i = 0; i < 4; i++)
        kill(getpid(), sigs[i]);
    struct signalfd_siginfo si[4];
    ssize_t n = read(fd, si, sizeof si);
    printf("signalfd order:");
    for (ssize_t i = 0; i < n / (ssize_t)sizeof si[0]; i++)
        printf(" %u", si[i].ssi_signo);
    printf("\n");
    close(fd);
    struct sigaction sa = {.sa_handler = record};
    sigfillset(&sa.sa_mask);
    for (int i = 0; i < 4; i++) {
        sigaction(sigs[i], &sa, NULL);
        kill(getpid(), sigs[i]);
    }
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("handler order:");
    for (int i = 0; i < handled; i++)
        printf(" %d", order[i]);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc > 1) { /* exec'd: the fd survived, and so did the blocked mask */
        take(atoi(argv[1]), "after exec");
        return 0;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sfd = signalfd(-1, &mask, SFD_NONBLOCK);

    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    pthread_t t;
    pthread_create(&t, NULL, reader_thread, NULL);
    pthread_join(t, NULL);
    take(sfd, "main read own tgkill");
    kill(getpid(), SIGUSR1);
    pthread_create(&t, NULL, reader_thread, NULL);
    pthread_join(t, NULL);
    take(sfd, "main after");

    kill(getpid(), SIGUSR2);
    pid_t child = fork();
    if (child == 0) {
        take(sfd, "child read (parent's pending)");
        kill(getpid(), SIGUSR1);
        take(sfd, "child read own");
        _exit(0);
    }
    waitpid(child, NULL, 0);
    take(sfd, "parent read");

    child = fork();
    if (child == 0) {
        char fdname[16];
        snprintf(fdname, sizeof fdname, "%d", sfd);
        kill(getpid(), SIGUSR2);
        execl("/proc/self/exe", argv[0], fdname, (char *)NULL);
        _exit(99);
    }
    waitpid(child, NULL, 0);

    int ep = epoll_create1(0), p[2];
    if (pipe(p))
        return 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    ev.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct epoll_event out[4];
    show("epoll nothing", epoll_wait(ep, out, 4, 0));
    if (write(p[1], "x", 1) != 1)
        return 1;
    kill(getpid(), SIGUSR2);
    int n = epoll_wait(ep, out, 4, 1000);
    printf("epoll both: %d, sum %u\n", n, n == 2 ? out[0].data.u32 + out[1].data.u32 : 0);
    take(sfd, "after epoll");
    n = epoll_wait(ep, out, 4, 0);
    printf("epoll after the read: %d, the pipe %d\n", n, n == 1 && out[0].data.u32 == 2);

    /* A POSIX timer every ms while its signal stays pending: one instance. */
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    int rtfd = signalfd(-1, &rt, SFD_NONBLOCK);
    timer_t timer;
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    sev.sigev_value.sival_int = 77;
    timer_create(CLOCK_MONOTONIC, &sev, &timer);
    struct itimerspec its = {{0, 1000000}, {0, 1000000}};
    timer_settime(timer, 0, &its, NULL);
    struct timespec pause = {0, 30000000};
    while (nanosleep(&pause, &pause))
        ;
    struct signalfd_siginfo si[8];
    ssize_t got = read(rtfd, si, sizeof si);
    printf("timer: %zd bytes, code %d, int %d, overrun above 0 %d\n", got, si[0].ssi_code,
           si[0].ssi_int, si[0].ssi_overrun > 0);
    timer_delete(timer);
    /* Linux 6.13+ drops the signal of a deleted timer, older kernels keep it. */
    while (read(rtfd, si, sizeof si) > 0)
        ;

    int cfd = signalfd(-1, &mask, 0);
    pthread_create(&t, NULL, blocked_reader, &cfd);
    while (!ready)
        usleep(1000);
    usleep(50000);
    show("close while a thread reads", close(cfd));
    usleep(50000);
    kill(getpid(), SIGUSR1);
    pthread_join(t, NULL);
    show("nothing left", read(sfd, si, sizeof si));

    char path[64], info[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", sfd);
    int infofd = open(path, O_RDONLY);
    ssize_t len = read(infofd, info, sizeof info - 1);
    info[len > 0 ? len : 0] = 0;
    char *line = strstr(info, "sigmask:");
    printf("fdinfo %s", line ? line : "without sigmask\n");
    close(infofd);
    /* Blocked signals stay pending even when ignored; ignoring one that is
     * pending discards it (do_sigaction), so does SIG_DFL of SIGWINCH. */
    signal(SIGUSR2, SIG_IGN);
    kill(getpid(), SIGUSR2);
    take(sfd, "ignored but blocked");
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    signal(SIGUSR2, SIG_IGN);
    take(sfd, "after SIG_IGN of a pending signal");
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigprocmask(SIG_BLOCK, &winch, NULL);
    int wfd = signalfd(-1, &winch, SFD_NONBLOCK);
    signal(SIGWINCH, SIG_IGN);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGWINCH);
    signal(SIGWINCH, SIG_DFL);
    take(wfd, "after SIG_DFL of a pending SIGWINCH");
    dequeue_order();
    show("lseek", lseek(sfd, 0, SEEK_SET));
    show("lseek end", lseek(sfd, 100, SEEK_END));
    show("bad mask pointer and bad flags", syscall(SYS_signalfd4, -1, (void *)8, 8, 0x1234));
    show("bad size and bad pointer", syscall(SYS_signalfd4, -1, (void *)8, 4, 0));
    show("bad fd and bad flags", syscall(SYS_signalfd4, 999, &mask, 8, 0x1234));
    show("pipe fd", syscall(SYS_signalfd4, p[0], &mask, 8, 0));
    return 0;
}
