/* A signal handler interrupting a guest that spins in user code (the vCPU is kicked out of KVM_RUN). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/time.h>
static volatile int hits;
static void h(int s) { (void)s; hits++; }
int main(void) {
    struct sigaction sa = {0}; sa.sa_handler = h; sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, 0);
    volatile unsigned long x = 0;
    while (hits < 10) x++;
    /* The timer still runs: another tick may come before hits is read
     * again (seen under load), so only the threshold is printed. */
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, 0);
    printf("hits >= 10: %d, spun %d\n", hits >= 10, x > 0);
    double d = 0; for (int i = 1; i < 1000; i++) d += 1.0 / i;
    printf("sum %.6f\n", d);
    return 0;
}
