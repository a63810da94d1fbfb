/*
 * accesslog.h - one line per request on stderr, like the Go workshop's
 * logging middleware:
 *
 *   2026-11-24T10:00:00.123Z 127.0.0.1:50312 GET /mandelbrot?w=64 200 4123 5.214ms
 *
 * time (UTC, when the request finished), peer, method, URI (control bytes
 * and spaces shown as %XX so a line is always one line), status, body
 * bytes, duration. Thread-safety: any thread; each line is one write(2) of
 * at most ACCESSLOG_LINE_MAX bytes (under PIPE_BUF), so lines never mix.
 */
#ifndef MW_ACCESSLOG_H
#define MW_ACCESSLOG_H

#include <stdint.h>
#include <sys/socket.h>

#define ACCESSLOG_LINE_MAX 1024

void accesslog_write(int fd, const struct sockaddr *peer, const char *method, const char *uri,
		     unsigned status, uint64_t bytes, double seconds);

#endif
