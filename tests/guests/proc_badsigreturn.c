/* A handler that sets a non-canonical return address: SIGSEGV (139), as Linux, not a sentry failure. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <ucontext.h>
static void h(int s, siginfo_t *i, void *ctx) {
    ucontext_t *uc = ctx;
    uc->uc_mcontext.gregs[REG_RIP] = 0x800000000000ULL; /* non-canonical */
}
int main(void) {
    struct sigaction sa; memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    printf("before\n"); fflush(stdout);
    raise(SIGUSR1);
    printf("after\n");
    return 0;
}
