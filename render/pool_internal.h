/*
 * pool_internal.h - what the pool's two files share, and nothing outside
 * them includes but a white-box test (tests/test_trace.c: the rendezvous'
 * wake-up arrows): a job, how a wait went, the spin counts, pool.c's traced
 * futex wake, and the rendezvous of a pool of capacity 0 (pool_meet.c,
 * called by pool.c's submits, workers and shutdown; see its top comment).
 *
 * Thread-safety: a pool_meet is for any number of producers and workers at
 * once, each call from the thread that gives or takes.
 */
#ifndef MW_POOL_INTERNAL_H
#define MW_POOL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "render/pool.h"
#include "trace/trace.h"

/* Spins before sleeping. A worker waiting for a job spins SPIN_WORKER
 * times, yielding its CPU every SPIN_YIELD_EVERY-th turn (a pause the rest:
 * about 65 cycles on AMD Zen), so that with more threads than cores (the
 * workshop's producer and 2 workers on 2 CPUs) the thread that has work
 * runs. A producer waiting for room or a taker spins SPIN_PRODUCER pauses.
 * A rendezvous changes both by where the side waited for last ran
 * (pool_meet.c: Whom a waiting thread yields to).
 * Chosen by the CLI at 1024x1024 on 2 vCPUs (AMD EPYC Zen 3), wall / system
 * seconds, best of 3, with the rendezvous of that day (a ring of one):
 *   worker, producer, yield   px          workers -queue 0   workers -workers 4 buffered
 *   1000, 1000, none          1.57 / 0.50   1.87 / 0.47       0.97 / 0.32
 *   200, 200, none            1.15 / 0.51   2.16 / 0.96       0.90 / 0.28
 *   200, 200, 16              0.64 / 0.01   1.39 / 0.63       0.76 / 0.10
 *   400, 2000, 8              0.66 / 0.01   1.23 / 0.09       0.69 / 0.08   <- these
 *   2000, 200, 8              0.86 / 0.15   1.37 / 0.49       0.70 / 0.07
 * (the mutex and condition-variable pool before: 1.93 / 0.72, 16.6 / 14.1,
 * 0.68 / 0.17). Yielding in the producer's spin made it worse, then (3.2 s)
 * and again on 2026-12-07, with a rendezvous tried that day (a mailbox a
 * worker): a yield every 64 pauses 0.72-0.76 s against 0.61-0.65 s, every
 * 16 1.03-1.42 s. Each yield is a system call. */
#ifndef SPIN_WORKER
#define SPIN_WORKER 400
#endif
#ifndef SPIN_YIELD_EVERY
#define SPIN_YIELD_EVERY 8
#endif
#ifndef SPIN_PRODUCER
#define SPIN_PRODUCER 2000
#endif
#ifndef SPIN_ONE_CPU
#define SPIN_ONE_CPU 8 /* yields, where the process has one CPU */
#endif

/* A pool's waits: the turns a worker waiting for a job and a producer
 * waiting for room or a taker spin before they sleep; a wait yields every
 * yield-th turn (0: never), but a producer in a rendezvous every
 * meet_producer_yield-th (it spins for its take: yielding there measured
 * worse, above). Where the process may run on one CPU only (taskset, a
 * container's cpuset), spinning only delays the thread waited for, which
 * runs once this one is off the CPU: there a wait yields at once,
 * SPIN_ONE_CPU times, then sleeps (the unbuffered workers mode at
 * 1024x1024 under taskset -c 0, 2026-12-07: 61.6-63.0 s spinning, 10.2 s
 * sleeping at once, 6.1-7.8 s so; Go's 1.6-1.8 s). */
struct pool_spin {
	int worker, producer, yield, meet_producer_yield;
};

/* The waits for a process that may run on cpus CPUs. */
static inline struct pool_spin pool_spin_for(int cpus)
{
	if (cpus > 1)
		return (struct pool_spin){SPIN_WORKER, SPIN_PRODUCER, SPIN_YIELD_EVERY, 0};
	return (struct pool_spin){SPIN_ONE_CPU, SPIN_ONE_CPU, 1, 1};
}

struct pool_job {
	pool_fn *fn; /* NULL: the worker stops */
	void *arg;
	uintptr_t i;
	uint64_t queued; /* trace clock when queued; 0 when not tracing */
};

/* How a wait went, for its trace spans. */
struct pool_waited {
	int waited;       /* the token was not there at once */
	uint64_t woke_at; /* trace clock when the last futex sleep ended; 0: never slept */
	uint64_t flow;    /* the wake-up's flow id, claimed; 0: none */
};

/* Wakes n sleepers on w; traced, as a 'wake' span with a flow to the one
 * woken: of id, or (id 0, slot set) of a new id left in slot for the
 * sleeper to claim. The id is published only after a wake that woke
 * someone, so a sleeper never claims an arrow that has no start. Returns
 * the flow's id, 0 when none. */
uint64_t pool_wake(atomic_int *w, int n, uint64_t id, _Atomic uint64_t *slot);

/* ---- the rendezvous (pool_meet.c) ---- */

struct pool_meet_slot {
	_Alignas(64) atomic_uint word; /* the hand-off's number times 8, POOL_MEET_SLEEP, the phase */
	struct pool_job job;
	int cpu;       /* the CPU its producer gave from; -1: not known */
	int taker_cpu; /* the CPU its last taker took from; -1: not known */
};

struct pool_meet {
	_Alignas(64) atomic_uint tail; /* the next ticket, times 8 */
	_Alignas(64) atomic_int idle;  /* workers waiting for a job, not counting those that found one */
	_Atomic uint64_t wake;         /* traced: the flow id of the last wake-up not yet claimed */
	struct pool_meet_slot slot[2];
};

/* m zeroed: ready. */
void pool_meet_init(struct pool_meet *m);

/* Gives j to a worker: takes a ticket, puts j in its slot once the slot is
 * empty and, if wait, waits until a worker has taken it (without waiting:
 * only where a worker waits for a job and the slot is empty now). 0, or
 * -EAGAIN (not wait, and it would have to). The caller looks for shutdown
 * first: a ticket, once taken, is filled. sp: the pool's waits; *w: how the
 * wait went; d: its name for a block profiler (NULL: none). */
int pool_meet_give(struct pool_meet *m, const struct pool_job *j, bool wait,
		   const struct pool_spin *sp, struct pool_waited *w, const struct trace_desc *d);

/* On a worker: waits for a job and takes it into *j. sp, *w and d: as
 * above. */
void pool_meet_take(struct pool_meet *m, struct pool_job *j, const struct pool_spin *sp,
		    struct pool_waited *w, const struct trace_desc *d);

/* Wakes every thread asleep in m, to look again (shutdown). */
void pool_meet_wake_all(struct pool_meet *m);

#endif
