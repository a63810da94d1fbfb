/*
 * flight.h - single flight: identical uncached pictures in flight at once
 * are rendered once. The first request for a key leads (it is admitted
 * and rendered); any that come while it is in flight follow, waiting for
 * the leader's answer, which is shared with them when it is ready.
 *
 * A client that hangs up while it waits leaves (flight_leave,
 * flight_leader_gone); when the leader and every follower have gone, the
 * render is cancelled.
 *
 * Owns: the table of keys in flight and, per key, the list of followers
 * (struct flight_waiter, embedded in the caller's request; the caller owns
 * that memory). Thread-safety: one mutex; HTTP threads join, the thread
 * that answers the leader finishes.
 */
#ifndef MW_FLIGHT_H
#define MW_FLIGHT_H

#include <stdatomic.h>
#include <stdint.h>

#include "server/query.h"

struct flight;

struct flight_waiter {
	struct flight_waiter *next;
	struct flight *fl; /* the flight it leads or follows; NULL once it is answered */
};

struct flights;

int flights_create(struct flights **out); /* 0, -ENOMEM */
void flights_destroy(struct flights *f);  /* none may be in flight */

/* Returns 1: a render of key is in flight and w now follows it; 0: none
 * was, and the caller leads one (it must call flight_finish with w);
 * -ENOMEM: none was, and none could be started (render alone, no
 * follower). A leader gives its render's cancel flag: set when the flight
 * is abandoned (flight_leader_gone, flight_leave). */
int flight_join(struct flights *f, const char *key, struct flight_waiter *w, atomic_int *cancel);

/* Whether a render of key is in flight now (a join would follow it): a
 * hint, for the caller to decide what to do before it joins; the flight
 * may end the moment after. */
int flight_pending(struct flights *f, const char *key);

/* The leader w is answered: removes its flight (if it is still listed),
 * returns its followers (in the order they came), each to be answered the
 * same way. */
struct flight_waiter *flight_finish(struct flights *f, struct flight_waiter *leader);

/* The leader's client has gone. With no follower left the flight is
 * abandoned: unlisted (the next request for key leads a new one) and its
 * cancel flag set. Else its render goes on for the followers. */
void flight_leader_gone(struct flights *f, struct flight_waiter *leader);

/* A follower's client has gone: 1 when it was taken out of its flight
 * (the caller answers and resumes it), 0 when the leader's thread has it
 * already (it will be answered as the others). The last follower of a
 * gone leader abandons the flight. */
int flight_leave(struct flights *f, struct flight_waiter *w);

/* Flights abandoned since the start. */
uint64_t flights_abandoned(struct flights *f);

/* Requests answered from another request's render, since the start. */
uint64_t flights_shared(struct flights *f);

#endif
