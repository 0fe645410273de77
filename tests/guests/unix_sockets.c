/* AF_UNIX sockets (unix(7)): socketpair of each type, fork and talk,
 * shutdown and EOF, EPIPE with and without SIGPIPE, MSG_PEEK/MSG_TRUNC/
 * MSG_WAITALL/MSG_DONTWAIT, nonblocking EAGAIN and a full buffer, poll
 * and epoll readiness, path and abstract names (bind, listen, accept,
 * connect, getsockname/getpeername, autobind), SCM_RIGHTS and
 * SCM_CREDENTIALS, socket options, signals interrupting a blocked call,
 * and the errors (EADDRINUSE, ECONNREFUSED, ENOENT, EINVAL lengths,
 * ENOTSOCK, EBADF, EFAULT, ...). Prints one deterministic line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

static void *volatile bad_ptr = (void *)16;
#define BAD (bad_ptr)

static void report(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, errname(errno));
    else
        printf("%s: %ld\n", what, r);
}

static volatile int sigpipes, alarms;
static int alarm_fd = -1;

static void on_sigpipe(int sig) { (void)sig; sigpipes++; }

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
    if (alarm_fd >= 0)
        write(alarm_fd, "!", 1);
}

static int shell_status(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static socklen_t sun_len(const char *path)
{
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static struct sockaddr_un sun_of(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, path);
    return a;
}

static void pair_basics(int type, const char *name)
{
    int sv[2];
    char buf[64];
    printf("== socketpair %s\n", name);
    report("socketpair", socketpair(AF_UNIX, type, 0, sv));
    report("send ab", send(sv[0], "ab", 2, 0));
    report("send cde", send(sv[0], "cde", 3, 0));
    int n = 0;
    report("FIONREAD", ioctl(sv[1], FIONREAD, &n));
    printf("FIONREAD value %d\n", n);
    report("peek 8", recv(sv[1], buf, 8, MSG_PEEK));
    report("recv 8", recv(sv[1], buf, 8, 0));
    if (type != SOCK_STREAM)
        report("recv 8 again", recv(sv[1], buf, 8, 0));
    report("send hello", send(sv[0], "hello", 5, 0));
    report("recv 2", recv(sv[1], buf, 2, 0));
    if (type != SOCK_STREAM) {
        report("send world", send(sv[0], "world", 5, 0));
        report("recv 2 MSG_TRUNC", recv(sv[1], buf, 2, MSG_TRUNC));
        struct iovec iov = {buf, 3};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        send(sv[0], "truncated", 9, 0);
        report("recvmsg 3", recvmsg(sv[1], &msg, 0));
        printf("msg_flags MSG_TRUNC %d\n", !!(msg.msg_flags & MSG_TRUNC));
    } else {
        report("recv rest", recv(sv[1], buf, 8, 0));
    }
    report("recv DONTWAIT empty", recv(sv[1], buf, 8, MSG_DONTWAIT));
    struct iovec iov[2] = {{"wri", 3}, {"tev", 3}};
    report("writev", writev(sv[0], iov, 2));
    char a[2], b[8];
    struct iovec riov[2] = {{a, 2}, {b, 8}};
    report("readv", readv(sv[1], riov, 2));
    report("write 0", write(sv[0], "", 0));
    struct stat st;
    fstat(sv[0], &st);
    printf("S_ISSOCK %d mode %o\n", S_ISSOCK(st.st_mode), st.st_mode & 0777);
    char link[64], proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", sv[0]);
    ssize_t l = readlink(proc, link, sizeof link - 1);
    link[l > 0 ? l : 0] = 0;
    printf("fd link starts socket:[ %d\n", strncmp(link, "socket:[", 8) == 0);
    int v = -1;
    socklen_t vl = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE %d len %d\n", v, vl);
    getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &vl);
    printf("SO_DOMAIN %d\n", v);
    getsockopt(sv[0], SOL_SOCKET, SO_PROTOCOL, &v, &vl);
    printf("SO_PROTOCOL %d\n", v);
    getsockopt(sv[0], SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    printf("SO_ACCEPTCONN %d\n", v);
    struct ucred uc;
    socklen_t ul = sizeof uc;
    report("SO_PEERCRED", getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &ul));
    printf("peercred pid ok %d uid %d gid %d len %d\n", uc.pid == getpid(), uc.uid, uc.gid, ul);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    report("read O_NONBLOCK empty", read(sv[1], buf, 8));
    report("shutdown 5", shutdown(sv[0], 5));
    report("shutdown SHUT_WR", shutdown(sv[0], SHUT_WR));
    struct pollfd p = {sv[1], POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&p, 1, 0);
    printf("peer revents after SHUT_WR %#x\n", p.revents);
    p.fd = sv[0];
    poll(&p, 1, 0);
    printf("own revents after SHUT_WR %#x\n", p.revents);
    if (type != SOCK_DGRAM)
        report("read after peer SHUT_WR", read(sv[1], buf, 8));
    sigpipes = 0;
    report("send after SHUT_WR", send(sv[0], "x", 1, 0));
    report("send MSG_NOSIGNAL", send(sv[0], "x", 1, MSG_NOSIGNAL));
    report("write after SHUT_WR", write(sv[0], "x", 1));
    /* A stream's own SEND_SHUTDOWN is EPIPE before the bytes are copied in. */
    report("send bad buffer after SHUT_WR", send(sv[0], bad_ptr, 1, MSG_NOSIGNAL));
    printf("sigpipes %d\n", sigpipes);
    close(sv[0]);
    close(sv[1]);

    /* The peer closes. */
    socketpair(AF_UNIX, type, 0, sv);
    send(sv[1], "last", 4, 0);
    close(sv[1]);
    p.fd = sv[0];
    p.events = POLLIN | POLLOUT | POLLRDHUP;
    poll(&p, 1, 0);
    printf("revents after peer close %#x\n", p.revents);
    report("recv queued", recv(sv[0], buf, 8, MSG_DONTWAIT));
    report("recv after close", recv(sv[0], buf, 8, MSG_DONTWAIT));
    sigpipes = 0;
    report("write to closed peer", write(sv[0], "x", 1));
    report("write to closed peer again", write(sv[0], "x", 1));
    printf("sigpipes %d\n", sigpipes);
    close(sv[0]);

    /* Closing with unread data resets the peer (streams). */
    socketpair(AF_UNIX, type, 0, sv);
    send(sv[0], "unread", 6, 0);
    close(sv[1]);
    p.fd = sv[0];
    poll(&p, 1, 0);
    printf("revents after reset %#x\n", p.revents);
    report("recv after reset", recv(sv[0], buf, 8, MSG_DONTWAIT));
    report("recv after reset again", recv(sv[0], buf, 8, MSG_DONTWAIT));
    close(sv[0]);
}

static void fork_and_talk(void)
{
    int sv[2];
    char buf[64];
    printf("== fork and talk\n");
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        ssize_t n;
        while ((n = read(sv[1], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] >= 'a' && buf[i] <= 'z')
                    buf[i] -= 32;
            write(sv[1], buf, n);
        }
        _exit(n == 0 ? 7 : 1);
    }
    close(sv[1]);
    const char *words[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++) {
        write(sv[0], words[i], strlen(words[i]));
        ssize_t n = recv(sv[0], buf, strlen(words[i]), MSG_WAITALL);
        printf("echo %.*s\n", (int)n, buf);
    }
    shutdown(sv[0], SHUT_WR);
    report("read after child's EOF", read(sv[0], buf, sizeof buf));
    int status;
    waitpid(pid, &status, 0);
    printf("child status %d\n", shell_status(status));
    close(sv[0]);

    /* A blocked writer: the child writes 1 MiB and sends 3 MiB, the parent reads it all. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        static char big[3 << 20];
        memset(big, 'z', sizeof big);
        ssize_t w = write(sv[1], big, 1 << 20);
        ssize_t s = send(sv[1], big, sizeof big, 0);
        _exit(w == 1 << 20 && s == (ssize_t)sizeof big ? 0 : 1);
    }
    close(sv[1]);
    long total = 0;
    ssize_t n;
    static char rbuf[65536];
    while ((n = read(sv[0], rbuf, sizeof rbuf)) > 0)
        total += n;
    waitpid(pid, &status, 0);
    printf("read %ld bytes, writer status %d\n", total, shell_status(status));
    close(sv[0]);

    /* MSG_WAITALL across several writes; poll waiting for a writer. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 20000000};
        for (int i = 0; i < 3; i++) {
            nanosleep(&ts, NULL);
            write(sv[1], "abc", 3);
        }
        _exit(0);
    }
    struct pollfd p = {sv[0], POLLIN, 0};
    report("poll waits for data", poll(&p, 1, -1));
    printf("revents %#x\n", p.revents);
    report("recv MSG_WAITALL 9", recv(sv[0], buf, 9, MSG_WAITALL));
    waitpid(pid, &status, 0);
    close(sv[0]);
    close(sv[1]);

    /* epoll on a socket. */
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 42};
    report("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev));
    report("epoll_wait empty", epoll_wait(ep, &ev, 1, 0));
    send(sv[1], "e", 1, 0);
    report("epoll_wait", epoll_wait(ep, &ev, 1, -1));
    printf("epoll events %#x data %u\n", ev.events, ev.data.u32);
    close(ep);
    close(sv[0]);
    close(sv[1]);
}

static void nonblocking_fill(void)
{
    int sv[2];
    printf("== nonblocking fill\n");
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    printf("O_NONBLOCK %d\n", !!(fcntl(sv[0], F_GETFL) & O_NONBLOCK));
    static char chunk[4096];
    long written = 0;
    ssize_t w;
    while ((w = write(sv[0], chunk, sizeof chunk)) > 0)
        written += w;
    printf("filled %d then %s\n", written > 0, errname(errno));
    struct pollfd p = {sv[0], POLLOUT, 0};
    poll(&p, 1, 0);
    printf("POLLOUT when full %d\n", !!(p.revents & POLLOUT));
    long got = 0;
    ssize_t r;
    while ((r = read(sv[1], chunk, sizeof chunk)) > 0)
        got += r;
    printf("drained all %d then %s\n", got == written, errname(errno));
    poll(&p, 1, 0);
    printf("POLLOUT when empty %d\n", !!(p.revents & POLLOUT));
    close(sv[0]);
    close(sv[1]);

    /* Datagrams: SO_SNDBUF bounds a message. */
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int v = 0;
    socklen_t vl = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &vl);
    printf("SO_SNDBUF default %d\n", v);
    v = 1000;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &vl);
    printf("SO_SNDBUF after 1000 %d\n", v);
    static char big[8192];
    report("send 8192 > sndbuf", send(sv[0], big, sizeof big, 0));
    close(sv[0]);
    close(sv[1]);
}

static void path_names(void)
{
    printf("== path names\n");
    char dir[] = "/tmp/uxsockXXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        printf("no temp dir\n");
        return;
    }
    umask(022);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = sun_of("srv"), got;
    socklen_t gl = sizeof got;
    report("listen unbound", listen(s, 5));
    report("bind srv", bind(s, (struct sockaddr *)&a, sun_len("srv")));
    report("bind again", bind(s, (struct sockaddr *)&a, sun_len("srv")));
    struct stat st;
    report("stat srv", stat("srv", &st));
    printf("srv S_ISSOCK %d mode %o\n", S_ISSOCK(st.st_mode), st.st_mode & 0777);
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    report("bind taken", bind(s2, (struct sockaddr *)&a, sun_len("srv")));
    report("connect not listening", connect(s2, (struct sockaddr *)&a, sun_len("srv")));
    report("getsockname", getsockname(s, (struct sockaddr *)&got, &gl));
    printf("name %s len %d\n", got.sun_path, gl);
    gl = 4;
    memset(&got, 0, sizeof got);
    report("getsockname short", getsockname(s, (struct sockaddr *)&got, &gl));
    printf("short len %d path0 %d\n", gl, got.sun_path[0]);
    report("open socket file", open("srv", O_RDONLY));
    report("listen", listen(s, 5));
    int v = 0;
    socklen_t vl = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    printf("SO_ACCEPTCONN %d\n", v);
    struct pollfd p = {s, POLLIN | POLLOUT, 0};
    poll(&p, 1, 0);
    printf("listener revents idle %#x\n", p.revents);
    fcntl(s, F_SETFL, O_NONBLOCK);
    report("accept none", accept(s, NULL, NULL));
    fcntl(s, F_SETFL, 0);
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un me = sun_of("cli");
        bind(c, (struct sockaddr *)&me, sun_len("cli"));
        if (connect(c, (struct sockaddr *)&a, sun_len("srv")) != 0)
            _exit(2);
        struct sockaddr_un peer;
        socklen_t pl = sizeof peer;
        getpeername(c, (struct sockaddr *)&peer, &pl);
        struct ucred uc;
        socklen_t ul = sizeof uc;
        getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
        if (uc.pid != getppid())
            _exit(4); /* the listener's, as of listen(2) */
        write(c, "hello", 5);
        char buf[16];
        ssize_t n = read(c, buf, sizeof buf);
        _exit(n == 5 && memcmp(buf, "world", 5) == 0 && strcmp(peer.sun_path, "srv") == 0 ? 0 : 3);
    }
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    int conn = accept(s, (struct sockaddr *)&from, &fl);
    printf("accepted %d from %s len %d\n", conn >= 0, from.sun_path, fl);
    char buf[16];
    ssize_t n = read(conn, buf, sizeof buf);
    printf("server read %.*s\n", (int)n, buf);
    struct ucred uc;
    socklen_t ul = sizeof uc;
    getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
    printf("accepted socket's peercred is the client %d\n", uc.pid == pid);
    write(conn, "world", 5);
    gl = sizeof got;
    getsockname(conn, (struct sockaddr *)&got, &gl);
    printf("accepted socket's name %s\n", got.sun_path);
    gl = sizeof got;
    getpeername(conn, (struct sockaddr *)&got, &gl);
    printf("accepted socket's peer %s\n", got.sun_path);
    int status;
    waitpid(pid, &status, 0);
    printf("client status %d\n", shell_status(status));
    close(conn);

    /* A client that is not bound; data sent before accept. */
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    report("connect", connect(c, (struct sockaddr *)&a, sun_len("srv")));
    report("connect again", connect(c, (struct sockaddr *)&a, sun_len("srv")));
    report("write before accept", write(c, "early", 5));
    p.fd = s;
    p.events = POLLIN;
    poll(&p, 1, 0);
    printf("listener revents pending %#x\n", p.revents);
    fl = sizeof from;
    conn = accept4(s, (struct sockaddr *)&from, &fl, SOCK_CLOEXEC | SOCK_NONBLOCK);
    printf("accept4 %d len %d cloexec %d nonblock %d\n", conn >= 0, fl,
           !!(fcntl(conn, F_GETFD) & FD_CLOEXEC), !!(fcntl(conn, F_GETFL) & O_NONBLOCK));
    gl = sizeof got;
    report("getpeername unbound client", getpeername(conn, (struct sockaddr *)&got, &gl));
    printf("len %d\n", gl);
    fl = sizeof from;
    n = recvfrom(conn, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom %.*s addrlen %d\n", (int)n, buf, fl);
    report("accept4 bad flags", syscall(SYS_accept4, s, NULL, NULL, 1));
    report("accept on connected", accept(c, NULL, NULL));
    report("listen on connected", listen(c, 1));
    close(conn);
    close(c);

    /* Seqpacket over a name. */
    int q = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un qa = sun_of("seq");
    bind(q, (struct sockaddr *)&qa, sun_len("seq"));
    listen(q, 1);
    int qc = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    report("seqpacket connect", connect(qc, (struct sockaddr *)&qa, sun_len("seq")));
    int qs = accept(q, NULL, NULL);
    send(qc, "one", 3, 0);
    send(qc, "three", 5, 0);
    report("seqpacket recv", recv(qs, buf, sizeof buf, 0));
    report("seqpacket recv", recv(qs, buf, sizeof buf, 0));
    close(qc);
    report("seqpacket recv after close", recv(qs, buf, sizeof buf, 0));
    close(qs);
    close(q);

    /* Errors. */
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    report("dgram connect to stream", connect(d, (struct sockaddr *)&a, sun_len("srv")));
    report("dgram listen", listen(d, 1));
    report("dgram accept", accept(d, NULL, NULL));
    struct sockaddr_un none = sun_of("nonexistent");
    report("connect missing", connect(s2, (struct sockaddr *)&none, sun_len("nonexistent")));
    struct sockaddr_un deep = sun_of("nodir/x");
    report("bind missing dir", bind(s2, (struct sockaddr *)&deep, sun_len("nodir/x")));
    close(open("regular", O_CREAT | O_WRONLY, 0666));
    struct sockaddr_un reg = sun_of("regular");
    report("connect regular file", connect(s2, (struct sockaddr *)&reg, sun_len("regular")));
    report("bind regular file", bind(s2, (struct sockaddr *)&reg, sun_len("regular")));
    symlink("srv", "link");
    struct sockaddr_un lnk = sun_of("link");
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    report("connect via symlink", connect(c2, (struct sockaddr *)&lnk, sun_len("link")));
    close(c2);
    rename("srv", "moved");
    struct sockaddr_un mv = sun_of("moved");
    c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    report("connect renamed", connect(c2, (struct sockaddr *)&mv, sun_len("moved")));
    close(c2);
    close(s);
    c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    report("connect closed listener", connect(c2, (struct sockaddr *)&mv, sun_len("moved")));
    close(c2);
    report("unlink moved", unlink("moved"));
    report("connect unlinked", connect(s2, (struct sockaddr *)&mv, sun_len("moved")));
    /* A sun_path without a NUL in all 108 bytes. */
    struct sockaddr_un full;
    memset(&full, 'p', sizeof full);
    full.sun_family = AF_UNIX;
    report("bind full sun_path", bind(s2, (struct sockaddr *)&full, sizeof full));
    report("unlink long name", unlink("pppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
                                      "pppppppppppppppppppppppppppppppppppppppppppppppppp"));
    close(s2);
    close(d);
    unlink("cli");
    unlink("seq");
    unlink("regular");
    unlink("link");
    chdir("/");
    report("rmdir", rmdir(dir));
}

static void abstract_names(void)
{
    printf("== abstract names\n");
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "kvmsentry-test-%d", getpid());
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + len;
    int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
    report("bind abstract", bind(srv, (struct sockaddr *)&a, alen));
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    getsockname(srv, (struct sockaddr *)&got, &gl);
    printf("getsockname len ok %d same %d\n", gl == alen, memcmp(&got, &a, alen) == 0);
    int other = socket(AF_UNIX, SOCK_DGRAM, 0);
    report("bind taken", bind(other, (struct sockaddr *)&a, alen));
    report("sendto unbound sender", sendto(other, "hi", 2, 0, (struct sockaddr *)&a, alen));
    char buf[16];
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    report("recvfrom", recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    printf("sender addrlen %d\n", fl);
    struct sockaddr_un autob = {.sun_family = AF_UNIX};
    report("autobind", bind(other, (struct sockaddr *)&autob, offsetof(struct sockaddr_un, sun_path)));
    gl = sizeof got;
    getsockname(other, (struct sockaddr *)&got, &gl);
    printf("autobind len %d abstract %d\n", gl, got.sun_path[0] == 0);
    report("sendto bound sender", sendto(other, "yo", 2, 0, (struct sockaddr *)&a, alen));
    fl = sizeof from;
    recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("sender addrlen %d same as its name %d\n", fl, fl == gl && memcmp(&from, &got, gl) == 0);
    report("connect dgram", connect(other, (struct sockaddr *)&a, alen));
    report("send connected", send(other, "c", 1, 0));
    gl = sizeof got;
    report("getpeername dgram", getpeername(other, (struct sockaddr *)&got, &gl));
    printf("peer is srv %d\n", gl == alen && memcmp(&got, &a, alen) == 0);
    /* srv connects to a third socket: others may no longer send to it. */
    int third = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un t = {.sun_family = AF_UNIX};
    bind(third, (struct sockaddr *)&t, offsetof(struct sockaddr_un, sun_path));
    struct sockaddr_un tn;
    socklen_t tl = sizeof tn;
    getsockname(third, (struct sockaddr *)&tn, &tl);
    report("srv connects to third", connect(srv, (struct sockaddr *)&tn, tl));
    report("send to srv now", send(other, "x", 1, 0));
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    report("disconnect", connect(other, &unspec, sizeof unspec));
    report("send disconnected", send(other, "x", 1, 0));
    int pending = 0;
    ioctl(srv, FIONREAD, &pending);
    printf("FIONREAD first dgram %d\n", pending);
    close(srv);
    report("sendto closed", sendto(third, "x", 1, 0, (struct sockaddr *)&a, alen));
    close(other);
    close(third);
    int q = socket(AF_UNIX, SOCK_DGRAM, 0);
    report("rebind after close", bind(q, (struct sockaddr *)&a, alen));
    close(q);
    /* A full datagram queue of an unconnected receiver. */
    int r = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(r, (struct sockaddr *)&a, alen);
    int w = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int sent = 0;
    while (sendto(w, "q", 1, 0, (struct sockaddr *)&a, alen) == 1)
        sent++;
    printf("queued %d then %s\n", sent, errname(errno));
    close(r);
    close(w);
}

static void rights_and_creds(void)
{
    printf("== SCM_RIGHTS and SCM_CREDENTIALS\n");
    int sv[2], pfd[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(pfd);
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {"F", 1};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pfd[1], sizeof(int));
    report("sendmsg SCM_RIGHTS", sendmsg(sv[0], &msg, 0));
    close(pfd[1]);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } r;
        struct iovec riov = {&c, 1};
        struct msghdr rm = {0};
        rm.msg_iov = &riov;
        rm.msg_iovlen = 1;
        rm.msg_control = r.buf;
        rm.msg_controllen = sizeof r.buf;
        if (recvmsg(sv[1], &rm, MSG_CMSG_CLOEXEC) != 1)
            _exit(2);
        struct cmsghdr *h = CMSG_FIRSTHDR(&rm);
        if (!h || h->cmsg_type != SCM_RIGHTS || h->cmsg_len != CMSG_LEN(sizeof(int)))
            _exit(3);
        int fd;
        memcpy(&fd, CMSG_DATA(h), sizeof fd);
        if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
            _exit(4);
        write(fd, "through the socket", 18);
        _exit(0);
    }
    char buf[64];
    int status;
    waitpid(pid, &status, 0);
    printf("child status %d\n", shell_status(status));
    ssize_t n = read(pfd[0], buf, sizeof buf);
    printf("pipe got %.*s\n", (int)n, buf);
    report("pipe EOF (every writer gone)", read(pfd[0], buf, sizeof buf));
    close(pfd[0]);

    /* Three fds into room for one: MSG_CTRUNC. */
    int fds[3];
    pipe(pfd);
    fds[0] = pfd[0];
    fds[1] = pfd[1];
    fds[2] = pfd[1];
    msg.msg_controllen = CMSG_SPACE(3 * sizeof(int));
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    report("sendmsg 3 fds", sendmsg(sv[0], &msg, 0));
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } small;
    char c;
    struct iovec riov = {&c, 1};
    struct msghdr rm = {0};
    rm.msg_iov = &riov;
    rm.msg_iovlen = 1;
    rm.msg_control = small.buf;
    rm.msg_controllen = sizeof small.buf;
    report("recvmsg room for 1", recvmsg(sv[1], &rm, 0));
    printf("MSG_CTRUNC %d controllen %d\n", !!(rm.msg_flags & MSG_CTRUNC), (int)rm.msg_controllen);
    cm = CMSG_FIRSTHDR(&rm);
    if (cm) {
        int fd;
        memcpy(&fd, CMSG_DATA(cm), sizeof fd);
        struct stat st;
        fstat(fd, &st);
        printf("got a fifo %d len %d cloexec %d\n", S_ISFIFO(st.st_mode), (int)cm->cmsg_len,
               !!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
        close(fd);
    }
    /* No control buffer at all: the fds are dropped. */
    send(sv[0], "x", 1, 0);
    msg.msg_controllen = CMSG_SPACE(sizeof(int));
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    sendmsg(sv[0], &msg, 0);
    report("read drops fds", read(sv[1], buf, sizeof buf));
    close(pfd[0]);
    close(pfd[1]);

    /* Bad control data. */
    int bad = 999;
    memcpy(CMSG_DATA(cm), &bad, sizeof bad);
    report("SCM_RIGHTS EBADF", sendmsg(sv[0], &msg, 0));
    cm->cmsg_type = 77;
    report("unknown cmsg type", sendmsg(sv[0], &msg, 0));
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = 4;
    report("cmsg_len too small", sendmsg(sv[0], &msg, 0));
    cm->cmsg_len = 4096;
    report("cmsg_len too big", sendmsg(sv[0], &msg, 0));
    msg.msg_control = BAD;
    report("msg_control EFAULT", syscall(SYS_sendmsg, sv[0], &msg, 0));
    msg.msg_control = NULL;
    msg.msg_controllen = 0;
    report("sendmsg no control", sendmsg(sv[0], &msg, 0));
    report("recv it", recv(sv[1], buf, sizeof buf, 0));

    /* SCM_CREDENTIALS. */
    int one = 1;
    report("SO_PASSCRED", setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one));
    send(sv[0], "c", 1, 0);
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } cb;
    rm.msg_control = cb.buf;
    rm.msg_controllen = sizeof cb.buf;
    report("recvmsg with creds", recvmsg(sv[1], &rm, 0));
    cm = CMSG_FIRSTHDR(&rm);
    if (cm && cm->cmsg_type == SCM_CREDENTIALS) {
        struct ucred uc;
        memcpy(&uc, CMSG_DATA(cm), sizeof uc);
        printf("creds pid ok %d uid %d gid %d\n", uc.pid == getpid(), uc.uid, uc.gid);
    } else {
        printf("no creds\n");
    }
    struct ucred mine = {getpid(), getuid(), getgid()};
    msg.msg_control = cb.buf;
    msg.msg_controllen = sizeof cb.buf;
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof mine);
    memcpy(CMSG_DATA(cm), &mine, sizeof mine);
    report("sendmsg own creds", sendmsg(sv[0], &msg, 0));
    rm.msg_controllen = sizeof cb.buf;
    recvmsg(sv[1], &rm, 0);
    mine.pid = 1 << 22;
    memcpy(CMSG_DATA(cm), &mine, sizeof mine);
    int is_root = geteuid() == 0;
    long r = sendmsg(sv[0], &msg, 0);
    printf("sendmsg other pid: %s\n", r < 0 ? errname(errno) : is_root ? "EPERM" : "sent");
    close(sv[0]);
    close(sv[1]);
}

static void options_and_errors(void)
{
    printf("== options and errors\n");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct ucred uc;
    socklen_t ul = sizeof uc;
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
    printf("unconnected peercred %d %d %d\n", uc.pid, uc.uid, uc.gid);
    int v = -1;
    socklen_t vl = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &v, &vl);
    printf("SO_ERROR %d\n", v);
    v = 1;
    report("SO_REUSEADDR", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
    vl = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &vl);
    printf("SO_REUSEADDR %d\n", v);
    report("setsockopt short", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, 2));
    report("getsockopt level TCP", getsockopt(s, 6, 1, &v, &vl));
    report("setsockopt level TCP", setsockopt(s, 6, 1, &v, sizeof v));
    report("getsockopt unknown", getsockopt(s, SOL_SOCKET, 9999, &v, &vl));
    vl = 2;
    v = 0;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE short len %d value %d\n", vl, v);
    vl = -1;
    report("getsockopt negative len", getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl));
    vl = sizeof v;
    report("getsockopt EFAULT", getsockopt(s, SOL_SOCKET, SO_TYPE, BAD, &vl));
    struct timeval tv = {0, 2000000};
    report("SO_RCVTIMEO bad usec", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    report("send unconnected", send(s, "x", 1, 0));
    char buf[8];
    report("recv unconnected", recv(s, buf, 1, 0));
    report("getpeername unconnected", getpeername(s, NULL, NULL));
    report("shutdown unconnected", shutdown(s, SHUT_RDWR));
    struct pollfd p = {s, POLLIN | POLLOUT, 0};
    poll(&p, 1, 0);
    printf("unconnected stream revents %#x\n", p.revents);

    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    tv.tv_usec = 30000;
    report("SO_RCVTIMEO", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    report("recv times out", recv(sv[0], buf, 1, 0));
    close(sv[0]);
    close(sv[1]);

    report("socket bad flags", socket(AF_UNIX, SOCK_STREAM | 0x100000, 0));
    report("socket type 4", socket(AF_UNIX, 4, 0));
    report("socket type 12", socket(AF_UNIX, 12, 0));
    report("socket protocol 5", socket(AF_UNIX, SOCK_STREAM, 5));
    report("socket family 99", socket(99, SOCK_STREAM, 0));
    int raw = socket(AF_UNIX, SOCK_RAW, 0);
    vl = sizeof v;
    getsockopt(raw, SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SOCK_RAW is type %d\n", v);
    close(raw);
    report("socketpair EFAULT", socketpair(AF_UNIX, SOCK_STREAM, 0, BAD));
    report("socketpair AF_INET", socketpair(AF_INET, SOCK_STREAM, 0, sv));

    struct sockaddr_un a = sun_of("x");
    report("bind len 1", bind(s, (struct sockaddr *)&a, 1));
    report("bind len 2 wrong family", bind(s, (struct sockaddr *)&(struct sockaddr){.sa_family = 2}, 2));
    report("bind len 111", bind(s, (struct sockaddr *)&a, 111));
    report("bind len 200", bind(s, (struct sockaddr *)&a, 200));
    report("bind len -1", bind(s, (struct sockaddr *)&a, -1));
    a.sun_family = AF_INET;
    report("bind AF_INET", bind(s, (struct sockaddr *)&a, sun_len("x")));
    report("bind EFAULT", bind(s, BAD, sun_len("x")));
    report("connect EFAULT", connect(s, BAD, sun_len("x")));
    report("connect len 1", connect(s, (struct sockaddr *)&a, 1));
    socklen_t gl = 16;
    report("getsockname EFAULT", getsockname(s, BAD, &gl));
    report("getsockname len EFAULT", getsockname(s, (struct sockaddr *)&a, BAD));
    gl = -1;
    report("getsockname negative len", getsockname(s, (struct sockaddr *)&a, &gl));

    int pfd[2];
    pipe(pfd);
    report("bind pipe", bind(pfd[0], (struct sockaddr *)&a, sun_len("x")));
    report("listen pipe", listen(pfd[0], 1));
    report("accept pipe", accept(pfd[0], NULL, NULL));
    report("connect pipe", connect(pfd[0], (struct sockaddr *)&a, sun_len("x")));
    report("send pipe", send(pfd[1], "x", 1, 0));
    report("recv pipe", recv(pfd[0], buf, 1, MSG_DONTWAIT));
    report("shutdown pipe", shutdown(pfd[0], SHUT_RD));
    report("getsockopt pipe", getsockopt(pfd[0], SOL_SOCKET, SO_TYPE, &v, &vl));
    report("getsockname pipe", getsockname(pfd[0], (struct sockaddr *)&a, &gl));
    report("bind EBADF", bind(999, (struct sockaddr *)&a, sun_len("x")));
    report("sendmsg EBADF", sendmsg(999, NULL, 0));
    close(pfd[0]);
    close(pfd[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    report("send EFAULT", send(sv[0], BAD, 4, 0));
    send(sv[0], "data", 4, 0);
    report("recv EFAULT", recv(sv[1], BAD, 4, 0));
    report("sendmsg msghdr EFAULT", syscall(SYS_sendmsg, sv[0], BAD, 0));
    report("recvmsg msghdr EFAULT", syscall(SYS_recvmsg, sv[1], BAD, 0));
    report("sendto with address on stream", sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, sun_len("x")));
    close(sv[0]);
    close(sv[1]);
    close(s);

    /* sendmmsg / recvmmsg */
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    struct mmsghdr mm[3];
    struct iovec iovs[3] = {{"one", 3}, {"two!", 4}, {"three", 5}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &iovs[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    report("sendmmsg", sendmmsg(sv[0], mm, 3, 0));
    printf("msg_len %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
    char rb[3][8];
    struct iovec riovs[3] = {{rb[0], 8}, {rb[1], 8}, {rb[2], 8}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &riovs[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    report("recvmmsg", recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL));
    printf("msg_len %u %u %u %.5s\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len, rb[2]);
    send(sv[0], "a", 1, 0);
    send(sv[0], "b", 1, 0);
    struct timespec ts = {5, 0};
    report("recvmmsg with a timeout", syscall(SYS_recvmmsg, sv[1], mm, 2, 0, &ts));
    ts.tv_nsec = -1;
    report("recvmmsg bad timeout", syscall(SYS_recvmmsg, sv[1], mm, 2, 0, &ts));
    report("recvmmsg bad timeout EBADF", syscall(SYS_recvmmsg, 999, mm, 2, 0, &ts));
    close(sv[0]);
    close(sv[1]);
}

static void signals(void)
{
    printf("== signals\n");
    int sv[2];
    char buf[8];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    struct itimerval it = {{0, 0}, {0, 30000}};

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    sigaction(SIGALRM, &sa, NULL);
    alarms = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    report("recv interrupted", recv(sv[0], buf, sizeof buf, 0));
    printf("alarms %d\n", alarms);

    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    alarm_fd = sv[1];
    setitimer(ITIMER_REAL, &it, NULL);
    report("recv restarted", recv(sv[0], buf, sizeof buf, 0));
    printf("alarms %d\n", alarms);
    alarm_fd = -1;

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    bind(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path));
    listen(s, 1);
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    report("accept interrupted", accept(s, NULL, NULL));
    close(s);

    /* A writer blocked on a full socket. */
    static char chunk[4096];
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    while (write(sv[0], chunk, sizeof chunk) > 0)
        ;
    fcntl(sv[0], F_SETFL, 0);
    setitimer(ITIMER_REAL, &it, NULL);
    report("send interrupted", send(sv[0], chunk, sizeof chunk, 0));
    printf("alarms %d\n", alarms);
    close(sv[0]);
    close(sv[1]);

    /* SIGPIPE's default action kills the writer. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        close(sv[1]);
        char c;
        read(sv[0], &c, 1); /* EOF once the parent closed its end too */
        write(sv[0], "x", 1);
        _exit(0);
    }
    close(sv[0]);
    close(sv[1]);
    int status;
    waitpid(pid, &status, 0);
    printf("writer status %d\n", shell_status(status));
}

/* As uid/gid 1000 (run as root with "perm"): connect(2) needs write
 * permission on the socket file, bind(2) may_create's on the directory. */
static void permissions(void)
{
    printf("== permissions\n");
    char dir[] = "/tmp/uxpermXXXXXX";
    if (!mkdtemp(dir) || chmod(dir, 0755) != 0 || chdir(dir) != 0) {
        printf("no temp dir\n");
        return;
    }
    umask(0);
    const char *names[] = {"open", "closed"};
    int s[2];
    for (int i = 0; i < 2; i++) {
        s[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = sun_of(names[i]);
        bind(s[i], (struct sockaddr *)&a, sun_len(names[i]));
        listen(s[i], 4);
    }
    report("chmod closed 0755", chmod("closed", 0755));
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0)
            _exit(2);
        for (int i = 0; i < 2; i++) {
            int c = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un a = sun_of(names[i]);
            char label[64];
            snprintf(label, sizeof label, "uid 1000 connect %s", names[i]);
            report(label, connect(c, (struct sockaddr *)&a, sun_len(names[i])));
            close(c);
        }
        int b = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = sun_of("new");
        report("uid 1000 bind in a 0755 root dir", bind(b, (struct sockaddr *)&a, sun_len("new")));
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child status %d\n", shell_status(status));
    close(s[0]);
    close(s[1]);
    unlink("open");
    unlink("closed");
    chdir("/");
    rmdir(dir);
}

/* shutdown(2) of a listening socket wakes an accept blocked on it (in a
 * child sharing the socket): EINVAL once nothing waits; later ones too. */
static void accept_after_shutdown(void)
{
    printf("== accept after shutdown\n");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, "\0acc-shut", 10);
    report("bind", bind(l, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + 10));
    report("listen", listen(l, 4));
    pid_t child = fork();
    if (child == 0) {
        errno = 0;
        int r = accept(l, NULL, NULL);
        _exit(r < 0 && errno == EINVAL ? 0 : 1);
    }
    usleep(200000);
    report("shutdown listening SHUT_RDWR", shutdown(l, SHUT_RDWR));
    int status;
    waitpid(child, &status, 0);
    printf("blocked accept woken with EINVAL %d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    report("accept after", accept(l, NULL, NULL));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    report("connect to it", connect(c, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + 10));
    close(c);
    close(l);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "perm") == 0) {
        permissions();
        return 0;
    }
    signal(SIGPIPE, on_sigpipe);
    pair_basics(SOCK_STREAM, "stream");
    pair_basics(SOCK_DGRAM, "dgram");
    pair_basics(SOCK_SEQPACKET, "seqpacket");
    fork_and_talk();
    nonblocking_fill();
    path_names();
    abstract_names();
    rights_and_creds();
    options_and_errors();
    accept_after_shutdown();
    signals();
    return 0;
}
