/* The proxy's UDP send path: a socket of our own (NIO reads from it, we write to it), so that no
 * send error can close the shared socket. NIO's datagram channel closes itself on any sendmmsg
 * error other than EMSGSIZE and EHOSTUNREACH (EACCES for a broadcast destination, EPERM from a
 * firewall, ENETUNREACH, EINVAL, ENOBUFS, ...): one forged Via took the proxy off UDP for good. */
#ifndef CDATAGRAM_SOCKET_H
#define CDATAGRAM_SOCKET_H
#include <stddef.h>
#include <sys/socket.h>

/* One datagram to send: bytes, destination and, after cdgram_send, the errno of its send (0 = sent). */
typedef struct {
    const void *base;
    size_t length;
    struct sockaddr_storage address;
    socklen_t address_length;
    int error;
} cdgram_datagram;

/* A non-blocking UDP socket with SO_REUSEADDR, bound to `address`. Returns the descriptor, or
 * -errno when a step fails (the socket is closed then). `rcvbuf`/`sndbuf` > 0 set the buffer
 * sizes (SO_RCVBUFFORCE/SO_SNDBUFFORCE first, which root may use past net.core.*mem_max). */
int cdgram_open(const struct sockaddr *address, socklen_t address_length, int rcvbuf, int sndbuf);

/* Sends `count` datagrams with sendmmsg, in order. A datagram the kernel refuses is skipped and
 * its errno recorded in `error`; the others are still sent. Returns how many were sent. */
unsigned cdgram_send(int fd, cdgram_datagram *datagrams, unsigned count);

/* The symbolic name of an errno value ("EACCES"), or "E<number>" for one not listed. */
const char *cdgram_errno_name(int error);
#endif
