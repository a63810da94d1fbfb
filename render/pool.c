/*
 * pool.c - worker pool with a bounded lock-free ring of jobs, or a
 * rendezvous (pool_meet.c) where its capacity is 0.
 *
 * Design (no lock on any path while work flows):
 *  - The ring is Vyukov's bounded MPMC queue: a power-of-two array of
 *    slots, each with a sequence number, and two free-running tickets,
 *    tail (producers) and head (consumers), each taken with one
 *    fetch-add. A producer with ticket t waits until slot t & mask says
 *    seq == t (free on this lap), writes the job and publishes seq = t + 1
 *    (release); the consumer with ticket t waits for seq == t + 1
 *    (acquire), reads the job, and frees the slot for the next lap with
 *    seq = t + slots. Tickets are taken in order, so jobs are FIFO per
 *    producer. A slot keeps seq minus its index, so the ring starts as
 *    calloc's zeros and its pages are touched only as jobs reach them
 *    (the workshop's buffered channel asks 1M slots, 40 MB).
 *  - Two counting semaphores say when a ticket may be taken, so those
 *    waits on a slot are only ever for a thread that has its ticket and is
 *    between two instructions: 'room' (the capacity) and 'items' (jobs
 *    published). A semaphore is a word and a count of
 *    sleepers: post is a fetch-add, plus a futex wake of one sleeper only
 *    when the count says there is one; wait spins a little on the word
 *    (SPIN_*), then sleeps on it with futex (park.h). Post and sleep both
 *    use seq_cst on the word and the count, so a poster either sees the
 *    sleeper or the sleeper sees the post (no lost wake-up).
 *  - Batches: where 'items' holds BATCH_MAX tokens for every worker, a
 *    worker takes BATCH_MAX at once (one CAS), their tickets with one
 *    fetch-add, and gives their room back with one post; it runs them in
 *    order. A shallower queue is taken a job at a time.
 *  - Rendezvous (capacity 0): no ring and no semaphores; each job goes
 *    through the meet (pool_meet.c), whose producer returns once a worker
 *    has taken it.
 *  - Shutdown: 'stopping' is set; producers that see it return -ESHUTDOWN,
 *    and those asleep for room are woken (the word moves, so a sleeper
 *    that raced the flag still returns; the meet's sleepers are woken
 *    until every producer is out). pool_destroy waits until no producer
 *    is inside a submit ('submitting'), then gives one empty job per
 *    worker after every real one (the ring has a slot for each): the
 *    workers run what is queued and stop at their empty job.
 * Memory order: the slot's seq is the only hand-off of a job's contents
 * (release on publish, acquire on take); everything else is a counter.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "render/park.h"
#include "render/pool.h"
#include "render/pool_internal.h"
#include "trace/trace.h"

/* Trace events: queue depth and busy workers as counters; every wait as a
 * span named for its reason (a worker with no job, a producer waiting for
 * room or for its taker); and where a wait ended in a futex sleep, the
 * thread that woke it: a 'wake' span around the futex wake with a flow to
 * the 'woken' span that the sleeper starts when it runs again (Go's
 * "unblocked by"). The flow's id passes through the semaphore (the last
 * waker's, claimed by the sleeper that takes the token), or the meet's. */
static const struct trace_desc TD_DEPTH = {"queue", "pool", {"depth"}, 0};
static const struct trace_desc TD_BUSY = {"workers", "pool", {"busy"}, 0};
static const struct trace_desc TD_NOWORK = {"wait: no work", "pool", {0}, 0};
static const struct trace_desc TD_FULL = {"wait: queue full", "pool", {"capacity"}, 0};
static const struct trace_desc TD_RENDEZVOUS = {"wait: rendezvous", "pool", {0}, 0};
static const struct trace_desc TD_WAKE = {"wake", "pool", {"woke"}, 0};
static const struct trace_desc TD_WOKEN = {"woken", "pool", {0}, 0};

static _Thread_local uint64_t job_wait;

/* A slot of the ring: 40 bytes a job (the workshop's buffered channel
 * of 1M pixels asks 40 MB). */
struct slot {
	atomic_uint seq; /* minus the slot's index: calloc's zeros are 'free on lap 0' */
	pool_fn *fn;
	void *arg;
	uintptr_t i;
	uint64_t queued;
};

struct sem {
	atomic_int val;     /* tokens available */
	atomic_int sleepers;
	_Atomic uint64_t wake; /* traced: the flow id of the last wake-up not yet claimed */
};

/* The spans of a wait that began at t0 (trace_wait_begin): d until the
 * sleep ended, then 'woken' with the waker's arrow, until now; and the
 * wait, until the thread ran again, to an armed block profile. */
static void trace_waited(const struct trace_desc *d, uint64_t t0, const struct pool_waited *w,
			 int64_t a0)
{
	if (!t0 || !w->waited) {
		trace_wait_none();
		return;
	}
	trace_wait_end(d, t0, w->woke_at ? w->woke_at : trace_now());
	if (!w->woke_at) {
		trace_span(d, t0, a0, 0);
		return;
	}
	trace_span_to(d, t0, w->woke_at, TRACE_FLOW_NONE, 0, a0, 0);
	trace_span_flow(&TD_WOKEN, w->woke_at, w->flow ? TRACE_FLOW_END : TRACE_FLOW_NONE, w->flow,
			0, 0, 0, 0);
}

uint64_t pool_wake(atomic_int *w, int n, uint64_t id, _Atomic uint64_t *slot)
{
	uint64_t t0 = trace_begin();
	int woke = park_wake(w, n);
	if (!t0 || !woke)
		return 0; /* nobody was asleep after all (they are counted before they sleep) */
	if (slot) {
		id = trace_flow_id();
		atomic_store_explicit(slot, id, memory_order_relaxed);
	}
	trace_span_flow(&TD_WAKE, t0, id ? TRACE_FLOW_START : TRACE_FLOW_NONE, id, woke, 0, 0, 0);
	return id;
}

struct worker {
	struct pool *pool;
	pthread_t thread;
	unsigned id;
};

/* Each word that one side writes on every job has a cache line of its
 * own, so that a hand-off moves only the lines it must (the slot and the
 * two semaphores; for a rendezvous, the meet's slot): the producers write
 * tail and submitting, the workers head and busy. */
struct pool {
	_Alignas(64) atomic_uint tail; /* producers' ticket */
	_Alignas(64) atomic_uint head; /* consumers' ticket */
	_Alignas(64) struct sem room;
	_Alignas(64) struct sem items;
	_Alignas(64) struct pool_meet meet; /* capacity 0 */
	_Alignas(64) atomic_int submitting;
	_Alignas(64) atomic_uint busy;
	_Alignas(64) atomic_int stopping, started;
	struct slot *ring;
	uint32_t mask, cap;
	struct pool_spin spin;
	unsigned nworkers;
	struct worker *workers;
	struct pool_hooks hooks;
	char prefix[12];
};

/* Up to n tokens, without waiting: how many were taken. */
static int sem_try_n(struct sem *s, int n)
{
	int v = atomic_load_explicit(&s->val, memory_order_relaxed);
	while (v > 0) {
		int k = v < n ? v : n;
		if (atomic_compare_exchange_weak(&s->val, &v, v - k))
			return k;
	}
	return 0;
}

/* One token, without waiting. */
static bool sem_try(struct sem *s)
{
	return sem_try_n(s, 1) == 1;
}

/* n tokens, and as many sleepers woken as there are. */
static void sem_post_n(struct sem *s, int n)
{
	atomic_fetch_add(&s->val, n);
	if (atomic_load(&s->sleepers) > 0)
		pool_wake(&s->val, n, 0, &s->wake);
}

/* Takes a token: 0; or -ESHUTDOWN when stop is set first (stop NULL:
 * never). *w says how the wait went. */
static int sem_wait(struct sem *s, atomic_int *stop, int spins, int yield, struct pool_waited *w,
		    const struct trace_desc *d)
{
	*w = (struct pool_waited){0};
	if (sem_try(s))
		return 0;
	w->waited = 1;
	for (;;) {
		for (int n = 0; n < spins; n++) {
			if (sem_try(s)) {
				if (w->woke_at) /* the last sleep's waker, if it is still unclaimed */
					w->flow = atomic_exchange_explicit(&s->wake, 0, memory_order_relaxed);
				return 0;
			}
			if (stop && atomic_load_explicit(stop, memory_order_relaxed))
				return -ESHUTDOWN;
			if (yield && n % yield == yield - 1)
				sched_yield(); /* more threads than cores: let the other side run */
			else
				park_relax();
		}
		atomic_fetch_add(&s->sleepers, 1);
		trace_wait_sleep(d);
		int v;
		while ((v = atomic_load(&s->val)) <= 0 && !(stop && atomic_load(stop))) {
			park_wait(&s->val, v);
			w->woke_at = trace_on() || trace_waits_on() ? trace_now() : 0;
		}
		atomic_fetch_sub(&s->sleepers, 1);
		if (sem_try(s)) {
			if (w->woke_at)
				w->flow = atomic_exchange_explicit(&s->wake, 0, memory_order_relaxed);
			return 0;
		}
		if (stop && atomic_load(stop))
			return -ESHUTDOWN;
	}
}

static void publish(struct pool *p, const struct pool_job *j)
{
	uint32_t t = atomic_fetch_add_explicit(&p->tail, 1, memory_order_relaxed);
	uint32_t i = t & p->mask;
	struct slot *s = &p->ring[i];
	while (atomic_load_explicit(&s->seq, memory_order_acquire) + i != t)
		park_relax(); /* its consumer of the last lap is between two lines */
	s->fn = j->fn, s->arg = j->arg, s->i = j->i, s->queued = j->queued;
	atomic_store_explicit(&s->seq, t + 1 - i, memory_order_release);
	sem_post_n(&p->items, 1);
}

/* The job of ticket h (its 'items' token is held). */
static struct pool_job take(struct pool *p, uint32_t h)
{
	uint32_t i = h & p->mask;
	struct slot *s = &p->ring[i];
	while (atomic_load_explicit(&s->seq, memory_order_acquire) + i != h + 1)
		park_relax(); /* its producer has the ticket, not yet the job in */
	struct pool_job j = {s->fn, s->arg, s->i, s->queued};
	atomic_store_explicit(&s->seq, h + p->mask + 1 - i, memory_order_release);
	return j;
}

static unsigned depth(struct pool *p)
{
	return atomic_load_explicit(&p->tail, memory_order_relaxed) -
	       atomic_load_explicit(&p->head, memory_order_relaxed);
}

/* Jobs a worker takes at once, at most: with the workshop's buffered
 * channel (1M pixels, 4 workers on 2 CPUs) each shared word a take writes
 * (the tokens, the head ticket, the room) is written once for BATCH_MAX
 * jobs, not once a job. */
#define BATCH_MAX 16

/* How many more tokens than its one a worker may take: BATCH_MAX - 1
 * where the queue holds BATCH_MAX jobs for every worker (a fast producer
 * of small jobs: the workshop's pixels), else none, so that no job waits
 * behind another on a worker while a worker could have taken it (the
 * service's queue of pictures is never that deep: admission hands the
 * pool a few pictures at a time). */
static int batch_more(struct pool *p)
{
	int v = atomic_load_explicit(&p->items.val, memory_order_relaxed);
	return v >= BATCH_MAX * (int)p->nworkers ? BATCH_MAX - 1 : 0;
}

/* A worker of a rendezvous: waits for a job and takes it; 1. */
static int take_meet(struct pool *p, struct pool_job *j)
{
	struct pool_waited wt;
	uint64_t t0 = trace_wait_begin(&TD_NOWORK);
	pool_meet_take(&p->meet, j, &p->spin, &wt, &TD_NOWORK);
	trace_waited(&TD_NOWORK, t0, &wt, 0);
	return 1;
}

/* A worker of a ring: waits for a job and takes it, or a batch where the
 * queue is deep (batch_more); how many. */
static int take_jobs(struct pool *p, struct pool_job *jobs)
{
	struct pool_waited wt;
	uint64_t t0 = trace_wait_begin(&TD_NOWORK);
	sem_wait(&p->items, NULL, p->spin.worker, p->spin.yield, &wt, &TD_NOWORK);
	trace_waited(&TD_NOWORK, t0, &wt, 0);
	int n = 1 + sem_try_n(&p->items, batch_more(p));
	uint32_t h = atomic_fetch_add_explicit(&p->head, (unsigned)n, memory_order_relaxed);
	for (int k = 0; k < n; k++)
		jobs[k] = take(p, h + (uint32_t)k);
	sem_post_n(&p->room, n);
	return n;
}

static void *worker_main(void *argp)
{
	struct worker *w = argp;
	struct pool *p = w->pool;
	char name[16];

	snprintf(name, sizeof name, "%.10s-%u", p->prefix, w->id);
	pthread_setname_np(pthread_self(), name);
	if (p->hooks.nice) /* best effort: a nice it may not take is left as it is */
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), getpriority(PRIO_PROCESS, 0) + p->hooks.nice);
	if (p->hooks.started)
		p->hooks.started(w->id);
	atomic_fetch_add(&p->started, 1);
	park_wake(&p->started, 1);
	for (bool stop = false; !stop;) {
		struct pool_job jobs[BATCH_MAX];
		int n = p->cap ? take_jobs(p, jobs) : take_meet(p, jobs);
		unsigned busy = atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed) + 1;
		for (int k = 0; k < n; k++) {
			struct pool_job j = jobs[k];
			if (!j.fn) {
				/* Stop jobs come after every real one, so a batch
				 * (at least BATCH_MAX * workers deep) holds one
				 * only with a single worker; were there more, they
				 * go back, one for each other worker. */
				stop = true;
				for (k++; k < n; k++)
					publish(p, &jobs[k]);
				break;
			}
			if (trace_on()) {
				trace_counter(&TD_DEPTH, depth(p));
				trace_counter(&TD_BUSY, busy);
			}
			job_wait = j.queued ? trace_now() - j.queued : 0;
			j.fn(j.arg, j.i);
		}
		busy = atomic_fetch_sub_explicit(&p->busy, 1, memory_order_relaxed) - 1;
		trace_counter(&TD_BUSY, busy);
	}
	if (p->hooks.stopping)
		p->hooks.stopping(w->id);
	return NULL;
}

int pool_usable_cpus(void)
{
#ifdef __linux__
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
#endif
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int pool_create(struct pool **out, unsigned workers, unsigned queue_cap,
		const char *name_prefix, const struct pool_hooks *hooks)
{
	if (workers < 1 || workers > POOL_MAX_WORKERS || queue_cap > POOL_MAX_QUEUE)
		return -EINVAL;
	struct pool *p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof *p);
	int err = -ENOMEM;
	p->spin = pool_spin_for(pool_usable_cpus());
	pool_meet_init(&p->meet);
	/* A ring (capacity 0 has none): a slot for each job the room allows
	 * and for each stop job. */
	uint32_t need = queue_cap + workers, slots = 1;
	while (slots < need)
		slots *= 2;
	p->mask = slots - 1;
	p->ring = queue_cap ? calloc(slots, sizeof *p->ring) : NULL;
	p->workers = calloc(workers, sizeof *p->workers);
	if ((queue_cap && !p->ring) || !p->workers)
		goto fail_alloc;
	p->cap = queue_cap;
	atomic_init(&p->room.val, (int)queue_cap);
	p->nworkers = workers;
	if (hooks)
		p->hooks = *hooks;
	snprintf(p->prefix, sizeof p->prefix, "%s", name_prefix ? name_prefix : "worker");

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
	int n;
	while ((n = atomic_load(&p->started)) < (int)workers)
		park_wait(&p->started, n);
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

/* A rendezvous (capacity 0): gives the job to a worker (pool_submit:
 * and waits until one has taken it; pool_try_submit: only where one waits
 * for a job now). */
static int submit_meet(struct pool *p, struct pool_job *j, bool wait)
{
	struct pool_waited wt;
	if (!wait) {
		j->queued = trace_begin();
		return pool_meet_give(&p->meet, j, false, &p->spin, &wt, NULL);
	}
	j->queued = trace_wait_begin(&TD_RENDEZVOUS);
	pool_meet_give(&p->meet, j, true, &p->spin, &wt, &TD_RENDEZVOUS); /* waiting, it gives */
	trace_waited(&TD_RENDEZVOUS, j->queued, &wt, 0);
	return 0;
}

/* The common part of both submits; wait: whether to wait for room (for
 * a rendezvous, for a waiting worker). */
static int submit(struct pool *p, pool_fn *fn, void *arg, uintptr_t i, bool wait)
{
	struct pool_job j = {fn, arg, i, 0};
	struct pool_waited wt;
	int rc = 0;

	atomic_fetch_add(&p->submitting, 1);
	if (atomic_load(&p->stopping)) {
		rc = -ESHUTDOWN;
		goto out;
	}
	if (!p->cap) {
		rc = submit_meet(p, &j, wait);
		goto out;
	}
	if (!wait) {
		if (!sem_try(&p->room)) {
			rc = -EAGAIN;
			goto out;
		}
	} else if (!sem_try(&p->room)) {
		uint64_t t0 = trace_wait_begin(&TD_FULL);
		if ((rc = sem_wait(&p->room, &p->stopping, p->spin.producer, p->spin.yield, &wt,
				   &TD_FULL)) < 0) {
			trace_wait_none();
			goto out;
		}
		trace_waited(&TD_FULL, t0, &wt, p->cap);
	}
	if (atomic_load(&p->stopping)) {
		/* Shutdown began meanwhile (its wake-up may be the room taken):
		 * nothing is queued after pool_destroy has begun. */
		rc = -ESHUTDOWN;
		goto out;
	}
	j.queued = trace_begin();
	publish(p, &j);
	if (trace_on())
		trace_counter(&TD_DEPTH, depth(p));
out:
	atomic_fetch_sub(&p->submitting, 1);
	return rc;
}

int pool_submit(struct pool *p, pool_fn *fn, void *arg, uintptr_t i)
{
	return submit(p, fn, arg, i, true);
}

int pool_try_submit(struct pool *p, pool_fn *fn, void *arg, uintptr_t i)
{
	return submit(p, fn, arg, i, false);
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	atomic_store(&p->stopping, 1);
	/* Producers asleep for room: the word moves, so none sleeps on. */
	atomic_fetch_add(&p->room.val, 1 << 20);
	park_wake(&p->room.val, INT_MAX);
	/* And those asleep in a rendezvous (its words cannot move for them:
	 * woken until every one is out; one with a ticket fills its slot). */
	while (atomic_load(&p->submitting) > 0) {
		if (!p->cap)
			pool_meet_wake_all(&p->meet);
		sched_yield();
	}
	/* A stop job for each worker: a worker stops at its first, so that
	 * in a rendezvous each waiting worker takes one. */
	for (unsigned w = 0; w < p->nworkers; w++) {
		struct pool_job stop = {0};
		struct pool_waited wt;
		if (!p->cap)
			pool_meet_give(&p->meet, &stop, true, &p->spin, &wt, NULL);
		else
			publish(p, &stop);
	}
	for (unsigned w = 0; w < p->nworkers; w++)
		pthread_join(p->workers[w].thread, NULL);
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
	unsigned d = depth(p);
	return d > p->mask ? 0 : d; /* a consumer ahead of its producer reads as 0 */
}

unsigned pool_busy(struct pool *p)
{
	return atomic_load_explicit(&p->busy, memory_order_relaxed);
}
