/*
 * read_efault.c: a read(2)/readv(2) of a regular file into a bad buffer
 * moves the offset by the bytes stored only (none: EFAULT; some: that
 * count), as Linux's filemap_read. Prints each result and the offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void)
{
    int fd = open("/etc/passwd", O_RDONLY);
    char buf[16];
    void *bad = (void *)(unsigned long)8;  /* never mapped */
    ssize_t r = read(fd, bad, sizeof buf);
    printf("bad read %zd %s, offset %ld\n", r, r < 0 ? strerror(errno) : "", (long)lseek(fd, 0, SEEK_CUR));
    r = read(fd, buf, sizeof buf);
    printf("read %zd, offset %ld\n", r, (long)lseek(fd, 0, SEEK_CUR));
    struct iovec iov[2] = {{buf, 4}, {bad, 4}};
    r = readv(fd, iov, 2);
    printf("readv partial %zd, offset %ld\n", r, (long)lseek(fd, 0, SEEK_CUR));
    return 0;
}
