/*
 * chrome.h - the Chrome Trace Event JSON of a capture: how a record, a
 * thread, and the document's head and tail are written.
 *
 * Owns nothing: pure formatting into a caller's json_out (json.h). Called by
 * capture.c, which reads the rings and decides what goes in; nothing here
 * knows about rings, sessions or the program being traced.
 *
 * The document: {"displayTimeUnit":"ns","traceEvents":[...],"otherData":{...}}.
 * Timestamps are microseconds with nanosecond decimals; spans are "X",
 * flows "s"/"t"/"f" bound to their spans, async slices "b"/"e", counters
 * "C", instants "i"; the process has process_name and each thread
 * thread_name and thread_sort_index metadata. otherData holds the tracer's
 * facts; a counter track 'trace lost events' shows the number lost, so it
 * is visible in the UI too.
 *
 * Thread-safety: pure functions of their arguments.
 */
#ifndef MW_TRACE_CHROME_H
#define MW_TRACE_CHROME_H

#include <stdint.h>

#include "trace/json.h"
#include "trace/trace.h"

/* One record, as read from a ring and decoded. */
struct chrome_rec {
	enum trace_kind kind;
	enum trace_flow flow; /* spans: their place in a flow */
	uint64_t id;          /* spans in a flow, async slices: the id */
	uint64_t ts, dur;
	const struct trace_desc *d;
	int64_t a[TRACE_ARGS];
};

/* The document's start and the process's name. */
void chrome_head(struct json_out *o, int pid, const char *process);

/* A thread's name and its place among the threads (each with a leading
 * comma, as every event after the head). */
void chrome_thread(struct json_out *o, int pid, int tid, const char *name, unsigned sort_index);

/* Record e of thread tid: one event, or a span and its flow point. */
void chrome_event(struct json_out *o, int pid, int tid, const struct chrome_rec *e);

/* The facts otherData reports. */
struct chrome_thread_facts {
	int tid;
	const char *name;
	uint64_t written, events, lost;
};

struct chrome_facts {
	const char *clock;          /* what the timestamps are read from */
	uint64_t start, end;        /* the window, on the trace clock */
	int flight_recorder;        /* the window was read back from the flight recorder */
	uint64_t events, written, lost, clipped;
	int complete;
	struct trace_usage usage;
	struct trace_kview_usage kview;
	uint64_t ring_bytes;        /* bytes a ring's records take */
	unsigned nthreads;
	const struct chrome_thread_facts *threads;
};

/* The lost-events counter, the end of traceEvents and otherData: the end
 * of the document. When the thread list does not fit, it is left out. */
void chrome_tail(struct json_out *o, int pid, const struct chrome_facts *f);

#endif
