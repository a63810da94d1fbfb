/*
 * pool.c - worker pool with a bounded ring of jobs.
 *
 * Locking: one mutex guards the ring and every counter below; a worker
 * never holds it while it runs a job. The ring follows lwan's rule: 'head'
 * and 'tail' only grow (unsigned wrap-around is fine), slot = counter &
 * mask, jobs queued = tail - head, and the ring has a power-of-two number of
 * slots >= max(capacity, 1), so the bound itself can be any number.
 * Every condition wait sits in a while loop on its predicate.
 *   not_empty: workers wait for a job (or for shutdown)
 *   not_full:  producers wait for room
 *   taken:     rendezvous producers wait until their job is taken
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/pool.h"
#include "trace/trace.h"

/* Trace events: queue depth and busy workers as counters (recorded under
 * the mutex where the value changes, so their order is the true one), and
 * a span on a producer that had to wait for room or for a taker. */
static const struct trace_desc TD_DEPTH = {"queue", "pool", {"depth"}, 0};
static const struct trace_desc TD_BUSY = {"workers", "pool", {"busy"}, 0};
static const struct trace_desc TD_FULL = {"wait: queue full", "pool", {"capacity"}, 0};
static const struct trace_desc TD_RENDEZVOUS = {"wait: rendezvous", "pool", {0}, 0};

static _Thread_local uint64_t job_wait;

struct job {
	pool_fn *fn;
	void *arg;
	uintptr_t i;
	uint64_t queued; /* trace clock when queued; 0 when not tracing */
};

struct worker {
	struct pool *pool;
	pthread_t thread;
	unsigned id;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full, taken;
	struct job *ring;
	uint32_t mask, cap, head, tail;
	unsigned idle;        /* workers waiting on not_empty */
	unsigned started;     /* workers that have begun their loop */
	int stopping;
	atomic_uint busy;
	unsigned nworkers;
	struct worker *workers;
	struct pool_hooks hooks;
	char prefix[12];
};

static void *worker_main(void *argp)
{
	struct worker *w = argp;
	struct pool *p = w->pool;
	char name[16];

	snprintf(name, sizeof name, "%.10s-%u", p->prefix, w->id);
	pthread_setname_np(pthread_self(), name);
	if (p->hooks.started)
		p->hooks.started(w->id);

	pthread_mutex_lock(&p->mu);
	p->started++;
	pthread_cond_broadcast(&p->taken); /* pool_create waits for all */
	for (;;) {
		while (p->head == p->tail && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->not_empty, &p->mu);
			p->idle--;
		}
		if (p->head == p->tail)
			break; /* stopping, and nothing left to run */
		struct job j = p->ring[p->head & p->mask];
		p->head++;
		unsigned busy = atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed) + 1;
		pthread_cond_signal(&p->not_full);
		if (p->cap == 0)
			pthread_cond_broadcast(&p->taken);
		if (trace_on()) {
			trace_counter(&TD_DEPTH, p->tail - p->head);
			trace_counter(&TD_BUSY, busy);
		}
		pthread_mutex_unlock(&p->mu);

		job_wait = j.queued ? trace_now() - j.queued : 0;
		j.fn(j.arg, j.i);

		busy = atomic_fetch_sub_explicit(&p->busy, 1, memory_order_relaxed) - 1;
		trace_counter(&TD_BUSY, busy);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	if (p->hooks.stopping)
		p->hooks.stopping(w->id);
	return NULL;
}

int pool_create(struct pool **out, unsigned workers, unsigned queue_cap,
		const char *name_prefix, const struct pool_hooks *hooks)
{
	if (workers < 1 || workers > POOL_MAX_WORKERS || queue_cap > POOL_MAX_QUEUE)
		return -EINVAL;
	struct pool *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	uint32_t slots = 1;
	while (slots < queue_cap)
		slots *= 2;
	int err = -ENOMEM;
	p->ring = calloc(slots, sizeof *p->ring);
	p->workers = calloc(workers, sizeof *p->workers);
	if (!p->ring || !p->workers)
		goto fail_alloc;
	p->mask = slots - 1;
	p->cap = queue_cap;
	p->nworkers = workers;
	if (hooks)
		p->hooks = *hooks;
	snprintf(p->prefix, sizeof p->prefix, "%s", name_prefix ? name_prefix : "worker");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->not_empty, NULL);
	pthread_cond_init(&p->not_full, NULL);
	pthread_cond_init(&p->taken, NULL);

	unsigned made;
	for (made = 0; made < workers; made++) {
		p->workers[made] = (struct worker){.pool = p, .id = made};
		int rc = pthread_create(&p->workers[made].thread, NULL, worker_main,
					&p->workers[made]);
		if (rc != 0) {
			err = -rc;
			goto fail_threads;
		}
	}
	pthread_mutex_lock(&p->mu);
	while (p->started < workers)
		pthread_cond_wait(&p->taken, &p->mu);
	pthread_mutex_unlock(&p->mu);
	*out = p;
	return 0;

fail_threads:
	p->nworkers = made;
	pool_destroy(p);
	return err;
fail_alloc:
	free(p->workers);
	free(p->ring);
	free(p);
	return err;
}

/* Called with p->mu held and room in the ring. */
static uint32_t put(struct pool *p, pool_fn *fn, void *arg, uintptr_t i)
{
	uint32_t ticket = p->tail;

	p->ring[p->tail & p->mask] = (struct job){fn, arg, i, trace_begin()};
	p->tail++;
	trace_counter(&TD_DEPTH, p->tail - p->head);
	pthread_cond_signal(&p->not_empty);
	return ticket;
}

static uint32_t room(const struct pool *p)
{
	return p->cap ? p->cap : 1;
}

int pool_submit(struct pool *p, pool_fn *fn, void *arg, uintptr_t i)
{
	uint64_t t0 = 0;

	pthread_mutex_lock(&p->mu);
	if (p->tail - p->head >= room(p))
		t0 = trace_begin();
	while (p->tail - p->head >= room(p) && !p->stopping)
		pthread_cond_wait(&p->not_full, &p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return -ESHUTDOWN;
	}
	if (t0 && p->cap)
		trace_span(&TD_FULL, t0, p->cap, 0);
	uint32_t ticket = put(p, fn, arg, i);
	/* Rendezvous: wait until a worker has taken this very job ('head'
	 * has passed the ticket; the difference is wrap-around safe). */
	if (p->cap == 0 && !t0)
		t0 = trace_begin();
	while (p->cap == 0 && (int32_t)(p->head - ticket) <= 0)
		pthread_cond_wait(&p->taken, &p->mu);
	if (p->cap == 0)
		trace_span(&TD_RENDEZVOUS, t0, 0, 0);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int pool_try_submit(struct pool *p, pool_fn *fn, void *arg, uintptr_t i)
{
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	if (p->stopping)
		rc = -ESHUTDOWN;
	else if (p->tail - p->head >= room(p) || (p->cap == 0 && p->idle == 0))
		rc = -EAGAIN; /* full; or a rendezvous with no worker waiting */
	else
		put(p, fn, arg, i);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->not_empty);
	pthread_cond_broadcast(&p->not_full);
	pthread_mutex_unlock(&p->mu);
	for (unsigned w = 0; w < p->nworkers; w++)
		pthread_join(p->workers[w].thread, NULL);
	pthread_cond_destroy(&p->taken);
	pthread_cond_destroy(&p->not_full);
	pthread_cond_destroy(&p->not_empty);
	pthread_mutex_destroy(&p->mu);
	free(p->workers);
	free(p->ring);
	free(p);
}

uint64_t pool_job_waited(void)
{
	return job_wait;
}

unsigned pool_workers(const struct pool *p) { return p->nworkers; }
unsigned pool_capacity(const struct pool *p) { return p->cap; }

unsigned pool_depth(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	unsigned d = p->tail - p->head;
	pthread_mutex_unlock(&p->mu);
	return d;
}

unsigned pool_busy(struct pool *p)
{
	return atomic_load_explicit(&p->busy, memory_order_relaxed);
}
