/* Bad arguments whose errno depends on the order Linux checks them in:
 * each line is "call: result errno". Raw syscalls, no libc wrapper.
 * Nothing here changes anything on the host (every call fails, or locks
 * nothing). Native vs kvmsentry: tests/integration/test_errno_order.py. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}

#define BAD ((void *)1)  /* an unmapped address */

int main(void) {
    long neg = -5;
    int devnull = open("/dev/null", O_RDWR);
    int siginfo[32];
    memset(siginfo, 0, sizeof siginfo);

    show("pread64 bad fd, pos<0", syscall(SYS_pread64, -1, NULL, 1, -1L));
    show("pwrite64 bad fd, pos<0", syscall(SYS_pwrite64, -1, BAD, 1L << 40, -5L));
    show("sendfile bad offset ptr", syscall(SYS_sendfile, -1, -1, BAD, 1));
    show("sendfile bad in_fd, pos<0", syscall(SYS_sendfile, devnull, -1, &neg, 1));
    show("sendfile pos<0, bad out_fd", syscall(SYS_sendfile, -1, devnull, &neg, 1));
    show("flock LOCK_MAND bad fd", syscall(SYS_flock, -1, 32 | LOCK_SH));
    show("flock op 0 bad fd", syscall(SYS_flock, -1, 0));
    show("flock LOCK_SH bad fd", syscall(SYS_flock, -1, LOCK_SH));
    show("rt_sigqueueinfo bad info", syscall(SYS_rt_sigqueueinfo, getpid(), 1000, BAD));
    siginfo[2] = 0;  /* si_code SI_USER: from "the kernel" */
    show("rt_sigqueueinfo SI_USER other pid", syscall(SYS_rt_sigqueueinfo, 999999, 1000, siginfo));
    siginfo[2] = -1; /* SI_QUEUE */
    show("rt_sigqueueinfo no such pid", syscall(SYS_rt_sigqueueinfo, 999999, 1000, siginfo));
    show("rt_sigqueueinfo bad signal", syscall(SYS_rt_sigqueueinfo, getpid(), 1000, siginfo));
    show("mknod bad type, bad path", syscall(SYS_mknod, BAD, 0xf000 | 0644, 0));
    show("mknod S_IFDIR, bad path", syscall(SYS_mknod, BAD, S_IFDIR | 0755, 0));
    show("mknodat bad type, bad fd", syscall(SYS_mknodat, -1, "x", 0xe000, 0));
    show("sched_getaffinity len 1, no such pid", syscall(SYS_sched_getaffinity, 999999, 1, BAD));
    show("renameat2 bad flags, bad paths", syscall(SYS_renameat2, -1, BAD, -1, BAD, 0x100));
    show("renameat2 EXCHANGE|NOREPLACE", syscall(SYS_renameat2, -1, BAD, -1, BAD, 3));
    show("preadv2 flag, bad fd", syscall(SYS_preadv2, -1, NULL, 1, 0L, 0L, 1));
    show("preadv2 flag, pos<-1", syscall(SYS_preadv2, -1, NULL, 1, -5L, 0L, 1));
    show("preadv2 flag, bad iovcnt", syscall(SYS_preadv2, devnull, NULL, -1, -1L, 0L, 8));
    show("pwritev2 flag, bad iov", syscall(SYS_pwritev2, devnull, BAD, 1, -1L, 0L, 0x80000000L));
    return 0;
}
