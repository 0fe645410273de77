/*
 * futex_blocked_wait.c: FUTEX_WAIT blocked until another thread's
 * FUTEX_WAKE (futex(2)): the wake counts with several waiters; a
 * signal interrupting the wait (EINTR); a signal sent right after the wake, taken while the woken
 * thread spins without a system call; a checked ping-pong; pthread_join
 * (the CLONE_CHILD_CLEARTID wake at thread exit).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* include/uapi/linux/futex.h (musl has no kernel headers) */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static long futex(atomic_int *addr, int op, int val)
{
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
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

static volatile sig_atomic_t caught;

static void on_signal(int signo)
{
    (void)signo;
    caught++;
}

static atomic_int word, arrived;

static void *waiter(void *arg)
{
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    while (atomic_load(&word) == 0)
        futex(&word, FUTEX_WAIT_PRIVATE, 0);
    return NULL;
}

static void wake_counts(void)
{
    pthread_t t[3];
    atomic_store(&word, 0);
    atomic_store(&arrived, 0);
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, waiter, NULL);
    while (atomic_load(&arrived) < 3)
        nap_ms(1);
    nap_ms(50);  /* all three asleep in FUTEX_WAIT */
    atomic_store(&word, 1);
    long a = futex(&word, FUTEX_WAKE_PRIVATE, 2);
    nap_ms(20);
    long b = futex(&word, FUTEX_WAKE_PRIVATE, 2);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    printf("woken: %ld then %ld\n", a, b);
}

static pthread_t main_thread;
static atomic_int flag;

static void *signaller(void *arg)
{
    long ms = (long)arg;
    nap_ms(ms);
    pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

/* A signal with a handler (no SA_RESTART) ends the wait with EINTR. */
static void interrupted(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    caught = 0;
    atomic_store(&flag, 0);
    pthread_t t;
    pthread_create(&t, NULL, signaller, (void *)30L);
    long r = futex(&flag, FUTEX_WAIT_PRIVATE, 0);
    printf("interrupted: %ld %s caught %d\n", r, r < 0 ? strerror(errno) : "", (int)caught);
    pthread_join(t, NULL);
}

static atomic_int turn;
static int rounds = 300;

static void *partner(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        while (atomic_load(&turn) != 1)
            futex(&turn, FUTEX_WAIT_PRIVATE, 0);
        atomic_store(&turn, 0);
        futex(&turn, FUTEX_WAKE_PRIVATE, 1);
    }
    return NULL;
}

static void ping_pong(void)
{
    pthread_t t;
    atomic_store(&turn, 0);
    pthread_create(&t, NULL, partner, NULL);
    int done = 0;
    for (int i = 0; i < rounds; i++) {
        atomic_store(&turn, 1);
        futex(&turn, FUTEX_WAKE_PRIVATE, 1);
        while (atomic_load(&turn) != 0)
            futex(&turn, FUTEX_WAIT_PRIVATE, 1);
        done++;
    }
    pthread_join(t, NULL);
    printf("ping-pong: %d rounds\n", done);
}

static atomic_int go;

static void *wake_then_signal(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        while (atomic_load(&go) != 1)
            nap_ms(1);
        nap_ms(2);
        atomic_store(&go, 2);
        futex(&go, FUTEX_WAKE_PRIVATE, 1);
        pthread_kill(main_thread, SIGUSR1);
    }
    return NULL;
}

static void signal_after_wake(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, wake_then_signal, NULL);
    int late = 0;
    for (int i = 0; i < 20; i++) {
        caught = 0;
        atomic_store(&go, 1);
        while (atomic_load(&go) == 1)
            futex(&go, FUTEX_WAIT_PRIVATE, 1);
        double end = now_s() + 5;
        while (!caught && now_s() < end)
            ;
        late += !caught;
    }
    pthread_join(t, NULL);
    printf("signals after the wake-up, not taken within 5 s: %d\n", late);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    main_thread = pthread_self();
    wake_counts();
    interrupted();
    ping_pong();
    signal_after_wake();
    return 0;
}
