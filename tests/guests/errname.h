/* errname.h: errno's symbolic name, for C test guests that print results.
 *
 * The output of a guest is compared between Linux and kvmsentry, so a name
 * reads better than strerror's text and is the same under glibc and musl
 * (glibc's strerrorname_np is not in musl). */
#ifndef ERRNAME_H
#define ERRNAME_H

#include <errno.h>
#include <stdio.h>

static const char *errname(int e) {
    static char buf[32];
    switch (e) {
    case 0: return "0";
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC)
    E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST)
    E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY)
    E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE)
    E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENODATA) E(EOVERFLOW)
    E(EOPNOTSUPP) E(ELIBBAD)
    E(ENOTSOCK) E(EADDRINUSE) E(ECONNREFUSED) E(ENOTCONN) E(EISCONN) E(ECONNRESET)
    E(EPROTOTYPE) E(EAFNOSUPPORT) E(EMSGSIZE) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT)
    E(ENOPROTOOPT) E(EDOM) E(ENOBUFS) E(EDESTADDRREQ)
#undef E
    default: snprintf(buf, sizeof buf, "E%d", e); return buf;
    }
}

#endif
