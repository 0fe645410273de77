/* Syscalls whose handler modules a boot does not import until called
 * (kvmsentry/kernel/syscalls/table.py MODULES), one that has no handler
 * and a number Linux does not have: each answer on stdout. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <unistd.h>

static void show(const char *name, long result)
{
    printf("%s = %ld errno %d\n", name, result, result < 0 ? errno : 0);
}

int main(void)
{
    /* timers.py: six argument registers reach the handler's two */
    show("getpriority", syscall(SYS_getpriority, PRIO_PROCESS, 0, 7, 7, 7, 7));
    show("sched_get_priority_max", syscall(SYS_sched_get_priority_max, SCHED_FIFO));
    show("sched_get_priority_min", syscall(SYS_sched_get_priority_min, SCHED_FIFO));
    /* creds.py, then a second call of the same module */
    show("setresuid", syscall(SYS_setresuid, -1, -1, -1));
    show("setresgid", syscall(SYS_setresgid, -1, -1, -1));
    errno = 0;
    show("unknown 1000", syscall(1000));
    fflush(stdout);
    /* no handler at all (ENOSYS under kvmsentry; root may hang up natively) */
    if (getenv("LAZY_VHANGUP"))
        show("vhangup", syscall(SYS_vhangup));
    return 0;
}
