/* socket_huge_values.c: guest-chosen extreme values on AF_UNIX sockets,
 * compared with Linux: a receive timeout of 10^12 s (a wait longer than the
 * host's lock accepts: the sentry must sleep, not raise), recvmmsg with
 * the largest valid timeout (the time left written back must fit an s64),
 * sendmsg with a 1 GiB msg_controllen (ENOBUFS before anything is read). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "errname.h"

static void on_alarm(int sig) { (void)sig; }

int main(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0) return 1;

    struct timeval tv = {.tv_sec = 1000000000000LL, .tv_usec = 0};
    int r = setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    printf("setsockopt SO_RCVTIMEO 1e12 s: %d\n", r);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;  /* no SA_RESTART: the wait ends with EINTR */
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    char c;
    r = recv(sv[0], &c, 1, 0);
    printf("recv cut by SIGALRM: %d %s\n", r, errname(r < 0 ? errno : 0));

    send(sv[1], "x", 1, 0);
    struct timespec ts = {.tv_sec = INT64_MAX, .tv_nsec = 999999999};
    struct mmsghdr m;
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    memset(&m, 0, sizeof m);
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
    r = recvmmsg(sv[0], &m, 1, 0, &ts);
    printf("recvmmsg, largest timeout: %d %s, got %c, %u bytes\n",
           r, errname(r < 0 ? errno : 0), c, m.msg_len);

    char control[64] = {0};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;   /* only 64 bytes mapped here: never read */
    msg.msg_controllen = 1 << 30;
    r = sendmsg(sv[1], &msg, 0);
    printf("sendmsg, 1 GiB msg_controllen: %d %s\n", r, errname(r < 0 ? errno : 0));
    return 0;
}
