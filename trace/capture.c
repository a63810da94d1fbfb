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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/capture.h"
#include "trace/chrome.h"
#include "trace/json.h"
#include "trace/kview.h"
#include "trace/ring.h"
#include "trace/summary.h"

#define STAGE_BYTES (64 * 1024)
#define EVENT_MAX 2048 /* an event's JSON: names are short static strings */

static atomic_int session; /* 1 while a capture exists */

enum phase { PH_HEAD, PH_THREADS, PH_EVENTS, PH_TAIL, PH_TEXT, PH_DONE };

struct ring_stats {
	uint64_t written, events, lost;
};

/* Where the reading of the rings stands: ring, lane (TRACE_LANES: the
 * thread's pending state), the next record and the lane's end. */
struct cursor {
	unsigned ring;
	int lane, begun, check_oldest;
	uint64_t idx, hi;
};

struct trace_capture {
	uint64_t start, end;
	int armed;  /* this capture holds the tracer armed */
	int last;   /* a flight-recorder window: where each ring stood at the start is unknown */
	int pid;
	enum trace_format format;
	enum phase phase;
	unsigned nrings;       /* rings registered at open */
	unsigned ring;         /* PH_THREADS: the ring being named */
	struct cursor cur;
	int held, held_tid;    /* a record read but not yet staged (the stage was full) */
	struct chrome_rec held_rec;
	struct trace_facts facts;
	struct ring_stats rs[TRACE_THREADS_MAX];
	struct chrome_thread_facts threads[TRACE_THREADS_MAX]; /* otherData's list, at the end */
	char *text;      /* the summary, when that is the format */
	size_t text_len, text_off;
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
		for (int l = 0; r && l < TRACE_LANES; l++)
			r->lane[l].w_open = atomic_load_explicit(&r->lane[l].w, memory_order_acquire);
	}
	c->nrings = n; /* rings registered later start from 0 */
	trace_arm_(1);
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
		trace_arm_(-1);
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
	free(c->text);
	free(c);
	atomic_store(&session, 0);
}

void trace_capture_format(struct trace_capture *c, enum trace_format f)
{
	c->format = f;
}

void trace_capture_rewind(struct trace_capture *c)
{
	trace_capture_close(c);
	memset(&c->cur, 0, sizeof c->cur);
	memset(&c->facts, 0, sizeof c->facts);
	memset(c->rs, 0, sizeof c->rs);
	free(c->text);
	c->text = NULL;
	c->held = 0;
	c->off = c->len = 0;
	c->phase = PH_HEAD;
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

/* Copies record i of lane l: 1 if whole, 0 if the writer may have
 * overwritten it meanwhile (ring.h). */
static int rec_read(struct trace_lane *l, uint64_t i, struct chrome_rec *out)
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

/* Whether e belongs in the window: events when they start and end inside
 * it; a thread's states are clipped to it instead (a state is a fact
 * about every instant it covers). */
static int in_window(struct trace_capture *c, struct chrome_rec *e, int state)
{
	if (state) {
		if (e->ts >= c->end || e->ts + e->dur <= c->start)
			return 0;
		uint64_t t1 = e->ts + e->dur < c->end ? e->ts + e->dur : c->end;
		e->ts = e->ts > c->start ? e->ts : c->start;
		e->dur = t1 - e->ts;
		return 1;
	}
	if (e->ts >= c->start && e->ts + e->dur <= c->end)
		return 1;
	if (e->ts < c->end && e->ts + e->dur > c->start)
		c->facts.clipped++;
	return 0;
}

/* Starts reading lane l of ring r: its range and what it lost. */
static void lane_begin(struct trace_capture *c, struct trace_ring *r, int l)
{
	struct trace_lane *ln = &r->lane[l];
	struct ring_stats *st = &c->rs[c->cur.ring];
	uint64_t lo = c->cur.ring < c->nrings && !c->last ? ln->w_open : 0;

	c->cur.hi = atomic_load_explicit(&ln->w, memory_order_acquire);
	st->written += c->cur.hi - lo;
	/* The oldest slot is the one the writer overwrites next: only size - 1
	 * records can be read safely (ring.h). */
	if (c->cur.hi - lo > ln->mask) {
		if (!c->last)
			st->lost += c->cur.hi - ln->mask - lo;
		lo = c->cur.hi - ln->mask;
	}
	c->cur.idx = lo;
	c->cur.begun = 1;
	/* A flight-recorder lane that has wrapped must still reach back to
	 * the start, or the window is not complete (states are clipped, and
	 * say nothing of completeness). */
	c->cur.check_oldest = c->last && lo > 0 && l != TRACE_LANE_STATES;
}

/* The thread's states are shown on a track of their own beside its
 * slices (a state may cut across a span, and slices on one thread must
 * nest): a pseudo-thread with this id. Linux's tids are below 2^22. */
static int states_tid(const struct trace_ring *r)
{
	return r->tid + (1 << 22);
}

/* The next record of the window, in ring order (each ring's events,
 * counters, states, then its pending state): 1, with the thread it is
 * shown on, or 0 at the end. */
static int next_rec(struct trace_capture *c, struct chrome_rec *e, int *tid, unsigned *ring)
{
	struct cursor *cu = &c->cur;
	while (cu->ring < c->facts.threads) {
		struct trace_ring *r = trace_ring_(cu->ring);
		if (!r) {
			cu->ring++;
			continue;
		}
		struct ring_stats *st = &c->rs[cu->ring];
		if (cu->lane == TRACE_LANES) { /* the state its thread is in now */
			cu->lane++;
			if (kv_pending(r, c->end, e) && in_window(c, e, 1)) {
				*tid = states_tid(r);
				*ring = cu->ring;
				st->events++;
				return 1;
			}
			continue;
		}
		if (cu->lane > TRACE_LANES) {
			c->facts.written += st->written;
			c->facts.events += st->events;
			c->facts.lost += st->lost;
			cu->ring++;
			cu->lane = 0;
			continue;
		}
		struct trace_lane *ln = &r->lane[cu->lane];
		int state = cu->lane == TRACE_LANE_STATES;
		if (!ln->rec) {
			cu->lane++;
			continue;
		}
		if (!cu->begun) {
			if (state)
				kv_drain(r); /* the kernel's records up to now */
			lane_begin(c, r, cu->lane);
		}
		while (cu->idx < cu->hi) {
			if (!rec_read(ln, cu->idx, e)) {
				/* The writer lapped us: skip to its oldest live record. */
				uint64_t w = atomic_load_explicit(&ln->w, memory_order_acquire);
				uint64_t next = w - ln->mask > cu->idx + 1 ? w - ln->mask : cu->idx + 1;
				if (next > cu->hi)
					next = cu->hi;
				st->lost += next - cu->idx;
				cu->idx = next;
				continue;
			}
			cu->idx++;
			if (cu->check_oldest) {
				cu->check_oldest = 0;
				if (e->ts > c->start)
					c->facts.complete = 0;
			}
			if (in_window(c, e, state)) {
				*tid = state ? states_tid(r) : r->tid;
				*ring = cu->ring;
				st->events++;
				return 1;
			}
		}
		cu->lane++;
		cu->begun = 0;
	}
	return 0;
}

/* Formats the window's records into the stage until it is full. */
static void fill_events(struct trace_capture *c)
{
	char scratch[EVENT_MAX];
	unsigned ring;
	for (;;) {
		if (!c->held && !(c->held = next_rec(c, &c->held_rec, &c->held_tid, &ring))) {
			c->phase = PH_TAIL;
			return;
		}
		struct json_out o = {scratch, 0, sizeof scratch, 0};
		chrome_event(&o, c->pid, c->held_tid, &c->held_rec);
		if (!stage(c, &o))
			return; /* the stage is full; this record again next time */
		c->held = 0;
	}
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
	char scratch[EVENT_MAX], name[TRACE_NAME_MAX + 16];
	struct json_out o = {scratch, 0, sizeof scratch, 0};

	chrome_thread(&o, c->pid, r->tid, ring_name(r), 2 * c->ring);
	if (atomic_load_explicit(&r->kv, memory_order_acquire)) {
		snprintf(name, sizeof name, "%s [kernel]", ring_name(r));
		chrome_thread(&o, c->pid, states_tid(r), name, 2 * c->ring + 1);
	}
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
	trace_kview_usage(&f.kview);
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

/* The summary's text, built at once from every record of the window. */
static void summarize(struct trace_capture *c)
{
	struct summary *s = summary_new(c->start, c->end);
	struct chrome_rec e;
	int tid;
	unsigned ring, was = UINT_MAX;
	while (s && next_rec(c, &e, &tid, &ring)) {
		struct trace_ring *r = trace_ring_(ring);
		if (ring != was)
			summary_thread(s, r->tid, ring_name(r), r->kv != NULL);
		was = ring;
		summary_add(s, &e, tid != r->tid);
	}
	struct trace_kview_usage k;
	char line[sizeof k.why + 16];
	trace_kview_usage(&k);
	snprintf(line, sizeof line, "%s%s%s", k.state, k.why[0] ? ": " : "", k.why);
	c->facts.complete = c->facts.complete && c->facts.lost == 0;
	c->text = summary_finish(s, line, &c->facts, &c->text_len);
	c->text_off = 0;
}

/* Stages the next part of the summary. */
static void fill_text(struct trace_capture *c)
{
	if (!c->text) {
		summarize(c);
		if (!c->text) {
			static const char oom[] = "trace summary: out of memory\n";
			c->text = strdup(oom);
			c->text_len = c->text ? strlen(oom) : 0;
		}
	}
	size_t k = c->text_len - c->text_off;
	if (k > STAGE_BYTES - c->len)
		k = STAGE_BYTES - c->len;
	memcpy(c->stage + c->len, c->text + c->text_off, k);
	c->len += k;
	c->text_off += k;
	if (c->text_off == c->text_len)
		c->phase = PH_DONE;
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
			/* Every ring registered by now; later ones hold nothing
			 * older than the end of the window. */
			c->facts.threads = trace_rings_();
			c->ring = 0;
			if (c->format == TRACE_FORMAT_SUMMARY)
				c->phase = PH_TEXT;
			else if (fill_head(c))
				c->phase = PH_THREADS;
			break;
		case PH_TEXT:
			fill_text(c);
			break;
		case PH_THREADS:
			if (c->ring >= c->facts.threads)
				c->phase = PH_EVENTS;
			else if (!trace_ring_(c->ring) || fill_thread(c, trace_ring_(c->ring)))
				c->ring++;
			break;
		case PH_EVENTS:
			fill_events(c);
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
