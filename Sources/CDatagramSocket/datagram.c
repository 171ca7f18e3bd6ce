#define _GNU_SOURCE
#include "CDatagramSocket.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int cdgram_open(const struct sockaddr *address, socklen_t address_length, int rcvbuf, int sndbuf) {
    int fd = socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
#ifdef SO_RCVBUFFORCE
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
#else
    if (rcvbuf > 0) (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (sndbuf > 0) (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
#endif
    if (bind(fd, address, address_length) < 0) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    return -saved;
}

enum { BATCH = 64 };

unsigned cdgram_send(int fd, cdgram_datagram *datagrams, unsigned count) {
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    unsigned sent = 0;
    unsigned i = 0;
    while (i < count) {
        unsigned n = count - i < BATCH ? count - i : BATCH;
        for (unsigned k = 0; k < n; k++) {
            cdgram_datagram *d = &datagrams[i + k];
            d->error = 0;
            iov[k].iov_base = (void *)d->base;
            iov[k].iov_len = d->length;
            memset(&msgs[k], 0, sizeof msgs[k]);
            msgs[k].msg_hdr.msg_name = &d->address;
            msgs[k].msg_hdr.msg_namelen = d->address_length;
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(fd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) continue;
            /* The first datagram of this batch was refused: record it, skip it, go on. */
            datagrams[i].error = errno;
            i += 1;
            continue;
        }
        sent += (unsigned)r;
        i += (unsigned)r;
    }
    return sent;
}

const char *cdgram_errno_name(int error) {
    switch (error) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EINVAL: return "EINVAL";
    case EMSGSIZE: return "EMSGSIZE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOBUFS: return "ENOBUFS";
    case EAGAIN: return "EAGAIN";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOMEM: return "ENOMEM";
    case EBADF: return "EBADF";
    case ENOTCONN: return "ENOTCONN";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ENETDOWN: return "ENETDOWN";
    case EIO: return "EIO";
    default: {
        static __thread char buf[16];
        snprintf(buf, sizeof buf, "E%d", error);
        return buf;
    }
    }
}
