/* The getpid family, which kvmsentry answers without a VM exit
 * (guest/runtime.S vcpu_syscall_entry): the answers must stay exact
 * across threads, fork, execve, reparenting and signals that arrive
 * while a loop makes nothing but these calls. Prints relations, never
 * host pids, so that the native run and kvmsentry agree.
 * argv[1] == "exec" EXPECTED_PID: the re-executed child checks its pid. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 4

static long raw(long nr) { return syscall(nr); }

static long tids[NTHREADS], pids[NTHREADS];

static void *thread_main(void *arg)
{
    long i = (long)arg;
    long tid = 0, pid = 0;
    for (int k = 0; k < 20000; k++) {
        long t = raw(SYS_gettid), p = raw(SYS_getpid);
        if ((tid && t != tid) || (pid && p != pid))
            tid = -1;
        if (tid != -1) { tid = t; pid = p; }
    }
    tids[i] = tid;
    pids[i] = pid;
    return NULL;
}

static volatile sig_atomic_t ticks;
static void on_alarm(int sig) { (void)sig; ticks++; }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && strcmp(argv[1], "exec") == 0) {
        printf("after execve: same pid %d, tid == pid %d\n",
               raw(SYS_getpid) == atol(argv[2]), raw(SYS_gettid) == raw(SYS_getpid));
        return 0;
    }
    long pid = raw(SYS_getpid);
    printf("libc agrees: %d %d %d\n", getpid() == pid, getppid() == raw(SYS_getppid), gettid() == pid);
    printf("ids: uid %ld euid %ld gid %ld egid %ld\n", raw(SYS_getuid), raw(SYS_geteuid),
           raw(SYS_getgid), raw(SYS_getegid));

    pthread_t th[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, thread_main, (void *)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    int same_pid = 1, distinct = 1, not_main = 1;
    for (int i = 0; i < NTHREADS; i++) {
        same_pid &= pids[i] == pid;
        not_main &= tids[i] > 0 && tids[i] != pid;
        for (int j = 0; j < i; j++)
            distinct &= tids[i] != tids[j];
    }
    printf("threads: same pid %d, distinct tids %d, tid != pid %d\n", same_pid, distinct, not_main);

    /* Signals while only exit-free calls run: each tick must be delivered
     * and every answer stay right (a kick may land in the runtime's stub
     * or in the vDSO trampoline). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    long wrong = 0;
    while (ticks < 100) {
        if (raw(SYS_getpid) != pid) wrong++;
        if (raw(SYS_gettid) != pid) wrong++;
        if (raw(SYS_getuid) != 0 && raw(SYS_getuid) != raw(SYS_geteuid)) wrong++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("signals during getpid loop: 100 ticks, wrong answers %ld\n", wrong);

    pid_t child = fork();
    if (child == 0) {
        printf("child: new pid %d, ppid is parent %d, tid == pid %d\n",
               raw(SYS_getpid) != pid, raw(SYS_getppid) == pid, raw(SYS_gettid) == raw(SYS_getpid));
        char num[32];
        snprintf(num, sizeof num, "%ld", raw(SYS_getpid));
        execl("/proc/self/exe", argv[0], "exec", num, (char *)NULL);
        _exit(99);
    }
    int status;
    waitpid(child, &status, 0);
    printf("child status %d\n", WEXITSTATUS(status));

    /* Reparenting: the orphan spins on getppid alone (no exits) until
     * its parent's exit changes the answer. */
    int fds[2], go[2];
    pipe(fds);
    pipe(go);
    child = fork();
    if (child == 0) {
        long me = raw(SYS_getpid);
        if (fork() == 0) {
            char c;
            close(go[1]);
            read(go[0], &c, 1);
            long spins = 0;
            while (raw(SYS_getppid) == me && spins < 4000000000L)
                spins++;
            char line[80];
            int n = snprintf(line, sizeof line, "orphan: parent changed %d\n", raw(SYS_getppid) != me);
            write(fds[1], line, n);
            _exit(0);
        }
        _exit(0);
    }
    close(fds[1]);
    close(go[0]);
    waitpid(child, &status, 0);
    close(go[1]);
    char buf[80];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0)
        fwrite(buf, 1, n, stdout);
    return 0;
}
