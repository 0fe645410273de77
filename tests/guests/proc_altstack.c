/* sigaltstack + SA_ONSTACK: the handler's locals lie inside the alternate
 * stack and sigaltstack reports SS_ONSTACK there; a stack overflow is
 * caught on the alternate stack and left with siglongjmp. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static char *alt_base;
static size_t alt_size;
static volatile int on_alt, flag_onstack, usr2_on_alt = -1;
static sigjmp_buf env;

static int inside(void *p)
{
    return (char *)p >= alt_base && (char *)p < alt_base + alt_size;
}

static void usr1(int sig)
{
    volatile int local = sig;
    stack_t now;
    on_alt = inside((void *)&local);
    sigaltstack(NULL, &now);
    flag_onstack = (now.ss_flags & SS_ONSTACK) != 0;
}

static void usr2(int sig)
{
    volatile int local = sig;
    usr2_on_alt = inside((void *)&local);
}

static void segv(int sig)
{
    volatile int local = sig;
    on_alt = inside((void *)&local);
    siglongjmp(env, 1);
}

static int depth;
static int recurse(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    if (++depth > 1 << 30)
        return 0;
    return recurse(n + 1) + pad[0];
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    alt_size = 64 * 1024;
    alt_base = malloc(alt_size);
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    stack_t old;
    sigaltstack(NULL, &old);
    printf("registered: sp matches %d, size %zu, flags %d\n", old.ss_sp == alt_base,
           old.ss_size, old.ss_flags);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = usr1;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = usr2;
    sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);

    raise(SIGUSR1);
    printf("SA_ONSTACK handler on the alternate stack: %d, SS_ONSTACK: %d\n", on_alt, flag_onstack);
    raise(SIGUSR2);
    printf("handler without SA_ONSTACK on the alternate stack: %d\n", usr2_on_alt);
    sigaltstack(NULL, &old);
    printf("outside the handler SS_ONSTACK: %d\n", (old.ss_flags & SS_ONSTACK) != 0);

    struct rlimit rl = {8 << 20, 8 << 20};
    setrlimit(RLIMIT_STACK, &rl);
    sa.sa_handler = segv;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    on_alt = 0;
    if (sigsetjmp(env, 1) == 0) {
        recurse(0);
        puts("recursion returned");
    } else {
        printf("stack overflow caught on the alternate stack: %d, depth > 1000: %d\n", on_alt,
               depth > 1000);
    }
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    sigaltstack(NULL, &old);
    printf("disabled: %d\n", (old.ss_flags & SS_DISABLE) != 0);
    return 0;
}
