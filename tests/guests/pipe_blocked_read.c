/*
 * pipe_blocked_read.c: read(2) from an empty pipe that blocks until
 * another process or thread writes (pipe(7), fs/pipe.c pipe_read): a
 * short read of a longer write leaves the rest; EOF when the writer
 * closes; EFAULT for a bad buffer with the bytes left in the pipe; a
 * signal interrupting the wait (EINTR without SA_RESTART, restarted with
 * it); a signal sent right after the write that woke the reader is
 * handled before the reader's next system call (the reader spins on
 * clock_gettime, which makes none); a ping-pong whose every byte is
 * checked; a thread blocked in read while its process exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_signal(int signo)
{
    (void)signo;
    caught++;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int unread(int fd)
{
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    return n;
}

/* A child that sleeps `ms` then writes `text` to `fd`, and maybe closes. */
static pid_t later_write(int fds[2], long ms, const char *text)
{
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        nap_ms(ms);
        if (text)
            write(fds[1], text, strlen(text));
        _exit(0);
    }
    return pid;
}

static void short_read_and_eof(void)
{
    int fds[2];
    char buf[64];
    pipe(fds);
    pid_t pid = later_write(fds, 30, "hello world");
    close(fds[1]);
    ssize_t r = read(fds[0], buf, 5);
    printf("short read: %zd \"%.*s\", left %d\n", r, (int)(r > 0 ? r : 0), buf, unread(fds[0]));
    r = read(fds[0], buf, sizeof buf);
    printf("rest: %zd \"%.*s\"\n", r, (int)(r > 0 ? r : 0), buf);
    r = read(fds[0], buf, sizeof buf);  /* blocks until the child exits: EOF */
    printf("eof: %zd\n", r);
    waitpid(pid, NULL, 0);
    close(fds[0]);
}

static void bad_buffer(void)
{
    int fds[2];
    pipe(fds);
    char *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid_t pid = later_write(fds, 30, "abc");
    ssize_t r = read(fds[0], bad, 16);
    printf("bad buffer: %zd %s, left %d\n", r, r < 0 ? strerror(errno) : "", unread(fds[0]));
    char buf[16];
    r = read(fds[0], buf, sizeof buf);
    printf("then: %zd \"%.*s\"\n", r, (int)(r > 0 ? r : 0), buf);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
}

static void interrupted(int restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    int fds[2];
    pipe(fds);
    pid_t pid = later_write(fds, 150, "late");
    struct itimerval it = {{0, 0}, {0, 30000}};
    caught = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    char buf[16];
    ssize_t r = read(fds[0], buf, sizeof buf);
    printf("%s: %zd %s caught %d", restart ? "SA_RESTART" : "no SA_RESTART", r,
           r < 0 ? strerror(errno) : "", (int)caught);
    if (r > 0)
        printf(" \"%.*s\"", (int)r, buf);
    printf("\n");
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
}

/* The writer signals the reader right after its write: the reader must
 * take the signal while it spins without a system call. */
static void signal_after_wake(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    int ab[2], ba[2];
    pipe(ab);
    pipe(ba);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        for (int i = 0; i < 20; i++) {
            if (read(ba[0], &c, 1) != 1)
                _exit(1);
            nap_ms(2);
            write(ab[1], "x", 1);
            kill(parent, SIGUSR1);
        }
        _exit(0);
    }
    int late = 0;
    for (int i = 0; i < 20; i++) {
        char c;
        caught = 0;
        write(ba[1], "y", 1);
        if (read(ab[0], &c, 1) != 1)
            break;
        double end = now_s() + 5;
        while (!caught && now_s() < end)
            ;
        late += !caught;
    }
    printf("signals after the wake-up, not taken within 5 s: %d\n", late);
    waitpid(pid, NULL, 0);
}

static void ping_pong(void)
{
    int ab[2], ba[2];
    pipe(ab);
    pipe(ba);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char c;
        for (int i = 0; i < 500; i++) {
            if (read(ab[0], &c, 1) != 1 || c != (unsigned char)i)
                _exit(1);
            c = (unsigned char)(i * 7);
            if (write(ba[1], &c, 1) != 1)
                _exit(2);
        }
        _exit(0);
    }
    int bad = 0;
    for (int i = 0; i < 500; i++) {
        unsigned char c = (unsigned char)i;
        write(ab[1], &c, 1);
        if (read(ba[0], &c, 1) != 1 || c != (unsigned char)(i * 7))
            bad++;
    }
    int status;
    waitpid(pid, &status, 0);
    printf("ping-pong: %d bad, child %d\n", bad, WEXITSTATUS(status));
}

static int thread_fds[2];

static void *blocked_reader(void *arg)
{
    (void)arg;
    char c;
    read(thread_fds[0], &c, 1);  /* never answered */
    return NULL;
}

static void *thread_reader(void *arg)
{
    int *fds = arg;
    char buf[8];
    ssize_t r = read(fds[0], buf, sizeof buf);
    printf("thread read: %zd \"%.*s\"\n", r, (int)(r > 0 ? r : 0), buf);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    short_read_and_eof();
    bad_buffer();
    interrupted(0);
    interrupted(1);
    signal_after_wake();
    ping_pong();

    int fds[2];
    pipe(fds);
    pthread_t t;
    pthread_create(&t, NULL, thread_reader, fds);
    nap_ms(30);
    write(fds[1], "thread", 6);
    pthread_join(t, NULL);

    /* A thread blocked in read while the process exits. */
    pipe(thread_fds);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_create(&t, NULL, blocked_reader, NULL);
        nap_ms(30);
        exit(7);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("exit with a thread blocked in read: %d\n", WEXITSTATUS(status));
    return 0;
}
