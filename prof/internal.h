/*
 * internal.h - the profile session's state, shared by sample.c (the
 * sampling and the table of stacks) and pprof.c (the encoding); nothing
 * else includes it.
 *
 * The table: open addressing on a hash of (thread, call chain), grown at
 * half full; each entry's frames live in one growing array of addresses
 * (leaf first, as the kernel gives them). Only the collector writes it,
 * under mu, until prof_stop; then only the encoder reads it.
 */
#ifndef MW_PROF_INTERNAL_H
#define MW_PROF_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "prof/prof.h"
#include "trace/perf.h"

struct prof_stack {
	uint64_t hash;  /* 0: the slot is free */
	int tid;
	uint32_t depth;
	size_t at;      /* its frames: ips[at .. at + depth) */
	uint64_t count;
};

struct prof_thread {
	int tid;
	char name[16];
	struct perf_ring ring;
};

struct prof {
	pthread_mutex_t mu;
	pthread_t collector;
	int running, collecting;
	unsigned hz;
	uint64_t start_ns, end_ns;
	uint64_t start_wall_ns;
	struct prof_thread *th;
	unsigned nth;
	struct prof_stack *tab;
	size_t cap, n;
	uint64_t *ips;
	size_t nips, capips;
	uint64_t samples, lost;
	int oom;
	int sigprof;       /* sampled by sigprof.c's timers: perf_event_open was refused */
	char how[320];     /* how it was sampled, for the profile's comment */
};

/* Array a (capacity *cap elements of size bytes) with room for need: a
 * itself, or where realloc moved it (capacity doubled from first); NULL
 * when out of memory, a and *cap as they were. */
static inline void *prof_grow(void *a, size_t *cap, size_t need, size_t size, size_t first)
{
	if (need <= *cap)
		return a;
	size_t c = *cap ? *cap * 2 : first;
	while (c < need)
		c *= 2;
	void *q = realloc(a, c * size);
	if (q)
		*cap = c;
	return q;
}

/* Counts weight samples of thread tid with frames ips[0..n) (leaf first).
 * Under mu. */
void prof_add_sample_(struct prof *p, int tid, const uint64_t *ips, uint32_t n, uint32_t weight);

/* sigprof.c: the fallback sampler. */
int sig_start(struct prof *p, char *why, size_t len);
void sig_collect(struct prof *p); /* under mu */
void sig_stop(struct prof *p);    /* under mu */

#endif
