/* splice(2), tee(2), vmsplice(2) and syncfs(2): what each moves, and the
 * errnos in fs/splice.c's order. Files are memfds (tmpfs on both sides);
 * every line is "what: result errno-name data". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ESPIPE: return "ESPIPE";
    case EAGAIN: return "EAGAIN";
    case EFAULT: return "EFAULT";
    default: return "other";
    }
}

static void show(const char *what, long rc) {
    printf("%-34s %ld %s\n", what, rc, rc < 0 ? ename(errno) : "0");
}

static void drain(const char *what, int fd) {
    char buf[256];
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    ssize_t n = read(fd, buf, sizeof buf);
    fcntl(fd, F_SETFL, fl);
    printf("%-34s [%.*s]\n", what, n > 0 ? (int)n : 0, buf);
}

int main(void) {
    int file = memfd_create("splice", 0), other = memfd_create("other", 0);
    int p[2], q[2];
    pipe(p);
    pipe(q);
    write(file, "hello world", 11);

    loff_t off = 6;
    show("file->pipe at offset 6", splice(file, &off, p[1], NULL, 100, 0));
    printf("%-34s %lld\n", "  offset after", (long long)off);
    drain("  pipe holds", p[0]);
    lseek(file, 0, SEEK_SET);
    show("file->pipe at file offset, 5", splice(file, NULL, p[1], NULL, 5, 0));
    printf("%-34s %lld\n", "  file offset after", (long long)lseek(file, 0, SEEK_CUR));
    drain("  pipe holds", p[0]);
    off = 11;
    show("file->pipe at EOF", splice(file, &off, p[1], NULL, 5, 0));

    write(p[1], "ABCDEF", 6);
    off = 0;
    show("pipe->file at offset 0, 3", splice(p[0], NULL, file, &off, 3, 0));
    printf("%-34s %lld\n", "  offset after", (long long)off);
    char buf[64] = {0};
    pread(file, buf, 11, 0);
    printf("%-34s [%s]\n", "  file is", buf);
    show("pipe->pipe, 2", splice(p[0], NULL, q[1], NULL, 2, 0));
    drain("  q holds", q[0]);
    drain("  p holds", p[0]);

    show("len 0 with bad fds", splice(-1, NULL, -1, NULL, 0, 0));
    show("bad flags", splice(file, NULL, p[1], NULL, 1, 0x100));
    show("bad fd", splice(99, NULL, p[1], NULL, 1, 0));
    show("file->file", splice(file, NULL, other, NULL, 1, 0));
    off = 0;
    show("offset on the pipe side", splice(p[0], &off, file, NULL, 1, 0));
    show("offset on pipe side, bad fd mode", splice(p[1], &off, file, NULL, 1, 0));
    show("same pipe", splice(p[0], NULL, p[1], NULL, 1, 0));
    show("fd_in write-only", splice(p[1], NULL, file, NULL, 1, 0));
    show("bad offset pointer", splice(file, (loff_t *)8, p[1], NULL, 1, 0));
    off = -1;
    show("negative offset", splice(file, &off, p[1], NULL, 1, 0));
    show("empty pipe, SPLICE_F_NONBLOCK", splice(p[0], NULL, file, NULL, 1, SPLICE_F_NONBLOCK));
    int app = open("/proc/self/fd/3", O_WRONLY | O_APPEND);
    write(p[1], "x", 1);
    show("pipe->O_APPEND file", splice(p[0], NULL, app, NULL, 1, 0));
    drain("  p holds", p[0]);

    write(p[1], "abc", 3);
    show("tee 10", tee(p[0], q[1], 10, 0));
    drain("  q holds", q[0]);
    drain("  p still holds", p[0]);
    show("tee empty, NONBLOCK", tee(p[0], q[1], 10, SPLICE_F_NONBLOCK));
    show("tee from a file", tee(file, q[1], 10, 0));
    show("tee same pipe", tee(p[0], p[1], 10, 0));
    show("tee bad flags", tee(p[0], q[1], 10, 0x40));
    show("tee len 0", tee(p[0], q[1], 0, 0));

    struct iovec iov[2] = {{"xy", 2}, {"z", 1}};
    show("vmsplice into the write end", vmsplice(p[1], iov, 2, 0));
    char a[2] = {0}, b[8] = {0};
    struct iovec out[2] = {{a, 1}, {b, 7}};
    show("vmsplice from the read end", vmsplice(p[0], out, 2, 0));
    printf("%-34s [%c][%s]\n", "  got", a[0], b);
    show("vmsplice on a file", vmsplice(file, iov, 2, 0));
    show("vmsplice bad flags", vmsplice(p[1], iov, 2, 0x80));

    close(p[1]);
    show("pipe->file, no writer, empty", splice(p[0], NULL, file, NULL, 5, 0));
    show("syncfs", syncfs(file));
    show("syncfs bad fd", syncfs(99));
    return 0;
}
