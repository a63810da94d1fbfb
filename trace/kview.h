/*
 * kview.h - the kernel's view of traced threads, for trace.c and capture.c
 * only (users see it through trace.h's trace_kview_usage and the capture's
 * output).
 *
 * Owns: one perf_event_open context-switch event and its small mmap'd ring
 * per registered thread (opened by the thread itself when it registers,
 * never closed: a capture may be reading it), the thread's pending state,
 * the drainer thread that empties the kernel's rings into each thread's
 * states lane while the tracer is armed (and sleeps, waking nobody, while
 * the threads do nothing), its epoll set, and the view's state (on, off,
 * refused and why).
 *
 * What a thread's states lane holds: spans 'running' (argument: the CPU),
 * 'runnable' (switched out by preemption: it wanted the CPU) and 'blocked'
 * (switched out by its own wait), on the trace clock, one after another,
 * never overlapping. A thread's state before its first switch is read from
 * /proc at arm time (a thread seen 'R' there and next switched in was
 * runnable).
 *
 * Events are enabled when the tracer's armed count leaves 0 and disabled
 * when it returns to 0 (ioctl on every event), so a disarmed tracer costs
 * the kernel nothing.
 *
 * Thread-safety: everything here takes the view's one lock, except
 * kv_thread_open's system calls; the lock is never held while recording.
 * What may start or stop the drainer (kv_sync, kv_thread_open) first takes
 * a second lock, held across a stop's join, so that one drainer runs at a
 * time.
 */
#ifndef MW_TRACE_KVIEW_H
#define MW_TRACE_KVIEW_H

#include "trace/chrome.h"
#include "trace/perf.h"
#include "trace/ring.h"

enum kstate { KS_UNKNOWN, KS_RUNNING, KS_RUNNABLE, KS_BLOCKED, KS_PROC_R, KS_EXITED };

/* A thread's event and what has been read of it (all under kview.c's
 * lock). The event is open only while the tracer is armed. */
struct trace_kview_thread {
	struct perf_ring ring; /* closed while disarmed */
	enum kstate state;   /* since 'since' (trace clock), on 'cpu' */
	int cpu;
	uint64_t since;
	/* At its last drain (or its opening): CLOCK_MONOTONIC, and the offset
	 * from it to the trace clock. */
	uint64_t mono0;
	int64_t off0;
	/* Runnable-to-running delays seen (trace.h's trace_kview_delays). */
	uint64_t delay[TRACE_DELAY_BUCKETS], delay_sum_ns;
};

/* Drains the caller's kernel ring, and one other thread's in turn, unless
 * someone holds the lock. */
void kv_drain_self_(struct trace_ring *r);

#define KV_CHECK_EVERY 64 /* records between drains by the recording thread */

/* Called by a recording thread before its record number w: every
 * KV_CHECK_EVERY records it drains its own kernel ring (and another's), so
 * that a busy thread never waits for the drainer, which runs only when a
 * CPU is idle (never, on a loaded machine). The mapping is read only under
 * the lock: a disarm may unmap it at any time. */
static inline void kv_maybe_drain(struct trace_ring *r, uint64_t w)
{
	if (r->kv_self && w % KV_CHECK_EVERY == 0)
		kv_drain_self_(r);
}

extern const struct trace_desc trace_kv_running_, trace_kv_runnable_, trace_kv_blocked_;

/* The view's mode, from trace_init. */
void kv_init(enum trace_kview mode);

/* Opens the calling thread's event; r is its ring, just registered. */
void kv_thread_open(struct trace_ring *r);

/* Follows the armed count: enables or disables every event. */
void kv_sync(void);

/* Moves what the kernel has recorded for r's thread into its states
 * lane. */
void kv_drain(struct trace_ring *r);

/* The state r's thread has been in since its last switch, as a span from
 * then to 'until' (which clips it): 1, or 0 when not known. */
int kv_pending(struct trace_ring *r, uint64_t until, struct chrome_rec *out);

#endif
