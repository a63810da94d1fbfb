/* accesslog.c - see accesslog.h. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/accesslog.h"

static void peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "-";
	unsigned port = 0;

	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", ip, port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", ip, port);
	} else {
		snprintf(buf, len, "-");
	}
}

/* Copies s into dst (at most len - 1 bytes), bytes <= 0x20 and >= 0x7f as %XX. */
static void uri_text(const char *s, char *dst, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (; s && *s && n + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f) {
			dst[n++] = '%';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 15];
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
}

struct buffer {
	int fd;
	size_t len;
	char data[ACCESSLOG_BUFFER];
};

static _Thread_local struct buffer *mine;

/* Whole lines, at most PIPE_BUF bytes a write. A failed write drops what
 * it held, as an unbuffered line would have been lost. */
static void drain(struct buffer *b)
{
	size_t off = 0;
	while (off < b->len) {
		size_t n = b->len - off;
		if (n > PIPE_BUF) {
			n = PIPE_BUF;
			while (n > 0 && b->data[off + n - 1] != '\n')
				n--;
			if (n == 0)
				n = PIPE_BUF;
		}
		ssize_t w = write(b->fd, b->data + off, n);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	b->len = 0;
}

void accesslog_flush(void)
{
	if (mine && mine->len)
		drain(mine);
}

void accesslog_flush_free(void)
{
	accesslog_flush();
	free(mine);
	mine = NULL;
}

void accesslog_write(int fd, const struct sockaddr *peer, const char *client, const char *method,
		     const char *uri, unsigned status, uint64_t bytes, double seconds)
{
	char line[ACCESSLOG_LINE_MAX], who[INET6_ADDRSTRLEN + 10], u[512], m[16], when[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	peer_text(peer, who, sizeof who);
	uri_text(uri, u, sizeof u);
	uri_text(method, m, sizeof m);
	int n = snprintf(line, sizeof line, "%s.%03ldZ %s %s %s %s %u %llu %.3fms\n", when,
			 ts.tv_nsec / 1000000, who, client ? client : "-", m, u, status,
			 (unsigned long long)bytes, seconds * 1e3);
	if (n <= 0)
		return;
	size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
	line[len - 1] = '\n';
	if (!mine && (mine = malloc(sizeof *mine)))
		mine->len = 0;
	if (!mine) {
		(void)!write(fd, line, len);
		return;
	}
	if (mine->len && (mine->fd != fd || mine->len + len > sizeof mine->data))
		drain(mine);
	mine->fd = fd;
	memcpy(mine->data + mine->len, line, len);
	mine->len += len;
}
