/* A process tries to post a system call for another process through the
 * ring path's request pages (kvmsentry --syscall-path=ring; layout.py
 * RING_AREA_GVA): the child writes a forged close(20) request (state
 * POSTED) into every request-page address of every vCPU, in the current
 * per-address-space area and in the shared slot the pages once lived in,
 * while the parent keeps its own poller busy and checks that its fd 20,
 * which only it has, stays open. Natively every such address is kernel
 * memory: each write faults (SIGSEGV). Under kvmsentry each must fault
 * too, except the child's own vCPU's page, where a forged close(20) runs
 * as the child (which has no fd 20: EBADF, harmless). */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define VCPU_STRIDE 0x10000UL
#define MAX_VCPUS 256
static const uintptr_t areas[] = {
    0xffffff7fff000000UL,  /* RING_AREA_GVA: per address space */
    0xffffff8000201000UL,  /* the old shared slot-511 request pages */
};

static sigjmp_buf env;
static void on_segv(int s) { (void)s; siglongjmp(env, 1); }

static int child(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0);
    volatile int writable = 0;
    for (unsigned a = 0; a < sizeof areas / sizeof areas[0]; a++) {
        for (unsigned long i = 0; i < MAX_VCPUS; i++) {
            volatile uint64_t *page = (volatile uint64_t *)(areas[a] + i * VCPU_STRIDE);
            if (sigsetjmp(env, 1))
                continue;
            page[1] = SYS_close;
            page[2] = 20;
            *(volatile uint32_t *)page = 1;  /* RING_POSTED */
            writable++;
            usleep(1000);  /* time for a poller to take it */
        }
    }
    /* Its own vCPU's page at most: never another process's. */
    printf("child: %s\n", writable <= 1 ? "no foreign request page" : "FOREIGN REQUEST PAGES WRITABLE");
    return writable <= 1 ? 0 : 1;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0)
        return child();
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0 || dup2(fd, 20) != 20) {
        perror("dup2");
        return 2;
    }
    close(fd);
    int status, closed = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        /* Calls keep the parent's poller hot, so that a forged post in its
         * page would be taken. */
        for (int k = 0; k < 100; k++) {
            if (fcntl(20, F_GETFD) < 0)
                closed = 1;
            write(20, "x", 1);
        }
    }
    if (fcntl(20, F_GETFD) < 0)
        closed = 1;
    printf("parent: fd 20 %s\n", closed ? "CLOSED BY ANOTHER PROCESS" : "still open");
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
