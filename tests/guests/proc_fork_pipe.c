/* Five children report through one pipe and exit with 10 + i; the parent
 * sorts their lines (the order of writes is the scheduler's) and collects
 * each exit status with waitpid, in fork order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    int fds[2];
    pid_t pids[5];
    if (pipe(fds) != 0)
        return 1;
    fflush(stdout);
    for (int i = 0; i < 5; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[i] == 0) {
            char line[64];
            close(fds[0]);
            int n = snprintf(line, sizeof line, "child %d: ppid is my parent: %s\n", i,
                             getppid() > 0 ? "yes" : "no");
            if (write(fds[1], line, n) != n)
                _exit(99);
            _exit(10 + i);
        }
    }
    close(fds[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += n;
    buf[len] = 0;
    char *lines[16];
    int count = 0;
    for (char *s = strtok(buf, "\n"); s && count < 16; s = strtok(NULL, "\n"))
        lines[count++] = s;
    qsort(lines, count, sizeof lines[0], cmp);
    for (int i = 0; i < count; i++)
        printf("%s\n", lines[i]);
    for (int i = 0; i < 5; i++) {
        int status;
        pid_t got = waitpid(pids[i], &status, 0);
        printf("waitpid child %d: same pid %d, exited %d, status %d\n", i, got == pids[i],
               WIFEXITED(status), WEXITSTATUS(status));
    }
    int status;
    printf("waitpid with no children: %d\n", (int)waitpid(-1, &status, 0));
    return 0;
}
