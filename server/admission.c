/*
 * admission.c - see admission.h.
 *
 * The rate is measured between events (an admission that starts a busy
 * period, each done): over dt seconds of busy time, done pictures worth u
 * pixel-iterations. Samples are folded in as
 *     rate += (1 - exp(-dt / tau)) * (u / dt - rate)
 * when a picture is done, with dt and u accumulated since the previous
 * done (so an admission between two dones splits nothing). A short dt
 * moves the rate little, a long one nearly all the way: the weight is the
 * time the sample covers, not the count of samples.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "server/admission.h"

struct admission {
	pthread_mutex_t lock;
	struct admission_cfg cfg;
	double backlog, rate;
	double mark;   /* start of the busy time not yet measured */
	double busy_u; /* pixel-iterations done since mark */
	unsigned pictures;
	uint64_t bytes;
};

int admission_create(struct admission **out, const struct admission_cfg *c)
{
	struct admission *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->cfg = *c;
	a->rate = c->rate0 > 0 ? c->rate0 : 1e9;
	*out = a;
	return 0;
}

void admission_destroy(struct admission *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static unsigned seconds_up(double s)
{
	if (!(s < 86400))
		return 86400;
	unsigned r = (unsigned)ceil(s);
	return r ? r : 1;
}

enum admission_verdict admission_admit(struct admission *a, double cost, uint64_t bytes,
				       double now, struct admission_ticket *t)
{
	enum admission_verdict v = ADMIT_OK;

	pthread_mutex_lock(&a->lock);
	double ahead = a->backlog / a->rate, mine = cost / a->rate;
	t->cost = cost;
	t->bytes = bytes;
	t->wait = ahead + mine;
	if (mine > a->cfg.max_wait)
		v = ADMIT_TOO_BIG;
	else if (ahead + mine > a->cfg.max_wait)
		v = ADMIT_BUSY;
	else if (a->pictures >= a->cfg.max_pictures)
		v = ADMIT_COUNT;
	else if (bytes > a->cfg.max_bytes || a->bytes + bytes > a->cfg.max_bytes)
		v = a->pictures ? ADMIT_MEMORY : ADMIT_TOO_BIG;
	if (v == ADMIT_OK) {
		if (a->pictures == 0) {
			a->mark = now; /* a busy period begins */
			a->busy_u = 0;
		}
		a->backlog += cost;
		a->bytes += bytes;
		a->pictures++;
	} else {
		t->wait = ahead;
		t->retry = seconds_up(ahead);
	}
	pthread_mutex_unlock(&a->lock);
	return v;
}

void admission_done(struct admission *a, const struct admission_ticket *t, double now)
{
	admission_done_share(a, t, now, 1);
}

void admission_done_share(struct admission *a, const struct admission_ticket *t, double now,
			  double share)
{
	pthread_mutex_lock(&a->lock);
	a->busy_u += t->cost * (share >= 0 && share <= 1 ? share : 1);
	double dt = now - a->mark;
	if (dt > 0) {
		double w = 1 - exp(-dt / ADMISSION_RATE_TAU);
		a->rate += w * (a->busy_u / dt - a->rate);
		if (!(a->rate > 1)) /* never 0 (or NaN): the waits divide by it */
			a->rate = 1;
		a->mark = now;
		a->busy_u = 0;
	}
	a->backlog -= t->cost;
	a->bytes -= t->bytes;
	if (--a->pictures == 0)
		a->backlog = 0; /* no rounding left behind */
	pthread_mutex_unlock(&a->lock);
}

void admission_cancel(struct admission *a, const struct admission_ticket *t)
{
	pthread_mutex_lock(&a->lock);
	a->backlog -= t->cost;
	a->bytes -= t->bytes;
	if (--a->pictures == 0)
		a->backlog = 0;
	pthread_mutex_unlock(&a->lock);
}

void admission_stats(struct admission *a, struct admission_stats *st)
{
	pthread_mutex_lock(&a->lock);
	st->backlog = a->backlog;
	st->rate = a->rate;
	st->wait = a->backlog / a->rate;
	st->pictures = a->pictures;
	st->bytes = a->bytes;
	pthread_mutex_unlock(&a->lock);
}

const char *admission_why(enum admission_verdict v)
{
	switch (v) {
	case ADMIT_OK:
		return "admitted";
	case ADMIT_BUSY:
		return "busy: the pictures ahead would make this one wait past --max-wait; retry after Retry-After";
	case ADMIT_TOO_BIG:
		return "too big: this picture alone would take longer than --max-wait here; ask for fewer pixels or iterations";
	case ADMIT_MEMORY:
		return "busy: the pictures being rendered hold the memory --max-render-mb allows; retry after Retry-After";
	case ADMIT_COUNT:
		return "busy: --max-inflight pictures are being rendered; retry after Retry-After";
	}
	return "busy";
}
