/*
 * summary.h - "where did the time go", in plain text, from a capture's
 * records: for each thread the share of the window it was running,
 * runnable, blocked (by the wait it was in) and inside each span name; for
 * each async slice name (a request's phases, say) the count and the
 * percentiles of its duration. As go tool trace's goroutine analysis, but
 * with nothing to open.
 *
 * Owns: the tables it builds, freed by summary_finish: small tables by
 * name, and up to 32 Ki runnable and 32 Ki blocked intervals a thread
 * (past that, neighbours are merged and the thread's text says its
 * shares are approximate), and the async slices' durations. Knows
 * nothing of rings or of the program traced: capture.c feeds it the
 * records of the window, a thread at a time (the thread's states before
 * its events).
 *
 * A wait: a span whose name begins "wait" says why its thread is blocked
 * while it lasts; blocked time under no such span is "outside a wait span"
 * (or in one still open at the end of the window: spans are recorded as
 * they end).
 *
 * Thread-safety: one summary is used by one thread.
 */
#ifndef MW_TRACE_SUMMARY_H
#define MW_TRACE_SUMMARY_H

#include <stddef.h>

#include "trace/capture.h"
#include "trace/chrome.h"

struct summary;

/* A duration in the unit that fits it, to 3 digits: "260 ns", "12.3 us",
 * "4.56 ms", "1.20 s". Returns buf. */
#define SUMMARY_DURATION_MAX 16
const char *summary_duration(char buf[SUMMARY_DURATION_MAX], double ns);

/* A summary of the window [start, end): NULL when out of memory. */
struct summary *summary_new(uint64_t start, uint64_t end);

/* A first pass over the window's events, before the records again
 * (summary_thread, summary_add): picks the slowest requests, the only ones
 * it then takes apart. Without it, every request is (its memory grows
 * with the window's requests). */
void summary_pick(struct summary *s, const struct chrome_rec *e);
void summary_picked(struct summary *s);

/* The records that follow are thread tid's; states: whether the kernel's
 * view of it is open. */
void summary_thread(struct summary *s, int tid, const char *name, int states);

/* One record of the current thread, inside the window; state: from its
 * states lane (running, runnable, blocked). */
void summary_add(struct summary *s, const struct chrome_rec *e, int state);

/* The text (malloc'd, *len bytes, NUL-terminated) or NULL; frees s. kview:
 * one line on the kernel's view ("on", or why not). */
char *summary_finish(struct summary *s, const char *kview, const struct trace_facts *f,
		     size_t *len);

/* The same as JSON, for tools: {"window_ns", "events", "lost", "kernel_view",
 * "threads": [{"name", "tid", "running_ns", "runnable_ns", "blocked_ns",
 * "states_merged"}] (the states: 0 without a kernel view), "slowest_requests": anatomy.h's,
 * the 20 slowest}; frees s. */
char *summary_finish_json(struct summary *s, const char *kview, const struct trace_facts *f,
			  size_t *len);

#endif
