/*
 * MAP_SHARED of a file open for writing must reach the file: under
 * kvmsentry, a host file beneath a rw bind mount (written back at msync
 * and munmap/exit). argv[1] is a 3-page file of 'a's. Writes "synced"
 * at 4097 and msyncs, checks a second mapping and pread see it, then
 * writes "unmapped" at 8192 and munmaps, and "at-exit" at 100 of a third
 * mapping and exits without munmap. The test reads the file afterwards.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) { perror("open"); return 1; }
    char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    memcpy(p + 4097, "synced", 6);
    if (msync(p, 3 * 4096, MS_SYNC)) { perror("msync"); return 1; }
    char buf[7] = {0};
    pread(fd, buf, 6, 4097);
    char *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
    printf("pread after msync: %s, other mapping: %.6s\n", buf, q + 1);
    memcpy(p + 8192, "unmapped", 8);
    munmap(p, 3 * 4096);
    munmap(q, 4096);
    char *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(r + 100, "at-exit", 7);
    printf("done\n");
    return 0;
}
