/*
 * flight.h - single flight: identical uncached pictures in flight at once
 * are rendered once. The first request for a key leads (it is admitted
 * and rendered); any that come while it is in flight follow, waiting for
 * the leader's answer, which is shared with them when it is ready.
 *
 * Owns: the table of keys in flight and, per key, the list of followers
 * (struct flight_waiter, embedded in the caller's request; the caller owns
 * that memory). Thread-safety: one mutex; HTTP threads join, the thread
 * that answers the leader finishes.
 */
#ifndef MW_FLIGHT_H
#define MW_FLIGHT_H

#include <stdint.h>

#include "server/query.h"

struct flight_waiter {
	struct flight_waiter *next;
};

struct flights;

int flights_create(struct flights **out); /* 0, -ENOMEM */
void flights_destroy(struct flights *f);  /* none may be in flight */

/* Returns 1: a render of key is in flight and w now follows it; 0: none
 * was, and the caller leads one (it must call flight_finish); -ENOMEM:
 * none was, and none could be started (render alone, no follower). */
int flight_join(struct flights *f, const char *key, struct flight_waiter *w);

/* The leader of key is answered: removes key, returns its followers (in
 * the order they came), each to be answered the same way. */
struct flight_waiter *flight_finish(struct flights *f, const char *key);

/* Requests answered from another request's render, since the start. */
uint64_t flights_shared(struct flights *f);

#endif
