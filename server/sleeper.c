/* sleeper.c - see sleeper.h. */
#include <time.h>

#include "server/sleeper.h"

int sleeper_start(struct sleeper *s, void *(*main)(void *), void *arg)
{
	pthread_condattr_t ca;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->stop = 0;
	int rc = pthread_create(&s->thread, NULL, main, arg);
	if (rc != 0) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->mu);
		return -rc;
	}
	return 0;
}

void sleeper_stop(struct sleeper *s)
{
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
}
