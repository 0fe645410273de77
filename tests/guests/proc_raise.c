/* raise(argv[1]) after a line on stdout: the status is 128 + the signal
 * for a terminating one, 0 for an ignored one (SIGCHLD, SIGURG). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int sig = argc > 1 ? atoi(argv[1]) : SIGTERM;
    printf("raising %d\n", sig);
    fflush(stdout);
    raise(sig);
    puts("still alive");
    return 0;
}
