/*
 * deadline.c - see deadline.h.
 *
 * One thread waits on a condition variable (CLOCK_MONOTONIC) until the
 * armed deadline or a hurry, then runs fire outside the lock. The window's
 * end is therefore never an HTTP thread's job: the connection stays
 * suspended meanwhile, like a rendering one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "server/deadline.h"
#include "server/sleeper.h"

struct deadline {
	struct sleeper th; /* its mutex guards what follows */
	void (*fire)(void *ctx);
	void *ctx;         /* non-NULL while a window is armed */
	char name[16];
	struct timespec deadline;
	int hurry;
};

static void *timer_main(void *arg)
{
	struct deadline *t = arg;

	pthread_setname_np(pthread_self(), t->name);
	pthread_mutex_lock(&t->th.mu);
	while (!t->th.stop) {
		if (!t->ctx) {
			sleeper_wait(&t->th, NULL);
			continue;
		}
		if (!t->hurry && sleeper_wait(&t->th, &t->deadline) != ETIMEDOUT)
			continue; /* woken early: look again */
		void *ctx = t->ctx;
		t->ctx = NULL;
		t->hurry = 0;
		pthread_mutex_unlock(&t->th.mu);
		t->fire(ctx);
		pthread_mutex_lock(&t->th.mu);
	}
	pthread_mutex_unlock(&t->th.mu);
	return NULL;
}

int deadline_create(struct deadline **out, const char *name, void (*fire)(void *ctx))
{
	struct deadline *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->fire = fire;
	snprintf(t->name, sizeof t->name, "%s", name);
	int rc = sleeper_start(&t->th, timer_main, t);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void deadline_destroy(struct deadline *t)
{
	if (!t)
		return;
	sleeper_stop(&t->th);
	free(t);
}

void deadline_after(struct deadline *t, uint64_t ns, void *ctx)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t nsec = (uint64_t)now.tv_nsec + ns % 1000000000u;
	pthread_mutex_lock(&t->th.mu);
	t->deadline.tv_sec = now.tv_sec + (time_t)(ns / 1000000000u) + (time_t)(nsec / 1000000000u);
	t->deadline.tv_nsec = (long)(nsec % 1000000000u);
	t->ctx = ctx;
	t->hurry = 0;
	pthread_cond_signal(&t->th.cond);
	pthread_mutex_unlock(&t->th.mu);
}

void deadline_hurry(struct deadline *t)
{
	pthread_mutex_lock(&t->th.mu);
	if (t->ctx) {
		t->hurry = 1;
		pthread_cond_signal(&t->th.cond);
	}
	pthread_mutex_unlock(&t->th.mu);
}

unsigned deadline_retry_after(struct deadline *t)
{
	struct timespec now;
	unsigned s = 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&t->th.mu);
	/* Hurried (its client hung up, or a drain): free in moments. */
	if (t->ctx && !t->hurry && t->deadline.tv_sec > now.tv_sec)
		s = (unsigned)(t->deadline.tv_sec - now.tv_sec) + 1;
	pthread_mutex_unlock(&t->th.mu);
	return s;
}

