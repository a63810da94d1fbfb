/* test_pool.c - the worker pool: bounds, rendezvous (and whom its waits
 * yield to), many producers,
 * shutdown. Suite "concurrency_pool": also run under ThreadSanitizer. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>

#include "prof/prof.h"
#include "render/pool.h"
#include "tests/harness.h"

static atomic_long sum;

static void add(void *arg, uintptr_t i)
{
	(void)arg;
	atomic_fetch_add(&sum, (long)i);
}

/* A job that blocks its worker until the gate opens. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open, entered;
};

static void wait_gate(void *arg, uintptr_t i)
{
	struct gate *g = arg;
	(void)i;
	pthread_mutex_lock(&g->mu);
	g->entered++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(struct gate *g, int n)
{
	pthread_mutex_lock(&g->mu);
	while (g->entered < n)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

#define GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

Test(concurrency_pool, bad_arguments)
{
	struct pool *p;
	cr_assert(eq(int, pool_create(&p, 0, 4, "t", NULL), -EINVAL));
	cr_assert(eq(int, pool_create(&p, POOL_MAX_WORKERS + 1, 4, "t", NULL), -EINVAL));
	cr_assert(eq(int, pool_create(&p, 1, POOL_MAX_QUEUE + 1, "t", NULL), -EINVAL));
}

static void many_jobs(unsigned workers, unsigned cap)
{
	struct pool *p;
	const long n = 20000;

	atomic_store(&sum, 0);
	cr_assert(eq(int, pool_create(&p, workers, cap, "t", NULL), 0));
	cr_assert(eq(u32, pool_workers(p), workers));
	cr_assert(eq(u32, pool_capacity(p), cap));
	for (long i = 1; i <= n; i++)
		cr_assert(eq(int, pool_submit(p, add, NULL, (uintptr_t)i), 0));
	pool_destroy(p); /* runs what is queued, then joins */
	cr_assert(eq(long, atomic_load(&sum), n * (n + 1) / 2), "workers %u cap %u", workers, cap);
}

Test(concurrency_pool, many_jobs_rendezvous) { many_jobs(3, 0); }
Test(concurrency_pool, many_jobs_capacity_1) { many_jobs(2, 1); }
Test(concurrency_pool, many_jobs_capacity_100) { many_jobs(4, 100); }

/* A producer thread: submits fn(NULL, i) for i in [from, from + count). */
struct producer {
	struct pool *p;
	long from, count;
	pool_fn *fn;
};

static void *produce(void *arg)
{
	struct producer *pr = arg;
	for (long i = pr->from; i < pr->from + pr->count; i++)
		if (pool_submit(pr->p, pr->fn, NULL, (uintptr_t)i) != 0)
			abort();
	return NULL;
}

static void many_producers(unsigned cap)
{
	struct pool *p;
	pthread_t t[6];
	struct producer pr[6];
	const long per = 3000;

	atomic_store(&sum, 0);
	cr_assert(eq(int, pool_create(&p, 3, cap, "t", NULL), 0));
	for (int i = 0; i < 6; i++) {
		pr[i] = (struct producer){p, 1 + i * per, per, add};
		pthread_create(&t[i], NULL, produce, &pr[i]);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	pool_destroy(p);
	long n = 6 * per;
	cr_assert(eq(long, atomic_load(&sum), n * (n + 1) / 2), "cap %u", cap);
}

Test(concurrency_pool, many_producers_rendezvous) { many_producers(0); }
Test(concurrency_pool, many_producers_capacity_7) { many_producers(7); }

Test(concurrency_pool, try_submit_says_full_at_the_bound)
{
	struct pool *p;
	struct gate g = GATE_INIT;

	cr_assert(eq(int, pool_create(&p, 1, 2, "t", NULL), 0));
	cr_assert(eq(int, pool_try_submit(p, wait_gate, &g, 0), 0));
	gate_wait_entered(&g, 1); /* the only worker is now busy */
	cr_assert(eq(u32, pool_busy(p), 1));
	cr_assert(eq(int, pool_try_submit(p, wait_gate, &g, 0), 0));
	cr_assert(eq(int, pool_try_submit(p, wait_gate, &g, 0), 0));
	cr_assert(eq(u32, pool_depth(p), 2));
	cr_assert(eq(int, pool_try_submit(p, wait_gate, &g, 0), -EAGAIN));
	gate_open(&g);
	pool_destroy(p);
	cr_assert(eq(int, g.entered, 3));
}

Test(concurrency_pool, rendezvous_needs_an_idle_worker)
{
	struct pool *p;
	struct gate g = GATE_INIT;

	cr_assert(eq(int, pool_create(&p, 1, 0, "t", NULL), 0));
	/* pool_submit returns once the worker has taken the job. */
	cr_assert(eq(int, pool_submit(p, wait_gate, &g, 0), 0));
	cr_assert(eq(u32, pool_depth(p), 0));
	gate_wait_entered(&g, 1);
	cr_assert(eq(int, pool_try_submit(p, wait_gate, &g, 0), -EAGAIN));
	gate_open(&g);
	pool_destroy(p);
}

/* A rendezvous where each side outwaits the other's spin: workers asleep
 * for want of jobs (the producer pauses 3 ms between two), then producers
 * asleep for want of workers (jobs of 2 ms, 4 producers on 2 workers:
 * tickets wait for their slot, producers for their taker). Every job runs
 * once, and every wait ends. */
static void add_slowly(void *arg, uintptr_t i)
{
	(void)arg;
	usleep(2000);
	atomic_fetch_add(&sum, (long)i);
}

Test(concurrency_pool, rendezvous_sleepers_on_either_side_are_woken, .timeout = 30)
{
	struct pool *p;
	pthread_t t[4];
	struct producer pr[4];

	atomic_store(&sum, 0);
	cr_assert(eq(int, pool_create(&p, 2, 0, "t", NULL), 0));
	for (long i = 1; i <= 20; i++) {
		usleep(3000);
		cr_assert(eq(int, pool_submit(p, add, NULL, (uintptr_t)i), 0));
	}
	for (int i = 0; i < 4; i++) {
		pr[i] = (struct producer){p, 21 + i * 10, 10, add_slowly};
		pthread_create(&t[i], NULL, produce, &pr[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	pool_destroy(p);
	cr_assert(eq(long, atomic_load(&sum), 60 * 61 / 2));
}

/* Binds the calling thread to CPU c. */
static void pin_to(int c)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(c, &one);
	cr_assert(eq(int, sched_setaffinity(0, sizeof one, &one), 0));
}

/* The calling thread's affinity into *was (to restore), and its first CPUs,
 * up to n, into cpus; returns how many. */
static int first_cpus(cpu_set_t *was, int *cpus, int n)
{
	int got = 0;
	cr_assert(eq(int, sched_getaffinity(0, sizeof *was, was), 0));
	for (int c = 0; c < CPU_SETSIZE && got < n; c++)
		if (CPU_ISSET(c, was))
			cpus[got++] = c;
	return got;
}

/* A process on one CPU (taskset, a container's cpuset): the pool made
 * there yields and sleeps where it would spin, and still runs every job
 * once, through a rendezvous and through a ring. */
Test(concurrency_pool, one_cpu_pools_run_every_job, .timeout = 60)
{
	cpu_set_t was;
	int first;
	first_cpus(&was, &first, 1);
	pin_to(first);
	many_jobs(2, 0); /* the workers inherit the one CPU */
	many_jobs(2, 3);
	cr_assert(eq(int, sched_setaffinity(0, sizeof was, &was), 0));
}

/* pool_try_submit on a rendezvous: taken where a worker waits for a job
 * (and then run by it), refused while none does. */
Test(concurrency_pool, rendezvous_try_submit_gives_to_a_waiting_worker, .timeout = 30)
{
	struct pool *p;
	struct gate g = GATE_INIT;
	int rc = -EAGAIN;

	cr_assert(eq(int, pool_create(&p, 1, 0, "t", NULL), 0));
	for (int tries = 0; tries < 2000 && rc == -EAGAIN; tries++) {
		rc = pool_try_submit(p, wait_gate, &g, 0);
		if (rc == -EAGAIN)
			usleep(1000); /* the worker is not yet waiting */
	}
	cr_assert(eq(int, rc, 0));
	gate_wait_entered(&g, 1); /* the waiting worker took it */
	cr_assert(eq(int, pool_try_submit(p, wait_gate, &g, 0), -EAGAIN));
	gate_open(&g);
	pool_destroy(p);
	cr_assert(eq(int, g.entered, 1));
}

/* Who ran job i (i from 1), for the batch test; each takes a while, off
 * a CPU, so that without batches the 4 workers would take turns. */
static pthread_t ran_by[2001];

static void add_and_note(void *arg, uintptr_t i)
{
	(void)arg;
	ran_by[i] = pthread_self();
	atomic_fetch_add(&sum, (long)i);
	usleep(20);
}

/* A deep queue is taken in batches: a worker runs up to 16 queued jobs in
 * a row (fewer shared writes a job); every job still runs once, and every
 * worker still stops when a batch holds several stop jobs at the end. */
Test(concurrency_pool, deep_queue_is_taken_in_batches)
{
	struct pool *p;
	struct gate g = GATE_INIT;
	const long n = 2000;

	atomic_store(&sum, 0);
	cr_assert(eq(int, pool_create(&p, 4, 4096, "t", NULL), 0));
	for (int w = 0; w < 4; w++)
		cr_assert(eq(int, pool_submit(p, wait_gate, &g, 0), 0));
	gate_wait_entered(&g, 4); /* every worker held: the queue fills */
	for (long i = 1; i <= n; i++)
		cr_assert(eq(int, pool_submit(p, add_and_note, NULL, (uintptr_t)i), 0));
	cr_assert(eq(u32, pool_depth(p), (unsigned)n));
	gate_open(&g);
	pool_destroy(p);
	cr_assert(eq(long, atomic_load(&sum), n * (n + 1) / 2));
	/* Jobs 1..16 were one batch: one worker ran them in a row. */
	long run = 1;
	while (run < n && pthread_equal(ran_by[run + 1], ran_by[1]))
		run++;
	cr_expect(eq(long, run, 16), "jobs from 1 on one worker: %ld", run);
}

static atomic_int hook_started, hook_stopping, hook_nice = 99;
static void on_start(unsigned id)
{
	(void)id;
	atomic_store(&hook_nice, getpriority(PRIO_PROCESS, (id_t)gettid()));
	atomic_fetch_add(&hook_started, 1);
}
static void on_stop(unsigned id) { (void)id; atomic_fetch_add(&hook_stopping, 1); }

/* The hooks run on every worker, after its nice was raised by hooks.nice
 * (the caller's is unchanged). */
Test(concurrency_pool, hooks_run_on_every_worker)
{
	struct pool *p;
	struct pool_hooks h = {on_start, on_stop, 3};
	int mine = getpriority(PRIO_PROCESS, (id_t)gettid());

	cr_assert(eq(int, pool_create(&p, 5, 3, "t", &h), 0));
	cr_assert(eq(int, atomic_load(&hook_started), 5)); /* create waits for all */
	cr_expect(eq(int, atomic_load(&hook_nice), mine + 3 > 19 ? 19 : mine + 3));
	cr_expect(eq(int, getpriority(PRIO_PROCESS, (id_t)gettid()), mine));
	pool_destroy(p);
	cr_assert(eq(int, atomic_load(&hook_stopping), 5));
}

static int waiter_cpu;
static atomic_int waiter_tid;
static void pin_waiter(unsigned id)
{
	(void)id;
	pin_to(waiter_cpu);
	atomic_store(&waiter_tid, (int)gettid());
}

static atomic_int hog_stop, hog_tid;
static void *hog_on(void *cpu)
{
	pin_to((int)(intptr_t)cpu);
	atomic_store(&hog_tid, (int)gettid());
	while (!atomic_load_explicit(&hog_stop, memory_order_relaxed))
		;
	return NULL;
}

/* Seconds of CPU thread tid of this process (0: the caller) has had, as
 * the kernel counts it. */
static double cpu_of(int tid)
{
	struct prof_sched s;
	cr_assert(eq(int, prof_sched_read(tid, &s), 0), "thread %d's schedstat", tid);
	return (double)s.oncpu / 1e9;
}

/* A rendezvous of one worker for the tests below: made with every CPU (a
 * pool made on one waits as on one CPU), then this thread, its producer,
 * bound to the first CPU of this process and the worker to the second
 * (same: to the first too). *was: the affinity to restore. Skips the test
 * where the process has one CPU. */
static struct pool *pinned_rendezvous(cpu_set_t *was, bool same)
{
	int cpus[2];
	if (first_cpus(was, cpus, 2) < 2)
		cr_skip_test("needs 2 CPUs");
	struct pool *p;
	struct pool_hooks h = {pin_waiter, NULL, 0};
	waiter_cpu = same ? cpus[0] : cpus[1];
	cr_assert(eq(int, pool_create(&p, 1, 0, "t", &h), 0));
	pin_to(cpus[0]);
	return p;
}

static void nothing(void *arg, uintptr_t i)
{
	(void)arg;
	(void)i;
}

/* A worker waiting in a rendezvous yields its CPU only where its last job
 * came from that CPU (the producer may need it to give the next), not when
 * the producer runs on another: there a yield gave the CPU away to
 * whatever else ran on it, a busy process's thread for a whole slice a job
 * (the workshop's unbuffered mode beside a CPU hog on 2 vCPUs: 1.5-9.6 s
 * where Go's took 1.6). The producer alone on one CPU, the worker and a
 * spinning thread on another, 5,000 jobs 2 us apart: the worker (busy, or
 * spinning for its next job) shares its CPU about evenly with the spinner,
 * 11-12 ms to 8-20 ms. Yielding, it had 54-79 ms to the spinner's 15-19 s,
 * and the test took that long. */
Test(concurrency_pool, rendezvous_worker_keeps_its_cpu_for_a_producer_elsewhere, .timeout = 60)
{
	cpu_set_t was;
	struct pool *p = pinned_rendezvous(&was, false);
	cr_assert(eq(int, pool_submit(p, nothing, NULL, 0), 0)); /* the worker learns our CPU */
	pthread_t hog;
	atomic_store(&hog_stop, 0);
	atomic_store(&hog_tid, 0);
	cr_assert(eq(int, pthread_create(&hog, NULL, hog_on, (void *)(intptr_t)waiter_cpu), 0));
	int tid = atomic_load(&waiter_tid), htid;
	while (!(htid = atomic_load(&hog_tid)))
		sched_yield();
	double w0 = cpu_of(tid), h0 = cpu_of(htid);
	for (int i = 0; i < 5000; i++) {
		double until = mw_now() + 2e-6;
		while (mw_now() < until)
			;
		cr_assert(eq(int, pool_submit(p, nothing, NULL, 0), 0));
	}
	double w = cpu_of(tid) - w0, hg = cpu_of(htid) - h0;
	atomic_store(&hog_stop, 1);
	pthread_join(hog, NULL);
	cr_assert(eq(int, sched_setaffinity(0, sizeof was, &was), 0));
	pool_destroy(p);
	cr_expect(lt(dbl, hg / 4, w), "the worker had %.1f ms of CPU, the spinner beside it %.1f ms",
		  w * 1e3, hg * 1e3);
}

/* And the producer, waiting for its take, yields at once where the last
 * taker ran on its CPU, as a pool on one CPU does: spinning there only kept
 * the taker off the CPU (with every thread of ours on one CPU, the
 * unbuffered mode beside a CPU hog of another session took 29-40 s, where
 * Go took 1.6). The producer and the worker on one CPU, 2,000 jobs: each
 * has about as much CPU as the other (3.8-4.8 ms to 3.7-4.6). Spinning,
 * the producer had 17-20 times the worker's (129-138 ms to 6.6-8.2). */
Test(concurrency_pool, rendezvous_producer_yields_to_a_taker_on_its_cpu, .timeout = 60)
{
	cpu_set_t was;
	struct pool *p = pinned_rendezvous(&was, true);
	for (int i = 0; i < 2; i++) /* each slot learns its taker's CPU */
		cr_assert(eq(int, pool_submit(p, nothing, NULL, 0), 0));
	int tid = atomic_load(&waiter_tid);
	double p0 = cpu_of(0), w0 = cpu_of(tid);
	for (int i = 0; i < 2000; i++)
		cr_assert(eq(int, pool_submit(p, nothing, NULL, 0), 0));
	double mine = cpu_of(0) - p0, w = cpu_of(tid) - w0;
	cr_assert(eq(int, sched_setaffinity(0, sizeof was, &was), 0));
	pool_destroy(p);
	cr_expect(lt(dbl, mine, 4 * w), "the producer had %.1f ms of CPU, the worker on its CPU %.1f ms",
		  mine * 1e3, w * 1e3);
}
