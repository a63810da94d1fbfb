/*
 * tracing.h - what the /debug/ windows read and send: the parameters of
 * GET /debug/trace and /debug/pprof/profile, and the trace's streamed
 * body. (The window's end is deadline.h's.)
 *
 * Owns: once tracing_response has it, the capture.
 *
 * Thread-safety: pure functions on the caller's structs; the response's
 * callbacks run on the HTTP thread sending it.
 */
#ifndef MW_TRACING_H
#define MW_TRACING_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/capture.h"

/* The query of /debug/trace, parameter by parameter, without a connection
 * (tracing_parse feeds it from one; the fuzzer from bytes). */
struct tracing_query {
	const char *seconds, *last, *format, *samples; /* the values given (pointers into the caller's) */
	int bad;                    /* 1: unknown name, 2: given twice, 3: a NUL */
	char key[32];
};
/* MHD_YES to go on, MHD_NO once it is bad (as MHD_KeyValueIteratorN). */
int tracing_query_add(struct tracing_query *q, const char *key, size_t key_size, const char *value,
		      size_t value_size);
/* As tracing_parse, once every parameter has been added. */
int tracing_query_finish(const struct tracing_query *q, unsigned max_s, int flight, uint64_t *ns,
			 int *last, char *why, size_t len);

/* Reads seconds= or last=, format= and samples= (nothing else, once
 * each): 0 with *ns the window, *last set for last=, *format and *samples
 * unless samples=off, or -EINVAL with a one-line reason in why. seconds:
 * a decimal number in 0.001..max_s (default 1); last: the same, and only
 * with the flight recorder on; format: json (the default), perfetto
 * (Perfetto's protobuf) or summary; samples: on (the default) or off (the
 * document without its CPU samples: speedscope then shows the slices). */
int tracing_parse(struct MHD_Connection *conn, unsigned max_s, int flight, uint64_t *ns, int *last,
		  enum trace_format *format, int *samples, char *why, size_t len);

/* Reads a profile route's seconds= (nothing else, once; route names it in
 * the reason): 0 with *ns the window (default 30 s, as Go's), or -EINVAL
 * with a one-line reason in why. seconds: a decimal number in 1..max_s. */
int tracing_parse_profile(struct MHD_Connection *conn, const char *route, unsigned max_s,
			  uint64_t *ns, char *why, size_t len);

/* Whether an Accept-Encoding value (NULL: none) takes gzip. */
bool tracing_accepts_gzip(const char *accept_encoding);

/* A chunked response that streams the capture's document as MHD asks for
 * it, gzipped as it goes (gzip: the caller says Content-Encoding); it owns
 * c from now on and frees it (ending the session) when the response is
 * destroyed, also when the client goes away mid-stream. The bytes handed
 * to MHD are added to *sent as they are (the access log's count; *sent
 * must outlive the sending, not the response). NULL when out of memory (c
 * is then still the caller's). */
struct MHD_Response *tracing_response(struct trace_capture *c, uint64_t *sent, bool gzip);

#endif
