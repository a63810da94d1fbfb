/*
 * bench_pool.c - the worker pool's hand-off cost, for `make bench`.
 *
 *   pool_handoff_ns_qQ_pP   nanoseconds a job, wall time over JOBS empty
 *                           jobs submitted by P producer threads to 2
 *                           workers through a queue of Q slots (0: the
 *                           rendezvous), best of 3
 *   pool_handoff_sys_qQ_pP  system CPU time as a share of wall, % (a sleep
 *                           or a wake-up per job shows here)
 *   pool_handoff_ns_q0_p1_blockprofile  the rendezvous again with a block
 *                           profile armed (each wait reads schedstat twice),
 *                           and its ratio to the unarmed figure
 *   sched_scrape_us         what /metrics' scheduler figures cost a scrape:
 *                           prof_sched_classes over this process's threads
 *
 * Usage: bench_pool [jobs] (default 1,000,000).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "prof/prof.h"
#include "render/pool.h"

static atomic_ulong ran;

static void empty(void *arg, uintptr_t i)
{
	(void)arg, (void)i;
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
}

struct producer {
	struct pool *p;
	unsigned long n;
};

static void *produce(void *arg)
{
	struct producer *pr = arg;
	for (unsigned long i = 0; i < pr->n; i++)
		pool_submit(pr->p, empty, NULL, i);
	return NULL;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static double sys_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* Wall seconds a job: jobs empty jobs by one producer through a queue of
 * cap slots to 2 workers, best of 3; *sys: system CPU as a share. 0 on a
 * failure. */
static double handoff(unsigned long jobs, unsigned cap, unsigned np, double *sys)
{
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		struct pool *p;
		if (pool_create(&p, 2, cap, "bench", NULL) < 0)
			return 0;
		struct producer pr[2] = {{p, jobs / np}, {p, jobs / np}};
		pthread_t t[2];
		atomic_store(&ran, 0);
		double s0 = sys_s(), t0 = now_s();
		for (unsigned i = 0; i < np; i++)
			pthread_create(&t[i], NULL, produce, &pr[i]);
		for (unsigned i = 0; i < np; i++)
			pthread_join(t[i], NULL);
		pool_destroy(p); /* runs what is queued */
		double dt = now_s() - t0, ds = sys_s() - s0;
		if (atomic_load(&ran) != jobs / np * np)
			return 0;
		if (dt < best) {
			best = dt;
			*sys = ds / dt;
		}
	}
	return best / (double)jobs;
}

int main(int argc, char **argv)
{
	unsigned long jobs = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	static const unsigned queues[] = {0, 1, 64, 1024};
	double plain_q0 = 0;

	for (size_t q = 0; q < sizeof queues / sizeof queues[0]; q++) {
		for (unsigned np = 1; np <= 2; np++) {
			double sys = 0, per = handoff(jobs, queues[q], np, &sys);
			if (per == 0)
				return 1;
			if (q == 0 && np == 1)
				plain_q0 = per;
			printf("pool_handoff_ns_q%u_p%u %.0f ns\n", queues[q], np, per * 1e9);
			printf("pool_handoff_sys_q%u_p%u %.1f %%\n", queues[q], np, 100 * sys);
		}
	}
	struct prof_block *b;
	double sys = 0, armed = 0;
	if (prof_block_start(&b) == 0) {
		armed = handoff(jobs / 4, 0, 1, &sys);
		prof_block_free(b);
	}
	if (armed == 0)
		return 1;
	printf("pool_handoff_ns_q0_p1_blockprofile %.0f ns\n", armed * 1e9);
	printf("pool_handoff_q0_blockprofile_vs_off %.2f x\n", armed / plain_q0);
	static const char *const prefix[] = {"worker-", "http-"};
	struct prof_sched sum[3];
	double t0 = now_s();
	for (int i = 0; i < 100; i++)
		prof_sched_classes(prefix, 2, sum);
	printf("sched_scrape_us %.1f us\n", (now_s() - t0) / 100 * 1e6);
	printf("sched_scrape_threads %u threads\n", sum[0].threads + sum[1].threads + sum[2].threads);
	return 0;
}
