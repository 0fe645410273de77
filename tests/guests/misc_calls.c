/*
 * misc_calls.c: small calls a program may make in passing, with their
 * errors: mlockall, munlockall, mlock2, readahead, sync_file_range,
 * personality, mincore, setgroups/getgroups.
 *
 * Prints one line per check: the call, its result and errno. Compared
 * with Linux run as the same user.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    printf("%s = %ld", what, r);
    if (r < 0)
        printf(" (errno %d)", errno);
    printf("\n");
    errno = 0;
}

int main(void)
{
    char line0[256];
    /* mlockall(2): flags MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT (with one of the others). */
    show("mlockall(0)", syscall(SYS_mlockall, 0));
    show("mlockall(CURRENT)", syscall(SYS_mlockall, MCL_CURRENT));
    show("mlockall(CURRENT|FUTURE)", syscall(SYS_mlockall, MCL_CURRENT | MCL_FUTURE));
    show("mlockall(ONFAULT)", syscall(SYS_mlockall, MCL_ONFAULT));
    show("mlockall(FUTURE|ONFAULT)", syscall(SYS_mlockall, MCL_FUTURE | MCL_ONFAULT));
    show("mlockall(0x10)", syscall(SYS_mlockall, 0x10));
    show("munlockall()", syscall(SYS_munlockall));

    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("mlock2(p, 2 pages, 0)", syscall(SYS_mlock2, p, 2 * page, 0));
    show("mlock2(p, 1, MLOCK_ONFAULT)", syscall(SYS_mlock2, p, 1, MLOCK_ONFAULT));
    show("mlock2(p, 1, 2)", syscall(SYS_mlock2, p, 1, 2));
    munmap(p + 2 * page, page);
    show("mlock2(hole)", syscall(SYS_mlock2, p, 4 * page, 0));
    show("munlock(p, 2 pages)", syscall(SYS_munlock, p, 2 * page));

    /* mincore(2): one byte per page, bit 0 = resident. */
    unsigned char vec[4] = {0xaa, 0xaa, 0xaa, 0xaa};
    p[0] = 1;  /* page 0 touched */
    show("mincore(p, 2 pages)", syscall(SYS_mincore, p, 2 * page, vec));
    printf("vec[0] & 1 = %d\n", vec[0] & 1);
    show("mincore(p+1)", syscall(SYS_mincore, p + 1, page, vec));
    show("mincore(hole)", syscall(SYS_mincore, p, 4 * page, vec));
    show("mincore(bad vec)", syscall(SYS_mincore, p, page, (void *)8));
    show("mincore(len 0)", syscall(SYS_mincore, p, 0, vec));

    /* readahead(2) and sync_file_range(2) on a file, a pipe, a bad fd. */
    char path[] = "/var/tmp/misc_calls_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    write(fd, "hello", 5);
    int pfd[2];
    pipe(pfd);
    show("readahead(file)", syscall(SYS_readahead, fd, 0, 4096));
    show("readahead(pipe)", syscall(SYS_readahead, pfd[0], 0, 4096));
    show("readahead(bad fd)", syscall(SYS_readahead, 999, 0, 4096));
    int wfd = open(path, O_WRONLY);
    show("readahead(write-only)", syscall(SYS_readahead, wfd, 0, 4096));
    show("sync_file_range(file, WRITE)", syscall(SYS_sync_file_range, fd, 0, 0, SYNC_FILE_RANGE_WRITE));
    show("sync_file_range(file, all)", syscall(SYS_sync_file_range, fd, 0, 5,
                                                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
    show("sync_file_range(write-only)", syscall(SYS_sync_file_range, wfd, 0, 0, SYNC_FILE_RANGE_WRITE));
    show("sync_file_range(flags 8)", syscall(SYS_sync_file_range, fd, 0, 0, 8));
    show("sync_file_range(pipe)", syscall(SYS_sync_file_range, pfd[1], 0, 0, 0));
    show("sync_file_range(bad fd)", syscall(SYS_sync_file_range, 999, 0, 0, 0));
    unlink(path);

    /* personality(2): 0xffffffff asks, anything else sets and returns the old one. */
    show("personality(query)", syscall(SYS_personality, 0xffffffffUL));
    show("personality(ADDR_NO_RANDOMIZE)", syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE));
    show("personality(query)", syscall(SYS_personality, 0xffffffffUL));
    char persona[32] = {0};
    FILE *pf = fopen("/proc/self/personality", "r");
    if (pf && fgets(persona, sizeof persona, pf))
        printf("/proc/self/personality %s", persona);
    if (pf)
        fclose(pf);
    show("personality(PER_LINUX)", syscall(SYS_personality, PER_LINUX));
    show("personality(query)", syscall(SYS_personality, 0xffffffffUL));

    /* setgroups(2) then getgroups(2). */
    gid_t groups[3] = {30, 10, 20};  /* kept sorted */
    show("setgroups(3)", syscall(SYS_setgroups, 3, groups));
    gid_t got[8] = {0};
    long n = syscall(SYS_getgroups, 8, got);
    show("getgroups(8)", n);
    for (long i = 0; i < n; i++)
        printf("group %u\n", got[i]);
    show("getgroups(0)", syscall(SYS_getgroups, 0, NULL));
    show("getgroups(1)", syscall(SYS_getgroups, 1, got));
    show("setgroups(bad ptr)", syscall(SYS_setgroups, 2, (void *)8));
    show("setgroups(-1)", syscall(SYS_setgroups, -1, groups));
    show("setgroups(0)", syscall(SYS_setgroups, 0, NULL));
    FILE *st0 = fopen("/proc/self/status", "r");
    while (st0 && fgets(line0, sizeof line0, st0))
        if (strncmp(line0, "Groups:", 7) == 0)
            printf("no groups: [%s]\n", strtok(line0, "\n"));
    if (st0)
        fclose(st0);
    show("getgroups(8)", syscall(SYS_getgroups, 8, got));
    /* A supplementary group grants the group's permission bits. */
    show("setgroups(3) again", syscall(SYS_setgroups, 3, groups));
    char line[256];
    FILE *status = fopen("/proc/self/status", "r");
    while (status && fgets(line, sizeof line, status))
        if (strncmp(line, "Groups:", 7) == 0)
            printf("%s", line);
    if (status)
        fclose(status);
    char gpath[] = "/var/tmp/misc_calls_group_XXXXXX";
    int gfd = mkstemp(gpath);
    write(gfd, "g\n", 2);
    close(gfd);
    show("chown(0:20)", chown(gpath, 0, 20));
    show("chmod(0040)", chmod(gpath, 0040));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {  /* as uid/gid 1000, still in groups 10, 20, 30 */
        show("setresgid(1000)", setresgid(1000, 1000, 1000));
        show("setresuid(1000)", setresuid(1000, 1000, 1000));
        show("open(group 20 file) as 1000 in group 20", open(gpath, O_RDONLY));
        show("open(it, O_WRONLY)", open(gpath, O_WRONLY));
        show("setgroups(1) as 1000", syscall(SYS_setgroups, 1, groups));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    unlink(gpath);
    return 0;
}
