/*
 * perf.h - one perf_event_open event with its mapped ring, for the
 * tracer's modules that read the kernel (kview.c: context switches;
 * prof.c: CPU samples). Linux only; elsewhere every open fails ENOSYS.
 *
 * Owns: the event's file descriptor and its mapping, from perf_ring_open
 * to perf_ring_close. The ring is read by perf_ring_drain, which frees
 * what it has read.
 *
 * Thread-safety: a ring is drained by one thread at a time (the caller
 * locks); the kernel writes it meanwhile, as its protocol allows.
 */
#ifndef MW_TRACE_PERF_H
#define MW_TRACE_PERF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __linux__
#include <linux/perf_event.h>
#else
struct perf_event_attr;
struct perf_event_header {
	uint32_t type;
	uint16_t misc, size;
};
#endif

struct perf_ring {
	int fd;              /* -1: closed */
	void *map;           /* NULL: closed */
	size_t map_bytes;
	unsigned char *data; /* the kernel's ring of records */
	uint64_t size;
};

/* Opens event a for thread tid (0: the caller) on any CPU and maps a ring
 * of at most max_pages pages, halving it while the kernel's lock limit
 * refuses (an unprivileged user may lock perf_event_mlock_kb, 516 KiB by
 * default). 0, or the errno of the call named in *call. */
int perf_ring_open(struct perf_ring *r, struct perf_event_attr *a, int tid, int max_pages,
		   const char **call);

void perf_ring_close(struct perf_ring *r); /* a closed ring: no-op */

/* Why call failed with err, in one line with the kernel's
 * perf_event_paranoid setting (what a refusal most often comes down to). */
void perf_why(char *why, size_t len, const char *call, int err);

/* Each record now in the ring, in order, copied whole into scratch (cap
 * bytes; a longer record is cut to cap and n says how much is there):
 * fn(ctx, record, n). Then the ring's space is given back. */
typedef void perf_record_fn(void *ctx, const struct perf_event_header *rec, size_t n);
void perf_ring_drain(struct perf_ring *r, perf_record_fn *fn, void *ctx, void *scratch,
		     size_t cap);

#endif
