/*
 * trace.h - an embeddable ring-buffer tracer: record spans, instants,
 * counters, flows and async slices from any thread; capture a window of
 * them as Chrome Trace Event JSON (trace/chrome.h).
 *
 * Owns: one ring of fixed-size records per thread (allocated on the
 * thread's first event while armed, kept until exit), the clock, the
 * armed state and the one capture session. Depends on libc and pthreads
 * only.
 *
 * Recording: a thread writes only its own ring: no lock and no shared
 * cache line per event. While the tracer is disarmed every trace_* call
 * costs one relaxed atomic load and a predictable branch. A full ring
 * overwrites its oldest records (a flight recorder); the capture counts
 * what was lost and says so in its output.
 *
 * Names: a record points to a static 'struct trace_desc' (event name,
 * category, argument names), never to a formatted string; arguments are
 * integers, or static strings where the desc says so.
 *
 * Thread-safety: trace_init before any other thread records (it sets the
 * clock); everything else from any thread. Captures are one at a time
 * (-EBUSY for the second); the capture's reader may run while other
 * threads record.
 */
#ifndef MW_TRACE_H
#define MW_TRACE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TRACE_RING_EVENTS_DEFAULT (256u * 1024) /* 16 MiB of 64-byte records a thread */
#define TRACE_RING_EVENTS_MIN 64u
#define TRACE_RING_EVENTS_MAX (16u * 1024 * 1024)
#define TRACE_THREADS_MAX 256 /* rings; a thread past this records nothing (counted) */
#define TRACE_ARGS 4

struct trace_desc {
	const char *name;
	const char *cat;
	const char *arg[TRACE_ARGS]; /* argument names; NULL ends the list */
	unsigned strargs;            /* bit i: argument i is a static string */
};

/* The kernel's view of each thread (running, runnable, blocked, the CPU),
 * from perf_event_open context-switch records while the tracer is armed.
 * AUTO opens it where the kernel allows; REFUSE behaves as if the kernel
 * had refused (to test that path). */
enum trace_kview { TRACE_KVIEW_AUTO, TRACE_KVIEW_OFF, TRACE_KVIEW_REFUSE };

/* "auto", "off" or "refuse" (NULL: auto): the mode, or -1. */
int trace_kview_parse(const char *s);

struct trace_config {
	unsigned ring_events; /* records per thread, rounded up to a power of two */
	const char *process;  /* the process's name in the trace (static) */
	int gettime;          /* 1: read CLOCK_MONOTONIC, never the CPU's counter */
	enum trace_kview kview;
	/* A window's spill (trace/spill.h): the directory of its temporary
	 * file (NULL: $TMPDIR, else /tmp; static) and its bound in MiB (0:
	 * 1024; TRACE_SPILL_OFF: no spill, a window is what the rings hold). */
	const char *spill_dir;
	unsigned spill_mb;
};
#define TRACE_SPILL_OFF (~0u)

/* Calibrates the clock and sets the ring size for threads that register
 * later. Call once at start-up, before other threads exist. 0 or -EINVAL. */
int trace_init(const struct trace_config *c);

/* ---- the clock: nanoseconds, monotonic, one for every thread ---- */

/* x86-64 and arm64 read the CPU's invariant counter (about 10 ns, against
 * 24 ns for clock_gettime on the machine where this was measured) and
 * scale it to nanoseconds, calibrated against CLOCK_MONOTONIC by
 * trace_init; elsewhere, or where the kernel does not trust the counter,
 * clock_gettime(CLOCK_MONOTONIC). */
struct trace_clock_ {
	int counter;     /* 1: scale the CPU counter; 0: clock_gettime */
	uint64_t c0, n0; /* counter and nanoseconds at calibration */
	uint64_t mult;   /* nanoseconds per tick, times 2^32 */
};
extern struct trace_clock_ trace_clock_;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
#define TRACE_COUNTER_ 1
static inline uint64_t trace_ticks_(void) { return __rdtsc(); }
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define TRACE_COUNTER_ 1
static inline uint64_t trace_ticks_(void)
{
	uint64_t v;
	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
	return v;
}
#else
#define TRACE_COUNTER_ 0
static inline uint64_t trace_ticks_(void) { return 0; }
#endif

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 trace_u128_;
#endif

static inline uint64_t trace_mul32_(uint64_t a, uint64_t b) /* (a * b) >> 32 */
{
#ifdef __SIZEOF_INT128__
	return (uint64_t)(((trace_u128_)a * b) >> 32);
#else
	uint64_t ah = a >> 32, al = a & 0xffffffffu;
	return ah * b + ((al * (b & 0xffffffffu)) >> 32) + al * (b >> 32);
#endif
}

static inline uint64_t trace_now(void)
{
	if (TRACE_COUNTER_ && trace_clock_.counter)
		return trace_clock_.n0 +
		       trace_mul32_(trace_ticks_() - trace_clock_.c0, trace_clock_.mult);
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- recording ---- */

extern atomic_uint trace_armed_; /* captures and the flight recorder holding it on */

static inline int trace_on(void)
{
	return atomic_load_explicit(&trace_armed_, memory_order_relaxed) != 0;
}

/* A span's start: the time if armed, else 0 (and the span is not recorded). */
static inline uint64_t trace_begin(void)
{
	return trace_on() ? trace_now() : 0;
}

enum trace_kind { TRACE_SPAN, TRACE_INSTANT, TRACE_COUNTER, TRACE_ASYNC };
/* A flow binds a span to spans on other threads: start, step, end. */
enum trace_flow { TRACE_FLOW_NONE, TRACE_FLOW_START, TRACE_FLOW_STEP, TRACE_FLOW_END };
/* Ids stay below 2^53, so that a JavaScript viewer parses each into a
 * distinct double: trace_flow_id's from 2^52 up, a program's below. */
#define TRACE_ID_MAX ((UINT64_C(1) << 53) - 1)
#define TRACE_ID_OWN (UINT64_C(1) << 52)

/* A new flow id, unique in the process: for a wake-up's arrow, say. */
uint64_t trace_flow_id(void);

void trace_put_(const struct trace_desc *d, uint64_t meta, uint64_t ts, uint64_t dur,
		const int64_t a[TRACE_ARGS]);

static inline uint64_t trace_meta_(enum trace_kind k, enum trace_flow f, uint64_t id)
{
	return (id << 4) | ((uint64_t)f << 2) | (uint64_t)k;
}

/* A complete span from t0 (trace_begin) to t1, with flow f of id. */
static inline void trace_span_to(const struct trace_desc *d, uint64_t t0, uint64_t t1,
				 enum trace_flow f, uint64_t id, int64_t a0, int64_t a1)
{
	if (t0 && t1 >= t0 && trace_on()) {
		const int64_t a[TRACE_ARGS] = {a0, a1, 0, 0};
		trace_put_(d, trace_meta_(TRACE_SPAN, f, id), t0, t1 - t0, a);
	}
}

/* A complete span from t0 (trace_begin) to now, with flow f of id. */
static inline void trace_span_flow(const struct trace_desc *d, uint64_t t0, enum trace_flow f,
				   uint64_t id, int64_t a0, int64_t a1, int64_t a2, int64_t a3)
{
	if (t0 && trace_on()) {
		const int64_t a[TRACE_ARGS] = {a0, a1, a2, a3};
		trace_put_(d, trace_meta_(TRACE_SPAN, f, id), t0, trace_now() - t0, a);
	}
}

/* A static string as an argument (the desc marks it in strargs). */
#define TRACE_STR(s) ((int64_t)(intptr_t)(s))

static inline void trace_span(const struct trace_desc *d, uint64_t t0, int64_t a0, int64_t a1)
{
	trace_span_flow(d, t0, TRACE_FLOW_NONE, 0, a0, a1, 0, 0);
}

static inline void trace_instant(const struct trace_desc *d, int64_t a0, int64_t a1)
{
	if (trace_on()) {
		const int64_t a[TRACE_ARGS] = {a0, a1, 0, 0};
		trace_put_(d, trace_meta_(TRACE_INSTANT, 0, 0), trace_now(), 0, a);
	}
}

/* A process-wide counter: desc's name is the track, arg[0] the series. */
static inline void trace_counter(const struct trace_desc *d, int64_t value)
{
	if (trace_on()) {
		const int64_t a[TRACE_ARGS] = {value, 0, 0, 0};
		trace_put_(d, trace_meta_(TRACE_COUNTER, 0, 0), trace_now(), 0, a);
	}
}

/* An async slice from t0 to t1 with id (nonzero): it may start on one
 * thread and end on another; slices with one id nest on one track. */
static inline void trace_async(const struct trace_desc *d, uint64_t id, uint64_t t0, uint64_t t1,
			       int64_t a0, int64_t a1, int64_t a2, int64_t a3)
{
	if (t0 && t1 >= t0 && trace_on()) {
		const int64_t a[TRACE_ARGS] = {a0, a1, a2, a3};
		trace_put_(d, trace_meta_(TRACE_ASYNC, 0, id), t0, t1 - t0, a);
	}
}

/* ---- labels, for CPU samples ----
 *
 * What a thread works for now: the route of the request and the render's
 * mode (static strings, or NULL), as Go's pprof.Do sets goroutine labels.
 * The CPU profiler's signal handler copies them into each sample of the
 * thread (prof/sigprof.c), so a profile can be cut by them (go tool pprof
 * -tagfocus mode=px). Set and restored by the thread itself. */
struct trace_labels {
	const char *route, *mode;
};
extern _Thread_local struct trace_labels trace_labels_;

/* Sets the calling thread's labels; returns the ones they replace. */
static inline struct trace_labels trace_labels_swap(struct trace_labels l)
{
	struct trace_labels old = trace_labels_;
	trace_labels_ = l;
	return old;
}

/* ---- waits, for an off-CPU (block) profiler ----
 *
 * A wait site brackets a wait: t0 = trace_wait_begin(desc) before it
 * (desc names why, "wait: ..."); trace_wait_sleep(desc) right before the
 * thread goes to sleep in it (a futex, a condition variable, poll: again
 * at each sleep of the same wait is harmless); trace_wait_end(desc, t0,
 * t1) once it runs again (t1: when it did), or trace_wait_none() when it
 * did not wait after all. A wait that only spun never slept: it was on a
 * CPU. A profiler (prof/block.c) attaches; while it is armed, each sleep
 * reaches it with the call chain of the site (frame pointers, walked in
 * the sleeping thread), each end with its time. The tracer's own span
 * stays the site's business. With nothing armed each costs one relaxed
 * load (begin: what trace_begin costs). */
struct trace_waiter {
	/* On the waiting thread, before its first sleep in the wait;
	 * ips[0..n): the site's frames, every one a return address. */
	void (*sleep)(const struct trace_desc *d, uint64_t t, const uint64_t *ips, unsigned n);
	void (*end)(const struct trace_desc *d, uint64_t t0, uint64_t t1);
	void (*none)(void); /* the wait begun did not happen */
};
#define TRACE_WAIT_FRAMES 64

extern atomic_uint trace_waits_armed_;

/* Any time (the first arming needs it); NULL detaches. */
void trace_waiter_attach(const struct trace_waiter *w);
/* The attached waiter's session: 1 from its start, 0 at its end. */
void trace_waits_arm(int on);

static inline int trace_waits_on(void)
{
	return atomic_load_explicit(&trace_waits_armed_, memory_order_relaxed) != 0;
}

void trace_wait_sleep_(const struct trace_desc *d);
void trace_wait_end_(const struct trace_desc *d, uint64_t t0, uint64_t t1);
void trace_wait_none_(void);

/* A wait's start: the time when the tracer or a waiter is armed, else 0. */
static inline uint64_t trace_wait_begin(const struct trace_desc *d)
{
	(void)d;
	return trace_on() || trace_waits_on() ? trace_now() : 0;
}

/* The thread is about to sleep in the wait d. */
static inline void trace_wait_sleep(const struct trace_desc *d)
{
	if (trace_waits_on())
		trace_wait_sleep_(d);
}

/* The wait begun did not happen (the token was there). */
static inline void trace_wait_none(void)
{
	if (trace_waits_on())
		trace_wait_none_();
}

/* A wait that began at t0 ended at t1, to the waiter (not the tracer). */
static inline void trace_wait_end(const struct trace_desc *d, uint64_t t0, uint64_t t1)
{
	if (t0 && t1 >= t0 && trace_waits_on())
		trace_wait_end_(d, t0, t1);
}

/* The common case: a wait from t0 to now, as the tracer's span d (no
 * arguments) and to the waiter. */
static inline void trace_wait_span(const struct trace_desc *d, uint64_t t0)
{
	if (!t0)
		return;
	uint64_t t1 = trace_now();
	trace_span_to(d, t0, t1, TRACE_FLOW_NONE, 0, 0, 0);
	trace_wait_end(d, t0, t1);
}

/* Names the calling thread in traces (else its pthread name is used). */
void trace_thread_name(const char *name);

/* ---- arming ---- */

/* The flight recorder keeps every ring recording, so that a capture of
 * the last N seconds can be taken at any time. */
void trace_flight_recorder(int on);
int trace_flight_recording(void);

/* What the tracer holds now, for metrics and the capture's facts. */
struct trace_usage {
	unsigned threads;         /* rings allocated */
	unsigned threads_dropped; /* threads past TRACE_THREADS_MAX */
	unsigned ring_events;     /* records a ring holds */
	size_t bytes;             /* memory in rings */
};
void trace_usage(struct trace_usage *u);

/* ---- CPU samples ----
 *
 * A sampler (prof/tsample.c) attaches once, at start-up; while the tracer
 * is armed it samples the CPU of every thread that has a ring and hands
 * each sample to trace_sample, which files it in that ring's samples lane
 * under a node of one tree of stack frames. A capture writes those of its
 * window as the Trace Event format's own "samples" and "stackFrames". */
struct trace_sampler {
	void (*sync)(void);                     /* the armed count moved: follow trace_on() */
	void (*thread)(unsigned ring, int tid); /* ring was registered, by its thread */
	/* Names for a capture's frames: a session, the function at pc (NULL:
	 * unknown) and its source file, the session's end. */
	void *(*sym_open)(void);
	const char *(*sym_name)(void *s, uint64_t pc, const char **file);
	void (*sym_close)(void *s);
	/* How it samples, or why it cannot: a line for the capture's facts. */
	void (*how)(char *buf, size_t len);
};

/* Before any thread records: 0, or -ENOMEM (the frame tree). */
int trace_sampler_attach(const struct trace_sampler *s);

/* A sample of ring's thread at ts (trace clock), standing for weight
 * periods: frames ips[0..n), leaf first, callers' as return addresses.
 * The attached sampler's one collecting thread calls it, nobody else. */
void trace_sample(unsigned ring, uint64_t ts, const uint64_t *ips, unsigned n, unsigned weight);

/* The rings registered so far, and ring i's thread (0: none). */
unsigned trace_ring_count(void);
int trace_ring_tid(unsigned i);

/* Where the kernel's view stands, for metrics and the capture's facts. */
struct trace_kview_usage {
	const char *state;   /* "on", "off", "refused" or "unused" (a static string) */
	char why[160];       /* refused or off: why, as the kernel said it */
	unsigned threads;    /* threads with an event open */
	unsigned refused;    /* threads whose event the kernel refused */
	uint64_t switches;   /* switch records read */
	uint64_t lost;       /* switch records the kernel's rings lost */
};
void trace_kview_usage(struct trace_kview_usage *u);

/* Ring i's thread's delays from runnable to running, as the kernel's view
 * saw them while the tracer was armed (since start-up): counts by bucket,
 * bucket b holding delays up to 1 us x 4^b (the last: the rest), and
 * their sum. 0, or -1 (no such ring, or no kernel view of it). */
#define TRACE_DELAY_BUCKETS 12
int trace_kview_delays(unsigned i, uint64_t count[TRACE_DELAY_BUCKETS], uint64_t *sum_ns);

#endif
