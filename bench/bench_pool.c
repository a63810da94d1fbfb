/*
 * bench_pool.c - the worker pool's hand-off cost, for `make bench`.
 *
 *   pool_handoff_ns_qQ_pP   nanoseconds a job, wall time over JOBS empty
 *                           jobs submitted by P producer threads to 2
 *                           workers through a queue of Q slots (0: the
 *                           rendezvous), best of 3
 *   pool_handoff_sys_qQ_pP  system CPU time as a share of wall, % (a sleep
 *                           or a wake-up per job shows here)
 *
 * Usage: bench_pool [jobs] (default 1,000,000).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

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

int main(int argc, char **argv)
{
	unsigned long jobs = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	static const unsigned queues[] = {0, 1, 64, 1024};

	for (size_t q = 0; q < sizeof queues / sizeof queues[0]; q++) {
		for (unsigned np = 1; np <= 2; np++) {
			double best = 1e30, best_sys = 0;
			for (int rep = 0; rep < 3; rep++) {
				struct pool *p;
				if (pool_create(&p, 2, queues[q], "bench", NULL) < 0)
					return 1;
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
					return 1;
				if (dt < best) {
					best = dt;
					best_sys = ds / dt;
				}
			}
			printf("pool_handoff_ns_q%u_p%u %.0f ns\n", queues[q], np, best / jobs * 1e9);
			printf("pool_handoff_sys_q%u_p%u %.1f %%\n", queues[q], np, 100 * best_sys);
		}
	}
	return 0;
}
