/* Reparenting: a child forks a grandchild and exits; the orphaned
 * grandchild sees its parent change (to the sandbox's pid 1 under
 * kvmsentry, to init or a subreaper natively) and reports through a pipe.
 * With argv[1] == "init" (kvmsentry only: this process is pid 1) the
 * orphan becomes our child and we reap it with wait. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int as_init = argc > 1 && strcmp(argv[1], "init") == 0;
    if (as_init)
        printf("pid %d, ppid %d\n", (int)getpid(), (int)getppid());
    int fds[2], go[2];
    pipe(fds);
    pipe(go);
    pid_t child = fork();
    if (child == 0) {
        pid_t me = getpid();
        pid_t grandchild = fork();
        if (grandchild == 0) {
            char c;
            close(go[1]);
            read(go[0], &c, 1); /* until the child has exited */
            for (int i = 0; i < 1000 && getppid() == me; i++) {
                struct timespec ts = {0, 10000000};
                nanosleep(&ts, NULL);
            }
            char line[128];
            int n = snprintf(line, sizeof line, "grandchild: parent changed %d, new parent is pid 1 %d\n",
                             getppid() != me, getppid() == 1);
            write(fds[1], line, n);
            _exit(5);
        }
        _exit(grandchild > 0 ? 3 : 4);
    }
    close(fds[1]);
    close(go[0]);
    int status;
    waitpid(child, &status, 0);
    printf("child exited %d\n", WEXITSTATUS(status));
    close(go[1]);
    char buf[256];
    ssize_t n = read(fds[0], buf, sizeof buf);
    char *nl = n > 0 ? memchr(buf, '\n', n) : NULL;
    if (nl)
        n = nl - buf + 1;
    if (!as_init) /* natively the new parent is not us; print only the change */
        n = nl ? strchr(buf, ',') - buf : 0;
    printf("%.*s%s", (int)(n > 0 ? n : 0), buf, as_init ? "" : "\n");
    if (as_init) {
        pid_t r = wait(&status);
        printf("pid 1 reaped the orphan: %d, status %d\n", r > 0, WEXITSTATUS(status));
        r = wait(&status);
        printf("then wait: %s\n", r < 0 && errno == ECHILD ? "ECHILD" : "other");
    }
    /* EOF once the grandchild (the last writer) has gone. */
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        ;
    printf("pipe EOF: %d\n", n == 0);
    return 0;
}
