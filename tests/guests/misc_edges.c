/*
 * misc_edges.c: the edges of calls programs make in passing.
 *
 * personality(2): PER_LINUX32 and UNAME26 in uname(2), execve dropping
 * READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE giving two execs the same mmap
 * addresses; odd values (0xffffffff asks, upper bits ignored). mincore(2)
 * across a hole (the bytes before it, then ENOMEM), mlock(2)'s length
 * arithmetic modulo 2**64, mlock2's int flags, mlock of PROT_NONE (ENOMEM
 * unless MLOCK_ONFAULT). readahead(2) and sync_file_range(2): the order
 * of their errors, negative offsets and lengths. As root, setgroups(2)
 * with the gid -1 (EINVAL) and duplicates (kept). System call numbers
 * with bits above 32 (ignored) and -1 (ENOSYS). Prints one line per check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    printf("%s = %ld", what, r);
    if (r < 0)
        printf(" (errno %d)", errno);
    printf("\n");
    fflush(stdout);
    errno = 0;
}

/* The address of a fresh mapping in a newly exec'd copy of this program. */
static unsigned long mmap_after_exec(const char *self)
{
    int p[2];
    if (pipe(p))
        exit(1);
    pid_t child = fork();
    if (child == 0) {
        dup2(p[1], 1);
        execl(self, self, "mmap", (char *)NULL);
        _exit(99);
    }
    close(p[1]);
    char buf[64] = "";
    if (read(p[0], buf, sizeof buf - 1) < 0)
        exit(1);
    close(p[0]);
    waitpid(child, NULL, 0);
    return strtoul(buf, NULL, 16);
}

static void personalities(const char *self)
{
    struct utsname u;
    show("personality asks", syscall(SYS_personality, 0xffffffffL));
    show("personality -1 asks", syscall(SYS_personality, -1L));
    show("personality upper bits", syscall(SYS_personality, 0x1234500000000L | PER_LINUX32));
    show("personality asks", syscall(SYS_personality, 0xffffffffL));
    uname(&u);
    printf("PER_LINUX32 machine %s\n", u.machine);
    show("personality UNAME26", syscall(SYS_personality, UNAME26));
    uname(&u);
    printf("UNAME26 release 2.6.x %d, machine %s\n", strncmp(u.release, "2.6.", 4) == 0, u.machine);
    show("personality READ_IMPLIES_EXEC|ADDR_NO_RANDOMIZE",
         syscall(SYS_personality, READ_IMPLIES_EXEC | ADDR_NO_RANDOMIZE));
    pid_t child = fork();
    if (child == 0) {
        execl(self, self, "personality", (char *)NULL);
        _exit(99);
    }
    waitpid(child, NULL, 0);
    unsigned long first = mmap_after_exec(self), second = mmap_after_exec(self);
    printf("ADDR_NO_RANDOMIZE: two execs map at the same address %d\n", first == second);
    show("personality PER_LINUX", syscall(SYS_personality, PER_LINUX));
}

static void memory_calls(void)
{
    unsigned char vec[16];
    char *a = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 4; i++) /* untouched anonymous pages are faulted around here */
        a[i * 4096] = 1;
    munmap(a + 4 * 4096, 4096);
    memset(vec, 9, sizeof vec);
    show("mincore across a hole", syscall(SYS_mincore, a, 8 * 4096, vec));
    printf("  vec %d %d %d %d %d\n", vec[0], vec[1], vec[2], vec[3], vec[4]);
    show("mincore of a hole, vec in the kernel",
         syscall(SYS_mincore, a + 4 * 4096, 4096, (void *)0xffff800000000000L));
    show("mincore length 0, vec in the kernel",
         syscall(SYS_mincore, a, 0, (void *)0xffff800000000000L));
    show("mlock length -1 (wraps to 0)", syscall(SYS_mlock, a + 1, -1L));
    show("mlock wrapping", syscall(SYS_mlock, -4096L, 8192));
    show("mlock2 flags above 32 bits", syscall(SYS_mlock2, a, 4096, 1L << 32));
    show("mlock2 bad flags", syscall(SYS_mlock2, a, 4096, 2));
    char *none = mmap(NULL, 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("mlock PROT_NONE", syscall(SYS_mlock, none, 4096));
    show("mlock2 PROT_NONE MLOCK_ONFAULT", syscall(SYS_mlock2, none, 4096, MLOCK_ONFAULT));
    show("munlock PROT_NONE", syscall(SYS_munlock, none, 4096));
    show("mlock2 PROT_NONE flags above 32 bits", syscall(SYS_mlock2, none, 4096, 1L << 32));
    munmap(none, 2 * 4096);
    munmap(a, 8 * 4096);
}

static void file_calls(void)
{
    int fd = open("/proc/self/exe", O_RDONLY), p[2];
    if (pipe(p))
        exit(1);
    show("readahead", readahead(fd, 0, 4096));
    show("readahead count above 2**63", readahead(fd, 0, -1L));
    show("readahead negative offset", readahead(fd, -1, 4096));
    show("sync_file_range", sync_file_range(fd, 0, 0, 7));
    show("sync_file_range bad fd and bad flags", sync_file_range(99, 0, 0, 8));
    show("sync_file_range negative offset", sync_file_range(fd, -1, 0, 0));
    show("sync_file_range negative length", sync_file_range(fd, 0, -1, 0));
    show("sync_file_range end above 2**63", sync_file_range(fd, 1L << 62, 1L << 62, 0));
    show("sync_file_range flags above 32 bits", syscall(SYS_sync_file_range, fd, 0, 0, 1L << 32));
    show("sync_file_range pipe", sync_file_range(p[0], 0, 0, 0));
    int path = open("/proc/self/exe", O_PATH);
    show("sync_file_range O_PATH", sync_file_range(path, 0, 0, 0));
    show("posix_fadvise O_PATH", -posix_fadvise(path, 0, 0, POSIX_FADV_WILLNEED));
    show("readahead O_PATH", readahead(path, 0, 1));
    close(path);
    close(fd);
    close(p[0]);
    close(p[1]);
}

static void groups(void)
{
    gid_t list[4] = {5, 3, 3, (gid_t)-1}, out[8];
    show("setgroups with gid -1", syscall(SYS_setgroups, 4, list));
    show("getgroups", syscall(SYS_getgroups, 8, out));
    show("setgroups with a duplicate", syscall(SYS_setgroups, 3, list));
    long n = syscall(SYS_getgroups, 8, out);
    show("getgroups", n);
    for (long i = 0; i < n; i++)
        printf("  %u\n", out[i]);
    show("getgroups exact size", syscall(SYS_getgroups, 3, out));
    show("getgroups one short", syscall(SYS_getgroups, 2, out));
    show("setgroups none", syscall(SYS_setgroups, 0, NULL));
}

/* The call's number is the low 32 bits of rax (do_syscall_64's int nr). */
static void numbers(void)
{
    show("2**32 + getpid is getpid", syscall((1L << 32) + SYS_getpid) == getpid());
    show("2**63 is read", syscall(1L << 63, -1, 0, 0));
    show("-1", syscall(-1L, 0, 0, 0));
    if (geteuid() != 0)
        return;
    pid_t child = fork();
    if (child == 0) {
        show("2**32 + setuid", syscall((1L << 32) + SYS_setuid, 1000));
        printf("  getuid %d geteuid %d\n", (int)getuid(), (int)geteuid());
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "personality") == 0) {
        show("after execve, personality", syscall(SYS_personality, 0xffffffffL));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "mmap") == 0) {
        printf("%lx\n", (unsigned long)mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        return 0;
    }
    personalities("/proc/self/exe");
    memory_calls();
    file_calls();
    if (geteuid() == 0)
        groups();
    numbers();
    return 0;
}
