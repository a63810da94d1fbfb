/* sleeper.c - see sleeper.h. */
#include <time.h>

#include "server/sleeper.h"
#include "trace/trace.h"

/* Not recorded as a span: a timer's sleep says nothing a trace needs. */
static const struct trace_desc TD_TIMER = {"wait: timer", "server", {0}, 0};

int sleeper_wait(struct sleeper *s, const struct timespec *until)
{
	uint64_t t0 = trace_wait_begin(&TD_TIMER);
	trace_wait_sleep(&TD_TIMER);
	int rc = until ? pthread_cond_timedwait(&s->cond, &s->mu, until)
		       : pthread_cond_wait(&s->cond, &s->mu);
	trace_wait_end(&TD_TIMER, t0, trace_now());
	return rc;
}

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
