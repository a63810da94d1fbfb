/*
 * capture.c - the capture session: reading the rings for a window, and
 * feeding what is in it to the Chrome JSON writer (chrome.c). See
 * capture.h; the seqlock rule for reading a ring is in ring.h.
 *
 * The document is produced in pieces as the reader asks: the header and
 * the process's name, each thread's metadata, then each ring's records in
 * the order they were written, then the lost-events counter and the
 * facts. Each piece is formatted into a 2 KiB scratch buffer and moved to
 * the staging buffer whole, so a read never ends inside a broken event and
 * nothing grows with the size of the trace.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/capture.h"
#include "trace/chrome.h"
#include "trace/json.h"
#include "trace/ring.h"

#define STAGE_BYTES (64 * 1024)
#define EVENT_MAX 2048 /* an event's JSON: names are short static strings */

static atomic_int session; /* 1 while a capture exists */

enum phase { PH_HEAD, PH_THREADS, PH_EVENTS, PH_TAIL, PH_DONE };

struct ring_stats {
	uint64_t written, events, lost;
};

struct trace_capture {
	uint64_t start, end;
	int armed;  /* this capture holds the tracer armed */
	int last;   /* a flight-recorder window: where each ring stood at the start is unknown */
	int pid;
	enum phase phase;
	unsigned nrings, ring; /* rings in the document; the one being read */
	int ring_begun, check_oldest;
	uint64_t idx, hi;      /* the ring's next record and its end */
	struct trace_facts facts;
	struct ring_stats rs[TRACE_THREADS_MAX];
	struct chrome_thread_facts threads[TRACE_THREADS_MAX]; /* otherData's list, at the end */
	size_t off, len; /* staged bytes not yet read */
	char stage[STAGE_BYTES];
};

/* Takes the session and allocates a capture: 0, -EBUSY or -ENOMEM. */
static int capture_new(struct trace_capture **out)
{
	int idle = 0;
	if (!atomic_compare_exchange_strong(&session, &idle, 1))
		return -EBUSY;
	struct trace_capture *c = calloc(1, sizeof *c);
	if (!c) {
		atomic_store(&session, 0);
		return -ENOMEM;
	}
	c->pid = (int)getpid();
	*out = c;
	return 0;
}

int trace_capture_open(struct trace_capture **out)
{
	struct trace_capture *c;
	int rc = capture_new(&c);
	if (rc < 0)
		return rc;
	/* Where each ring stands, then the start: a record written in
	 * between is older than the start and filtered out. */
	unsigned n = trace_rings_();
	for (unsigned i = 0; i < n; i++) {
		struct trace_ring *r = trace_ring_(i);
		if (r)
			r->w_open = atomic_load_explicit(&r->w, memory_order_acquire);
	}
	c->nrings = n; /* rings registered later start from 0 */
	atomic_fetch_add(&trace_armed_, 1);
	c->armed = 1;
	c->start = trace_now();
	c->end = UINT64_MAX;
	*out = c;
	return 0;
}

int trace_capture_last(struct trace_capture **out, uint64_t ns)
{
	if (!trace_flight_recording())
		return -ENODATA;
	struct trace_capture *c;
	int rc = capture_new(&c);
	if (rc < 0)
		return rc;
	c->last = 1;
	c->end = trace_now();
	c->start = c->end > ns ? c->end - ns : 0;
	*out = c;
	return 0;
}

void trace_capture_close(struct trace_capture *c)
{
	if (c->end == UINT64_MAX)
		c->end = trace_now();
	if (c->armed) {
		c->armed = 0;
		atomic_fetch_sub(&trace_armed_, 1);
	}
}

int trace_capture_active(void)
{
	return atomic_load(&session);
}

void trace_capture_free(struct trace_capture *c)
{
	if (!c)
		return;
	trace_capture_close(c);
	free(c);
	atomic_store(&session, 0);
}

void trace_capture_facts(const struct trace_capture *c, struct trace_facts *f)
{
	*f = c->facts;
	f->start_ns = c->start;
	f->end_ns = c->end;
}

/* ---- the JSON ---- */

static const char *ring_name(struct trace_ring *r)
{
	const char *n = (const char *)atomic_load_explicit(&r->name, memory_order_acquire);
	return n ? n : r->pname;
}

/* Moves a formatted event into the stage: 1, or 0 when it must wait for
 * room (the event is formatted again next time). */
static int stage(struct trace_capture *c, const struct json_out *ev)
{
	if (ev->full)
		return 1; /* cannot happen with static names; dropped, not split */
	if (STAGE_BYTES - c->len < ev->len)
		return 0;
	memcpy(c->stage + c->len, ev->p, ev->len);
	c->len += ev->len;
	return 1;
}

/* Copies record i of r: 1 if whole, 0 if the writer may have overwritten
 * it meanwhile (ring.h). */
static int rec_read(struct trace_ring *r, uint64_t i, struct chrome_rec *out)
{
	struct trace_rec *s = &r->rec[i & r->mask];
	out->ts = atomic_load_explicit(&s->ts, memory_order_acquire);
	out->dur = atomic_load_explicit(&s->dur, memory_order_acquire);
	uint64_t meta = atomic_load_explicit(&s->meta, memory_order_acquire);
	out->kind = trace_meta_kind(meta);
	out->flow = trace_meta_flow(meta);
	out->id = trace_meta_id(meta);
	out->d = (const struct trace_desc *)atomic_load_explicit(&s->desc, memory_order_acquire);
	for (int k = 0; k < TRACE_ARGS; k++)
		out->a[k] = atomic_load_explicit(&s->a[k], memory_order_acquire);
	return atomic_load_explicit(&r->w, memory_order_relaxed) - i <= r->mask;
}

static int in_window(const struct trace_capture *c, const struct chrome_rec *e)
{
	return e->ts >= c->start && e->ts + e->dur <= c->end;
}

/* Formats the next records of the current ring into the stage. */
static void fill_ring(struct trace_capture *c)
{
	struct trace_ring *r = trace_ring_(c->ring);
	struct ring_stats *st = &c->rs[c->ring];
	char scratch[EVENT_MAX];
	uint64_t size = (uint64_t)r->mask + 1;

	if (!c->ring_begun) {
		uint64_t lo = c->ring < c->nrings && !c->last ? r->w_open : 0;
		c->hi = atomic_load_explicit(&r->w, memory_order_acquire);
		st->written = c->hi - lo;
		/* The oldest slot is the one the writer overwrites next: only
		 * size - 1 records can be read safely (ring.h). */
		if (c->hi - lo > r->mask) {
			if (!c->last)
				st->lost += c->hi - r->mask - lo;
			lo = c->hi - r->mask;
		}
		c->idx = lo;
		c->ring_begun = 1;
		/* A flight-recorder ring that has wrapped must still reach back
		 * to the start, or the window is not complete. */
		c->check_oldest = c->last && lo > 0;
	}
	while (c->idx < c->hi) {
		struct chrome_rec e;
		if (!rec_read(r, c->idx, &e)) {
			/* The writer lapped us: skip to its oldest live record. */
			uint64_t w = atomic_load_explicit(&r->w, memory_order_acquire);
			uint64_t next = w - size + 1 > c->idx + 1 ? w - size + 1 : c->idx + 1;
			if (next > c->hi)
				next = c->hi;
			st->lost += next - c->idx;
			c->idx = next;
			continue;
		}
		if (c->check_oldest) {
			c->check_oldest = 0;
			if (e.ts > c->start)
				c->facts.complete = 0;
		}
		if (!in_window(c, &e)) {
			if (e.ts < c->end && e.ts + e.dur > c->start)
				c->facts.clipped++;
			c->idx++;
			continue;
		}
		struct json_out o = {scratch, 0, sizeof scratch, 0};
		chrome_event(&o, c->pid, r->tid, &e);
		if (!stage(c, &o))
			return; /* the stage is full; this record again next time */
		st->events++;
		c->idx++;
	}
	c->facts.written += st->written;
	c->facts.events += st->events;
	c->facts.lost += st->lost;
	c->ring++;
	c->ring_begun = 0;
}

static int fill_head(struct trace_capture *c)
{
	char scratch[EVENT_MAX];
	struct json_out o = {scratch, 0, sizeof scratch, 0};

	chrome_head(&o, c->pid, trace_process_());
	return stage(c, &o);
}

static int fill_thread(struct trace_capture *c, struct trace_ring *r)
{
	char scratch[EVENT_MAX];
	struct json_out o = {scratch, 0, sizeof scratch, 0};

	chrome_thread(&o, c->pid, r->tid, ring_name(r), c->ring);
	return stage(c, &o);
}

static const char *clock_name(void)
{
	if (!trace_clock_.counter)
		return "CLOCK_MONOTONIC";
#if defined(__x86_64__)
	return "TSC, calibrated against CLOCK_MONOTONIC";
#else
	return "CNTVCT_EL0, calibrated against CLOCK_MONOTONIC";
#endif
}

static int fill_tail(struct trace_capture *c)
{
	char scratch[EVENT_MAX * 4];
	struct json_out o = {scratch, 0, sizeof scratch, 0};
	struct chrome_facts f = {
		.clock = clock_name(),
		.start = c->start,
		.end = c->end,
		.flight_recorder = c->last,
		.events = c->facts.events,
		.written = c->facts.written,
		.lost = c->facts.lost,
		.clipped = c->facts.clipped,
		.complete = c->facts.complete,
		.threads = c->threads,
	};

	trace_usage(&f.usage);
	f.ring_bytes = (uint64_t)f.usage.ring_events * sizeof(struct trace_rec);
	for (unsigned i = 0; i < c->facts.threads; i++) {
		struct trace_ring *r = trace_ring_(i);
		if (r)
			c->threads[f.nthreads++] = (struct chrome_thread_facts){
				r->tid, ring_name(r), c->rs[i].written, c->rs[i].events, c->rs[i].lost};
	}
	chrome_tail(&o, c->pid, &f);
	return stage(c, &o);
}

/* Stages the next pieces of the document until the stage is nearly full
 * or the document ends. */
static void fill(struct trace_capture *c)
{
	while (c->phase != PH_DONE && STAGE_BYTES - c->len >= EVENT_MAX * 4) {
		switch (c->phase) {
		case PH_HEAD:
			trace_capture_close(c);
			c->facts.complete = 1;
			if (fill_head(c))
				c->phase = PH_THREADS;
			/* Every ring registered by now; later ones hold nothing
			 * older than the end of the window. */
			c->facts.threads = trace_rings_();
			c->ring = 0;
			break;
		case PH_THREADS:
			if (c->ring >= c->facts.threads) {
				c->phase = PH_EVENTS;
				c->ring = 0;
			} else if (!trace_ring_(c->ring) || fill_thread(c, trace_ring_(c->ring))) {
				c->ring++;
			}
			break;
		case PH_EVENTS:
			if (c->ring >= c->facts.threads)
				c->phase = PH_TAIL;
			else if (!trace_ring_(c->ring))
				c->ring++;
			else
				fill_ring(c);
			break;
		case PH_TAIL:
			if (fill_tail(c))
				c->phase = PH_DONE;
			break;
		case PH_DONE:
			break;
		}
	}
}

size_t trace_capture_read(struct trace_capture *c, char *buf, size_t max)
{
	size_t n = 0;
	while (n < max) {
		if (c->off == c->len) {
			c->off = c->len = 0;
			fill(c);
			if (c->len == 0)
				break; /* the end */
		}
		size_t k = c->len - c->off < max - n ? c->len - c->off : max - n;
		memcpy(buf + n, c->stage + c->off, k);
		c->off += k;
		n += k;
	}
	return n;
}
