/* sock.c - see sock.h. <linux/tcp.h>, not <netinet/tcp.h>: glibc's struct
 * tcp_info stops before tcpi_bytes_acked. */
#include "server/sock.h"

#ifdef __linux__
#include <linux/tcp.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

uint64_t sock_bytes_acked(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked)
		return SOCK_UNKNOWN;
	return ti.tcpi_bytes_acked;
}
#else
uint64_t sock_bytes_acked(int fd)
{
	(void)fd;
	return SOCK_UNKNOWN;
}
#endif
