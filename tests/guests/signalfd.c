/*
 * signalfd.c: signals read from a signalfd (signalfd(2)).
 *
 * Blocks SIGUSR1, SIGUSR2, SIGCHLD and SIGRTMIN, then reads them from a
 * signalfd: kill's sender fields, sigqueue's value (queued twice), a
 * child's exit status, several at once, rt_tgsigqueueinfo to the thread
 * itself (and its errors), a blocking read woken by a
 * child's kill, poll and epoll readiness, a mask changed in place, and
 * the errors (flags, size, a fd that is not a signalfd, a short read).
 * Prints one line per check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    printf("%s = %ld", what, r);
    if (r < 0)
        printf(" (errno %d)", errno);
    printf("\n");
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
        printf("  signo %u code %d pid-is-me %d uid %u status %d int %d\n", si[i].ssi_signo,
               si[i].ssi_code, si[i].ssi_pid == (unsigned)getpid(), si[i].ssi_uid,
               si[i].ssi_status, si[i].ssi_int);
}

static int poll_fd;

static void *poll_thread(void *arg)
{
    (void)arg;
    struct pollfd p = {.fd = poll_fd, .events = POLLIN};
    return (void *)(long)poll(&p, 1, 5000);  /* the new mask must end the wait, not the timeout */
}

int main(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &mask, NULL);

    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    show("signalfd", fd >= 0 ? 0 : -1);
    show("fcntl(F_GETFD) cloexec", fcntl(fd, F_GETFD));
    show("fcntl(F_GETFL) & O_NONBLOCK", fcntl(fd, F_GETFL) & O_NONBLOCK);
    struct stat st;
    fstat(fd, &st);
    printf("fstat mode %o\n", st.st_mode);
    char link[64] = {0}, proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    readlink(proc, link, sizeof link - 1);
    printf("readlink %s\n", link);

    take(fd, "read, nothing pending");
    kill(getpid(), SIGUSR1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    show("poll after kill", poll(&p, 1, 0));
    printf("revents %#x\n", p.revents);
    take(fd, "read after kill");
    show("poll after the read", poll(&p, 1, 0));

    union sigval v = {.sival_int = 42};
    sigqueue(getpid(), SIGRTMIN, v);
    v.sival_int = 43;
    sigqueue(getpid(), SIGRTMIN, v);
    kill(getpid(), SIGUSR2);
    take(fd, "read of three at once");

    /* rt_tgsigqueueinfo (pthread_sigqueue): to this very thread, with its errors. */
    siginfo_t qi;
    memset(&qi, 0, sizeof qi);
    qi.si_signo = SIGRTMIN;
    qi.si_code = SI_QUEUE;
    qi.si_pid = getpid();
    qi.si_uid = getuid();
    qi.si_value.sival_int = 44;
    show("rt_tgsigqueueinfo", syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN, &qi));
    take(fd, "read of the thread's signal");
    show("rt_tgsigqueueinfo tid 0", syscall(SYS_rt_tgsigqueueinfo, getpid(), 0, SIGRTMIN, &qi));
    show("rt_tgsigqueueinfo bad info", syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN, (void *)8));
    show("rt_tgsigqueueinfo wrong tgid", syscall(SYS_rt_tgsigqueueinfo, getpid() + 1000, gettid(), SIGRTMIN, &qi));
    show("rt_tgsigqueueinfo signal 99", syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), 99, &qi));
    qi.si_code = SI_USER;
    show("rt_tgsigqueueinfo SI_USER to itself", syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN, &qi));
    take(fd, "read of it");
    qi.si_code = SI_TKILL;  /* a negative code: its value is read as sigqueue's */
    qi.si_value.sival_int = 45;
    show("rt_tgsigqueueinfo SI_TKILL to itself", syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN, &qi));
    take(fd, "read of it");

    pid_t child = fork();
    if (child == 0)
        _exit(3);
    waitpid(child, NULL, __WALL | WNOWAIT);
    struct signalfd_siginfo si;
    ssize_t n;
    do
        n = read(fd, &si, sizeof si);
    while (n < 0 && errno == EAGAIN);
    printf("SIGCHLD: signo %u code %d pid-is-child %d status %d\n", si.ssi_signo, si.ssi_code,
           si.ssi_pid == (unsigned)child, si.ssi_status);
    waitpid(child, NULL, 0);

    /* epoll sees it too. */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    show("epoll_wait, nothing", epoll_wait(ep, &out, 1, 0));
    kill(getpid(), SIGUSR2);
    show("epoll_wait after kill", epoll_wait(ep, &out, 1, 1000));
    take(fd, "read after epoll");

    /* A blocking read, woken by a child's kill. */
    int bfd = signalfd(-1, &mask, 0);
    pid_t parent = getpid();
    child = fork();
    if (child == 0) {
        usleep(100000);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    struct signalfd_siginfo one;
    n = read(bfd, &one, sizeof one);  /* one only: SIGCHLD may come next */
    printf("blocking read: %zd bytes, signo %u pid-is-child %d\n", n, one.ssi_signo,
           one.ssi_pid == (unsigned)child);
    waitpid(child, NULL, 0);
    take(fd, "SIGCHLD of the second child");

    /* The mask changed in place: SIGUSR2 no longer read. */
    sigset_t only1;
    sigemptyset(&only1);
    sigaddset(&only1, SIGUSR1);
    show("signalfd(fd, SIGUSR1 only)", signalfd(fd, &only1, 0) == fd);
    kill(getpid(), SIGUSR2);
    take(fd, "read, SIGUSR2 not in the mask");
    sigset_t pending;
    sigpending(&pending);
    printf("SIGUSR2 still pending %d\n", sigismember(&pending, SIGUSR2));

    /* A new mask that takes a pending signal wakes a thread polling the fd. */
    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    poll_fd = signalfd(-1, &only2, SFD_NONBLOCK);
    kill(getpid(), SIGUSR1);
    pthread_t poller;
    pthread_create(&poller, NULL, poll_thread, NULL);
    usleep(100000);
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    signalfd(poll_fd, &both, 0);
    void *polled;
    pthread_join(poller, &polled);
    printf("poll woken by the new mask: %ld\n", (long)polled);
    take(poll_fd, "read after it");

    /* Errors. */
    char small[64];
    show("read of 64 bytes", read(fd, small, sizeof small));
    show("signalfd4 bad flags", syscall(SYS_signalfd4, -1, &mask, 8, 1));
    show("signalfd4 size 4", syscall(SYS_signalfd4, -1, &mask, 4, 0));
    show("signalfd on stdin", syscall(SYS_signalfd4, 0, &mask, 8, 0));
    show("signalfd on fd 999", syscall(SYS_signalfd4, 999, &mask, 8, 0));
    show("signalfd bad mask", syscall(SYS_signalfd4, -1, (void *)8, 8, 0));
    show("write", write(fd, small, sizeof small));
    return 0;
}
