/* Job control: SIGSTOP, waitpid(WUNTRACED), SIGCONT, waitpid(WCONTINUED). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void) {
    pid_t p = fork();
    if (p == 0) { for (;;) pause(); }
    kill(p, SIGSTOP);
    int st; pid_t r = waitpid(p, &st, WUNTRACED);
    printf("stopped %d sig %d\n", r == p && WIFSTOPPED(st), WSTOPSIG(st));
    kill(p, SIGCONT);
    r = waitpid(p, &st, WCONTINUED);
    printf("continued %d\n", r == p && WIFCONTINUED(st));
    kill(p, SIGTERM);
    r = waitpid(p, &st, 0);
    printf("killed %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
    return 0;
}
