/*
 * chan.c - see chan.h.
 *
 * One slot and one word of state: a sender claims the empty slot
 * (EMPTY -> WRITING), writes, publishes (FULL) and waits for TAKEN, then
 * frees the slot (EMPTY); a receiver claims a full one (FULL -> READING),
 * reads, and says TAKEN. Every waiter sleeps on the same word, so each
 * change wakes them all: fine for a channel with one sender and one
 * receiver (the sieve's), fair to none with many.
 */
#include <limits.h>

#include "render/chan.h"
#include "render/park.h"
#include "trace/trace.h"

enum { CHAN_EMPTY, CHAN_WRITING, CHAN_FULL, CHAN_READING, CHAN_TAKEN };

static const struct trace_desc TD_SEND = {"send", "chan", {"value"}, 0};
static const struct trace_desc TD_RECV = {"receive", "chan", {"value"}, 0};
static const struct trace_desc TD_WAIT_SEND = {"wait: send", "chan", {0}, 0};
static const struct trace_desc TD_WAIT_RECV = {"wait: receive", "chan", {0}, 0};

#define SPINS 64 /* a hand-off to a running peer takes less than a futex sleep */

void chan_init(struct chan *c)
{
	atomic_init(&c->state, CHAN_EMPTY);
	c->v = c->flow = 0;
}

/* Moves the state from 'from' to 'to', waiting (d) while it is not
 * 'from'; *t0: the wait's start, once it had to sleep. */
static void await(struct chan *c, int from, int to, const struct trace_desc *d, uint64_t *t0)
{
	for (int n = 0;; n++) {
		int s = atomic_load_explicit(&c->state, memory_order_acquire);
		if (s == from &&
		    atomic_compare_exchange_weak_explicit(&c->state, &s, to, memory_order_acq_rel,
							  memory_order_relaxed))
			return;
		if (n < SPINS) {
			park_relax();
			continue;
		}
		if (!*t0)
			*t0 = trace_wait_begin(d);
		trace_wait_sleep(d);
		park_wait(&c->state, s);
	}
}

void chan_send(struct chan *c, uint64_t v)
{
	uint64_t t0 = 0, s0 = trace_begin();
	await(c, CHAN_EMPTY, CHAN_WRITING, &TD_WAIT_SEND, &t0);
	c->v = v;
	c->flow = s0 ? trace_flow_id() : 0;
	uint64_t flow = c->flow;
	atomic_store_explicit(&c->state, CHAN_FULL, memory_order_release);
	park_wake(&c->state, INT_MAX);
	await(c, CHAN_TAKEN, CHAN_EMPTY, &TD_WAIT_SEND, &t0);
	park_wake(&c->state, INT_MAX); /* a sender waiting for the slot */
	trace_wait_span(&TD_WAIT_SEND, t0);
	trace_span_flow(&TD_SEND, s0, flow ? TRACE_FLOW_START : TRACE_FLOW_NONE, flow, (int64_t)v, 0,
			0, 0);
}

uint64_t chan_recv(struct chan *c)
{
	uint64_t t0 = 0, r0 = trace_begin();
	await(c, CHAN_FULL, CHAN_READING, &TD_WAIT_RECV, &t0);
	uint64_t v = c->v, flow = c->flow;
	atomic_store_explicit(&c->state, CHAN_TAKEN, memory_order_release);
	park_wake(&c->state, INT_MAX);
	trace_wait_span(&TD_WAIT_RECV, t0);
	trace_span_flow(&TD_RECV, r0, flow ? TRACE_FLOW_END : TRACE_FLOW_NONE, flow, (int64_t)v, 0, 0,
			0);
	return v;
}
