/*
 * ring.h - the tracer's rings, for trace.c (writers) and capture.c (the
 * reader) only; users include trace.h and capture.h.
 *
 * Owns: struct trace_ring, one per registered thread, never freed before
 * exit (a capture may be reading it), and the registry of them.
 *
 * Memory-ordering rules (a seqlock reader over a single-writer ring):
 * - Only the owning thread writes its ring. It stores a record's fields,
 *   then publishes the record by storing w + 1 with release: 'w' counts
 *   records ever written (it only grows; slot = index & mask).
 * - The reader loads w with acquire, so every record below it is visible,
 *   copies a record's fields, then loads w again. The writer overwrites
 *   the slot of index i while writing index i + size, that is once
 *   w >= i + size; if the second load says w < i + size, the copy is
 *   whole. Otherwise the record counts as lost. So a ring of size slots
 *   keeps size - 1 readable records: the oldest slot may be the one being
 *   written.
 * - Why the second load can be trusted: the fields are stored with release
 *   and loaded with acquire. If the reader saw any field of the overwrite
 *   of index i + size, that load synchronises with its store, and the
 *   writer's earlier store of w = i + size happens before the reader's
 *   second load of w. (The textbook form uses fences; GCC's
 *   ThreadSanitizer does not model fences, and on x86-64 release stores
 *   and acquire loads are plain moves anyway.) The fields are atomics so
 *   the race is defined C.
 */
#ifndef MW_TRACE_RING_H
#define MW_TRACE_RING_H

#include <stdatomic.h>
#include <stdint.h>

#include "trace/trace.h"

struct trace_rec { /* 64 bytes: one cache line */
	_Atomic uint64_t ts, dur, meta;
	_Atomic uintptr_t desc;
	_Atomic int64_t a[TRACE_ARGS];
};

#define TRACE_NAME_MAX 32

/* A ring's lanes: each a ring of its own with one writer at a time, so
 * that one kind of record never overwrites another. Counters change per
 * job and were most of a pool trace's records; the kernel's thread states
 * are written by whoever drains the kernel's ring (kview.c), under its
 * lock, never by the thread itself. */
enum trace_lane_id {
	TRACE_LANE_EVENTS,
	TRACE_LANE_COUNTERS,
	TRACE_LANE_STATES,
	TRACE_LANE_SAMPLES, /* CPU samples: written by the sampler's collector (samples.c) */
	TRACE_LANES
};

struct trace_lane {
	_Atomic uint64_t w; /* records written; the writer's release store publishes */
	uint32_t mask;      /* size - 1; 0 with rec NULL: the lane is not in use */
	uint32_t check;     /* records between the writer's looks at a spill, less one (spill.h) */
	uint64_t w_open;    /* w when the current capture opened (capture.c) */
	struct trace_rec *rec;
};

struct trace_kview_thread; /* kview.c's per-thread state */

struct trace_ring {
	struct trace_lane lane[TRACE_LANES];
	unsigned idx; /* its place in the registry */
	int tid;
	_Atomic uintptr_t name; /* a static or leaked name set by trace_thread_name */
	char pname[TRACE_NAME_MAX]; /* the pthread name at registration */
	_Atomic(struct trace_kview_thread *) kv; /* the kernel's view; NULL where refused */
	int kv_self; /* kv is set: for the owner, read without an atomic (set by the owner itself) */
};

/* Appends a record to lane l of ring r; only that lane's writer may call
 * it. _put_ then copies the lane out to a capture's spill when it is due
 * (spill.h); _append_ does not (the spill's own record of its cost). */
void trace_lane_put_(struct trace_ring *r, int l, const struct trace_desc *d, uint64_t meta,
		     uint64_t ts, uint64_t dur, const int64_t a[TRACE_ARGS]);
void trace_lane_append_(struct trace_ring *r, int l, const struct trace_desc *d, uint64_t meta,
			uint64_t ts, uint64_t dur, const int64_t a[TRACE_ARGS]);

/* Copies record i of lane l into out: 1 if the copy is whole, 0 if the
 * writer may have overwritten it meanwhile (the seqlock rule above). */
struct chrome_rec;
int trace_lane_read_(struct trace_lane *l, uint64_t i, struct chrome_rec *out);

/* The tracer's armed count, moved by captures and the flight recorder:
 * the kernel view follows its transitions between 0 and nonzero. */
void trace_arm_(int delta);

/* Rings registered so far, and ring i (i < that count). */
unsigned trace_rings_(void);
struct trace_ring *trace_ring_(unsigned i);
const char *trace_process_(void);
uint64_t trace_ring_size_(void);
const char *trace_spill_dir_(void);
unsigned trace_spill_mb_(void); /* TRACE_SPILL_OFF: none */

static inline enum trace_kind trace_meta_kind(uint64_t m) { return (enum trace_kind)(m & 3); }
static inline enum trace_flow trace_meta_flow(uint64_t m) { return (enum trace_flow)((m >> 2) & 3); }
static inline uint64_t trace_meta_id(uint64_t m) { return m >> 4; }

#endif
