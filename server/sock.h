/*
 * sock.h - what the kernel knows of a connection's socket that
 * libmicrohttpd does not say: the bytes its peer has acknowledged.
 *
 * Owns nothing. Thread-safety: any thread, on any socket it may use.
 */
#ifndef MW_SERVER_SOCK_H
#define MW_SERVER_SOCK_H

#include <stdint.h>

/* Bytes the peer's TCP has acknowledged on fd since it connected
 * (TCP_INFO's tcpi_bytes_acked, Linux 4.1+); SOCK_UNKNOWN where it cannot
 * be read. */
#define SOCK_UNKNOWN UINT64_MAX
uint64_t sock_bytes_acked(int fd);

#endif
