/* fork + execve.  argv[1] selects the case:
 *   busybox          fork, execve /bin/busybox echo, wait
 *   vfork            vfork, execve /bin/busybox echo, then vfork + _exit(3)
 *   error PATH       execve(PATH) and print the errno's name
 *   run PATH ARGS... execve(PATH, [PATH, ARGS...]) in a child, print its status
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *errname(int e)
{
    switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case E2BIG: return "E2BIG";
    case EFAULT: return "EFAULT";
    default: return "other";
    }
}

static void report(const char *what, int status)
{
    if (WIFEXITED(status))
        printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by signal %d\n", what, WTERMSIG(status));
    else
        printf("%s: status 0x%x\n", what, status);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 2;
    if (strcmp(argv[1], "busybox") == 0) {
        char *args[] = {"/bin/busybox", "echo", "hello from", "busybox", NULL};
        pid_t pid = fork();
        if (pid == 0) {
            execve(args[0], args, environ);
            _exit(127);
        }
        int status;
        printf("waited same pid: %d\n", waitpid(pid, &status, 0) == pid);
        report("busybox echo", status);
        char *sh[] = {"/bin/busybox", "sh", "-c", "exit 42", NULL};
        pid = fork();
        if (pid == 0) {
            execve(sh[0], sh, environ);
            _exit(127);
        }
        waitpid(pid, &status, 0);
        report("busybox sh -c 'exit 42'", status);
        return 0;
    }
    if (strcmp(argv[1], "vfork") == 0) {
        char *args[] = {"/bin/busybox", "echo", "vforked child", NULL};
        int status;
        pid_t pid = vfork();
        if (pid == 0) {
            execve(args[0], args, environ);
            _exit(127);
        }
        waitpid(pid, &status, 0);
        report("vfork + execve", status);
        pid = vfork();
        if (pid == 0)
            _exit(3);
        printf("parent resumed after the vforked child's _exit\n");
        waitpid(pid, &status, 0);
        report("vfork + _exit(3)", status);
        pid = vfork();
        if (pid == 0) {
            char *missing[] = {"/nonexistent", NULL};
            execve(missing[0], missing, environ);
            _exit(errno == ENOENT ? 4 : 5);
        }
        waitpid(pid, &status, 0);
        report("vfork + failed execve", status);
        return 0;
    }
    if (strcmp(argv[1], "error") == 0 && argc == 3) {
        char *args[] = {argv[2], NULL};
        execve(argv[2], args, environ);
        printf("execve %s: %s\n", argv[2], errname(errno));
        return 0;
    }
    if (strcmp(argv[1], "run") == 0 && argc >= 3) {
        pid_t pid = fork();
        if (pid == 0) {
            execve(argv[2], argv + 2, environ);
            printf("execve failed: %s\n", errname(errno));
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        report("child", status);
        return 0;
    }
    return 2;
}
