/*
 * sleeper.h - a thread of the server's own that sleeps on a condition
 * variable until its owner has work for it or stops it: the /debug/
 * windows' deadlines (deadline.c) and the slow-trace saver (slowtrace.c).
 *
 * Owns the thread, its mutex and its condition variable (CLOCK_MONOTONIC,
 * for timed waits). The owner's thread function reads and writes its own
 * state under mu, waits on cond, and returns once it sees stop.
 *
 * Thread-safety: start and stop from one thread (start-up, shutdown); mu
 * guards stop and whatever the owner keeps beside it.
 */
#ifndef MW_SLEEPER_H
#define MW_SLEEPER_H

#include <pthread.h>

struct sleeper {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t thread;
	int stop; /* under mu: the thread should return */
};

/* Initialises s and starts main(arg) on its thread: 0 or -errno (then
 * nothing is left to free). */
int sleeper_start(struct sleeper *s, void *(*main)(void *), void *arg);

/* Sets stop, wakes the thread, joins it and frees what start made. */
void sleeper_stop(struct sleeper *s);

/* From the thread, under mu: waits on cond until woken, or until 'until'
 * (CLOCK_MONOTONIC; NULL: no end): 0, or ETIMEDOUT. The wait is a wait
 * site for the block profile ('wait: timer'), so an idle sleeper is
 * named there, not 'blocked outside a wait span'. */
int sleeper_wait(struct sleeper *s, const struct timespec *until);

#endif
