/*
 * chrome.h - the Chrome Trace Event JSON of a capture: how a record, a
 * thread, and the document's head and tail are written.
 *
 * Owns nothing: pure formatting into a caller's json_out (json.h). Called by
 * capture.c, which reads the rings and decides what goes in; nothing here
 * knows about rings, sessions or the program being traced.
 *
 * The document: {"displayTimeUnit":"ns","traceEvents":[...],"samples":[...],
 * "stackFrames":{...},"otherData":{...}}; samples and stackFrames only when
 * the window holds a CPU sample (speedscope then imports the samples
 * rather than the slices).
 * Timestamps are microseconds with nanosecond decimals, from the window's
 * start (otherData's window_start_us is that start on the trace clock; the
 * caller subtracts it); spans are "X" (a category only in a flow),
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

/* Record e of thread tid: one event (a span in a flow has category
 * "flow"; its flow point is chrome_flow's, written apart). */
void chrome_event(struct json_out *o, int pid, int tid, const struct chrome_rec *e);

/* The flow point of a span at ts on thread tid: "s", "t" or "f" for f, with
 * the span's ts and category (Chrome's trace engine binds a point to the
 * slice with its ts, pid, tid and cat) and, but for a start, bound to the
 * enclosing slice. The trace engine also takes the points in the order
 * they come, so capture.c writes them after the slices, sorted by time. */
void chrome_flow(struct json_out *o, int pid, int tid, uint64_t ts, enum trace_flow f, uint64_t id);

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
	const char *sampler;        /* how the CPU samples were taken, or why not */
	const char *spill;          /* "on", "off: why", or "stopped: why" (spill.h) */
	const char *note;           /* trace_capture_note's, or "" */
	uint64_t spill_bytes, spill_records;
	uint64_t samples, samples_lost, truncated;
	unsigned nthreads;
	const struct chrome_thread_facts *threads;
};

/* The lost-events counter (lost, from start to end) and the end of
 * traceEvents. */
void chrome_events_end(struct json_out *o, int pid, uint64_t start, uint64_t end, uint64_t lost);

/* A CPU sample of thread tid at ts: the leaf of its stack is frame, and
 * it stands for weight sampling periods. The first opens "samples". */
void chrome_sample(struct json_out *o, int first, int pid, int tid, uint64_t ts, uint32_t frame,
		   uint64_t weight);

/* A node of the stack-frame tree: its function's name, its source file
 * (the category: basename), its parent (0: a root). The first closes
 * "samples" and opens "stackFrames"; the caller closes it with "}". */
void chrome_frame(struct json_out *o, int first, uint32_t id, const char *name, const char *file,
		  uint32_t parent);

/* otherData, and the end of the document. When the thread list does not
 * fit, it is left out. */
void chrome_tail(struct json_out *o, const struct chrome_facts *f);

#endif
