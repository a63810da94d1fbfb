/*
 * window.c - which records of the rings are in a capture's window (see
 * window.h; the seqlock rule for reading a ring is in ring.h).
 */
#include "trace/kview.h"
#include "trace/window.h"

const char *window_ring_name(struct trace_ring *r)
{
	const char *n = (const char *)atomic_load_explicit(&r->name, memory_order_acquire);
	return n ? n : r->pname;
}

/* Whether e belongs in the window: events and samples when they start
 * and end inside it; a thread's states are clipped to it instead (a state
 * is a fact about every instant it covers). */
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
static void lane_begin(struct trace_capture *c, enum pass p, struct ring_stats *st,
		       struct trace_ring *r, int l)
{
	struct cursor *cu = &c->cur[p];
	struct trace_lane *ln = &r->lane[l];
	uint64_t lo = cu->ring < c->nrings && !c->last ? ln->w_open : 0;

	cu->hi = atomic_load_explicit(&ln->w, memory_order_acquire);
	st->written += cu->hi - lo;
	if (c->spill) { /* what was copied out comes first; the ring holds the rest */
		struct spill_lane *sl = &c->spill->lane[cu->ring][l];
		lo = atomic_load_explicit(&sl->to, memory_order_acquire);
		st->lost += sl->lost;
		cu->in_spill = 1;
		struct spill_reader *rd = &c->rd[p];
		rd->chunk = 0;
		rd->left = 0;
	}
	/* The oldest slot is the one the writer overwrites next: only size - 1
	 * records can be read safely (ring.h). */
	if (cu->hi - lo > ln->mask) {
		if (!c->last)
			st->lost += cu->hi - ln->mask - lo;
		lo = cu->hi - ln->mask;
	}
	cu->idx = lo;
	cu->begun = 1;
	/* A flight-recorder events lane that has wrapped must still reach
	 * back to the start, or the window is not complete (states are
	 * clipped, and samples counted apart: neither says anything of
	 * completeness). */
	cu->check_oldest = c->last && lo > 0 && l != TRACE_LANE_STATES && l != TRACE_LANE_SAMPLES;
}

/* The thread's states are shown on a track of their own beside its
 * slices (a state may cut across a span, and slices on one thread must
 * nest): a pseudo-thread with this id. Linux's tids are below 2^22. */
int window_states_tid(const struct trace_ring *r)
{
	return r->tid + (1 << 22);
}

/* The pass's lanes, in order; TRACE_LANES stands for the pending state. */
static const int pass_lanes[PASSES][5] = {
	[PASS_EVENTS] = {TRACE_LANE_EVENTS, TRACE_LANE_COUNTERS, TRACE_LANE_STATES, TRACE_LANES, -1},
	[PASS_SAMPLES] = {TRACE_LANE_SAMPLES, -1},
	[PASS_SUMMARY] = {TRACE_LANE_STATES, TRACE_LANES, TRACE_LANE_EVENTS, TRACE_LANE_COUNTERS, -1},
	[PASS_PICK] = {TRACE_LANE_EVENTS, -1},
};

/* The pass's counts into the facts, once it has read ring i. */
static void ring_done(struct trace_capture *c, enum pass p, unsigned i)
{
	if (p == PASS_PICK)
		return;
	if (p != PASS_SAMPLES) {
		c->facts.written += c->rs[i].written;
		c->facts.events += c->rs[i].events;
		c->facts.lost += c->rs[i].lost;
	} else {
		c->facts.samples += c->ss[i].events;
		c->facts.samples_lost += c->ss[i].lost;
	}
}

/* A record read from ring r's lane: whether it is the window's (then it
 * is counted, a state clipped to it, and *tid, *ring say whose). The
 * first read of a lane says whether the ring reached back to the window's
 * start. */
static int take(struct trace_capture *c, struct cursor *cu, struct ring_stats *st,
		const struct trace_ring *r, int state, struct chrome_rec *e, int *tid, unsigned *ring)
{
	if (cu->check_oldest) {
		cu->check_oldest = 0;
		if (e->ts > c->start)
			c->facts.complete = 0;
	}
	if (!in_window(c, e, state))
		return 0;
	*tid = state ? window_states_tid(r) : r->tid;
	*ring = cu->ring;
	st->events++;
	return 1;
}

int window_next(struct trace_capture *c, enum pass p, struct chrome_rec *e, int *tid,
		unsigned *ring)
{
	struct cursor *cu = &c->cur[p];
	while (cu->ring < c->facts.threads) {
		struct trace_ring *r = trace_ring_(cu->ring);
		if (!r) {
			cu->ring++;
			continue;
		}
		struct ring_stats uncounted = {0};
		struct ring_stats *st = p == PASS_SAMPLES ? &c->ss[cu->ring]
					: p == PASS_PICK  ? &uncounted
							  : &c->rs[cu->ring];
		int l = pass_lanes[p][cu->lane];
		if (l < 0) {
			ring_done(c, p, cu->ring);
			cu->ring++;
			cu->lane = 0;
			continue;
		}
		if (l == TRACE_LANES) { /* the state its thread is in now */
			cu->lane++;
			if (kv_pending(r, c->end, e) && in_window(c, e, 1)) {
				*tid = window_states_tid(r);
				*ring = cu->ring;
				st->written++; /* a record made now: written, so that events <= written */
				st->events++;
				return 1;
			}
			continue;
		}
		struct trace_lane *ln = &r->lane[l];
		int state = l == TRACE_LANE_STATES;
		if (!ln->rec) {
			cu->lane++;
			continue;
		}
		if (!cu->begun) {
			if (state && !c->spill)
				kv_drain(r); /* the kernel's records up to now (a spill took them at close) */
			lane_begin(c, p, st, r, l);
		}
		while (cu->in_spill) {
			uint64_t lost = 0;
			int got = spill_next(c->spill, cu->ring, l, &c->rd[p], e, &lost);
			st->lost += lost;
			if (!got) {
				cu->in_spill = 0;
				break;
			}
			if (take(c, cu, st, r, state, e, tid, ring))
				return 1;
		}
		while (cu->idx < cu->hi) {
			if (!trace_lane_read_(ln, cu->idx, e)) {
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
			if (take(c, cu, st, r, state, e, tid, ring))
				return 1;
		}
		cu->lane++;
		cu->begun = 0;
	}
	return 0;
}
