/*
 * pool_meet.c - the rendezvous of a pool of capacity 0 (pool_internal.h):
 * pool_submit returns once a worker has taken its very job, as a send on
 * an unbuffered Go channel does.
 *
 * Design: two slots, each on a cache line of its own, and a ticket.
 *  - A producer takes ticket k (a fetch-add on 'tail', which only
 *    producers write) and hands off through slot k & 1. A slot's word is
 *    k times 8, a sleep bit and a phase: EMPTY (the slot waits for hand-off
 *    k), WRITING (producer k fills it), FULL (a worker may take it),
 *    TAKING (a worker reads it). The producer moves EMPTY(k) to WRITING
 *    (compare-exchange), writes the job, stores FULL(k), and waits for the
 *    word to leave FULL(k). A worker moves FULL(k) to TAKING
 *    (compare-exchange: one worker wins), reads the job and stores
 *    EMPTY(k + 2), the slot's next hand-off.
 *  - Why two: the producer's next hand-off goes through the other slot, a
 *    line no worker has written since the hand-off before last; while it
 *    waits for the take, the producer takes that line into its cache (an
 *    add of 0). A hand-off then moves one line each way: the job to the
 *    worker, the take back. With one slot, the producer's next write had
 *    to take back the line the worker had just written: a third move on
 *    every hand-off. The workshop's unbuffered mode (1M hand-offs, 2
 *    vCPUs of an AMD EPYC Zen 3, 20 runs alternating, 2026-12-07) rendered
 *    in 525 ms best, 570 ms median with one slot; 483 and 553 ms with two;
 *    475 and 553 ms with two and the next line taken ahead.
 *  - Guesses: a worker's first look is a compare-exchange with the word it
 *    expects (the hand-off after its last, FULL), which takes the line
 *    once where a load and a compare-exchange would take it twice; the
 *    producer's, with EMPTY(k). Wrong, each reads the word as a load would.
 *  - Sleeping: a waiter spins (struct pool_spin), then sets the sleep bit with a
 *    compare-exchange on the word it saw and sleeps on the word (futex).
 *    Only EMPTY and FULL are slept on: WRITING and TAKING end two lines
 *    on, and a waiter that sees them yields instead. So every phase that
 *    can hold the bit is left by a read-modify-write (the owner's claim),
 *    which sees it; the owner wakes every sleeper once it has stored the
 *    next phase. No wake-up is lost, and a hand-off with nobody asleep
 *    makes no system call.
 *  - Whom a waiting thread yields to: beside the job a producer writes
 *    the CPU it gives from, and a worker the CPU it took from. A thread
 *    that must wait for the other side (a worker for the next job, a
 *    producer for its take) looks at where that side last ran: the
 *    worker at its last job's producer, the producer at its slot's last
 *    taker.
 *    - On this CPU: the other side needs this CPU, so the thread waits as
 *      a pool on one CPU does (yields at once, then sleeps).
 *    - On another CPU: it spins without yielding. A yield would only hand
 *      this CPU to another thread: our other worker, to wait for the same
 *      job, or a busy process's thread for a whole slice.
 *    - Not known: as the pool's spins say.
 *    The CPU is sched_getcpu's, read from the rseq area glibc keeps (2.35
 *    on); where it is not known (-1), the waits are the pool's.
 *    The workshop's unbuffered mode, 1024x1024, AMD EPYC Zen 3 with 2
 *    vCPUs, 2026-12-07, alternating with the waits before:
 *    - beside a CPU hog (one spinning thread) in our session: 1.03-1.47 s
 *      (6 runs; with the workers' rule alone 1.19-1.61 s, 8 runs) against
 *      1.84-18.05 s (14 runs; Go 1.57-2.06 s);
 *    - beside one in another session (its own autogroup; a trace showed
 *      our three threads sharing one CPU): 5.3-6.7 s against 29.6-40.4 s
 *      (5 runs each; Go 1.6-1.7 s);
 *    - alone (0.53-0.80 s against 0.54-0.82 s, 12 runs each), and on one
 *      CPU (taskset): the same.
 *  - A waiting worker looks at both slots and waits on the one of the
 *    older hand-off; pool_try_submit needs a worker waiting ('idle', which
 *    counts only workers that found no job at once) and an empty slot now,
 *    and takes its ticket with a compare-exchange.
 *  - A ticket is a promise: its producer fills its slot whatever happens
 *    (pool.c looks for shutdown before). A word comes back to the same
 *    value only 2^29 hand-offs on; a producer waits for its take by the
 *    word leaving FULL(k).
 * Memory order: the word's FULL (release, acquire on the take) hands over
 * the job; EMPTY (release, acquire on the claim) hands the slot back.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>

#include "render/park.h"
#include "render/pool_internal.h"

enum { MEET_EMPTY, MEET_WRITING, MEET_FULL, MEET_TAKING, MEET_SLEEP = 4 };
#define MEET_PHASE(w) ((w) & 3u)
#define MEET_K(w) ((w) & ~7u) /* k times 8 */
#define MEET_SLOT(m, k8) (&(m)->slot[((k8) >> 3) & 1])

/* The word a worker expects at its next take (see Guesses). */
static _Thread_local unsigned next_full = MEET_FULL;

/* The flow id of this thread's last wake-up of others, traced. */
static _Thread_local uint64_t own_wake;

/* The CPU the producer of this worker's last job gave it from; -1: none. */
static _Thread_local int giver_cpu = -1;

/* The CPU this thread is on now; -1 where that is not known. */
static int meet_cpu(void)
{
#ifdef __linux__
	return sched_getcpu();
#else
	return -1;
#endif
}

/* How a thread on cpu waits for another that last ran on other_cpu (see
 * Whom a waiting thread yields to): into *out_spins and *out_yield, the
 * pool's spins and yield, or those of a pool on one CPU where other_cpu is
 * cpu, or no yield where it is another. */
static void meet_waits(int cpu, int other_cpu, int spins, int yield, int *out_spins,
		       int *out_yield)
{
	*out_spins = spins, *out_yield = yield;
	if (cpu < 0 || other_cpu < 0)
		return;
	if (cpu == other_cpu) {
		struct pool_spin one = pool_spin_for(1);
		*out_spins = one.worker, *out_yield = one.yield;
	} else {
		*out_yield = 0;
	}
}

void pool_meet_init(struct pool_meet *m)
{
	atomic_init(&m->slot[1].word, 8); /* hand-off 1's, empty */
	for (int k = 0; k < 2; k++)
		m->slot[k].cpu = m->slot[k].taker_cpu = -1;
}

/* One turn of a wait on a slot's word, last read as *s, for a wait that
 * ends when the word leaves its phase: the n-th turn pauses while
 * n < spins (or yields, every yield-th turn; 0: never); after
 * that, yields while the phase is one that its owner leaves two lines
 * on, else sleeps, with MEET_SLEEP set, until the word moves or a
 * wake-up. *s: the word after. d: the wait's name for a block profiler
 * (NULL: none). */
static void meet_turn(struct pool_meet_slot *sl, unsigned *s, int *n, int spins, int yield,
		      struct pool_waited *w, const struct trace_desc *d)
{
	unsigned v = *s;
	w->waited = 1;
	if (*n < spins) {
		if (yield && ++*n % yield == 0)
			sched_yield(); /* more threads than cores: let the other side run */
		else
			park_relax();
		if (!yield)
			++*n;
	} else if (MEET_PHASE(v) == MEET_WRITING || MEET_PHASE(v) == MEET_TAKING) {
		sched_yield(); /* its owner is between two lines, maybe off its CPU */
	} else if ((v & MEET_SLEEP) ||
		   atomic_compare_exchange_strong_explicit(&sl->word, &v, v | MEET_SLEEP,
							   memory_order_relaxed,
							   memory_order_relaxed)) {
		if (d)
			trace_wait_sleep(d);
		park_wait((atomic_int *)&sl->word, (int)(v | MEET_SLEEP));
		w->woke_at = trace_on() || trace_waits_on() ? trace_now() : 0;
	}
	*s = atomic_load_explicit(&sl->word, memory_order_acquire);
}

/* A slot's word has left a phase that had sleepers: wakes every one
 * (producers and workers alike; each looks again). */
static void meet_wake(struct pool_meet *m, struct pool_meet_slot *sl)
{
	uint64_t id = pool_wake((atomic_int *)&sl->word, INT_MAX, 0, &m->wake);
	if (id)
		own_wake = id;
}

/* The flow id of the wake-up that ended this thread's sleep, if it is
 * still unclaimed; never one this thread published itself (both sides
 * publish in the same word: a worker woken by the producer may wake the
 * producer in turn, and its own arrow would run back in time). */
static uint64_t meet_claim(struct pool_meet *m)
{
	uint64_t id = atomic_load_explicit(&m->wake, memory_order_relaxed);
	while (id && id != own_wake &&
	       !atomic_compare_exchange_weak_explicit(&m->wake, &id, 0, memory_order_relaxed,
						      memory_order_relaxed))
		;
	return id == own_wake ? 0 : id;
}

void pool_meet_take(struct pool_meet *m, struct pool_job *j, const struct pool_spin *sp,
		    struct pool_waited *w, const struct trace_desc *d)
{
	unsigned s = next_full;
	struct pool_meet_slot *sl = MEET_SLOT(m, s);
	bool counted = false;
	int spins = 0, yield = 0;
	*w = (struct pool_waited){0};
	for (int n = 0;;) {
		if (MEET_PHASE(s) == MEET_FULL) {
			if (atomic_compare_exchange_weak_explicit(&sl->word, &s, MEET_K(s) | MEET_TAKING,
								  memory_order_acquire,
								  memory_order_relaxed))
				break;
			continue;
		}
		struct pool_meet_slot *o = &m->slot[sl == &m->slot[0]];
		unsigned so = atomic_load_explicit(&o->word, memory_order_relaxed);
		if (MEET_PHASE(so) == MEET_FULL || (int)(MEET_K(so) - MEET_K(s)) < 0) {
			sl = o, s = so; /* a job there, or the hand-off that comes first */
			continue;
		}
		if (!counted) { /* it waits: pool_try_submit may count on it */
			atomic_fetch_add_explicit(&m->idle, 1, memory_order_relaxed), counted = true;
			meet_waits(meet_cpu(), giver_cpu, sp->worker, sp->yield, &spins, &yield);
		}
		meet_turn(sl, &s, &n, spins, yield, w, d);
	}
	*j = sl->job;
	giver_cpu = sl->cpu;
	sl->taker_cpu = meet_cpu();
	if (counted)
		atomic_fetch_sub_explicit(&m->idle, 1, memory_order_relaxed);
	if (w->woke_at) /* before the wake below publishes an id of ours */
		w->flow = meet_claim(m);
	atomic_store_explicit(&sl->word, MEET_K(s) + 16, memory_order_release); /* EMPTY, 2 on */
	next_full = (MEET_K(s) + 8) | MEET_FULL;
	if (s & MEET_SLEEP)
		meet_wake(m, sl);
}

int pool_meet_give(struct pool_meet *m, const struct pool_job *j, bool wait,
		   const struct pool_spin *sp, struct pool_waited *w, const struct trace_desc *d)
{
	struct pool_meet_slot *sl;
	unsigned t, s;
	*w = (struct pool_waited){0};
	if (!wait) {
		t = atomic_load_explicit(&m->tail, memory_order_relaxed);
		sl = MEET_SLOT(m, t);
		s = atomic_load_explicit(&sl->word, memory_order_relaxed);
		if (atomic_load_explicit(&m->idle, memory_order_relaxed) == 0 ||
		    (s & ~(unsigned)MEET_SLEEP) != t ||
		    !atomic_compare_exchange_strong_explicit(&m->tail, &t, t + 8, memory_order_relaxed,
							     memory_order_relaxed))
			return -EAGAIN;
	} else {
		/* A ticket is a promise: whatever happens, its slot is filled. */
		t = atomic_fetch_add_explicit(&m->tail, 8, memory_order_relaxed);
		sl = MEET_SLOT(m, t);
		s = t; /* the slot's word as expected: empty, nobody asleep */
	}
	for (int n = 0;;) {
		if (MEET_K(s) == t && MEET_PHASE(s) == MEET_EMPTY) {
			if (atomic_compare_exchange_weak_explicit(&sl->word, &s, t | MEET_WRITING,
								  memory_order_acquire,
								  memory_order_relaxed))
				break;
			continue;
		}
		/* The slot's hand-off before ours is not yet taken. */
		meet_turn(sl, &s, &n, sp->producer, sp->meet_producer_yield, w, d);
	}
	sl->job = *j;
	const int cpu = meet_cpu(), taker_cpu = sl->taker_cpu; /* this slot's last taker's */
	sl->cpu = cpu;
	const unsigned full = t | MEET_FULL;
	atomic_store_explicit(&sl->word, full, memory_order_release);
	if (s & MEET_SLEEP)
		meet_wake(m, sl);
	if (!wait)
		return 0;
	/* The next hand-off's slot, taken into this CPU's cache while we wait
	 * (an add of 0 takes a line as a write would): a producer that comes
	 * back at once finds it there, not in the last taker's cache. Not
	 * where another producer has that ticket already. */
	if (atomic_load_explicit(&m->tail, memory_order_relaxed) == t + 8)
		atomic_fetch_add_explicit(&MEET_SLOT(m, t + 8)->word, 0, memory_order_relaxed);
	/* Until a worker has it: the word leaves our 'full' (and comes back to
	 * it only 2^29 hand-offs on). */
	w->waited = 1;
	s = atomic_load_explicit(&sl->word, memory_order_acquire);
	int spins = 0, yield = 0;
	if ((s & ~(unsigned)MEET_SLEEP) == full)
		meet_waits(cpu, taker_cpu, sp->producer, sp->meet_producer_yield, &spins, &yield);
	for (int n = 0; (s & ~(unsigned)MEET_SLEEP) == full;)
		meet_turn(sl, &s, &n, spins, yield, w, d);
	if (w->woke_at)
		w->flow = meet_claim(m);
	return 0;
}

void pool_meet_wake_all(struct pool_meet *m)
{
	for (int k = 0; k < 2; k++)
		park_wake((atomic_int *)&m->slot[k].word, INT_MAX);
}
