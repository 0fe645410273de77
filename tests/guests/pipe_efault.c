/*
 * pipe_efault.c: a read(2)/readv(2) from a pipe into a bad buffer takes
 * only the pipe buffers it could store whole; the rest stays in the pipe
 * (fs/pipe.c pipe_read: a short copy_page_to_iter ends the read, EFAULT
 * when nothing was taken). Prints each result and FIONREAD after it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static int unread(int fd)
{
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    return n;
}

static void report(const char *what, ssize_t r, int fd)
{
    printf("%s: %zd %s, left %d\n", what, r, r < 0 ? strerror(errno) : "", unread(fd));
}

static void drain(int fd)
{
    char buf[8192];
    ssize_t r = read(fd, buf, sizeof buf);
    printf("drain: %zd", r);
    if (r > 0 && r <= 16)
        printf(" \"%.*s\"", (int)r, buf);
    printf("\n");
}

int main(void)
{
    int p[2];
    static char big[4096];
    char buf[4096];
    void *volatile bad = (void *)(unsigned long)8;  /* never mapped */
    if (pipe(p))
        return 1;
    /* Two pages mapped, the third not: a buffer across the boundary
     * is stored in part before the fault. */
    char *page = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED || munmap(page + 2 * 4096, 4096))
        return 1;
    char *end = page + 2 * 4096;

    write(p[1], "abcdefgh", 8);
    report("read bad", read(p[0], bad, 8), p[0]);
    report("read straddling", read(p[0], end - 3, 8), p[0]);
    struct iovec iov[2] = {{buf, 4}, {bad, 4}};
    report("readv good+bad, one buffer", readv(p[0], iov, 2), p[0]);
    drain(p[0]);

    /* Two pipe buffers: a full page, then 4 bytes. */
    memset(big, 'x', sizeof big);
    write(p[1], big, sizeof big);
    write(p[1], "tail", 4);
    struct iovec iov2[2] = {{buf, 4096}, {bad, 4}};
    report("readv two buffers, bad second", readv(p[0], iov2, 2), p[0]);
    drain(p[0]);
    write(p[1], big, sizeof big);
    write(p[1], "tail", 4);
    report("read two buffers, second straddling", read(p[0], end - 4098, 4100), p[0]);
    drain(p[0]);

    /* Packet mode: the packet stays whole. */
    int q[2];
    if (pipe2(q, O_DIRECT))
        return 1;
    write(q[1], "packet1", 7);
    write(q[1], "packet2", 7);
    report("packet read bad", read(q[0], bad, 7), q[0]);
    drain(q[0]);
    drain(q[0]);

    /* Nonblocking and empty: EAGAIN before any fault check. */
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    report("empty nonblocking read bad", read(p[0], bad, 8), p[0]);
    close(p[1]);
    report("EOF read bad", read(p[0], bad, 8), p[0]);
    return 0;
}
