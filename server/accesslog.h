/*
 * accesslog.h - one line per request on stderr, like the Go workshop's
 * logging middleware, with the client the service judged it as:
 *
 *   2026-11-24T10:00:00.123Z 127.0.0.1:50312 203.0.113.7 GET /mandelbrot?w=64 200 4123 5.214ms
 *
 * time (UTC, when the request finished), peer, client (client.h: the
 * peer's address, or behind a trusted proxy the one it forwarded; an IPv6
 * client as its /64; "-" when unknown), method, URI (control bytes and
 * spaces shown as %XX so a line is always one line), status, body bytes,
 * duration.
 *
 * Lines are buffered per thread, as nginx's access_log buffer= does: a
 * flood of refusals would otherwise cost a write(2) each. The buffer goes
 * out when it fills, and when its thread calls accesslog_flush: the HTTP
 * threads do once a round of their loop, before they wait for events, so
 * a round's lines go out in one write instead of one each, and none waits
 * longer than the round that made it.
 *
 * Thread-safety: any thread, each with its own buffer (allocated on its
 * first line, freed by accesslog_flush_free); each write(2) is of whole
 * lines and at most PIPE_BUF bytes, so lines from threads never mix.
 */
#ifndef MW_ACCESSLOG_H
#define MW_ACCESSLOG_H

#include <stdint.h>
#include <sys/socket.h>

#define ACCESSLOG_LINE_MAX 1024
#define ACCESSLOG_BUFFER 16384 /* bytes buffered per thread */

void accesslog_write(int fd, const struct sockaddr *peer, const char *client, const char *method,
		     const char *uri, unsigned status, uint64_t bytes, double seconds);

/* Writes out the calling thread's buffered lines. */
void accesslog_flush(void);
/* The same, and frees the thread's buffer (before the thread ends). */
void accesslog_flush_free(void);

#endif
