/*
 * chan.h - an unbuffered channel of 64-bit values, as Go's make(chan T):
 * a send waits until a receiver has taken its value (a rendezvous), a
 * receive until a value is there. On park.h's futex words, as the pool's
 * rendezvous is. For cmd/sieve.c (the workshop's concurrent prime sieve).
 *
 * Traced: a send or receive that has to wait is a 'wait: send' or
 * 'wait: receive' span (and reaches an armed block profile, trace.h's
 * waits); each hand-off is a flow from the sender's 'send' span to the
 * receiver's 'receive' span, so a trace shows the chain of hand-offs.
 *
 * Owns: nothing but the struct (no memory, no close). Thread-safety: any
 * number of senders and receivers, from any threads.
 */
#ifndef MW_RENDER_CHAN_H
#define MW_RENDER_CHAN_H

#include <stdatomic.h>
#include <stdint.h>

struct chan {
	atomic_int state; /* CHAN_EMPTY, _WRITING, _FULL, _READING, _TAKEN (chan.c) */
	uint64_t v, flow;
};

void chan_init(struct chan *c);
void chan_send(struct chan *c, uint64_t v);
uint64_t chan_recv(struct chan *c);

#endif
