/*
 * pool.h - a fixed pool of worker threads fed from one bounded job queue.
 *
 * Owns: the threads (named "<prefix>-N"), the queue, and the jobs while they
 * are queued. A job is a function, an argument and an index; the submitter
 * owns the argument and must keep it alive until the job has run.
 *
 * Jobs run in queue order. Where the queue holds 16 jobs for every
 * worker, a worker takes 16 at once and runs them in turn (the workshop's
 * pixel jobs), else one at a time.
 *
 * The queue's capacity is a bound, never exceeded. Capacity 0 is a
 * rendezvous, like an unbuffered Go channel: pool_submit returns only when a
 * worker has taken the job. pool_submit blocks while the queue is full;
 * pool_try_submit never blocks and says -EAGAIN instead (the server's
 * admission control).
 *
 * Traced (trace/trace.h): queue depth and busy workers as counters, the
 * time a producer waited for room or a taker, each job's queue wait.
 *
 * Thread-safety: every function may be called from any thread, concurrently,
 * except pool_destroy, which must be the last call. Jobs may submit further
 * jobs only with pool_try_submit (a blocking submit from a worker can wait
 * for itself).
 */
#ifndef MW_POOL_H
#define MW_POOL_H

#include <stdint.h>

#define POOL_MAX_WORKERS 1024
#define POOL_MAX_QUEUE (1u << 24)

struct pool;
typedef void pool_fn(void *arg, uintptr_t i);

/* Hooks run on each worker thread: started(id) before its first job,
 * stopping(id) after its last. NULL for none. nice: added to each worker's
 * nice value as it starts (the server makes its renders yield to its HTTP
 * threads this way; 0: none). */
struct pool_hooks {
	void (*started)(unsigned id);
	void (*stopping)(unsigned id);
	int nice;
};

/* The CPUs this process may run on (its affinity: taskset, a cpuset),
 * else the online ones; at least 1. A pool's waits are chosen by it. */
int pool_usable_cpus(void);

/* workers in 1..POOL_MAX_WORKERS, queue_cap in 0..POOL_MAX_QUEUE. Returns 0
 * once every worker runs, or -EINVAL / -ENOMEM / -errno of pthread_create. */
int pool_create(struct pool **out, unsigned workers, unsigned queue_cap,
		const char *name_prefix, const struct pool_hooks *hooks);

/* Queues fn(arg, i): 0, or -ESHUTDOWN once pool_destroy has begun. */
int pool_submit(struct pool *p, pool_fn *fn, void *arg, uintptr_t i);

/* As pool_submit, without waiting: -EAGAIN when the queue is full (with
 * capacity 0: unless a worker waits for a job and no other hand-off is
 * under way; this then returns without waiting for the take). */
int pool_try_submit(struct pool *p, pool_fn *fn, void *arg, uintptr_t i);

/* Runs every job already queued, joins the workers, frees the pool. */
void pool_destroy(struct pool *p);

/* On a worker, inside a job: how long that job waited, from being queued
 * until it began (in a batch, behind the batch's earlier jobs too), in
 * nanoseconds, when the tracer was armed as it was queued (else 0). */
uint64_t pool_job_waited(void);

unsigned pool_workers(const struct pool *p);
unsigned pool_capacity(const struct pool *p);
unsigned pool_depth(struct pool *p); /* jobs queued now, not yet taken */
unsigned pool_busy(struct pool *p);  /* workers running a job now */

#endif
