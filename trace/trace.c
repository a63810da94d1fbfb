/*
 * trace.c - the clock, the rings and the armed state (see trace.h and
 * ring.h for the rules).
 *
 * Registration is the only shared write: a thread's first recorded event
 * takes a slot with one atomic increment and publishes its ring pointer
 * with release; the capture reads the count with acquire and then each
 * pointer with acquire (a slot taken but not yet published reads NULL and
 * is skipped: that thread has recorded nothing yet).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/chrome.h"
#include "trace/kview.h"
#include "trace/samples.h"
#include "trace/ring.h"
#include "trace/spill.h"

#define CALIBRATE_NS 10000000 /* 10 ms: a 50 ns sampling error is then 5 ppm */

struct trace_clock_ trace_clock_;
atomic_uint trace_armed_;

static _Atomic(struct trace_ring *) rings[TRACE_THREADS_MAX];
static atomic_uint nrings, dropped, flight;
static unsigned ring_events = TRACE_RING_EVENTS_DEFAULT;
static const char *process = "process";
static const char *spill_dir;
static unsigned spill_mb;
static _Thread_local struct trace_ring *self;
static _Thread_local int self_failed;

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A (counter, nanoseconds) pair read as close together as this thread can:
 * the best bracket of five. */
static void sample(uint64_t *c, uint64_t *n)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		uint64_t a = mono_ns(), t = trace_ticks_(), b = mono_ns();
		if (b - a < best) {
			best = b - a;
			*c = t;
			*n = a + (b - a) / 2;
		}
	}
}

/* The kernel only picks the TSC as its clock source when it is invariant
 * and synchronised across CPUs; where it did not, neither do we. */
static int counter_trusted(void)
{
#if defined(__x86_64__)
	char src[32] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (!f)
		return 0;
	int ok = fgets(src, sizeof src, f) && strncmp(src, "tsc", 3) == 0;
	fclose(f);
	return ok;
#else
	return TRACE_COUNTER_;
#endif
}

static void calibrate(int gettime)
{
	uint64_t c0, n0, c1, n1;

	if (!TRACE_COUNTER_ || !counter_trusted() || gettime)
		return;
	sample(&c0, &n0);
	struct timespec nap = {0, CALIBRATE_NS};
	nanosleep(&nap, NULL);
	sample(&c1, &n1);
	if (c1 <= c0 || n1 <= n0)
		return;
	trace_clock_.c0 = c1;
	trace_clock_.n0 = n1;
	trace_clock_.mult = (uint64_t)(((double)(n1 - n0) / (double)(c1 - c0)) * 4294967296.0);
	trace_clock_.counter = trace_clock_.mult != 0;
}

int trace_init(const struct trace_config *c)
{
	unsigned ev = c && c->ring_events ? c->ring_events : TRACE_RING_EVENTS_DEFAULT;
	if (ev < TRACE_RING_EVENTS_MIN || ev > TRACE_RING_EVENTS_MAX)
		return -EINVAL;
	unsigned size = TRACE_RING_EVENTS_MIN;
	while (size < ev)
		size *= 2;
	ring_events = size;
	if (c && c->process)
		process = c->process;
	spill_dir = c ? c->spill_dir : NULL;
	spill_mb = c ? c->spill_mb : 0;
	calibrate(c && c->gettime);
	kv_init(c ? c->kview : TRACE_KVIEW_AUTO);
	return 0;
}

/* The counters lane: half the events lane, at least the minimum ring. A
 * quarter lost counters on the HTTP thread under the workshop's overload
 * (each connection and request moves two), half kept every one. */
static unsigned counter_events(void)
{
	return ring_events / 2 < TRACE_RING_EVENTS_MIN ? TRACE_RING_EVENTS_MIN : ring_events / 2;
}

static struct trace_ring *register_self(void)
{
	if (self_failed)
		return NULL;
	self_failed = 1; /* until it works: never retry on every event */
	unsigned i = atomic_fetch_add_explicit(&nrings, 1, memory_order_relaxed);
	if (i >= TRACE_THREADS_MAX) {
		atomic_fetch_sub_explicit(&nrings, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return NULL;
	}
	struct trace_ring *r = calloc(1, sizeof *r);
	struct trace_rec *rec = calloc(ring_events, sizeof *rec);
	struct trace_rec *crec = calloc(counter_events(), sizeof *crec);
	if (!r || !rec || !crec) {
		free(r);
		free(rec);
		free(crec);
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return NULL; /* slot i stays NULL: the capture skips it */
	}
	r->lane[TRACE_LANE_EVENTS].mask = ring_events - 1;
	r->lane[TRACE_LANE_EVENTS].check = spill_check_mask(ring_events);
	r->lane[TRACE_LANE_EVENTS].rec = rec;
	r->lane[TRACE_LANE_COUNTERS].mask = counter_events() - 1;
	r->lane[TRACE_LANE_COUNTERS].check = spill_check_mask(counter_events());
	r->lane[TRACE_LANE_COUNTERS].rec = crec;
	const struct trace_sampler *sm = samples_sampler();
	unsigned ns = samples_lane_size(ring_events);
	struct trace_rec *srec = sm ? calloc(ns, sizeof *srec) : NULL;
	if (srec) { /* without it, the thread's samples are not kept */
		r->lane[TRACE_LANE_SAMPLES].mask = ns - 1;
		r->lane[TRACE_LANE_SAMPLES].check = spill_check_mask(ns);
		r->lane[TRACE_LANE_SAMPLES].rec = srec;
	}
	r->idx = i;
	r->tid = (int)gettid();
	pthread_getname_np(pthread_self(), r->pname, sizeof r->pname);
	kv_thread_open(r);
	atomic_store_explicit(&rings[i], r, memory_order_release);
	self = r;
	self_failed = 0;
	if (sm && srec)
		sm->thread(i, r->tid);
	return r;
}

/* A record into lane l; returns its index. */
static inline uint64_t lane_put(struct trace_lane *l, const struct trace_desc *d, uint64_t meta,
				uint64_t ts, uint64_t dur, const int64_t a[TRACE_ARGS])
{
	uint64_t w = atomic_load_explicit(&l->w, memory_order_relaxed); /* the writer's alone */
	struct trace_rec *s = &l->rec[w & l->mask];
	/* Release stores (plain moves on x86-64): see ring.h for why. */
	atomic_store_explicit(&s->ts, ts, memory_order_release);
	atomic_store_explicit(&s->dur, dur, memory_order_release);
	atomic_store_explicit(&s->meta, meta, memory_order_release);
	atomic_store_explicit(&s->desc, (uintptr_t)d, memory_order_release);
	for (int i = 0; i < TRACE_ARGS; i++)
		atomic_store_explicit(&s->a[i], a[i], memory_order_release);
	atomic_store_explicit(&l->w, w + 1, memory_order_release);
	return w;
}

void trace_lane_put_(struct trace_ring *r, int l, const struct trace_desc *d, uint64_t meta,
		     uint64_t ts, uint64_t dur, const int64_t a[TRACE_ARGS])
{
	uint64_t w = lane_put(&r->lane[l], d, meta, ts, dur, a);
	spill_maybe(r, l, w);
}

void trace_lane_append_(struct trace_ring *r, int l, const struct trace_desc *d, uint64_t meta,
			uint64_t ts, uint64_t dur, const int64_t a[TRACE_ARGS])
{
	lane_put(&r->lane[l], d, meta, ts, dur, a);
}

int trace_lane_read_(struct trace_lane *l, uint64_t i, struct chrome_rec *out)
{
	struct trace_rec *s = &l->rec[i & l->mask];
	out->ts = atomic_load_explicit(&s->ts, memory_order_acquire);
	out->dur = atomic_load_explicit(&s->dur, memory_order_acquire);
	uint64_t meta = atomic_load_explicit(&s->meta, memory_order_acquire);
	out->kind = trace_meta_kind(meta);
	out->flow = trace_meta_flow(meta);
	out->id = trace_meta_id(meta);
	out->d = (const struct trace_desc *)atomic_load_explicit(&s->desc, memory_order_acquire);
	for (int k = 0; k < TRACE_ARGS; k++)
		out->a[k] = atomic_load_explicit(&s->a[k], memory_order_acquire);
	return atomic_load_explicit(&l->w, memory_order_relaxed) - i <= l->mask;
}

void trace_put_(const struct trace_desc *d, uint64_t meta, uint64_t ts, uint64_t dur,
		const int64_t a[TRACE_ARGS])
{
	struct trace_ring *r = self ? self : register_self();
	if (!r)
		return;
	enum trace_lane_id l =
		trace_meta_kind(meta) == TRACE_COUNTER ? TRACE_LANE_COUNTERS : TRACE_LANE_EVENTS;
	struct trace_lane *ln = &r->lane[l];
	/* Before the record, not after: after it, the check cost spans 12 ns
	 * more (20 -> 32 ns in bench_trace on AMD Zen 5), before it nothing
	 * measurable. */
	kv_maybe_drain(r, atomic_load_explicit(&ln->w, memory_order_relaxed));
	uint64_t w = lane_put(ln, d, meta, ts, dur, a);
	spill_maybe(r, l, w);
}

uint64_t trace_flow_id(void)
{
	static _Atomic uint64_t next;
	/* 2^52 of them: at a million wake-ups a second, 140 years */
	return TRACE_ID_OWN + (atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) & (TRACE_ID_OWN - 1));
}

void trace_arm_(int delta)
{
	atomic_fetch_add(&trace_armed_, (unsigned)delta);
	kv_sync();
	const struct trace_sampler *sm = samples_sampler();
	if (sm)
		sm->sync();
}

void trace_thread_name(const char *name)
{
	struct trace_ring *r = self ? self : register_self();
	if (r)
		atomic_store_explicit(&r->name, (uintptr_t)name, memory_order_release);
}

void trace_flight_recorder(int on)
{
	unsigned was = atomic_exchange(&flight, on ? 1u : 0u);
	if (on && !was)
		trace_arm_(1);
	else if (!on && was)
		trace_arm_(-1);
}

int trace_flight_recording(void)
{
	return (int)atomic_load(&flight);
}

unsigned trace_rings_(void)
{
	return atomic_load_explicit(&nrings, memory_order_acquire);
}

struct trace_ring *trace_ring_(unsigned i)
{
	return i < TRACE_THREADS_MAX ? atomic_load_explicit(&rings[i], memory_order_acquire) : NULL;
}

unsigned trace_ring_count(void)
{
	return trace_rings_();
}

int trace_ring_tid(unsigned i)
{
	struct trace_ring *r = trace_ring_(i);
	return r ? r->tid : 0;
}

const char *trace_process_(void)
{
	return process;
}

uint64_t trace_ring_size_(void)
{
	return ring_events;
}

const char *trace_spill_dir_(void)
{
	return spill_dir;
}

unsigned trace_spill_mb_(void)
{
	return spill_mb;
}

void trace_usage(struct trace_usage *u)
{
	unsigned n = trace_rings_(), have = 0;
	for (unsigned i = 0; i < n; i++)
		have += trace_ring_(i) != NULL;
	u->threads = have;
	u->threads_dropped = atomic_load_explicit(&dropped, memory_order_relaxed);
	u->ring_events = ring_events;
	size_t bytes = 0;
	for (unsigned i = 0; i < n; i++) {
		struct trace_ring *r = trace_ring_(i);
		for (int l = 0; r && l < TRACE_LANES; l++)
			if (r->lane[l].rec)
				bytes += ((size_t)r->lane[l].mask + 1) * sizeof(struct trace_rec);
	}
	u->bytes = bytes;
}

_Thread_local struct trace_labels trace_labels_;

/* ---- waits ---- */

/* The walk's frames are where it expects them only when neither it nor
 * its caller is inlined. */
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

atomic_uint trace_waits_armed_;
static const struct trace_waiter *_Atomic waiter;

void trace_waiter_attach(const struct trace_waiter *w)
{
	atomic_store(&waiter, w);
}

void trace_waits_arm(int on)
{
	atomic_store(&trace_waits_armed_, atomic_load(&waiter) && on ? 1u : 0u);
}


/* The calling thread's stack, for the walk's bounds: read once. */
static _Thread_local uintptr_t stack_lo, stack_hi;
static _Thread_local int stack_known;

static void stack_bounds(void)
{
	stack_known = 1;
#ifdef __GLIBC__
	pthread_attr_t a;
	void *lo;
	size_t len;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		if (pthread_attr_getstack(&a, &lo, &len) == 0) {
			stack_lo = (uintptr_t)lo;
			stack_hi = (uintptr_t)lo + len;
		}
		pthread_attr_destroy(&a);
	}
#endif
}

/* The callers' return addresses, from the frame pointers (the project is
 * built with them; a chain through a library without them ends there):
 * how many. Where the compiler has no frame address builtin, none. */
static unsigned NOINLINE walk(uint64_t *ips, unsigned max)
{
	unsigned n = 0;
#if defined(__GNUC__) || defined(__clang__)
	if (!stack_known)
		stack_bounds();
	uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
	int skip = 1; /* the return into trace_wait_sleep_ */
	while (n < max && fp >= stack_lo && fp + 2 * sizeof(uintptr_t) <= stack_hi &&
	       fp % sizeof(uintptr_t) == 0) {
		const uintptr_t *f = (const uintptr_t *)fp;
		uintptr_t next = f[0], ret = f[1];
		if (!ret)
			break;
		if (skip)
			skip--;
		else
			ips[n++] = ret;
		if (next <= fp)
			break;
		fp = next;
	}
#else
	(void)ips;
	(void)max;
#endif
	return n;
}

void NOINLINE trace_wait_sleep_(const struct trace_desc *d)
{
	uint64_t ips[TRACE_WAIT_FRAMES];
	const struct trace_waiter *w = atomic_load_explicit(&waiter, memory_order_acquire);
	if (!w)
		return;
	unsigned n = walk(ips, TRACE_WAIT_FRAMES);
	w->sleep(d, trace_now(), ips, n);
}

void trace_wait_end_(const struct trace_desc *d, uint64_t t0, uint64_t t1)
{
	const struct trace_waiter *w = atomic_load_explicit(&waiter, memory_order_acquire);
	if (w)
		w->end(d, t0, t1);
}

void trace_wait_none_(void)
{
	const struct trace_waiter *w = atomic_load_explicit(&waiter, memory_order_acquire);
	if (w)
		w->none();
}
