/* A second thread reads a file one byte per read(2) while the main
 * thread sleeps in pthread_join, then compares what it got with the file
 * read again in one pread(2), and checks the file offset.
 *
 * With kvmsentry --syscall-path=ring this is the ring path's stale-answer
 * case (kvmsentry/kernel/ring.py): a thread of a multi-threaded process
 * has its reads posted to the ring (the exit-free read serves only
 * single-threaded processes), and a read once now and then returned the
 * previous read's answer (1) without running: the byte stayed 0, the
 * offset did not move, and the thread read one byte more than the file.
 * Prints the counts; natively: no difference. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *path;
static char report[256];

static void *reader(void *arg) {
    (void)arg;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(report, sizeof report, "open failed\n");
        return NULL;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || size > (1 << 30) || lseek(fd, 0, SEEK_SET) != 0) {
        snprintf(report, sizeof report, "lseek failed\n");
        return NULL;
    }
    unsigned char *got = calloc(size + 4096, 1);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, got + n, 1)) > 0 && n < (size_t)size + 4096)
        n += r;
    off_t end = lseek(fd, 0, SEEK_CUR);
    unsigned char *want = calloc(size + 1, 1);
    ssize_t whole = pread(fd, want, size, 0);
    size_t differ = 0;
    long first = -1;
    for (size_t i = 0; i < (size_t)size; i++)
        if (got[i] != want[i] && differ++ == 0)
            first = (long)i;
    snprintf(report, sizeof report, "size %ld, read %zu bytes, pread %zd, offset %ld, %zu differ (first at %ld)\n",
             (long)size, n, whole, (long)end, differ, first);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    path = argv[1];
    pthread_t t;
    if (pthread_create(&t, NULL, reader, NULL) != 0)
        return 3;
    pthread_join(t, NULL);
    fputs(report, stdout);
    return 0;
}
