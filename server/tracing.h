/*
 * tracing.h - the parts of GET /debug/trace: its parameters, the timer that
 * ends a window without blocking an HTTP thread, and the streamed body.
 *
 * Owns: the timer thread (one, started with the server, idle until a
 * window is armed) and, once tracing_response has it, the capture.
 *
 * Thread-safety: tracing_after, tracing_hurry and tracing_retry_after from
 * any thread; fire runs on the timer thread. One window at a time (the
 * tracer's capture session already enforces it).
 */
#ifndef MW_TRACING_H
#define MW_TRACING_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/capture.h"

struct tracing;

/* Starts the timer thread; fire(ctx) is what an armed window's end runs.
 * 0 or -errno. */
int tracing_create(struct tracing **out, void (*fire)(void *ctx));
void tracing_destroy(struct tracing *t); /* stops the thread; NULL is a no-op */

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
 * each): 0 with *ns the window, *last set for last=, *summary for
 * format=summary and *samples unless samples=off, or -EINVAL with a
 * one-line reason in why. seconds: a decimal number in 0.001..max_s
 * (default 1); last: the same, and only with the flight recorder on;
 * format: json (the default) or summary; samples: on (the default) or off
 * (the JSON without its CPU samples: speedscope then shows the slices). */
int tracing_parse(struct MHD_Connection *conn, unsigned max_s, int flight, uint64_t *ns, int *last,
		  int *summary, int *samples, char *why, size_t len);

/* Reads /debug/pprof/profile's seconds= (nothing else, once): 0 with *ns
 * the window (default 30 s, as Go's), or -EINVAL with a one-line reason in
 * why. seconds: a decimal number in 1..max_s. */
int tracing_parse_profile(struct MHD_Connection *conn, unsigned max_s, uint64_t *ns, char *why,
			  size_t len);

/* Runs fire(ctx) on the timer thread ns nanoseconds from now. */
void tracing_after(struct tracing *t, uint64_t ns, void *ctx);
/* Ends the armed window now (shutdown). */
void tracing_hurry(struct tracing *t);
/* Whole seconds until the armed window ends, at least 1 (Retry-After). */
unsigned tracing_retry_after(struct tracing *t);

/* A chunked response that streams the capture's JSON as MHD asks for it;
 * it owns c from now on and frees it (ending the session) when the
 * response is destroyed, also when the client goes away mid-stream. The
 * bytes handed to MHD are added to *sent as they are (the access log's
 * count; *sent must outlive the sending, not the response). NULL when out
 * of memory (c is then still the caller's). */
struct MHD_Response *tracing_response(struct trace_capture *c, uint64_t *sent);

#endif
