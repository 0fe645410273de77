/* SIGSEGV handler with SA_SIGINFO: si_addr and si_code for an unmapped
 * address (SEGV_MAPERR) and a read-only page (SEGV_ACCERR), leaving the
 * handler with siglongjmp; the signal mask is restored each time. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static void *volatile fault_addr;
static volatile int fault_code, faults;

static void handler(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    faults++;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    siglongjmp(env, sig);
}

static void try_write(volatile char *p, const char *what)
{
    fault_addr = NULL;
    int sig = sigsetjmp(env, 1);
    if (sig == 0) {
        *p = 1;
        printf("%s: no fault\n", what);
        return;
    }
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    printf("%s: signal %d, si_addr %s, si_code %s, SIGSEGV blocked after siglongjmp: %d\n", what,
           sig, fault_addr == (void *)p ? "matches" : "differs",
           fault_code == SEGV_MAPERR   ? "SEGV_MAPERR"
           : fault_code == SEGV_ACCERR ? "SEGV_ACCERR"
                                       : "other",
           sigismember(&mask, SIGSEGV));
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);

    try_write((char *)16, "null page");
    try_write((char *)0x7ff0dead0000UL, "unmapped high address");
    long page = sysconf(_SC_PAGESIZE);
    char *ro = mmap(NULL, page * 2, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    try_write(ro + page + 123, "read-only page");
    mprotect(ro, page * 2, PROT_READ | PROT_WRITE);
    try_write(ro + page + 123, "after mprotect");
    munmap(ro, page * 2);
    try_write(ro, "after munmap");
    printf("faults=%d\n", faults);
    /* Without a handler the next fault kills the process: status 139. */
    signal(SIGSEGV, SIG_DFL);
    char *volatile bad = (char *)8;
    *bad = 0;
    puts("not reached");
    return 0;
}
